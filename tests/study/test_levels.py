"""`optical study levels`: the zero-shot model's held-out alignment per language, resumable, and the spread pick."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from optical.cli import main
from optical.study.levels import LanguageLevel, LevelTable, read_levels

TINY = {"tiny": {"hidden": 32, "layers": 2, "heads": 2, "seed": 3}}


def _config(tmp_path: Path, languages: list[str], backbones: dict | None = None) -> Path:
    raw = {
        "study": "levels",
        "teacher": TINY,
        "languages": languages,
        "methods": ["zero-shot"],
        "seeds": [0],
        "budgets": [64],
        "noises": [0.0],
        "backbones": backbones or {"tiny": TINY},
        "domains": {"news": ["ntrex128"]},
        "base": {"distill": {"device": "cpu", "mixed_precision": "no"}},
    }
    path = tmp_path / f"levels-{len(languages)}.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_levels_resume_and_spread(tmp_path, private_cache_env, capsys):
    out = tmp_path / "levels.tsv"
    assert main(["study", "levels", "--config", str(_config(tmp_path, ["fr", "dz"])), "--out", str(out), "--quiet"]) == 0
    first = read_levels(out)
    assert [level.lang for level in first.levels] == ["fr", "dz"] and first.precision == "no"
    assert all(0.0 <= level.mrr <= 1.0 for level in first.levels)
    # An edited row survives a resumed measurement: only the language added to the config is measured.
    out.write_text(out.read_text(encoding="utf-8").replace(f"fr\t{first.levels[0].mrr:.4f}", "fr\t0.1234"), encoding="utf-8")
    config = _config(tmp_path, ["fr", "dz", "ee"])
    assert main(["study", "levels", "--config", str(config), "--out", str(out), "--quiet", "--spread", "2", "--order"]) == 0
    resumed = read_levels(out)
    assert [level.lang for level in resumed.levels] == ["fr", "dz", "ee"] and resumed.levels[0].mrr == 0.1234
    printed = capsys.readouterr().out
    assert "3 languages measured" in printed and "2 languages spread over the levels" in printed
    assert re.search(r"farthest-first order: \[(fr|dz|ee), (fr|dz|ee), (fr|dz|ee)\]", printed)


def test_levels_refusals(tmp_path, private_cache_env, capsys):
    config = _config(tmp_path, ["fr"])
    other = tmp_path / "other.tsv"
    other.write_text(LevelTable("another-model", "no", (LanguageLevel("fr", 0.5, 0.1),)).to_tsv(), encoding="utf-8")
    broken = tmp_path / "broken.tsv"
    broken.write_text(LevelTable("m", "no", ()).to_tsv() + "fr\tmuch\t0.1\n", encoding="utf-8")
    two = _config(tmp_path, ["fr", "el"], backbones={"a": TINY, "b": TINY})
    cases = [
        (["--config", str(config), "--out", str(other)], "holds levels of another-model"),
        (["--config", str(config), "--out", str(broken)], f"{broken}:8"),
        (["--config", str(config), "--out", str(tmp_path)], "is a directory"),
        (["--config", str(two), "--out", str(tmp_path / "x.tsv")], "--backbone must name one of"),
        (["--config", str(config), "--out", str(tmp_path / "y.tsv"), "--spread", "0"], "--spread must be >= 1"),
    ]
    for arguments, message in cases:
        assert main(["study", "levels", "--quiet", *arguments]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, (arguments, err)


def test_spread_asks_for_no_more_than_measured():
    table = LevelTable("m", "no", (LanguageLevel("fr", 1.0, 0.2),))
    with pytest.raises(Exception, match="between 1 and the 1 languages"):
        table.spread(2)
