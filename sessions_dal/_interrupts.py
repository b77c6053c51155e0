"""Telling an interrupted caller whether its write stayed.

A ``KeyboardInterrupt`` (or whatever a signal handler raises) can land at any
moment of a call, also after its ``COMMIT`` succeeded. The public write calls
are wrapped by :func:`write_call`; a store sets ``call_state.token.committed
= True`` the moment its transaction has committed (an attribute store, not a
function call: nothing can interrupt it); an exception leaving a write call
whose token is marked carries :data:`COMMITTED_NOTE`. :class:`CommitsSeen`
watches several write calls at once (prune's batches, a command line run).

The rest of the interrupt story lives with each backend: SQLite's lock and
transaction bookkeeping in ``backends/sqlite/_runner.py``, PostgreSQL's
signal hold in ``backends/postgres/_signals.py`` and its commit settling in
``backends/postgres/_runner.py``
(docs/concurrency.md, "Interrupts").
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["COMMITTED_NOTE", "CommitsSeen", "add_note", "call_state", "write_call"]

COMMITTED_NOTE = "sessions_dal: this arrived after the write was committed; it was not undone"
"""The note an exception carries when it interrupted a write call whose
transaction had already committed (see :func:`write_call`)."""

class _Token:
    """One write call's record of whether its transaction committed."""

    __slots__ = ("collects", "committed")

    def __init__(self, *, collects: bool = False) -> None:
        self.committed = False
        self.collects = collects  # also records the commits of the calls inside


class _CallState(threading.local):
    token = _Token()  # outside any write call: marks go nowhere that matters


call_state = _CallState()
"""Per thread: ``call_state.token`` belongs to the innermost write call running.

A write call made inside another (a repository used from an import's
progress callback, say) has a token of its own, so its commit never makes
the outer call's failure look committed."""

_F = TypeVar("_F", bound=Callable[..., Any])


def write_call(method: _F) -> _F:
    """Mark a public method that writes, so an exception tells whether the write stayed.

    A write call that raises has changed nothing, with one exception: an
    interrupt (``KeyboardInterrupt``, or whatever a signal handler raises)
    arriving after its ``COMMIT`` succeeded. Such an exception carries
    :data:`COMMITTED_NOTE` in ``exc.__notes__``: the write is in the
    database. Without that note, it is not.
    """

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        outer = call_state.token
        token = call_state.token = _Token()
        try:
            return method(*args, **kwargs)
        except BaseException as exc:
            if token.committed and COMMITTED_NOTE not in getattr(exc, "__notes__", ()):
                add_note(exc, COMMITTED_NOTE)
            raise
        finally:
            if token.committed and outer.collects:
                outer.committed = True
            call_state.token = outer

    return call  # type: ignore[return-value]


class CommitsSeen:
    """A token, current while the ``with`` block runs, that records whether any
    write call made inside committed.

    For a caller that must tell, after an interrupt anywhere in its own code
    (after a write call returned, while closing), whether anything changed:
    the command line's Ctrl-C message, prune's batches. ``token`` exists from
    construction, so an interrupt before the block starts still finds it.
    ``apart``: what commits inside does not count for the calls around it
    (the command line opening a database, which may set it up or upgrade it,
    is not the command's change).
    """

    def __init__(self, *, apart: bool = False) -> None:
        self.token = _Token(collects=True)
        self._outer = call_state.token
        self._apart = apart

    def __enter__(self) -> _Token:
        self._outer = call_state.token
        call_state.token = self.token
        return self.token

    def __exit__(self, *exc_info: object) -> None:
        if self.token.committed and self._outer.collects and not self._apart:
            self._outer.committed = True
        call_state.token = self._outer


def add_note(exc: BaseException, note: str) -> None:
    if sys.version_info >= (3, 11):
        exc.add_note(note)
    else:  # the attribute add_note() fills in, for callers on 3.10
        exc.__notes__ = [*getattr(exc, "__notes__", ()), note]  # type: ignore[attr-defined]
