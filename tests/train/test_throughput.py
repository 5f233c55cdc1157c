"""The fast path of a run: tokenized once, length-grouped, shared teacher cache, device-side logs, one student copy."""

from __future__ import annotations

import json

import pytest
import torch

from optical.errors import OpticalError
from optical.losses import DistillBatch, OTLoss
from optical.train import DistillTrainer, distill
from optical.train.batches import epoch_batches
from optical.train.precision import check_precision, cpu_bf16_support, resolve_precision
from optical.train.record import RunRecord

NEEDS_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def test_length_grouping_keeps_the_rows_and_cuts_padding(tiny_config):
    lengths = [(i * 37) % 29 + 1 for i in range(300)]
    plain = epoch_batches(lengths, 16, seed=3, epoch=1, grouping=False)
    grouped = epoch_batches(lengths, 16, seed=3, epoch=1, grouping=True)
    assert len(plain) == len(grouped) == 300 // 16
    assert sorted(i for b in plain for i in b) == sorted(i for b in grouped for i in b)
    assert grouped == epoch_batches(lengths, 16, seed=3, epoch=1, grouping=True)  # seeded
    assert grouped != epoch_batches(lengths, 16, seed=4, epoch=1, grouping=True)

    def padding(batches):
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)

    assert padding(grouped) < padding(plain) / 3
    off = distill(tiny_config("mse", out="plain", length_grouping=False), progress=False)
    on = distill(tiny_config("mse", out="grouped"), progress=False)
    off_speed, on_speed = (RunRecord.load(r.out_dir).throughput for r in (off, on))
    assert not off_speed.length_grouping and on_speed.length_grouping
    assert on_speed.padding_fraction < off_speed.padding_fraction
    # mse needs student(e) too: both sides were tokenized once and counted.
    assert on_speed.tokens_per_second > 2 * on_speed.pairs_per_second


def test_without_grouping_a_run_trains_as_per_step_tokenization_did(tiny_config):
    """The legacy value of length_grouping reproduces the recorded runs: config dict and fingerprint unchanged."""
    legacy = tiny_config("ot", length_grouping=False)
    assert "length_grouping" not in legacy.to_dict() and "length_grouping" in tiny_config("ot").to_dict()
    assert legacy.training_fingerprint() != tiny_config("ot").training_fingerprint()
    assert tiny_config("ot", keep_checkpoint=True).training_fingerprint() == tiny_config("ot").training_fingerprint()


def test_a_finished_run_keeps_one_student_and_no_checkpoint(tiny_config):
    result = distill(tiny_config("ot", select_on="xquad_dev", eval_every=4), progress=False)
    out = result.out_dir
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "metrics.jsonl", "run.json", "student"]
    RunRecord.load(out).verify_student()
    assert distill(tiny_config("ot", select_on="xquad_dev", eval_every=4), progress=False).steps == result.steps
    kept = distill(tiny_config("ot", out="kept", keep_checkpoint=True), progress=False)
    assert (kept.out_dir / "checkpoint" / "trainer_state.json").is_file() and not (kept.out_dir / "best").exists()


def test_a_finalize_killed_after_moving_best_keeps_the_best_student(tiny_config):
    config = tiny_config("ot", select_on="xquad_dev", eval_every=4, keep_checkpoint=True)
    result = distill(config, progress=False)
    weights = (result.student_dir / "model.safetensors").read_bytes()
    (result.out_dir / "run.json").unlink()  # killed after best/ became student/, before run.json
    again = distill(config, progress=False)
    assert again.best_step == result.best_step
    assert (again.student_dir / "model.safetensors").read_bytes() == weights


def test_a_second_seed_encodes_no_new_teacher_sentence(tiny_config):
    encoded = []

    class Watching(DistillTrainer):
        def load_models(self):
            super().load_models()
            encoded.append(self.cache.encoded)

    for seed in (0, 1):  # the whole 510-pair source: the same sentences in another order
        config = tiny_config("mse", out=f"seed{seed}", seed=seed, budget=None, batch_size=64)
        config.sources = ["flores200_sib_dev_extra"]
        Watching(config, progress=False).run()
    assert encoded[0] == 510 and encoded[1] == 0


def test_loss_logs_are_read_in_bursts_and_each_step_is_logged_once(tiny_config, monkeypatch):
    monkeypatch.setattr(DistillTrainer, "log_every", 3)
    result = distill(tiny_config("ot+mse:0.5", budget=256, checkpoint_every=100), progress=False)
    lines = [json.loads(line) for line in (result.out_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == list(range(1, 17))
    assert all(isinstance(line["loss"], float) and line["loss"] > 0 and "ot" in line and "mse" in line for line in lines)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=NEEDS_CUDA)])
def test_large_batches_with_grad_accumulation(tiny_config, device):
    result = distill(tiny_config("ot", budget=1024, batch_size=256, grad_accum=2, max_length=24, device=device), progress=False)
    assert result.steps == 2
    record = RunRecord.load(result.out_dir)
    assert record.throughput.pairs_per_second > 0 and record.result.pairs_per_second > 0


