"""Opening an SQLite file: read-write, or read-only without writing beside it.

:func:`open_connection` opens and configures the connection a read-write
:class:`~._runner.Database` uses (foreign keys, page cache, ``synchronous``,
WAL); :func:`open_read_only` opens one that never writes to the file or
beside it, and says how to tell when it must be replaced. Both refuse, before
SQLite touches it, what is not a database file (a directory, a pipe) or what
this process may read but not write; the transactions run on what they open
live in ``_runner``.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from ...errors import (
    DatabaseError,
    ReadOnlyDatabaseError,
    Remedy,
    UnsupportedSQLiteError,
)
from ._errors import _SQLITE_BUSY, _SQLITE_LOCKED, _primary_code, translate_errors

__all__ = [
    "CACHE_KIB",
    "MAX_BUSY_TIMEOUT",
    "MIN_SQLITE_VERSION",
    "SYNCHRONOUS_LEVELS",
    "Fingerprint",
    "Opened",
    "open_connection",
    "open_read_only",
]

# RETURNING (used by pop_item) arrived in SQLite 3.35.
MIN_SQLITE_VERSION = (3, 35, 0)
SYNCHRONOUS_LEVELS = ("OFF", "NORMAL", "FULL", "EXTRA")
CACHE_KIB = 16 * 1024
"""SQLite page cache per connection, in KiB."""

MAX_BUSY_TIMEOUT = 2_147_483.0
"""The longest ``busy_timeout`` SQLite can honour, in seconds: it counts in
milliseconds in a C ``int``, and a longer wait would silently become none."""


def open_connection(
    path: str,
    *,
    busy_timeout: float,
    synchronous: str,
    inspect: Callable[[sqlite3.Connection], object],
) -> sqlite3.Connection:
    """Open and configure the connection a read-write :class:`Database` uses.

    The connection runs with ``isolation_level=None`` (and legacy transaction
    control, said explicitly on Python 3.12+): sqlite3 never opens a
    transaction behind our back, on any Python version. Foreign keys are on,
    the journal is WAL, and ``busy_timeout`` (seconds) bounds every lock wait.

    ``inspect`` runs first, before anything is written, and raises to refuse
    the file: switching to WAL rewrites header bytes, and a refused file
    (newer schema, foreign tables) must stay byte-identical.
    """
    if path != ":memory:" and not path.startswith("file:"):
        _check_kind(path, allow_devices=False)
        _check_writable(path)
    conn = _connect(path, path, busy_timeout, uri=False)
    try:
        with translate_errors(path, busy_timeout):
            inspect(conn)
            conn.execute("PRAGMA foreign_keys = ON")
            # SQLite's default 2 MB page cache spills a large add_items to the
            # WAL mid-transaction; 16 MB (filled only as pages are used) keeps a
            # 10,000-item call in memory (benchmarks/RESULTS.md, W5).
            conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            # Whitelisted by the caller; PRAGMA values cannot be bound.
            conn.execute(f"PRAGMA synchronous = {synchronous}")
            # Deleted cells and freed pages are zeroed, not left for a hex
            # editor (many builds default to this; not all do).
            conn.execute("PRAGMA secure_delete = ON")
            _enable_wal(conn, busy_timeout)
    except BaseException:
        conn.close()
        raise
    return conn


Fingerprint = Callable[[], object]
"""Returns something that differs once a file has changed."""
Opened = tuple[sqlite3.Connection, Fingerprint | None]
"""A fresh connection, and the fingerprint to watch if it cannot see changes."""


def open_read_only(
    path: str,
    *,
    busy_timeout: float,
    inspect: Callable[[sqlite3.Connection], object],
) -> Opened:
    """Open ``path`` so that nothing is ever written to it or beside it.

    A missing file is an error, not a new database. A WAL file whose ``-wal``
    is absent or empty holds everything in the file itself; a plain read-only
    open would still create ``-wal`` and ``-shm`` beside it, so it is opened
    ``immutable`` instead. The fingerprint returned with the connection tells
    when it must be replaced: for an immutable one, once the file changes at
    all; for any other, once the path names another file (replaced, moved).
    ``inspect`` runs before the first read and may refuse the file.
    """
    if not os.path.exists(path):
        raise DatabaseError(
            f"no database at {path!r}: a read-only repository never creates one; "
            "check the path"
        )
    _check_kind(path, allow_devices=True)
    real = os.path.realpath(path)
    try:
        immutable = _needs_immutable(path, real)
    except OSError as exc:
        raise DatabaseError(
            f"cannot read database {path!r} ({exc.strerror or exc}): check that this process "
            "may read the file"
        ) from None
    options = "mode=ro&immutable=1" if immutable else "mode=ro"
    conn = _connect(f"file:{quote(real)}?{options}", path, busy_timeout, uri=True)
    try:
        with translate_errors(path, busy_timeout):
            # Temporary tables (see _schema.inspect_read_only) stay in memory,
            # never in a file.
            conn.execute("PRAGMA temp_store = MEMORY")
            inspect(conn)
    except BaseException:
        conn.close()
        raise
    return conn, (_fingerprint(real) if immutable else _identity(real))


def _needs_immutable(path: str, real: str) -> bool:
    """Whether ``real`` is a WAL database with nothing in a ``-wal`` file beside it."""
    if not os.path.isfile(real):
        return False
    with open(real, "rb") as file:
        header = file.read(20)
    # Bytes 18 and 19 of the header are 2 in WAL mode.
    if not header.startswith(b"SQLite format 3\x00") or header[18:20] != b"\x02\x02":
        return False
    if _size(real + "-wal") <= 0:
        return True
    if os.path.exists(real + "-shm"):
        return False  # a WAL and its index: read them as any reader does
    raise DatabaseError(
        f"{path!r} has changes in its -wal file but no -shm index beside it (a copied "
        "or crashed database): reading it would mean writing that index; open it "
        "read-write once to recover it, then read it"
    )


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return -1


def _identity(real: str) -> Fingerprint:
    """Which file ``real`` names: changes when the file is replaced or moved away."""

    def identity() -> object:
        try:
            st = os.stat(real)
        except FileNotFoundError:
            return None
        return (st.st_dev, st.st_ino)

    return identity


def _fingerprint(real: str) -> Fingerprint:
    """What changes when a writer touches the file: its identity, size, time, WAL size."""

    def fingerprint() -> object:
        try:
            st = os.stat(real)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns, _size(real + "-wal"))

    return fingerprint


def _check_kind(path: str, *, allow_devices: bool) -> None:
    """Refuse what is not a database file: a directory, a pipe, a socket."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        raise DatabaseError(f"{path!r} is a directory, not a database file; name a file in it")
    if not (stat.S_ISREG(mode) or (allow_devices and stat.S_ISCHR(mode))):
        raise DatabaseError(
            f"{path!r} is not a regular file (a pipe, a socket or a device), so it cannot "
            "hold a database; name a file"
        )


