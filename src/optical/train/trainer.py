"""The distillation loop, on Hugging Face Accelerate.

Accelerate provides device placement, mixed precision, DDP across processes
and machines (``accelerate launch`` / ``torchrun``), gradient accumulation and
checkpoints of model, optimizer, scheduler and every RNG; the loop itself is
the few lines a distillation with a cached teacher needs (the transformers
``Trainer`` assumes one model computing its own loss from a dataset row, which
fights a frozen teacher whose outputs live in a cache).

:class:`DistillTrainer` runs a distillation as named phases, in the spirit of
the sentence-transformers trainer's hooks (a subclass may override any of them):

1. :meth:`~DistillTrainer.finished_run` -- the stored result when the output dir holds the finished run;
2. :meth:`~DistillTrainer.setup` -- the Accelerator, the output dir and its config marker;
3. :meth:`~DistillTrainer.prepare_data` -- the bitext;
4. :meth:`~DistillTrainer.load_models` -- teacher, teacher cache, dev selector, then the student;
5. :meth:`~DistillTrainer.build_loss` -- the loss of the :class:`~optical.losses.MethodSpec`;
   :meth:`~DistillTrainer.prepare_batches` -- the student sides tokenized once and the teacher cache,
   on the training device (a step only indexes them; :mod:`optical.train.batches`);
6. :meth:`~DistillTrainer.build_optimizer` and :meth:`~DistillTrainer.resume` -- AdamW, the
   linear schedule, the latest checkpoint and the metrics log;
7. :meth:`~DistillTrainer.train` -- epochs of :meth:`~DistillTrainer.training_step`, with
   :meth:`~DistillTrainer.evaluate_dev` and :meth:`~DistillTrainer.save_checkpoint` between steps;
8. :meth:`~DistillTrainer.finalize` -- the student (``best/`` renamed, never copied) and ``run.json``
   (a :class:`RunRecord` with the run's throughput); the checkpoint is dropped unless ``keep_checkpoint``.

Guarantees:

* seeded determinism: same config + data -> same weights on CPU;
* resume after a kill: the latest checkpoint (written atomically) is loaded,
  the already-seen batches of the epoch are skipped, and the run ends with the
  same weights as an uninterrupted one;
* a corrupt checkpoint is an error, never a silent restart from scratch;
* several processes (``torchrun``, ``accelerate launch``; docs/multi-process.md): each takes every
  num_processes-th batch, so N processes give the weights of one process with N times the gradient
  accumulation; only the main process writes the run (each other process writes only its RNG state into
  the checkpoint being built), and a checkpoint resumes only under the number of processes that wrote it;
* the training step reads nothing back from the device: loss logs stay there and are read every
  :attr:`DistillTrainer.log_every` steps (and before a dev evaluation or a checkpoint). The OT loss's
  Sinkhorn (``optical.ot``) reads from the device only when it checks convergence: with ``ot.tol=0``
  (a fixed number of iterations) an accelerator's step does not wait for it, once the CUDA graph of each
  padded problem shape has been captured (a capture waits once).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import get_cpu_distributed_information, parse_flag_from_env, set_seed
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from optical.data import build_bitext, resolve_data_dir
from optical.errors import OpticalError
from optical.losses import DistillBatch, LossOutput
from optical.losses import build_loss as build_method_loss
from optical.models import resolve_model
from optical.models.check import check_model_dir, file_digests
from optical.models.encoder import Encoder
from optical.models.outputs import TokenEmbeddings
from optical.storage import (
    atomic_write_json,
    atomic_write_text,
    check_output_dir,
    directory_kind,
    naming_a_full_disk,
    output_lock,
)
from optical.train.batches import DataCounters, PhaseClock, TokenizedSide, epoch_batches
from optical.train.card import CARD, write_model_card
from optical.train.config import DistillConfig
from optical.train.precision import check_device, check_precision
from optical.train.record import (
    RUN_JSON,
    SPREAD_KEY,
    STUDENT,
    BitextSummary,
    RunRecord,
    RunResult,
    RunThroughput,
    RunTimings,
    versions,
)
from optical.train.selection import build_selector
from optical.train.teacher_cache import load_or_build_teacher_cache

__all__ = ["BEST", "CHECKPOINT", "STUDENT", "DistillResult", "DistillTrainer", "distill", "versions"]

CHECKPOINT = "checkpoint"
BEST = "best"


@dataclass(frozen=True)
class DistillResult:
    """What a finished run produced: its :class:`RunRecord` (``run.json``), with the output dirs and the
    fields of :class:`~optical.train.record.RunResult` (``steps``, ``best_step``, ``history``, ...) at hand.

    ``main_process`` is False in the other processes of a multi-process run: only the main process wrote
    the run (their ``record`` lacks ``student_files``), so only it should report it."""

    record: RunRecord
    main_process: bool = True

    @property
    def out_dir(self) -> Path:
        return self.student_dir.parent

    @property
    def student_dir(self) -> Path:
        return self.record.student_dir

    @property
    def data_fingerprint(self) -> str:
        return self.record.data_fingerprint

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "record":  # copy/pickle probes, and before __init__ has run
            raise AttributeError(name)
        return getattr(self.record.result, name)


@dataclass
class _TrainerState:
    """Counters saved inside each checkpoint."""

    step: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0
    # Wall seconds of the whole run up to this checkpoint, so a resumed run's total counts its earlier sessions.
    wall_seconds: float = 0.0
    # The processes that wrote it: a step's global batch counts them, and the fingerprint does not.
    # None in checkpoints written before it was recorded.
    num_processes: int | None = None


class _Student(torch.nn.Module):
    """The trainable student as one module, so DDP wraps every parameter.

    With ``prepared_mask`` (set on CUDA for SDPA attention) the model gets the attention mask as a
    ``[B, 1, 1, L]`` boolean mask, which transformers passes on as it is: from a 2-D mask it would first
    test whether the batch has padding at all, a read of a device value that stalls every step.
    """

    def __init__(self, encoder: Encoder, prepared_mask: bool = False) -> None:
        super().__init__()
        self.encoder, self.prepared_mask = encoder, prepared_mask

    def forward(self, batch: dict[str, torch.Tensor]) -> TokenEmbeddings:
        encoder = self.encoder
        if not self.prepared_mask:
            return encoder(batch)
        mask = batch["attention_mask"]
        hidden = encoder.model(input_ids=batch["input_ids"], attention_mask=mask.bool()[:, None, None, :]).last_hidden_state
        if encoder.projection is not None:
            hidden = encoder.projection(hidden)
        return TokenEmbeddings(hidden, mask.bool(), batch["content_mask"].bool(), encoder._pool(hidden, mask))


def _read_marker(marker: Path) -> str | None:
    """The fingerprint in an output dir's ``config.json`` marker; one-line error when it is damaged."""
    try:
        held = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise OpticalError(f"{marker} is damaged (not a JSON run marker); pass --overwrite to redo the run") from None
    if not isinstance(held, dict):
        raise OpticalError(f"{marker} is not a run marker of `optical distill`; pick another --out or pass --overwrite")
    return held.get("fingerprint")


