"""The README's first two lines are the run and test commands, and CI runs exactly the test command."""

from __future__ import annotations

import ast
import re
import shlex
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CI_RUN = ROOT / ".ci" / "run"


def readme_lines() -> list[str]:
    return README.read_text(encoding="utf-8").splitlines()


def test_first_two_lines_are_the_run_and_test_commands():
    first, second, third = readme_lines()[:3]
    assert first == "bash scripts/setup.sh && .venv/bin/python main.py"
    assert second.startswith("bash scripts/setup.sh && .venv/bin/python -m pytest"), second
    assert third.strip() == "", "the two commands should be followed by a blank line"
    shlex.split(second)  # well-formed shell quoting


def test_ci_runs_the_readme_test_command_verbatim():
    command = readme_lines()[1]
    ci = CI_RUN.read_text(encoding="utf-8")
    code = [ln.strip() for ln in ci.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert command in code, f".ci/run must contain the README's test command verbatim:\n{command}"
    assert "set -euo pipefail" in code
    assert code[-1] == command, "the test command must be the last thing .ci/run does (its exit status is CI's)"
    # nothing may turn a pytest failure (or exit status 5, no tests collected) into success
    assert not re.search(r"\|\|\s*(true|:|exit 0)|; *true\b|--suppress-no-test-exit-code", ci)


def test_ci_script_is_bash_and_goes_to_the_repo_root():
    ci = CI_RUN.read_text(encoding="utf-8")
    assert ci.startswith("#!/usr/bin/env bash\n")
    assert 'cd "$(dirname "${BASH_SOURCE[0]}")/.."' in ci


def test_scripts_named_in_the_commands_exist():
    assert (ROOT / "scripts" / "setup.sh").is_file()
    assert (ROOT / "main.py").is_file()


def _test_functions() -> list[tuple[str, str, bool, bool]]:
    """(module, test name, marked slow, reads ../shared/data) for every test function under tests/, read
    statically: a test reads real data when it, a fixture it asks for by name (in its module or a conftest)
    or a function of its module that it calls, recursively, calls ``shared_path`` or uses ``shared_data`` /
    ``SHARED_DATA``."""
    real_names = {"shared_path", "shared_data", "SHARED_DATA"}
    conftest_fixtures: dict[str, ast.FunctionDef] = {}
    modules = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
        if path.name == "conftest.py":
            conftest_fixtures.update(functions)
        elif path.name.startswith("test_"):
            modules.append((path, tree, functions))

    def reads_real_data(fn: ast.FunctionDef, functions: dict, seen: set[str]) -> bool:
        if any(isinstance(n, ast.Name) and n.id in real_names for n in ast.walk(fn)):
            return True
        called = [n.func.id for n in ast.walk(fn) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
        for name in [a.arg for a in fn.args.args] + called:
            dep = functions.get(name) or conftest_fixtures.get(name)
            if dep is not None and name not in seen and reads_real_data(dep, functions, seen | {name}):
                return True
        return False

    def slow(decorators: list[ast.expr]) -> bool:
        return any("mark.slow" in ast.unparse(d) for d in decorators)

    out = []
    for path, tree, functions in modules:
        module_slow = any(isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in n.targets)
                          and "mark.slow" in ast.unparse(n.value) for n in tree.body)
        scopes = [(tree.body, module_slow)] + [(c.body, module_slow or slow(c.decorator_list))
                                               for c in tree.body if isinstance(c, ast.ClassDef)]
        for body, scope_slow in scopes:
            for fn in body:
                if isinstance(fn, ast.FunctionDef) and fn.name.startswith("test_"):
                    out.append((str(path.relative_to(ROOT)), fn.name, scope_slow or slow(fn.decorator_list),
                                reads_real_data(fn, functions, {fn.name})))
    return out


def test_the_test_commands_marker_is_declared_and_real():
    """The README's test command deselects ``slow`` (declared in pyproject.toml), and as the README's
    marker policy says: some tests carry it (or the command would deselect nothing), and every test module
    that reads real data keeps at least one real-data test unmarked, so CI still runs each on real files."""
    from_readme = re.findall(r'-m "not (\w+)"', readme_lines()[1])
    assert from_readme == ["slow"], f"the README's test command should deselect the slow tests: {readme_lines()[1]}"
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"]["ini_options"]
    assert any(m.split(":")[0].strip() == "slow" for m in declared["markers"]), declared["markers"]

    tests = _test_functions()
    assert len(tests) > 100, "the static scan of tests/ found too few tests to be right"
    marked = [f"{m}::{n}" for m, n, is_slow, _ in tests if is_slow]
    assert marked, "no test is marked slow: the README's `-m \"not slow\"` deselects nothing"
    real_modules = {m for m, _, _, real in tests if real}
    assert len(real_modules) >= 5, f"too few modules read real data to be right: {sorted(real_modules)}"
    unmarked_real = {m for m, _, is_slow, real in tests if real and not is_slow}
    assert real_modules <= unmarked_real, ("every real-data test of these modules is marked slow; keep a quick "
                                           f"one unmarked: {sorted(real_modules - unmarked_real)}")


def test_commands_documented_in_the_readme_exist():
    from core.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    documented = set(re.findall(r"main\.py ([a-z]\w*)", README.read_text(encoding="utf-8")))
    assert documented, "the README should document the commands"
    assert documented <= set(sub.choices), f"README documents unknown commands: {documented - set(sub.choices)}"
