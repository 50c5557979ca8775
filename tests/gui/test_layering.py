"""The import rule, checked by parsing imports (ast): gui -> core, never back; views stay apart.

* ``gui/widgets/*`` never import ``gui.workers``, ``gui.main_window``, the
  controllers that own threads (``gui.weights_flow``, ``gui.app``) or another
  widget module: views talk through signals and the main window wires them.
* ``core`` never imports ``gui``, PySide6 or pyqtgraph.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WIDGETS = sorted((ROOT / "gui" / "widgets").glob("*.py"))
FORBIDDEN_FOR_WIDGETS = ("gui.workers", "gui.main_window", "gui.weights_flow", "gui.app", "gui.status")


def imported_modules(path: Path, package: str | None = None) -> set[str]:
    """Every module ``path`` imports, absolute names (relative imports resolved against its package)."""
    package = package or ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def _hits(names: set[str], prefix: str) -> list[str]:
    return sorted(n for n in names if n == prefix or n.startswith(prefix + "."))


def test_there_are_widgets_to_check():
    assert {p.stem for p in WIDGETS} >= {"gallery", "predictions", "model_picker", "download_dialog", "banner"}


@pytest.mark.parametrize("path", WIDGETS, ids=lambda p: p.name)
def test_widgets_import_no_workers_window_or_other_widgets(path: Path):
    names = imported_modules(path)
    for forbidden in FORBIDDEN_FOR_WIDGETS:
        assert not _hits(names, forbidden), f"{path.name} imports {_hits(names, forbidden)}"
    others = {f"gui.widgets.{p.stem}" for p in WIDGETS if p != path and p.stem != "__init__"}
    crossing = sorted(n for n in names for other in others if n == other or n.startswith(other + "."))
    assert not crossing, f"{path.name} imports another view's module: {crossing}"


@pytest.mark.parametrize("path", sorted((ROOT / "core").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_never_imports_qt_or_gui(path: Path):
    names = imported_modules(path)
    for forbidden in ("gui", "PySide6", "pyqtgraph", "shiboken6"):
        assert not _hits(names, forbidden), f"{path.relative_to(ROOT)} imports {_hits(names, forbidden)}"


def test_the_checker_sees_relative_and_nested_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from ..workers import Job\nfrom . import gallery\n"
                      "def f():\n    import gui.main_window\n", encoding="utf-8")
    names = imported_modules(sample, "gui.widgets")
    assert _hits(names, "gui.workers") and _hits(names, "gui.main_window") and _hits(names, "gui.widgets.gallery")
