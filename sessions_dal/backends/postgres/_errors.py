"""psycopg's errors translated into the library's, here and nowhere else.

A pool timeout, a lock or a deadlock, a read-only server, a missing right, a
full disk, a lost connection: each becomes its
:class:`~sessions_dal.errors.DatabaseError`, with a message that says what to
do and never the URL's password. An interrupt psycopg turned into an error is
raised as the interrupt.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import PoolTimeout

from ...errors import (
    DatabaseError,
    DatabaseLockedError,
    DatabaseUnavailableError,
    DiskFullError,
    ReadOnlyDatabaseError,
)

__all__ = ["translate_errors"]


@contextmanager
def translate_errors(path: str, busy_timeout: float, wait: float | None = None
                     ) -> Iterator[None]:
    """Re-raise psycopg's errors as the library's (``wait``: for a pooled connection)."""
    try:
        yield
    except PoolTimeout as exc:
        raise DatabaseUnavailableError(
            f"no connection to {path} within {wait or busy_timeout:g}s (the server is "
            "unreachable, or every pooled connection is busy): check the server, or raise "
            "pool_size or busy_timeout"
        ) from exc
    except psycopg.Error as exc:
        interrupt = _interrupt_behind(exc)
        if interrupt is not None:
            raise interrupt from None
        _raise_translated(exc, path, busy_timeout)


def _interrupt_behind(exc: BaseException) -> BaseException | None:
    """The interrupt psycopg turned into this error, if it did.

    A ``KeyboardInterrupt`` during ``executemany`` surfaces as "cannot exit
    pipeline mode while busy", with the interrupt as its context: the caller
    pressed Ctrl-C, and must see that, not a database error.
    """
    seen = exc.__context__
    while seen is not None:
        if not isinstance(seen, Exception):
            return seen
        seen = seen.__context__
    return None


def _raise_translated(exc: psycopg.Error, path: str, busy_timeout: float) -> NoReturn:
    state = exc.sqlstate
    if isinstance(exc, pg_errors.DeadlockDetected):
        raise DatabaseLockedError(
            f"database {path}: this call and another connection each waited for rows the "
            f"other held ({state}, a deadlock; PostgreSQL cancelled this one); nothing was "
            "changed: retry"
        ) from exc
    if isinstance(exc, (pg_errors.LockNotAvailable, pg_errors.SerializationFailure)):
        raise DatabaseLockedError(
            f"database {path} is locked: another connection held rows this call needs for "
            f"longer than busy_timeout={busy_timeout}s ({state}); retry, or open the "
            "repository with a larger busy_timeout"
        ) from exc
    if isinstance(exc, pg_errors.ReadOnlySqlTransaction):
        raise ReadOnlyDatabaseError(
            f"database {path} cannot be written ({exc.diag.message_primary or exc}): the "
            "server is a read-only standby, or default_transaction_read_only is on for the "
            "database or role; nothing was changed"
        ) from exc
    if isinstance(exc, pg_errors.InsufficientPrivilege):
        raise ReadOnlyDatabaseError(
            f"database {path}: this role may not do what the call needs "
            f"({exc.diag.message_primary or exc}); the tables' owner can give it an app's "
            "rights with 'sessions-dal grant ROLE --apply'; nothing was changed"
        ) from exc
    if isinstance(exc, pg_errors.DiskFull):
        raise DiskFullError(
            f"database {path} is full ({exc.diag.message_primary}): free disk space on the "
            "server and retry; nothing was written"
        ) from exc
    if ((state is not None and state.startswith(("08", "57P")))
            or (state is None and isinstance(exc, (psycopg.OperationalError,
                                                  psycopg.InterfaceError)))):
        raise DatabaseUnavailableError(
            f"lost the connection to {path} ({_reason(exc)}): the "
            "server restarted, stopped or dropped it; a write that was under way may or may "
            "not have committed (read it back); the next call reconnects"
        ) from exc
    if isinstance(exc, pg_errors.InvalidSchemaName):
        raise DatabaseError(
            f"PostgreSQL error on {path}: {_reason(exc)} ({state}): the schema the URL's "
            "search_path names does not exist; create it (CREATE SCHEMA name) or fix "
            "options=-csearch_path"
        ) from exc
    raise DatabaseError(f"PostgreSQL error on {path}: {_reason(exc)} ({state})") from exc


def _reason(exc: BaseException) -> str:
    """The driver's message on one line (libpq's run over several)."""
    return " ".join(str(exc).split()) or type(exc).__name__
