"""Distillation throughput: optical against sentence-transformers, the fast path against the plain one,
and the host-side bound of the training loop.

Figures (each measured in one run of this script, side by side):

* ``distill_mse_over_sentence_transformers`` (goal >= 2.0): pairs/s of ``optical distill --method mse``
  over sentence-transformers' ``SentenceTransformerTrainer`` + ``losses.MSELoss`` on the same pairs (the
  first ``--pairs`` en-el pairs of optical's seeded bitext), the same model, batch, max length, epochs (1),
  frozen word embeddings, learning rate, warm-up and torch thread count. Both sides get the teacher's
  embeddings beforehand (optical's teacher cache; the peer's ``label`` column), so both time their training
  loop only: optical's ``run.json`` throughput, the peer's ``train_samples_per_second``. Each runs at its
  defaults for that job (optical's precision is ``auto``: bf16 on a CPU with AVX512-BF16/AMX); ``..._peer_bf16``
  is the same ratio with the peer given ``bf16=True`` and ``..._fp32`` that of optical with
  ``--mixed-precision no`` over the peer's default, so that readers see how much comes from precision.
* ``distill_fast_over_plain`` (goal >= 2.5): wall time of one ``ot`` and one ``mse`` run at ``--pairs``
  pairs, evaluation included, with every speed-up off (fp32 training and evaluation, ``--no-length-grouping``, a
  fresh teacher cache for each run as the per-subset cache gave) over the same with every speed-up on (bf16
  training and evaluation where the CPU has AVX512-BF16/AMX, length grouping, one teacher cache shared by both runs).
* ``host_pairs_per_second`` (goal >= 20,000): the training loop's pairs/s with a tiny model (hidden 16,
  1 layer, 1 head, no dropout), batch 256, max length 64, on the CPU: the rate at which the host can feed any
  device. On a CPU the tiny model's own arithmetic stays in it; ``host_data_pairs_per_second_*`` is the
  data phase alone.

Usage (next to nothing else running)::

    .venv/bin/python benchmarks/bench_distill_peer.py                 # all three, e5-small, 2000 pairs
    .venv/bin/python benchmarks/bench_distill_peer.py --only host
    .venv/bin/python benchmarks/bench_distill_peer.py --model /tmp/tiny --pairs 64 --dry-run   # a check: records nothing
    .venv/bin/python benchmarks/bench_distill_peer.py --only cuda --model DIR   # on a GPU box; DIR: e5-small's
                                                                                # config.json + tokenizer files
    python3 benchmarks/bench_distill_peer.py --only host --host-device cuda --key-suffix _cuda   # feeding a GPU

benchmarks/gpu_box.sh runs the CUDA parts, and the CUDA tests, in one call of a lent GPU machine.

The peer needs the ``datasets`` package (``SentenceTransformerTrainer`` trains on a ``datasets.Dataset``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cold_cache, record  # noqa: E402
from optical.data import BitextConfig, build_bitext, resolve_data_dir  # noqa: E402
from optical.models import resolve_model  # noqa: E402
from optical.models.encoder import Encoder  # noqa: E402
from optical.train import DistillConfig, distill  # noqa: E402
from optical.train.precision import cpu_bf16_support  # noqa: E402
from optical.train.record import RunRecord  # noqa: E402

SCRIPT = "benchmarks/bench_distill_peer.py"
LANG = "el"


def optical_config(args, out: Path, method: str, **overrides) -> DistillConfig:
    values = dict(
        lang=LANG,
        method=method,
        out_dir=str(out),
        teacher=args.model,
        budget=args.pairs,
        seed=0,
        batch_size=args.batch_size,
        max_length=args.max_length,
        epochs=1,
        select_on="none",
        checkpoint_every=10**6,
        device="cpu",
    )
    values.update(overrides)
    return DistillConfig(**values)


# ------------------------------------------------------------------ optical vs sentence-transformers
def peer_pairs_per_second(args, english: list[str], foreign: list[str], bf16: bool, work: Path) -> float:
    """sentence-transformers' trainer on the same MSE-KD job; its ``train_samples_per_second``."""
    try:
        from datasets import Dataset
    except ImportError:
        raise SystemExit("the peer needs the datasets package: .venv/bin/pip install datasets") from None
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, losses
    from sentence_transformers.training_args import SentenceTransformerTrainingArguments

    location = str(resolve_model(args.model))
    teacher = Encoder.load(location, max_length=args.max_length)
    labels = teacher.encode(english, kind="query", batch_size=64, max_length=args.max_length)  # as optical's cache
    student = SentenceTransformer(location, device="cpu")
    student.max_seq_length = args.max_length
    student[0].auto_model.embeddings.word_embeddings.weight.requires_grad_(False)
    prefix = teacher.query_prefix
    dataset = Dataset.from_dict(
        {
            "english": [prefix + t for t in english],
            "non_english": [prefix + t for t in foreign],
            "label": [row.tolist() for row in labels],
        }
    )
    arguments = SentenceTransformerTrainingArguments(
        output_dir=str(work / f"peer-{'bf16' if bf16 else 'fp32'}"),
        num_train_epochs=1,
        per_device_train_batch_size=args.batch_size,
        learning_rate=2e-5,
        warmup_ratio=0.1,
        weight_decay=0.01,
        save_strategy="no",
        logging_strategy="no",
        report_to="none",
        use_cpu=True,
        bf16=bf16,
        seed=0,
        dataloader_drop_last=True,  # optical drops the batch-less tail too
    )
    trainer = SentenceTransformerTrainer(model=student, args=arguments, train_dataset=dataset, loss=losses.MSELoss(model=student))
    output = trainer.train()
    return float(output.metrics["train_samples_per_second"])