def _check_out_dir(config: DistillConfig, overwrite: bool) -> None:
    """Refuse an output dir that cannot be written or holds something else than this run; writes nothing."""
    if not config.out_dir:
        raise OpticalError("no --out given: name the output dir of the run")
    out = check_output_dir(config.out_dir)
    if overwrite or not out.is_dir() or not any(out.iterdir()):
        return
    marker = out / "config.json"
    kind = directory_kind(out)
    if kind in ("evaluation", "study", "report"):
        raise OpticalError(
            f"output dir {out} holds {_KINDS[kind]}, not a distillation run; pick another --out or pass --overwrite"
        )
    if not marker.is_file():
        raise OpticalError(f"output dir {out} is not empty and holds no optical run; pick another --out or pass --overwrite")
    held = _read_marker(marker)
    if held != config.training_fingerprint():
        raise OpticalError(
            f"output dir {out} holds a different run (config fingerprint {held}); pick another --out or pass --overwrite"
        )


_KINDS = {"evaluation": "an evaluation run (eval.json)", "study": "a study (study.json)", "report": "a comparison report"}


def _prepare_out_dir(config: DistillConfig, overwrite: bool) -> None:
    out = Path(config.out_dir)
    marker = out / "config.json"
    _check_out_dir(config, overwrite)
    if overwrite and out.exists() and any(out.iterdir()):
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(marker, {"fingerprint": config.training_fingerprint(), "config": config.to_dict()})


def _idf(token_lists: list[torch.Tensor], vocab_size: int) -> torch.Tensor:
    """Smoothed inverse document frequency log((N+1)/(df+1)) + 1 per token id."""
    df = torch.zeros(vocab_size)
    for ids in token_lists:
        df[torch.unique(ids)] += 1
    return torch.log((len(token_lists) + 1) / (df + 1)) + 1


