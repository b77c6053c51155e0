"""The README's examples run as pasted, in a fresh folder, after its first command."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from backends import KINDS, fresh, own_database

import sessions_dal

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
# A block inside a list item is indented in the file, not when pasted.
BLOCKS = [(kind, textwrap.dedent(code))
          for kind, code in re.findall(r"```(\w+)\n(.*?)```", README, flags=re.DOTALL)]
IMPORT_ROOT = str(Path(sessions_dal.__file__).resolve().parent.parent)
BIN = Path(sys.executable).parent


def _installs(code: str) -> bool:
    return "pip install" in code


def _python_blocks() -> list[str]:
    return [code for kind, code in BLOCKS if kind == "python"]


def _shell_blocks() -> list[str]:
    return [code for kind, code in BLOCKS if kind == "sh" and not _installs(code)]


def run(cwd: Path, *args: str, stdin: str | None = None,
        extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SESSIONS_DAL_DB"}
    env["PYTHONPATH"] = IMPORT_ROOT
    env.update(extra_env or {})
    return subprocess.run(list(args), cwd=cwd, input=stdin, capture_output=True, text=True,
                          timeout=120, env=env, check=False)


@pytest.fixture
def after_first_command(tmp_path: Path) -> Path:
    """A folder where the README's first command has run: .venv is this environment."""
    if not (BIN / "sessions-dal").exists():
        pytest.skip("sessions-dal is not installed beside this Python (pip install .)")
    os.symlink(BIN.parent, tmp_path / ".venv")
    first = next(code for kind, code in BLOCKS if kind == "sh")
    # What follows the install: the part a test can run without the network.
    rest = first.split(".venv/bin/pip install -q . && ", 1)[1]
    result = run(tmp_path, "bash", "-euo", "pipefail", "-c", rest)
    assert result.returncode == 0, result.stderr
    assert "alice" in result.stdout and '{"title": "Trip"}' in result.stdout
    assert "     2  assistant: Hourly, from Roma Termini." in result.stdout
    return tmp_path


def test_the_two_first_commands_are_the_ones_ci_runs() -> None:
    first, second = (code.strip() for kind, code in BLOCKS[:2])
    assert first.startswith("python3 -m venv .venv && .venv/bin/pip install -q . && ")
    assert "sessions-dal create alice" in first and "sessions-dal show" in first
    assert "sessions-dal add alice" in first  # what it shows has items
    assert second == (
        "python3 -m venv .venv && .venv/bin/pip install -q '.[test,agents]' && "
        ".venv/bin/python -m pytest")
    assert second in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert README.index(second) < 1500  # on the first screen


def test_every_shell_example_runs_as_pasted(after_first_command: Path) -> None:
    blocks = _shell_blocks()
    assert blocks, "the README has runnable shell examples"
    for code in blocks:
        result = run(after_first_command, "bash", "-euo", "pipefail", "-c", code)
        assert result.returncode == 0, f"{code}\n{result.stderr}"
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize("number", range(len(_python_blocks())))
def test_every_python_example_runs_as_pasted(tmp_path: Path, number: int) -> None:
    code = _python_blocks()[number]
    if "from agents" in code and importlib.util.find_spec("agents") is None:
        pytest.skip("needs the agents extra (pip install '.[agents]')")
    with contextlib.ExitStack() as stack:
        env = {}
        if "DATABASE_URL" in code:  # the PostgreSQL examples: a schema of their own
            if "postgresql" not in KINDS:
                pytest.skip("needs a PostgreSQL server (see tests/pg_server.py)")
            if "SQLAlchemySession" in code:  # asyncpg's URL takes no schema: a database
                if importlib.util.find_spec("asyncpg") is None:
                    pytest.skip("needs openai-agents' sqlalchemy extra")
                env["DATABASE_URL"] = stack.enter_context(own_database())
            else:
                env["DATABASE_URL"] = stack.enter_context(fresh("postgresql")).target
        result = run(tmp_path, sys.executable, "-", stdin=code, extra_env=env)
    assert result.returncode == 0, f"{code}\n{result.stderr}"
