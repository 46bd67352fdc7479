"""The layout's import rules (DESIGN.md section 2), checked on the source with the ast module.

- ``core`` never imports Qt (PySide6, PyQt*, qtpy, superqt, pyqtgraph) nor ``app`` / ``widgets``,
  anywhere in a file (lazy imports inside functions count too);
- ``widgets`` never import torch, gsplat, numba or ``app``;
- package ``__init__`` files under core/, app/ and widgets/ import none of torch, gsplat, numba,
  moderngl when the package is imported (imports inside functions and ``if TYPE_CHECKING:`` are fine).

The checker is tested on synthetic sources first, so these tests cannot pass vacuously.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

QT = {"PySide6", "PySide2", "qtpy", "superqt", "pyqtgraph", "shiboken6"}
QT_PREFIXES = ("PyQt",)
HEAVY = {"torch", "gsplat", "numba", "moderngl"}

CORE_FORBIDDEN = (QT | {"app", "widgets"}, QT_PREFIXES)
WIDGETS_FORBIDDEN = ({"torch", "gsplat", "numba", "app"}, ())
INIT_FORBIDDEN = (HEAVY, ())


# -- the checker --------------------------------------------------------------------------------------
def module_package(path: Path, root: Path = ROOT) -> str:
    """The dotted package a source file belongs to (for resolving relative imports)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts if parts[-1] == "__init__" and parts.pop() is not None else parts[:-1])


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(node: ast.AST, module_level_only: bool):
    """ast.walk, optionally not descending into code that does not run at import time."""
    for child in ast.iter_child_nodes(node):
        if module_level_only:
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for other in child.orelse:
                    yield other
                    yield from _walk(other, module_level_only)
                continue
        yield child
        yield from _walk(child, module_level_only)


