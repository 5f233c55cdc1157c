"""Evaluate a student on the user's own collection (BEIR or TREC layout, :mod:`optical.data.beir`).

As in the built-in tasks, the student encodes the queries (in ``query_lang``) and
the frozen teacher encodes the English documents.

The corpus is encoded a block of documents at a time into a ``.npy`` file in the
user cache (:func:`encode_to_disk`), keyed by the teacher's identity, the document
length and the corpus texts: memory holds one block, whatever the size of the
collection; the file is renamed into place only when complete, and a killed
encoding resumes at the first block not yet on disk. The index is built from that
file block by block (:func:`build_index`).

Which index (:class:`IndexPlan`): exact search (FAISS ``IndexFlatIP``, the same
search as the built-in tasks) below ``exact_below`` documents (default 100,000);
above it an inverted-file index (IVF, Jégou et al., TPAMI 2011; FAISS
``IndexIVFFlat``, inner product) with ``4 * sqrt(N)`` lists trained on a seeded
sample of the corpus. ``index="hnsw"`` (Malkov & Yashunin, TPAMI 2020) or
``index="exact"`` forces a kind. For an approximate index, recall@10 against exact
search (computed block by block from the file) is measured on a seeded sample of
queries while its search breadth (IVF ``nprobe``, HNSW ``efSearch``) is widened
until it reaches ``recall_target``; the recall is printed and recorded in the run
(``config.collection.ann``). ``scoring=["dense", "maxsim"]`` adds MaxSim (ColBERT,
:mod:`optical.eval.maxsim`): exact over every document below ``maxsim_exact_below``
documents (default 5,000), above it a rerank of each query's dense candidates whose
recall@10 against exact MaxSim over every document is measured on the same seeded
sample of queries, printed and recorded (``config.collection.maxsim``).

The run dir is the same format as :func:`optical.eval.evaluate.evaluate` writes
(per-query values, TREC run, qrels), with task keys ``<task_name>.<query_lang>``
(``collection.el``; ``collection_maxsim.el``), so ``optical compare`` reads it
unchanged. The split fingerprint is the collection's, so runs are only compared
on the same collection.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import math
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path

import faiss
import numpy as np
import torch
from faiss.contrib.exhaustive_search import knn_ground_truth
from tqdm.auto import tqdm

from optical.data.beir import Collection, read_collection
from optical.data.languages import canonical_lang
from optical.errors import OpticalError
from optical.eval.evaluate import (
    _checked_teacher,
    _Clock,
    _finished_evaluation,
    _load_encoders,
    _save_run,
    _student_path,
    precision_key,
    record_in_model_card,
    sole_writer,
)
from optical.eval.maxsim import (
    MAXSIM_EXACT_BELOW,
    CandidateCheck,
    exact_top_k_streamed,
    maxsim_rerank,
    maxsim_search,
    sample_rows,
)
from optical.eval.metrics import DEFAULT_MEASURES, Run, score_run
from optical.eval.recall import RECALL_K, query_recalls, recall_lower_bound
from optical.eval.results import EvalRun, TaskResult, check_task_key
from optical.eval.tasks import MAXSIM_SUFFIX
from optical.models.encoder import Encoder
from optical.models.registry import ModelKind
from optical.storage import atomic_write_json, cache_root
from optical.train.config import PRECISIONS, MixedPrecision, check_model_names
from optical.train.precision import autocast_dtype, check_device, check_precision, resolve_precision
from optical.train.teacher_cache import teacher_identity

SCORINGS = ("dense", "maxsim")
#: Collections with at least this many documents get an approximate index. Below it exact search is cheap (1000
#: queries over 100k 384-d documents: about 3 s on 2 cores) and building and tuning an index would cost more.
EXACT_BELOW = 100_000
#: IVF lists per sqrt(documents). FAISS's guideline is 4 to 16 * sqrt(N); the low end keeps k-means affordable on a
#: CPU (its cost is training points * lists, both proportional to the lists, so the high end costs 16 times as much):
#: training and adding 1M 384-d vectors take under 3 minutes on 2 cores (benchmarks/bench_ann.py).
IVF_LISTS_PER_SQRT = 4
#: Training points per IVF list: FAISS's k-means warns below 39 points per centroid.
IVF_TRAIN_PER_LIST = 40
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
#: The widest HNSW efSearch tried while tuning for the recall target.
HNSW_MAX_EF_SEARCH = 4096
#: Documents encoded (and index rows added) per block: the unit of memory, of progress on disk and of resumption.
BLOCK_ROWS = 4096


class IndexKind(StrEnum):
    """The index a collection is searched with; ``auto`` picks by collection size (:meth:`IndexPlan.choose`)."""

    AUTO = "auto"
    EXACT = "exact"
    IVF = "ivf"
    HNSW = "hnsw"


@dataclass(frozen=True)
class IndexPlan:
    """The index of one collection: its kind and, for IVF, its lists and training sample."""

    kind: IndexKind  # exact, ivf or hnsw: never auto
    documents: int
    lists: int = 0  # IVF nlist
    train_size: int = 0  # IVF: corpus vectors k-means is trained on

    @classmethod
    def choose(cls, documents: int, wanted: IndexKind = IndexKind.AUTO, exact_below: int = EXACT_BELOW) -> IndexPlan:
        """Exact below ``exact_below`` documents, IVF from there on; ``wanted`` other than auto forces a kind."""
        kind = wanted
        if kind is IndexKind.AUTO:
            kind = IndexKind.EXACT if documents < exact_below else IndexKind.IVF
        if kind is not IndexKind.IVF:
            return cls(kind, documents)
        # At least IVF_TRAIN_PER_LIST training points per list, else k-means fits noise: only a small collection
        # forced to IVF (under ~26k documents) gets fewer than 4 * sqrt(N) lists.
        lists = max(1, min(round(IVF_LISTS_PER_SQRT * math.sqrt(documents)), documents // IVF_TRAIN_PER_LIST))
        return cls(kind, documents, lists=lists, train_size=min(documents, IVF_TRAIN_PER_LIST * lists))

    @property
    def approximate(self) -> bool:
        return self.kind is not IndexKind.EXACT

    @property
    def factory(self) -> str:
        """The FAISS ``index_factory`` string."""
        return {IndexKind.EXACT: "Flat", IndexKind.IVF: f"IVF{self.lists},Flat", IndexKind.HNSW: f"HNSW{HNSW_M},Flat"}[self.kind]

    @property
    def breadth_name(self) -> str:
        """The search-time parameter that trades speed for recall (FAISS ``ParameterSpace`` name)."""
        return {IndexKind.IVF: "nprobe", IndexKind.HNSW: "efSearch"}[self.kind]

    def breadths(self, k: int) -> list[int]:
        """The breadths tried, narrowest first; the last is the widest tried (IVF: every list, an exhaustive search)."""
        if self.kind is IndexKind.IVF:
            first, widest = 1, self.lists
        else:  # FAISS's HNSW searches with max(efSearch, k): narrower values are the same search
            first, widest = k, max(k, HNSW_MAX_EF_SEARCH)
        values = []
        while first < widest:
            values.append(first)
            first *= 2
        return [*values, widest]

    def describe(self, breadth: int | None = None) -> str:
        if self.kind is IndexKind.EXACT:
            return "exact (IndexFlatIP)"
        shape = f"nlist={self.lists}" if self.kind is IndexKind.IVF else f"M={HNSW_M}"
        searched = f", {self.breadth_name}={breadth}" if breadth is not None else ""
        return f"{self.kind.value.upper()} ({shape}{searched})"


@dataclass
class CollectionConfig:
    """What to evaluate on which collection."""

    collection: str  # a BEIR or TREC directory
    query_lang: str
    student: str  # a `optical distill` output dir, or "zero-shot"
    out_dir: str
    teacher: str = "multilingual-e5-small"
    split: str = "test"  # BEIR: qrels/<split>.tsv
    scoring: list[str] = field(default_factory=lambda: ["dense"])
    strict: bool = False  # refuse qrels naming unknown ids (default: drop and count them)
    task_name: str = "collection"
    system: str | None = None
    depth: int = 100  # documents retrieved per query (and MaxSim candidates)
    index: IndexKind = IndexKind.AUTO
    exact_below: int = EXACT_BELOW
    maxsim_exact_below: int = MAXSIM_EXACT_BELOW  # exact MaxSim over every document below it, else a dense-candidate rerank
    recall_target: float = 0.95  # recall@10 against exact search the approximate index is tuned to reach
    recall_sample: int = 200  # queries on which the approximate index's recall@10 is measured
    batch_size: int = 64
    query_max_length: int = 128
    passage_max_length: int = 512
    device: str = "auto"
    mixed_precision: MixedPrecision = "auto"  # autocast of every forward pass, as in EvalConfig

    def validate(self) -> None:
        check_model_names((("--teacher", self.teacher, ModelKind.ENCODER),))
        self.query_lang = canonical_lang(self.query_lang)
        if not self.task_name:
            raise OpticalError("--task-name is empty; name the task (letters, digits, _ or -), or leave it out for 'collection'")
        check_task_key(f"{self.task_name}.{self.query_lang}")
        for scoring in self.scoring:
            if scoring not in SCORINGS:
                raise OpticalError(f"unknown scoring {scoring!r}; choose from {', '.join(SCORINGS)}")
        if "dense" not in self.scoring:
            raise OpticalError("collection scoring needs dense (MaxSim reranks the dense candidates): use dense or dense,maxsim")
        try:
            self.index = IndexKind(self.index)
        except ValueError:
            raise OpticalError(f"unknown index {self.index!r}; choose from {', '.join(IndexKind)}") from None
        for name in (
            "depth",
            "exact_below",
            "maxsim_exact_below",
            "recall_sample",
            "batch_size",
            "passage_max_length",
            "query_max_length",
        ):
            if getattr(self, name) < 1:
                raise OpticalError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 < self.recall_target <= 1.0:
            raise OpticalError(f"recall target must be in (0, 1], got {self.recall_target}")
        if self.mixed_precision not in PRECISIONS:  # autocast would fall back to fp32 while the run records this value
            raise OpticalError(f"--mixed-precision {self.mixed_precision!r} is not one of {', '.join(PRECISIONS)}")
        check_device(self.device)
        check_precision(self.device, self.mixed_precision)

    def resolved(self) -> CollectionConfig:
        """This config with ``mixed_precision: auto`` made concrete for this machine, as an evaluation records it."""
        return dataclasses.replace(self, mixed_precision=resolve_precision(self.device, self.mixed_precision))


# ------------------------------------------------------------------ vectors on disk
@dataclass(frozen=True)
class DiskVectors:
    """A ``[rows, dim]`` float32 ``.npy`` file read a block of rows at a time.

    Blocks are read with plain file reads, not a memory map: pages of a mapping count in the
    process's resident memory for as long as it is mapped, so reading a mapped corpus through
    would grow the memory to the corpus size.
    """

    path: Path
    rows: int
    dim: int
    offset: int  # bytes of the .npy header
    block_rows: int = BLOCK_ROWS

    @classmethod
    def open(cls, path: str | os.PathLike, block_rows: int = BLOCK_ROWS) -> DiskVectors:
        with open(path, "rb") as handle:
            try:
                version = np.lib.format.read_magic(handle)
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, fortran, dtype = read_header(handle)
            except ValueError as exc:
                raise OpticalError(f"{path}: not a .npy array file ({exc}); delete it to recompute") from None
            offset = handle.tell()
        if dtype != np.float32 or fortran or len(shape) != 2:
            raise OpticalError(f"{path}: not a C-ordered 2-D float32 array ({dtype}, shape {shape}); delete it to recompute")
        return cls(Path(path), shape[0], shape[1], offset, block_rows)

    def read(self, start: int, stop: int) -> np.ndarray:
        count = (stop - start) * self.dim
        block = np.fromfile(self.path, dtype=np.float32, count=count, offset=self.offset + 4 * start * self.dim)
        if block.size != count:
            raise OpticalError(f"{self.path} is truncated (rows {start}-{stop} missing); delete it to recompute")
        return block.reshape(-1, self.dim)

    def blocks(self) -> Iterator[np.ndarray]:
        for start in range(0, self.rows, self.block_rows):
            yield self.read(start, min(start + self.block_rows, self.rows))

    def sample(self, size: int, seed: int = 0) -> np.ndarray:
        """``size`` distinct rows chosen by ``seed``, in file order, read block by block."""
        chosen = np.sort(np.random.default_rng(seed).choice(self.rows, size=min(size, self.rows), replace=False))
        parts = []
        for start in range(0, self.rows, self.block_rows):
            stop = min(start + self.block_rows, self.rows)
            wanted = chosen[(chosen >= start) & (chosen < stop)]
            if len(wanted):
                parts.append(self.read(start, stop)[wanted - start])
        return np.concatenate(parts)


def encode_to_disk(
    encode: Callable[[Sequence[str]], np.ndarray],
    texts: Sequence[str],
    dim: int,
    path: str | os.PathLike,
    block_rows: int = BLOCK_ROWS,
    progress: bool = False,
) -> DiskVectors:
    """``encode`` ``texts`` a block at a time into the ``[len(texts), dim]`` float32 ``.npy`` file ``path``.

    The file is built as ``<path>.partial`` and renamed onto ``path`` once every row is written, so
    ``path`` is absent or complete. After each block is on disk (fsync), ``<path>.progress`` records
    the rows done: a run killed part-way resumes at the first block not recorded, without encoding
    the earlier ones again. A lock file makes a second process encoding the same texts wait, then
    find the finished file. An existing ``path`` is taken as it is.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial, ledger = path.with_name(path.name + ".partial"), path.with_name(path.name + ".progress")
    shape = (len(texts), dim)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released by the kernel when the process ends, killed or not
        if not path.exists():
            done = _rows_done(partial, ledger, shape)
            if done == 0:
                _create_npy(partial, shape)
            vectors = DiskVectors.open(partial, block_rows)
            with (
                open(partial, "r+b") as handle,
                tqdm(total=len(texts), initial=done, desc="encode corpus", unit="doc", disable=not progress) as bar,
            ):
                for start in range(done, len(texts), block_rows):
                    block = np.ascontiguousarray(encode(texts[start : start + block_rows]), dtype=np.float32)
                    if block.shape != (min(block_rows, len(texts) - start), dim):
                        raise ValueError(f"encode gave shape {block.shape} for rows {start}.. of {shape}")
                    handle.seek(vectors.offset + 4 * start * dim)
                    handle.write(block.tobytes())
                    handle.flush()
                    os.fsync(handle.fileno())  # the rows are on disk before the ledger says so
                    atomic_write_json(ledger, {"rows": start + len(block), "shape": list(shape)})
                    bar.update(len(block))
            os.replace(partial, path)
            ledger.unlink()
    vectors = DiskVectors.open(path, block_rows)
    if (vectors.rows, vectors.dim) != shape:
        raise OpticalError(f"{path} holds {vectors.rows}x{vectors.dim} vectors, not {shape[0]}x{shape[1]}; delete it")
    return vectors


