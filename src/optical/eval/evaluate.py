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
late-interaction task keys (``clir_sentence_maxsim.X``, ``pool_maxsim.X``) scored
with ColBERT's MaxSim over content tokens (:mod:`optical.eval.maxsim`): exact over
every document of a small pool, and over the dense candidates of the LAReQA pool,
whose recall@10 against exact MaxSim is logged and recorded.

Teacher document embeddings do not depend on the student, so they are cached
on disk (keyed by the teacher's identity and the exact texts) and shared by
every evaluation.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from optical.data import load_flores_devtest, resolve_data_dir
from optical.data.languages import XQUADR_LANGS, validate_lang
from optical.data.split import get_split
from optical.errors import OpticalError, check_field_types
from optical.eval.maxsim import CandidateCheck, late_interaction_search
from optical.eval.metrics import DEFAULT_MEASURES, MetricResult, Run, score_language_bias, score_run
from optical.eval.perturb import perturb_queries
from optical.eval.results import EVAL_JSON, TRANSLATE_TEST, ZERO_SHOT, EvalRun, TaskResult
from optical.eval.scoring import dense_search
from optical.eval.tasks import MAXSIM_SUFFIX, TASKS, PassageLength, TaskSpec, parse_task
from optical.models import resolve_model
from optical.models.check import check_model_dir
from optical.models.encoder import Encoder
from optical.models.registry import DEFAULT_MODELS, ModelKind
from optical.storage import atomic_directory, atomic_path, cache_root, check_output_dir, directory_kind, output_lock
from optical.train.config import MixedPrecision, check_model_names
from optical.train.precision import autocast_dtype, check_device, check_precision, resolve_precision
from optical.train.teacher_cache import teacher_identity
from optical.train.trainer import versions

_LOG = logging.getLogger(__name__)
SCORINGS = ("dense", "maxsim")
#: Config fields added after evaluations were recorded, with the value those evaluations ran with.
LEGACY_EVAL_VALUES: dict[str, Any] = {"mixed_precision": "no", "maxsim_tasks": None, "mt_model": None}
ALIGN_MEASURES = ("R@1", "R@5", "RR@10")


@dataclass
class EvalConfig:
    """What to evaluate, on which languages and tasks."""

    student: str  # a `optical distill` output dir, "zero-shot", or "translate-test" (with mt_model)
    out_dir: str
    langs: list[str] = field(default_factory=lambda: ["el"])
    teacher: str = "multilingual-e5-small"
    tasks: list[str] = field(default_factory=lambda: [str(task) for task in TASKS])
    scoring: list[str] = field(default_factory=lambda: ["dense"])
    #: With ``maxsim`` scoring: the tasks scored both ways (None: every task MaxSim applies to).
    maxsim_tasks: list[str] | None = None
    split: str = "test"
    query_noise: float = 0.0
    noise_seed: int = 0
    system: str | None = None  # display name; default: the method and seed of the run
    batch_size: int = 64
    query_max_length: int = 128
    passage_max_length: int = 512
    device: str = "auto"
    data_dir: str | None = None
    #: Autocast of every forward pass: ``auto`` is bf16 where the device computes it natively (as in training).
    mixed_precision: MixedPrecision = "auto"
    #: The MT model of the translate-test baseline (a Hugging Face seq2seq model name or dir).
    mt_model: str | None = None

    def validate(self) -> None:
        check_field_types(self, "evaluation config")
        check_model_names((("--teacher", self.teacher, ModelKind.ENCODER), ("--mt-model", self.mt_model, ModelKind.TRANSLATOR)))
        if (self.student == TRANSLATE_TEST) != (self.mt_model is not None):
            raise OpticalError(
                "--student translate-test needs --mt-model NAME_OR_DIR (a seq2seq MT model into English)"
                if self.mt_model is None
                else f"--mt-model goes with --student {TRANSLATE_TEST}; drop it to evaluate {self.student}"
            )
        for task in self.tasks:
            parse_task(task)
        for scoring in self.scoring:
            if scoring not in SCORINGS:
                raise OpticalError(f"unknown scoring {scoring!r}; choose from {', '.join(SCORINGS)}")
        if self.maxsim_tasks is not None and "maxsim" not in self.scoring:
            raise OpticalError("--maxsim-tasks goes with --scoring dense,maxsim (or maxsim); add it or drop --maxsim-tasks")
        for task in self.maxsim_tasks or []:
            if not TASKS[parse_task(task)].maxsim:
                late = ", ".join(str(t) for t, spec in TASKS.items() if spec.maxsim)
                raise OpticalError(f"task {task} has no MaxSim scoring; MaxSim tasks: {late}")
        translator = DEFAULT_MODELS.get(str(self.mt_model))
        other = [lang for lang in self.langs if lang not in ("en", translator.translates)] if translator else []
        if other:
            raise OpticalError(
                f"--mt-model {self.mt_model} translates {translator.translates} only, not {','.join(other)}; "
                f"use --langs {translator.translates}, or give an MT model that reads {other[0]}"
            )
        if self.split not in ("dev", "test"):
            raise OpticalError(f"--split must be dev or test, got {self.split!r}")
        if not self.langs:
            raise OpticalError("no --langs given")
        # XQuAD tasks need an XQuAD-R language; align needs a FLORES-200 one (sw so am yo have only that).
        from optical.data.languages import get_language
        from optical.data.sources import FLORES_LANGS

        needs_xquad = [task for task in self.tasks if task not in ("align", "retention")]
        for lang in self.langs:
            if lang in XQUADR_LANGS:
                continue
            code = validate_lang(lang, dict.fromkeys((*XQUADR_LANGS, *FLORES_LANGS)), "XQuAD-R or the FLORES-200 devtest")
            if code not in XQUADR_LANGS and needs_xquad:
                raise OpticalError(
                    f"language {lang!r} ({get_language(code).name}) has no XQuAD-R data, so --tasks {','.join(needs_xquad)} "
                    f"cannot run for it; use --tasks align (FLORES-200 devtest alignment) for {lang}"
                )
        if not 0.0 <= self.query_noise <= 1.0:
            raise OpticalError(f"--query-noise must be in [0, 1], got {self.query_noise}")
        if not 0 <= self.noise_seed < 2**32:
            raise OpticalError(f"--noise-seed must be in [0, 2**32), got {self.noise_seed}")
        for name in ("batch_size", "query_max_length", "passage_max_length"):
            if getattr(self, name) < 1:
                raise OpticalError(f"{name} must be >= 1, got {getattr(self, name)}")
        check_device(self.device)
        check_precision(self.device, self.mixed_precision)

    def resolved(self) -> EvalConfig:
        """This config with ``mixed_precision: auto`` made concrete for this machine, as an evaluation records it."""
        return dataclasses.replace(self, mixed_precision=resolve_precision(self.device, self.mixed_precision))


@dataclass
class _Clock:
    """Wall time spent in model forward passes (for the forward fraction), and a memo of one evaluation:
    each distinct text is encoded once per encoder, kind, length and output (CLIR and pool share queries)."""

    forward_seconds: float = 0.0
    memo: dict[tuple, dict[str, Any]] = field(default_factory=dict)

    def encode(self, encoder: Encoder, texts: list[str], kind: str, max_length: int, batch_size: int, tokens: bool = False):
        seen = self.memo.setdefault((id(encoder), kind, max_length, tokens), {})
        new = [t for t in dict.fromkeys(texts) if t not in seen]
        if new:
            tick = time.perf_counter()
            if tokens:
                arrays = encoder.encode_tokens(new, kind=kind, batch_size=batch_size, max_length=max_length)
                out = [torch.from_numpy(t) for t in arrays]
            else:
                out = encoder.encode(new, kind=kind, batch_size=batch_size, max_length=max_length)
            self.forward_seconds += time.perf_counter() - tick
            seen.update(zip(new, out))
        if tokens:
            return [seen[t] for t in texts]
        hidden = encoder.hidden_size
        return np.stack([seen[t] for t in texts]) if texts else np.zeros((0, hidden), dtype=np.float32)


def _student_path(config: EvalConfig) -> tuple[str, dict]:
    """The student model to load and its run.json (empty for zero-shot and translate-test: the teacher)."""
    if config.student in (ZERO_SHOT, TRANSLATE_TEST):
        return config.teacher, {}
    from optical.train.record import RUN_JSON, RunRecord

    if not config.student.strip():
        raise OpticalError("--student is empty; pass the output dir of a finished `optical distill` run (or zero-shot)")
    run_dir = Path(config.student)
    if run_dir.is_file():
        raise OpticalError(
            f"--student {run_dir} is a file; pass the output dir of a finished `optical distill` run (or zero-shot)"
        )
    if not run_dir.is_dir():
        raise OpticalError(
            f"--student {run_dir}: no such directory; pass the output dir of a finished `optical distill` run (or zero-shot)"
        )
    if not (run_dir / RUN_JSON).is_file():
        raise OpticalError(f"{run_dir} has no run.json: pass the output dir of a finished `optical distill` run (or zero-shot)")
    record = RunRecord.load(run_dir)
    if record.teacher != config.teacher:
        raise OpticalError(
            f"{run_dir} was distilled from teacher {record.teacher!r}, not {config.teacher!r}; pass --teacher {record.teacher}"
        )
    record.verify_student()
    return str(record.student_dir), record.to_dict()


#: What a run dir of an evaluation killed before it finished holds (no eval.json): replaced without asking.
_PARTIAL_EVAL = {"per_query", "runs", "qrels"}


def _finished_evaluation(config: EvalConfig, overwrite: bool) -> EvalRun | None:
    """The stored run when ``--out`` holds this very evaluation, finished; None when the dir may be
    (re)written; a one-line error when it holds anything else and ``overwrite`` is not given."""
    if not config.out_dir:
        raise OpticalError("no --out given: name the run dir to write")
    out = check_output_dir(config.out_dir)
    if not out.is_dir() or not any(out.iterdir()):
        return None
    kind = directory_kind(out)
    if kind == "other" and {p.name for p in out.iterdir()} <= _PARTIAL_EVAL:
        return None
    remedy = "pick another --out or pass --overwrite to replace it"
    if kind != "evaluation":
        if overwrite:
            return None
        held = {"distill": "a distillation run", "study": "a study", "report": "a comparison report"}.get(kind, "other files")
        raise OpticalError(f"output dir {out} holds {held}, not an evaluation; {remedy}")
    try:
        held = json.loads((out / EVAL_JSON).read_text(encoding="utf-8"))
        held_config = held["config"]["eval"]
        if not isinstance(held_config, dict):
            raise TypeError("config.eval")
        held_config = {**LEGACY_EVAL_VALUES, **held_config}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
        if overwrite:
            return None
        raise OpticalError(f"{out / EVAL_JSON} is damaged (not an eval.json of `optical evaluate`); {remedy}") from None
    if overwrite:
        return None
    if held_config != asdict(config):
        wanted = asdict(config)
        changed = ", ".join(sorted(k for k in set(held_config) | set(wanted) if held_config.get(k) != wanted.get(k)))
        system = held.get("system")
        raise OpticalError(f"output dir {out} holds another evaluation (system {system!r}; differs in {changed}); {remedy}")
    try:
        return EvalRun.load(out)
    except OpticalError as exc:
        raise OpticalError(f"{out} holds this evaluation, damaged: {exc}; pass --overwrite to redo it") from None


def _default_system(config: EvalConfig, info: dict) -> str:
    if config.student in (ZERO_SHOT, TRANSLATE_TEST):
        return config.student
    cfg = info.get("config", {})
    return f"{cfg.get('method', 'student')}-s{cfg.get('seed', 0)}"


def precision_key(mixed_precision: str) -> list[str]:
    """What a teacher-embedding cache key adds for the precision of its forward passes: nothing for fp32, so the
    entries written before evaluation had a precision stay valid."""
    return [] if mixed_precision == "no" else [mixed_precision]


class _DocCache:
    """Teacher document embeddings on disk, keyed by teacher identity and texts."""

    def __init__(self, teacher: Encoder, clock: _Clock, config: EvalConfig) -> None:
        self.teacher, self.clock, self.config = teacher, clock, config
        self.root = cache_root() / "doc_cache"

    def _path(self, texts: list[str], kind: str, max_length: int, suffix: str, *extra: str) -> Path:
        key = [teacher_identity(self.teacher), kind, max_length, texts, *precision_key(self.config.mixed_precision), *extra]
        return self.root / f"{hashlib.sha256(json.dumps(key).encode()).hexdigest()[:24]}{suffix}"

    def dense(self, texts: list[str], kind: str, max_length: int) -> np.ndarray:
        path = self._path(texts, kind, max_length, ".npy")
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

    def tokens(self, texts: list[str], kind: str, max_length: int) -> list[torch.Tensor]:
        """Per text its content-token embeddings (MaxSim's documents), cached as one ``.npz``: all tokens one
        after the other and each text's count."""
        path = self._path(texts, kind, max_length, ".npz", "tokens")
        if path.exists():
            try:
                with np.load(path) as held:
                    flat, counts = held["tokens"], held["counts"]
                return [torch.from_numpy(t) for t in np.split(flat, np.cumsum(counts)[:-1])]
            except (OSError, ValueError, KeyError):
                path.unlink()  # damaged cache entry: recompute below
        tokens = self.clock.encode(self.teacher, texts, kind, max_length, self.config.batch_size, tokens=True)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, tokens=torch.cat(tokens).numpy(), counts=np.array([len(t) for t in tokens]))
        return tokens


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
) -> tuple[list[TaskResult], CandidateCheck | None]:
    """The dense result of one retrieval task, and with ``maxsim`` its MaxSim result (``<task>_maxsim.<lang>``)
    and, for a pool big enough to need the candidate stage, its recall check."""
    queries = task.queries
    if config.query_noise > 0:
        queries = perturb_queries(queries, config.query_noise, config.noise_seed)
    qids, dids = list(queries), list(task.candidates)
    query_texts, doc_texts = [queries[q] for q in qids], [task.candidates[d] for d in dids]
    query_emb = clock.encode(student, query_texts, "query", config.query_max_length, config.batch_size)
    doc_emb = docs.dense(doc_texts, "passage", passage_max_length)

    def scored(result_key: str, run: Run) -> TaskResult:
        metrics = score_run(task.qrels, run, DEFAULT_MEASURES)
        if language_bias:
            metrics = metrics.merged(score_language_bias(task.qrels, run, task.candidate_langs, task.query_lang))
        return _task_result(result_key, task.query_lang, task.fingerprint, task.qrels, run, metrics)

    results = [scored(key, dense_search(query_emb, doc_emb, qids, dids, k=100))]
    if not maxsim:
        return results, None
    q_tokens = clock.encode(student, query_texts, "query", config.query_max_length, config.batch_size, tokens=True)
    d_tokens = docs.tokens(doc_texts, "passage", passage_max_length)
    late_run, check = late_interaction_search(
        q_tokens, d_tokens, query_emb, doc_emb, qids, dids, k=100, device=student.device, dtype=_scoring_dtype(config)
    )
    task_name, lang = key.split(".", 1)
    results.append(scored(f"{task_name}{MAXSIM_SUFFIX}.{lang}", late_run))
    return results, check


