"""The README stays a short user guide, the docs name every module, links lead somewhere, and benchmarks write
their tables into docs/results/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmarks import publish as publishing

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MARKDOWN = [README, *sorted((ROOT / "docs").rglob("*.md"))]
# The screenshot is taken from the running dashboard, so it is added by hand, not made by the code.
NOT_YET = {ROOT / "docs" / "images" / "overview.png"}


def headings(text: str) -> list[str]:
    """The Markdown heading lines of text, outside fenced code blocks."""
    found, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6}\s", line):
            found.append(line)
    return found


def test_the_readme_is_at_most_300_lines():
    lines = README.read_text().splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines: move detail into docs/"


def test_the_readme_has_no_dated_measurement_section():
    dated = [line for line in headings(README.read_text()) if re.search(r"\b20\d\d-", line)]
    assert not dated, f"dated sections belong in docs/results/: {dated}"


def test_the_architecture_page_names_every_module_and_page():
    architecture = (ROOT / "docs" / "architecture.md").read_text()
    files = [
        *(ROOT / "engine").rglob("*.py"),
        *(ROOT / "dashboard").rglob("*.py"),
        *(path for path in (ROOT / "pages").rglob("*") if path.is_file()),
    ]
    relative = sorted(path.relative_to(ROOT).as_posix() for path in files if "__pycache__" not in path.parts)
    assert "engine/store.py" in relative and any(path.startswith("pages/") for path in relative)
    missing = [path for path in relative if not re.search(rf"(?<![\w/.-]){re.escape(path)}(?![\w/-])", architecture)]
    assert not missing, f"docs/architecture.md does not name: {missing}"


@pytest.mark.parametrize("page", MARKDOWN, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_relative_links_lead_to_files(page):
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if target.startswith(("http://", "https://", "mailto:", "#")):
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        if path not in NOT_YET and not path.exists():
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)} links to missing files: {broken}"


def test_a_benchmark_table_becomes_its_section_of_the_day_s_results_file(tmp_path):
    first = publishing.publish(["# Title", "", "| a |", "|---|", "| 1 |"], "alpha.md", folder=tmp_path)
    publishing.publish(["| b |", "|---|", "| 2 |"], "beta.md", folder=tmp_path)
    publishing.publish(["| a |", "|---|", "| 3 |"], "alpha.md", folder=tmp_path)
    assert first == publishing.results_file(tmp_path) and first.parent == tmp_path
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}-[a-z0-9-]{1,40}\.md", first.name)
    text = first.read_text()
    assert text.count("## alpha") == 1 and "| 3 |" in text and "| 1 |" not in text, text
    assert "## beta" in text and "| 2 |" in text, "the other benchmark's section is kept"
    assert [line for line in headings(text) if line.startswith("## ")] == ["## alpha", "## beta"], text
    index = (tmp_path / "README.md").read_text()
    assert index.count(f"]({first.name})") == 1, "a new results file is listed once"


def test_an_absolute_out_path_gets_the_table_alone(tmp_path):
    out = tmp_path / "elsewhere" / "table.md"
    assert publishing.publish(["| a |", "|---|", "| 1 |"], out, folder=tmp_path / "results") == out
    assert out.read_text() == "| a |\n|---|\n| 1 |\n"
    assert not (tmp_path / "results").exists()


def test_machine_slug():
    assert publishing.machine_slug("Intel(R) Xeon(R) Platinum 8480+") == "intel-xeon-platinum-8480"
    assert publishing.machine_slug("AMD EPYC 9R14 96-Core Processor") == "amd-epyc-9r14-96-core-processor"
    assert len(publishing.machine_slug("x" * 100)) == 40
    assert publishing.machine_slug("") == "unknown-cpu"


def test_the_readme_runtime_table_names_every_runtime_its_precisions_and_pinned_versions():
    """Each registered runtime has its row (the GPU ones share one), with the precisions it offers and the
    versions requirements.txt pins: a runtime added, or a pin moved, without its row fails here."""
    from engine.runtimes import registry

    pins = dict(
        line.split("==")
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    rows = {}
    for line in README.read_text().split("## Runtimes", 1)[1].split("\n## ", 1)[0].splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if line.startswith("|") and len(cells) == 4 and cells[0] not in ("runtime", "---"):
            rows.update({name.strip(): cells for name in cells[0].split(",")})
    assert set(rows) == set(registry.names())
    for name in registry.names():
        runtime = registry.get(name)
        _, library, precisions, _ = rows[name]
        if runtime.device == "cpu":
            assert [p.split(" ")[0] for p in precisions.split(", ")] == list(runtime.precisions), name
            for package, version in re.findall(r"([\w-]+) (\d[\w.]*)", library):
                assert pins.get(package) == version, f"{name}: {package} {version}, pinned {pins.get(package)}"
