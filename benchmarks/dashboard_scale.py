"""What a person waits for, at fleet scale: each dashboard page served with the README's command and opened in
headless Chromium, on histories of 10 runs, 10,000 runs on 20 machines and 100,000 runs on 100 machines.

For each database and page it records, from navigation: the first Plotly chart drawn (where the page has one) and
the settled page (the script done, everything drawn); cold is the first session after the server starts, warm the
median of three fresh sessions after it. Beside them, the page script alone (Streamlit's AppTest, warm: median of
three reruns). The histories come from benchmarks/history_scale.py's generator, on machine counts that are
multiples of 4: there the newest run's baseline measured its batch size, so the Compare page draws its chart on
every size, as a comparison of unlike runs would not. Prints a Markdown table and writes it to docs/results/
(benchmarks/publish.py).

    .venv/bin/python benchmarks/dashboard_scale.py [--sizes 10:4,10000:20,100000:100] [--pages history,overview]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.history_scale import generate  # noqa: E402 - after the path line above
from benchmarks.publish import publish  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
PAGES = {  # page -> its path under the server's root
    "overview": "",
    "run": "run",
    "detections": "detections",
    "history": "history",
    "machines": "machines",
    "compare": "compare",
    "share": "share",
}
WARM_SESSIONS = 3
PAGE_TIMEOUT_MS = 180_000
QUIET_MS = 1000  # settled: the script stopped and the page has not changed for this long
# in every session, before the app's own scripts: the time of the first chart's SVG and of the page's last change
WATCH_JS = """() => {
    window.lastChange = 0;
    new MutationObserver(() => {
        window.lastChange = performance.now();
        if (!performance.getEntriesByName("first-chart").length
                && document.querySelector("[data-testid='stPlotlyChart'] .main-svg")) {
            performance.mark("first-chart");
        }
    }).observe(document, {childList: true, subtree: true, characterData: true, attributes: true});
}"""
SETTLED_JS = f"""() => {{
    const app = document.querySelector("[data-testid='stApp']");
    const idle = app && app.getAttribute("data-test-script-state") === "notRunning" && document.querySelector("h1");
    return idle && performance.now() - window.lastChange > {QUIET_MS} ? window.lastChange : false;
}}"""
FIRST_CHART_JS = """() => { const mark = performance.getEntriesByName("first-chart");
                             return mark.length ? mark[0].startTime : null; }"""
LIMITS = {10_000: 1.5, 100_000: 2.0}  # warm, against the smallest history
SCRIPT_LIMIT_S = 1.0  # the page script alone, warm, at 10,000 runs


@dataclass(frozen=True)
class PageTimes:
    """One page on one database: seconds from navigation (None: the page drew no chart)."""

    chart_cold_s: float | None
    chart_warm_s: float | None
    settled_cold_s: float
    settled_warm_s: float
    script_warm_s: float


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """`python -m dashboard.serve` as `make run` starts it, its database from YOLO_BENCH_DB."""

    def __init__(self, db: Path):
        self.port = free_port()
        self.log = Path(tempfile.mkstemp(suffix=".log")[1])
        with open(self.log, "w") as log:  # a file, not a pipe: a full pipe would stall the server
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dashboard.serve", "--server.address", "127.0.0.1", "--server.port",
                 str(self.port), "--server.headless", "true"],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "YOLO_BENCH_DB": str(db)},
            )  # fmt: skip
        self.url = f"http://127.0.0.1:{self.port}/"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.url + "_stcore/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the dashboard did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


def open_once(browser, url: str) -> tuple[float | None, float]:
    """A fresh session on the page: seconds to its first chart (None if it draws none) and to the settled page."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(script=f"({WATCH_JS})()")
    page = context.new_page()
    try:
        page.goto(url, wait_until="commit")
        settled = page.wait_for_function(SETTLED_JS, timeout=PAGE_TIMEOUT_MS, polling=100).json_value()
        first_chart = page.evaluate(FIRST_CHART_JS)
        return (first_chart / 1000 if first_chart is not None else None), settled / 1000
    finally:
        context.close()


def script_warm_s(db: Path, page: str) -> float:
    """The page script alone in AppTest: the median of three reruns after a first that fills the caches."""
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=300)
    app.session_state["db_path"] = str(db)
    app.run()
    if page != "overview":
        app.switch_page(f"pages/views/{page}.py").run()
    seconds = []
    for _ in range(3):
        started = time.perf_counter()
        app.run()
        seconds.append(time.perf_counter() - started)
    if app.exception:
        raise RuntimeError(f"{page} raised: {app.exception[0].message}")
    return statistics.median(seconds)


