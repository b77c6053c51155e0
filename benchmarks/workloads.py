"""The workloads W1-W7: what is timed, the same way for every implementation and backend."""

from __future__ import annotations

import gc
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable
from typing import Any

from drivers import ITEM, NO_INDEX_NAME, Ours, Result, timed

from sessions_dal import SessionRepository


def round_robin(runners: list[tuple[str, Any]], rounds: int,
                call: Callable[[str, Any, int], None]) -> dict[str, list[float]]:
    """Time ``call(name, impl, n)`` for n in range(rounds), alternating implementations.

    On a shared machine a slow spell then hits every implementation alike,
    instead of whichever happened to run during it.
    """
    samples: dict[str, list[float]] = {name: [] for name, _ in runners}
    for n in range(rounds):
        for name, impl in runners if n % 2 else runners[::-1]:
            timed(samples[name], call, name, impl, n)
    return samples


def w1_create(target: Any, n: int) -> list[Result]:
    runners = [(name, impl) for name, impl in target.implementations("w1")
               if name != target.peer]
    samples = round_robin(runners, n, lambda _, impl, i: impl.create_session(f"user{i % 50}"))
    for _, impl in runners:
        impl.close()
    out = [Result("W1", "create_session", name, samples[name]) for name, _ in runners]
    if target.has_peer:
        out.append(Result("W1", "create_session", target.peer, [],
                          f"no equivalent: {target.peer} has no users and no create call"))
    return out


def w2_add_single(target: Any, sessions: int, per_session: int) -> list[Result]:
    runners = target.implementations("w2")
    ids = {name: [impl.create_session("alice") if name != target.peer else
                  str(uuid.uuid4()) for _ in range(sessions)] for name, impl in runners}
    samples = round_robin(runners, sessions * per_session,
                          lambda name, impl, n: impl.add_items(ids[name][n % sessions], [ITEM]))
    for _, impl in runners:
        impl.close()
    return [Result("W2", "add_items([1 item])", name, samples[name]) for name, _ in runners]


def w3_get_latest(target: Any, items: int, calls: int) -> list[Result]:
    runners = target.implementations("w3")
    ids = {}
    for name, impl in runners:
        ids[name] = impl.create_session("alice") if name != target.peer else "s"
        for start in range(0, items, 1000):
            impl.add_items(ids[name], [dict(ITEM, n=i) for i in range(start, start + 1000)])
    for name, impl in runners:
        got = impl.get_items(ids[name], 20)
        assert len(got) == 20 and got[-1]["n"] == items - 1
    samples = round_robin(runners, calls, lambda name, impl, _: impl.get_items(ids[name], 20))
    for _, impl in runners:
        impl.close()
    return [Result("W3", "get_items(limit=20)", name, samples[name]) for name, _ in runners]


def w5_add_bulk(target: Any, items: int, repeats: int) -> list[Result]:
    batch = [dict(ITEM, n=i) for i in range(items)]
    runners = target.implementations("w5")
    fresh = {name: [impl.create_session("alice") if name != target.peer else
                    str(uuid.uuid4()) for _ in range(repeats)] for name, impl in runners}
    samples = round_robin(runners, repeats,
                          lambda name, impl, n: impl.add_items(fresh[name][n], batch))
    for _, impl in runners:
        impl.close()
    return [Result("W5", f"add_items([{items} items])", name, samples[name])
            for name, _ in runners]


def w4_pages(target: Any, owned: int, total: int, calls: int) -> list[Result]:
    where = target.filled("w4", {"big": owned}, total)
    out = []
    last = owned - 50
    for impl_name, impl in (("sessions_dal", Ours(where)), (target.raw, target.raw_on(where))):
        for label, offset in (("offset 0", 0), ("last page", last)):
            samples: list[float] = []
            for _ in range(calls):
                page = timed(samples, impl.page, "big", 50, offset)
            assert len(page) == 50
            out.append(Result("W4", f"page of 50, {label} ({owned:,} of {total:,})",
                              impl_name, samples))
        impl.close()
    out += [Result("W4", f"page of 50, {label} ({owned:,} of {total:,})", target.peer, [],
                   f"no equivalent: {target.peer} cannot list sessions")
            for label in ("offset 0", "last page")] if target.has_peer else []
    return out


def w6_scaling(target: Any, sizes: list[int], calls: int) -> list[Result]:
    where = target.filled("w6", {f"u{n}": n for n in sizes}, sum(sizes))
    out = []
    with SessionRepository(where) as repo:
        for n in sizes:
            user = f"u{n}"
            samples: list[float] = []
            for k in range(calls):  # offsets spread over the whole listing
                offset = (n - 50) * k // max(1, calls - 1)
                timed(samples, repo.get_sessions, user, limit=50, offset=offset)
            out.append(Result("W6", f"by offset, {n:,} sessions", "sessions_dal", samples))
            keyset: list[float] = []
            # One sample per page (the time to get the next 50), walking the whole
            # listing as often as needed for as many samples as by offset: a small
            # listing alone has too few pages for a steady median.
            while len(keyset) < calls:
                pages = repo.iter_sessions(user, page_size=50)
                while True:
                    start = time.perf_counter()
                    batch = [s for _, s in zip(range(50), pages, strict=False)]
                    if not batch:
                        break
                    keyset.append(time.perf_counter() - start)
            out.append(Result("W6", f"by keyset, {n:,} sessions", "sessions_dal", keyset))
    return out


