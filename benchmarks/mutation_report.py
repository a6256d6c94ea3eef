"""The mutation score of each module `make mutate` mutates: mutmut's results, counted per module, printed and
written to docs/results/ as a table (with the survivors, each a place a test could not tell the code changed).

    .venv/bin/python benchmarks/mutation_report.py   # after `mutmut run`, in the project root
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.publish import publish  # noqa: E402 - after the path line above

TARGETS = {"engine.store": 0.9, "engine.measure": 0.9, "engine.regressions": 0.9, "engine.ranking": 0.9}
OTHER_TARGET = 0.8
LINE = re.compile(r"^\s*(?P<module>engine\.\w+)\.(?P<name>\S+?): (?P<status>[\w ]+)$")


def results() -> dict[str, Counter]:
    done = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=ROOT, capture_output=True,
                          text=True, check=True)  # fmt: skip
    counts: dict[str, Counter] = defaultdict(Counter)
    survivors: dict[str, list[str]] = defaultdict(list)
    for line in done.stdout.splitlines():
        found = LINE.match(line)
        if found:
            counts[found["module"]][found["status"]] += 1
            if found["status"] == "survived":
                survivors[found["module"]].append(found["name"])
    return counts, survivors


def main() -> None:
    counts, survivors = results()
    lines = [
        f"`make mutate` ({time.strftime('%Y-%m-%d %H:%M')}): mutmut's mutants of each module against its in-process "
        "tests. Score: killed (a timeout counts) over the mutants checked; 'no tests': no selected test runs the "
        "mutated code; 'not checked': the run ended before reaching them.",
        "",
        "| module | mutants | checked | killed | survived | no tests | not checked | score | target |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for module, count in sorted(counts.items()):
        total = sum(count.values())
        checked = total - count["not checked"]
        killed = count["killed"] + count["timeout"]  # a mutant that hangs the tests is caught too
        score = f"{killed / checked:.0%}" if checked else "-"
        lines.append(f"| {module} | {total} | {checked} | {killed} | {count['survived']} | {count['no tests']} | "
                     f"{count['not checked']} | {score} | {TARGETS.get(module, OTHER_TARGET):.0%} |")  # fmt: skip
    lines += ["", "Survivors (`mutmut show NAME` prints each):", ""]
    lines += [f"- {module}: {', '.join(names)}" for module, names in sorted(survivors.items())]
    publish(lines, "mutation.md")


if __name__ == "__main__":
    main()
