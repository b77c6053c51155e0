"""Storage backends: one package per database, each owning all of its SQL.

A backend provides a store (see :mod:`sessions_dal._store`, the contract):
its connection or pool, its statements, its transactions and locks, its
migrations runner and schema file, the adoption of openai-agents' tables, and
the translation of its driver's errors into :mod:`sessions_dal.errors`.

Backends register themselves here, one :class:`Backend` line each: the URL
schemes that choose it (none: the default, for file paths), the package to
import (only when chosen: PostgreSQL's needs psycopg), and the keyword options
of its own. The package provides ``open_store(target, common, options)``.
``SessionRepository`` checks what every backend shares (:class:`Common`) and
asks :func:`open_store`; a new backend is a package and a line in
:data:`BACKENDS`, nothing else.

- :mod:`sessions_dal.backends.sqlite`: a file (or ``:memory:``), standard
  library only; the default.
- :mod:`sessions_dal.backends.postgres`: a ``postgresql://`` URL (psycopg 3).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._store import Common

if TYPE_CHECKING:
    from .._store import Store

__all__ = ["BACKENDS", "Backend", "Common", "is_url", "open_store", "register"]


@dataclass(frozen=True)
class Backend:
    """One backend's registry line."""

    name: str
    """As ``DatabaseInfo.backend`` and messages name it."""
    module: str
    """The package providing ``open_store``; imported when the backend is chosen."""
    schemes: tuple[str, ...] = ()
    """URL schemes (lower case) that choose it; ``()``: the default, for file paths."""
    options: Mapping[str, str] = field(default_factory=dict)
    """Its own keyword options, each with why it is its own (said to a caller who
    gives it to another backend)."""
    install: str = ""
    """What to install when ``module`` cannot be imported."""


BACKENDS: list[Backend] = [
    Backend("sqlite", "sessions_dal.backends.sqlite", options={
        "synchronous": "its durability setting; PostgreSQL's durability is the server's "
                       "synchronous_commit"}),
    Backend("postgresql", "sessions_dal.backends.postgres", ("postgresql", "postgres"),
            options={"pool_size": "the connections its repository keeps; an SQLite "
                                  "repository holds one connection"},
            install="psycopg 3, the optional 'postgres' extra: install it with pip install "
                    "'.[postgres]' from a clone of sessions_dal, or pip install "
                    "'sessions-dal[postgres]' from a package index ('postgres-binary' "
                    "instead of 'postgres' brings its own libpq)"),
]
"""The registered backends. The first without schemes opens file paths."""

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://")
_COMMON = {"busy_timeout", "sessions_table", "messages_table", "read_only"}


def register(backend: Backend) -> None:
    """Add a backend (before any other with the same schemes)."""
    BACKENDS.insert(0, backend)


def is_url(target: str) -> bool:
    """Whether ``target`` names a server (or anything but a file) by a URL scheme."""
    return _SCHEME.match(target) is not None


def _chosen(target: str) -> tuple[Backend, str]:
    scheme = _SCHEME.match(target)
    if scheme is None:
        return next(b for b in BACKENDS if not b.schemes), target
    name = scheme.group(1).lower()
    for backend in BACKENDS:
        if name in backend.schemes:
            # Drivers know their schemes in lower case only (libpq would read
            # the URL as "key=value" text otherwise, and quote it, password and all).
            return backend, name + target[len(name):]
    known = ", ".join(f"{s}://" for b in BACKENDS for s in b.schemes)
    raise ValueError(
        f"path {scheme.group(0)}... is a URL sessions_dal cannot open: pass one of "
        f"{known}, or an SQLite file's path (not a URL)"
    )


def open_store(target: str, common: Common, options: Mapping[str, Any]) -> Store:
    """Open the store of the backend ``target`` chooses, with its own ``options``.

    ``options`` holds the keyword options of every registered backend,
    ``None`` where not given; one given to a backend that does not have it is
    a ``ValueError``.
    """
    backend, target = _chosen(target)
    for name, value in options.items():
        if value is not None and name not in backend.options:
            owner = next((b for b in BACKENDS if name in b.options), None)
            if name in _COMMON:
                raise ValueError(f"{name} is a keyword of SessionRepository, not a backend's "
                                 f"option: pass {name}=... itself")
            if owner is None:
                known = ", ".join(sorted(backend.options)) or "none"
                raise ValueError(f"{name!r} is no backend's option ({backend.name}'s: "
                                 f"{known})")
            raise ValueError(f"{name} is {owner.name}'s option ({owner.options[name]}), "
                             f"not {backend.name}'s: omit {name}")
    try:
        package = importlib.import_module(backend.module)
    except ImportError as exc:
        if not backend.install:
            raise
        what = f"a {backend.schemes[0]}:// URL" if backend.schemes else backend.name
        raise ImportError(f"opening {what} needs {backend.install} (it cannot be imported "
                          f"here: {exc})") from exc
    store: Store = package.open_store(
        target, common, {name: options.get(name) for name in backend.options})
    return store