def w7_memory(target: Any, n: int) -> Result:
    where = target.filled("w7", {"big": n}, n)
    with SessionRepository(where) as repo:
        gc.collect()
        tracemalloc.start()
        count = sum(1 for _ in repo.iter_sessions("big", page_size=100))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert count == n
    return Result("W7", f"peak traced memory iterating {n:,} sessions (MB)", "sessions_dal",
                  [peak / 1e6])


def w8_threads(target: Any, thread_counts: list[int], per_thread: int) -> list[Result]:
    """Appends from T threads at once, each to a session of its own, through one repository.

    SQLite runs one write at a time whatever T; PostgreSQL's row locks let
    writes to different sessions proceed together, up to the pool's size.
    """
    out = []
    for threads in thread_counts:
        where = target.empty(f"w8_{threads}")
        options = {"pool_size": threads} if target.backend == "postgresql" else {}
        with SessionRepository(where, busy_timeout=60, **options) as repo:
            sessions = [repo.create_session(f"user{n}") for n in range(threads)]
            samples: list[list[float]] = [[] for _ in range(threads)]
            barrier = threading.Barrier(threads)
            workers = [threading.Thread(target=_append, args=(
                barrier, sessions[n], samples[n], per_thread)) for n in range(threads)]
            start = time.perf_counter()
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            elapsed = time.perf_counter() - start
        every = [x for thread in samples for x in thread]
        out.append(Result("W8", f"add_items([1 item]), {threads} thread(s) at once",
                          "sessions_dal", every, "ops/s: all threads together",
                          throughput=threads * per_thread / elapsed))
    return out


def _append(barrier: threading.Barrier, session: Any, samples: list[float], count: int
            ) -> None:
    barrier.wait()
    for _ in range(count):
        timed(samples, session.add_items, [ITEM])


# -- issue 13: what a chat app needs ---------------------------------------------


def w9_activity_pages(target: Any, sizes: list[int], calls: int) -> list[Result]:
    """The first page of a user's sessions by last activity, at several sizes: flat."""
    where = target.filled("w9", {f"u{n}": n for n in sizes}, sum(sizes))
    runners = [("sessions_dal", Ours(where)), (target.raw, target.raw_on(where))]
    out = []
    for n in sizes:
        for _, impl in runners:
            assert len(impl.page(f"u{n}", 50, 0, "updated")) == 50
        samples = round_robin(runners, calls,
                              lambda _, impl, __, user=f"u{n}": impl.page(user, 50, 0, "updated"))
        out += [Result("W9", f"page of 50 by activity, {n:,} sessions", name, samples[name])
                for name, _ in runners]
    for _, impl in runners:
        impl.close()
    return out


def w10_scroll_back(target: Any, items: int, calls: int) -> list[Result]:
    """get_items(20, offset=k): near the newest, and deep in a long conversation."""
    runners = target.implementations("w10", minimal=False)
    ids = {}
    for name, impl in runners:
        ids[name] = impl.create_session("alice")
        for start in range(0, items, 1000):
            impl.add_items(ids[name], [dict(ITEM, n=i) for i in range(start, start + 1000)])
    out = []
    for offset in (0, 100, items - 20):
        for name, impl in runners:
            got = impl.get_items(ids[name], 20, offset)
            assert got[-1]["n"] == items - 1 - offset
        samples = round_robin(runners, calls,
                              lambda name, impl, _, k=offset: impl.get_items(ids[name], 20, k))
        out += [Result("W10", f"get_items(20, offset={offset:,}) of {items:,}", name,
                       samples[name]) for name, _ in runners]
    for _, impl in runners:
        impl.close()
    return out


def w11_fork(target: Any, items: int, repeats: int) -> list[Result]:
    """fork_session of a long session, against add_items of the same items."""
    runners = target.implementations("w11", minimal=False)
    batch = [dict(ITEM, n=i) for i in range(items)]
    parents = {}
    for name, impl in runners:
        parents[name] = impl.create_session("alice")
        impl.add_items(parents[name], batch)
    samples = round_robin(runners, repeats,
                          lambda name, impl, _: impl.fork(parents[name]))
    out = [Result("W11", f"fork_session of {items:,} items", name, samples[name])
           for name, _ in runners]
    ours = dict(runners)["sessions_dal"]
    fresh = [ours.create_session("alice") for _ in range(repeats)]
    adds: list[float] = []
    for session_id in fresh:
        timed(adds, ours.add_items, session_id, batch)
    out.append(Result("W11", f"fork_session of {items:,} items", "add_items (same items)",
                      adds, "sessions_dal's add_items of the same items, for scale"))
    for _, impl in runners:
        impl.close()
    return out


