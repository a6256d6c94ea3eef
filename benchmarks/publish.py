"""What every benchmark does with its table: print it and write it as Markdown under benchmarks/results/."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def publish(lines: list[str], out: str | Path) -> None:
    """out: a file name under benchmarks/results/, or an absolute path (a benchmark's --out)."""
    text = "\n".join(lines) + "\n"
    print(text)
    target = RESULTS / out  # an absolute out replaces RESULTS
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
