"""optical.storage: atomic writes leave either the old file or the whole new one, with ordinary permissions."""

from __future__ import annotations

import os

import pytest

from optical.storage import atomic_path, atomic_write_json, atomic_write_text


def test_written_file_has_the_mode_of_a_plain_open(tmp_path):
    previous = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "hello")
    finally:
        os.umask(previous)
    assert (tmp_path / "a.txt").read_text() == "hello"
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "result.json"
    atomic_write_json(target, {"done": True})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == '{\n  "done": true\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
