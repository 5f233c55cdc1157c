"""``run.json``: the record of a finished ``optical distill`` run, written last in its output dir.

:class:`RunRecord` owns the schema. The trainer writes it with :meth:`RunRecord.save`
(atomically); evaluation, the study runner and the study report read it with
:meth:`RunRecord.load` (or :meth:`RunRecord.find`, which gives None for a run that is
missing or unreadable) and use typed fields instead of dictionary keys. The JSON on disk
keeps the keys and their order of the files written before this class existed::

    {
      "config": {...DistillConfig...},       "fingerprint": "8e33...",
      "teacher": "multilingual-e5-small",    "data_fingerprint": "037f...",
      "bitext": {"pairs": 2000, "stats": {...}},
      "versions": {"optical": ..., "python": ..., "torch": ..., "transformers": ..., "accelerate": ...},
      "timings": {"teacher_seconds": ..., "train_seconds": ..., "total_seconds": ...},
      "device": "cpu", "num_processes": 1,
      "result": {"steps": 62, "selection_metric": "xquad_dev_mrr@10", "best_step": 62,
                 "best_metric": 0.778, "seconds": 111.5, "pairs_per_second": 19.5,
                 "resumed_from_step": null, "history": [{"step": 0, "xquad_dev_mrr@10": 0.736}, ...]},
      "completed": true,
      "student_files": {"model.safetensors": {"size": 470637416, "sha256": "..."}, ...},
      "throughput": {"pairs_per_second": ..., "tokens_per_second": ..., "padding_fraction": 0.12,
                     "phase_seconds": {"data": ..., "forward": ..., "loss": ..., "backward": ..., "optimizer": ...},
                     "tokenize_seconds": ..., "length_grouping": true, "torch_threads": 2}
    }

``student_files`` (size and sha256 of every file of ``student/``) is absent from records written
before it existed; :meth:`RunRecord.verify_student` checks it (or, for such an old record, the
student's safetensors header) before a finished run is reused or evaluated.

Example (with a finished run in ``runs/el-ot/distill``)::

    record = RunRecord.load("runs/el-ot/distill")          # the dir or its run.json
    record.result.best_metric, record.timings.train_seconds, record.config.method_spec.uses("ot")

This module imports no torch, so reading records stays cheap.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optical.errors import OpticalError
from optical.storage import atomic_write_json

if TYPE_CHECKING:
    from optical.train.config import DistillConfig

#: What ``optical distill`` writes last in its output dir: the run is complete when it exists.
RUN_JSON = "run.json"
#: The final student (an HF / sentence-transformers model dir) inside the output dir.
STUDENT = "student"


def versions() -> dict[str, str]:
    """The versions of the libraries that made a run (stored in run.json and eval.json)."""
    import accelerate
    import torch
    import transformers

    import optical

    return {
        "optical": optical.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "accelerate": accelerate.__version__,
    }


@dataclass(frozen=True)
class RunTimings:
    """Wall seconds: loading the teacher, its cache and the dev selector; training (summed over
    resumed sessions, without the pauses between them); the whole run (every session of ``distill`` up to its last
    checkpoint, then the last session; runs written before checkpoints carried it count only the last session)."""

    teacher_seconds: float
    train_seconds: float
    total_seconds: float

    @property
    def overhead_seconds(self) -> float:
        """What the run cost besides its training steps (never negative: older resumed runs' totals count only their
        last session)."""
        return max(0.0, self.total_seconds - self.train_seconds)


#: The history key of the student's query-embedding spread at each dev evaluation (1 - mean pairwise cosine;
#: :func:`optical.train.selection.embedding_spread`).
SPREAD_KEY = "dev_query_spread"
#: A student has collapsed when its spread falls below this share of the initial student's: its embeddings of
#: different sentences have become nearly identical (sentence-transformers issue #1164 reports this for MSE
#: distillation at high learning rates), which a low dev score alone does not tell from learning little.
COLLAPSE_SPREAD_RATIO = 0.1


@dataclass(frozen=True)
class RunResult:
    """What training produced.

    ``history`` holds one ``{"step": s, <selection_metric>: value, "dev_query_spread": spread}`` per dev
    evaluation (step 0 is the initial student; runs written before the spread existed lack it);
    ``pairs_per_second`` counts the pairs of every process.
    """

    steps: int
    selection_metric: str | None
    best_step: int | None
    best_metric: float | None
    seconds: float
    pairs_per_second: float
    resumed_from_step: int | None
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def dev_history(self) -> list[tuple[int, float]]:
        """``(step, dev metric)`` of every dev evaluation that measured the selection metric."""
        metric = self.selection_metric
        return [(h["step"], h[metric]) for h in self.history if metric is not None and metric in h]

    @property
    def spread_measured(self) -> bool:
        """Whether the dev evaluations recorded the query-embedding spread (not in runs written before it existed)."""
        return any(SPREAD_KEY in h for h in self.history)

    def _spreads(self) -> tuple[float, dict[int, float]] | None:
        """The initial student's spread and each dev step's, or None when not measured from step 0."""
        spreads = [(h["step"], h[SPREAD_KEY]) for h in self.history if SPREAD_KEY in h]
        if not spreads or spreads[0][0] != 0 or spreads[0][1] <= 0:
            return None
        return spreads[0][1], dict(spreads)

    @property
    def kept_collapsed(self) -> bool:
        """Whether the student model selection kept (``best_step``) had collapsed: what the run's evaluations
        score is then an encoder that maps different sentences to nearly the same vector."""
        measured = self._spreads()
        if measured is None or self.best_step is None or self.best_step not in measured[1]:
            return False
        initial, by_step = measured
        return by_step[self.best_step] < COLLAPSE_SPREAD_RATIO * initial

    @property
    def collapsed_at(self) -> int | None:
        """The first dev step whose query-embedding spread fell below :data:`COLLAPSE_SPREAD_RATIO` x the initial
        student's (step 0), or None (also for runs without a spread in their history)."""
        measured = self._spreads()
        if measured is None:
            return None
        initial, by_step = measured
        return next((step for step, spread in by_step.items() if step != 0 and spread < COLLAPSE_SPREAD_RATIO * initial), None)

    @property
    def dev_before(self) -> float | None:
        """The dev metric of the first evaluation (the initial student), if any."""
        history = self.dev_history
        return history[0][1] if history else None


