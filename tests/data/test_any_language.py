"""Any language: codes from langcodes, scripts for the checks, the four truly low-resource languages."""

from __future__ import annotations

import logging
from collections import Counter

import pytest

import optical.cli
import optical.data.languages as languages
from optical.cli import main
from optical.data.bitext import load_flores_devtest, read_bitext_file, read_source
from optical.data.languages import LANGUAGES, canonical_lang, get_language, validate_lang
from optical.data.sources import FLORES_LANGS, SOURCES
from optical.errors import OpticalError


@pytest.fixture(autouse=True)
def only_data_subcommand(monkeypatch):
    monkeypatch.setattr(optical.cli, "_SUBCOMMAND_MODULES", ("data",))


@pytest.mark.parametrize(
    ("code", "canonical", "name", "script"),
    [
        ("sw", "sw", "Swahili", "Latin"),
        ("swh", "sw", "Swahili", "Latin"),
        ("swh_Latn", "sw", "Swahili", "Latin"),
        ("amh_Ethi", "am", "Amharic", "Ethiopic"),
        ("yor_Latn", "yo", "Yoruba", "Latin"),
        ("som", "so", "Somali", "Latin"),
        ("zh-Hant", "zh-Hant", "Chinese (Traditional)", "Han"),
        ("zho_Hans", "zh", "Chinese", "Han"),  # the usual script says nothing: dropped
        ("zho_Hant", "zh-Hant", "Chinese (Traditional)", "Han"),
        ("sr-Latn", "sr-Latn", "Serbian (Latin)", "Latin"),
        ("sr", "sr", "Serbian", "Cyrillic"),
        ("tam", "ta", "Tamil", "Tamil"),
        ("ell_Grek", "el", "Greek", "Greek"),
    ],
)
def test_codes_are_canonicalised_and_named(code, canonical, name, script):
    language = get_language(code)
    assert (language.code, language.name, language.script) == (canonical, name, script)
    assert canonical_lang(code) == canonical


@pytest.mark.parametrize("code", ["xx", "english", "und", "", "e l", "12"])
def test_invalid_codes_are_one_line(code):
    with pytest.raises(OpticalError) as caught:
        get_language(code)
    message = str(caught.value)
    assert "\n" not in message and repr(code) in message and "ISO 639-1/639-3" in message


def test_known_languages_carry_name_and_script():
    assert {code: LANGUAGES[code].script for code in ("sw", "so", "am", "yo")} == {
        "sw": "Latin",
        "so": "Latin",
        "am": "Ethiopic",
        "yo": "Latin",
    }
    assert LANGUAGES["am"].script_checkable and not LANGUAGES["yo"].script_checkable
    assert validate_lang("swh_Latn", FLORES_LANGS, "FLORES-200 devtest") == "sw"
    with pytest.raises(OpticalError, match=r"language 'sw' \(Swahili\) is not in XQuAD-R"):
        validate_lang("sw", ("el", "de"), "XQuAD-R")


def test_low_resource_languages_are_registered(mirror_dir):
    for name in ("flores200_devtest", "flores200_sib_dev_extra", "ntrex128"):
        assert {"sw", "so", "am", "yo"} <= set(SOURCES[name].languages)
    for lang in ("sw", "so", "am", "yo"):
        devtest = load_flores_devtest(mirror_dir, lang)
        assert len(devtest) == 1012 and devtest[0].source == "flores200_devtest"
        assert len(read_source(mirror_dir, "flores200_sib_dev_extra", lang).pairs) == 510
    assert load_flores_devtest(mirror_dir, "swh_Latn") == load_flores_devtest(mirror_dir, "sw")
    amharic = read_source(mirror_dir, "ntrex128", "am")
    assert amharic.report.lines == 1997 and len(amharic.pairs) >= 1990
    with pytest.raises(OpticalError, match="not in the FLORES-200 devtest of the data registry"):
        load_flores_devtest(mirror_dir, "gd")


def test_ethiopic_script_checks_catch_swapped_columns(tmp_path):
    path = tmp_path / "en-am.tsv"
    path.write_text("Good morning.\tእንደምን አደርክ።\nእንደምን አደርክ።\tGood morning.\nHello.\tHello.\n", encoding="utf-8")
    loaded = read_bitext_file(path, "amh_Ethi")
    assert loaded.report.skipped == Counter({"swapped_columns": 1, "wrong_script": 1}) and len(loaded.pairs) == 1


def test_unknown_script_is_said_once_and_the_check_skipped(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(languages, "_WARNED", set())
    path = tmp_path / "en-aaa.tsv"
    path.write_text("Good morning.\tOghena.\nThank you.\tEse.\n", encoding="utf-8")
    assert get_language("aaa").script is None
    with caplog.at_level(logging.WARNING):
        first = read_bitext_file(path, "aaa")
        read_bitext_file(path, "aaa")
    warnings = [r.getMessage() for r in caplog.records if "no script on record" in r.getMessage()]
    assert len(warnings) == 1 and "aaa (Ghotuo)" in warnings[0] and "skipped" in warnings[0]
    assert len(first.pairs) == 2


def test_cli_check_bitext_any_language_and_bad_input(tmp_path, mirror_dir, capsys):
    path = tmp_path / "mine.tsv"
    devtest = load_flores_devtest(mirror_dir, "sw")
    path.write_text(f"{devtest[0].en}\t{devtest[0].foreign}\nGood morning.\tHabari za asubuhi.\n", encoding="utf-8")
    assert main(["data", "check-bitext", str(path), "--lang", "swh_Latn", "--data-dir", str(mirror_dir)]) == 0
    out = capsys.readouterr().out
    assert "2 lines, 2 pairs kept" in out and "1 pairs match it (normalised) and would be dropped from training" in out
    assert main(["data", "check-bitext", str(path), "--lang", "sw", "--data-dir", str(tmp_path / "no-data")]) == 0
    assert "reserved FLORES-200 devtest: not checked" in capsys.readouterr().out  # said, not silently left out
    for argv, expected in (
        ([str(tmp_path / "missing.tsv"), "--lang", "sw"], "does not exist"),
        ([str(tmp_path), "--lang", "sw"], "is a directory"),
        ([str(path), "--lang", "xx"], "'xx' is not a valid language code"),
    ):
        assert main(["data", "check-bitext", *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("optical: error: ") and expected in err, err