def _scores_maxsim(config: EvalConfig, spec: TaskSpec) -> bool:
    """Whether ``config`` scores the task of ``spec`` with MaxSim too."""
    wanted = config.maxsim_tasks is None or str(spec.task) in config.maxsim_tasks
    return "maxsim" in config.scoring and spec.maxsim and wanted


def _scoring_dtype(config: EvalConfig) -> torch.dtype:
    """The precision of the MaxSim products: the evaluation's (bf16 where the device computes it natively)."""
    return autocast_dtype(config.mixed_precision) or torch.float32


def _alignment(lang: str, pairs: list, student: Encoder, docs: _DocCache, clock: _Clock, config: EvalConfig) -> list[TaskResult]:
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


def evaluate(config: EvalConfig, progress: bool = True, overwrite: bool = False, log=print) -> EvalRun:
    """Run every task of ``config`` and write the run dir to ``config.out_dir``.

    A MaxSim pool big enough for the candidate stage (the LAReQA pool) logs its recall@10 against exact
    MaxSim through ``log`` and records it in the run's config (``maxsim_candidates``, per task key).

    Everything that can be refused is checked before any model is loaded: the config, the output
    dir (a finished run of the same config is reused; one of another run, system or kind of run is
    refused unless ``overwrite``), the student (its files against run.json), the models' files and
    the task data. The run dir is built aside and swapped in whole, so ``out_dir`` holds the
    previous complete run or the new one, never a mix.
    """
    config.validate()
    config = config.resolved()
    with sole_writer(config.out_dir):
        return _evaluate(config, progress, overwrite, log)


