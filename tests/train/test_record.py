"""run.json is owned by RunRecord: written by the trainer, read back with typed fields."""

import json
from pathlib import Path

import pytest
import torch

from optical.errors import OpticalError
from optical.storage import atomic_write_json
from optical.train import distill
from optical.train.record import RUN_JSON, RunRecord

RESULTS = Path(__file__).resolve().parents[2] / "results"
COMMITTED = sorted(RESULTS.glob("**/run.json"))


def test_committed_results_hold_run_records():
    assert COMMITTED, f"no run.json under {RESULTS}"


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: str(p.relative_to(RESULTS)))
def test_every_committed_run_json_loads_and_round_trips_byte_for_byte(path, tmp_path):
    record = RunRecord.load(path)
    assert record.completed and record.out_dir == path.parent and record.student_dir == path.parent / "student"
    assert record.result.steps > 0 and record.timings.train_seconds > 0
    assert record.config.method_spec.names  # the stored method parses
    assert record.fingerprint == record.config.training_fingerprint()
    assert RunRecord.load(path.parent) == record  # the dir or the file
    record.save(tmp_path)
    assert (tmp_path / RUN_JSON).read_bytes() == path.read_bytes()


def test_a_run_writes_a_record_whose_fields_match_the_result(tiny_config):
    result = distill(tiny_config("ot", select_on="xquad_dev", eval_every=4, grad_accum=2), progress=False)
    record = RunRecord.load(result.out_dir)
    r = record.result
    assert (r.steps, r.best_step, r.best_metric, r.history) == (
        result.steps,
        result.best_step,
        result.best_metric,
        result.history,
    )
    assert r.selection_metric == "xquad_dev_mrr@10" and record.data_fingerprint == result.data_fingerprint
    assert r.dev_before == r.history[0]["xquad_dev_mrr@10"] and [s for s, _ in r.dev_history] == [0, 4]
    assert r.spread_measured and all(0.0 < h["dev_query_spread"] <= 2.0 for h in r.history) and r.collapsed_at is None
    # The record holds the config as it ran: with the precision that ``auto`` resolved to on this machine.
    asked = tiny_config("ot", select_on="xquad_dev", eval_every=4, grad_accum=2)
    assert record.config.to_dict() == asked.resolved().to_dict() and record.config.mixed_precision != "auto"
    assert record.num_processes == 1 and record.device == "cpu" and record.completed
    # Pairs per second count every pair of every process: batch x processes x grad_accum x steps.
    pairs = r.steps * record.config.batch_size * record.num_processes * record.config.grad_accum
    assert r.pairs_per_second == pytest.approx(pairs / record.timings.train_seconds)
    assert list(json.loads((result.out_dir / RUN_JSON).read_text())) == [
        "config",
        "fingerprint",
        "teacher",
        "data_fingerprint",
        "bitext",
        "versions",
        "timings",
        "device",
        "num_processes",
        "result",
        "completed",
        "student_files",
        "throughput",
    ]
    speed = record.throughput
    assert speed.pairs_per_second > 0 and speed.tokens_per_second > speed.pairs_per_second
    assert 0.0 <= speed.padding_fraction < 1.0 and speed.length_grouping
    assert speed.torch_threads == torch.get_num_threads()
    assert set(speed.phase_seconds) == {"data", "forward", "loss", "backward", "optimizer"}
    assert all(v >= 0 for v in speed.phase_seconds.values()) and speed.phase_seconds["forward"] > 0
    assert record.student_files["model.safetensors"]["size"] == (result.student_dir / "model.safetensors").stat().st_size
    record.verify_student()


def test_a_changed_student_is_refused_on_rerun_in_one_line(tiny_config):
    config = tiny_config("mse")
    result = distill(config, progress=False)
    weights = result.student_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])  # truncated
    with pytest.raises(OpticalError) as err:
        distill(config, progress=False)
    assert "model.safetensors changed" in str(err.value) and "--overwrite" in str(err.value) and "\n" not in str(err.value)
    assert distill(config, overwrite=True, progress=False).steps == result.steps
    RunRecord.load(result.out_dir).verify_student()


def test_an_old_record_without_student_files_still_loads(tiny_config):
    result = distill(tiny_config("mse"), progress=False)
    info = json.loads((result.out_dir / RUN_JSON).read_text())
    del info["student_files"]
    atomic_write_json(result.out_dir / RUN_JSON, info)
    record = RunRecord.load(result.out_dir)
    assert record.student_files is None
    record.verify_student()  # the safetensors header still checked
    (result.student_dir / "model.safetensors").write_bytes(b"")
    with pytest.raises(OpticalError, match="model.safetensors is corrupt"):
        record.verify_student()


def test_missing_or_damaged_records_are_one_line_errors_and_find_gives_none(tmp_path):
    with pytest.raises(OpticalError, match="has no run.json"):
        RunRecord.load(tmp_path)
    assert RunRecord.find(tmp_path) is None
    (tmp_path / RUN_JSON).write_text("{not json")
    with pytest.raises(OpticalError, match="cannot be read"):
        RunRecord.load(tmp_path)
    atomic_write_json(tmp_path / RUN_JSON, {"config": {}, "completed": True})
    with pytest.raises(OpticalError) as err:
        RunRecord.load(tmp_path / RUN_JSON)
    assert "\n" not in str(err.value) and "not a run record" in str(err.value)
    assert RunRecord.find(tmp_path) is None
