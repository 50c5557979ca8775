"""The import rules, checked by parsing the sources (ast), plus one run-time check.

* ``core`` never imports ``gui``, Qt or pyqtgraph (and importing all of it loads no Qt).
* ``gui/widgets/*`` never import ``gui.workers``, ``gui.main_window``, the controllers that own
  threads (``gui.weights_flow``, ``gui.app``, ``gui.status``) or another widget module: views talk
  through signals and the main window wires them.
* No import cycles among the modules of ``core`` and ``gui``, counting the imports inside functions
  (an import moved into a function hides a cycle, it does not remove it).
* An import inside a function says why, in a comment on its line or the line above (``# lazy: ...``).

The same layer rules are import-linter contracts in pyproject.toml (``lint-imports``); these tests
keep them in the suite for a checkout without import-linter.
"""

from __future__ import annotations

import ast
import io
import re
import subprocess
import sys
import tokenize
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "gui")
QT_OR_GUI = ("gui", "PySide6", "PyQt5", "PyQt6", "shiboken6", "pyqtgraph")
FORBIDDEN_FOR_WIDGETS = ("gui.workers", "gui.main_window", "gui.weights_flow", "gui.app", "gui.status")
WIDGETS = sorted((ROOT / "gui" / "widgets").glob("*.py"))


@dataclass(frozen=True)
class Import:
    target: str  # absolute dotted name as written (``from a import b`` gives ``a`` and ``a.b``)
    line: int
    end_line: int
    in_function: bool
    type_checking: bool  # under ``if TYPE_CHECKING:``: never runs


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_files() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def imports(path: Path, package: str | None = None) -> list[Import]:
    """Every import statement of ``path`` with absolute names (relative ones resolved against ``package``)."""
    if package is None:
        name = module_name(path) if path.is_relative_to(ROOT) else ""
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool, type_checking: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for target in _targets(child, package):
                    found.append(Import(target, child.lineno, child.end_lineno or child.lineno, in_function,
                                        type_checking))
            function = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            guarded = type_checking or (isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test))
            visit(child, function, guarded)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), False, False)
    return found


def _targets(node: ast.Import | ast.ImportFrom, package: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = package.split(".")[: len(package.split(".")) - node.level + 1]
        module = ".".join(base + ([node.module] if node.module else []))
    else:
        module = node.module or ""
    return [module] + [f"{module}.{alias.name}" for alias in node.names if alias.name != "*"]


def _hits(names: set[str], prefix: str) -> list[str]:
    return sorted(n for n in names if n == prefix or n.startswith(prefix + "."))


@cache
def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of core/gui it imports at run time (module level or inside functions)."""
    files = {module_name(p): p for p in source_files()}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        edges = set()
        for imp in imports(path):
            if imp.type_checking:
                continue
            target = imp.target
            while target and target not in files:  # ``from a import b``: b is a module or a name in a
                target = target.rpartition(".")[0]
            if target and target != name:
                edges.add(target)
        graph[name] = edges
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph) + 100))
    try:
        for node in sorted(graph):
            if node not in index:
                connect(node)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(cycles)


def _comments(path: Path) -> dict[int, str]:
    """Line number -> the text of the comment on it (tokenize: a '#' inside a string is no comment)."""
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
    return {tok.start[0]: tok.string for tok in tokens if tok.type == tokenize.COMMENT}


def _is_reason(comment: str | None) -> bool:
    """A comment that says something beyond a bare ``# noqa: CODE`` (ruff's --add-noqa writes those)."""
    if not comment:
        return False
    text = re.sub(r"noqa(:\s*[A-Z]+\d+(\s*,\s*[A-Z]+\d+)*)?", "", comment.lstrip("#")).strip(" -:#")
    return len(re.findall(r"\w", text)) >= 3


def unexplained_function_imports(path: Path) -> list[int]:
    """Lines of imports inside functions with no reason on their line or in the comment lines above them.

    Consecutive import lines share the comment above the first one."""
    lines = path.read_text(encoding="utf-8").splitlines()
    comments = _comments(path)
    import_lines = {line for imp in imports(path) for line in range(imp.line, imp.end_line + 1)}
    missing = []
    for imp in {i for i in imports(path) if i.in_function and not i.type_checking}:
        if any(_is_reason(comments.get(n)) for n in range(imp.line, imp.end_line + 1)):
            continue
        above = imp.line - 1
        while above in import_lines or (above > 0 and not lines[above - 1].strip()):
            above -= 1  # past the block of imports this one belongs to (and blank lines)
        while above > 0 and lines[above - 1].strip().startswith("#"):
            if _is_reason(comments.get(above)):
                break
            above -= 1
        else:
            missing.append(imp.line)
    return sorted(set(missing))


# -- core stays headless ------------------------------------------------------------------------------


def test_core_sources_never_import_qt_or_gui() -> None:
    offenders = {}
    for path in (ROOT / "core").rglob("*.py"):
        names = {imp.target for imp in imports(path)}
        bad = [hit for forbidden in QT_OR_GUI for hit in _hits(names, forbidden)]
        if bad:
            offenders[str(path.relative_to(ROOT))] = bad
    assert offenders == {}


@pytest.mark.slow  # a child interpreter (~4 s); the fast lane has the import-linter contract "core is headless"
@pytest.mark.subprocess
def test_importing_the_whole_core_loads_no_qt() -> None:
    modules = [module_name(p) for p in (ROOT / "core").rglob("*.py") if p.name != "__init__.py"]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {QT_OR_GUI!r}]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


