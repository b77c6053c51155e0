"""What the benchmark runs: sessions_dal, the raw driver doing the same work, and the peer.

A target (:class:`SQLiteTarget`) makes fresh databases and the three
implementations of the same calls on them; the workloads only talk to those.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sessions_dal import SessionRepository
from sessions_dal.backends.sqlite._opening import CACHE_KIB
from sessions_dal.backends.sqlite._sql import SQL as SQLiteSQL

try:
    import agents as _agents
    from agents import SQLiteSession
except ImportError:  # the peer is optional
    SQLiteSession = None
    _agents = None


def utc_now() -> str:
    """The current time as the SQLite store writes it."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")


ITEM = {"role": "user", "content": "Find me a train from Paris to Rome tomorrow morning."}


@dataclass
class Result:
    workload: str
    operation: str
    impl: str
    samples: list[float]  # seconds per operation
    note: str = ""
    throughput: float | None = None
    """Operations per second of all threads together (W8); else 1 / median."""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def timed(samples: list[float], fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``, append its duration in seconds to ``samples``, return its value."""
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    samples.append(time.perf_counter() - start)
    return value


def latest_items(conn: Any, session_id: str, limit: int, offset: int, mark: str) -> list[Any]:
    """A session's latest items, oldest first, decoded: the one read of every raw driver
    (``mark``: the driver's parameter placeholder)."""
    order = "id DESC" if mark == "?" else "created_at DESC, id DESC"
    rows = conn.execute(
        f"SELECT message_data FROM agent_messages WHERE session_id = {mark} "
        f"ORDER BY {order} LIMIT {mark} OFFSET {mark}", (session_id, limit, offset)).fetchall()
    return [json.loads(r[0]) for r in reversed(rows)]


# -- raw sqlite3 doing the least a store must: the floor ----------------------------

MINIMAL_SQLITE = (
    # openai-agents' items table, and one table of sessions by user: what a
    # hand-written app would have. No activity, no users table, no search.
    "CREATE TABLE sessions (session_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, "
    "created_at TEXT NOT NULL)",
    "CREATE INDEX sessions_by_user ON sessions (user_id, created_at)",
    "CREATE TABLE agent_messages (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "session_id TEXT NOT NULL, message_data TEXT NOT NULL, "
    "created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)",
    "CREATE INDEX idx_agent_messages_session_id ON agent_messages (session_id, id)",
)


class Minimal:
    """Hand-written sqlite3 doing the minimal statement per call: one INSERT to create
    a session, one INSERT per item (one transaction per call), one SELECT to read.

    The same settings as sessions_dal's (WAL, synchronous=NORMAL, its cache size).
    """

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        for statement in MINIMAL_SQLITE:
            self.conn.execute(statement)

    def create_session(self, user: str) -> str:
        session_id = str(uuid.uuid4())
        self.conn.execute("INSERT INTO sessions VALUES (?, ?, ?)", (session_id, user, utc_now()))
        return session_id

    def add_items(self, session_id: str, items: list[Any]) -> None:
        if len(items) == 1:  # one statement: its own transaction
            self.conn.execute("INSERT INTO agent_messages (session_id, message_data) "
                              "VALUES (?, ?)", (session_id, json.dumps(items[0])))
            return
        self.conn.execute("BEGIN")
        self.conn.executemany("INSERT INTO agent_messages (session_id, message_data) "
                              "VALUES (?, ?)", [(session_id, json.dumps(i)) for i in items])
        self.conn.execute("COMMIT")

    def get_items(self, session_id: str, limit: int, offset: int = 0) -> list[Any]:
        return latest_items(self.conn, session_id, limit, offset, "?")

    def close(self) -> None:
        self.conn.close()


NO_INDEX = {
    "sqlite": [f"DROP TRIGGER IF EXISTS sessions_dal_search_on_{name}"
               for name in ("insert", "delete", "own", "own_title", "disown", "disown_items",
                                "title")]
              + [f"DROP TRIGGER IF EXISTS sessions_dal_search_history_on_{name}"
                 for name in ("insert", "delete", "own", "disown")],
    "postgresql": [f"DROP TRIGGER IF EXISTS sessions_dal_search_on_{name} ON {table}"
                   for name, table in (("insert", "agent_messages"),
                                       ("change", "agent_messages"),
                                       ("delete", "agent_messages"),
                                       ("truncate", "agent_messages"),
                                       ("own", "agent_user_sessions"))]
                  + ["DROP TRIGGER IF EXISTS sessions_dal_history_on_insert "
                     "ON sessions_dal_history"],
}
"""What makes a database of this schema one without the search index: its triggers
dropped (the index's tables stay, empty, so that opening it does not build them; on
PostgreSQL sessions_dal's own compactions still write the history's words, a raw
compaction does not)."""


def drop_search(where: str, backend: str) -> None:
    """Make the database at ``where`` (a path or URL, at the current schema) one without
    the search index (see :data:`NO_INDEX`)."""
    if backend == "sqlite":
        conn = sqlite3.connect(where)
        with conn:
            for statement in NO_INDEX[backend]:
                conn.execute(statement)
        conn.close()
        return
    import psycopg

    with psycopg.connect(where, autocommit=True) as pg:
        for statement in NO_INDEX[backend]:
            pg.execute(statement)


# -- raw sqlite3: the same statements sessions_dal runs, without the library ----------


class Raw:
    """Hand-written sqlite3 doing what sessions_dal does per call: the practical limit."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        if create:
            SessionRepository(path).close()  # the same schema
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA foreign_keys = ON")
        self.conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")  # as sessions_dal configures it
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.sql = SQLiteSQL("agent_sessions", "agent_messages")
        self.owners: dict[str, str] = {}

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def create_session(self, user: str) -> str:
        # sessions_dal's own statements (its SQL class), run by hand.
        session_id, now, sql = str(uuid.uuid4()), utc_now(), self.sql
        with self.tx() as c:
            c.execute(sql.insert_user, (user, now))
            c.execute(sql.insert_new_owned,
                      {"session": session_id, "user": user, "metadata": "{}", "now": now})
        self.owners[session_id] = user
        return session_id

    def add_items(self, session_id: str, items: list[Any]) -> None:
        texts = [(session_id, json.dumps(item)) for item in items]
        with self.tx() as c:
            c.execute(self.sql.upsert_agent_session, (session_id,))
            c.executemany(self.sql.insert_item, texts)
            c.execute(self.sql.touch, (utc_now(), session_id, self.owners[session_id]))

    def get_items(self, session_id: str, limit: int, offset: int = 0) -> list[Any]:
        return latest_items(self.conn, session_id, limit, offset, "?")

    def page(self, user: str, limit: int, offset: int, order: str = "created"
             ) -> list[dict[str, Any]]:
        # Sessions ready to use, as sessions_dal returns them: metadata decoded,
        # times parsed.
        by = ("created_at DESC, seq DESC" if order == "created"
              else "updated_at DESC, created_at DESC, seq DESC")
        rows = self.conn.execute(
            "SELECT session_id, user_id, metadata, created_at, updated_at "
            f"FROM agent_user_sessions WHERE user_id = ? ORDER BY {by} "
            "LIMIT ? OFFSET ?", (user, limit, offset)).fetchall()
        parse = dt.datetime.fromisoformat
        return [{"session_id": r[0], "user_id": r[1], "metadata": json.loads(r[2]),
                 "created_at": parse(r[3]), "updated_at": parse(r[4])} for r in rows]

    def fork(self, session_id: str) -> str:
        new_id, now = str(uuid.uuid4()), utc_now()
        with self.tx() as c:
            (user,) = c.execute("SELECT user_id FROM agent_user_sessions WHERE session_id = ?",
                                (session_id,)).fetchone()
            (count,) = c.execute("SELECT count(*) FROM agent_messages WHERE session_id = ?",
                                 (session_id,)).fetchone()
            meta = json.dumps({"forked_from": {"session_id": session_id, "items": count}})
            c.execute("INSERT INTO agent_users (user_id, created_at) VALUES (?, ?) "
                      "ON CONFLICT (user_id) DO NOTHING", (user, now))
            c.execute("INSERT INTO agent_sessions (session_id) VALUES (?)", (new_id,))
            c.execute("INSERT INTO agent_user_sessions (session_id, user_id, metadata, "
                      "created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                      (new_id, user, meta, now, now))
            c.execute("INSERT INTO agent_messages (session_id, message_data, created_at) "
                      "SELECT ?, message_data, created_at FROM agent_messages "
                      "WHERE session_id = ? ORDER BY id LIMIT ?", (new_id, session_id, count))
        return new_id

    def compact(self, session_id: str, summary: Any, upto: int) -> None:
        # The least a compaction that keeps its history does: the first items
        # into the history table, the summary, then the kept items copied
        # after it (ids keep the order), the old rows deleted. Not done here:
        # the owner check, replacement marks, erasing and index upkeep.
        with self.tx() as c:
            ids = [row[0] for row in c.execute(
                "SELECT id FROM agent_messages WHERE session_id = ? ORDER BY id", (session_id,))]
            last, old = ids[upto - 1], ids[-1]
            c.execute("INSERT INTO sessions_dal_history (session_id, id, layer, message_data, "
                      "created_at) SELECT session_id, id, 1, message_data, created_at "
                      "FROM agent_messages WHERE session_id = ? AND id <= ?", (session_id, last))
            c.execute("INSERT INTO agent_messages (session_id, message_data) VALUES (?, ?)",
                      (session_id, json.dumps(summary)))
            c.execute("INSERT INTO agent_messages (session_id, message_data, created_at) "
                      "SELECT session_id, message_data, created_at FROM agent_messages "
                      "WHERE session_id = ? AND id > ? AND id <= ? ORDER BY id",
                      (session_id, last, old))
            c.execute("DELETE FROM agent_messages WHERE session_id = ? AND id <= ?",
                      (session_id, old))

    def history(self, session_id: str) -> list[Any]:
        rows = self.conn.execute(
            "SELECT message_data FROM sessions_dal_history WHERE session_id = ? "
            "ORDER BY layer, id", (session_id,)).fetchall()
        rows += self.conn.execute(
            "SELECT message_data FROM agent_messages WHERE session_id = ? ORDER BY id",
            (session_id,)).fetchall()[1:]  # the summary
        return [json.loads(text) for (text,) in rows]

    def prune_all(self) -> int:
        # sessions_dal's own statements (its SQL class), run by hand in the same
        # batches: what is measured is the library around them.
        sql = SQLiteSQL("agent_sessions", "agent_messages")
        self.conn.execute("PRAGMA secure_delete = ON")  # as sessions_dal's connections
        found = self.conn.execute(sql.prune_candidates[False], (0, None)).fetchall()
        for start in range(0, len(found), 500):
            batch = found[start:start + 500]
            with self.tx() as c:
                for session_id, user_id, stamp in batch:
                    c.execute(sql.scrub_owned_as_found, (session_id, user_id, stamp))
                    c.execute(sql.scrub_items, (session_id,))
                indexed = [row for session_id, _, _ in batch
                           for row in c.execute(sql.indexed_of_session,
                                                           {"session": session_id})]
                c.executemany(sql.scrub_search_row, indexed)
                c.executemany(sql.delete_search_row, indexed)
                for session_id, user_id, _ in batch:
                    c.execute(sql.delete_items, (session_id,))
                    c.execute(sql.delete_owned, (session_id, user_id))
                    c.execute(sql.delete_agent_session, (session_id,))
                if start + 500 >= len(found):
                    c.execute(sql.optimize_search_index)
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return len(found)

    def close(self) -> None:
        self.conn.close()


class Ours:
    """sessions_dal itself; unless ``indexed``, on a database without the search index
    (see :func:`drop_search`)."""

    def __init__(self, path: Path | str, *, indexed: bool = True, backend: str = "sqlite"
                 ) -> None:
        if not indexed:
            SessionRepository(path).close()
            drop_search(str(path), backend)
        self.repo = SessionRepository(path)
        self.handles: dict[str, Any] = {}

    def create_session(self, user: str) -> str:
        s = self.repo.create_session(user)
        self.handles[s.session_id] = s
        return s.session_id

    def add_items(self, session_id: str, items: list[Any]) -> None:
        self.handles[session_id].add_items(items)

    def get_items(self, session_id: str, limit: int, offset: int = 0) -> list[Any]:
        return self.handles[session_id].get_items(limit, offset=offset)  # type: ignore[no-any-return]

    def page(self, user: str, limit: int, offset: int, order: str = "created") -> list[Any]:
        return self.repo.get_sessions(user, limit=limit, offset=offset, order=order)

    def fork(self, session_id: str) -> str:
        s = self.handles[session_id]
        return self.repo.fork_session(s.user_id, session_id).session_id

    def prune_all(self) -> int:
        return self.repo.prune(keep_last=0).sessions

    def compact(self, session_id: str, summary: Any, upto: int) -> None:
        self.handles[session_id].compact([summary], upto=upto)

    def history(self, session_id: str) -> list[Any]:
        return list(self.handles[session_id].iter_history())

    def close(self) -> None:
        self.repo.close()


class Peer:
    """openai-agents' SQLiteSession, from synchronous code: one loop, one call at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.loop = asyncio.new_event_loop()
        self.sessions: dict[str, Any] = {}

    def session(self, session_id: str) -> Any:
        if session_id not in self.sessions:
            self.sessions[session_id] = SQLiteSession(session_id, self.path)
        return self.sessions[session_id]

    def add_items(self, session_id: str, items: list[Any]) -> None:
        self.loop.run_until_complete(self.session(session_id).add_items(items))

    def get_items(self, session_id: str, limit: int) -> list[Any]:
        return self.loop.run_until_complete(  # type: ignore[no-any-return]
            self.session(session_id).get_items(limit))

    def close(self) -> None:
        for s in self.sessions.values():
            s.close()
        self.loop.close()


NO_INDEX_NAME = "sessions_dal, no index"


class SQLiteTarget:
    """The SQLite backend, on fresh files in ``folder``: what the workloads run against."""

    backend = "sqlite"
    raw = "raw sqlite3"
    """The minimal statements (:class:`Minimal`): what the ratios are against."""
    same = "raw sqlite3, same statements"
    peer = "SQLiteSession"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @property
    def has_peer(self) -> bool:
        return SQLiteSession is not None

    def describe(self) -> str:
        return f"SQLite {sqlite3.sqlite_version}" + (
            f", openai-agents {_agents.__version__}" if _agents else "")

    def implementations(self, label: str, *, minimal: bool = True, raw_indexed: bool = True
                        ) -> list[tuple[str, Any]]:
        """sessions_dal (with and without the index), raw sqlite3 (minimal, and the same
        statements) and (if installed) the peer, each on a fresh file. Unless
        ``minimal``: sessions_dal, and the same statements by hand as *raw* (on a file
        without the search index's triggers, unless ``raw_indexed``)."""
        if not minimal:
            raw = Raw(self.folder / f"{label}-raw.db")
            if not raw_indexed:
                drop_search(str(self.folder / f"{label}-raw.db"), "sqlite")
            return [("sessions_dal", Ours(self.folder / f"{label}-ours.db")), (self.raw, raw)]
        found: list[tuple[str, Any]] = [
            ("sessions_dal", Ours(self.folder / f"{label}-ours.db")),
            (NO_INDEX_NAME, Ours(self.folder / f"{label}-plain.db", indexed=False)),
            (self.raw, Minimal(self.folder / f"{label}-min.db")),
            (self.same, Raw(self.folder / f"{label}-raw.db")),
        ]
        if self.has_peer:
            found.append((self.peer, Peer(self.folder / f"{label}-peer.db")))
        return found

    def filled(self, label: str, owned: dict[str, int], total: int, *, items: bool = False
               ) -> str:
        """A database with ``owned[user]`` sessions per user, ``total`` in all (each with
        one item if ``items``); its path."""
        path = self.folder / f"{label}.db"
        fill_users(path, owned, total)
        if items:
            conn = sqlite3.connect(path)
            conn.execute("INSERT INTO agent_messages (session_id, message_data) "
                         "SELECT session_id, ? FROM agent_user_sessions", (json.dumps(ITEM),))
            conn.commit()
            conn.close()
        return str(path)

    def raw_on(self, target: str) -> Raw:
        return Raw(Path(target), create=False)

    def empty(self, label: str) -> str:
        return str(self.folder / f"{label}.db")

    def close(self) -> None:
        """Nothing to release: the files go with the folder."""


def fill_users(path: Path, owned: dict[str, int], total: int) -> None:
    """Bulk-load sessions (users' counts in ``owned``, the rest spread over others)."""
    SessionRepository(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    base = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    rows: list[tuple[str, str, str]] = []
    for user, count in owned.items():
        rows += [(user, f"{user}-{i}", "") for i in range(count)]
    rest = total - len(rows)
    rows += [(f"other{i % 1000}", f"other-{i}", "") for i in range(max(0, rest))]
    conn.executemany("INSERT OR IGNORE INTO agent_users VALUES (?, ?)",
                     [(u, base.isoformat()) for u in {r[0] for r in rows}])
    conn.executemany("INSERT INTO agent_sessions (session_id) VALUES (?)", [(r[1],) for r in rows])
    conn.executemany(
        "INSERT INTO agent_user_sessions (session_id, user_id, metadata, created_at, updated_at)"
        " VALUES (?, ?, '{}', ?, ?)",
        [(sid, user, stamp, stamp) for n, (user, sid, _) in enumerate(rows)
         for stamp in [(base + dt.timedelta(seconds=n)).isoformat(timespec="microseconds")]])
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


# -- PostgreSQL ------------------------------------------------------------------


MINIMAL_PG = (
    # SQLAlchemySession's items table (openai-agents 0.24), and one table of
    # sessions by user; no triggers.
    "CREATE TABLE sessions (session_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, "
    "created_at TIMESTAMPTZ NOT NULL)",
    "CREATE INDEX sessions_by_user ON sessions (user_id, created_at)",
    "CREATE TABLE agent_messages (id SERIAL PRIMARY KEY, session_id VARCHAR NOT NULL, "
    "message_data TEXT NOT NULL, created_at TIMESTAMP NOT NULL DEFAULT now())",
    "CREATE INDEX idx_agent_messages_session_time ON agent_messages (session_id, created_at)",
)


class MinimalPG:
    """Hand-written psycopg doing the minimal statement per call (as :class:`Minimal`):
    autocommit, so each single statement is its own transaction, with the server's
    durability settings, as sessions_dal's."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)
        for statement in MINIMAL_PG:
            self.conn.execute(statement)

    def create_session(self, user: str) -> str:
        session_id = str(uuid.uuid4())
        self.conn.execute("INSERT INTO sessions VALUES (%s, %s, %s)",
                          (session_id, user, dt.datetime.now(dt.timezone.utc)))
        return session_id

    def add_items(self, session_id: str, items: list[Any]) -> None:
        insert = "INSERT INTO agent_messages (session_id, message_data) VALUES (%s, %s)"
        if len(items) == 1:
            self.conn.execute(insert, (session_id, json.dumps(items[0])))
            return
        with self.conn.transaction():
            self.conn.cursor().executemany(insert, [(session_id, json.dumps(i)) for i in items])

    def get_items(self, session_id: str, limit: int, offset: int = 0) -> list[Any]:
        return latest_items(self.conn, session_id, limit, offset, "%s")

    def close(self) -> None:
        self.conn.close()


class RawPG:
    """Hand-written psycopg doing what sessions_dal does per call, on one connection."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        import psycopg

        if create:
            SessionRepository(url).close()  # the same schema
        self.conn = psycopg.connect(url, autocommit=True)

    @contextmanager
    def tx(self) -> Iterator[Any]:
        self.conn.execute("BEGIN")
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def create_session(self, user: str) -> str:
        session_id, now = str(uuid.uuid4()), dt.datetime.now(dt.timezone.utc)
        with self.tx() as c:
            c.execute("INSERT INTO agent_users (user_id, created_at) VALUES (%s, %s) "
                      "ON CONFLICT (user_id) DO UPDATE SET user_id = EXCLUDED.user_id",
                      (user, now))
            c.execute("INSERT INTO agent_user_sessions (session_id, user_id, metadata, "
                      "created_at, updated_at) VALUES (%s, %s, '{}', %s, %s)",
                      (session_id, user, now, now))
            c.execute("INSERT INTO agent_sessions (session_id) VALUES (%s)", (session_id,))
        return session_id

    def add_items(self, session_id: str, items: list[Any]) -> None:
        rows = [(session_id, json.dumps(item)) for item in items]
        with self.tx() as c:
            # As sessions_dal: lock the ownership row, then agent_sessions' (upserted,
            # as SQLAlchemySession's clear_session() may have deleted it), then insert.
            c.execute(
                "WITH owned AS (UPDATE agent_user_sessions SET updated_at = %s "
                "WHERE session_id = %s RETURNING session_id) "
                "INSERT INTO agent_sessions (session_id) SELECT session_id FROM owned "
                "ON CONFLICT (session_id) DO UPDATE SET updated_at = CURRENT_TIMESTAMP",
                (dt.datetime.now(dt.timezone.utc), session_id))
            if len(rows) == 1:
                c.execute("INSERT INTO agent_messages (session_id, message_data) "
                          "VALUES (%s, %s)", rows[0])
            else:
                c.cursor().executemany("INSERT INTO agent_messages (session_id, message_data)"
                                       " VALUES (%s, %s)", rows)

    def get_items(self, session_id: str, limit: int, offset: int = 0) -> list[Any]:
        return latest_items(self.conn, session_id, limit, offset, "%s")

    def page(self, user: str, limit: int, offset: int, order: str = "created"
             ) -> list[dict[str, Any]]:
        by = ("created_at DESC, seq DESC" if order == "created"
              else "updated_at DESC, created_at DESC, seq DESC")
        rows = self.conn.execute(
            "SELECT session_id, user_id, metadata, created_at, updated_at "
            f"FROM agent_user_sessions WHERE user_id = %s ORDER BY {by} "
            "LIMIT %s OFFSET %s", (user, limit, offset)).fetchall()
        return [{"session_id": r[0], "user_id": r[1], "metadata": json.loads(r[2]),
                 "created_at": r[3], "updated_at": r[4]} for r in rows]

    def fork(self, session_id: str) -> str:
        new_id, now = str(uuid.uuid4()), dt.datetime.now(dt.timezone.utc)
        with self.tx() as c:
            (user,) = c.execute("SELECT user_id FROM agent_user_sessions WHERE session_id = %s "
                                "FOR SHARE", (session_id,)).fetchone()
            c.execute("SELECT 1 FROM agent_sessions WHERE session_id = %s FOR SHARE",
                      (session_id,))
            (count,) = c.execute("SELECT count(*) FROM agent_messages WHERE session_id = %s",
                                 (session_id,)).fetchone()
            meta = json.dumps({"forked_from": {"session_id": session_id, "items": count}})
            c.execute("INSERT INTO agent_user_sessions (session_id, user_id, metadata, "
                      "created_at, updated_at) VALUES (%s, %s, %s, %s, %s)",
                      (new_id, user, meta, now, now))
            c.execute("INSERT INTO agent_sessions (session_id) VALUES (%s)", (new_id,))
            c.execute("INSERT INTO agent_messages (session_id, message_data, created_at) "
                      "SELECT %s, message_data, created_at FROM agent_messages "
                      "WHERE session_id = %s ORDER BY created_at, id LIMIT %s",
                      (new_id, session_id, count))
        return new_id

    def compact(self, session_id: str, summary: Any, upto: int) -> None:
        # As Raw.compact, in (created_at, id) order, the session's rows locked.
        with self.tx() as c:
            c.execute("SELECT 1 FROM agent_sessions WHERE session_id = %s FOR UPDATE",
                      (session_id,))
            rows = c.execute("SELECT id, created_at FROM agent_messages WHERE session_id = %s "
                             "ORDER BY created_at, id", (session_id,)).fetchall()
            gone, kept = [r[0] for r in rows[:upto]], [r[0] for r in rows[upto:]]
            c.execute("INSERT INTO sessions_dal_history (session_id, id, layer, message_data, "
                      "created_at) SELECT session_id, id, 1, message_data, created_at "
                      "FROM agent_messages WHERE id = ANY(%s)", (gone,))
            c.execute("INSERT INTO agent_messages (session_id, message_data, created_at) "
                      "VALUES (%s, %s, %s)", (session_id, json.dumps(summary), rows[0][1]))
            c.execute("INSERT INTO agent_messages (session_id, message_data, created_at) "
                      "SELECT session_id, message_data, created_at FROM agent_messages "
                      "WHERE id = ANY(%s) ORDER BY created_at, id", (kept,))
            c.execute("DELETE FROM agent_messages WHERE id = ANY(%s)", ([r[0] for r in rows],))

    def history(self, session_id: str) -> list[Any]:
        rows = self.conn.execute(
            "SELECT message_data FROM sessions_dal_history WHERE session_id = %s "
            "ORDER BY layer, created_at, id", (session_id,)).fetchall()
        rows += self.conn.execute(
            "SELECT message_data FROM agent_messages WHERE session_id = %s "
            "ORDER BY created_at, id", (session_id,)).fetchall()[1:]  # the summary
        return [json.loads(text) for (text,) in rows]

    def prune_all(self) -> int:
        # sessions_dal's own statements, run by hand in the same batches.
        from sessions_dal.backends.postgres._sql import SQL

        schema = self.conn.execute("SELECT current_schema()").fetchone()[0]
        sql = SQL(schema, "agent_sessions", "agent_messages")
        found = self.conn.execute(sql.prune_candidates[False], (0, None)).fetchall()
        for start in range(0, len(found), 500):
            batch = found[start:start + 500]  # (session_id, user_id, updated, agents' stamp)
            with self.tx() as c:
                locked = c.execute(sql.lock_owned_as_found, (
                    [r[0] for r in batch], [r[1] for r in batch], [r[2] for r in batch]
                )).fetchall()
                stamps = {r[0]: r[3] for r in batch}
                now = dict(c.execute(sql.lock_agent_stamps, ([sid for _, sid in locked],)))
                seqs = [seq for seq, sid in locked if now.get(sid) == stamps[sid]]
                gone = [sid for (sid,) in c.execute(sql.delete_owned_seqs, (seqs,))]
                c.execute(sql.lock_agent_sessions, (gone,))
                c.execute(sql.delete_sessions_items, (gone,))
                c.execute(sql.delete_agent_sessions, (gone,))
        return len(found)

    def close(self) -> None:
        self.conn.close()


class PeerPG:
    """openai-agents' SQLAlchemySession (asyncpg), from synchronous code: one loop."""

    def __init__(self, url: str, schema: str) -> None:
        from sqlalchemy.ext.asyncio import create_async_engine

        self.loop = asyncio.new_event_loop()
        self.engine = create_async_engine(
            "postgresql+asyncpg://" + url.split("://", 1)[1].split("?", 1)[0],
            connect_args={"server_settings": {"search_path": schema}})
        self.sessions: dict[str, Any] = {}

    def session(self, session_id: str) -> Any:
        from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession

        if session_id not in self.sessions:
            self.sessions[session_id] = SQLAlchemySession(session_id, engine=self.engine,
                                                          create_tables=True)
        return self.sessions[session_id]

    def add_items(self, session_id: str, items: list[Any]) -> None:
        self.loop.run_until_complete(self.session(session_id).add_items(items))

    def get_items(self, session_id: str, limit: int) -> list[Any]:
        return self.loop.run_until_complete(  # type: ignore[no-any-return]
            self.session(session_id).get_items(limit))

    def close(self) -> None:
        self.loop.run_until_complete(self.engine.dispose())
        self.loop.close()


class PostgresTarget:
    """The PostgreSQL backend, on fresh schemas of one server."""

    backend = "postgresql"
    raw = "raw psycopg"
    """The minimal statements (:class:`MinimalPG`): what the ratios are against."""
    same = "raw psycopg, same statements"
    peer = "SQLAlchemySession"

    def __init__(self, url: str) -> None:
        import psycopg

        self.url = url
        self.admin = psycopg.connect(url, autocommit=True)
        self.schemas: list[str] = []

    @property
    def has_peer(self) -> bool:
        try:
            import asyncpg  # noqa: F401
            import sqlalchemy  # noqa: F401
        except ImportError:
            return False
        return SQLiteSession is not None

    def describe(self) -> str:
        version = self.admin.info.server_version
        return (f"PostgreSQL {version // 10000}.{version % 10000} (TCP, same machine)"
                + (f", openai-agents {_agents.__version__}" if _agents else ""))

    def schema(self, label: str) -> tuple[str, str]:
        name = f"bench_{label}_{uuid.uuid4().hex[:8]}"
        self.admin.execute(f"CREATE SCHEMA {name}")
        self.schemas.append(name)
        separator = "&" if "?" in self.url else "?"
        return name, f"{self.url}{separator}options=-csearch_path%3D{name}"

    def implementations(self, label: str, *, minimal: bool = True, raw_indexed: bool = True
                        ) -> list[tuple[str, Any]]:
        """As :meth:`SQLiteTarget.implementations`, each on a fresh schema."""
        if not minimal:
            url = self.schema(f"{label}_raw")[1]
            raw = RawPG(url)
            if not raw_indexed:
                drop_search(url, "postgresql")
            return [("sessions_dal", Ours(self.schema(f"{label}_ours")[1])), (self.raw, raw)]
        found: list[tuple[str, Any]] = [
            ("sessions_dal", Ours(self.schema(f"{label}_ours")[1])),
            (NO_INDEX_NAME, Ours(self.schema(f"{label}_plain")[1], indexed=False,
                                 backend="postgresql")),
            (self.raw, MinimalPG(self.schema(f"{label}_min")[1])),
            (self.same, RawPG(self.schema(f"{label}_raw")[1])),
        ]
        if self.has_peer:
            found.append((self.peer, PeerPG(*reversed(self.schema(f"{label}_peer")))))
        return found

    def filled(self, label: str, owned: dict[str, int], total: int, *, items: bool = False
               ) -> str:
        _, url = self.schema(label)
        SessionRepository(url).close()
        import psycopg

        base = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
        rows: list[tuple[str, str]] = []
        for user, count in owned.items():
            rows += [(user, f"{user}-{i}") for i in range(count)]
        rows += [(f"other{i % 1000}", f"other-{i}") for i in range(max(0, total - len(rows)))]
        with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
            with conn.cursor().copy("COPY agent_users (user_id, created_at) FROM STDIN") as copy:
                for user in sorted({r[0] for r in rows}):
                    copy.write_row((user, base))
            with conn.cursor().copy("COPY agent_sessions (session_id) FROM STDIN") as copy:
                for _, session_id in rows:
                    copy.write_row((session_id,))
            with conn.cursor().copy("COPY agent_user_sessions (session_id, user_id, metadata, "
                                    "created_at, updated_at) FROM STDIN") as copy:
                for n, (user, session_id) in enumerate(rows):
                    stamp = base + dt.timedelta(seconds=n)
                    copy.write_row((session_id, user, "{}", stamp, stamp))
        with psycopg.connect(url, autocommit=True) as conn:
            if items:
                conn.execute("INSERT INTO agent_messages (session_id, message_data) "
                             "SELECT session_id, %s FROM agent_user_sessions",
                             (json.dumps(ITEM),))
            conn.execute("ANALYZE")
        return url

    def raw_on(self, target: str) -> RawPG:
        return RawPG(target, create=False)

    def empty(self, label: str) -> str:
        return self.schema(label)[1]

    def close(self) -> None:
        for name in self.schemas:
            self.admin.execute(f"DROP SCHEMA {name} CASCADE")
        self.admin.close()