def bench_peer(args, work: Path) -> dict[str, float | str]:
    bitext = build_bitext(resolve_data_dir(None), BitextConfig(lang=LANG, budget=args.pairs, seed=0))
    english, foreign = [p.en for p in bitext.pairs], [p.foreign for p in bitext.pairs]
    run = distill(optical_config(args, work / "optical-mse", "mse"), progress=False)
    record = RunRecord.load(run.out_dir)
    optical, precision = record.throughput.pairs_per_second, record.config.mixed_precision
    peer = peer_pairs_per_second(args, english, foreign, bf16=False, work=work)
    results: dict[str, float | str] = {
        "distill_mse_pairs_per_second_optical": round(optical, 2),
        "distill_mse_pairs_per_second_peer": round(peer, 2),
        "distill_mse_over_sentence_transformers": round(optical / peer, 3),
    }
    if precision != "no":
        # Like for like in fp32: how much of the ratio is not precision.
        run = distill(optical_config(args, work / "optical-mse-fp32", "mse", mixed_precision="no"), progress=False)
        optical_fp32 = RunRecord.load(run.out_dir).throughput.pairs_per_second
        results["distill_mse_pairs_per_second_optical_fp32"] = round(optical_fp32, 2)
        results["distill_mse_over_sentence_transformers_fp32"] = round(optical_fp32 / peer, 3)
    if cpu_bf16_support() is not None:
        peer_bf16 = peer_pairs_per_second(args, english, foreign, bf16=True, work=work)
        results["distill_mse_pairs_per_second_peer_bf16"] = round(peer_bf16, 2)
        results["distill_mse_over_sentence_transformers_peer_bf16"] = round(optical / peer_bf16, 3)
    results["distill_peer_setup"] = (
        f"{Path(str(args.model)).name}, {args.pairs} en-{LANG} pairs (seed 0), batch {args.batch_size}, max length "
        f"{args.max_length}, 1 epoch, frozen word embeddings, lr 2e-5, warm-up 0.1, {torch.get_num_threads()} torch "
        "thread(s), cpu; optical: distill --method mse --select-on none at its default precision (auto, which ran "
        f"{precision} here), pairs/s of its training loop (run.json throughput); peer: sentence-transformers "
        "SentenceTransformerTrainer + losses.MSELoss on (english, non_english, teacher label), "
        "train_samples_per_second, defaults otherwise (fp32); _peer_bf16: the peer with bf16=True; _fp32: optical "
        "with --mixed-precision no over the peer's default"
    )
    return results


