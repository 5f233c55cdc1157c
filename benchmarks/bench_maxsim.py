"""Late-interaction (MaxSim) scoring: the fast exact implementation against the old one, and the pool's candidate stage.

The inputs are what ``optical evaluate --scoring dense,maxsim`` scores on the Greek test split: the zero-shot
multilingual-e5-small content-token embeddings of the 978 el questions (``query``, 128 tokens) and of the
English XQuAD-R sentences (``passage``, 128 tokens), encoded at the evaluation's precision (``auto``: bf16 on a
CPU with AMX/AVX512-BF16). Encoding is not timed; the embeddings are cached (``--inputs-dir``) between runs.

Figures (the code under test is :mod:`optical.eval.maxsim`):

* ``maxsim_exact_speedup`` (goal >= 20): the old exact MaxSim (padded to the longest query and document, one
  4-D similarity tensor per chunk; a copy of it is below, :func:`old_maxsim_scores`) over the new
  :func:`~optical.eval.maxsim.maxsim_scores` at the evaluation's precision, the 978 questions x the 964 English
  sentences of the test split, process CPU seconds with one torch thread (steadier than wall time and than two
  threads on a shared machine; wall times are recorded beside). Also the fp32 speedup,
  the largest score difference of fp32 against the old implementation, and RR@10 of the bf16 and fp32 rankings.
* ``maxsim_over_pylate`` (goal >= 1.0): PyLate's ``colbert_scores`` time over ours on the same tensors, both
  exact, both at the evaluation's precision, process CPU seconds. PyLate takes padded tensors with masks, so its
  inputs are the normalised tokens padded to the longest query and document, scored in query chunks that keep its
  4-D similarity tensor under ``PYLATE_BLOCK_BYTES`` (what a PyLate user scoring this many pairs must do); its
  scores are checked against ours. PyLate 1.6 pins torch 2.11 (through fast-plaid and fastkmeans) and this
  project runs torch 2.13, so it is not a dependency: its scoring module is pure torch and runs here when
  installed without its dependencies beside the venv (``make bench-pylate`` does this in ``.bench-pylate/``,
  then runs ``--only pylate`` with it on ``PYTHONPATH``). Without it the script records why it was not measured.
* ``maxsim_pool_seconds``: :func:`~optical.eval.maxsim.late_interaction_search` over one language's LAReQA pool
  (978 el questions x 10,627 sentences of 11 languages), the candidate stage included (exact MaxSim of 200
  seeded queries over every sentence, the depth tuned on them, the rerank of every query), process CPU seconds;
  ``maxsim_pool_recall_at_10`` (goal >= 0.95): recall@10 of its ranking against exact MaxSim over every
  sentence, on all 978 queries (not only the 200 it was tuned on); ``maxsim_pool_exact_seconds``: exact MaxSim
  over every sentence, for comparison.

Usage (next to nothing else running)::

    .venv/bin/python benchmarks/bench_maxsim.py                # CPU, CLIR and pool; ~15 min the first time (encoding)
    .venv/bin/python benchmarks/bench_maxsim.py --only clir --device cuda   # on a GPU machine: keys get _cuda
    make bench-pylate                                          # PyLate's colbert_scores against ours
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import publish  # noqa: E402
from optical.data import resolve_data_dir  # noqa: E402
from optical.data.languages import XQUADR_LANGS  # noqa: E402
from optical.data.tasks import sentence_task  # noqa: E402
from optical.eval.maxsim import late_interaction_search, maxsim_scores, top_k_run  # noqa: E402
from optical.eval.metrics import score_run  # noqa: E402
from optical.eval.recall import query_recalls  # noqa: E402
from optical.models import resolve_model  # noqa: E402
from optical.models.encoder import Encoder  # noqa: E402
from optical.storage import atomic_path, cache_root  # noqa: E402
from optical.train.precision import autocast_dtype, resolve_precision  # noqa: E402

SCRIPT = "benchmarks/bench_maxsim.py"
PYLATE_NOTE = (
    "maxsim_over_pylate not measured: PyLate is not importable here (it pins torch 2.11, this project runs 2.13); "
    "`make bench-pylate` installs its scoring module without dependencies and measures it"
)
PYLATE_BLOCK_BYTES = 1 << 30
MODEL = "multilingual-e5-small"
LANG = "el"
MAX_LENGTH = 128


# ---------------------------------------------------------------- the old exact MaxSim (before issue 28), timed only
OLD_BLOCK_ELEMENTS = 1 << 25


def _old_pad(tokens: Sequence[torch.Tensor], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    longest = max(t.shape[0] for t in tokens)
    padded = torch.zeros(len(tokens), longest, tokens[0].shape[1], device=device)
    mask = torch.zeros(len(tokens), longest, dtype=torch.bool, device=device)
    for i, t in enumerate(tokens):
        padded[i, : t.shape[0]] = F.normalize(t.to(device=device, dtype=torch.float32), dim=-1)
        mask[i, : t.shape[0]] = True
    return padded, mask


def _old_block(q: torch.Tensor, q_mask: torch.Tensor, d: torch.Tensor, d_mask: torch.Tensor) -> torch.Tensor:
    sim = torch.einsum("qih,djh->qdij", q, d)
    sim = sim.masked_fill(~d_mask[None, :, None, :], float("-inf"))
    best = sim.max(dim=-1).values
    best = best.masked_fill(~q_mask[:, None, :], 0.0)
    return best.sum(dim=-1)


@torch.no_grad()
def old_maxsim_scores(
    query_tokens: Sequence[torch.Tensor], doc_tokens: Sequence[torch.Tensor], device: torch.device
) -> torch.Tensor:
    """The exact MaxSim of ``optical.eval.scoring`` before issue 28, unchanged but for the checks it made."""
    q_len = max(t.shape[0] for t in query_tokens)
    d_len = max(t.shape[0] for t in doc_tokens)
    pairs_per_block = max(1, OLD_BLOCK_ELEMENTS // (q_len * d_len))
    doc_chunk = min(len(doc_tokens), max(1, pairs_per_block // min(len(query_tokens), 64)))
    query_chunk = max(1, min(len(query_tokens), pairs_per_block // doc_chunk))
    query_starts = range(0, len(query_tokens), query_chunk)
    padded_queries = [_old_pad(query_tokens[start : start + query_chunk], device) for start in query_starts]
    scores = torch.empty(len(query_tokens), len(doc_tokens))
    for d_start in range(0, len(doc_tokens), doc_chunk):
        d, d_mask = _old_pad(doc_tokens[d_start : d_start + doc_chunk], device)
        for q_start, (q, q_mask) in zip(query_starts, padded_queries):
            block = _old_block(q, q_mask, d, d_mask)
            scores[q_start : q_start + query_chunk, d_start : d_start + doc_chunk] = block.cpu()
    return scores


# ---------------------------------------------------------------- inputs
def inputs(inputs_dir: Path, precision: str, with_pool: bool) -> dict:
    """The el test questions' and the sentences' token and pooled embeddings: English sentences (CLIR) or the
    11-language pool, encoded once and then read from ``inputs_dir`` (the CLIR set is cut from a cached pool)."""
    clir_path, pool_path = (inputs_dir / f"maxsim-{LANG}-{MODEL}-{precision}-{name}.pt" for name in ("clir", "pool"))
    path = pool_path if with_pool else clir_path
    if path.exists():
        return torch.load(path)
    held = english_only(torch.load(pool_path)) if pool_path.exists() and not with_pool else encode(precision, with_pool)
    inputs_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(held, tmp)
    return held


def encode(precision: str, with_pool: bool) -> dict:
    task = sentence_task(resolve_data_dir(None), LANG, list(XQUADR_LANGS) if with_pool else ["en"], "test")
    encoder = Encoder.load(resolve_model(MODEL)).eval()
    encoder.inference_autocast = autocast_dtype(precision)
    qids, dids = list(task.queries), list(task.candidates)
    query_texts, doc_texts = [task.queries[q] for q in qids], [task.candidates[d] for d in dids]
    return {
        "qids": qids,
        "dids": dids,
        "qrels": task.qrels,
        "query_tokens": [torch.from_numpy(t) for t in encoder.encode_tokens(query_texts, "query", max_length=MAX_LENGTH)],
        "doc_tokens": [torch.from_numpy(t) for t in encoder.encode_tokens(doc_texts, "passage", max_length=MAX_LENGTH)],
        "query_emb": torch.from_numpy(encoder.encode(query_texts, "query", max_length=MAX_LENGTH)),
        "doc_emb": torch.from_numpy(encoder.encode(doc_texts, "passage", max_length=MAX_LENGTH)),
    }


def english_only(pool: dict) -> dict:
    """The CLIR task's inputs cut from the pool's: its English sentences (ids ``en:...``) and their qrels."""
    keep = [i for i, doc in enumerate(pool["dids"]) if doc.startswith("en:")]
    english = {pool["dids"][i] for i in keep}
    return {
        **pool,
        "dids": [pool["dids"][i] for i in keep],
        "qrels": {q: {d: r for d, r in rels.items() if d in english} for q, rels in pool["qrels"].items()},
        "doc_tokens": [pool["doc_tokens"][i] for i in keep],
        "doc_emb": pool["doc_emb"][keep],
    }


def clock(fn: Callable[[], object], device: str) -> tuple[float, float, object]:
    """(process CPU seconds, wall seconds, result) of one call; on CUDA the CPU seconds are wall seconds."""
    if device == "cuda":
        torch.cuda.synchronize()
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn()
    if device == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - wall
    return (wall if device == "cuda" else time.process_time() - cpu), wall, result


def best_of(fn: Callable[[], object], device: str, repeat: int) -> tuple[float, float, object]:
    runs = [clock(fn, device) for _ in range(repeat)]
    return min(r[0] for r in runs), min(r[1] for r in runs), runs[-1][2]


def rr_at_10(scores: torch.Tensor, held: dict) -> float:
    run = top_k_run(scores, held["qids"], held["dids"], k=10)
    return score_run(held["qrels"], run, ("RR@10",)).aggregates["RR@10"]


def clir_figures(held: dict, device: str, dtype: torch.dtype, repeat: int) -> dict[str, float | str]:
    queries, docs = held["query_tokens"], held["doc_tokens"]
    torch_device = torch.device(device)
    maxsim_scores(queries[:8], docs[:8], torch_device, dtype)  # warm-up: first-call allocations, oneDNN kernels
    old_cpu, old_wall, old = clock(lambda: old_maxsim_scores(queries, docs, torch_device), device)
    new_cpu, new_wall, new = best_of(lambda: maxsim_scores(queries, docs, torch_device, dtype), device, repeat)
    fp32_cpu, fp32_wall, fp32 = best_of(lambda: maxsim_scores(queries, docs, torch_device), device, repeat)
    print(
        f"old {old_cpu:.2f} s CPU ({old_wall:.2f} s wall); new {new_cpu:.3f} s ({new_wall:.3f}); fp32 {fp32_cpu:.3f} s",
        flush=True,
    )
    sfx = "" if device == "cpu" else f"_{device}"
    return {
        f"maxsim_exact_speedup{sfx}": round(old_cpu / new_cpu, 2),
        f"maxsim_exact_speedup_fp32{sfx}": round(old_cpu / fp32_cpu, 2),
        f"maxsim_exact_speedup_wall{sfx}": round(old_wall / new_wall, 2),
        f"maxsim_exact_old_seconds{sfx}": round(old_cpu, 3),
        f"maxsim_exact_new_seconds{sfx}": round(new_cpu, 4),
        f"maxsim_exact_fp32_seconds{sfx}": round(fp32_cpu, 4),
        f"maxsim_exact_fp32_max_abs_diff{sfx}": float(f"{(fp32 - old).abs().max().item():.3g}"),
        f"maxsim_clir_rr10_fp32{sfx}": round(rr_at_10(fp32, held), 4),
        f"maxsim_clir_rr10_new{sfx}": round(rr_at_10(new, held), 4),
        f"maxsim_exact_setup{sfx}": (
            f"{len(queries)} {LANG} test questions x {len(docs)} English sentences, zero-shot {MODEL} content tokens "
            f"({sum(len(q) for q in queries)} x {sum(len(d) for d in docs)} tokens), {device}, "
            f"{torch.get_num_threads()} torch threads; new = {str(dtype).removeprefix('torch.')} products (the evaluation's "
            f"precision here); old timed once, new best of {repeat}; process CPU seconds"
        ),
    }


def _padded(tokens: Sequence[torch.Tensor], dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised tokens padded to the longest, and the mask: the inputs PyLate's ``colbert_scores`` takes."""
    padded, mask = _old_pad(tokens, torch.device("cpu"))
    return padded.to(dtype), mask.to(dtype)