@contextmanager
def sole_writer(out_dir: str | None) -> Iterator[None]:
    """Hold the lock of the run dir ``out_dir`` (checked writable first): a second evaluation into the same
    dir, started meanwhile, is refused at once instead of replacing this one's result when it finishes."""
    if not out_dir:
        raise OpticalError("no --out given: name the run dir to write")
    with output_lock(check_output_dir(out_dir)):
        yield


def _evaluate(config: EvalConfig, progress: bool, overwrite: bool, log) -> EvalRun:
    finished = _finished_evaluation(config, overwrite)
    if finished is not None:
        return record_in_model_card(config, finished)
    started = time.perf_counter()
    data_dir = resolve_data_dir(config.data_dir)
    student_path, info = _student_path(config)
    teacher_location = _checked_teacher(config)
    jobs = _jobs(config, data_dir)  # reads every task's data now: a bad data file fails before any model loads
    teacher, student = _load_encoders(config, teacher_location, student_path)
    clock = _Clock()
    docs = _DocCache(teacher, clock, config)
    results: dict[str, TaskResult] = {}
    checks: dict[str, dict] = {}
    for spec, lang, data in tqdm(jobs, desc=f"evaluate {_default_system(config, info)}", unit="task", disable=not progress):
        if config.mt_model is not None and lang != "en":
            student = _translating(config, teacher, lang, student, progress)
        if spec.build is None:
            found = _alignment(lang, data, student, docs, clock, config)
        else:
            passage_max_length = (
                config.query_max_length if spec.passage_length is PassageLength.QUERY else config.passage_max_length
            )
            (result_name,) = spec.results
            found, check = _retrieval(
                f"{result_name}.{lang}",
                data,
                student,
                docs,
                clock,
                config,
                passage_max_length,
                _scores_maxsim(config, spec),
                language_bias=spec.language_bias,
            )
            if check is not None:
                log(f"{found[-1].task_key}: {check.describe()}")
                checks[found[-1].task_key] = asdict(check)
        results.update({r.task_key: r for r in found})
    extra = {"maxsim_candidates": checks} if checks else {}
    return _save_run(config, info, clock, started, results, (config.split, get_split().fingerprint), **extra)