# ------------------------------------------------------------------ fast path vs plain path
def timed_run_and_eval(args, out: Path, method: str, cache_dir: Path, fast: bool) -> float:
    """Seconds of one distill and its evaluation (el, default tasks), with the given cache dir."""
    from optical.eval.evaluate import EvalConfig, evaluate

    os.environ["OPTICAL_CACHE_DIR"] = str(cache_dir)
    precision = "bf16" if fast and cpu_bf16_support() is not None else "no"
    config = optical_config(args, out / "distill", method, length_grouping=fast, mixed_precision=precision)
    tick = time.perf_counter()
    distill(config, progress=False)
    evaluate(
        EvalConfig(
            student=str(out / "distill"),
            out_dir=str(out / "eval"),
            langs=[LANG],
            teacher=args.model,
            device="cpu",
            mixed_precision=precision,
        ),
        progress=False,
    )
    return time.perf_counter() - tick


def warm_document_cache(args, work: Path) -> Path:
    """Untimed zero-shot evaluations fill the teacher's document cache that both paths then share, in each
    path's precision: across a study's runs that cache is warm, so neither path pays the one-time pass over the
    candidate pool in its timing."""
    from optical.eval.evaluate import ZERO_SHOT, EvalConfig, evaluate

    documents = work / "doc-cache"
    os.environ["OPTICAL_CACHE_DIR"] = str(cold_cache(work / "warm-cache", {"doc_cache": documents}))
    for precision in dict.fromkeys(("no", "bf16" if cpu_bf16_support() is not None else "no")):
        evaluate(
            EvalConfig(
                student=ZERO_SHOT,
                out_dir=str(work / f"zero-shot-{precision}"),
                langs=[LANG],
                teacher=args.model,
                device="cpu",
                mixed_precision=precision,
            ),
            progress=False,
        )
    return documents


def bench_fast_over_plain(args, work: Path) -> dict[str, float | str]:
    saved = os.environ.get("OPTICAL_CACHE_DIR")
    try:
        documents = {"doc_cache": warm_document_cache(args, work)}
        plain = sum(
            timed_run_and_eval(args, work / f"plain-{m}", m, cold_cache(work / f"plain-cache-{m}", documents), fast=False)
            for m in ("ot", "mse")
        )
        fast_cache = cold_cache(work / "fast-cache", documents)
        fast = sum(timed_run_and_eval(args, work / f"fast-{m}", m, fast_cache, fast=True) for m in ("ot", "mse"))
    finally:
        if saved is None:
            os.environ.pop("OPTICAL_CACHE_DIR", None)
        else:
            os.environ["OPTICAL_CACHE_DIR"] = saved
    return {
        "distill_plain_seconds": round(plain, 1),
        "distill_fast_seconds": round(fast, 1),
        "distill_fast_over_plain": round(plain / fast, 3),
        "distill_fast_setup": (
            f"{Path(str(args.model)).name}, el, {args.pairs} pairs, batch {args.batch_size}, max length {args.max_length}, "
            "one ot and one mse run each followed by `optical evaluate` (el, default tasks, test split), wall seconds; "
            "plain: fp32 training and evaluation, --no-length-grouping, an empty teacher cache per run; fast: bf16 "
            f"training and evaluation where the CPU has AVX512-BF16/AMX ({cpu_bf16_support() or 'not here: fp32'}), "
            "length grouping, one teacher cache for both runs; both: the teacher's document cache warm in the path's "
            "precision (filled by untimed zero-shot evaluations, as across a study's runs) and the evaluation's query "
            "memo on"
        ),
    }


