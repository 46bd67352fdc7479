"""The README's first two lines are the run and test commands, and CI runs exactly the test command."""

from __future__ import annotations

import re
import shlex
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


def test_marker_in_the_test_command_is_declared():
    from_readme = set(re.findall(r'-m "not (\w+)"', readme_lines()[1]))
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    for marker in from_readme:
        assert re.search(rf'"{marker}:', pyproject), f"marker {marker!r} is not declared in pyproject.toml"


def test_commands_documented_in_the_readme_exist():
    from core.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    documented = set(re.findall(r"main\.py ([a-z]\w*)", README.read_text(encoding="utf-8")))
    assert documented, "the README should document the commands"
    assert documented <= set(sub.choices), f"README documents unknown commands: {documented - set(sub.choices)}"
