"""A study deletes a run's student weights once its evaluations are done, unless keep_weights says otherwise."""

from __future__ import annotations

import pytest

from optical.errors import OpticalError
from optical.study.config import parse_study_config
from optical.study.grid import expand
from optical.study.status import drop_student_weights
from optical.train.record import RunRecord


def test_keep_weights_at_the_top_or_in_cells(smoke_raw):
    assert not parse_study_config(dict(smoke_raw), "smoke").keep_weights
    everything = parse_study_config({**smoke_raw, "keep_weights": True}, "smoke")
    assert all(everything.keeps_weights(run) for run in expand(everything).runs)
    cells = [{"seeds": [0], "keep_weights": True}, {"seeds": [1]}]
    config = parse_study_config({**smoke_raw, "cells": cells}, "smoke")
    kept = {run.seed for run in expand(config).runs if not run.is_zero_shot and config.keeps_weights(run)}
    assert kept == {0}
    with pytest.raises(OpticalError, match="keep_weights must be true or false"):
        parse_study_config({**smoke_raw, "keep_weights": "yes"}, "smoke")


def test_a_finished_study_keeps_records_but_no_student_weights(smoke_study):
    distilled = sorted(smoke_study.store.glob("**/distill/run.json"))
    assert distilled
    for path in distilled:
        record = RunRecord.load(path)
        assert record.student_files and "model.safetensors" in record.student_files  # sizes and sha256 kept
        assert not list((path.parent / "student").glob("*.safetensors"))
        assert (path.parent / "student" / "config.json").is_file()
        assert not (path.parent / "checkpoint").exists()
    with pytest.raises(OpticalError) as info:
        RunRecord.load(distilled[0]).verify_student()
    assert "\n" not in str(info.value)
    assert drop_student_weights(distilled[0].parent.parent) == []