def _create_npy(path: Path, shape: tuple[int, int]) -> None:
    """A float32 ``.npy`` file of ``shape`` whose rows are zeros (a sparse file: the rows take no disk until written)."""
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": "<f4", "fortran_order": False, "shape": shape})
        handle.truncate(handle.tell() + 4 * shape[0] * shape[1])


def _rows_done(partial: Path, ledger: Path, shape: tuple[int, int]) -> int:
    """Rows of an earlier, interrupted encoding that are on disk; 0 (and its files gone) when there is none to trust."""
    try:
        held = json.loads(ledger.read_text(encoding="utf-8"))
        vectors = DiskVectors.open(partial)
        if tuple(held["shape"]) == shape and (vectors.rows, vectors.dim) == shape and 0 < held["rows"] <= shape[0]:
            return int(held["rows"])
    except (OSError, ValueError, KeyError, TypeError, OpticalError):
        pass
    partial.unlink(missing_ok=True)
    ledger.unlink(missing_ok=True)
    return 0


def corpus_vectors_path(teacher: Encoder, texts: Sequence[str], passage_max_length: int, mixed_precision: str) -> Path:
    """Where the teacher's passage embeddings of ``texts`` are cached (``mixed_precision`` resolved, not auto):
    ``optical search`` reads the file an evaluation of the same collection wrote."""
    key = [teacher_identity(teacher), "passage", passage_max_length, *precision_key(mixed_precision)]
    digest = hashlib.sha256(json.dumps(key).encode())
    for text in texts:  # hashed one by one: one JSON string of a big corpus would be a second copy of it
        digest.update(json.dumps(text).encode())
        digest.update(b"\n")
    return cache_root() / "collection_vectors" / f"{digest.hexdigest()[:24]}.npy"


