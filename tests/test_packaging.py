"""The repository's promises about itself: one schema, one test command, working examples."""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

import sessions_dal

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_packaged_schema_is_the_root_schema() -> None:
    packaged = resources.files("sessions_dal.backends.sqlite").joinpath("schema.sql").read_text(
        encoding="utf-8")
    assert packaged == (ROOT / "schema.sql").read_text(encoding="utf-8")


def test_every_backend_has_the_same_migration_versions() -> None:
    from sessions_dal.backends.postgres._schema import MIGRATIONS as postgres
    from sessions_dal.backends.sqlite._schema import MIGRATIONS as sqlite

    assert [(m.version, m.title) for m in sqlite] == [(m.version, m.title) for m in postgres]


def test_the_core_imports_only_the_standard_library(tmp_path: Path) -> None:
    # A fresh interpreter, even where psycopg is installed: SQLite needs nothing else.
    script = (
        "import json, sys, sessions_dal\n"
        "from sessions_dal import SessionRepository\n"
        "import sessions_dal.cli, sessions_dal.transfer\n"
        f"with SessionRepository({str(tmp_path / 'x.db')!r}) as r:\n"
        "    r.create_session('a').add_items([1])\n"
        "top = {m.split('.')[0] for m in sys.modules}\n"
        "print(json.dumps(sorted(top - set(sys.stdlib_module_names) - {'sessions_dal'})))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True, cwd=tmp_path, env={**os.environ,
                                                           "PYTHONPATH": str(ROOT)})
    # "_...": __main__ and the import hooks of editable installs and setuptools;
    # "$coverage": coverage's own, when it measures subprocesses.
    outside = [m for m in json.loads(result.stdout) if not m.startswith(("_", "$", "coverage"))]
    assert outside == []


def test_public_names() -> None:
    for name in sessions_dal.__all__:
        assert getattr(sessions_dal, name) is not None
        assert name == "__version__" or getattr(sessions_dal, name).__doc__ or name.isupper()
    assert (ROOT / "sessions_dal" / "py.typed").exists()


def test_quickstart_example_writes_sessions_db_and_lists_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code = compile((ROOT / "examples" / "quickstart.py").read_text(), "quickstart.py", "exec")
    exec(code, {"__name__": "__main__"})
    exec(code, {"__name__": "__main__"})
    out = capsys.readouterr().out
    assert (tmp_path / "sessions.db").exists()
    assert "2 session(s) for alice" in out
    assert out.index("Trip plan #2") < out.rindex("Trip plan #1")  # newest first


def test_the_license_file_is_the_license_the_metadata_names() -> None:
    root = Path(__file__).resolve().parent.parent
    config = configparser.ConfigParser()
    config.read(root / "setup.cfg")
    assert config["metadata"]["license"] == "MIT"
    assert config["metadata"]["license_files"] == "LICENSE"
    assert (root / "LICENSE").read_text().startswith("MIT License\n")
