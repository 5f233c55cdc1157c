"""Encoding throughput of ``Encoder.encode`` against a bare HF forward and sentence-transformers.

Texts: the 1180 English XQuAD-R candidate sentences (what evaluation encodes
most), as passages ("passage: " prefix), batch 64, max length 128 tokens.
Model: multilingual-e5-small on CPU (``--device cuda`` for a GPU).

Three encoders of the same texts, interleaved (ours, bare, st, ours, ...) so
load from other processes hits them alike; each ratio is the median over
rounds of the per-round ratio of throughputs:

* ``ours``: :meth:`optical.models.encoder.Encoder.encode` (tokenize, sort by
  length, forward, masked mean pooling, L2 normalisation, back to input order);
* ``bare``: only ``AutoModel`` forwards over the very batches ``ours`` builds
  (tokenized, sorted and padded beforehand, outside the timer) under
  ``torch.inference_mode`` -- the floor any pipeline pays;
* ``st``: ``sentence_transformers.SentenceTransformer.encode`` of the same
  model directory with the same prompt, batch size and normalisation.

On CPU the clock is this thread's CPU time with torch single-threaded (steady
on a shared machine); wall time is recorded beside it. On CUDA the clock is
wall time after a synchronisation.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import record  # noqa: E402
from optical.data import resolve_data_dir  # noqa: E402
from optical.data.xquad import read_xquadr  # noqa: E402
from optical.models import resolve_model  # noqa: E402
from optical.models.encoder import Encoder  # noqa: E402

MODEL = "multilingual-e5-small"
BATCH, MAX_LENGTH = 64, 128


def timed(fn: Callable[[], object], device: str) -> tuple[float, float]:
    """(thread CPU seconds, wall seconds) of one call."""
    if device == "cuda":
        torch.cuda.synchronize()
    cpu, wall = time.thread_time(), time.perf_counter()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.thread_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (thread CPU time needs 1)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from sentence_transformers import SentenceTransformer

    data_dir = resolve_data_dir(args.data_dir, require=())
    texts = [sentence for paragraph in read_xquadr(data_dir, "en").paragraphs for sentence in paragraph.sentences]
    model_dir = str(resolve_model(MODEL))
    ours = Encoder.load(model_dir, device=args.device, max_length=MAX_LENGTH)
    prompt = ours.prefix("passage")
    batches = [(ids.to(args.device), mask.to(args.device)) for _, ids, mask in ours._sorted_batches(texts, "passage", BATCH)]
    st = SentenceTransformer(model_dir, device=args.device)
    st.max_seq_length = MAX_LENGTH

    @torch.inference_mode()
    def bare() -> None:
        for ids, mask in batches:
            ours.model(input_ids=ids, attention_mask=mask)

    sides: dict[str, Callable[[], object]] = {
        "ours": lambda: ours.encode(texts, kind="passage", batch_size=BATCH),
        "bare": bare,
        "st": lambda: st.encode(texts, prompt=prompt, batch_size=BATCH, normalize_embeddings=True),
    }
    # Same model, same prefix, same pooling: the embeddings must agree before timing means anything.
    agreement = float(np.abs(sides["ours"]() - sides["st"]()).max())
    if agreement > 1e-4:
        raise SystemExit(f"optical and sentence-transformers embeddings differ by {agreement:.2e}")
    sides["bare"]()

    cpu: dict[str, list[float]] = {name: [] for name in sides}
    wall: dict[str, list[float]] = {name: [] for name in sides}
    for round_index in range(args.rounds):
        for name, fn in sides.items():
            c, w = timed(fn, args.device)
            cpu[name].append(c)
            wall[name].append(w)
        print(
            f"round {round_index}: " + ", ".join(f"{n} {cpu[n][-1]:.2f}s cpu / {wall[n][-1]:.2f}s wall" for n in sides),
            flush=True,
        )

    # Throughput ratio ours/other = time(other) / time(ours), per round.
    clock = wall if args.device == "cuda" else cpu

    def speed_ratio(other: str, samples: dict[str, list[float]]) -> float:
        return round(statistics.median(o / s for s, o in zip(samples["ours"], samples[other])), 4)

    suffix = "" if args.device == "cpu" else f"_{args.device}"
    results: dict[str, float | int | str] = {
        f"encode_over_bare_forward{suffix}": speed_ratio("bare", clock),
        f"encode_over_sentence_transformers{suffix}": speed_ratio("st", clock),
        f"encode_over_bare_forward_wall{suffix}": speed_ratio("bare", wall),
        f"encode_over_sentence_transformers_wall{suffix}": speed_ratio("st", wall),
        f"encode_texts_per_second{suffix}": round(len(texts) / statistics.median(wall["ours"]), 1),
        f"encode_max_abs_diff_vs_sentence_transformers{suffix}": agreement,
        f"encode_setup{suffix}": (
            f"{MODEL}, {len(texts)} English XQuAD-R sentences as passages, batch {BATCH}, max length {MAX_LENGTH}, "
            f"{args.device}, {torch.get_num_threads()} torch thread(s), {args.rounds} interleaved rounds, "
            + ("wall time" if args.device == "cuda" else "thread CPU time")
        ),
    }
    for key, value in results.items():
        print(f"{key}: {value}")
    record(results, source="benchmarks/bench_encode.py", device=args.device)


if __name__ == "__main__":
    main()
