"""Two training processes (torchrun, gloo on the CPU) against one, at the same global batch.

Each process of a multi-process ``optical distill`` takes every num_processes-th batch of the epoch
(``DistillTrainer.train``), so two processes at per-process batch B see, at each optimizer step, the
same two batches as one process at batch B with ``--grad-accum 2``. Both runs here are that pair:

* ``ddp_2proc_weights_max_abs_diff``: the largest absolute difference between the two students' weights
  (fp32; ``tests/train/test_multiprocess.py`` asserts <= 1e-5);
* ``ddp_2proc_over_1proc_pairs_per_second``: pairs/s of the two-process run's training loop over the
  one-process run's (``run.json`` throughput, which counts every process's pairs), median over rounds of
  the per-round ratio, the runs of a round back to back. Each side gets all the cores: one process with
  ``os.cpu_count()`` torch threads (torch's default), two with half as many each. On a 2-core machine
  no gain is expected (the model is tiny: little compute per step against a gradient all-reduce per step);
* ``ddp_2proc_over_1proc_1thread_pairs_per_second``: the same against one process with one thread, the
  scaling of data parallelism itself (2 at best); torch threads contend with other load on a shared
  machine far more than single-threaded processes do, which this figure shows beside the first.

Usage (next to nothing else running)::

    .venv/bin/python benchmarks/bench_ddp.py
    .venv/bin/python benchmarks/bench_ddp.py --rounds 1 --dry-run   # a check: records nothing
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cold_cache, record  # noqa: E402
from optical.models.tiny import make_tiny_model  # noqa: E402
from optical.train.record import RunRecord  # noqa: E402

SCRIPT = "benchmarks/bench_ddp.py"


def tiny_teacher(target: Path) -> Path:
    """The tiny BERT of the tests with dropout 0 (each process would draw its own dropout masks)."""
    model = make_tiny_model(target, seed=0)
    config = json.loads((model / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (model / "config.json").write_text(json.dumps(config))
    return model


def run(args, teacher: Path, out: Path, processes: int, env: dict[str, str], threads: int) -> RunRecord:
    """One ``optical distill`` at per-process batch ``args.batch_size`` and global batch twice that, with
    ``threads`` torch threads per process."""
    command = ["-m", "optical.cli", "distill", "--lang", "el", "--method", "ot", "--teacher", str(teacher)]
    command += ["--budget", str(args.pairs), "--batch-size", str(args.batch_size), "--max-length", str(args.max_length)]
    command += ["--grad-accum", str(2 // processes), "--select-on", "none", "--checkpoint-every", "1000000"]
    command += ["--device", "cpu", "--mixed-precision", "no", "--quiet", "--out", str(out)]
    if processes > 1:
        command = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes), *command]
    subprocess.run([sys.executable, *command], env={**env, "OMP_NUM_THREADS": str(threads)}, check=True, capture_output=True)
    return RunRecord.load(out)


def max_abs_diff(a: Path, b: Path) -> float:
    x, y = load_file(str(a / "student" / "model.safetensors")), load_file(str(b / "student" / "model.safetensors"))
    return max((x[k] - y[k]).abs().max().item() for k in x)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=32, help="per process")
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dry-run", action="store_true", help="print the figures, record nothing")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-ddp-") as tmp:
        work = Path(tmp)
        teacher = tiny_teacher(work / "tiny")
        env = {**os.environ, "OPTICAL_CACHE_DIR": str(cold_cache(work / "cache"))}
        run(args, teacher, work / "warm", 1, env, 1)  # builds the teacher cache that every timed run then reads
        cores, load = os.cpu_count() or 1, os.getloadavg()[0]  # other load distorts threaded runs most
        sides = {"1proc": (1, cores), "1proc-1thread": (1, 1), "2proc": (2, max(1, cores // 2))}
        speeds: dict[str, list[float]] = {side: [] for side in sides}
        ratios: dict[str, list[float]] = {"1proc": [], "1proc-1thread": []}
        diffs, steps = [], set()
        for round_ in range(args.rounds):
            for side, (processes, threads) in sides.items():
                done = run(args, teacher, work / f"{side}-{round_}", processes, env, threads)
                assert done.num_processes == processes
                speeds[side].append(done.throughput.pairs_per_second)
                steps.add(done.result.steps)
            for side in ratios:
                ratios[side].append(speeds["2proc"][-1] / speeds[side][-1])
                diffs.append(max_abs_diff(work / f"{side}-{round_}", work / f"2proc-{round_}"))
    assert len(steps) == 1, steps
    results: dict[str, float | str] = {
        "ddp_2proc_weights_max_abs_diff": max(diffs),
        "ddp_1proc_pairs_per_second": round(statistics.median(speeds["1proc"]), 1),
        "ddp_1proc_1thread_pairs_per_second": round(statistics.median(speeds["1proc-1thread"]), 1),
        "ddp_2proc_pairs_per_second": round(statistics.median(speeds["2proc"]), 1),
        "ddp_2proc_over_1proc_pairs_per_second": round(statistics.median(ratios["1proc"]), 3),
        "ddp_2proc_over_1proc_1thread_pairs_per_second": round(statistics.median(ratios["1proc-1thread"]), 3),
        "ddp_setup": (
            f"optical distill --method ot, el, {args.pairs} pairs, tiny BertModel (hidden 32, 2 layers, dropout 0), "
            f"per-process batch {args.batch_size}, global batch {2 * args.batch_size}, max length {args.max_length}, "
            f"{steps.pop()} optimizer steps, --device cpu --mixed-precision no, on {cores} cores; "
            f"1 process with --grad-accum 2 and {cores} "
            f"torch thread(s) (1proc) or 1 (1proc_1thread) against `torchrun --standalone --nproc_per_node 2` (gloo) "
            f"with {max(1, cores // 2)} each; pairs/s of the training loop (run.json throughput, every process's "
            f"pairs), median of {args.rounds} interleaved rounds (ratios: median of per-round ratios); weight "
            "difference: the largest between the 2-process student and either 1-process one over the rounds; "
            f"1-minute load average before the timed runs {load:.1f}"
        ),
    }
    print(json.dumps(results, indent=1))
    if not args.dry_run:
        record(results, SCRIPT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