def _save_checkpoint(accelerator: Accelerator, out: Path, state: _TrainerState) -> None:
    """Write the checkpoint to a temporary dir, then swap it in with renames."""
    final, tmp, old = out / CHECKPOINT, out / f"{CHECKPOINT}.tmp", out / f"{CHECKPOINT}.old"
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp), safe_serialization=True)
    # save_state has no barrier: every process writes its own RNG state file into tmp, which must be
    # complete before the main process renames it (accelerate's load_state skips a missing one silently).
    accelerator.wait_for_everyone()
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
            same_processes = state.num_processes in (None, accelerator.num_processes)
            if same_processes:
                accelerator.load_state(str(candidate))
        except Exception as exc:  # any failure to read it means the files are damaged
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise OpticalError(
                f"checkpoint {candidate} is corrupt ({first}); delete it to restart this run from scratch, or pass --overwrite"
            ) from None
        if not same_processes:
            raise OpticalError(
                f"checkpoint {candidate} was written by {state.num_processes} process(es), this run has "
                f"{accelerator.num_processes}: resume it with {state.num_processes}, or pass --overwrite"
            )
        return state
    return None


def _save_student(encoder: Encoder, target: Path) -> None:
    tmp = target.with_name(target.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    encoder.save(tmp)
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)


def _move_student(source: Path, target: Path) -> None:
    """Rename ``best/`` to ``student/``: one copy of the weights on disk, never two."""
    if target.exists():
        shutil.rmtree(target)
    source.rename(target)


@dataclass
class StepBatch:
    """One batch of a training step: its bitext rows (host) and the same rows as a tensor on the device."""

    rows: list[int]
    index: torch.Tensor

    def __len__(self) -> int:
        return len(self.rows)


