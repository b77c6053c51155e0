"""Writing a new file so that a reader never sees half of it.

The content goes to a temporary file beside the target, which is then moved
into place: the target is either untouched or complete, and a failure leaves
no temporary file behind. Errors name the target, never the temporary file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["is_database_file", "new_file_mode", "publish", "temporary_beside"]


@contextmanager
def temporary_beside(target: str, prefix: str) -> Iterator[str]:
    """Yield the path of a new, empty temporary file in ``target``'s folder.

    It is removed on the way out unless :func:`publish` moved it into place.
    """
    folder = os.path.dirname(os.path.abspath(target))
    try:
        fd, temporary = tempfile.mkstemp(prefix=prefix, dir=folder)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, target) from None
    os.close(fd)
    try:
        yield temporary
    finally:
        if os.path.lexists(temporary):
            os.unlink(temporary)


def publish(temporary: str, target: str, *, overwrite: bool, mode: int | None = None) -> None:
    """Move ``temporary`` to ``target``, with ``mode`` (default: a new file's).

    Without ``overwrite`` an existing ``target`` raises ``FileExistsError``,
    checked atomically (a hard link): a file created meanwhile is never lost.
    """
    os.chmod(temporary, new_file_mode() if mode is None else mode)
    try:
        if overwrite:
            os.replace(temporary, target)
            return
        try:
            os.link(temporary, target)
        except FileExistsError:
            raise
        except OSError:  # a filesystem without hard links: check, then rename
            if os.path.lexists(target):
                raise FileExistsError(f"{target!r} already exists") from None
            os.replace(temporary, target)
            return
        os.unlink(temporary)
    except FileExistsError:
        raise FileExistsError(f"{target!r} already exists") from None
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, target) from None


def new_file_mode() -> int:
    """The permissions ``open(path, "w")`` would give a new file: 0o666 less the umask."""
    # The umask can only be read by setting it; set it straight back.
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


_SIDE_FILES = ("-wal", "-shm", "-journal")


def is_database_file(target: str, database: str) -> bool:
    """Whether writing ``target`` would overwrite the SQLite database ``database``.

    True for the database itself and its ``-wal``, ``-shm`` and ``-journal``
    files, whether named directly, through a symlink, or through another name
    of the same file (a hard link: its side files bear that other name).
    """
    real = os.path.realpath(target)
    base = os.path.realpath(database)
    if real in (base, *(base + side for side in _SIDE_FILES)):
        return True
    if not os.path.exists(database):
        return False
    candidates = [real]
    candidates += [real[: -len(side)] for side in _SIDE_FILES if real.endswith(side)]
    for path in candidates:
        if os.path.exists(path) and os.path.samefile(path, database):
            return True
    return any(
        os.path.exists(base + side) and os.path.exists(real)
        and os.path.samefile(base + side, real)
        for side in _SIDE_FILES
    )