def w12_prune(target: Any, sessions: int) -> list[Result]:
    """prune(keep_last=0) of every session of 100 users, one item each: one run each.

    The database was searched first (every item indexed, so every item's words
    are erased too), for sessions_dal and for the same statements by hand (raw
    driver); the same prune also runs on a database without the index."""
    owned = {f"u{n}": sessions // 100 for n in range(100)}
    out = []
    for impl_name in ("sessions_dal", NO_INDEX_NAME, target.raw):
        where = target.filled(f"w12_{len(out)}", owned, sessions, items=True)
        if impl_name != NO_INDEX_NAME:  # searched once: every item indexed, to erase
            with SessionRepository(where) as repo:
                repo.update_search_index()
        impl = (target.raw_on(where) if impl_name == target.raw else
                Ours(where, indexed=impl_name == "sessions_dal", backend=target.backend))
        samples: list[float] = []
        deleted = timed(samples, impl.prune_all)
        assert deleted == sessions, deleted
        impl.close()
        out.append(Result("W12", f"prune {sessions:,} sessions (1 item each)", impl_name,
                          samples, "one run"))
    return out


def w13_compaction(target: Any, items: int, repeats: int, calls: int) -> list[Result]:
    """Compaction that keeps the history: compacting 90% of a long session, reading the
    model's view after it, and walking the whole transcript.

    *raw* does the least such a compaction must (the items to the history table, the
    summary, the kept items after it, the old rows deleted), on a database without
    the search index's triggers (sessions_dal also indexes the history it writes),
    and reads the history with two plain queries; the view's read and the search are
    against sessions_dal's own on an uncompacted session."""
    runners = target.implementations("w13", minimal=False, raw_indexed=False)
    batch = [dict(ITEM, n=i) for i in range(items)]
    upto = items * 9 // 10
    out = []

    def fill(user: str) -> dict[str, list[str]]:
        """``repeats`` sessions of ``user`` per implementation, each holding ``batch``."""
        made: dict[str, list[str]] = {}
        for name, impl in runners:
            made[name] = []
            for _ in range(repeats):
                session_id = impl.create_session(user)
                impl.add_items(session_id, batch)
                made[name].append(session_id)
        return made

    sessions = fill("alice")
    compacted = round_robin(runners, repeats, lambda name, impl, n: impl.compact(
        sessions[name][n], {"role": "system", "content": "summary"}, upto))
    out += [Result("W13", f"compact {upto:,} of {items:,} items", name, compacted[name])
            for name, _ in runners]
    # The same after a search indexed the items: sessions_dal takes the moved
    # items' words from the items' index instead of computing them.
    searched = fill("erin")
    dict(runners)["sessions_dal"].repo.update_search_index()
    compacted = round_robin(runners, repeats, lambda name, impl, n: impl.compact(
        searched[name][n], {"role": "system", "content": "summary"}, upto))
    out += [Result("W13", f"compact {upto:,} of {items:,} items, searched before", name,
                   compacted[name]) for name, _ in runners]
    walks = round_robin(runners, repeats,
                        lambda name, impl, n: impl.history(sessions[name][n]))
    out += [Result("W13", f"iter_history of {items:,} items (after compaction)", name,
                   walks[name]) for name, _ in runners]
    ours = dict(runners)["sessions_dal"]
    view = items - upto + 1
    plain = ours.create_session("alice")
    ours.add_items(plain, batch[:view])
    reads = round_robin([("compacted", ours), ("plain", ours)], calls,
                        lambda name, impl, _: impl.get_items(
                            sessions["sessions_dal"][0] if name == "compacted" else plain, 20))
    out.append(Result("W13", f"get_items(20) of a compacted view of {view:,} items",
                      "sessions_dal", reads["compacted"]))
    out.append(Result("W13", f"get_items(20) of a compacted view of {view:,} items",
                      target.raw, reads["plain"],
                      f"sessions_dal on an uncompacted session of {view:,} items"))
    # Search reads the compacted history too (schema version 9): a word in every
    # item, so that every match is ranked, 90% of them in the history; against
    # the same search of an uncompacted session of as many items.
    users = {"compacted": "carol", "plain": "dave"}
    for name, user in users.items():
        session_id = ours.create_session(user)
        ours.add_items(session_id, batch)
        if name == "compacted":
            ours.compact(session_id, {"role": "system", "content": "summary"}, upto)
    ours.repo.update_search_index()
    searches = round_robin([("compacted", ours), ("plain", ours)], max(calls // 100, 5),
                           lambda name, impl, _: impl.repo.search(users[name], "rome", limit=20))
    out.append(Result("W13", f"search of a word in all {items:,} items, {upto:,} compacted",
                      "sessions_dal", searches["compacted"]))
    out.append(Result("W13", f"search of a word in all {items:,} items, {upto:,} compacted",
                      target.raw, searches["plain"],
                      f"sessions_dal on an uncompacted session of {items:,} items"))
    for _, impl in runners:
        impl.close()
    return out