def corpus_vectors(
    teacher: Encoder, texts: Sequence[str], config: CollectionConfig, clock: _Clock, progress: bool
) -> DiskVectors:
    """The teacher's passage embeddings of ``texts``, from the cache or encoded into it block by block."""
    path = corpus_vectors_path(teacher, texts, config.passage_max_length, config.mixed_precision)

    def encode(block: Sequence[str]) -> np.ndarray:
        tick = time.perf_counter()
        emb = teacher.encode(block, kind="passage", batch_size=config.batch_size, max_length=config.passage_max_length)
        clock.forward_seconds += time.perf_counter() - tick
        return emb

    return encode_to_disk(encode, texts, teacher.hidden_size, path, progress=progress)


# ------------------------------------------------------------------ index and search
def build_index(plan: IndexPlan, vectors: DiskVectors, seed: int = 0) -> faiss.Index:
    """The index of ``plan`` over ``vectors``, added from the file a block at a time (IVF: trained on a seeded sample)."""
    index = faiss.index_factory(vectors.dim, plan.factory, faiss.METRIC_INNER_PRODUCT)
    if plan.kind is IndexKind.HNSW:
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    if plan.kind is IndexKind.IVF:
        index.train(vectors.sample(plan.train_size, seed))
    for block in vectors.blocks():
        index.add(block)
    return index