TORCH_FREE = ("core.quick", "core.fastprep", "core.prediction")  # the ONNX Runtime route runs before torch loads


def reached_from(graph: dict[str, set[str]], start: str) -> set[str]:
    """``start`` and every module of core/gui it imports, directly or through others (functions included)."""
    seen, todo = set(), [start]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(graph.get(module, ()))
    return seen


@pytest.mark.parametrize("start", TORCH_FREE)
def test_the_onnx_runtime_route_never_imports_torch(start: str) -> None:
    files = {module_name(p): p for p in source_files()}
    reached = reached_from(import_graph(), start)
    offenders = {m: bad for m in sorted(reached) if (bad := [hit for forbidden in ("torch", "torchvision")
                                                          for hit in _hits({i.target for i in imports(files[m])
                                                                            if not i.type_checking}, forbidden)])}
    assert offenders == {}, f"{start} reaches torch through: {offenders}"
    assert "core.zoo" not in reached and "core.inference" not in reached


def test_the_torch_check_sees_torch_through_core() -> None:
    assert "core.zoo" in reached_from(import_graph(), "core.onnx_cpu")


# -- views stay apart ---------------------------------------------------------------------------------


def test_there_are_widgets_to_check() -> None:
    assert {p.stem for p in WIDGETS} >= {"gallery", "predictions", "model_picker", "download_dialog", "banner"}


@pytest.mark.parametrize("path", WIDGETS, ids=lambda p: p.name)
def test_widgets_import_no_workers_window_or_other_widgets(path: Path) -> None:
    names = {imp.target for imp in imports(path)}
    for forbidden in FORBIDDEN_FOR_WIDGETS:
        assert not _hits(names, forbidden), f"{path.name} imports {_hits(names, forbidden)}"
    others = {f"gui.widgets.{p.stem}" for p in WIDGETS if p != path and p.stem != "__init__"}
    crossing = sorted(n for n in names for other in others if n == other or n.startswith(other + "."))
    assert not crossing, f"{path.name} imports another view's module: {crossing}"


# -- no cycles, no unexplained lazy imports ------------------------------------------------------------


def test_no_import_cycles_in_core_or_gui() -> None:
    cycles = import_cycles(import_graph())
    assert not cycles, "import cycles (counting imports inside functions):\n" + "\n".join(
        " <-> ".join(cycle) for cycle in cycles)


def test_every_import_inside_a_function_says_why() -> None:
    missing = {str(p.relative_to(ROOT)): lines for p in source_files() if (lines := unexplained_function_imports(p))}
    count = sum(len(lines) for lines in missing.values())
    assert not missing, (f"{count} imports inside functions without a reason comment (same line or the line above, "
                         f"e.g. '# lazy: torch costs 2 s before the first paint'):\n"
                         + "\n".join(f"{path}: lines {lines}" for path, lines in sorted(missing.items())))


# -- the checkers themselves ---------------------------------------------------------------------------


def test_the_checker_sees_relative_nested_and_guarded_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from typing import TYPE_CHECKING\nfrom ..workers import Job\nfrom . import gallery\n"
                      "if TYPE_CHECKING:\n    import gui.status\n"
                      "def f():\n    import gui.main_window\n", encoding="utf-8")
    found = {imp.target: imp for imp in imports(sample, "gui.widgets")}
    assert {"gui.workers", "gui.workers.Job", "gui.widgets.gallery", "gui.main_window"} <= set(found)
    assert found["gui.main_window"].in_function and not found["gui.workers"].in_function
    assert found["gui.status"].type_checking


def test_the_cycle_finder_finds_cycles_and_only_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"d"}, "f": {"g"}, "g": {"f"}}
    assert import_cycles(graph) == [["a", "b", "c"], ["f", "g"]]


def test_the_reason_checker_wants_words_not_bare_noqa(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def explained():\n"
        "    # lazy: torch costs 2 s before the first paint\n"
        "    import torch\n"
        "    import torchvision  # noqa: PLC0415\n"
        "    return torch, torchvision\n"
        "def same_line():\n"
        "    import json  # noqa: PLC0415 - optional extra\n"
        "def bare():\n"
        "    import csv  # noqa: PLC0415\n"
        "def none():\n"
        "    x = 1\n"
        "    import os\n", encoding="utf-8")
    assert unexplained_function_imports(sample) == [9, 12]