def _translating(config: EvalConfig, teacher: Encoder, lang: str, current, progress: bool):
    """The query encoder of translate-test for ``lang``: its MT model, then the teacher (kept across that language's
    tasks); with ``progress``, translation shows its own bar (the slow step: minutes per thousand queries on a CPU)."""
    from optical.models.translator import TranslatingEncoder, Translator

    if isinstance(current, TranslatingEncoder) and current.translator.source_lang == lang:
        return current
    translator = Translator.load(resolve_model(config.mt_model), lang, device=str(teacher.device))
    translator.show_progress = progress
    return TranslatingEncoder(teacher, translator)


def _checked_teacher(config) -> Path:
    """Where the teacher of ``config`` is, checked (config, tokenizer, weights) before anything loads."""
    return check_model_dir(resolve_model(config.teacher), role="--teacher")


def _load_encoders(config, teacher_location: Path, student_path: str) -> tuple[Encoder, Encoder]:
    """Teacher and student in eval mode on ``config.device`` (``auto``: CUDA when present); zero-shot: one model."""
    device = config.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    teacher = Encoder.load(teacher_location, device=device).eval()
    student = teacher if config.student in (ZERO_SHOT, TRANSLATE_TEST) else Encoder.load(student_path, device=device).eval()
    for encoder in (teacher, student):
        encoder.inference_autocast = autocast_dtype(config.mixed_precision)
    return teacher, student