def search(
    index: faiss.Index, query_emb: np.ndarray, query_ids: Sequence[str], doc_ids: Sequence[str], k: int
) -> dict[str, dict[str, float]]:
    """Inner-product top-``k`` of each query as a run ``{qid: {docid: score}}`` (``k`` capped at the documents)."""
    scores, indices = index.search(np.ascontiguousarray(query_emb, dtype=np.float32), min(k, index.ntotal))
    return {
        qid: {doc_ids[j]: float(s) for s, j in zip(row_scores, row_indices) if j >= 0}
        for qid, row_scores, row_indices in zip(query_ids, scores, indices)
    }


def exact_top_k(query_emb: np.ndarray, vectors: DiskVectors, k: int) -> np.ndarray:
    """Row numbers of each query's exact inner-product top ``k``, computed block by block from the file."""
    _, found = knn_ground_truth(
        np.ascontiguousarray(query_emb, dtype=np.float32), vectors.blocks(), min(k, vectors.rows), faiss.METRIC_INNER_PRODUCT
    )
    return found


@dataclass(frozen=True)
class AnnCheck:
    """How close the approximate index came to exact search, at the breadth the collection was searched with."""

    index: str
    documents: int
    sample: int  # queries the recall was measured (and the breadth tuned) on
    breadth_name: str
    breadth: int
    recall_at_10: float  # mean over the sampled queries
    recall_at_10_low: float  # its one-sided 95% lower confidence bound, which the target is held against
    recall_target: float
    tried: list[tuple[int, float, float]]  # (breadth, recall@10, lower bound), narrowest first

    @property
    def met(self) -> bool:
        return self.recall_at_10_low >= self.recall_target


