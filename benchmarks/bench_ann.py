"""Big collections: the approximate index against exact search, and the memory of the streaming encode/index path.

Figures (the code under test is :mod:`optical.eval.collection`, as ``optical evaluate --collection`` runs it):

* ``ann_recall_at_10_vs_exact`` (goal >= 0.95): recall@10 of the index chosen for the largest size (IVF with
  4*sqrt(N) lists, nprobe widened by ``tune_breadth`` until the 95% lower confidence bound of recall@10 on 200
  tuning queries reaches 0.95) against
  exact search (FAISS ``IndexFlatIP``) on other, held-out queries.
* ``ann_over_exact_query_speed`` (goal >= 10): wall time of exact search over the wall time of the approximate
  search, the same held-out queries at the same depth, timed one after the other in the same process.
* ``ann_peak_rss_gib_100k`` / ``ann_peak_rss_gib_1m``: peak resident memory (``ru_maxrss``) of a fresh process
  that encodes the corpus block by block to disk (``encode_to_disk``) and builds the index from the file
  (``build_index``); ``ann_encode_peak_rss_gib_*`` is the same process's peak before the index is built.

The vectors are synthetic 384-d unit vectors with cluster structure like real embeddings: a two-level Gaussian
mixture on the unit sphere (100 topic directions, 10 components around each, points drawn around a component
centre with isotropic noise, then normalised), produced by a stand-in encoder so that the encode path is the
real one without a model's CPU cost. Queries come from the same mixture with other seeds.

Usage (next to nothing else running; it writes about 1.6 GB of vectors to a temporary directory)::

    .venv/bin/python benchmarks/bench_ann.py                              # 1M and 100k vectors, ~10 min on 2 cores
    .venv/bin/python benchmarks/bench_ann.py --sizes 50000,10000 --dry-run  # a quick check: records nothing
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import publish  # noqa: E402

SCRIPT = "benchmarks/bench_ann.py"
DIM = 384
TOPICS, COMPONENTS_PER_TOPIC = 100, 10
# Noise norm around a topic (for the centres) and around a centre (for the points). At 2.0 the components overlap:
# a query's 10th neighbour has cosine ~0.27 and its top 10 spans components, as in a corpus whose topics blur into
# one another; at 1.0 the neighbours all sit in one component and 4 IVF lists out of 1265 already give recall 0.99.
TOPIC_SPREAD, POINT_SPREAD = 1.0, 2.0
DEPTH = 100  # documents retrieved per query, as optical evaluate --collection
TUNE_QUERIES, TEST_QUERIES = 200, 1000
RECALL_TARGET = 0.95
SIZE_NAMES = {100_000: "100k", 1_000_000: "1m"}


class Mixture:
    """The synthetic embedding distribution: fixed centres, points drawn by seed."""

    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        topics = _unit(rng.standard_normal((TOPICS, DIM)))
        around = np.repeat(topics, COMPONENTS_PER_TOPIC, axis=0)
        self.centres = _unit(around + TOPIC_SPREAD * _unit(rng.standard_normal(around.shape)))
        self.weights = rng.dirichlet(np.ones(len(self.centres)))  # uneven component sizes, as topics in a corpus

    def draw(self, count: int, seed: int | Sequence[int]) -> np.ndarray:
        rng = np.random.default_rng(seed)
        component = rng.choice(len(self.centres), size=count, p=self.weights)
        noise = rng.standard_normal((count, DIM), dtype=np.float32) * np.float32(POINT_SPREAD / np.sqrt(DIM))
        return _unit(self.centres[component].astype(np.float32) + noise)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


class RowIds(Sequence[str]):
    """Document "texts" ``"0" .. "N-1"`` made on demand, so that the corpus itself takes no memory here."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, item):
        if isinstance(item, slice):
            return [str(i) for i in range(*item.indices(self.count))]
        return str(range(self.count)[item])


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def worker(size: int, work: Path) -> dict[str, object]:
    """Encode ``size`` vectors to disk and build their index in this (fresh) process, then time and score the
    index against exact search (after the peak memory of the encode/index path is read)."""
    import faiss

    from optical.eval.collection import IndexKind, IndexPlan, build_index, encode_to_disk, tune_breadth
    from optical.eval.recall import recall_at_k

    imported = peak_rss_gib()
    mixture = Mixture()
    tick = time.perf_counter()
    # Each block's vectors depend on its first row only, so a resumed encoding would give the same file.
    vectors = encode_to_disk(lambda ids: mixture.draw(len(ids), (1, int(ids[0]))), RowIds(size), DIM, work / f"{size}.npy")
    encode_seconds = time.perf_counter() - tick
    encode_rss = peak_rss_gib()
    plan = IndexPlan.choose(size, IndexKind.IVF)  # what auto picks from 100k on; forced so a small --sizes check runs it too
    tick = time.perf_counter()
    index = build_index(plan, vectors)
    out: dict[str, object] = {
        "size": size,
        "plan": plan.describe(),
        "imported_rss_gib": imported,
        "encode_rss_gib": encode_rss,
        "peak_rss_gib": peak_rss_gib(),
        "encode_seconds": encode_seconds,
        "build_seconds": time.perf_counter() - tick,
        "index_gib": size * (DIM * 4 + 8) / 2**30,  # IVF-Flat / Flat: every vector and its id
    }
    tick = time.perf_counter()
    check = tune_breadth(index, plan, mixture.draw(TUNE_QUERIES, 2), vectors, RECALL_TARGET, DEPTH, TUNE_QUERIES)
    out["tune_seconds"] = time.perf_counter() - tick
    queries = mixture.draw(TEST_QUERIES, 3)
    exact = faiss.IndexFlatIP(DIM)
    for block in vectors.blocks():
        exact.add(block)
    exact_seconds, ann_seconds = [], []
    for _ in range(3):  # interleaved rounds: a slow spell of the machine hits both sides
        tick = time.perf_counter()
        _, truth = exact.search(queries, DEPTH)
        exact_seconds.append(time.perf_counter() - tick)
        tick = time.perf_counter()
        _, found = index.search(queries, DEPTH)
        ann_seconds.append(time.perf_counter() - tick)
    tenth = exact.search(queries, 10)[0][:, 9]
    out.update(
        index=check.index,
        tuning=check.tried,
        tuning_recall=check.recall_at_10,
        tuning_recall_low=check.recall_at_10_low,
        recall_at_10=recall_at_k(truth[:, :10], found[:, :10]),
        exact_seconds=statistics.median(exact_seconds),
        ann_seconds=statistics.median(ann_seconds),
        threads=faiss.omp_get_max_threads(),
        tenth_neighbour_cosine=float(tenth.mean()),
    )
    return out