def test_bf16_on_the_cpu_is_refused_in_one_line_without_the_instructions(tmp_path):
    plain = tmp_path / "cpuinfo"
    plain.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n")
    with pytest.raises(OpticalError, match="AVX512-BF16 or AMX") as info:
        check_precision("cpu", "bf16", cpuinfo=plain)
    assert "\n" not in str(info.value)
    with pytest.raises(OpticalError, match="fp16 needs a CUDA device"):
        check_precision("cpu", "fp16", cpuinfo=plain)
    check_precision("cpu", "no", cpuinfo=plain)
    capable = tmp_path / "cpuinfo-bf16"
    capable.write_text("flags\t\t: fpu avx512f avx512_bf16\n")
    assert cpu_bf16_support(capable) == "avx512_bf16"
    check_precision("cpu", "bf16", cpuinfo=capable)


def test_auto_precision_is_bf16_only_where_the_cpu_has_it(tmp_path):
    plain = tmp_path / "cpuinfo"
    plain.write_text("flags\t\t: fpu avx2 avx512f\n")
    capable = tmp_path / "cpuinfo-bf16"
    capable.write_text("flags\t\t: fpu avx512f amx_bf16\n")
    if torch.backends.cpu.get_cpu_capability() != "AMX":  # torch's own capability answers when flags lack it
        assert resolve_precision("cpu", "auto", cpuinfo=plain) == "no"
    assert resolve_precision("cpu", "auto", cpuinfo=capable) == "bf16"
    assert resolve_precision("cpu", "no", cpuinfo=capable) == "no"
    assert resolve_precision("cpu", "bf16", cpuinfo=plain) == "bf16"  # explicit values are check_precision's to refuse


def test_an_auto_run_is_the_run_of_the_precision_it_resolves_to(tiny_config):
    auto = tiny_config("mse", budget=32)
    assert auto.mixed_precision == "auto"
    concrete = resolve_precision("cpu", "auto")
    named = tiny_config("mse", budget=32, mixed_precision=concrete)
    assert auto.training_fingerprint() == named.training_fingerprint()
    other = tiny_config("mse", budget=32, mixed_precision="bf16" if concrete == "no" else "no")
    assert auto.training_fingerprint() != other.training_fingerprint()
    result = distill(auto, progress=False)
    run_json = result.out_dir / "run.json"
    assert json.loads(run_json.read_text())["config"]["mixed_precision"] == concrete
    written = run_json.stat().st_mtime_ns
    distill(named, progress=False)
    assert run_json.stat().st_mtime_ns == written  # the finished run is found, not redone


def test_ot_solves_in_float32_under_bf16_autocast():
    batch = DistillBatch.random(batch=2, n=6, m=5, hidden=16)
    batch.student_foreign.embeddings = batch.student_foreign.embeddings.bfloat16()
    loss = OTLoss(eps=0.1)
    reference = loss(DistillBatch.random(batch=2, n=6, m=5, hidden=16)).loss
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cost = loss.cost_matrix(batch.student_foreign.embeddings, batch.teacher_english.embeddings)
        out = loss(batch)
    assert out.loss.dtype == torch.float32
    # cost_matrix alone under autocast runs its bmm in bf16; forward turns autocast off around it.
    assert cost.dtype == torch.bfloat16
    assert torch.allclose(out.loss, reference, atol=2e-2)


@pytest.mark.skipif(cpu_bf16_support() is None, reason="this CPU has neither AVX512-BF16 nor AMX")
def test_bf16_training_on_a_capable_cpu(tiny_config):
    result = distill(tiny_config("ot+mse:0.5", budget=64, mixed_precision="bf16"), progress=False)
    assert result.steps == 4
    lines = (result.out_dir / "metrics.jsonl").read_text().splitlines()
    assert all(json.loads(line)["loss"] == json.loads(line)["loss"] for line in lines)  # no NaN


@NEEDS_CUDA
@pytest.mark.parametrize("method", ["mse", "ot"])
def test_the_steady_state_cuda_step_never_syncs(tiny_config, method):
    """Under CUDA: after a warm-up epoch, training steps run with sync debug mode 'error' (ot at a fixed
    number of Sinkhorn iterations, the mode that promises it)."""
    options = {"ot": {"tol": 0.0}} if method == "ot" else {}
    config = tiny_config(method, budget=256, batch_size=32, device="cuda", checkpoint_every=1000, loss_options=options)
    trainer = DistillTrainer(config, progress=False)
    trainer.check_inputs()
    trainer.setup()
    trainer.load_models()
    trainer.build_loss()
    trainer.prepare_batches()
    trainer.build_optimizer()
    trainer.resume()
    from optical.train.trainer import StepBatch

    batches = trainer.epoch_batches(0)
    flat = torch.tensor([i for b in batches for i in b], device="cuda")
    steps = [StepBatch(rows, flat[k * config.batch_size : k * config.batch_size + len(rows)]) for k, rows in enumerate(batches)]
    for step in steps:  # warm-up: allocations, lazy init, and the Sinkhorn graph of each padded shape
        trainer.training_step(step)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        logs = [trainer.training_step(step).logs for step in steps]
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert all(float(entry["loss"]) > 0 for entry in logs)


def test_a_prepared_4d_mask_gives_the_same_student_outputs(tiny_teacher):
    from optical.models.encoder import Encoder
    from optical.train.trainer import _Student

    encoder = Encoder.load(tiny_teacher, max_length=32)
    batch = encoder.tokenize(["a b", "a much longer sentence with words", "hello there"], kind="query")
    plain, prepared = _Student(encoder)(batch), _Student(encoder, prepared_mask=True)(batch)
    assert torch.allclose(plain.embeddings, prepared.embeddings, atol=1e-6)
    assert torch.allclose(plain.pooled, prepared.pooled, atol=1e-6)
    assert torch.equal(plain.content_mask, prepared.content_mask)
