"""The architecture, checked: imports only point down the layers (the
import-linter contracts in pyproject.toml, run as ``lint-imports``), and no
module or function outgrows what one reader holds in mind.

docs/architecture.md describes the layers and the contracts."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "seqembed"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

# Functions allowed over MAX_FUNCTION_LINES: path:qualified name -> (at most
# this many lines, why). The test below also fails on an entry that is no
# longer needed.
LONG_FUNCTIONS = {
    "nmt/cpu/input_feeding.py:InputFeedingRecurrence.backward": (
        105,
        "a hand-written autograd backward: the derivatives over all positions, "
        "the step loops in reverse (_backward_steps) and the weight gradients, "
        "mirroring forward; split, its saved state would have to be passed "
        "around piecemeal",
    ),
}
# Modules allowed over MAX_MODULE_LINES: path -> (at most, why). "About 400"
# is the rule: a module a few lines over it stays whole rather than split.
ABOUT = "within a few lines of 400: one job, not worth two modules"
LONG_MODULES = {
    "analysis/alignment.py": (410, ABOUT),
    "nmt/model.py": (410, ABOUT),
}


def lint_imports(*config_files: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` as the developer runs it, from the repository root,
    through this interpreter (so the venv's import-linter, not another)."""
    code = "import sys; from importlinter.cli import lint_imports_command as c; c()"
    command = [sys.executable, "-c", code, "--no-cache"]
    return subprocess.run(
        command + [str(path) for path in config_files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def contract_names() -> list[str]:
    """The ``name`` of each [[tool.importlinter.contracts]] in pyproject.toml
    (read with a pattern: tomllib is Python 3.11+)."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    blocks = text.split("[[tool.importlinter.contracts]]")[1:]
    return [re.search(r'^name = "(.+)"$', block, re.M).group(1) for block in blocks]


def test_every_import_contract_is_kept():
    names = contract_names()
    assert len(names) >= 2  # the layers, and who may use the CPU kernels
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    for name in names:
        assert re.search(rf"^{re.escape(name)} KEPT", result.stdout, re.M), name
    assert f"Contracts: {len(names)} kept, 0 broken." in result.stdout


def test_an_import_against_the_layers_is_reported(tmp_path):
    # The same checker on a contract the code breaks (data above the CLI,
    # which imports it): lint-imports exits 1 and names the import.
    config = tmp_path / "upside-down.toml"
    config.write_text(
        '[tool.importlinter]\nroot_package = "seqembed"\n\n'
        "[[tool.importlinter.contracts]]\n"
        'name = "data above cli"\ntype = "layers"\n'
        'layers = ["seqembed.data", "seqembed.cli"]\n'
    )
    result = lint_imports(config)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "data above cli BROKEN" in result.stdout
    assert re.search(r"seqembed\.cli\.\S+ -> seqembed\.data\.", result.stdout)


def function_lengths(path: Path) -> dict[str, int]:
    """Lines from ``def`` to the last line of the body, by qualified name
    (``Class.method``, ``outer.inner``)."""
    lengths = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = prefix + child.name
                lengths[name] = child.end_lineno - child.lineno + 1
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")

    visit(ast.parse(path.read_text(encoding="utf-8")), "")
    return lengths


def modules() -> list[tuple[str, Path]]:
    return [
        (path.relative_to(PACKAGE).as_posix(), path)
        for path in sorted(PACKAGE.rglob("*.py"))
    ]


def over_the_limit(measured: dict[str, int], limit: int, allowed: dict) -> list[str]:
    problems = []
    for name, lines in sorted(measured.items()):
        at_most, _ = allowed.get(name, (limit, None))
        if lines > at_most:
            problems.append(f"{name}: {lines} lines (at most {at_most})")
    for name, (_, why) in allowed.items():
        if measured.get(name, 0) <= limit:
            problems.append(f"{name}: now within {limit} lines: drop it from the list")
        if not why.strip():
            problems.append(f"{name}: listed without a reason")
    return problems


def test_no_function_over_60_lines_but_those_listed():
    measured = {
        f"{module}:{name}": lines
        for module, path in modules()
        for name, lines in function_lengths(path).items()
    }
    assert "nmt/decoding.py:greedy_decode" in measured  # the walk finds them
    problems = over_the_limit(measured, MAX_FUNCTION_LINES, LONG_FUNCTIONS)
    assert not problems, "\n".join(problems)


def test_no_module_over_400_lines_but_those_listed():
    measured = {
        module: len(path.read_text(encoding="utf-8").splitlines())
        for module, path in modules()
    }
    assert "nmt/decoding.py" in measured
    problems = over_the_limit(measured, MAX_MODULE_LINES, LONG_MODULES)
    assert not problems, "\n".join(problems)
