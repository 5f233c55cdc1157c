"""Reading a study's manifest (``study.json``) back for the report and the export, checked in one place.

The runner writes the manifest; the report and the export read it, possibly years later and after a hand edit or a
bad merge. :func:`read_manifest` checks the fields they index, so a damaged manifest is one line naming the file and
the field instead of a ``KeyError`` deep inside a report. (The runner only asks an existing manifest which study it
holds, and the export whether its --out holds an earlier export: neither indexes the runs.)
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

from optical.errors import OpticalError
from optical.storage import load_json_file, path_in_record

#: The manifest layout this version writes and reads.
MANIFEST_FORMAT = 1


class StudyState(StrEnum):
    """A study's ``status`` in its manifest: what the last ``optical study run`` left."""

    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    #: ``--stop-after`` ran out: the runs it started finished, the rest wait for the next run of the same command.
    STOPPED = "stopped"


_REMEDY = "rerun `optical study run` (or `optical study export`), or restore it from git"


def _entry_problem(index: int, entry: Any) -> str | None:
    """What is wrong with run ``index`` of the manifest, or None."""
    if not isinstance(entry, dict):
        return f"runs[{index}] is not an object"
    for key in ("id", "lang", "method", "status", "path"):
        if not isinstance(entry.get(key), str):
            return f"runs[{index}].{key} is missing or not a string"
    if entry.get("distill_dir") is not None and not isinstance(entry["distill_dir"], str):
        return f"runs[{index}].distill_dir is not a string or null"
    eval_dirs = entry.get("eval_dirs")
    if not isinstance(eval_dirs, dict) or not all(isinstance(v, str) for v in eval_dirs.values()):
        return f"runs[{index}].eval_dirs is missing or not an object of paths"
    try:
        [float(noise) for noise in eval_dirs]
    except ValueError:
        return f"runs[{index}].eval_dirs has a key that is no typo rate"
    return None


def manifest_problem(manifest: Any) -> str | None:
    """What keeps ``manifest`` from being read as a study manifest, in a few words, or None when it can be."""
    if not isinstance(manifest, dict):
        return "not a JSON object"
    if manifest.get("format", MANIFEST_FORMAT) != MANIFEST_FORMAT:
        return f"format {manifest['format']!r}, where this version of optical reads format {MANIFEST_FORMAT}"
    for key, kind, name in (("study", str, "a string"), ("config", dict, "an object"), ("resource_groups", dict, "an object")):
        if manifest.get(key) is not None and not isinstance(manifest[key], kind):
            return f"{key} is not {name}"
    config = manifest.get("config") or {}
    n_resamples = config.get("n_resamples", 1)
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        return "config.n_resamples is not a positive integer"
    if not isinstance(config.get("base") or {}, dict):
        return "config.base is not an object"
    variants = config.get("variants") or {}
    if not isinstance(variants, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("method"), str) for v in variants.values()
    ):
        return "config.variants is not an object of variants, each with a method"
    if not isinstance(manifest.get("reference"), dict):
        return "reference is missing or not an object"
    runs = manifest.get("runs")
    if not isinstance(runs, list):
        return "runs is missing or not a list"
    return next(filter(None, (_entry_problem(i, entry) for i, entry in enumerate(runs))), None)


def read_manifest(path: str | Path) -> dict:
    """The manifest at ``path``, checked; a one-line :class:`OpticalError` naming the file and the field otherwise."""
    manifest = load_json_file(path, "study manifest", _REMEDY)
    problem = manifest_problem(manifest)
    if problem:
        raise OpticalError(f"study manifest {path} is damaged ({problem}); {_REMEDY}")
    _check_paths(manifest, Path(path))
    return manifest


def _check_paths(manifest: dict, path: Path) -> None:
    """Every path of every run resolves inside the study dir (the report reads them, the export writes them);
    checked as written, not through links: a study's ``runs/<id>`` are links into the run store."""
    for index, entry in enumerate(manifest["runs"]):
        named = {"path": entry["path"], "distill_dir": entry.get("distill_dir")}
        named.update({f"eval_dirs.{noise}": rel for noise, rel in entry["eval_dirs"].items()})
        for field, value in named.items():
            if value is not None:
                path_in_record(path.parent, value, path, f"runs[{index}].{field}", follow_links=False)
