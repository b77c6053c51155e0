"""``python3 tests/pg_server.py &``, as the README has it: what it prints, and how it stops."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pg_server
import psycopg
import pytest

SCRIPT = Path(pg_server.__file__).resolve()


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP])
def test_the_script_prints_database_url_and_removes_its_server_when_killed(
    stop: signal.Signals, tmp_path: Path,
) -> None:
    if pg_server._bindir() is None:
        pytest.skip("no PostgreSQL server binaries: the script has nothing to start")
    env = {k: v for k, v in os.environ.items() if k != pg_server.ENV}
    # In a session of its own, as a shell's background job (`&`) is in a group of its own.
    with subprocess.Popen([sys.executable, str(SCRIPT)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path,
                          start_new_session=True) as script:
        try:
            assert script.stdout is not None
            lines = [script.stdout.readline() for _ in range(3)]
            first = re.fullmatch(r"export DATABASE_URL=(postgresql://\S+)\n", lines[0])
            assert first is not None, lines
            url = first.group(1)
            assert lines[1] == f"export {pg_server.ENV}={url}\n"
            folder = re.search(r"a throwaway server in (\S+);", lines[2])
            assert folder is not None and f"kill {script.pid}" in lines[2]
            with psycopg.connect(url, autocommit=True) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
            script.send_signal(stop)  # `kill PID`; `kill %1` sends SIGTERM to the job's group
            assert script.wait(60) == 0
        finally:
            if script.poll() is None:
                script.kill()
                script.wait()
    assert not Path(folder.group(1)).exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=5).close()
