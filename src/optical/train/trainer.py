"""The distillation loop, on Hugging Face Accelerate.

Accelerate provides device placement, mixed precision, DDP across processes
and machines (``accelerate launch`` / ``torchrun``), gradient accumulation and
checkpoints of model, optimizer, scheduler and every RNG; the loop itself is
the few lines a distillation with a cached teacher needs (the transformers
``Trainer`` assumes one model computing its own loss from a dataset row, which
fights a frozen teacher whose outputs live in a cache).

Guarantees:

* seeded determinism: same config + data -> same weights on CPU;
* resume after a kill: the latest checkpoint (written atomically) is loaded,
  the already-seen batches of the epoch are skipped, and the run ends with the
  same weights as an uninterrupted one;
* a corrupt checkpoint is an error, never a silent restart from scratch.
"""

from __future__ import annotations

import json
import math
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import accelerate
import torch
import transformers
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

import optical
from optical.data import BitextConfig, build_bitext, resolve_data_dir
from optical.errors import OpticalError
from optical.losses import DistillBatch, build_loss
from optical.models import resolve_model
from optical.models.encoder import Encoder
from optical.storage import atomic_write_json, atomic_write_text
from optical.train.config import DistillConfig
from optical.train.selection import build_selector
from optical.train.teacher_cache import TeacherCache, load_or_build_teacher_cache

CHECKPOINT = "checkpoint"
STUDENT = "student"
BEST = "best"


@dataclass
class DistillResult:
    """What a finished run produced (also written to ``run.json``)."""

    out_dir: Path
    student_dir: Path
    steps: int
    selection_metric: str | None
    best_step: int | None
    best_metric: float | None
    seconds: float
    pairs_per_second: float
    resumed_from_step: int | None
    data_fingerprint: str
    history: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_run_json(cls, out_dir: Path) -> "DistillResult":
        info = json.loads((out_dir / "run.json").read_text())
        r = info["result"]
        return cls(
            out_dir=out_dir,
            student_dir=out_dir / STUDENT,
            steps=r["steps"],
            selection_metric=r["selection_metric"],
            best_step=r["best_step"],
            best_metric=r["best_metric"],
            seconds=r["seconds"],
            pairs_per_second=r["pairs_per_second"],
            resumed_from_step=r["resumed_from_step"],
            data_fingerprint=info["data_fingerprint"],
            history=r["history"],
        )


@dataclass
class _TrainerState:
    """Counters saved inside each checkpoint."""

    step: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0


class _Student(torch.nn.Module):
    """The trainable student as one module, so DDP wraps every parameter."""

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, batch: dict[str, torch.Tensor]):
        return self.encoder(batch)


def versions() -> dict[str, str]:
    return {
        "optical": optical.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "accelerate": accelerate.__version__,
    }


def _prepare_out_dir(config: DistillConfig, overwrite: bool) -> None:
    out = Path(config.out_dir)
    marker = out / "config.json"
    if out.exists() and any(out.iterdir()):
        if overwrite:
            shutil.rmtree(out)
        elif not marker.exists():
            raise OpticalError(f"output dir {out} is not empty and holds no optical run; pick another --out or pass --overwrite")
        else:
            held = json.loads(marker.read_text()).get("fingerprint")
            if held != config.training_fingerprint():
                raise OpticalError(
                    f"output dir {out} holds a different run (config fingerprint {held}); pick another --out or pass --overwrite"
                )
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(marker, {"fingerprint": config.training_fingerprint(), "config": config.to_dict()})


def _idf(token_lists: list[torch.Tensor], vocab_size: int) -> torch.Tensor:
    """Smoothed inverse document frequency log((N+1)/(df+1)) + 1 per token id."""
    df = torch.zeros(vocab_size)
    for ids in token_lists:
        df[torch.unique(ids)] += 1
    return torch.log((len(token_lists) + 1) / (df + 1)) + 1


