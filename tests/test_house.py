"""The house rules that keep the code easy to change: a short orchestrator, short functions."""

import ast

from tests.conftest import ROOT

MAX_FUNCTION_LINES = 60
MAX_ORCHESTRATOR_LINES = 250
ARGUMENT_PARSER = ("engine/__main__.py", "build_parser")  # a list of options, read top to bottom


def test_the_orchestrator_only_sequences_the_stages():
    lines = (ROOT / "engine" / "runner.py").read_text().count("\n")
    assert lines <= MAX_ORCHESTRATOR_LINES, f"engine/runner.py has {lines} lines: move a stage into its module"


def test_no_function_is_longer_than_sixty_lines():
    long = []
    for folder in ("engine", "dashboard", "pages"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = str(path.relative_to(ROOT))
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (name, node.name) != ARGUMENT_PARSER:
                    length = node.end_lineno - node.lineno + 1
                    if length > MAX_FUNCTION_LINES:
                        long.append(f"{name}:{node.lineno} {node.name} ({length} lines)")
    assert not long, long
