import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from optical.errors import OpticalError
from optical.models.encoder import Encoder
from optical.models.tiny import make_tiny_model
from optical.train import DistillConfig, distill

RESULTS = Path(__file__).resolve().parents[2] / "results"


def weights(student_dir):
    return load_file(str(student_dir / "model.safetensors"))


@pytest.mark.parametrize("method", ["ot", "mse", "contrastive", "hard_align", "ot:1+mse:0.5"])
def test_each_method_trains_and_saves_a_loadable_student(tiny_config, tiny_teacher, method):
    config = tiny_config(method)
    result = distill(config, progress=False)
    assert result.steps == 128 // 16
    student = Encoder.load(result.student_dir)
    assert student.encode(["γεια σου"], kind="query").shape == (1, 32)
    info = json.loads((result.out_dir / "run.json").read_text())
    assert info["completed"] and info["config"]["method"] == method
    assert info["data_fingerprint"] == result.data_fingerprint
    log = [json.loads(line) for line in (result.out_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, result.steps + 1))
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in log)
    # Training moved the weights away from the initial ones.
    before, after = weights(tiny_teacher), weights(result.student_dir)
    assert any(not torch.equal(before[k], after[k]) for k in before if k in after)


def test_same_seed_same_weights_other_seed_other_weights(tiny_config):
    a = distill(tiny_config("ot", out="a", seed=3), progress=False)
    b = distill(tiny_config("ot", out="b", seed=3), progress=False)
    c = distill(tiny_config("ot", out="c", seed=4), progress=False)
    wa, wb, wc = weights(a.student_dir), weights(b.student_dir), weights(c.student_dir)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any(not torch.equal(wa[k], wc[k]) for k in wa)


def test_a_run_is_rebuilt_from_its_run_json_with_the_same_weights(tiny_config, tmp_path):
    original = distill(tiny_config("ot", out="original", seed=5, loss_options={"ot": {"eps": 0.1}}), progress=False)
    rebuilt_config = DistillConfig.from_yaml(original.out_dir / "run.json", out_dir=str(tmp_path / "rebuilt"))
    assert rebuilt_config.training_fingerprint() == json.loads((original.out_dir / "run.json").read_text())["fingerprint"]
    rebuilt = distill(rebuilt_config, progress=False)
    wa, wb = weights(original.student_dir), weights(rebuilt.student_dir)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    with pytest.raises(OpticalError, match="give --out"):
        DistillConfig.from_yaml(original.out_dir / "run.json")


def test_a_committed_run_of_an_older_version_rebuilds_with_its_own_settings(tmp_path):
    # study-cpu ran before length grouping and quarter-epoch selection existed: its run.json leaves them out.
    record_path = next(iter(sorted(RESULTS.glob("study-cpu/runs/*/distill/run.json"))))
    record = json.loads(record_path.read_text())
    assert "length_grouping" not in record["config"]
    config = DistillConfig.from_yaml(record_path, out_dir=str(tmp_path / "rebuilt"))
    assert config.length_grouping is False and config.evals_per_epoch == 1
    assert config.training_fingerprint() == record["fingerprint"]


def test_a_diverging_run_stops_with_an_error_instead_of_saving_a_nan_student(tiny_config):
    with pytest.raises(OpticalError, match="training diverged: loss (nan|inf)"):
        distill(tiny_config("mse", lr=1e30), progress=False)


def test_frozen_word_embeddings_do_not_move(tiny_config, tiny_teacher):
    result = distill(tiny_config("ot", freeze_embeddings=True), progress=False)
    key = "embeddings.word_embeddings.weight"
    assert torch.equal(weights(tiny_teacher)[key], weights(result.student_dir)[key])


def test_finished_run_is_returned_without_training_again(tiny_config):
    config = tiny_config("mse")
    first = distill(config, progress=False)
    stamp = (first.out_dir / "run.json").stat().st_mtime_ns
    again = distill(config, progress=False)
    assert again.steps == first.steps
    assert (first.out_dir / "run.json").stat().st_mtime_ns == stamp


def test_model_selection_keeps_the_best_dev_step(tiny_config):
    result = distill(tiny_config("ot", select_on="xquad_dev", eval_every=4), progress=False)
    steps = [h["step"] for h in result.history]
    assert steps == [0, 4, 8]
    best = max(result.history, key=lambda h: h["xquad_dev_mrr@10"])
    assert result.best_step == best["step"]
    assert result.best_metric == pytest.approx(best["xquad_dev_mrr@10"])


def test_evals_per_epoch_spreads_dev_evaluations_over_the_epoch(tiny_config):
    result = distill(tiny_config("mse", select_on="xquad_dev", evals_per_epoch=3, epochs=2), progress=False)
    assert result.steps == 16  # 128 pairs, batch 16: 8 steps an epoch
    assert [h["step"] for h in result.history] == [0, 3, 6, 8, 11, 14, 16]


def test_projection_bridges_hidden_sizes(tiny_config, tiny_teacher, tmp_path):
    student = make_tiny_model(tmp_path / "student48", hidden=48, seed=1)
    with pytest.raises(OpticalError, match="--projection"):
        distill(tiny_config("ot", student=str(student)), progress=False)
    result = distill(tiny_config("ot", out="proj", student=str(student), projection=True), progress=False)
    assert Encoder.load(result.student_dir).hidden_size == 32


def test_output_dir_with_another_run_is_refused(tiny_config):
    distill(tiny_config("ot"), progress=False)
    with pytest.raises(OpticalError, match="different run"):
        distill(tiny_config("mse"), progress=False)
    assert distill(tiny_config("mse"), overwrite=True, progress=False).steps == 8


def test_budget_larger_than_data_names_the_available_count(tiny_config):
    with pytest.raises(OpticalError) as err:
        distill(tiny_config("ot", budget=10**7), progress=False)
    assert "\n" not in str(err.value) and any(ch.isdigit() for ch in str(err.value))


def test_corrupt_checkpoint_is_an_error_not_a_restart(tiny_config):
    config = tiny_config("ot", budget=256, keep_checkpoint=True)
    out = distill(config, progress=False).out_dir
    (out / "run.json").unlink()  # pretend the run was killed after its last checkpoint
    for path in (out / "checkpoint").rglob("*.safetensors"):
        path.write_bytes(b"garbage")
    with pytest.raises(OpticalError, match="corrupt"):
        distill(config, progress=False)


@pytest.mark.parametrize(
    "method, options, fragment",
    [("otx", {}, "unknown method 'otx'"), ("ot+", {}, "ot+"), ("mse", {"ot": {"eps": 0.1}}, "does not use")],
)
def test_bad_method_or_loss_option_fails_before_any_work(tiny_config, tmp_path, method, options, fragment):
    config = tiny_config(method, loss_options=options)
    with pytest.raises(OpticalError, match=fragment):
        distill(config, progress=False)
    # Refused before the output dir, the bitext or the teacher cache were touched.
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()