def _loss_options(config: DistillConfig, cache: TeacherCache, student: Encoder, foreign: list[str]) -> dict:
    options = {name: dict(values) for name, values in config.loss_options.items()}
    if "ot" in config.method:
        ot_options = options.setdefault("ot", {})
        if config.center_costs:
            ot_options["center"] = cache.mean_token()
        if ot_options.get("marginals") == "idf":
            offsets = cache.offsets.tolist()
            teacher_lists = [cache.token_ids[offsets[i] : offsets[i + 1]] for i in range(len(cache))]
            ot_options["teacher_idf"] = _idf(teacher_lists, int(cache.token_ids.max()) + 1)
            student_lists = []
            for start in range(0, len(foreign), 256):
                batch = student.tokenize(foreign[start : start + 256], kind="query")
                student_lists += [ids[mask] for ids, mask in zip(batch["input_ids"], batch["content_mask"])]
            ot_options["student_idf"] = _idf(student_lists, len(student.tokenizer))
    return options


def _save_checkpoint(accelerator: Accelerator, out: Path, state: _TrainerState) -> None:
    """Write the checkpoint to a temporary dir, then swap it in with renames."""
    final, tmp, old = out / CHECKPOINT, out / f"{CHECKPOINT}.tmp", out / f"{CHECKPOINT}.old"
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp), safe_serialization=True)
    if accelerator.is_main_process:
        atomic_write_json(tmp / "trainer_state.json", state.__dict__)
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        if old.exists():
            shutil.rmtree(old)
    accelerator.wait_for_everyone()


def _load_checkpoint(accelerator: Accelerator, out: Path) -> _TrainerState | None:
    """The saved state, or None when there is no checkpoint yet."""
    for candidate in (out / CHECKPOINT, out / f"{CHECKPOINT}.old"):  # .old: killed between the two renames
        if not candidate.exists():
            continue
        try:
            state = _TrainerState(**json.loads((candidate / "trainer_state.json").read_text()))
            accelerator.load_state(str(candidate))
        except Exception as exc:  # any failure to read it means the files are damaged
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise OpticalError(
                f"checkpoint {candidate} is corrupt ({first}); delete it to restart this run from scratch, or pass --overwrite"
            ) from None
        return state
    return None


def _epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(n, generator=generator).tolist()
    return [order[i : i + batch_size] for i in range(0, n - batch_size + 1, batch_size)] or [order]


def _save_student(encoder: Encoder, target: Path) -> None:
    tmp = target.with_name(target.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    encoder.save(tmp)
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)