def pylate_figures(held: dict, dtype: torch.dtype, repeat: int) -> dict[str, float | str]:
    """PyLate's exact ``colbert_scores`` against :func:`maxsim_scores` on the same tokens (CPU only)."""
    try:
        from pylate.scores import colbert_scores
    except ImportError:
        return {"maxsim_pylate_setup": PYLATE_NOTE}
    import pylate

    queries, docs = held["query_tokens"], held["doc_tokens"]
    (q, q_mask), (d, d_mask) = _padded(queries, dtype), _padded(docs, dtype)
    chunk = max(1, PYLATE_BLOCK_BYTES // (len(docs) * q.shape[1] * d.shape[1] * q.element_size()))

    def pylate_scores() -> torch.Tensor:
        return torch.cat(
            [
                colbert_scores(q[s : s + chunk], d, queries_mask=q_mask[s : s + chunk], documents_mask=d_mask)
                for s in range(0, len(queries), chunk)
            ]
        )

    cpu = torch.device("cpu")
    maxsim_scores(queries[:8], docs[:8], cpu, dtype)  # warm-up, as for the speedup
    ours_cpu, ours_wall, ours = best_of(lambda: maxsim_scores(queries, docs, cpu, dtype), "cpu", repeat)
    theirs_cpu, theirs_wall, theirs = best_of(pylate_scores, "cpu", repeat)
    print(f"pylate {theirs_cpu:.2f} s CPU ({theirs_wall:.2f} s wall); ours {ours_cpu:.3f} s", flush=True)
    return {
        "maxsim_over_pylate": round(theirs_cpu / ours_cpu, 2),
        "maxsim_over_pylate_wall": round(theirs_wall / ours_wall, 2),
        "maxsim_pylate_seconds": round(theirs_cpu, 3),
        "maxsim_pylate_max_abs_diff": float(f"{(theirs.float() - ours.float()).abs().max().item():.3g}"),
        "maxsim_pylate_rr10": round(rr_at_10(theirs.float(), held), 4),
        "maxsim_pylate_setup": (
            f"PyLate {pylate.__version__} colbert_scores (torch backend, installed without dependencies) on the same "
            f"{len(queries)} x {len(docs)} normalised token sets, padded to {q.shape[1]} and {d.shape[1]} tokens with "
            f"masks, {chunk} queries per call; ours: maxsim_scores on the unpadded tokens; both "
            f"{str(dtype).removeprefix('torch.')}, {torch.get_num_threads()} torch threads, process CPU seconds, best of {repeat}"
        ),
    }


def pool_figures(held: dict, device: str, dtype: torch.dtype, repeat: int) -> dict[str, float | str]:
    queries, docs = held["query_tokens"], held["doc_tokens"]
    args = (queries, docs, held["query_emb"].numpy(), held["doc_emb"].numpy(), held["qids"], held["dids"])
    staged_cpu, staged_wall, (run, check) = best_of(
        lambda: late_interaction_search(*args, device=device, dtype=dtype), device, repeat
    )
    exact_cpu, exact_wall, exact = clock(lambda: maxsim_scores(queries, docs, torch.device(device), dtype), device)
    position = {doc: i for i, doc in enumerate(held["dids"])}
    found = np.array([[position[d] for d in sorted(run[q], key=run[q].get, reverse=True)[:10]] for q in held["qids"]])
    recall = float(query_recalls(exact.topk(10, dim=1).indices.numpy(), found).mean())
    print(check.describe(), flush=True)
    sfx = "" if device == "cpu" else f"_{device}"
    return {
        f"maxsim_pool_seconds{sfx}": round(staged_cpu, 2),
        f"maxsim_pool_wall_seconds{sfx}": round(staged_wall, 2),
        f"maxsim_pool_recall_at_10{sfx}": round(recall, 4),
        f"maxsim_pool_depth{sfx}": check.depth,
        f"maxsim_pool_sample_recall_at_10{sfx}": round(check.recall_at_10, 4),
        f"maxsim_pool_exact_seconds{sfx}": round(exact_cpu, 2),
        f"maxsim_pool_setup{sfx}": (
            f"{len(queries)} {LANG} test questions x {len(docs)} LAReQA pool sentences (11 languages), zero-shot {MODEL} "
            f"tokens; dense candidates, depth tuned on {check.sample} seeded queries to a 95% lower bound of recall@10 >= "
            f"{check.recall_target} (got depth {check.depth}); recall against exact MaxSim on all {len(queries)} queries; "
            f"{str(dtype).removeprefix('torch.')} products, {device}, {torch.get_num_threads()} torch threads, "
            f"process CPU seconds, best of {repeat}"
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", choices=("clir", "pool", "pylate"), help="one part only (default: clir and pool, and pylate where importable)"
    )
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of the new implementation (the best is kept)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (default 1: steadiest on a shared machine)"
    )
    parser.add_argument("--inputs-dir", type=Path, default=cache_root() / "bench", help="where the token embeddings are cached")
    parser.add_argument("--dry-run", action="store_true", help="print the figures, record nothing")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    precision = resolve_precision(args.device, "auto")
    dtype = autocast_dtype(precision) or torch.float32
    results: dict[str, float | str] = {}
    if args.only in (None, "clir"):
        results |= clir_figures(inputs(args.inputs_dir, precision, with_pool=False), args.device, dtype, args.repeat)
    if args.only in (None, "pylate") and args.device == "cpu":
        results |= pylate_figures(inputs(args.inputs_dir, precision, with_pool=False), dtype, args.repeat)
    if args.only in (None, "pool"):
        results |= pool_figures(inputs(args.inputs_dir, precision, with_pool=True), args.device, dtype, args.repeat)
    publish(results, SCRIPT, args.dry_run, device=args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
