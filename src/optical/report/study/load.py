"""Reading a study dir: its manifest, the evaluation runs it holds and the records of its distillation runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optical.errors import OpticalError
from optical.eval.results import EVAL_JSON, EvalRun
from optical.study.layout import MANIFEST
from optical.study.manifest import read_manifest
from optical.train.record import RunRecord


@dataclass(frozen=True)
class Record:
    """One evaluation run dir of the study with its grid coordinates."""

    lang: str
    method: str
    seed: int | None
    backbone: str
    domain: str | None
    budget: Any
    noise: float | None
    query_noise: float
    run: EvalRun


@dataclass(frozen=True)
class DistillRun:
    """A manifest entry whose distillation finished, with its ``run.json``."""

    entry: dict[str, Any]
    record: RunRecord


@dataclass(frozen=True)
class StudyInputs:
    """Everything the analysis reads from a study dir."""

    study_dir: Path
    manifest: dict[str, Any]
    records: tuple[Record, ...]
    #: Evaluation dirs the manifest names that are not there (yet).
    missing: tuple[str, ...]
    distills: tuple[DistillRun, ...]


def read_study_manifest(study_dir: Path) -> dict[str, Any]:
    manifest_path = study_dir / MANIFEST
    if not manifest_path.is_file():
        raise OpticalError(f"{manifest_path} is missing: {study_dir} is not a study dir (run `optical study run` first)")
    return read_manifest(manifest_path)


def load_study(study_dir: Path, manifest: dict[str, Any]) -> StudyInputs:
    """The evaluations and distillation records of a study; one-line error when no evaluation has finished."""
    records, missing = _load_records(study_dir, manifest)
    distills = _distill_runs(study_dir, manifest)
    if not records:
        raise OpticalError(f"{study_dir} has no finished evaluation yet; run the study first")
    return StudyInputs(study_dir, manifest, tuple(records), tuple(missing), tuple(distills))


def _load_records(study_dir: Path, manifest: dict) -> tuple[list[Record], list[str]]:
    records, missing = [], []
    for entry in manifest["runs"]:
        for noise_text, rel in entry["eval_dirs"].items():
            path = study_dir / rel
            if not (path / EVAL_JSON).is_file():
                missing.append(rel)
                continue
            coordinates = {name: entry[name] for name in ("lang", "method", "seed", "backbone", "domain", "budget", "noise")}
            records.append(Record(**coordinates, query_noise=float(noise_text), run=EvalRun.load(path, with_trec=False)))
    return records, missing


def _distill_runs(study_dir: Path, manifest: dict) -> list[DistillRun]:
    """Each manifest entry with a finished distillation, with its ``run.json``."""
    runs = []
    for entry in manifest["runs"]:
        record = RunRecord.find(study_dir / entry["distill_dir"]) if entry.get("distill_dir") else None
        if record is not None:
            runs.append(DistillRun(entry, record))
    return runs
