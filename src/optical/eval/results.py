"""The on-disk record of one evaluation run (a "run dir").

Layout::

    RUN_DIR/
      eval.json                  summary, written last (its presence marks a complete run)
      per_query/<task_key>.tsv   qid<TAB>measure<TAB>value, one line per query and measure
      runs/<task_key>.trec       the retrieved ranking, TREC 6-column run format (optional)
      qrels/<task_key>.qrels     the gold labels, TREC 4-column qrels format (optional)

``eval.json``::

    {"format": 1,
     "system": "optical-el", "student": "path/to/student" | "zero-shot", "teacher": "name",
     "config": {...}, "split": {"name": "test", "fingerprint": "..."},
     "tasks": {"clir_sentence.el": {"lang": "el", "n_queries": 1190, "task_fingerprint": "...",
                                    "aggregates": {"RR@10": 0.61, ...},
                                    "files": {"per_query": "per_query/clir_sentence.el.tsv",
                                              "run": "runs/clir_sentence.el.trec" | null,
                                              "qrels": "qrels/clir_sentence.el.qrels" | null}}},
     "timings": {...}, "versions": {...}}

A task key is ``<task>.<lang>``: ``clir_sentence.el``, ``clir_paragraph.el``,
``pool.el``, ``retention.en``, ``align_x2en.el``, ``align_en2x.el``.
Aggregates are the means of the per-query values; :meth:`EvalRun.load`
checks that they agree, so a truncated or edited per-query file is caught.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optical.errors import OpticalError
from optical.eval.metrics import MetricResult
from optical.eval.scoring import read_trec_qrels, read_trec_run, write_trec_qrels, write_trec_run
from optical.storage import atomic_write_bytes, atomic_write_json, path_in_record

FORMAT_VERSION = 1
EVAL_JSON = "eval.json"
ZERO_SHOT = "zero-shot"
#: The translate-test baseline: foreign queries machine-translated into English, retrieved with the teacher alone.
TRANSLATE_TEST = "translate-test"
_TASK_KEY = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
# Relative tolerance when checking stored aggregates against per-query means.
_AGGREGATE_TOLERANCE = 1e-6


def check_task_key(task_key: str) -> str:
    if not _TASK_KEY.match(task_key):
        raise OpticalError(f"task key {task_key!r} must look like '<task>.<lang>' (letters, digits, _ or -), e.g. 'pool.el'")
    return task_key


def task_of(task_key: str) -> str:
    """The task part of a task key (``pool.el`` -> ``pool``)."""
    return check_task_key(task_key).split(".", 1)[0]


@dataclass
class TaskResult:
    """One task in one language: per-query values, their means, and optionally the run and qrels."""

    task_key: str
    lang: str
    n_queries: int
    task_fingerprint: str
    aggregates: dict[str, float]
    per_query: dict[str, dict[str, float]]
    run: dict[str, dict[str, float]] | None = None
    qrels: dict[str, dict[str, int]] | None = None

    def __post_init__(self) -> None:
        check_task_key(self.task_key)

    @property
    def task(self) -> str:
        return task_of(self.task_key)

    @classmethod
    def from_metrics(
        cls,
        task_key: str,
        lang: str,
        task_fingerprint: str,
        metrics: MetricResult,
        run: dict[str, dict[str, float]] | None = None,
        qrels: dict[str, dict[str, int]] | None = None,
    ) -> TaskResult:
        """A task result from :func:`optical.eval.metrics.score_run` output (``n_queries`` = scored queries)."""
        n_queries = len(set().union(*metrics.per_query.values())) if metrics.per_query else 0
        return cls(task_key, lang, n_queries, task_fingerprint, dict(metrics.aggregates), metrics.per_query, run, qrels)


@dataclass
class EvalRun:
    """One system evaluated on one split: the content of a run dir."""

    system: str
    student: str
    teacher: str
    split_name: str
    split_fingerprint: str
    tasks: dict[str, TaskResult]
    config: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, Any] = field(default_factory=dict)

    @property
    def is_zero_shot(self) -> bool:
        return self.student == ZERO_SHOT

    def save(self, run_dir: str | os.PathLike, compress: bool = False) -> Path:
        """Write every file atomically; ``eval.json`` last, so a run dir with it is complete.

        ``compress`` gzips the per-query files (``per_query/<task>.tsv.gz``, byte-reproducible),
        for copies meant to be stored or shared; :meth:`load` reads either form.
        """
        run_dir = Path(run_dir)
        tasks_json: dict[str, Any] = {}
        for key, task in self.tasks.items():
            if key != task.task_key:
                raise OpticalError(f"task stored under {key!r} has task_key {task.task_key!r}: they must be equal")
            files = {"per_query": f"per_query/{key}.tsv" + (".gz" if compress else ""), "run": None, "qrels": None}
            table = _per_query_tsv(task.per_query).encode("utf-8")
            atomic_write_bytes(run_dir / files["per_query"], gzip.compress(table, mtime=0) if compress else table)
            if task.run is not None:
                files["run"] = f"runs/{key}.trec"
                write_trec_run(run_dir / files["run"], task.run, tag=_trec_tag(self.system))
            if task.qrels is not None:
                files["qrels"] = f"qrels/{key}.qrels"
                write_trec_qrels(run_dir / files["qrels"], task.qrels)
            tasks_json[key] = {
                "lang": task.lang,
                "n_queries": task.n_queries,
                "task_fingerprint": task.task_fingerprint,
                "aggregates": task.aggregates,
                "files": files,
            }
        atomic_write_json(
            run_dir / EVAL_JSON,
            {
                "format": FORMAT_VERSION,
                "system": self.system,
                "student": self.student,
                "teacher": self.teacher,
                "config": self.config,
                "split": {"name": self.split_name, "fingerprint": self.split_fingerprint},
                "tasks": tasks_json,
                "timings": self.timings,
                "versions": self.versions,
            },
        )
        return run_dir

    @classmethod
    def load(cls, run_dir: str | os.PathLike, with_trec: bool = True) -> EvalRun:
        """Read and validate a run dir; OpticalError naming the file on anything missing or corrupt.

        ``with_trec=False`` skips the TREC run and qrels files (``run`` and
        ``qrels`` stay None): a comparison needs only the per-query values.
        """
        run_dir = Path(run_dir)
        summary_path = run_dir / EVAL_JSON
        if not summary_path.is_file():
            raise OpticalError(f"{summary_path} is missing: {run_dir} is not a complete evaluation run (rerun the evaluation)")
        try:
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise OpticalError(f"{summary_path} is not valid JSON ({exc}); rerun the evaluation") from None
        _require(summary, summary_path, "", {"system": str, "student": str, "teacher": str, "split": dict, "tasks": dict})
        if summary.get("format", FORMAT_VERSION) != FORMAT_VERSION:
            raise OpticalError(f"{summary_path} has format {summary.get('format')!r}; this version reads format {FORMAT_VERSION}")
        _require(summary["split"], summary_path, "split.", {"name": str, "fingerprint": str})
        tasks = {}
        for key, entry in summary["tasks"].items():
            tasks[key] = _load_task(run_dir, summary_path, key, entry, with_trec)
        return cls(
            system=summary["system"],
            student=summary["student"],
            teacher=summary["teacher"],
            split_name=summary["split"]["name"],
            split_fingerprint=summary["split"]["fingerprint"],
            tasks=tasks,
            config=summary.get("config", {}),
            timings=summary.get("timings", {}),
            versions=summary.get("versions", {}),
        )


def _trec_tag(system: str) -> str:
    return re.sub(r"\s+", "_", system) or "optical"


def _per_query_tsv(per_query: dict[str, dict[str, float]]) -> str:
    lines = []
    for measure, values in per_query.items():
        if any(ch.isspace() for ch in measure):
            raise OpticalError(f"measure name {measure!r} contains whitespace: per-query files are tab-separated")
        for qid, value in values.items():
            if any(ch in "\t\n\r" for ch in qid):
                raise OpticalError(f"query id {qid!r} contains a tab or newline: per-query files are tab-separated")
            lines.append(f"{qid}\t{measure}\t{float(value)!r}\n")
    return "".join(lines)


def _read_per_query(path: Path) -> dict[str, dict[str, float]]:
    try:
        raw_bytes = path.read_bytes()
        text = (gzip.decompress(raw_bytes) if path.name.endswith(".gz") else raw_bytes).decode("utf-8")
    except FileNotFoundError:
        raise OpticalError(f"{path} is missing: the run dir is incomplete (rerun the evaluation)") from None
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise OpticalError(f"{path} cannot be read ({exc}); rerun the evaluation") from None
    per_query: dict[str, dict[str, float]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split("\t")
        if len(fields) != 3:
            raise OpticalError(f"{path}:{number}: expected qid<TAB>measure<TAB>value, found {len(fields)} fields")
        qid, measure, raw = fields
        try:
            value = float(raw)
        except ValueError:
            raise OpticalError(f"{path}:{number}: value {raw!r} is not a number") from None
        if not math.isfinite(value):
            raise OpticalError(f"{path}:{number}: value {raw!r} is not finite")
        if qid in per_query.setdefault(measure, {}):
            raise OpticalError(f"{path}:{number}: query {qid!r} appears twice for {measure}")
        per_query[measure][qid] = value
    return per_query


def _require(obj: Any, path: Path, prefix: str, fields: dict[str, type]) -> None:
    if not isinstance(obj, dict):
        raise OpticalError(f"{path}: {prefix or 'top level'} must be a JSON object")
    for name, kind in fields.items():
        if name not in obj:
            raise OpticalError(f"{path}: field {prefix}{name} is missing; rerun the evaluation")
        if kind is float:
            ok = isinstance(obj[name], (int, float)) and not isinstance(obj[name], bool)
        else:
            ok = isinstance(obj[name], kind) and not (kind is int and isinstance(obj[name], bool))
        if not ok:
            raise OpticalError(f"{path}: field {prefix}{name} must be {kind.__name__}, found {type(obj[name]).__name__}")


def _load_task(run_dir: Path, summary_path: Path, key: str, entry: Any, with_trec: bool) -> TaskResult:
    prefix = f"tasks.{key}."
    if not _TASK_KEY.match(key):
        raise OpticalError(f"{summary_path}: task key {key!r} is not of the form '<task>.<lang>'")
    _require(
        entry, summary_path, prefix, {"lang": str, "n_queries": int, "task_fingerprint": str, "aggregates": dict, "files": dict}
    )
    _require(entry["aggregates"], summary_path, prefix + "aggregates.", dict.fromkeys(entry["aggregates"], float))
    files = entry["files"]
    if not isinstance(files.get("per_query"), str):
        raise OpticalError(f"{summary_path}: field {prefix}files.per_query is missing; rerun the evaluation")
    per_query_path = path_in_record(run_dir, files["per_query"], summary_path, f"{prefix}files.per_query")
    per_query = _read_per_query(per_query_path)
    for measure, aggregate in entry["aggregates"].items():
        values = per_query.get(measure)
        if values is None:
            raise OpticalError(f"{per_query_path} has no values for {measure}, which {summary_path} reports")
        mean = sum(values.values()) / len(values)
        if not math.isclose(mean, aggregate, rel_tol=_AGGREGATE_TOLERANCE, abs_tol=_AGGREGATE_TOLERANCE):
            raise OpticalError(
                f"{per_query_path}: mean {measure} is {mean:.6g} but {summary_path} reports {aggregate:.6g}; rerun the evaluation"
            )
    scored = set().union(*per_query.values()) if per_query else set()
    if len(scored) != entry["n_queries"]:
        raise OpticalError(
            f"{per_query_path} holds {len(scored)} queries, {summary_path} says {entry['n_queries']}; rerun the evaluation"
        )
    run = qrels = None
    if with_trec and files.get("run"):
        run = read_trec_run(_existing(path_in_record(run_dir, files["run"], summary_path, f"{prefix}files.run")))
    if with_trec and files.get("qrels"):
        qrels = read_trec_qrels(_existing(path_in_record(run_dir, files["qrels"], summary_path, f"{prefix}files.qrels")))
    return TaskResult(
        key, entry["lang"], entry["n_queries"], entry["task_fingerprint"], entry["aggregates"], per_query, run, qrels
    )


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise OpticalError(f"{path} is missing: the run dir is incomplete (rerun the evaluation)")
    return path
