"""The mutation score of each module `make mutate` mutates: mutmut's results, counted per module, printed and
written to docs/results/ as a table (with the survivors, each a place a test could not tell the code changed).

    .venv/bin/python benchmarks/mutation_report.py   # after `mutmut run`, in the project root
"""

from __future__ import annotations

import re
import subprocess
import sys
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
    lines = ["| module | mutants | killed | survived | other | score | target |", "|---|---|---|---|---|---|---|"]
    for module, count in sorted(counts.items()):
        total = sum(count.values())
        killed = count["killed"] + count["timeout"]  # a mutant that hangs the tests is caught too
        target = TARGETS.get(module, OTHER_TARGET)
        other = total - killed - count["survived"]
        lines.append(f"| {module} | {total} | {killed} | {count['survived']} | {other} | {killed / total:.0%} | "
                     f"{target:.0%} |")  # fmt: skip
    lines += ["", "Survivors (`mutmut show NAME` prints each):", ""]
    lines += [f"- {module}: {', '.join(names)}" for module, names in sorted(survivors.items())]
    publish(lines, "mutation.md")


if __name__ == "__main__":
    main()
