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


ZIP_BOUND = (
    "CPython's zipfile returns no more of a member than its declared size, which _members refused over its limit "
    "first: the streaming guard (for another zip reader), its chunk size and its limit cannot change a result here"
)
# Survivors that cannot change what the code does, each by (module.function, a fragment of the mutated line, why).
# A mutant matches when its name starts with the function's and its "+" line holds the fragment (a fragment that
# starts with "-": the line the mutant changed holds the rest).
EQUIVALENT = [
    ("engine.config.x_physical_cores", "", "fallbacks for a CPU count psutil and os always give on Linux; logical "
     "and physical counts are equal on these VMs, so no test here can tell them apart"),
    ("engine.config.x_usable_cpus", "", "a fallback for an empty affinity set, which a running process cannot have"),
    ("engine.config.x_did_you_mean", "get_close_matches", "only the first match is used, and 0.6 is difflib's "
     "default cutoff"),
    ("engine.config.x__validate_matrix", 'name.split(":"', "only the part before the first colon is kept"),
    ("engine.config.x__validate_inputs", "config.data or not", "data defaults to '', whose path is '.', which exists"),
    ("engine.config.x_expand_variants", "partition('XX:XX')", "the message names no pinned runtime: a pinned one "
     "always gives its variant, so nothing reaches the message with one"),
    ("engine.bundle_check.x__check_columns", "-names a column twice", "unreachable: DuckDB reads a repeated column "
     "name as name_1, refused next as a column this schema lacks (test_a_column_named_twice_is_refused)"),
    ("engine.bundle_check.x__kind", "rpartition", "a name with a second slash fails either way: its file part "
     "holds a slash, or its folder part is neither tables nor images"),
    ("engine.bundle_check.x__chunks", "-source.read(2**20)", ZIP_BOUND),
    ("engine.bundle_check.x__chunks", "-read += len(chunk)", ZIP_BOUND),
    ("engine.bundle_check.x__chunks", "-inflates past", ZIP_BOUND),
    ("engine.bundle_check.x__extract_listed", "-limit = limits.table_bytes", ZIP_BOUND),
    ("engine.regressions.x_check", "groupby(", "sort=True is groupby's default"),
    ("engine.bundle.x_write_bundle", "json.dumps(manifest", "the manifest's indentation: JSON readers ignore it"),
    ("engine.bundle.x_import_bundle", "TemporaryDirectory(prefix", "the name of a temporary folder"),
    ("engine.store.x_apply_migrations_up_to", "_for_store(statement", "the shared store's DDL: killed by "
     "tests/test_shared_store.py, which starts PostgreSQL and so is not in the in-process selection"),
    ("engine.store.x__result_values", "input_shape", "DuckDB takes a tuple as a list"),
    ("engine.store.x__result_values", "INPUT_SHAPE", "DuckDB takes a tuple as a list"),
    ("engine.store.x__migrate", "shared = ", "the shared store's migration: killed by tests/test_shared_store.py, "
     "which starts PostgreSQL"),
    ("engine.store.x__migrate", "_for_store(statement, None)", "the shared store's DDL (tests/test_shared_store.py)"),
    ("engine.store.x__migrate", "not shared or", "differs only for a shared store (tests/test_shared_store.py)"),
    ("engine.store.x__migrate", "st_size >= 0", "a file of 0 bytes holds no schema: version 0, so no backup either "
     "way"),
    ("engine.store.x__migrate", "st_size > 1", "a DuckDB file is never a single byte"),
    ("engine.store.x__migrate", "existed or version > 0", "a file that did not exist is at version 0; an existing "
     "one at version 0 only gets a CHECKPOINT, which changes nothing"),
    ("engine.store.x__migrate", "version >= 0", "a CHECKPOINT of a file at version 0 changes nothing"),
    ("engine.store.x__migrate", "version > 1:", "DuckDB checkpoints as its last connection closes: a version-1 "
     "file's WAL is empty by the time it is migrated"),
    ("engine.measure.xǁStatsǁfrom_values", "np.asarray(values", "the samples are floats: float64 is numpy's own "
     "choice"),
    ("engine.parity.x__arrays", "dtype=", "the boxes, scores and classes are Python floats and ints: numpy picks "
     "float64 and int64 itself"),
    ("engine.parity.x__arrays", "reshape(-2", "numpy reads any negative size as 'the rest'"),
    ("engine.parity.x__arrays", "for r in rows], )", "the boxes, scores and classes are Python floats and ints: "
     "numpy picks float64 and int64 itself"),
    ("engine.parity.xǁRawDiffǁadd", ".astype(None)", "astype(None) is float64"),
    ("engine.parity.xǁRawDiffǁadd", "sum(dtype=None)", "a float32 array's sum is accumulated pairwise; the "
     "relative error stays far below the 1e-3 the verdict reads"),
    ("engine.parity.xǁRawDiffǁadd", "initial=None", "the slices are never empty (4 box rows, 1+ class rows)"),
    ("engine.parity.x_iou_matrix", "not len(a) and not len(b)", "with one side empty the general path gives the "
     "same empty matrix"),
    ("engine.parity.x_iou_matrix", "np.clip(", "an inverted box's intersection is 0 whatever its area, so its IoU "
     "is 0 either way"),
    ("engine.parity.x_iou_matrix", "np.where(union", "where the union is 0 the intersection is 0 too"),
    ("engine.parity.x__box_failure", "else ", "called only when one side has boxes: with no reference boxes recall "
     "passes at 1 or 2, with no candidate boxes recall fails before precision is read"),
]  # fmt: skip
SQL = re.compile(  # SQL as this project writes it: upper-case keywords, or a comparison with a parameter
    r"\b(SELECT|FROM|WHERE|INSERT|CREATE|UPDATE|ROLLBACK|AND|JOIN|GROUP BY|ORDER BY|CHECKPOINT|BEGIN|COMMIT|SET|"
    r"PRIMARY KEY|NOT NULL)\b|[<>=] \?"
)