class DistillTrainer:
    """One distillation run as named phases; :meth:`run` calls them in order.

    The order matters for determinism: the seed is set before the data and again
    before the student is initialised, so the student never depends on what the teacher did.
    """

    def __init__(self, config: DistillConfig, overwrite: bool = False, progress: bool = True) -> None:
        config.validate()
        config = config.resolved()
        self.config, self.overwrite, self.progress = config, overwrite, progress
        self.method = config.method_spec
        self.out = Path(config.out_dir)
        self.timings: dict[str, float] = {}

    def run(self) -> DistillResult:
        """The whole run under the lock of its output dir (held by the main process of a multi-process launch):
        a second run into the same dir is refused at once instead of interleaving its metrics and checkpoints."""
        if not self.config.out_dir:
            raise OpticalError("no --out given: name the output dir of the run")
        writer = output_lock(check_output_dir(self.out)) if _launch_rank() == 0 else contextlib.nullcontext()
        with writer, naming_a_full_disk(self.out, exact=True):  # checkpoints and metrics too, not only the atomic writes
            return self._run()

    def _run(self) -> DistillResult:
        finished = self.finished_run()
        if finished is not None:
            if finished.main_process and not (self.out / STUDENT / CARD).is_file():
                write_model_card(self.out)  # a run finished before students had cards
            return finished
        self.started = time.perf_counter()
        self.check_inputs()
        fresh = self.overwrite or not self.out.exists() or not any(self.out.iterdir())
        try:
            self.setup()
            self.load_models()
            self.build_loss()
            self.prepare_batches()
            self.build_optimizer()
        except BaseException:
            # Nothing trained yet: a run refused or stopped here leaves no stub that would block its rerun.
            if fresh and self.out.is_dir() and not (self.out / CHECKPOINT).exists():
                shutil.rmtree(self.out, ignore_errors=True)
            raise
        self.resume()
        self.train()
        return self.finalize()

    # ------------------------------------------------------------------ set-up
    def finished_run(self) -> DistillResult | None:
        """The stored result when the output dir holds this very run, finished (no work then); its
        student is verified against the sizes and sha256 in ``run.json`` first."""
        out = self.out
        check_output_dir(out)
        if self.overwrite or not (out / RUN_JSON).is_file() or not (out / "config.json").is_file():
            return None
        if _read_marker(out / "config.json") != self.config.training_fingerprint():
            return None
        record = RunRecord.load(out)
        record.verify_student()
        main = _launch_rank() == 0  # no Accelerator (nor process group) exists on this path
        if main and not self.config.keep_checkpoint:
            _drop_checkpoint(out)  # a run killed between run.json and the checkpoint's removal
        return DistillResult(record, main_process=main)

    def check_inputs(self) -> None:
        """Everything that can be refused before the output dir is written: the dir itself, the data
        (language, sources, budget), the models' files and the device. Reads the bitext."""
        config = self.config
        _check_out_dir(config, self.overwrite)
        check_device(config.device)
        check_precision(config.device, config.mixed_precision)
        for flag, name in (("--teacher", config.teacher), ("--student", config.student)):
            if name is not None:
                check_model_dir(resolve_model(name), role=flag)
        set_seed(config.seed)
        self.prepare_data()
        _check_some_step_trains(config, len(self.bitext.pairs), get_cpu_distributed_information().world_size)

    def setup(self) -> None:
        """The Accelerator, then the output dir (refusing one that holds another run)."""
        config = self.config
        # Accelerate keeps its mixed precision in a process-wide state: a second run in this process (a
        # benchmark, a study) with another precision would be refused. The process group stays as it is.
        AcceleratorState._reset_state(reset_partial_state=False)
        self.accelerator = Accelerator(
            cpu=config.device == "cpu",
            mixed_precision=config.mixed_precision,
            gradient_accumulation_steps=config.grad_accum,
            log_with="tensorboard" if config.tensorboard else None,
            project_dir=str(self.out),
        )
        _check_launch(self.accelerator, config.device)
        # Every process has checked the output dir (check_inputs) before the main one writes its marker.
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            _prepare_out_dir(config, self.overwrite)
        self.accelerator.wait_for_everyone()
        set_seed(config.seed)

    def prepare_data(self) -> None:
        """The bitext of the config; ``english`` and ``foreign`` are its two sides."""
        config = self.config
        self.data_dir = resolve_data_dir(config.data_dir)
        self.bitext = build_bitext(self.data_dir, config.bitext_config())
        self.english = [pair.en for pair in self.bitext.pairs]
        self.foreign = [pair.foreign for pair in self.bitext.pairs]
        if _launch_rank() == 0:  # every process reads the same bitext: one report is enough
            for line in skip_lines(self.bitext.stats):
                print(line, file=sys.stderr)

    def load_models(self) -> None:
        """The teacher (only for its cache and the dev selector, then dropped), then the student."""
        config, accelerator = self.config, self.accelerator
        tick = time.perf_counter()
        teacher = Encoder.load(resolve_model(config.teacher), device=accelerator.device, max_length=config.max_length)
        teacher.eval()
        with accelerator.main_process_first():
            self.cache = load_or_build_teacher_cache(
                teacher, self.english, config.max_length, progress=self.progress and accelerator.is_main_process
            )
        self.selector = build_selector(config.select_on, config.lang, self.data_dir, teacher)
        self.timings["teacher_seconds"] = time.perf_counter() - tick
        teacher_hidden = teacher.hidden_size
        del teacher

        set_seed(config.seed)  # the student's initialisation must not depend on what the teacher did
        self.student = Encoder.load(
            resolve_model(config.student or config.teacher),
            device=accelerator.device,
            max_length=config.max_length,
            projection_dim=teacher_hidden if config.projection else None,
        )
        if self.student.hidden_size != teacher_hidden:
            raise OpticalError(
                f"student hidden size {self.student.hidden_size} differs from the teacher's {teacher_hidden}; "
                "pass --projection to learn a linear map"
            )
        if config.freeze_embeddings:
            self.student.freeze_word_embeddings()
        self.student.train()

    def build_loss(self) -> None:
        """The loss of the method, with the user's options and the tensors the trainer computes."""
        loss_fn = build_method_loss(self.method, self.config.loss_options, self._loss_internals())
        self.loss_fn = loss_fn.to(self.accelerator.device)

    def prepare_batches(self) -> None:
        """Tokenize the student sides once, onto the training device, with the teacher cache beside them;
        a training step then only indexes tensors. The batch lengths are the foreign side's."""
        config, device = self.config, self.accelerator.device
        tick = time.perf_counter()
        self.foreign_tokens = TokenizedSide.build(self.student, self.foreign, "query", config.max_length, device)
        self.english_tokens = None
        if self.loss_fn.needs_student_english:
            self.english_tokens = TokenizedSide.build(self.student, self.english, "query", config.max_length, device)
        self.teacher_batches = self.cache.on_device(device)
        self.timings["tokenize_seconds"] = time.perf_counter() - tick
        self.counters = DataCounters()
        self.clock = PhaseClock(cuda=device.type == "cuda")

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """The batches of ``epoch`` (the same on every process and after a resume)."""
        config = self.config
        lengths = self.foreign_tokens.lengths
        return epoch_batches(lengths, config.batch_size, config.seed, epoch, config.length_grouping)

    def _loss_internals(self) -> dict[str, dict[str, Any]]:
        """OT's centre vector and IDF tables (no user options: computed from the cache and bitext)."""
        if not self.method.uses("ot"):
            return {}
        config, cache, ot = self.config, self.cache, {}
        if config.center_costs:
            ot["center"] = cache.mean_token()
        if config.loss_options.get("ot", {}).get("marginals") == "idf":
            offsets = cache.offsets.tolist()
            teacher_lists = [cache.token_ids[offsets[i] : offsets[i + 1]] for i in range(len(cache))]
            ot["teacher_idf"] = _idf(teacher_lists, int(cache.token_ids.max()) + 1)
            student_lists = []
            for start in range(0, len(self.foreign), 256):
                batch = self.student.tokenize(self.foreign[start : start + 256], kind="query")
                student_lists += [ids[mask] for ids, mask in zip(batch["input_ids"], batch["content_mask"])]
            ot["student_idf"] = _idf(student_lists, len(self.student.tokenizer))
        return {"ot": ot}

    def build_optimizer(self) -> None:
        """AdamW and the linear warm-up schedule over every step of every epoch, prepared for Accelerate."""
        config, accelerator = self.config, self.accelerator
        prepared = accelerator.device.type == "cuda" and self.student.model.config._attn_implementation == "sdpa"
        module = _Student(self.student, prepared_mask=prepared)
        # On CUDA the fused kernels update every tensor in a few launches (the foreach path took 9 of an e5-small
        # step's 78 ms on an H200, launch-bound); the CPU keeps the path its committed results were trained with.
        optimizer = torch.optim.AdamW(
            [p for p in module.parameters() if p.requires_grad],
            lr=config.lr,
            weight_decay=config.weight_decay,
            fused=accelerator.device.type == "cuda",
        )
        batches_per_epoch = len(self.epoch_batches(0))
        self.steps_per_epoch = max(1, batches_per_epoch // (config.grad_accum * accelerator.num_processes))
        self.total_steps = self.steps_per_epoch * config.epochs
        # The steps within an epoch after which the dev split is evaluated (the epoch's last step always).
        parts = config.evals_per_epoch
        self.eval_points = {math.ceil(k * self.steps_per_epoch / parts) for k in range(1, parts + 1)}
        # A prepared scheduler advances once per process at every step, so its horizon counts process-steps.
        scheduler = get_linear_schedule_with_warmup(
            optimizer,
            math.ceil(config.warmup_ratio * self.total_steps) * accelerator.num_processes,
            self.total_steps * accelerator.num_processes,
        )
        self.module, self.optimizer, self.scheduler = accelerator.prepare(module, optimizer, scheduler)

    def resume(self) -> None:
        """The latest checkpoint's state (or a fresh one), the metrics log cut back to it, trackers."""
        config, accelerator = self.config, self.accelerator
        self.state = _load_checkpoint(accelerator, self.out) or _TrainerState()
        self.state.num_processes = accelerator.num_processes
        self.resumed_from = self.state.step or None
        self.earlier_wall_seconds = self.state.wall_seconds
        self.log_path = self.out / "metrics.jsonl"
        if accelerator.is_main_process:
            kept = []
            if self.resumed_from and self.log_path.exists():  # drop lines written after the checkpoint we resume from
                lines = self.log_path.read_text().splitlines()
                kept = [line for line in lines if line and json.loads(line)["step"] <= self.state.step]
            atomic_write_text(self.log_path, "".join(line + "\n" for line in kept))
        if config.tensorboard:
            accelerator.init_trackers("optical", config={k: str(v) for k, v in config.to_dict().items()})

    # ---------------------------------------------------------------- training
    def train(self) -> None:
        """Every remaining step of every epoch; each process takes every num_processes-th batch."""
        config, accelerator, state = self.config, self.accelerator, self.state
        if self.selector is not None and state.step == 0 and not state.history:
            self.evaluate_dev(0)  # the initial student competes too: distillation must earn its place
        self.bar = tqdm(
            total=self.total_steps,
            initial=state.step,
            desc=f"distil {config.method} {config.lang}",
            unit="step",
            disable=not (self.progress and accelerator.is_main_process),
        )
        self.pending: list[tuple[dict[str, Any], dict[str, Any]]] = []
        self.tick = self.session_tick = time.perf_counter()
        for epoch in range(state.step // self.steps_per_epoch, config.epochs):
            batches = self.epoch_batches(epoch)
            # All processes take the same count of batches, so DDP stays in step.
            shard = batches[accelerator.process_index :: accelerator.num_processes][: self.steps_per_epoch * config.grad_accum]
            done_in_epoch = state.step - epoch * self.steps_per_epoch
            shard = shard[done_in_epoch * config.grad_accum :]
            # One copy of the epoch's rows to the device; each step takes a slice of it.
            flat = torch.tensor([i for rows in shard for i in rows], dtype=torch.long).to(accelerator.device)
            self.step_tick, self.pairs_in_step, start = time.perf_counter(), 0, 0
            for rows in shard:
                out_loss = self.training_step(StepBatch(rows, flat[start : start + len(rows)]))
                start += len(rows)
                self.pairs_in_step += len(rows) * accelerator.num_processes
                if accelerator.sync_gradients:
                    self._end_step(epoch, out_loss)
        self.flush_logs()
        self.bar.close()
        self.session_seconds = time.perf_counter() - self.session_tick
        state.train_seconds += time.perf_counter() - self.tick
        if config.tensorboard:
            accelerator.end_training()

    def training_step(self, batch: StepBatch) -> LossOutput:
        """Forward, loss, backward and (at the end of an accumulation) the optimizer step on one batch.
        Nothing here waits for the device: the inputs are slices of tensors already there."""
        accelerator, module, clock = self.accelerator, self.module, self.clock
        clock.start()
        with accelerator.accumulate(module):
            with accelerator.autocast():
                inputs = self._step_inputs(batch)
                clock.lap("data")
                student_foreign = module(inputs["foreign"])
                student_english = module(inputs["english"]) if "english" in inputs else None
                clock.lap("forward")
                out_loss = self.loss_fn(
                    DistillBatch(
                        student_foreign=student_foreign,
                        teacher_english=inputs["teacher"],
                        student_english=student_english,
                        student_token_ids=inputs["foreign"]["input_ids"],
                        teacher_token_ids=inputs["teacher_ids"],
                    )
                )
                clock.lap("loss")
            accelerator.backward(out_loss.loss)
            clock.lap("backward")
            if accelerator.sync_gradients and self.config.max_grad_norm > 0:
                accelerator.clip_grad_norm_(module.parameters(), self.config.max_grad_norm)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            clock.lap("optimizer")
        return out_loss

    def _step_inputs(self, batch: StepBatch) -> dict[str, Any]:
        """The student token batches and the teacher's cached outputs of ``batch``, cut to its widest rows."""
        rows, index, counters = batch.rows, batch.index, self.counters
        width = self.foreign_tokens.width(rows)
        inputs: dict[str, Any] = {"foreign": self.foreign_tokens.batch(index, width)}
        counters.pairs += len(rows)
        counters.add(self.foreign_tokens, rows, width)
        if self.english_tokens is not None:
            width = self.english_tokens.width(rows)
            inputs["english"] = self.english_tokens.batch(index, width)
            counters.add(self.english_tokens, rows, width)
        inputs["teacher"], inputs["teacher_ids"] = self.teacher_batches.batch(index, self.teacher_batches.width(rows))
        return inputs

    def _end_step(self, epoch: int, out_loss: LossOutput) -> None:
        """After an optimizer step: queue its log line, evaluate on dev and checkpoint when due."""
        state, config = self.state, self.config
        state.step += 1
        elapsed = time.perf_counter() - self.step_tick
        entry = {
            "step": state.step,
            "epoch": epoch,
            "lr": self.scheduler.get_last_lr()[0],
            "pairs_per_s": self.pairs_in_step / max(elapsed, 1e-9),
        }
        self.pending.append((entry, out_loss.logs))
        self.bar.update(1)
        self.step_tick, self.pairs_in_step = time.perf_counter(), 0
        in_epoch = state.step - epoch * self.steps_per_epoch
        due_eval = in_epoch in self.eval_points or (config.eval_every and state.step % config.eval_every == 0)
        due_checkpoint = state.step % config.checkpoint_every == 0 or state.step == self.total_steps
        if len(self.pending) >= self.log_every or due_eval or due_checkpoint:
            self.flush_logs()
        if due_eval:
            self.evaluate_dev(state.step)
        if due_checkpoint:
            self.save_checkpoint()

    #: Optimizer steps between reads of the loss logs from the device (the only waits of the loop).
    log_every = 50

    def flush_logs(self) -> None:
        """Read the queued steps' loss logs from the device at once and write their lines."""
        if not self.pending:
            return
        names = sorted({k for _, logs in self.pending for k in logs})
        values = [torch.as_tensor(logs.get(k, float("nan"))).float() for _, logs in self.pending for k in names]
        device = self.accelerator.device
        read = torch.stack([v.to(device) for v in values]).tolist() if values else []
        diverged = None
        for row, (entry, _) in enumerate(self.pending):
            line = {**entry, **dict(zip(names, read[row * len(names) : (row + 1) * len(names)]))}
            self.log(line)
            if diverged is None and not math.isfinite(line.get("loss", 0.0)):
                diverged = line
        self._stop_if_diverged(diverged)
        last = dict(zip(names, read[-len(names) :])) if names else {}
        self.bar.set_postfix(loss=f"{last.get('loss', float('nan')):.4f}", pairs_s=f"{self.pending[-1][0]['pairs_per_s']:.1f}")
        self.pending.clear()
        self.clock.flush()

    def _stop_if_diverged(self, line: dict | None) -> None:
        """Raise on every process when any process logged a non-finite loss (``line``: its first such log line).

        Every later step would train on NaN weights and the run would still "finish" with a broken student. The
        processes agree first (one all-reduce per log interval), so that none raises while the others wait in
        the next step's gradient all-reduce."""
        flag = torch.tensor([0.0 if line is None else 1.0], device=self.accelerator.device)
        if self.accelerator.num_processes > 1:
            flag = self.accelerator.reduce(flag, reduction="sum")
        if flag.item() == 0:
            return
        where = f"loss {line['loss']} at step {line['step']}" if line is not None else "a non-finite loss on another process"
        precision = " or --mixed-precision no" if self.config.mixed_precision != "no" else ""
        raise OpticalError(
            f"training diverged: {where}; rerun with a lower --lr (now {self.config.lr:g}){precision}, and --overwrite"
        )

    def evaluate_dev(self, step: int) -> None:
        """The dev metric of the current student; a new best is saved to ``best/``."""
        if self.selector is None:
            return
        accelerator, state = self.accelerator, self.state
        self.student.eval()
        score = self.selector(accelerator.unwrap_model(self.module).encoder)
        self.student.train()
        value = score.value
        entry = {"step": step, self.selector.metric: value, **score.recorded, SPREAD_KEY: score.spread}
        state.history.append(entry)
        if state.best_metric is None or value > state.best_metric:
            state.best_metric, state.best_step = value, step
            if accelerator.is_main_process:
                _save_student(accelerator.unwrap_model(self.module).encoder, self.out / BEST)
        self.log(entry)

    def log(self, entry: dict[str, Any]) -> None:
        """One line of ``metrics.jsonl`` (and TensorBoard scalars when asked for)."""
        if self.accelerator.is_main_process:
            with self.log_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry) + "\n")
        if self.config.tensorboard:
            self.accelerator.log({k: v for k, v in entry.items() if k != "step"}, step=entry["step"])

    def save_checkpoint(self) -> None:
        """Count the training time so far, then write the checkpoint atomically."""
        self.state.train_seconds += time.perf_counter() - self.tick
        self.tick = time.perf_counter()
        self.state.wall_seconds = self.earlier_wall_seconds + self.tick - self.started
        _save_checkpoint(self.accelerator, self.out, self.state)

    # ------------------------------------------------------------------ finish
    def finalize(self) -> DistillResult:
        """The student (the best dev step's when selecting, else the last) and ``run.json``; then the
        checkpoint goes (unless ``keep_checkpoint``): a finished run keeps one copy of its weights."""
        accelerator, state, config, out = self.accelerator, self.state, self.config, self.out
        processes = accelerator.num_processes
        pairs = state.step * config.batch_size * processes * config.grad_accum  # every process's pairs
        result = RunResult(
            steps=state.step,
            selection_metric=self.selector.metric if self.selector else None,
            best_step=state.best_step,
            best_metric=state.best_metric,
            seconds=self.earlier_wall_seconds + time.perf_counter() - self.started,
            pairs_per_second=pairs / max(state.train_seconds, 1e-9),
            resumed_from_step=self.resumed_from,
            history=state.history,
        )
        record = RunRecord(
            config=config,
            fingerprint=config.training_fingerprint(),
            teacher=config.teacher,
            data_fingerprint=self.bitext.fingerprint,
            bitext=BitextSummary(len(self.bitext.pairs), _jsonable(self.bitext.stats)),
            versions=versions(),
            timings=RunTimings(self.timings["teacher_seconds"], state.train_seconds, result.seconds),
            device=str(accelerator.device),
            num_processes=processes,
            result=result,
            completed=True,
            out_dir=out,
            throughput=self.throughput(),
        )
        if accelerator.is_main_process:
            self._place_student()
            record = dataclasses.replace(record, student_files=file_digests(out / STUDENT))
            record.save()
            # After run.json: the card is not a recorded student file, so evaluate may update it.
            write_model_card(out)
            if not config.keep_checkpoint:
                _drop_checkpoint(out)
        accelerator.wait_for_everyone()
        return DistillResult(record, main_process=accelerator.is_main_process)

    def _place_student(self) -> None:
        """``best/`` renamed to ``student/`` when selecting (a finalize killed after that rename left
        ``student/`` in place), else the last weights saved as ``student/``."""
        out = self.out
        if self.selector is not None and (out / BEST).exists():
            _move_student(out / BEST, out / STUDENT)
        elif self.selector is None or self.state.best_step is None or not (out / STUDENT).is_dir():
            _save_student(self.accelerator.unwrap_model(self.module).encoder, out / STUDENT)

    def throughput(self) -> RunThroughput:
        """This session's training loop: pairs and student tokens per second, padding, seconds per phase."""
        counters, seconds = self.counters, getattr(self, "session_seconds", 0.0)
        processes = self.accelerator.num_processes
        return RunThroughput(
            pairs_per_second=counters.pairs * processes / max(seconds, 1e-9),
            tokens_per_second=counters.tokens * processes / max(seconds, 1e-9),
            padding_fraction=counters.padding_fraction,
            phase_seconds={k: round(v, 4) for k, v in self.clock.seconds.items()},
            tokenize_seconds=round(self.timings.get("tokenize_seconds", 0.0), 4),
            length_grouping=self.config.length_grouping,
            torch_threads=torch.get_num_threads(),
        )


