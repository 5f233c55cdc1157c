"""The documented pre-training sizes and scripts of the mirror's languages, and how the spectrum report says them."""

from __future__ import annotations

from optical.data.mirror_languages import MIRROR_LANGUAGES
from optical.data.pretraining import CC100_GIB, CC100_TOTAL_GIB, cc100_gib, script
from optical.report.spectrum import pretraining_paragraph


def test_every_size_belongs_to_a_mirror_language_and_fits_the_total():
    codes = {language.file_code for language in MIRROR_LANGUAGES}
    assert set(CC100_GIB) <= codes and len(CC100_GIB) == 81
    assert 0 < sum(CC100_GIB.values()) < CC100_TOTAL_GIB
    assert all(script(language.file_code) for language in MIRROR_LANGUAGES)
    assert cc100_gib("fil") == 3.1 and cc100_gib("yue") is None and script("zh") == "Hans"


def test_the_report_names_the_languages_outside_xlmr():
    text = pretraining_paragraph({"el": 0.99, "dz": 0.02, "yo": 0.8})
    assert "2 of the 3 languages are not among XLM-R's 100 (dz, yo)" in text and "from 0.020 to 0.800" in text
