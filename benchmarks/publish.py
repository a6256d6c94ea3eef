"""What every benchmark does with its table: print it and write it as Markdown into docs/results/.

A benchmark's table becomes the section `## <name>` (its file name without .md) of
docs/results/<YYYY-MM-DD>-<machine>.md, the file for the day it ran and this machine's CPU model: running it
again the same day replaces that section and keeps the others. A new file is listed at the top of
docs/results/README.md. An absolute path (a benchmark's --out) gets the table alone, written exactly there.
"""

from __future__ import annotations

import platform
import re
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results"
INDEX_HEADING = "## Files, newest first"


def cpu_model() -> str:
    """The CPU's model name as /proc/cpuinfo gives it, else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine_slug(model: str | None = None) -> str:
    """'Intel(R) Xeon(R) Processor' -> 'intel-xeon-processor': lowercase, anything else a dash, at most 40."""
    model = cpu_model() if model is None else model
    model = re.sub(r"\((r|tm|c)\)", " ", model, flags=re.IGNORECASE)
    slug = re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-")
    return slug[:40].rstrip("-") or "unknown-cpu"


def results_file(folder: Path = RESULTS, day: str | None = None, model: str | None = None) -> Path:
    """docs/results/<YYYY-MM-DD>-<machine-slug>.md for today (or day) and this machine (or model)."""
    return folder / f"{day or time.strftime('%Y-%m-%d')}-{machine_slug(model)}.md"


def _demoted(lines: list[str]) -> list[str]:
    """A table's own headings two levels down, so that they stay inside its `## ` section."""
    out, fenced = [], False
    for line in lines:
        if line.lstrip().startswith("```"):
            fenced = not fenced
        out.append("##" + line if not fenced and re.match(r"#+\s", line) else line)
    return out


def replace_section(text: str, name: str, body: list[str]) -> str:
    """text with its section `## name` (up to the next `## ` heading) replaced by body, or body appended."""
    lines = text.splitlines()
    section = [f"## {name}", "", *_demoted(body)]
    while section and not section[-1].strip():
        section.pop()
    if f"## {name}" in lines:
        start = lines.index(f"## {name}")
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        before, after = lines[:start], lines[end:]
    else:
        before, after = lines, []
    while before and not before[-1].strip():
        before.pop()
    return "\n".join([*before, *([""] if before else []), *section, *([""] if after else []), *after]) + "\n"


def _add_to_index(folder: Path, target: Path, model: str) -> None:
    """List a new results file at the top of docs/results/README.md's list, newest first."""
    index = folder / "README.md"
    text = index.read_text() if index.exists() else "# Results\n"
    if f"]({target.name})" in text:
        return
    entry = f"- [{target.name}]({target.name}): {model}, `make bench`"
    lines = text.splitlines()
    if INDEX_HEADING in lines:
        at = lines.index(INDEX_HEADING) + 1
        while at < len(lines) and not lines[at].strip():
            at += 1
        lines.insert(at, entry)
    else:
        lines += ["", INDEX_HEADING, "", entry]
    index.write_text("\n".join(lines) + "\n")


def publish(lines: list[str], out: str | Path, folder: Path = RESULTS) -> Path:
    """Print the table; out: the benchmark's file name (`pipeline_modes.md`: the section `## pipeline_modes` of
    this machine's results file for today), or an absolute path (a benchmark's --out), written as is.
    Returns the file written."""
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(out)
    if out.is_absolute():
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        return out
    model = cpu_model()
    target = results_file(folder, model=model)
    if target.exists():
        existing = target.read_text()
    else:
        existing = (
            f"# Results: {target.stem[:10]}, {model}\n\n"
            "What the benchmarks under `benchmarks/` (`make bench`) measured on this machine that day, "
            "one section per benchmark.\n"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(replace_section(existing, out.name.removesuffix(".md"), lines))
    _add_to_index(folder, target, model)
    return target