def tune_breadth(
    index: faiss.Index,
    plan: IndexPlan,
    query_emb: np.ndarray,
    vectors: DiskVectors,
    target: float,
    k: int,
    sample: int,
    seed: int = 0,
) -> AnnCheck:
    """Widen the index's search breadth until its recall@10 against exact search reaches ``target`` on
    ``sample`` seeded queries, with 95% confidence (the lower bound of :data:`RECALL_CONFIDENCE_Z`); the
    index is left at that breadth (at the widest when none reaches it).

    Recall is taken on the top 10 of a depth-``k`` search, the search the collection gets.
    """
    rows = sorted(random.Random(seed).sample(range(len(query_emb)), min(sample, len(query_emb))))
    queries = np.ascontiguousarray(query_emb[rows], dtype=np.float32)
    truth = exact_top_k(queries, vectors, RECALL_K)
    parameters = faiss.ParameterSpace()
    tried: list[tuple[int, float, float]] = []
    for breadth in plan.breadths(k):
        parameters.set_index_parameter(index, plan.breadth_name, breadth)
        _, found = index.search(queries, min(k, vectors.rows))
        recalls = query_recalls(truth, found[:, : truth.shape[1]])
        tried.append((breadth, float(recalls.mean()), recall_lower_bound(recalls)))
        if tried[-1][2] >= target:
            break
    breadth, recall, low = tried[-1]
    described = plan.describe(breadth)
    return AnnCheck(described, plan.documents, len(rows), plan.breadth_name, breadth, recall, low, target, tried)


