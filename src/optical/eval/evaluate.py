"""Evaluate one student (or the zero-shot model) on the XQuAD test split.

Tasks (task keys ``<task>.<lang>``), all with the student as the query encoder
and the frozen teacher as the document encoder, as in OPTICAL (Huang et al.,
WSDM 2023, arXiv:2301.12566):

* ``clir_sentence.X``: questions in X against the English XQuAD-R sentences;
* ``clir_paragraph.X``: questions in X against the English XQuAD paragraphs;
* ``pool.X``: questions in X against the sentences of all 11 XQuAD-R languages
  (LAReQA, Roy et al. EMNLP 2020): mAP with 11 relevant per question, plus the
  language-bias measures of :mod:`optical.eval.metrics`;
* ``retention.en``: English questions against English sentences (does
  distillation damage English?);
* ``align_x2en.X`` / ``align_en2x.X``: translation retrieval over the 1012
  FLORES-200 devtest pairs; R@1 is the accuracy (1 - R@1 is LASER's xsim error
  rate, Artetxe & Schwenk, TACL 2019), with the cosine of each translation and
  its margin over the mean non-translation cosine per query.

Scoring ``dense`` ranks by pooled cosine (exact, FAISS); ``maxsim`` adds
late-interaction task keys (``clir_sentence_maxsim.X``) scored with ColBERT's
MaxSim over content tokens.

Teacher document embeddings do not depend on the student, so they are cached
on disk (keyed by the teacher's identity and the exact texts) and shared by
every evaluation.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from optical.data import load_flores_devtest, resolve_data_dir
from optical.data.languages import XQUADR_LANGS, validate_lang
from optical.data.split import get_split
from optical.errors import OpticalError
from optical.eval.metrics import DEFAULT_MEASURES, MetricResult, score_language_bias, score_run
from optical.eval.perturb import perturb_queries
from optical.eval.results import ZERO_SHOT, EvalRun, TaskResult
from optical.eval.scoring import dense_search, maxsim_search
from optical.eval.tasks import TASKS, PassageLength, parse_task
from optical.models import resolve_model
from optical.models.encoder import Encoder
from optical.storage import atomic_path, cache_root
from optical.train.teacher_cache import teacher_identity
from optical.train.trainer import versions

SCORINGS = ("dense", "maxsim")
ALIGN_MEASURES = ("R@1", "R@5", "RR@10")


@dataclass
class EvalConfig:
    """What to evaluate, on which languages and tasks."""

    student: str  # a `optical distill` output dir, or "zero-shot"
    out_dir: str
    langs: list[str] = field(default_factory=lambda: ["el"])
    teacher: str = "multilingual-e5-small"
    tasks: list[str] = field(default_factory=lambda: [str(task) for task in TASKS])
    scoring: list[str] = field(default_factory=lambda: ["dense"])
    split: str = "test"
    query_noise: float = 0.0
    noise_seed: int = 0
    system: str | None = None  # display name; default: the method and seed of the run
    batch_size: int = 64
    query_max_length: int = 128
    passage_max_length: int = 512
    device: str = "auto"
    data_dir: str | None = None

    def validate(self) -> None:
        for task in self.tasks:
            parse_task(task)
        for scoring in self.scoring:
            if scoring not in SCORINGS:
                raise OpticalError(f"unknown scoring {scoring!r}; choose from {', '.join(SCORINGS)}")
        if self.split not in ("dev", "test"):
            raise OpticalError(f"--split must be dev or test, got {self.split!r}")
        if not self.langs:
            raise OpticalError("no --langs given")
        for lang in self.langs:
            validate_lang(lang, XQUADR_LANGS, "XQuAD-R")
        if not 0.0 <= self.query_noise <= 1.0:
            raise OpticalError(f"--query-noise must be in [0, 1], got {self.query_noise}")


@dataclass
class _Clock:
    """Wall time spent in model forward passes (for the forward fraction)."""

    forward_seconds: float = 0.0

    def encode(self, encoder: Encoder, texts: list[str], kind: str, max_length: int, batch_size: int, tokens: bool = False):
        tick = time.perf_counter()
        if tokens:
            out = [
                torch.from_numpy(t) for t in encoder.encode_tokens(texts, kind=kind, batch_size=batch_size, max_length=max_length)
            ]
        else:
            out = encoder.encode(texts, kind=kind, batch_size=batch_size, max_length=max_length)
        self.forward_seconds += time.perf_counter() - tick
        return out


def _student_path(config: EvalConfig) -> tuple[str, dict]:
    """The student model to load and its run.json (empty for zero-shot)."""
    if config.student == ZERO_SHOT:
        return config.teacher, {}
    from optical.train.record import RUN_JSON, RunRecord

    run_dir = Path(config.student)
    if not (run_dir / RUN_JSON).is_file():
        raise OpticalError(f"{run_dir} has no run.json: pass the output dir of a finished `optical distill` run (or zero-shot)")
    record = RunRecord.load(run_dir)
    if record.teacher != config.teacher:
        raise OpticalError(
            f"{run_dir} was distilled from teacher {record.teacher!r}, not {config.teacher!r}; pass --teacher {record.teacher}"
        )
    return str(record.student_dir), record.to_dict()


def _default_system(config: EvalConfig, info: dict) -> str:
    if config.student == ZERO_SHOT:
        return ZERO_SHOT
    cfg = info.get("config", {})
    return f"{cfg.get('method', 'student')}-s{cfg.get('seed', 0)}"


class _DocCache:
    """Teacher document embeddings on disk, keyed by teacher identity and texts."""

    def __init__(self, teacher: Encoder, clock: _Clock, config: EvalConfig) -> None:
        self.teacher, self.clock, self.config = teacher, clock, config
        self.root = cache_root() / "doc_cache"

    def dense(self, texts: list[str], kind: str, max_length: int) -> np.ndarray:
        digest = hashlib.sha256(json.dumps([teacher_identity(self.teacher), kind, max_length, texts]).encode()).hexdigest()[:24]
        path = self.root / f"{digest}.npy"
        if path.exists():
            try:
                return np.load(path)
            except (OSError, ValueError):
                path.unlink()  # damaged cache entry: recompute below
        emb = self.clock.encode(self.teacher, texts, kind, max_length, self.config.batch_size)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, emb)
        return emb


def _task_result(key: str, lang: str, fingerprint: str, qrels, run, metrics: MetricResult) -> TaskResult:
    return TaskResult.from_metrics(key, lang, fingerprint, metrics, run=run, qrels=qrels)


def _retrieval(
    key: str,
    task,
    student: Encoder,
    docs: _DocCache,
    clock: _Clock,
    config: EvalConfig,
    passage_max_length: int,
    maxsim: bool,
    language_bias: bool = False,
) -> list[TaskResult]:
    queries = task.queries
    if config.query_noise > 0:
        queries = perturb_queries(queries, config.query_noise, config.noise_seed)
    qids, dids = list(queries), list(task.candidates)
    doc_texts = [task.candidates[d] for d in dids]
    query_emb = clock.encode(student, [queries[q] for q in qids], "query", config.query_max_length, config.batch_size)
    doc_emb = docs.dense(doc_texts, "passage", passage_max_length)
    run = dense_search(query_emb, doc_emb, qids, dids, k=100)
    metrics = score_run(task.qrels, run, DEFAULT_MEASURES)
    if language_bias:
        metrics = metrics.merged(score_language_bias(task.qrels, run, task.candidate_langs, task.query_lang))
    results = [_task_result(key, task.query_lang, task.fingerprint, task.qrels, run, metrics)]
    if maxsim:
        q_tokens = clock.encode(
            student, [queries[q] for q in qids], "query", config.query_max_length, config.batch_size, tokens=True
        )
        d_tokens = clock.encode(docs.teacher, doc_texts, "passage", passage_max_length, config.batch_size, tokens=True)
        late_run = maxsim_search(q_tokens, d_tokens, qids, dids, k=100)
        task_name, lang = key.split(".", 1)
        results.append(
            _task_result(
                f"{task_name}_maxsim.{lang}",
                task.query_lang,
                task.fingerprint,
                task.qrels,
                late_run,
                score_run(task.qrels, late_run, DEFAULT_MEASURES),
            )
        )
    return results


def _alignment(
    lang: str, student: Encoder, teacher: Encoder, docs: _DocCache, clock: _Clock, config: EvalConfig, data_dir: Path
) -> list[TaskResult]:
    pairs = load_flores_devtest(data_dir, lang)
    english = [p.en for p in pairs]
    foreign = [p.foreign for p in pairs]
    en_teacher = docs.dense(english, "query", config.query_max_length)
    x_student = clock.encode(student, foreign, "query", config.query_max_length, config.batch_size)
    ids_en = [f"en:{i}" for i in range(len(pairs))]
    ids_x = [f"{lang}:{i}" for i in range(len(pairs))]
    fingerprint = hashlib.sha256(json.dumps([english, foreign]).encode()).hexdigest()[:16]
    cosine = torch.from_numpy(x_student) @ torch.from_numpy(en_teacher).T  # [x, en]
    results = []
    for key, query_ids, doc_ids, matrix in (
        (f"align_x2en.{lang}", ids_x, ids_en, cosine),
        (f"align_en2x.{lang}", ids_en, ids_x, cosine.T),
    ):
        qrels = {q: {d: 1} for q, d in zip(query_ids, doc_ids)}
        values, indices = matrix.topk(min(100, matrix.shape[1]), dim=1)
        run = {q: {doc_ids[j]: float(s) for s, j in zip(v.tolist(), i.tolist())} for q, v, i in zip(query_ids, values, indices)}
        metrics = score_run(qrels, run, ALIGN_MEASURES)
        diagonal = matrix.diagonal()
        others = (matrix.sum(1) - diagonal) / max(matrix.shape[1] - 1, 1)
        extra = {
            "cos_translation": dict(zip(query_ids, diagonal.tolist())),
            "cos_margin": dict(zip(query_ids, (diagonal - others).tolist())),
        }
        metrics = metrics.merged(MetricResult.from_per_query(extra))
        results.append(_task_result(key, lang, fingerprint, qrels, run, metrics))
    return results


def evaluate(config: EvalConfig, progress: bool = True) -> EvalRun:
    """Run every task of ``config`` and write the run dir to ``config.out_dir``."""
    config.validate()
    finished = Path(config.out_dir) / "eval.json"
    if finished.exists():  # a finished evaluation of the same config is reused, not redone
        held = json.loads(finished.read_text(encoding="utf-8")).get("config", {}).get("eval")
        if held == asdict(config):
            return EvalRun.load(config.out_dir)
    started = time.perf_counter()
    data_dir = resolve_data_dir(config.data_dir)
    student_path, info = _student_path(config)
    device = (
        "cuda" if config.device == "auto" and torch.cuda.is_available() else ("cpu" if config.device == "auto" else config.device)
    )
    teacher = Encoder.load(resolve_model(config.teacher), device=device)
    teacher.eval()
    student = teacher if config.student == ZERO_SHOT else Encoder.load(student_path, device=device)
    student.eval()
    clock = _Clock()
    docs = _DocCache(teacher, clock, config)
    maxsim = "maxsim" in config.scoring
    results: dict[str, TaskResult] = {}
    wanted = {parse_task(t) for t in config.tasks}
    specs = [spec for task, spec in TASKS.items() if task in wanted]
    # Language by language, then the English-only tasks once.
    jobs = [(spec, lang) for lang in config.langs for spec in specs if spec.query_langs != "english" and spec.langs_for([lang])]
    jobs += [(spec, "en") for spec in specs if spec.query_langs == "english"]
    for spec, lang in tqdm(jobs, desc=f"evaluate {_default_system(config, info)}", unit="task", disable=not progress):
        if spec.build is None:
            found = _alignment(lang, student, teacher, docs, clock, config, data_dir)
        else:
            passage_max_length = (
                config.query_max_length if spec.passage_length is PassageLength.QUERY else config.passage_max_length
            )
            (result_name,) = spec.results
            found = _retrieval(
                f"{result_name}.{lang}",
                spec.build(data_dir, lang, config.split),
                student,
                docs,
                clock,
                config,
                passage_max_length,
                maxsim and spec.maxsim,
                language_bias=spec.language_bias,
            )
        results.update({r.task_key: r for r in found})
    wall = time.perf_counter() - started
    run = EvalRun(
        system=config.system or _default_system(config, info),
        student=config.student,
        teacher=config.teacher,
        split_name=config.split,
        split_fingerprint=get_split().fingerprint,
        tasks=results,
        config={"eval": asdict(config), "distill": info.get("config", {})},
        timings={
            "wall_seconds": wall,
            "forward_seconds": clock.forward_seconds,
            "forward_fraction": clock.forward_seconds / wall,
        },
        versions=versions(),
    )
    run.save(config.out_dir)
    return run
