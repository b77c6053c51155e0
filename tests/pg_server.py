"""A throwaway PostgreSQL server for the tests: started, used, stopped and removed.

``SESSIONS_DAL_TEST_DSN`` names a server to use instead (nothing is started
then). Otherwise, where Debian's server binaries are installed, a cluster is
made in a temporary folder, listening on loopback and on a socket in that
folder, with fsync off; as root it runs as the ``postgres`` user, since
PostgreSQL refuses to run as root. :func:`start` returns its URL, or why there
is none.

Run as a script it starts a server, prints ``export DATABASE_URL=...`` (the
variable the README's examples read) and ``export SESSIONS_DAL_TEST_DSN=...``
(the tests'), and waits: handy for trying the README's PostgreSQL examples, or
running the tests against one server by hand. ``kill PID`` (SIGTERM; also
``kill %1``, SIGHUP or Ctrl-C) stops the server and removes its folder.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

ENV = "SESSIONS_DAL_TEST_DSN"


def _bindir() -> str | None:
    try:
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                               check=False).stdout.strip()
    except OSError:
        found = ""
    candidates = [found] if found else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for folder in candidates:
        if os.path.exists(os.path.join(folder, "pg_ctl")):
            return folder
    return None


class Server:
    """A cluster of our own; :meth:`stop` removes every trace of it."""

    def __init__(self, bindir: str) -> None:
        self.bindir = bindir
        self.folder = Path(tempfile.mkdtemp(prefix="sessions-dal-pg-"))
        self.data = self.folder / "data"
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.folder, "postgres", "postgres")
        self.port = _free_port()
        self.user = "postgres" if self.as_root else os.environ.get("USER", "postgres")

    def run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        command = [os.path.join(self.bindir, tool), *args]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        # From the cluster's folder: postgres may not enter the caller's.
        return subprocess.run(command, cwd=self.folder, capture_output=True, text=True,
                              check=True, timeout=120, stdin=subprocess.DEVNULL)

    def start(self) -> str:
        self.run("initdb", "-D", str(self.data), "-U", self.user, "-A", "trust", "-E", "UTF8",
                 "--locale=C.UTF-8")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.folder}'\nfsync = off\n"
                "synchronous_commit = off\nfull_page_writes = off\nmax_connections = 300\n"
            )
        self.pg_ctl("start")
        self.run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
                 "sessions_test")
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/sessions_test"

    def pg_ctl(self, action: str, *options: str) -> None:
        """``pg_ctl start``/``restart``/``stop``: always with the log file, never our stdout."""
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"), "-w",
                 "-t", "60", *options, action)

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self.pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


_started: list[Server] = []


def start() -> tuple[str | None, str]:
    """A server's URL (``None`` if there is none) and where it comes from (or why not)."""
    given = os.environ.get(ENV)
    if given:
        return given, f"the server ${ENV} names"
    bindir = _bindir()
    if bindir is None:
        return None, ("no PostgreSQL server binaries (Debian: apt-get install postgresql), "
                      f"and ${ENV} is not set")
    server = Server(bindir)
    try:
        url = server.start()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        server.stop()
        detail = getattr(exc, "stderr", "") or str(exc)
        return None, f"could not start a throwaway PostgreSQL server: {detail.strip()}"
    except BaseException:  # stopped while starting (Ctrl-C, a SIGTERM): leave nothing
        server.stop()
        raise
    _started.append(server)
    atexit.register(server.stop)
    # Inherited by pytest-xdist's workers and the CLI's subprocesses: one server.
    os.environ[ENV] = url
    return url, f"a throwaway server in {server.folder}"


def restart() -> None:
    """Restart the server this process started (for the connection-loss tests)."""
    _started[0].pg_ctl("restart", "-m", "fast")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


if __name__ == "__main__":
    import signal
    import sys

    # Stopped by Ctrl-C, `kill PID` or `kill %1`, or the terminal closing, alike
    # (a shell's background job ignores SIGINT, so it is set here): the server
    # is stopped and its folder removed (atexit). The server runs in a session
    # of its own (pg_ctl's), so `kill %1`, which signals the job's process
    # group, does not reach it. A signal that arrives while the server starts
    # waits for it to be up: stopped halfway (runuser's initdb outlives a
    # killed runuser), it could leave files behind.
    starting = [True]
    stop_asked: list[int] = []

    def stop(number: int, frame: object) -> None:
        if starting[0]:
            stop_asked.append(number)
        else:
            sys.exit(0)

    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, stop)
    url, origin = start()
    starting[0] = False
    if url is None:
        raise SystemExit(origin)
    if stop_asked:
        sys.exit(0)
    print(f"export DATABASE_URL={url}\nexport {ENV}={url}\n"
          f"# {origin}; `kill {os.getpid()}` (or `kill %1`, Ctrl-C in the foreground) stops "
          "it and removes it", flush=True)
    try:
        while True:
            time.sleep(3600)
    except (KeyboardInterrupt, SystemExit):
        pass