def imported_modules(source: str, package: str = "", module_level_only: bool = False) -> list[tuple[str, int]]:
    """(absolute module name, line) for every import in ``source``.

    Covers ``import a.b``, ``from a.b import c`` (also ``a.b.c``, which may be a module), relative
    imports resolved against ``package``, and ``importlib.import_module("x")`` / ``__import__("x")``
    with a constant name.
    """
    found: list[tuple[str, int]] = []
    for node in _walk(ast.parse(source), module_level_only):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: max(0, len(base) - node.level + 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod:
                found.append((mod, node.lineno))
            found += [(f"{mod}.{alias.name}" if mod else alias.name, node.lineno)
                      for alias in node.names if alias.name != "*"]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name in ("import_module", "__import__"):
                found.append((node.args[0].value, node.lineno))
    return found


def violations(source: str, forbidden: tuple[set[str], tuple[str, ...]], package: str = "",
               module_level_only: bool = False, label: str = "<string>") -> list[str]:
    """Messages ``label:line imports NAME`` for each import whose top-level name is forbidden."""
    names, prefixes = forbidden
    hits = set()
    for mod, line in imported_modules(source, package, module_level_only):
        top = mod.split(".")[0]
        if top in names or any(top.startswith(p) for p in prefixes):
            hits.add((line, mod))
    return [f"{label}:{line} imports {mod}" for line, mod in sorted(hits)]


def check_tree(folder: str, forbidden, module_level_only: bool = False, only_inits: bool = False) -> tuple[int, list[str]]:
    """(number of files checked, violations) for every .py file under ``ROOT/folder``."""
    files = sorted((ROOT / folder).rglob("__init__.py" if only_inits else "*.py"))
    files = [f for f in files if "__pycache__" not in f.parts]
    found: list[str] = []
    for f in files:
        found += violations(f.read_text(encoding="utf-8"), forbidden, module_package(f), module_level_only,
                            str(f.relative_to(ROOT)))
    return len(files), found


# -- the checker catches what it should ------------------------------------------------------------------
def test_checker_flags_forbidden_imports_in_every_form():
    src = textwrap.dedent("""
        import os
        import PySide6.QtCore
        from PyQt5 import QtWidgets
        from app.main_window import MainWindow
        import importlib
        def later():
            import pyqtgraph as pg
            importlib.import_module("qtpy")
        class Panel:
            from superqt import QRangeSlider
    """)
    found = violations(src, CORE_FORBIDDEN, package="core")
    assert found == ["<string>:3 imports PySide6.QtCore", "<string>:4 imports PyQt5",
                     "<string>:4 imports PyQt5.QtWidgets", "<string>:5 imports app.main_window",
                     "<string>:5 imports app.main_window.MainWindow", "<string>:8 imports pyqtgraph",
                     "<string>:9 imports qtpy", "<string>:11 imports superqt",
                     "<string>:11 imports superqt.QRangeSlider"]


def test_checker_resolves_relative_imports_and_ignores_lookalikes():
    assert imported_modules("from ..render import api\nfrom . import ply\n", package="core.io") == [
        ("core.render", 1), ("core.render.api", 1), ("core.io", 2), ("core.io.ply", 2)]
    # widgets/panels/x.py: `from .. import app` is widgets.app (fine), `from ... import app` the app package
    assert violations("from .. import app\n", WIDGETS_FORBIDDEN, package="widgets.panels") == []
    assert violations("from ... import app\n", WIDGETS_FORBIDDEN, package="widgets.panels") == [
        "<string>:1 imports app"]
    assert violations("from . import app_state\nimport apple\nimport torchvision_like\n",
                      WIDGETS_FORBIDDEN, package="widgets") == []
    assert violations("from .render import torch_backend\n", INIT_FORBIDDEN, package="core") == []
    assert violations("import torch\n", WIDGETS_FORBIDDEN, package="widgets") == ["<string>:1 imports torch"]


def test_module_level_mode_allows_lazy_and_type_checking_imports_only():
    src = textwrap.dedent("""
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            import torch
        else:
            import numba
        def render():
            import gsplat
        try:
            import moderngl
        except ImportError:
            pass
    """)
    assert violations(src, INIT_FORBIDDEN, module_level_only=True) == [
        "<string>:6 imports numba", "<string>:10 imports moderngl"]
    assert len(violations(src, INIT_FORBIDDEN)) == 4


def test_module_package():
    assert module_package(ROOT / "core" / "io" / "ply.py") == "core.io"
    assert module_package(ROOT / "core" / "io" / "__init__.py") == "core.io"
    assert module_package(ROOT / "widgets" / "__init__.py") == "widgets"


# -- the rules on the real tree ---------------------------------------------------------------------------
def test_core_never_imports_qt_app_or_widgets():
    n, found = check_tree("core", CORE_FORBIDDEN)
    assert n >= 4, "core/ should hold the scene, camera, errors and metrics modules at least"
    assert not found, "core must stay Qt-free and independent of app/widgets:\n" + "\n".join(found)


def test_widgets_never_import_torch_gsplat_numba_or_app():
    n, found = check_tree("widgets", WIDGETS_FORBIDDEN)
    assert n >= 1
    assert not found, "widgets show numpy arrays and plain records:\n" + "\n".join(found)


@pytest.mark.parametrize("folder", ["core", "app", "widgets"])
def test_package_inits_import_no_heavy_modules(folder):
    n, found = check_tree(folder, INIT_FORBIDDEN, module_level_only=True, only_inits=True)
    assert n >= 1
    assert not found, "keep torch/gsplat/numba/moderngl out of package __init__ files:\n" + "\n".join(found)


# -- and at run time ------------------------------------------------------------------------------------------
def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_importing_scene_and_camera_never_touches_qt():
    # A meta-path finder records every attempt to import a Qt module, even one that is not installed.
    proc = _run("""
        import sys
        attempts = []
        class Spy:
            def find_spec(self, name, path=None, target=None):
                top = name.split(".")[0]
                if top in {"PySide6", "PySide2", "qtpy", "superqt", "pyqtgraph"} or top.startswith("PyQt"):
                    attempts.append(name)
                return None
        sys.meta_path.insert(0, Spy())
        import core.scene, core.camera
        assert 'PySide6' not in sys.modules, 'PySide6 was imported'
        assert not attempts, f'Qt imports attempted: {attempts}'
        print('ok')
    """)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_importing_top_level_packages_loads_no_heavy_modules():
    proc = _run("""
        import sys
        import core, app, widgets
        heavy = sorted(m for m in ("torch", "gsplat", "numba", "moderngl") if m in sys.modules)
        assert not heavy, f'importing core/app/widgets loaded {heavy}'
        print('ok')
    """)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