def _check_some_step_trains(config: DistillConfig, pairs: int, processes: int) -> None:
    """Refuse a run whose every optimizer step falls in the warm-up at learning rate 0 (the linear warm-up's first
    step has lr 0): it would be reported as trained while no weight changed. Counts steps as build_optimizer does."""
    batches = max(1, pairs // config.batch_size)
    total = max(1, batches // (config.grad_accum * max(1, processes))) * config.epochs
    warmup = math.ceil(config.warmup_ratio * total)
    if warmup >= 1 and total < 2:
        raise OpticalError(
            f"{pairs} pairs in batches of {config.batch_size} make {total} optimizer step, taken in the warm-up at "
            "learning rate 0: no weight would change; give more pairs (--budget), a smaller --batch-size, "
            "more epochs, or warmup_ratio 0"
        )


def _launch_rank() -> int:
    """This process's global rank as its launcher exported it (0 when started alone), read as accelerate
    reads it (:func:`accelerate.utils.get_cpu_distributed_information`: torchrun's ``RANK``, or MPI's);
    known before any Accelerator exists."""
    return get_cpu_distributed_information().rank


def _check_launch(accelerator: Accelerator, device: str) -> None:
    """Refuse processes that would each train alone, and warn about a CPU launch that started one.

    * ``torchrun --nproc_per_node N`` (or ``accelerate launch --multi_gpu``) with ``--device auto`` on a
      machine without CUDA: accelerate 1.x finds no backend and sets up N independent single-process
      runs (``PartialState._prepare_backend``), all writing the same output dir.
    * ``accelerate launch --cpu --num_processes N`` without an MPI hostfile: accelerate's simple launcher
      starts one process and only exports ``MASTER_ADDR`` for N > 1 (``prepare_simple_launcher_cmd_env``),
      so the run is a correct single-process run, not the N processes asked for.
    """
    launched = get_cpu_distributed_information().world_size
    if launched > accelerator.num_processes:
        raise OpticalError(
            f"the launcher started {launched} processes but accelerate runs each alone (no CUDA device for "
            f"--device {device}); pass --device cpu to train them together on the CPU (gloo)"
        )
    if accelerator.num_processes == 1 and parse_flag_from_env("ACCELERATE_USE_CPU") and "MASTER_ADDR" in os.environ:
        print(
            "optical: warning: `accelerate launch --cpu --num_processes N` runs one process (without --mpirun_hostfile); "
            "for N CPU processes use `torchrun --nproc_per_node N -m optical.cli distill ... --device cpu`",
            file=sys.stderr,
        )


def _drop_checkpoint(out: Path) -> None:
    for name in (CHECKPOINT, f"{CHECKPOINT}.old", f"{CHECKPOINT}.tmp"):
        if (out / name).exists():
            shutil.rmtree(out / name)


def distill(config: DistillConfig, overwrite: bool = False, progress: bool = True) -> DistillResult:
    """Distil a student query encoder from bitext; resumes a killed run with the same config.

    Returns at once with the stored result when ``config.out_dir`` already
    holds the finished run.
    """
    return DistillTrainer(config, overwrite=overwrite, progress=progress).run()


def skip_lines(stats: Any) -> list[str]:
    """One line per bitext source that skipped lines while reading, with the count per reason
    (what ``distill`` prints on stderr; the same counts go into run.json)."""
    lines = []
    for name, source in getattr(stats, "per_source", {}).items():
        reasons = {k: v for k, v in (getattr(source, "skipped", None) or {}).items() if v}
        if not reasons and getattr(source, "malformed", 0):
            reasons = {"malformed": source.malformed}
        if reasons:
            detail = ", ".join(f"{reason} {count}" for reason, count in sorted(reasons.items()))
            lines.append(f"bitext {name}: skipped {sum(reasons.values())} of {source.read} lines ({detail})")
    return lines


def _jsonable(value: Any) -> Any:
    """Dataclasses and counters in bitext stats, as plain JSON values."""
    if hasattr(value, "__dataclass_fields__"):
        return {k: _jsonable(v) for k, v in value.__dict__.items()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