def _save_run(
    config, info: dict, clock: _Clock, started: float, results: dict[str, TaskResult], split: tuple[str, str], **extra_config
) -> EvalRun:
    """The evaluation run of ``config`` (``split`` = name and fingerprint), built aside and swapped into its out dir.

    ``config`` is an :class:`EvalConfig` or a collection's config (anything with ``system``, ``student``, ``teacher``
    and ``out_dir``, and a dataclass); ``extra_config`` joins the recorded config (e.g. the collection's description).
    """
    wall = time.perf_counter() - started
    run = EvalRun(
        system=config.system or _default_system(config, info),
        student=config.student,
        teacher=config.teacher,
        split_name=split[0],
        split_fingerprint=split[1],
        tasks=results,
        config={"eval": asdict(config), "distill": info.get("config", {}), **extra_config},
        timings={
            "wall_seconds": wall,
            "forward_seconds": clock.forward_seconds,
            "forward_fraction": clock.forward_seconds / wall,
            "torch_threads": torch.get_num_threads(),
        },
        versions=versions(),
    )
    with atomic_directory(Path(config.out_dir)) as building:
        run.save(building)
    return record_in_model_card(config, run)


def record_in_model_card(config, run: EvalRun) -> EvalRun:
    """Add ``run``'s scores (:func:`card_scores`) to the model card of the distilled student
    (``student/README.md``; zero-shot and translate-test have none); ``run`` unchanged."""
    if config.student not in (ZERO_SHOT, TRANSLATE_TEST):
        from optical.train.card import write_model_card

        try:
            write_model_card(config.student, card_scores(run))
        except OSError as exc:  # a student on read-only storage is still evaluated; its card is updated elsewhere
            _LOG.warning(
                "optical: warning: the model card of %s was not updated (%s); run `optical model card %s --eval %s` "
                "where it is writable",
                config.student,
                exc.strerror or exc,
                config.student,
                config.out_dir,
            )
    return run


