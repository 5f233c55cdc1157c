"""Cost of one OPTICAL training step on CPU, against MSE KD and a bare step.

Setup (the default distillation config, but 32 tokens per sentence): student
multilingual-e5-small with frozen word embeddings, AdamW (lr 2e-5, weight decay
0.01), gradient clipping at 1.0, batch 32. The batch is the first 32 en-el
pairs of NTREX-128 whose sentences both fill ``max_length=32`` tokens once the
"query: " prefix is added, so every row is exactly 32 tokens (real text,
truncated). Teacher outputs come from a :class:`TeacherCache` of the English
side (computed once with the same model, which is the teacher at step 0).

Steps timed, each the trainer's loop body without Accelerate (a no-op wrapper
on one CPU process):

* ``ot``:   slice the foreign side's token ids (tokenized once, as the trainer does) and the teacher
  cache's device tensors -> student forward -> ``build_loss("ot")`` -> backward -> clip -> AdamW step;
* ``mse``:  the same with ``build_loss("mse")``, which also slices and encodes the English side (a
  second student forward);
* ``bare``: student forward on the same foreign batch, loss = ``pooled.sum()``, backward, AdamW step
  (no teacher, no OT, no clipping). Every row is 32 tokens, so this is a length-grouped batch without
  padding: ``ot_step_over_bare_step`` is the OT step's cost at the same batches as a bare step.

The three are interleaved (ot, mse, bare, ot, mse, bare, ...) so that load from
other processes hits them alike; each ratio is the median over rounds of the
per-round ratio. Timed in thread CPU time with torch single-threaded (steady
on a shared machine; the CPU autograd engine runs backward in the calling
thread), wall time recorded beside it. A per-phase breakdown of the OT step
says where the extra time over a bare step goes.

Peak memory: a real ``optical.train.distill`` run (OT, el, budget 96 = 3 steps
of 32, default max_length 64, select_on none, checkpoint at the end) in a fresh
subprocess with an empty temporary cache root (so it also builds its teacher
cache); its own ``ru_maxrss``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import record  # noqa: E402
from optical.data import resolve_data_dir  # noqa: E402
from optical.losses import DistillBatch, build_loss  # noqa: E402
from optical.models import resolve_model  # noqa: E402
from optical.models.encoder import Encoder  # noqa: E402
from optical.train.batches import TokenizedSide  # noqa: E402
from optical.train.teacher_cache import compute_teacher_cache  # noqa: E402

MODEL = "multilingual-e5-small"
BATCH, MAX_LENGTH = 32, 32
LR, WEIGHT_DECAY, MAX_GRAD_NORM = 2e-5, 0.01, 1.0


def full_length_pairs(student: Encoder, tsv: Path, count: int) -> tuple[list[str], list[str]]:
    """The first ``count`` pairs whose both sides reach ``student.max_length`` tokens."""
    english, foreign = [], []
    for line in tsv.read_text(encoding="utf-8").splitlines():
        en, x = line.split("\t")
        lengths = [len(ids) for ids in student.tokenizer([student.query_prefix + en, student.query_prefix + x])["input_ids"]]
        if min(lengths) >= student.max_length:
            english.append(en)
            foreign.append(x)
            if len(english) == count:
                return english, foreign
    raise SystemExit(f"{tsv}: fewer than {count} pairs of {student.max_length}+ tokens")


class StepBench:
    """The student, its optimizer, the teacher cache and the batch of one benchmark."""

    def __init__(self, english: list[str], foreign: list[str], student: Encoder) -> None:
        self.english, self.foreign, self.student = english, foreign, student
        self.indices = list(range(len(english)))
        student.eval()
        self.cache = compute_teacher_cache(student, english, MAX_LENGTH, kind="query", progress=False)  # leaves max_length as is
        student.freeze_word_embeddings()
        student.train()
        self.params = student.trainable_parameters()
        self.optimizer = torch.optim.AdamW(self.params, lr=LR, weight_decay=WEIGHT_DECAY)
        self.losses = {"ot": build_loss("ot"), "mse": build_loss("mse")}
        self.bare_batch = student.tokenize(foreign, kind="query")
        # The trainer's data path: both sides tokenized once, the teacher cache as device tensors; a step slices.
        self.foreign_tokens = TokenizedSide.build(student, foreign, "query", MAX_LENGTH, "cpu")
        self.english_tokens = TokenizedSide.build(student, english, "query", MAX_LENGTH, "cpu")
        self.teacher_batches = self.cache.on_device("cpu")
        self.index = torch.arange(len(english))
        self.last_logs: dict[str, dict[str, float]] = {}  # method -> logs of its latest step

    def distill_step(self, method: str, phases: dict[str, list[float]] | None = None) -> None:
        """The trainer's loop body for ``method``; ``phases`` collects per-phase thread CPU seconds."""
        clock = time.thread_time
        marks = [clock()]

        def mark(name: str) -> None:
            marks.append(clock())
            if phases is not None:
                phases.setdefault(name, []).append(marks[-1] - marks[-2])

        loss_fn, student, index = self.losses[method], self.student, self.index
        foreign_batch = self.foreign_tokens.batch(index, self.foreign_tokens.width(self.indices))
        english_batch = self.english_tokens.batch(index, self.english_tokens.width(self.indices))
        teacher_out, teacher_ids = self.teacher_batches.batch(index, self.teacher_batches.width(self.indices))
        mark("data")
        student_foreign = student(foreign_batch)
        student_english = student(english_batch) if loss_fn.needs_student_english else None
        mark("student_forward")
        out = loss_fn(
            DistillBatch(
                student_foreign=student_foreign,
                teacher_english=teacher_out,
                student_english=student_english,
                student_token_ids=foreign_batch["input_ids"],
                teacher_token_ids=teacher_ids,
            )
        )
        mark("loss_forward")
        out.loss.backward()
        mark("backward")
        torch.nn.utils.clip_grad_norm_(self.params, MAX_GRAD_NORM)
        mark("clip_grad_norm")
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        mark("optimizer_step")
        self.last_logs[method] = out.logs

    def bare_step(self) -> None:
        self.student(self.bare_batch).pooled.sum().backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)


