"""A run's state in the store: distilled (run.json says completed) and which evaluations exist."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from optical.eval.results import EVAL_JSON
from optical.study.grid import StudyRun
from optical.study.layout import DISTILL_DIR, eval_dir_name
from optical.train.record import RunRecord


@dataclass
class RunStatus:
    run: StudyRun
    path: Path
    distilled: bool
    evaluated: list[float]

    @property
    def done(self) -> bool:
        return (self.run.is_zero_shot or self.distilled) and len(self.evaluated) == len(self.run.query_noises)

    @property
    def label(self) -> str:
        if self.done:
            return "done"
        return "partial" if self.distilled or self.evaluated else "pending"


def run_status(run: StudyRun, run_dir: Path) -> RunStatus:
    distilled = False
    if not run.is_zero_shot:
        record = RunRecord.find(run_dir / DISTILL_DIR)
        distilled = bool(record and record.completed)
    evaluated = [q for q in run.query_noises if (run_dir / eval_dir_name(q) / EVAL_JSON).is_file()]
    return RunStatus(run, run_dir, distilled, evaluated)


def drop_student_weights(run_dir: Path) -> list[Path]:
    """Delete the student's weight files of a run whose evaluations are all done (``keep_weights`` off):
    run.json keeps their sizes and sha256, and evaluating that student again is refused in one line."""
    dropped = sorted((run_dir / DISTILL_DIR / "student").glob("*.safetensors"))
    for path in dropped:
        path.unlink()
    return dropped