def mutated_lines(name: str) -> tuple[str, str]:
    """The line a mutant removes and the one it adds (mutmut show's diff)."""
    shown = subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=ROOT, capture_output=True,
                           text=True).stdout.splitlines()  # fmt: skip
    old = "\n".join(line[1:] for line in shown if line.startswith("-") and not line.startswith("---"))
    new = "\n".join(line[1:] for line in shown if line.startswith("+") and not line.startswith("+++"))
    return old, new


def why_equivalent(module: str, name: str, old: str, new: str) -> str | None:
    """Why a survivor cannot matter, or None. Letter case inside SQL text, or in a column name given to SQL,
    changes nothing: DuckDB's keywords and identifiers are case-insensitive."""
    if old != new and old.lower() == new.lower():
        literals = list(re.finditer(r'"[^"]*"', new))
        changed = [m for m, was in zip(literals, re.findall(r'"[^"]*"', old)) if m.group() != was]
        # a line of SQL, or names that are a dict's values (the columns filters map to, not the filters' keys)
        if changed and (SQL.search(old) or all(new[: m.start()].rstrip().endswith(":") for m in changed)):
            return "letter case in SQL text: DuckDB reads keywords and identifiers in any case"
    for function, fragment, why in EQUIVALENT:
        line, fragment = (old, fragment[1:]) if fragment.startswith("-") else (new, fragment)
        if f"{module}.{name}".startswith(function + "__") and fragment in line:
            return why
    return None


def main() -> None:
    counts, survivors = results()
    equivalent: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    alive: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for module, names in survivors.items():
        for name in names:
            old, new = mutated_lines(f"{module}.{name}")
            why = why_equivalent(module, name, old, new)
            (equivalent[module].append((name, new.strip(), why)) if why else alive[module].append((name, new.strip())))
    lines = [
        f"`make mutate` ({time.strftime('%Y-%m-%d %H:%M')}): mutmut's mutants of each module against its in-process "
        "tests. Score: killed (a timeout counts) over the mutants checked, less those that cannot change what the "
        "code does (equivalent, each listed below with why); 'no tests': no selected test runs the mutated code; "
        "'not checked': the run ended before reaching them.",
        "",
        "| module | mutants | checked | killed | survived | equivalent | no tests | not checked | score | target |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for module, count in sorted(counts.items()):
        total = sum(count.values())
        checked = total - count["not checked"]
        killed = count["killed"] + count["timeout"]  # a mutant that hangs the tests is caught too
        same = len(equivalent[module])
        score = f"{killed / (checked - same):.1%}" if checked - same else "-"
        lines.append(f"| {module} | {total} | {checked} | {killed} | {count['survived'] - same} | {same} | "
                     f"{count['no tests']} | {count['not checked']} | {score} | "
                     f"{TARGETS.get(module, OTHER_TARGET):.0%} |")  # fmt: skip
    lines += ["", "Survivors that could matter (`mutmut show NAME` prints each):", ""]
    lines += [f"- {module}.{name}: `{new[:110]}`" for module, found in sorted(alive.items()) for name, new in found]
    lines += [] if any(alive.values()) else ["None: each survivor is killed by a test or listed below with why."]
    lines += ["", "Equivalent survivors, with why:", ""]
    lines += [f"- {module}.{name}: `{new[:90]}`: {why}" for module, found in sorted(equivalent.items())
              for name, new, why in found]  # fmt: skip
    publish(lines, "mutation.md")


if __name__ == "__main__":
    main()