def distill(config: DistillConfig, overwrite: bool = False, progress: bool = True) -> DistillResult:
    """Distil a student query encoder from bitext; resumes a killed run with the same config.

    Returns at once with the stored result when ``config.out_dir`` already
    holds the finished run.
    """
    config.validate()
    out = Path(config.out_dir)
    if not overwrite and (out / "run.json").exists() and (out / "config.json").exists():
        held = json.loads((out / "config.json").read_text()).get("fingerprint")
        if held == config.training_fingerprint():
            return DistillResult.from_run_json(out)
    started = time.perf_counter()
    timings: dict[str, float] = {}

    if config.device == "cuda" and not torch.cuda.is_available():
        raise OpticalError("--device cuda was asked for but torch sees no CUDA device; use --device cpu or auto")
    accelerator = Accelerator(
        cpu=config.device == "cpu",
        mixed_precision=config.mixed_precision,
        gradient_accumulation_steps=config.grad_accum,
        log_with="tensorboard" if config.tensorboard else None,
        project_dir=str(out),
    )
    if accelerator.is_main_process:
        _prepare_out_dir(config, overwrite)
    accelerator.wait_for_everyone()
    set_seed(config.seed)

    data_dir = resolve_data_dir(config.data_dir)
    bitext = build_bitext(
        data_dir,
        BitextConfig(
            lang=config.lang,
            sources=list(config.sources),
            budget=config.budget,
            seed=config.seed,
            noise_fraction=config.noise,
            license_classes=list(config.license_classes),
        ),
    )
    english = [pair.en for pair in bitext.pairs]
    foreign = [pair.foreign for pair in bitext.pairs]

    tick = time.perf_counter()
    teacher = Encoder.load(resolve_model(config.teacher), device=accelerator.device, max_length=config.max_length)
    teacher.eval()
    with accelerator.main_process_first():
        cache = load_or_build_teacher_cache(teacher, english, config.max_length, progress=progress and accelerator.is_main_process)
    selector = build_selector(config.select_on, config.lang, data_dir, teacher)
    timings["teacher_seconds"] = time.perf_counter() - tick
    teacher_hidden = teacher.hidden_size
    del teacher

    set_seed(config.seed)  # the student's initialisation must not depend on what the teacher did
    student = Encoder.load(
        resolve_model(config.student or config.teacher),
        device=accelerator.device,
        max_length=config.max_length,
        projection_dim=teacher_hidden if config.projection else None,
    )
    if student.hidden_size != teacher_hidden:
        raise OpticalError(
            f"student hidden size {student.hidden_size} differs from the teacher's {teacher_hidden}; pass --projection to learn a linear map"
        )
    if config.freeze_embeddings:
        student.freeze_word_embeddings()
    student.train()

    loss_fn = build_loss(config.method, _loss_options(config, cache, student, foreign)).to(accelerator.device)
    module = _Student(student)
    optimizer = torch.optim.AdamW(
        [p for p in module.parameters() if p.requires_grad], lr=config.lr, weight_decay=config.weight_decay
    )
    batches_per_epoch = len(_epoch_batches(len(bitext.pairs), config.batch_size, config.seed, 0))
    steps_per_epoch = max(1, batches_per_epoch // (config.grad_accum * accelerator.num_processes))
    total_steps = steps_per_epoch * config.epochs
    # A prepared scheduler advances once per process at every step, so its horizon counts process-steps.
    scheduler = get_linear_schedule_with_warmup(
        optimizer,
        math.ceil(config.warmup_ratio * total_steps) * accelerator.num_processes,
        total_steps * accelerator.num_processes,
    )
    module, optimizer, scheduler = accelerator.prepare(module, optimizer, scheduler)

    state = _load_checkpoint(accelerator, out) or _TrainerState()
    resumed_from = state.step or None
    log_path = out / "metrics.jsonl"
    if accelerator.is_main_process:
        kept = []
        if resumed_from and log_path.exists():  # drop lines written after the checkpoint we resume from
            kept = [line for line in log_path.read_text().splitlines() if line and json.loads(line)["step"] <= state.step]
        atomic_write_text(log_path, "".join(line + "\n" for line in kept))
    if config.tensorboard:
        accelerator.init_trackers("optical", config={k: str(v) for k, v in config.to_dict().items()})

    def evaluate_dev(step: int) -> None:
        if selector is None:
            return
        student.eval()
        value = selector(accelerator.unwrap_model(module).encoder)
        student.train()
        record = {"step": step, selector.metric: value}
        state.history.append(record)
        if state.best_metric is None or value > state.best_metric:
            state.best_metric, state.best_step = value, step
            if accelerator.is_main_process:
                _save_student(accelerator.unwrap_model(module).encoder, out / BEST)
        _log(record)

    def _log(record: dict[str, Any]) -> None:
        if accelerator.is_main_process:
            with log_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
        if config.tensorboard:
            accelerator.log({k: v for k, v in record.items() if k != "step"}, step=record["step"])

    if selector is not None and state.step == 0 and not state.history:
        evaluate_dev(0)  # the initial student competes too: distillation must earn its place

    bar = tqdm(total=total_steps, initial=state.step, desc=f"distil {config.method} {config.lang}", unit="step",
               disable=not (progress and accelerator.is_main_process))
    tick = time.perf_counter()
    start_epoch = state.step // steps_per_epoch
    for epoch in range(start_epoch, config.epochs):
        batches = _epoch_batches(len(bitext.pairs), config.batch_size, config.seed, epoch)
        # Each process takes every num_processes-th batch; all take the same count, so DDP stays in step.
        shard = batches[accelerator.process_index :: accelerator.num_processes][: steps_per_epoch * config.grad_accum]
        done_in_epoch = state.step - epoch * steps_per_epoch
        step_tick, pairs_in_step = time.perf_counter(), 0
        for indices in shard[done_in_epoch * config.grad_accum :]:
            with accelerator.accumulate(module):
                with accelerator.autocast():
                    foreign_batch = student.tokenize([foreign[i] for i in indices], kind="query")
                    student_foreign = module({k: v.to(accelerator.device) for k, v in foreign_batch.items()})
                    student_english = None
                    if loss_fn.needs_student_english:
                        english_batch = student.tokenize([english[i] for i in indices], kind="query")
                        student_english = module({k: v.to(accelerator.device) for k, v in english_batch.items()})
                    teacher_out, teacher_ids = cache.batch(indices, device=accelerator.device)
                    out_loss = loss_fn(
                        DistillBatch(
                            student_foreign=student_foreign,
                            teacher_english=teacher_out,
                            student_english=student_english,
                            student_token_ids=foreign_batch["input_ids"].to(accelerator.device),
                            teacher_token_ids=teacher_ids,
                        )
                    )
                accelerator.backward(out_loss.loss)
                if accelerator.sync_gradients and config.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(module.parameters(), config.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            pairs_in_step += len(indices) * accelerator.num_processes
            if not accelerator.sync_gradients:
                continue
            state.step += 1
            elapsed = time.perf_counter() - step_tick
            record = {
                "step": state.step,
                "epoch": epoch,
                "lr": scheduler.get_last_lr()[0],
                "pairs_per_s": pairs_in_step / max(elapsed, 1e-9),
                **out_loss.logs,
            }
            _log(record)
            bar.set_postfix(loss=f"{out_loss.logs['loss']:.4f}", pairs_s=f"{record['pairs_per_s']:.1f}")
            bar.update(1)
            step_tick, pairs_in_step = time.perf_counter(), 0
            at_epoch_end = state.step % steps_per_epoch == 0
            if config.eval_every and state.step % config.eval_every == 0 and not at_epoch_end:
                evaluate_dev(state.step)
            if at_epoch_end:
                evaluate_dev(state.step)
            if state.step % config.checkpoint_every == 0 or state.step == total_steps:
                state.train_seconds += time.perf_counter() - tick
                tick = time.perf_counter()
                _save_checkpoint(accelerator, out, state)
    bar.close()
    state.train_seconds += time.perf_counter() - tick
    if config.tensorboard:
        accelerator.end_training()

    final_encoder = accelerator.unwrap_model(module).encoder
    result = DistillResult(
        out_dir=out,
        student_dir=out / STUDENT,
        steps=state.step,
        selection_metric=selector.metric if selector else None,
        best_step=state.best_step,
        best_metric=state.best_metric,
        seconds=time.perf_counter() - started,
        pairs_per_second=state.step * config.batch_size * config.grad_accum / max(state.train_seconds, 1e-9),
        resumed_from_step=resumed_from,
        data_fingerprint=bitext.fingerprint,
        history=state.history,
    )
    if accelerator.is_main_process:
        if selector is not None and (out / BEST).exists():
            if (out / STUDENT).exists():
                shutil.rmtree(out / STUDENT)
            shutil.copytree(out / BEST, out / f"{STUDENT}.tmp", dirs_exist_ok=True)
            (out / f"{STUDENT}.tmp").rename(out / STUDENT)
        else:
            _save_student(final_encoder, out / STUDENT)
        timings["train_seconds"] = state.train_seconds
        timings["total_seconds"] = result.seconds
        atomic_write_json(
            out / "run.json",
            {
                "config": config.to_dict(),
                "fingerprint": config.training_fingerprint(),
                "teacher": config.teacher,
                "data_fingerprint": bitext.fingerprint,
                "bitext": {"pairs": len(bitext.pairs), "stats": _jsonable(bitext.stats)},
                "versions": versions(),
                "timings": timings,
                "device": str(accelerator.device),
                "num_processes": accelerator.num_processes,
                "result": {
                    "steps": result.steps,
                    "selection_metric": result.selection_metric,
                    "best_step": result.best_step,
                    "best_metric": result.best_metric,
                    "seconds": result.seconds,
                    "pairs_per_second": result.pairs_per_second,
                    "resumed_from_step": result.resumed_from_step,
                    "history": result.history,
                },
                "completed": True,
            },
        )
    accelerator.wait_for_everyone()
    return result


def _jsonable(value: Any) -> Any:
    """Dataclasses and counters in bitext stats, as plain JSON values."""
    if hasattr(value, "__dataclass_fields__"):
        return {k: _jsonable(v) for k, v in value.__dict__.items()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