def run_worker(size: int, work: Path) -> dict[str, object]:
    command = [sys.executable, __file__, "--worker", str(size), "--work", str(work)]
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)  # stderr: shown as it comes
    result = json.loads(done.stdout.strip().splitlines()[-1])
    (work / f"{size}.npy").unlink()  # 1.5 GB at 1M: gone before the next size
    print(json.dumps(result), flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,100000", help="comma-separated corpus sizes (the goals: the largest)")
    parser.add_argument("--dry-run", action="store_true", help="print the figures, record nothing")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, Path(args.work))))
        return 0
    sizes = sorted({int(s) for s in args.sizes.split(",")}, reverse=True)
    with tempfile.TemporaryDirectory(prefix="bench-ann-") as tmp:
        measured = {size: run_worker(size, Path(tmp)) for size in sizes}
    results: dict[str, float | int | str] = {}
    for size, found in measured.items():
        # The goals' keys carry no size: the largest collection's; the others' carry theirs.
        suffix = "" if size == sizes[0] else f"_{SIZE_NAMES.get(size, size)}"
        results[f"ann_recall_at_10_vs_exact{suffix}"] = round(found["recall_at_10"], 4)
        results[f"ann_over_exact_query_speed{suffix}"] = round(found["exact_seconds"] / found["ann_seconds"], 2)
    for size, found in measured.items():
        name = SIZE_NAMES.get(size, str(size))
        results[f"ann_peak_rss_gib_{name}"] = round(found["peak_rss_gib"], 3)
        results[f"ann_encode_peak_rss_gib_{name}"] = round(found["encode_rss_gib"], 3)
    sizes_measured = "; ".join(
        f"{size}: {m['index']} (tuning queries: recall@10 {m['tuning_recall']:.3f}, lower bound "
        f"{m['tuning_recall_low']:.3f}; mean cosine of the "
        f"exact 10th neighbour {m['tenth_neighbour_cosine']:.3f}), build "
        f"{m['build_seconds']:.0f} s, exact {m['exact_seconds']:.2f} s vs {m['ann_seconds']:.3f} s, imports "
        f"{m['imported_rss_gib']:.2f} GiB, encode to disk {m['encode_seconds']:.0f} s, index vectors+ids "
        f"{m['index_gib']:.2f} GiB"
        for size, m in measured.items()
    )
    results["ann_setup"] = (
        f"synthetic {DIM}-d unit vectors with cluster structure (two-level Gaussian mixture on the unit sphere: "
        f"{TOPICS} topics x {COMPONENTS_PER_TOPIC} components, Dirichlet weights, isotropic noise, normalised), "
        "encoded block by block to disk and indexed as optical evaluate --collection does (IVF, nprobe widened "
        f"until the 95% lower bound of recall@10 on {TUNE_QUERIES} tuning queries reached {RECALL_TARGET}); "
        f"recall and speed on {TEST_QUERIES} held-out queries at depth {DEPTH} against IndexFlatIP over the same "
        f"vectors (median of 3 interleaved rounds, {measured[sizes[0]]['threads']} FAISS threads); peak RSS = "
        "ru_maxrss of a fresh process per size (imports, encode to disk, index build; the encode_ figure before "
        f"the build). {sizes_measured}"
    )
    publish(results, SCRIPT, args.dry_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