def evaluate_collection(config: CollectionConfig, progress: bool = True, log=print, overwrite: bool = False) -> EvalRun:
    """Evaluate ``config.student`` on a collection and write the run dir ``config.out_dir``.

    As :func:`optical.eval.evaluate.evaluate`: the collection, the output dir, the student and
    the teacher are all checked before a model loads; a finished run of the same config on the
    same collection content is reused; the run dir is built aside and swapped in whole.
    ``log`` receives the lines a user should see (the collection read, the index, the ANN recall).
    """
    config.validate()
    config = config.resolved()
    collection = read_collection(config.collection, config.split, strict=config.strict, query_lang=config.query_lang)
    with sole_writer(config.out_dir):
        return _evaluate_collection(config, collection, progress, log, overwrite)


def _evaluate_collection(config: CollectionConfig, collection: Collection, progress: bool, log, overwrite: bool) -> EvalRun:
    finished = _finished_evaluation(config, overwrite)
    if finished is not None and finished.split_fingerprint == collection.fingerprint:
        return record_in_model_card(config, finished)  # (a finished run on other collection content is redone)
    log(_describe(collection))
    started = time.perf_counter()
    student_path, info = _student_path(config)
    teacher, student = _load_encoders(config, _checked_teacher(config), student_path)
    clock = _Clock()

    qids, dids = list(collection.queries), list(collection.corpus)
    query_texts = [collection.queries[q] for q in qids]
    query_emb = clock.encode(student, query_texts, "query", config.query_max_length, config.batch_size)
    vectors = corpus_vectors(teacher, [collection.corpus[d] for d in dids], config, clock, progress)
    plan = IndexPlan.choose(len(dids), config.index, config.exact_below)
    index = build_index(plan, vectors)
    ann: AnnCheck | None = None
    if plan.approximate:
        ann = tune_breadth(index, plan, query_emb, vectors, config.recall_target, config.depth, config.recall_sample)
        verdict = "" if ann.met else f", below the target {ann.recall_target} even at the widest {ann.breadth_name}"
        log(
            f"approximate search: {ann.index} over {ann.documents} documents (exact below {config.exact_below}); "
            f"recall@10 against exact search {ann.recall_at_10:.4f} on {ann.sample} sampled queries (95% lower "
            f"bound {ann.recall_at_10_low:.4f}; {ann.breadth_name} widened until the bound reached {ann.recall_target}{verdict})"
        )
    run = search(index, query_emb, qids, dids, config.depth)
    del index  # the MaxSim rerank below needs the memory more
    lang, fingerprint = config.query_lang, collection.fingerprint
    results = {}
    key = f"{config.task_name}.{lang}"
    results[key] = TaskResult.from_metrics(
        key, lang, fingerprint, score_run(collection.qrels, run, DEFAULT_MEASURES), run=run, qrels=collection.qrels
    )
    maxsim_check: CandidateCheck | None = None
    if "maxsim" in config.scoring:
        late, maxsim_check = _collection_maxsim(config, collection, teacher, student, clock, run)
        if maxsim_check is not None:
            log(maxsim_check.describe())
        late_key = f"{config.task_name}{MAXSIM_SUFFIX}.{lang}"
        results[late_key] = TaskResult.from_metrics(
            late_key, lang, fingerprint, score_run(collection.qrels, late, DEFAULT_MEASURES), run=late, qrels=collection.qrels
        )
    described = {
        "path": str(collection.path.resolve()),
        "layout": collection.layout,
        "fingerprint": collection.fingerprint,
        "queries": len(collection.queries),
        "documents": len(collection.corpus),
        "unknown_qrels": collection.unknown_qrels,
        "unjudged_queries": collection.unjudged_queries,
        "search": "approximate" if plan.approximate else "exact",
        "index": asdict(plan),
        "ann": asdict(ann) if ann is not None else None,
        "maxsim": asdict(maxsim_check) if maxsim_check is not None else None,
    }
    split = (f"{collection.name}/{collection.split}", collection.fingerprint)
    return _save_run(config, info, clock, started, results, split, collection=described)


