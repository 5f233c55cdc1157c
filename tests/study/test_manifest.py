"""The manifest reader accepts every manifest the runner writes and names the field of a damaged one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from optical.errors import OpticalError
from optical.study.manifest import read_manifest

COMMITTED = sorted(Path(__file__).resolve().parents[2].glob("results/*/study.json"))


@pytest.mark.parametrize("path", COMMITTED, ids=[p.parent.name for p in COMMITTED])
def test_every_committed_export_manifest_reads(path):
    manifest = read_manifest(path)
    assert manifest["runs"] and all(entry["eval_dirs"] or entry["distill_dir"] for entry in manifest["runs"])


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda m: m.update(format=2), "format 2"),
        (lambda m: m.update(reference=None), "reference is missing"),
        (lambda m: m["config"].update(n_resamples="many"), "config.n_resamples"),
        (lambda m: m["config"].update(variants={"ot-x": {"lr": 1}}), "config.variants"),
        (lambda m: m["runs"][1].update(eval_dirs={"typo": "runs/x/eval-0"}), "runs[1].eval_dirs has a key"),
        (lambda m: m["runs"][2].update(distill_dir=3), "runs[2].distill_dir"),
        (lambda m: m["runs"].append("run"), "is not an object"),
    ],
)
def test_a_damaged_field_is_named_in_one_line(change, problem, tmp_path):
    manifest = json.loads(COMMITTED[0].read_text(encoding="utf-8"))
    change(manifest)
    path = tmp_path / "study.json"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(OpticalError, match=r"is damaged \(") as err:
        read_manifest(path)
    assert problem in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)