def loop_config(out: Path, method: str, teacher: Path, budget: int, device: str, precision: str = "no") -> DistillConfig:
    """A batch-256, max-length-64 run timed for its loop only: no selection, no mid-run checkpoint, and ot
    at a fixed number of Sinkhorn iterations (``ot.tol=0``: no convergence check)."""
    return DistillConfig(
        lang=LANG,
        method=method,
        out_dir=str(out),
        teacher=str(teacher),
        budget=budget,
        batch_size=256,
        max_length=64,
        select_on="none",
        checkpoint_every=10**6,
        device=device,
        mixed_precision=precision,
        loss_options={"ot": {"tol": 0.0}} if method == "ot" else {},
    )


# ------------------------------------------------------------------ host bound
def bench_host(args, work: Path) -> dict[str, float | str]:
    from optical.models.tiny import make_tiny_model

    # No dropout: its masks over the 256x64x64 attention probabilities were the largest part of the tiny step.
    tiny = make_tiny_model(work / "tiny", hidden=16, layers=1, heads=1, seed=0, dropout=0.0)
    results: dict[str, float | str] = {}
    budget = args.host_batches * 256
    for method in ("ot", "mse"):
        config = loop_config(work / f"host-{method}", method, tiny, budget, args.host_device)
        run = distill(config, progress=False)
        speed = RunRecord.load(run.out_dir).throughput
        results[f"host_pairs_per_second_{method}"] = round(speed.pairs_per_second, 1)
        results[f"host_padding_fraction_{method}"] = round(speed.padding_fraction, 4)
        results[f"host_phase_seconds_{method}"] = json.dumps(speed.phase_seconds)
        pairs = speed.pairs_per_second * sum(speed.phase_seconds.values())
        results[f"host_data_pairs_per_second_{method}"] = round(pairs / max(speed.phase_seconds["data"], 1e-9), 1)
    results["host_pairs_per_second"] = results["host_pairs_per_second_mse"]
    results["host_setup"] = (
        f"optical distill with a tiny BertModel (hidden 16, 1 layer, 1 head, no dropout: little compute), el, {budget} pairs, "
        f"batch 256, max length 64, length grouping, mse and ot with ot.tol=0 (fixed iterations), {args.host_device}, "
        f"{torch.get_num_threads()} torch thread(s); pairs/s of the training loop (run.json throughput); "
        "host_pairs_per_second is the mse run's (ot adds a 256x64x64 Sinkhorn solve per step, which is compute); "
        "host_data_pairs_per_second_*: pairs over the seconds of the data phase alone (slicing token ids and the "
        "teacher cache), the feeding bound"
    )
    return results


# ------------------------------------------------------------------ CUDA
def e5_shaped(source: Path, target: Path, seed: int = 0) -> Path:
    """A model with ``source``'s config and tokenizer and random weights (what a GPU box can get: the
    real weights exceed its transfer limit). ``source`` needs config.json and the tokenizer files only."""
    import shutil

    from transformers import AutoConfig, AutoModel

    weights = shutil.ignore_patterns("*.safetensors", "*.bin", "*.onnx", "onnx", "openvino", "*.pt")
    shutil.copytree(source, target, ignore=weights, dirs_exist_ok=True)
    torch.manual_seed(seed)
    AutoModel.from_config(AutoConfig.from_pretrained(source)).save_pretrained(target)
    return target


