"""The layout's import rules (DESIGN.md section 2).

The layers and the forbidden imports (core never imports Qt, app or widgets; widgets never import torch,
gsplat, numba, moderngl or app) are declared as import-linter contracts in ``pyproject.toml``
(``[tool.importlinter]``) and checked here by running ``lint-imports``, lazy imports inside functions
included. First on a small synthetic tree that breaks each kind of contract, so that this check cannot
pass vacuously; then on the real tree. What no static tool sees is checked at run time: importing all of
core loads no Qt, and importing the top-level packages loads no heavy module.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path, config: Path | None = None, extra_path: Path | None = None) -> subprocess.CompletedProcess:
    if not LINT_IMPORTS.exists():
        pytest.fail(f"{LINT_IMPORTS} missing: run scripts/setup.sh (import-linter is a test dependency)")
    cmd = [str(LINT_IMPORTS), "--no-cache"] + ([str(config)] if config else [])
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(extra_path or cwd)}
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))


def _synthetic_tree(tmp_path: Path, violation: dict[str, str]) -> Path:
    """A tree with the real packages' names and every core layer of pyproject.toml (empty modules), the real
    contracts, plus ``violation`` (extra files); returns the config path."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in config["contracts"] if c["type"] == "layers")["layers"]
    files = {"app/__init__.py": "", "widgets/__init__.py": "", "core/__init__.py": "",
             # the declared exception: must stay allowed
             "core/io/scene_files.py": "import core.codec\nimport core.codec.ngs\n", "core/codec/ngs.py": ""}
    for layer in layers:
        for name in layer.replace("|", " ").replace(":", " ").split():
            files.setdefault(f"core/{name}/__init__.py", "")
    for fake in ("torch", "PySide6", "pyqtgraph", "numba", "gsplat", "moderngl"):  # stand-ins for the externals
        files[f"ext/{fake}/__init__.py"] = ""
    files.update(violation)
    _write(tmp_path, files)
    cfg = tmp_path / "pyproject.toml"
    shutil.copy(ROOT / "pyproject.toml", cfg)
    return cfg


@pytest.mark.parametrize("violation, broken", [
    ({}, None),
    ({"core/scene/x.py": "def f():\n    import core.pipeline\n"}, "core is layered"),  # lazy, upwards
    ({"core/render/x.py": "import core.display\n"}, "core is layered"),  # independent siblings
    ({"core/errors/x.py": "import core.scene\n"}, "core is layered"),
    ({"core/metrics/x.py": "from PySide6 import QtCore\n"}, "core never imports Qt"),
    ({"core/cli/x.py": "import app\n"}, "core never imports Qt"),
    ({"widgets/x.py": "def f():\n    import torch\n"}, "widgets never import torch"),
    ({"widgets/y.py": "import app\n"}, "widgets never import torch"),
])
def test_contracts_catch_each_kind_of_violation(tmp_path, violation, broken):
    cfg = _synthetic_tree(tmp_path, violation)
    proc = _lint(tmp_path, cfg, extra_path=Path(f"{tmp_path}:{tmp_path / 'ext'}"))
    out = proc.stdout + proc.stderr
    if broken is None:
        assert proc.returncode == 0, out
        assert "Contracts: 3 kept, 0 broken" in out
    else:
        assert proc.returncode != 0 and "Contracts: 2 kept, 1 broken" in out, out
        assert out.split("Broken contracts")[1].split("\n", 3)[3].startswith(broken), out  # the one that broke


def test_the_real_tree_keeps_every_contract():
    proc = _lint(ROOT, extra_path=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Contracts: 3 kept, 0 broken" in proc.stdout


# -- at run time ---------------------------------------------------------------------------------------------
def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_importing_all_of_core_never_touches_qt():
    # A meta-path finder records every attempt to import a Qt module, even one that is not installed.
    proc = _run("""
        import importlib, pkgutil, sys
        attempts = []
        class Spy:
            def find_spec(self, name, path=None, target=None):
                top = name.split(".")[0]
                if top in {"PySide6", "PySide2", "qtpy", "superqt", "pyqtgraph"} or top.startswith("PyQt"):
                    attempts.append(name)
                return None
        sys.meta_path.insert(0, Spy())
        import core
        names = [m.name for m in pkgutil.walk_packages(core.__path__, "core.")]
        for name in names:
            importlib.import_module(name)
        assert 'PySide6' not in sys.modules, 'PySide6 was imported'
        assert not attempts, f'Qt imports attempted: {attempts}'
        print(len(names))
    """)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.strip()) >= 60, "every core module should have been imported"


def test_importing_top_level_packages_loads_no_heavy_modules():
    proc = _run("""
        import sys
        import core, app, widgets
        heavy = sorted(m for m in ("torch", "gsplat", "numba", "moderngl") if m in sys.modules)
        assert not heavy, f'importing core/app/widgets loaded {heavy}'
        print('ok')
    """)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


# -- inside the codec ----------------------------------------------------------------------------------------
def _codec_imports() -> dict[str, list[tuple[str, str]]]:
    """module -> [(imported core.codec module, name or "")] of every import in core/codec, lazy ones included."""
    import ast

    out: dict[str, list[tuple[str, str]]] = {}
    for path in sorted((ROOT / "core" / "codec").glob("*.py")):
        mod = "core.codec" if path.stem == "__init__" else f"core.codec.{path.stem}"
        edges = out.setdefault(mod, [])
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("core.codec"):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"  # "from core.codec import ngs_format" imports a module
                    is_module = (ROOT / (sub.replace(".", "/") + ".py")).exists()
                    edges.append((sub, "") if is_module else (node.module, alias.name))
            elif isinstance(node, ast.Import):
                edges += [(a.name, "") for a in node.names if a.name.startswith("core.codec")]
    return out


def test_codec_modules_import_no_cycle_and_no_private_name():
    imports = _codec_imports()
    assert "core.codec.ngs_format" in imports and "core.codec.ngs_v2" in imports
    private = [f"{m} imports {name} from {src}" for m, edges in imports.items() for src, name in edges
               if name.startswith("_") and src != m]
    assert not private, private
    graph = {m: {src for src, _ in edges if src != m and src != "core.codec"} for m, edges in imports.items()}
    done: set[str] = set()

    def visit(m: str, stack: list[str]) -> None:
        assert m not in stack, "import cycle: " + " -> ".join(stack[stack.index(m):] + [m])
        if m not in done:
            for dep in sorted(graph.get(m, ())):
                visit(dep, stack + [m])
            done.add(m)

    for m in sorted(graph):
        visit(m, [])
