"""Files written whole or not at all: the export and backup targets."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from sessions_dal._files import new_file_mode, publish, temporary_beside


def test_a_published_file_appears_whole_with_a_new_files_mode(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    with temporary_beside(str(target), ".tmp-") as temporary:
        Path(temporary).write_text("done")
        publish(temporary, str(target), overwrite=False)
    assert target.read_text() == "done"
    assert stat.S_IMODE(target.stat().st_mode) == new_file_mode()
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_a_file_that_appeared_meanwhile_is_never_replaced(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    with temporary_beside(str(target), ".tmp-") as temporary:
        target.write_text("someone else's")
        with pytest.raises(FileExistsError, match="already exists"):
            publish(temporary, str(target), overwrite=False)
    assert target.read_text() == "someone else's"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temporary left


def test_without_hard_links_it_checks_then_renames(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(source: str, target: str) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    target = tmp_path / "out.txt"
    for expected in ("first", None):
        with temporary_beside(str(target), ".tmp-") as temporary:
            Path(temporary).write_text("first" if expected else "second")
            if expected:
                publish(temporary, str(target), overwrite=False)
            else:
                with pytest.raises(FileExistsError):
                    publish(temporary, str(target), overwrite=False)
    assert target.read_text() == "first"


def test_errors_name_the_target_never_the_temporary_file(tmp_path: Path) -> None:
    with pytest.raises(OSError, match=r"No such file or directory: '.*missing/x'") as info, \
            temporary_beside(str(tmp_path / "missing" / "x"), ".tmp-"):
        pass
    assert ".tmp-" not in str(info.value)
    with temporary_beside(str(tmp_path / "x"), ".tmp-") as temporary:
        with pytest.raises(OSError, match=r"No such file or directory: '.*gone/x'") as info:
            publish(temporary, str(tmp_path / "gone" / "x"), overwrite=True)
        assert ".tmp-" not in str(info.value)
