"""What each operation guarantees when several connections run it at once, on every backend.

Each test runs the operation from several threads, each with a repository of
its own (another process, as far as the database can tell), released together
by a barrier, and then checks counts and identities, never timings. SQLite
passes them by construction (``BEGIN IMMEDIATE`` makes every write wait its
turn); a server with row locks must earn them, operation by operation.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import threading
from collections.abc import Callable
from typing import Any

import pytest
from backends import Backend

from sessions_dal import SessionRepository
from sessions_dal.errors import SessionExistsError, SessionNotFoundError, SessionOwnedError
from sessions_dal.transfer import export_jsonl, import_jsonl

THREADS = 4


def together(backend: Backend, work: Callable[[SessionRepository, int], Any],
             threads: int = THREADS) -> list[Any]:
    """Run ``work(repo, n)`` in ``threads`` threads at once; return results (or exceptions)."""
    repos = [backend.open(busy_timeout=30) for _ in range(threads)]
    barrier = threading.Barrier(threads)
    results: list[Any] = [None] * threads

    def run(n: int) -> None:
        barrier.wait()
        try:
            results[n] = work(repos[n], n)
        except Exception as exc:  # handed to the test, which says what is allowed
            results[n] = exc

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    for repo in repos:
        repo.close()
    assert not any(worker.is_alive() for worker in workers)
    return results


def test_concurrent_pops_hand_out_each_item_once_and_never_none_while_items_remain(
    backend: Backend,
) -> None:
    with backend.open() as repo:
        session_id = repo.create_session("alice").session_id
        repo.get_session("alice", session_id).add_items(list(range(200)))  # type: ignore[union-attr]

    def pop_all(repo: SessionRepository, n: int) -> tuple[list[int], int]:
        s = repo.get_session("alice", session_id)
        assert s is not None
        popped: list[int] = []
        while (item := s.pop_item()) is not None:
            popped.append(item)
        return popped, s.count_items()  # None came: nothing may be left

    results = together(backend, pop_all)
    assert not [r for r in results if isinstance(r, Exception)], results
    everything = [item for popped, _ in results for item in popped]
    assert sorted(everything) == list(range(200))  # each item exactly once
    assert [left for _, left in results] == [0] * THREADS
    for popped, _ in results:
        assert popped == sorted(popped, reverse=True)  # each thread got later items first


def test_concurrent_metadata_merges_of_other_keys_keep_every_key(backend: Backend) -> None:
    with backend.open() as repo:
        session_id = repo.create_session("alice", metadata={"title": "Trip"}).session_id

    def merge(repo: SessionRepository, n: int) -> None:
        for k in range(25):
            repo.update_metadata("alice", session_id, {f"t{n}k{k}": k})

    assert together(backend, merge) == [None] * THREADS
    with backend.open() as repo:
        found = repo.get_session("alice", session_id)
        assert found is not None
        expected = {"title": "Trip"} | {f"t{n}k{k}": k for n in range(THREADS) for k in range(25)}
        assert found.metadata == expected


def test_two_users_claiming_one_unowned_session_one_wins(backend: Backend) -> None:
    for round_ in range(5):
        session_id = f"chat-{round_}"
        backend.write_like_agents(session_id, ['"hello"'])
        results = together(
            backend, lambda repo, n, sid=session_id: repo.claim_session(f"user{n}", sid))
        winners = [r for r in results if not isinstance(r, Exception)]
        losers = [r for r in results if isinstance(r, Exception)]
        assert len(winners) == 1, results
        assert all(isinstance(r, SessionOwnedError) for r in losers), losers
        with backend.open() as repo:
            owner = repo.find_session(session_id)
            assert owner is not None and owner.user_id == winners[0].user_id
            assert owner.get_items() == ["hello"]


def test_concurrent_batches_on_one_session_stay_whole_and_in_order(backend: Backend) -> None:
    with backend.open() as repo:
        session_id = repo.create_session("alice").session_id

    def add(repo: SessionRepository, n: int) -> None:
        s = repo.get_session("alice", session_id)
        assert s is not None
        for batch in range(10):
            s.add_items([[n, batch, i] for i in range(20)])

    assert together(backend, add) == [None] * THREADS
    with backend.open() as repo:
        items = repo.get_session("alice", session_id).get_items()  # type: ignore[union-attr]
    assert len(items) == THREADS * 10 * 20
    batches = [items[i:i + 20] for i in range(0, len(items), 20)]
    for batch in batches:  # contiguous: every run of 20 is one whole batch, in order
        n, b = batch[0][:2]
        assert batch == [[n, b, i] for i in range(20)]
    for n in range(THREADS):  # each thread's batches in the order it added them
        assert [b for b_n, b, _ in (x[0] for x in batches) if b_n == n] == list(range(10))


def test_create_session_racing_delete_user_loses_nothing_it_acknowledged(
    backend: Backend,
) -> None:
    def work(repo: SessionRepository, n: int) -> list[str]:
        created = []
        for _ in range(30):
            if n % 2:
                repo.delete_user("alice")
            else:
                created.append(repo.create_session("alice").session_id)
        return created

    results = together(backend, work)
    assert not [r for r in results if isinstance(r, Exception)], results
    with backend.open() as repo:
        listed = {s.session_id for s in repo.get_sessions("alice")}
        made = {sid for r in results for sid in r}
        assert listed <= made  # nothing appears that nobody created
        for session_id in listed:  # and what is there is whole: owner, user, row
            assert repo.get_session("alice", session_id) is not None
        assert repo.check() == []


def test_an_import_racing_create_session_of_the_same_id_one_wins_whole(
    backend: Backend,
) -> None:
    with backend.open() as source:
        source.create_session("bob", session_id="shared").add_items(list(range(50)))
        out = io.StringIO()
        export_jsonl(source, out)
        source.delete_user("bob")
    lines = out.getvalue().splitlines(keepends=True)

    def work(repo: SessionRepository, n: int) -> str:
        if n == 0:
            import_jsonl(repo, lines)
            return "import"
        repo.create_session("carol", session_id="shared")
        return "create"

    results = together(backend, work, threads=2)
    winners = [r for r in results if isinstance(r, str)]
    assert len(winners) == 1 and all(
        isinstance(r, SessionExistsError) for r in results if not isinstance(r, str)), results
    with backend.open() as repo:
        found = repo.find_session("shared")
        assert found is not None
        if winners == ["import"]:
            assert found.user_id == "bob" and found.get_items() == list(range(50))
        else:
            assert found.user_id == "carol" and found.get_items() == []
            assert repo.get_users()[0].user_id == "carol"  # the losing import left no bob


def test_creating_one_session_id_at_once_one_wins(backend: Backend) -> None:
    for round_ in range(5):
        results = together(backend, lambda repo, n, r=round_: repo.create_session(
            f"user{n}", session_id=f"same-{r}", metadata={"by": n}).user_id)
        winners = [r for r in results if isinstance(r, str)]
        assert len(winners) == 1, results
        assert all(isinstance(r, SessionExistsError) for r in results if r not in winners)
        with backend.open() as repo:
            found = repo.find_session(f"same-{round_}")
            assert found is not None and found.user_id == winners[0]
            assert found.metadata == {"by": int(winners[0][4:])}
            assert sum(u.sessions for u in repo.get_users()) == round_ + 1
            assert all(u.sessions for u in repo.get_users())  # losers left no user


def test_appends_racing_a_delete_either_land_before_it_or_fail(backend: Backend) -> None:
    # An append acknowledged after the delete must not leave items behind a
    # session that no longer exists (nor revive it for anyone).
    for round_ in range(3):
        with backend.open() as repo:
            session_id = repo.create_session("alice").session_id

        def work(repo: SessionRepository, n: int, sid: str = session_id) -> object:
            if n == 0:
                return repo.delete_session("alice", sid)
            s = repo.get_session("alice", sid)
            if s is None:
                return "gone"
            acknowledged = 0
            for k in range(20):
                try:
                    s.add_items([k])
                except SessionNotFoundError:
                    return acknowledged
                acknowledged += 1
            return acknowledged

        results = together(backend, work)
        assert results[0] is True, results
        assert not [r for r in results if isinstance(r, Exception)], results
        with backend.open() as repo:
            assert repo.find_session(session_id) is None
            assert repo.get_unowned_sessions() == []
            assert repo.info().items == 0, round_  # nothing orphaned


def test_clears_racing_appends_keep_whole_batches(backend: Backend) -> None:
    with backend.open() as repo:
        session_id = repo.create_session("alice").session_id

    def work(repo: SessionRepository, n: int) -> None:
        s = repo.get_session("alice", session_id)
        assert s is not None
        for k in range(15):
            if n == 0:
                s.clear_session()
            else:
                s.add_items([[n, k, i] for i in range(5)])

    assert together(backend, work) == [None] * THREADS
    with backend.open() as repo:
        items = repo.get_session("alice", session_id).get_items()  # type: ignore[union-attr]
    assert len(items) % 5 == 0  # a clear never cuts a batch in two
    for start in range(0, len(items), 5):
        n, k = items[start][:2]
        assert items[start:start + 5] == [[n, k, i] for i in range(5)]


def _open_at_barrier(opener: Callable[[], SessionRepository], barrier: Any) -> None:
    barrier.wait()
    with opener() as repo:
        repo.create_session("alice")


def test_processes_opening_a_new_database_together_all_succeed_once(backend: Backend) -> None:
    ctx = multiprocessing.get_context("spawn")
    workers = 6
    barrier = ctx.Barrier(workers)
    procs = [ctx.Process(target=_open_at_barrier, args=(backend.opener(), barrier))
             for _ in range(workers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
    assert [proc.exitcode for proc in procs] == [0] * workers
    with backend.open() as repo:
        assert repo.count_sessions("alice") == workers
        assert repo.pending_migrations() == []
    assert backend.migrations_recorded() == sorted(set(backend.migrations_recorded()))


@pytest.mark.parametrize("threads", [8])
def test_one_repository_shared_by_threads_serves_them_all(backend: Backend, threads: int
                                                          ) -> None:
    with backend.open() as repo:
        errors: list[BaseException] = []

        def work(n: int) -> None:
            try:
                s = repo.create_session(f"user{n}")
                for k in range(20):
                    s.add_items([{"n": n, "k": k}])
                    assert s.get_items(1) == [{"n": n, "k": k}]
                json.dumps(repo.info().__dict__)
            except BaseException as exc:
                errors.append(exc)

        workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(120)
        assert errors == []
        assert sum(repo.count_sessions(f"user{n}") for n in range(threads)) == threads
