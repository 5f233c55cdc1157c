"""A compact copy of a study that can be committed, shared and re-analysed.

A study dir links into the run store, which holds student weights, optimizer
checkpoints and the TREC run files of every evaluation (tens of MB each). The
export keeps what the report and any re-analysis of it need, with the same
layout, so ``optical study report EXPORT_DIR`` works on it::

    EXPORT_DIR/
      study.json                          the manifest (store path dropped)
      runs/<id>/distill/run.json          config, data fingerprint, versions, timings, dev history
                                          (all a tuning study has: it evaluates nothing on the test split)
      runs/<id>/eval-<rate>/eval.json     aggregates, config, timings
      runs/<id>/eval-<rate>/per_query/*.tsv.gz   per-query values (qid, measure, value)
      report/                             report.md, report.html, plots/ (rewritten from the copy)

The per-query values are what :mod:`optical.eval.stats` tests are computed
from, so every number of the report can be recomputed from the export alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from optical.errors import OpticalError
from optical.eval.results import EVAL_JSON, EvalRun
from optical.storage import atomic_directory, atomic_write_bytes, atomic_write_json, check_output_dir, output_lock
from optical.study.layout import MANIFEST, RUN_JSON
from optical.study.manifest import read_manifest


@dataclass
class StudyExport:
    out_dir: Path
    evaluations: int
    distill_runs: int
    report_files: list[Path] = field(default_factory=list)


def export_study(
    study_dir: str | Path, out_dir: str | Path, write_report: Callable[[Path], list[Path]] | None = None
) -> StudyExport:
    """Copy the manifest, run summaries and per-query values of ``study_dir`` into ``out_dir``
    (an empty or missing dir, or an earlier export, which is replaced whole).

    ``write_report(dir)`` (e.g. :func:`optical.report.write_study_report`'s files) runs on the copy before it is
    swapped in, so the export and its report appear together or not at all.
    """

    study_dir, out_dir = Path(study_dir), Path(out_dir)
    manifest_path = study_dir / MANIFEST
    if not manifest_path.is_file():
        raise OpticalError(f"{manifest_path} is missing: {study_dir} is not a study dir (run `optical study run` first)")
    check_output_dir(out_dir)
    resolved, study = out_dir.resolve(), study_dir.resolve()
    if resolved == study or study in resolved.parents or resolved in study.parents:
        raise OpticalError(f"--out {out_dir} overlaps the study dir {study_dir}; export into another directory")
    with output_lock(out_dir):  # a second export into the same --out is refused, not interleaved
        if out_dir.exists() and any(out_dir.iterdir()):
            held = _read_manifest(out_dir / MANIFEST) if (out_dir / MANIFEST).is_file() else None
            if held is None or "exported_from" not in held:
                raise OpticalError(f"{out_dir} is not empty and holds no exported study; pick another --out")
        manifest = read_manifest(manifest_path)
        return _export(manifest, study_dir, out_dir, write_report)


def _export(manifest: dict, study_dir: Path, out_dir: Path, write_report: Callable[[Path], list[Path]] | None) -> StudyExport:
    """Build the export of ``manifest`` aside and swap it in whole: a killed export leaves the previous one (or
    nothing) in place, and its temporary directory is removed by the next export."""
    with atomic_directory(out_dir) as building:
        evaluations = distill_runs = 0
        for entry in manifest["runs"]:
            if entry.get("distill_dir"):
                run_json = study_dir / entry["distill_dir"] / RUN_JSON
                if run_json.is_file():
                    atomic_write_bytes(building / entry["distill_dir"] / RUN_JSON, run_json.read_bytes())
                    distill_runs += 1
            for rel in entry["eval_dirs"].values():
                if (study_dir / rel / EVAL_JSON).is_file():
                    EvalRun.load(study_dir / rel, with_trec=False).save(building / rel, compress=True)
                    evaluations += 1
        if not evaluations and not distill_runs:
            raise OpticalError(f"{study_dir} has no finished run yet; run the study first")
        if not evaluations and any(entry["eval_dirs"] for entry in manifest["runs"]):
            # A tuning study evaluates nothing (its runs.json carry the dev scores); any other needs evaluations.
            raise OpticalError(f"{study_dir} has no finished evaluation yet; run the study first")
        atomic_write_json(building / MANIFEST, {**manifest, "store": None, "exported_from": str(study_dir)})
        report_files = write_report(building) if write_report else []
    return StudyExport(out_dir, evaluations, distill_runs, [out_dir / path.relative_to(building) for path in report_files])


def _read_manifest(path: Path) -> dict | None:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return manifest if isinstance(manifest, dict) else None