def _collection_maxsim(
    config: CollectionConfig, collection: Collection, teacher: Encoder, student: Encoder, clock: _Clock, dense: Run
) -> tuple[dict[str, dict[str, float]], CandidateCheck | None]:
    """The MaxSim run of a collection: exact over every document below ``config.maxsim_exact_below`` documents;
    from there on a rerank of each query's dense candidates, with its recall@10 against exact MaxSim over every
    document measured on ``config.recall_sample`` seeded queries. That check encodes the corpus's tokens once more,
    a block at a time (memory holds one block), and scores only the sampled queries against them."""
    qids, dids = list(collection.queries), list(collection.corpus)
    query_texts = [collection.queries[q] for q in qids]
    q_tokens = clock.encode(student, query_texts, "query", config.query_max_length, config.batch_size, tokens=True)
    dtype = autocast_dtype(config.mixed_precision) or torch.float32

    def doc_tokens(ids: Sequence[str]) -> list:
        texts = [collection.corpus[d] for d in ids]
        return clock.encode(teacher, texts, "passage", config.passage_max_length, config.batch_size, tokens=True)

    if len(dids) < config.maxsim_exact_below:
        return maxsim_search(q_tokens, doc_tokens(dids), qids, dids, config.depth, student.device, dtype), None
    position = {doc: i for i, doc in enumerate(dids)}
    pool = sorted({doc for docs_of in dense.values() for doc in docs_of}, key=position.__getitem__)  # only the candidates
    late = maxsim_rerank(
        q_tokens, doc_tokens(pool), qids, pool, candidates=dense, k=config.depth, device=student.device, dtype=dtype
    )
    rows = sample_rows(len(qids), config.recall_sample)
    blocks = (
        [
            torch.from_numpy(t)
            for t in _encode_tokens_uncached(
                teacher, clock, [collection.corpus[d] for d in dids[start : start + BLOCK_ROWS]], config
            )
        ]
        for start in range(0, len(dids), BLOCK_ROWS)
    )
    truth = exact_top_k_streamed([q_tokens[r] for r in rows], blocks, RECALL_K, student.device, dtype)
    found = [[position[d] for d in sorted(late[qids[r]], key=late[qids[r]].get, reverse=True)[:RECALL_K]] for r in rows]
    recalls = np.array([len(set(t.tolist()) & set(f)) / truth.shape[1] for t, f in zip(truth, found)])
    measured = (config.depth, float(recalls.mean()), recall_lower_bound(recalls))
    return late, CandidateCheck(len(dids), len(rows), config.depth, *measured[1:], config.recall_target, [measured], tuned=False)


def _encode_tokens_uncached(teacher: Encoder, clock: _Clock, texts: list[str], config: CollectionConfig) -> list[np.ndarray]:
    """Token embeddings of one block of the corpus, not kept (a corpus's tokens outgrow memory), timed as forward."""
    tick = time.perf_counter()
    tokens = teacher.encode_tokens(texts, kind="passage", batch_size=config.batch_size, max_length=config.passage_max_length)
    clock.forward_seconds += time.perf_counter() - tick
    return tokens


def _describe(collection: Collection) -> str:
    notes = []
    if collection.unknown_qrels:
        notes.append(f"{collection.unknown_qrels} qrels lines with unknown ids dropped")
    if collection.unjudged_queries:
        notes.append(f"{collection.unjudged_queries} queries without a relevant document not evaluated")
    extra = f" ({'; '.join(notes)})" if notes else ""
    return (
        f"{collection.path} ({collection.layout.upper()}, split {collection.split}): {len(collection.queries)} queries, "
        f"{len(collection.corpus)} documents{extra}"
    )