@dataclass(frozen=True)
class RunThroughput:
    """The training loop's speed in the run's last session (absent from records written before it existed).

    ``phase_seconds`` splits the steps' time into data (slicing the tokenized batches and the teacher
    cache), forward, loss, backward and optimizer; ``padding_fraction`` is the share of padded positions
    in the student's batches; ``tokenize_seconds`` the one-off tokenization of the bitext; ``torch_threads``
    the intra-op threads each process had (None in records written before it was stored), which a study's dry
    run needs to tell a run that had the machine to itself from one of several sharing it.
    """

    pairs_per_second: float
    tokens_per_second: float
    padding_fraction: float
    phase_seconds: dict[str, float]
    tokenize_seconds: float
    length_grouping: bool
    torch_threads: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "pairs_per_second": self.pairs_per_second,
            "tokens_per_second": self.tokens_per_second,
            "padding_fraction": self.padding_fraction,
            "phase_seconds": dict(self.phase_seconds),
            "tokenize_seconds": self.tokenize_seconds,
            "length_grouping": self.length_grouping,
            **({"torch_threads": self.torch_threads} if self.torch_threads is not None else {}),
        }

    @classmethod
    def from_dict(cls, value: Any, origin: str) -> RunThroughput | None:
        if value is None:
            return None
        try:
            return cls(
                float(value["pairs_per_second"]),
                float(value["tokens_per_second"]),
                float(value["padding_fraction"]),
                {str(k): float(v) for k, v in value["phase_seconds"].items()},
                float(value["tokenize_seconds"]),
                bool(value["length_grouping"]),
                int(value["torch_threads"]) if value.get("torch_threads") is not None else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise OpticalError(f"{origin}: throughput is malformed") from None


@dataclass(frozen=True)
class BitextSummary:
    """How many pairs the run trained on and the bitext reader's per-source counts."""

    pairs: int
    stats: dict[str, Any]


@dataclass(frozen=True)
class RunRecord:
    """The typed content of one ``run.json`` (see the module docstring for the JSON)."""

    config: DistillConfig
    fingerprint: str  # config.training_fingerprint()
    teacher: str  # config.teacher as given (a default name, a dir or a hub name)
    data_fingerprint: str
    bitext: BitextSummary
    versions: dict[str, str]
    timings: RunTimings
    device: str
    num_processes: int
    result: RunResult
    completed: bool = True
    #: Size and sha256 of each file of ``student/`` when the run finished (None in older records).
    student_files: dict[str, dict[str, Any]] | None = None
    #: The training loop's speed (None in older records).
    throughput: RunThroughput | None = None
    #: The output dir the record was read from or written to (not stored in the JSON).
    out_dir: Path | None = field(default=None, compare=False)

    @property
    def torch_threads(self) -> int | None:
        """The intra-op threads the run had (None where its record predates the field)."""
        return self.throughput.torch_threads if self.throughput else None

    @property
    def student_dir(self) -> Path:
        if self.out_dir is None:
            raise OpticalError("this run record was not read from an output dir, so it has no student dir")
        return self.out_dir / STUDENT

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, keys in the order ``run.json`` has always had."""
        r, t = self.result, self.timings
        return {
            "config": self.config.to_dict(),
            "fingerprint": self.fingerprint,
            "teacher": self.teacher,
            "data_fingerprint": self.data_fingerprint,
            "bitext": {"pairs": self.bitext.pairs, "stats": self.bitext.stats},
            "versions": dict(self.versions),
            "timings": {"teacher_seconds": t.teacher_seconds, "train_seconds": t.train_seconds, "total_seconds": t.total_seconds},
            "device": self.device,
            "num_processes": self.num_processes,
            "result": {
                "steps": r.steps,
                "selection_metric": r.selection_metric,
                "best_step": r.best_step,
                "best_metric": r.best_metric,
                "seconds": r.seconds,
                "pairs_per_second": r.pairs_per_second,
                "resumed_from_step": r.resumed_from_step,
                "history": r.history,
            },
            "completed": self.completed,
            **({"student_files": self.student_files} if self.student_files is not None else {}),
            **({"throughput": self.throughput.to_dict()} if self.throughput is not None else {}),
        }

    @classmethod
    def from_dict(cls, info: dict[str, Any], out_dir: Path | None = None, origin: str = RUN_JSON) -> RunRecord:
        """The record of a parsed ``run.json``; one-line :class:`OpticalError` when a key is missing."""
        from optical.train.config import LEGACY_VALUES, DistillConfig

        try:
            r, t, b = info["result"], info["timings"], info["bitext"]
            return cls(
                config=DistillConfig.from_dict({**LEGACY_VALUES, **info["config"]}, origin=f"{origin}: config"),
                fingerprint=info["fingerprint"],
                teacher=info["teacher"],
                data_fingerprint=info["data_fingerprint"],
                bitext=BitextSummary(pairs=b["pairs"], stats=b["stats"]),
                versions=info["versions"],
                timings=RunTimings(t["teacher_seconds"], t["train_seconds"], t["total_seconds"]),
                device=info["device"],
                num_processes=info["num_processes"],
                result=RunResult(
                    steps=r["steps"],
                    selection_metric=r["selection_metric"],
                    best_step=r["best_step"],
                    best_metric=r["best_metric"],
                    seconds=r["seconds"],
                    pairs_per_second=r["pairs_per_second"],
                    resumed_from_step=r["resumed_from_step"],
                    history=r["history"],
                ),
                completed=bool(info.get("completed", False)),
                student_files=_student_files(info.get("student_files"), origin),
                throughput=RunThroughput.from_dict(info.get("throughput"), origin),
                out_dir=out_dir,
            )
        except (KeyError, TypeError) as exc:
            raise OpticalError(f"{origin} is not a run record of `optical distill` (missing or malformed {exc})") from None

    @staticmethod
    def path(path_or_dir: str | Path) -> Path:
        """``run.json`` itself, or the one inside an output dir."""
        path = Path(path_or_dir)
        return path if path.name == RUN_JSON and not path.is_dir() else path / RUN_JSON

    @classmethod
    def load(cls, path_or_dir: str | Path) -> RunRecord:
        """The record in ``path_or_dir`` (an output dir or its ``run.json``); :class:`OpticalError`
        when it is missing, not JSON or not a run record."""
        path = cls.path(path_or_dir)
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            missing = f"{path.parent} has no {RUN_JSON}: not the output dir of a finished `optical distill` run"
            raise OpticalError(missing) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise OpticalError(f"{path} cannot be read ({first})") from None
        if not isinstance(info, dict):
            raise OpticalError(f"{path} is not a run record of `optical distill` (not a JSON object)")
        return cls.from_dict(info, out_dir=path.parent, origin=str(path))

    @classmethod
    def find(cls, path_or_dir: str | Path) -> RunRecord | None:
        """Like :meth:`load`, but None for a missing or unreadable record (a run not finished yet)."""
        try:
            return cls.load(path_or_dir)
        except OpticalError:
            return None

    def verify_student(self) -> None:
        """Refuse a student whose files changed since the run finished (one line naming the file);
        for a record without ``student_files``, at least the weights' safetensors header is checked."""
        from optical.models.check import check_model_dir, verify_digests

        student = self.student_dir
        remedy = f"redo the run with --overwrite (optical distill ... --out {self.out_dir} --overwrite)"
        if not student.is_dir():
            raise OpticalError(f"{student} is missing, though {self.out_dir / RUN_JSON} marks the run finished; {remedy}")
        if self.student_files is not None:
            verify_digests(student, self.student_files, remedy, self.out_dir / RUN_JSON)
        try:
            check_model_dir(student, role="student")
        except OpticalError as exc:
            raise OpticalError(f"{exc}; {remedy}") from None

    def save(self, out_dir: str | Path | None = None) -> Path:
        """Write ``run.json`` into ``out_dir`` (default: the record's own) atomically; its path."""
        target = Path(out_dir) if out_dir is not None else self.out_dir
        if target is None:
            raise OpticalError("RunRecord.save needs an output dir")
        path = target / RUN_JSON
        atomic_write_json(path, self.to_dict())
        return path


def _student_files(value: Any, origin: str) -> dict[str, dict[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("size"), int) and isinstance(v.get("sha256"), str) for v in value.values()
    ):
        raise OpticalError(f"{origin}: student_files must map file names to {{size, sha256}}")
    return value
