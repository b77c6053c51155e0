from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from backends import KINDS, POSTGRES_ORIGIN, Backend, PostgresBackend, make
from hypothesis import HealthCheck, settings

from sessions_dal import SessionRepository

# Shared, noisy machines: a wall-clock deadline would make properties flaky.
settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci", parent=settings.get_profile("default"), print_blob=True, derandomize=False
)
settings.load_profile("ci" if os.environ.get("CI") else "default")

if importlib.util.find_spec("psycopg_pool") is not None:
    import random

    import psycopg_pool.base
    # The pool's worker threads draw reconnection jitter from the global
    # `random`; Hypothesis takes any change to that state during a draw for a
    # strategy that uses it, and fails the example as flaky. A private source.
    psycopg_pool.base.random = random.Random().random  # type: ignore[attr-defined]

# --doctest-modules imports every module of the package: leave out those whose
# optional dependency is not installed, so the suite runs without the extras.
ROOT = Path(__file__).resolve().parent.parent
collect_ignore = [
    str(ROOT / "sessions_dal" / "agents.py")
] if importlib.util.find_spec("agents") is None else []
if "postgresql" not in KINDS:  # the header says why (pytest_report_header)
    collect_ignore += [str(ROOT / "tests" / "postgres"),
                       str(ROOT / "sessions_dal" / "backends" / "postgres")]


def pytest_configure(config: pytest.Config) -> None:
    if "postgresql" not in KINDS and os.environ.get("CI"):
        raise pytest.UsageError(
            f"CI must run the PostgreSQL tests, but there is no server: {POSTGRES_ORIGIN}"
        )


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """End this process's multiprocessing resource tracker before coverage's data is combined.

    The tests that start processes (spawn) start one such helper per test
    process; measured as a subprocess, it writes its (empty) coverage file
    only when it exits, after the combine, and that file would be left in the
    clone. Python has no public call to stop it; without the private one (a
    future Python), the file is merely left over.
    """
    if "multiprocessing.resource_tracker" not in sys.modules:
        return
    tracker = getattr(sys.modules["multiprocessing.resource_tracker"], "_resource_tracker", None)
    stop = getattr(tracker, "_stop", None)
    if callable(stop):
        stop()


def pytest_report_header(config: pytest.Config) -> str:
    if "postgresql" in KINDS:
        return f"backends: {', '.join(KINDS)} (PostgreSQL: {POSTGRES_ORIGIN})"
    return f"backends: sqlite only; PostgreSQL's tests are skipped: {POSTGRES_ORIGIN}"


@pytest.fixture
def signals_are_safe() -> None:
    """Skip a test that raises from signal handlers where coverage could deadlock.

    coverage before 7.17 (the newest there is for Python 3.10) takes its data
    lock in Python code: an exception a signal handler raises there leaves the
    lock held, and the test's next traced line waits forever. Without
    measurement (``--no-cov``, as CI runs the other Pythons) the test runs.
    """
    if sys.gettrace() is None or importlib.util.find_spec("coverage") is None:
        return
    import coverage

    if tuple(int(part) for part in coverage.__version__.split(".")[:2]) < (7, 17):
        pytest.skip(f"coverage {coverage.__version__} can deadlock when a signal handler "
                    "raises inside its tracer (fixed in 7.17); run with --no-cov to run this")


@pytest.fixture(params=KINDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A clean database of each backend this machine can test."""
    made = make(request.param, tmp_path)
    yield made
    if isinstance(made, PostgresBackend):
        made.drop()


@pytest.fixture
def repo(backend: Backend) -> Iterator[SessionRepository]:
    with backend.open() as repository:
        yield repository


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """The file of the SQLite tests' database (the ``backend`` fixture's, for SQLite)."""
    return tmp_path / "sessions.db"


@pytest.fixture
def memory_repo() -> Iterator[SessionRepository]:
    with SessionRepository(":memory:") as repository:
        yield repository
