"""A file this process may read but not write: refused at a read-write open,
readable with read_only=True, and never left with -wal/-shm files beside it."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import sessions_dal
from sessions_dal import SessionRepository
from sessions_dal.errors import ReadOnlyDatabaseError


def test_a_file_this_process_cannot_write_is_refused_before_sqlite_opens_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.db"
    with SessionRepository(path) as repo:
        repo.create_session("alice", session_id="s").add_items(["hi"])
    before = path.read_bytes()
    real_access = os.access

    def access(target: object, mode: int, **kwargs: object) -> bool:
        return mode != os.W_OK and real_access(target, mode, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "access", access)
    with pytest.raises(ReadOnlyDatabaseError, match=r"read-only to this process.*read_only=True"):
        SessionRepository(path)
    assert sorted(os.listdir(tmp_path)) == ["a.db"] and path.read_bytes() == before
    with SessionRepository(path, read_only=True) as repo:
        assert repo.get_session("alice", "s").get_items() == ["hi"]  # type: ignore[union-attr]
    assert sorted(os.listdir(tmp_path)) == ["a.db"]


AS_NOBODY = """
import os, subprocess, sys
from sessions_dal import SessionRepository
from sessions_dal.errors import ReadOnlyDatabaseError
db = sys.argv[1]
try:
    SessionRepository(db)
except ReadOnlyDatabaseError as exc:
    print("refused:", exc)
with SessionRepository(db, read_only=True) as repo:
    print("items:", repo.get_session("alice", "s").get_items())
cli = subprocess.run([sys.executable, "-m", "sessions_dal", "--db", db, "add", "alice", "s",
                      "2"], capture_output=True, text=True)
print("cli:", cli.returncode, cli.stderr.strip())
print("files:", sorted(name for name in os.listdir(".") if name.startswith(db)))
"""


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder another user may write in, holding a copy of the library."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to run a child process as another user")
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no 'nobody' user on this machine")
    folder = Path(tempfile.mkdtemp(prefix="sessions-dal-ro-"))
    try:
        folder.chmod(0o777)
        shutil.copytree(Path(sessions_dal.__file__).parent, folder / "lib" / "sessions_dal")
        (folder / "lib").chmod(0o755)
        yield folder
    finally:
        shutil.rmtree(folder)


def _python_for_nobody(folder: Path) -> str:
    for python in (sys.executable, "/usr/bin/python3"):
        try:
            probe = subprocess.run([python, "-c", "import sessions_dal"], cwd=folder,
                                   user="nobody", env={"PYTHONPATH": str(folder / "lib")},
                                   capture_output=True, check=False)
        except OSError:  # this one lives where nobody may not go (/root/.pyenv)
            continue
        if probe.returncode == 0:
            return python
    pytest.skip("no Python here that the 'nobody' user may run")


@pytest.mark.parametrize("read_only", ["the file", "its -wal"])
def test_another_users_read_only_file_gets_no_side_files(shared_folder: Path,
                                                         read_only: str) -> None:
    path = shared_folder / "a.db"
    with SessionRepository(path) as repo:
        repo.create_session("alice", session_id="s").add_items(["hi"])
    if read_only == "the file":
        path.chmod(0o444)  # root's file, which nobody may read but not write
        expected = ["a.db"]  # no -wal, no -shm
    else:
        path.chmod(0o666)  # writable, but root's empty -wal (a crashed writer's) is not
        (shared_folder / "a.db-wal").touch(mode=0o644)
        expected = ["a.db", "a.db-wal"]  # and no -shm
    before = path.read_bytes()
    python = _python_for_nobody(shared_folder)
    result = subprocess.run([python, "-c", AS_NOBODY, "a.db"], cwd=shared_folder,
                            user="nobody", env={"PYTHONPATH": str(shared_folder / "lib")},
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("refused: database ") and "read_only=True" in lines[0]
    assert lines[1] == "items: ['hi']"
    assert lines[2].startswith("cli: 1 sessions-dal: error: database ")
    assert "make it writable" in lines[2]
    assert lines[3] == f"files: {expected}"
    assert path.read_bytes() == before