def bench_cuda(args, work: Path) -> dict[str, float | str]:
    import dataclasses

    if not torch.cuda.is_available():
        raise SystemExit("--only cuda needs a CUDA device")
    model = e5_shaped(Path(str(resolve_model(args.model))), work / "e5-shaped")
    budget = 256 * args.cuda_batches

    def speed(name: str, method: str, batch_size: int, epochs: int, **changes):
        config = loop_config(work / f"cuda-{name}", method, model, budget, "cuda", precision="bf16")
        config = dataclasses.replace(config, batch_size=batch_size, epochs=epochs, **changes)
        return RunRecord.load(distill(config, progress=False).out_dir).throughput

    results: dict[str, float | str] = {}
    for batch_size in args.cuda_batch_sizes:
        tag = "" if batch_size == 256 else f"_b{batch_size}"
        # A discarded run first: CUDA start-up, lazily loaded kernels and the Sinkhorn graphs of this batch's
        # shapes would otherwise go to the first timed run.
        speed(f"warm-up{tag}", "ot", batch_size, 1)
        mse, ot = (speed(f"{m}{tag}", m, batch_size, args.cuda_epochs) for m in ("mse", "ot"))
        # ot at the default tolerance: a convergence check (a read from the device) every 5 Sinkhorn iterations.
        checked = speed(f"ot-checked{tag}", "ot", batch_size, args.cuda_epochs, loss_options={})
        results |= {
            f"distill_mse_pairs_per_second_cuda{tag}": round(mse.pairs_per_second, 1),
            f"distill_ot_pairs_per_second_cuda{tag}": round(ot.pairs_per_second, 1),
            f"distill_ot_checked_pairs_per_second_cuda{tag}": round(checked.pairs_per_second, 1),
            f"distill_ot_step_over_mse_step_cuda{tag}": round(mse.pairs_per_second / ot.pairs_per_second, 3),
            f"distill_phase_seconds_ot_cuda{tag}": json.dumps(ot.phase_seconds),
            f"distill_phase_seconds_mse_cuda{tag}": json.dumps(mse.phase_seconds),
        }
    sizes = ", ".join(str(size) for size in args.cuda_batch_sizes)
    results["distill_setup_cuda"] = (
        f"optical distill el, {budget} pairs x {args.cuda_epochs} epochs, batch {sizes} (keys of a batch other than "
        "256 end in _b<size>), max length 64, bf16, select_on none, no mid-run checkpoint, ot with ot.tol=0 (fixed "
        "iterations) and mse; ot_checked: ot at the default tolerance (a convergence check every 5 Sinkhorn "
        "iterations); a model with multilingual-e5-small's config and tokenizer and random weights (the real weights "
        "exceed the GPU box's transfer limit; speed only); one discarded warm-up run at each batch size; pairs/s of the "
        "training loop (run.json throughput, teacher cache excluded). mse runs the student twice a step (the "
        "foreign and the English sentence), ot once: the ot/mse step ratio is not the Sinkhorn's overhead"
    )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", choices=("peer", "fast", "host", "cuda"), action="append", help="run only these parts (cuda: never by default)"
    )
    parser.add_argument("--model", default="multilingual-e5-small", help="teacher = student initialisation")
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--host-batches", type=int, default=40, help="batches of 256 in the host-bound run")
    parser.add_argument("--cuda-batches", type=int, default=32, help="batches of 256 in each epoch of a CUDA run")
    parser.add_argument("--cuda-epochs", type=int, default=4, help="epochs of each CUDA run")
    parser.add_argument(
        "--cuda-batch-sizes", type=lambda text: [int(v) for v in text.split(",")], default=[256, 1024], help="e.g. 256,1024"
    )
    parser.add_argument(
        "--host-device", default="cpu", help="device of the tiny model in the host-bound run (cuda: the feeding bound of a GPU)"
    )
    parser.add_argument(
        "--key-suffix", default="", help="appended to every recorded key (e.g. _gpu_box: the host bound of another machine)"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the figures, record nothing")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    parts = args.only or ["peer", "fast", "host"]
    results: dict[str, float | str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-distill-") as tmp:
        work = Path(tmp)
        os.environ.setdefault("OPTICAL_CACHE_DIR", str(cold_cache(work / "cache")))
        benches = (("peer", bench_peer), ("fast", bench_fast_over_plain), ("host", bench_host), ("cuda", bench_cuda))
        for part, bench in benches:
            if part in parts:
                results.update(bench(args, work))
                print(json.dumps({k: v for k, v in results.items() if not k.endswith("_setup")}, indent=1), flush=True)
    results = {key + args.key_suffix: value for key, value in results.items()}
    if not args.dry_run:
        record(results, SCRIPT, device="cuda" if "cuda" in (*parts, args.host_device) else "cpu")
    return 0


if __name__ == "__main__":
    sys.exit(main())