def measure(db: Path, pages: list[str]) -> dict[str, PageTimes]:
    """Each page cold (a server of its own, started for it) and warm."""
    from playwright.sync_api import sync_playwright

    times = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        for name in pages:
            server = Server(db)
            try:
                url = server.url + PAGES[name]
                cold = open_once(browser, url)
                warm = [open_once(browser, url) for _ in range(WARM_SESSIONS)]
            finally:
                server.stop()
            charts = [chart for chart, _ in warm if chart is not None]
            times[name] = PageTimes(
                chart_cold_s=cold[0],
                chart_warm_s=statistics.median(charts) if charts else None,
                settled_cold_s=cold[1],
                settled_warm_s=statistics.median(settled for _, settled in warm),
                script_warm_s=script_warm_s(db, name),
            )
            print(f"  {name}: {times[name]}", flush=True)
        browser.close()
    return times


def verdicts(times: dict[int, dict[str, PageTimes]]) -> list[str]:
    """Each page's warm times against the smallest history's, and the script's against its limit."""
    smallest = min(times)
    lines = []
    for runs, limit in LIMITS.items():
        if runs not in times:
            continue
        for page, page_times in times[runs].items():
            base = times[smallest][page]
            ratio = page_times.settled_warm_s / base.settled_warm_s
            chart = (
                page_times.chart_warm_s / base.chart_warm_s if page_times.chart_warm_s and base.chart_warm_s else None
            )
            worst = max(ratio, chart or 0)
            script = page_times.script_warm_s <= SCRIPT_LIMIT_S if runs == 10_000 else True
            lines.append(
                f"| {runs:,} | {page} | {ratio:.2f}x | {'—' if chart is None else f'{chart:.2f}x'} | {limit}x | "
                f"{'yes' if worst <= limit and script else 'NO'} |"
            )
    return lines


def seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10:4,10000:20,100000:100", help="runs:machines, comma-separated")
    parser.add_argument("--pages", default=",".join(PAGES))
    parser.add_argument("--out", default="", help="a file to write the table to, instead of docs/results/")
    args = parser.parse_args()
    sizes = [tuple(int(part) for part in size.split(":")) for size in args.sizes.split(",")]
    pages = args.pages.split(",")
    folder = Path(tempfile.mkdtemp(prefix="dashboard-scale-"))
    times: dict[int, dict[str, PageTimes]] = {}
    for runs, machines in sizes:
        db = folder / f"history-{runs}.duckdb"
        generate(db, runs, machines)
        print(f"{runs:,} runs on {machines} machines:", flush=True)
        times[runs] = measure(db, pages)
    from engine.machine import fingerprint

    machine = fingerprint()
    rows = [
        f"| {runs:,} / {machines} | {page} | {seconds(t.chart_cold_s)} | {seconds(t.chart_warm_s)} | "
        f"{seconds(t.settled_cold_s)} | {seconds(t.settled_warm_s)} | {t.script_warm_s:.2f} |"
        for runs, machines in sizes
        for page, t in times[runs].items()
    ]
    lines = [
        f"# Dashboard at scale ({time.strftime('%Y-%m-%d')}, {machine['cpu_model']}, {machine['logical_cores']} "
        "logical cores)",
        "",
        f"`benchmarks/dashboard_scale.py --sizes {args.sizes}`: each page served by `python -m dashboard.serve` "
        "(what `make run` starts) and opened in headless Chromium. Seconds from navigation to the first chart and "
        f"to the settled page; cold: the first session after the server starts; warm: the median of "
        f"{WARM_SESSIONS} fresh sessions after it. Script: the page script alone in AppTest, warm (median of 3).",
        "",
        "| runs / machines | page | first chart cold | first chart warm | settled cold | settled warm | script warm |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Warm against the {min(times):,}-run history (limit: 1.5x at 10,000 runs, 2x at 100,000; the script at "
        f"most {SCRIPT_LIMIT_S:.0f} s at 10,000):",
        "",
        "| runs | page | settled, ratio | first chart, ratio | limit | within |",
        "|---|---|---|---|---|---|",
        *verdicts(times),
    ]
    publish(lines, Path(args.out).resolve() if args.out else "dashboard_scale.md")


if __name__ == "__main__":
    main()