def _check_writable(path: str) -> None:
    """Refuse, before SQLite opens it, a file this process may read but not write.

    SQLite would open it read-only, and, the file being in WAL mode, leave
    ``-wal`` and ``-shm`` files beside it that it cannot remove (it cannot
    checkpoint); every write would then fail anyway.
    """
    effective = os.access in os.supports_effective_ids
    for suffix in ("", "-wal", "-shm"):
        name = path + suffix
        if os.path.exists(name) and not os.access(name, os.W_OK, effective_ids=effective):
            which = f"its {suffix} file" if suffix else "it"
            raise ReadOnlyDatabaseError(
                f"database {path!r} is read-only to this process ({which}, by mode or "
                "owner), so nothing was opened or created", Remedy.OPEN_READ_ONLY
            )


def _connect(target: str, path: str, busy_timeout: float, *, uri: bool) -> sqlite3.Connection:
    if sqlite3.sqlite_version_info < MIN_SQLITE_VERSION:
        raise UnsupportedSQLiteError(
            f"sessions_dal needs SQLite {'.'.join(map(str, MIN_SQLITE_VERSION))} or newer, "
            f"but Python's sqlite3 uses SQLite {sqlite3.sqlite_version}; "
            "install a Python built against a newer SQLite"
        )
    # isolation_level=None: sqlite3 never begins a transaction by itself, and
    # the connection's own context manager commits or rolls back (in C) only
    # what we began. Said explicitly on 3.12+, where the default may change.
    options: dict[str, Any] = {"isolation_level": None}
    if sys.version_info >= (3, 12):
        options["autocommit"] = sqlite3.LEGACY_TRANSACTION_CONTROL
    with translate_errors(path, busy_timeout):
        conn: sqlite3.Connection = sqlite3.connect(
            target, timeout=busy_timeout, check_same_thread=False, uri=uri, **options
        )
    return conn


def _enable_wal(conn: sqlite3.Connection, busy_timeout: float) -> None:
    # Changing the journal mode takes an exclusive lock without consulting the
    # busy handler, so processes opening a new file together see "database is
    # locked" at once. Retry until the busy timeout, as a normal lock wait would.
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if _primary_code(exc) not in (_SQLITE_BUSY, _SQLITE_LOCKED):
                raise
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.005)
