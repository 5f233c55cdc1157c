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


def test_a_yaml_key_given_twice_is_refused_but_a_merge_key_may_override(tmp_path):
    from optical.errors import OpticalError
    from optical.storage import load_yaml_file

    merged = tmp_path / "merged.yaml"
    merged.write_text("base: &base {lr: 0.1, epochs: 2}\ntuned: {<<: *base, epochs: 3}\n")
    assert load_yaml_file(merged)["tuned"] == {"lr": 0.1, "epochs": 3}
    twice = tmp_path / "twice.yaml"
    twice.write_text("study: x\nbase:\n  lr: 0.1\n  lr: 0.2\n")
    with pytest.raises(OpticalError, match=r"twice.yaml:4:3: config file is refused: .*key 'lr' is given twice"):
        load_yaml_file(twice)


def test_an_output_dir_probe_leaves_nothing_behind(tmp_path):
    from optical.storage import check_output_dir

    (tmp_path / "out").mkdir()
    check_output_dir(tmp_path / "out")
    check_output_dir(tmp_path / "new" / "deeper")
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["out"]
