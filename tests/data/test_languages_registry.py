import pytest

from optical.data.datadir import DATA_DIR_ENV, resolve_data_dir
from optical.data.languages import (
    BITEXT_LANGS,
    LANGUAGES,
    SPECTRUM_LANGS,
    XQUAD_LANGS,
    XQUADR_LANGS,
    canonical_lang,
    has_script,
    mirror_file_code,
    mostly_latin,
    validate_lang,
)
from optical.data.mirror_languages import MIRROR_LANGUAGES
from optical.data.registry import GROUPS, build_file_registry, load_file_registry
from optical.data.sources import LICENSE_CLASSES, SOURCES, bitext_relpath, sources_for
from optical.errors import OpticalError


def test_language_sets():
    assert XQUAD_LANGS == ("ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")
    assert XQUADR_LANGS == tuple(code for code in XQUAD_LANGS if code != "ro")
    scripts = {code: LANGUAGES[code].script for code in XQUAD_LANGS}
    assert scripts["el"] == "Greek" and scripts["ru"] == "Cyrillic" and scripts["th"] == "Thai"
    assert scripts["hi"] == "Devanagari" and scripts["ar"] == "Arabic" and scripts["zh"] == "Han"
    assert not any(LANGUAGES[code].script_checkable for code in ("de", "es", "tr", "vi", "ro", "en"))


def test_validate_lang_messages():
    assert validate_lang("el", XQUADR_LANGS, "XQuAD-R") == "el"
    with pytest.raises(OpticalError, match=r"'ro' \(Romanian\) is not in XQuAD-R; valid codes: ar de el"):
        validate_lang("ro", XQUADR_LANGS, "XQuAD-R")
    with pytest.raises(OpticalError, match="unknown language code 'xx'.*valid codes: ar de el en es hi ro"):
        validate_lang("xx", XQUAD_LANGS, "XQuAD")


def test_script_checks():
    assert has_script("Καλημέρα κόσμε", "Greek") and not has_script("Good morning", "Greek")
    assert has_script("你好", "Han") and has_script("नमस्ते", "Devanagari") and has_script("สวัสดี", "Thai")
    assert mostly_latin("Grüße aus Köln, Tiếng Việt") and mostly_latin("1234 !!")
    assert not mostly_latin("Привет, мир (hello)")


def test_sources_registry_matches_readme():
    assert SOURCES["flores200_devtest"].reserved
    assert [name for name, source in SOURCES.items() if source.reserved] == ["flores200_devtest"]
    assert {s.license_class for s in SOURCES.values()} <= set(LICENSE_CLASSES)
    assert SOURCES["xnli_devtest"].license_class == "non-commercial"
    assert {n for n, s in SOURCES.items() if s.license_class == "research-only"} == {"wmt_newstest", "multi30k_test"}
    assert [s.name for s in sources_for("th")] == ["flores200_devtest", "flores200_sib_dev_extra", "ntrex128", "xnli_devtest"]
    assert "ro" not in SOURCES["xnli_devtest"].languages


def test_committed_file_registry_matches_mirror(mirror_dir):
    committed = load_file_registry()
    assert committed == build_file_registry(mirror_dir)
    assert {entry.group for entry in committed} == set(GROUPS)
    assert all(
        entry.origin_url and entry.origin_url.startswith("https://raw.githubusercontent.com/")
        for entry in committed
        if entry.group != "bitext"
    )
    assert all(entry.origin_url is None and "re-layout" in entry.provenance for entry in committed if entry.group == "bitext")


def test_resolve_data_dir_precedence(mirror_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_DIR_ENV, str(mirror_dir))
    assert resolve_data_dir(None) == mirror_dir
    with pytest.raises(OpticalError, match="does not exist; run `optical data fetch"):
        resolve_data_dir(str(tmp_path / "nowhere"))  # the flag wins over the environment
    monkeypatch.delenv(DATA_DIR_ENV)
    monkeypatch.setenv("OPTICAL_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(OpticalError, match=str(tmp_path / "cache" / "data")):
        resolve_data_dir(None)


def test_resolve_data_dir_incomplete(tmp_path):
    (tmp_path / "xquad").mkdir()
    with pytest.raises(OpticalError, match=r"incomplete \(xquad/xquad.ar.json is missing and 22 more\).*--mirror"):
        resolve_data_dir(tmp_path, require=("xquad", "xquad-r"))


def test_mirror_language_table_matches_the_mirror(mirror_dir):
    """The table every registry entry is derived from names exactly the mirror's files of each content-controlled source."""
    table = {row.file_code for row in MIRROR_LANGUAGES}
    assert len(table) == len(MIRROR_LANGUAGES) == 110
    for source in ("ntrex128", "flores200_sib_dev_extra", "flores200_devtest"):
        on_disk = {
            path.name.removeprefix("en-").removesuffix(".tsv") for path in (mirror_dir / "bitext" / source).glob("en-*.tsv")
        }
        assert on_disk == table, source
        assert {mirror_file_code(lang) for lang in SOURCES[source].languages} == table
    assert len(SPECTRUM_LANGS) == 95 and set(BITEXT_LANGS) == set(SOURCES["ntrex128"].languages)


def test_mirror_language_table_matches_the_mirror_readme(mirror_itself):
    """The mirror's README lists each spectrum language with the NTREX and FLORES codes the table gives it.

    Only the mirror itself carries its README (``optical data fetch`` installs data files), so a clone
    without ``../shared`` beside it skips this one.
    """
    readme = (mirror_itself / "README.md").read_text(encoding="utf-8")
    for row in MIRROR_LANGUAGES:
        if row.file_code in SPECTRUM_LANGS:
            assert f"| {row.file_code} | {row.ntrex} | {row.flores} |" in readme


def test_mirror_codes_that_canonicalise_elsewhere_keep_their_files():
    """kmr and prs are members of a macrolanguage (ku) or a regional variety (fa-AF): same language, the mirror's file."""
    assert canonical_lang("kmr") == "ku" and bitext_relpath("ntrex128", "ku") == "bitext/ntrex128/en-kmr.tsv"
    assert (
        canonical_lang("prs") == "fa-AF" and bitext_relpath("flores200_devtest", "fa-AF") == "bitext/flores200_devtest/en-prs.tsv"
    )
    assert {"ku", "fa-AF", "fa", "ckb"} <= set(BITEXT_LANGS)
    assert validate_lang("kmr_Latn", BITEXT_LANGS, "bitext") == "ku"