def card_scores(run: EvalRun) -> list:
    """The headline measure of each task of ``run`` with its 95% bootstrap CI over the queries (``CardScore``s)."""
    from optical.eval.stats import bootstrap_ci
    from optical.eval.tasks import main_measure
    from optical.train.card import CardScore

    scores = []
    for key, task in run.tasks.items():
        measure = main_measure(task.task) or "RR@10"
        values = list(task.per_query.get(measure, {}).values())
        if values:
            ci = bootstrap_ci(values)
            value = task.aggregates[measure]
            scores.append(CardScore(run.system, run.split_name, key, measure, value, ci.low, ci.high, task.n_queries))
    return scores


def _jobs(config: EvalConfig, data_dir: Path) -> list[tuple]:
    """(task spec, language, its data) for every task to run: language by language, then the English-only tasks once."""
    wanted = {parse_task(t) for t in config.tasks}
    specs = [spec for task, spec in TASKS.items() if task in wanted]
    jobs = [(spec, lang) for lang in config.langs for spec in specs if spec.query_langs != "english" and spec.langs_for([lang])]
    jobs += [(spec, "en") for spec in specs if spec.query_langs == "english"]
    return [
        (spec, lang, load_flores_devtest(data_dir, lang) if spec.build is None else spec.build(data_dir, lang, config.split))
        for spec, lang in jobs
    ]