def timed(fn: Callable[[], None]) -> tuple[float, float]:
    """(thread CPU seconds, wall seconds) of one call."""
    cpu, wall = time.thread_time(), time.perf_counter()
    fn()
    return time.thread_time() - cpu, time.perf_counter() - wall


PEAK_RSS_CHILD = textwrap.dedent(
    """
    import json, os, resource, sys, time
    import torch
    torch.set_num_threads(int(sys.argv[2]))
    from optical.train import DistillConfig, distill
    config = DistillConfig(lang="el", method="ot", out_dir=sys.argv[1], budget=96, batch_size=32,
                           select_on="none", checkpoint_every=50, device="cpu", data_dir=sys.argv[3])
    started = time.perf_counter()
    result = distill(config, overwrite=True, progress=False)
    print(json.dumps({"steps": result.steps, "seconds": time.perf_counter() - started,
                      "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
    """
)


def peak_rss(threads: int, data_dir: Path) -> dict:
    """``ru_maxrss`` of a short real distill run in a fresh interpreter and cache root."""
    with tempfile.TemporaryDirectory(prefix="optical-bench-train-") as tmp:
        cache = Path(tmp) / "cache"
        cache.mkdir()
        (cache / "models").symlink_to(Path(resolve_model(MODEL)).parent, target_is_directory=True)
        env = dict(os.environ, OPTICAL_CACHE_DIR=str(cache))
        done = subprocess.run(
            [sys.executable, "-c", PEAK_RSS_CHILD, str(Path(tmp) / "run"), str(threads), str(data_dir)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"distill subprocess failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (thread CPU time needs 1)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--skip-rss", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data_dir = resolve_data_dir(args.data_dir, require=())
    student = Encoder.load(MODEL, device="cpu", max_length=MAX_LENGTH)
    english, foreign = full_length_pairs(student, data_dir / "bitext" / "ntrex128" / "en-el.tsv", BATCH)
    bench = StepBench(english, foreign, student)
    assert bench.bare_batch["input_ids"].shape == (BATCH, MAX_LENGTH), bench.bare_batch["input_ids"].shape

    sides: dict[str, Callable[[], None]] = {
        "ot": lambda: bench.distill_step("ot"),
        "mse": lambda: bench.distill_step("mse"),
        "bare": bench.bare_step,
    }
    for fn in sides.values():  # warm-up: allocator, AdamW state, first-call paths
        fn()
    cpu: dict[str, list[float]] = {name: [] for name in sides}
    wall: dict[str, list[float]] = {name: [] for name in sides}
    for round_index in range(args.rounds):
        for name, fn in sides.items():
            c, w = timed(fn)
            cpu[name].append(c)
            wall[name].append(w)
        print(
            f"round {round_index}: " + ", ".join(f"{n} {cpu[n][-1]:.3f}s cpu / {wall[n][-1]:.3f}s wall" for n in sides),
            flush=True,
        )
    ot_logs = dict(bench.last_logs["ot"])

    phases: dict[str, list[float]] = {}
    for _ in range(max(3, args.rounds // 2)):
        bench.distill_step("ot", phases)
        bench.bare_step()  # keep the load pattern of the rounds above

    def ratio(a: str, b: str, samples: dict[str, list[float]]) -> float:
        return round(statistics.median(x / y for x, y in zip(samples[a], samples[b])), 4)

    results: dict[str, float | int | str] = {
        "ot_step_over_mse_step": ratio("ot", "mse", cpu),
        "ot_step_over_bare_step": ratio("ot", "bare", cpu),
        "ot_step_over_bare_step_wall": ratio("ot", "bare", wall),
        "train_step_over_bare_step": ratio("ot", "bare", cpu),
        "ot_step_over_mse_step_wall": ratio("ot", "mse", wall),
        "train_step_over_bare_step_wall": ratio("ot", "bare", wall),
    }
    for name in sides:
        results[f"train_{name}_step_cpu_s"] = round(statistics.median(cpu[name]), 4)
        results[f"train_{name}_step_wall_s"] = round(statistics.median(wall[name]), 4)
    for name, samples in phases.items():
        results[f"train_ot_phase_{name}_cpu_ms"] = round(statistics.median(samples) * 1e3, 2)
    results["train_ot_sinkhorn_iters"] = float(ot_logs.get("ot_iters", -1.0))
    results["train_step_setup"] = (
        f"{MODEL}, batch {BATCH} x {MAX_LENGTH} tokens (NTREX en-el), frozen word embeddings, AdamW, CPU, "
        f"{torch.get_num_threads()} torch thread(s), {args.rounds} interleaved rounds, thread CPU time"
    )
    if not args.skip_rss:
        rss = peak_rss(args.threads, data_dir)
        results["peak_rss_gib_e5_batch32"] = round(rss["maxrss_kib"] / 2**20, 3)
        results["peak_rss_distill_seconds"] = round(rss["seconds"], 1)
        results["peak_rss_setup"] = (
            f"optical.train.distill ot el, budget 96 ({rss['steps']} steps of 32), max_length 64, select_on none, "
            f"checkpoint at end, empty cache root, {args.threads} torch thread(s); ru_maxrss of a fresh subprocess"
        )
    for key, value in results.items():
        print(f"{key}: {value}")
    record(results, source="benchmarks/bench_train.py")


if __name__ == "__main__":
    main()
