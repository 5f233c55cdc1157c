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


def test_a_path_named_by_a_record_stays_inside_its_directory(tmp_path):
    from optical.errors import OpticalError
    from optical.storage import path_in_record

    run = tmp_path / "run"
    (run / "per_query").mkdir(parents=True)
    assert path_in_record(run, "per_query/a.tsv", run / "eval.json", "files.per_query") == run / "per_query" / "a.tsv"
    (run / "per_query" / "link").symlink_to(tmp_path)
    for value, problem in (
        ("/etc/hostname", "is absolute"),
        ("../x", "climbs out"),
        ("per_query/link/x", "leads outside through a link"),
        ("", "is not a relative path"),
        (None, "is not a relative path"),
    ):
        with pytest.raises(OpticalError, match=problem):
            path_in_record(run, value, run / "eval.json", "files.per_query")
    # A study's runs are links into the store by design: checked as written, not through links.
    assert path_in_record(run, "per_query/link/x", run / "study.json", "runs[0].path", follow_links=False)


def test_an_output_lock_refuses_a_second_holder_and_is_gone_after(tmp_path, monkeypatch):
    from optical.errors import OpticalError
    from optical.storage import LOCKS_DIR, output_lock

    monkeypatch.setenv("OPTICAL_CACHE_DIR", str(tmp_path / "cache"))
    with output_lock(tmp_path / "out"):
        with pytest.raises(OpticalError, match=rf"--out {tmp_path / 'out'} is being written .*pid {os.getpid()}"):
            with output_lock(tmp_path / "out"):
                pass
        with output_lock(tmp_path / "other"):  # another dir: its own lock
            pass
    assert not list((tmp_path / "cache" / LOCKS_DIR).iterdir())
    with output_lock(tmp_path / "out"):  # released: taken again
        pass


def test_a_full_disk_error_names_the_target_and_its_remedy(tmp_path):
    import errno

    from optical.storage import disk_full_error

    named = disk_full_error(OSError(errno.ENOSPC, "No space left on device"), tmp_path / "out")
    assert named.filename == str(tmp_path / "out") and "free space" in named.strerror
    wrapped = disk_full_error(RuntimeError("Error while serializing: I/O error: File too large (os error 27)"), "x")
    assert wrapped.errno == errno.EFBIG and "ulimit -f" in wrapped.strerror
    assert disk_full_error(OSError(errno.EACCES, "Permission denied"), "x") is None
