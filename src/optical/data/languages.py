"""Languages of XQuAD / XQuAD-R and the writing-system checks used to validate bitext.

XQuAD (Artetxe et al., 2020) covers 12 languages including Romanian; XQuAD-R
(Roy et al., 2020, LAReQA) covers the original 11 (no Romanian).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from optical.errors import OpticalError

XQUAD_LANGS: tuple[str, ...] = ("ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")
XQUADR_LANGS: tuple[str, ...] = tuple(code for code in XQUAD_LANGS if code != "ro")
# Languages with English<TAB>foreign bitext (every XQuAD language but English itself).
BITEXT_LANGS: tuple[str, ...] = tuple(code for code in XQUAD_LANGS if code != "en")

# Letters of each script, as regex character classes over code-point blocks.
_SCRIPT_CLASSES: dict[str, str] = {
    "Latin": "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff",
    "Greek": "\u0370-\u03ff\u1f00-\u1fff",
    "Cyrillic": "\u0400-\u052f",
    "Thai": "\u0e00-\u0e7f",
    "Devanagari": "\u0900-\u097f\ua8e0-\ua8ff",
    "Arabic": "\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff",
    "Han": "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef",
}
_SCRIPT_PATTERNS = {name: re.compile(f"[{chars}]") for name, chars in _SCRIPT_CLASSES.items()}
_LETTER = re.compile(r"[^\W\d_]")
_NON_LATIN_LETTER = re.compile(f"(?![{_SCRIPT_CLASSES['Latin']}])[^\\W\\d_]")


@dataclass(frozen=True)
class Language:
    code: str
    name: str
    script: str
    """Main script; for Latin-script languages no check can tell them from English."""

    @property
    def script_checkable(self) -> bool:
        """Whether the foreign side can be told from English by its letters alone."""
        return self.script != "Latin"


LANGUAGES: dict[str, Language] = {
    lang.code: lang
    for lang in (
        Language("ar", "Arabic", "Arabic"),
        Language("de", "German", "Latin"),
        Language("el", "Greek", "Greek"),
        Language("en", "English", "Latin"),
        Language("es", "Spanish", "Latin"),
        Language("hi", "Hindi", "Devanagari"),
        Language("ro", "Romanian", "Latin"),
        Language("ru", "Russian", "Cyrillic"),
        Language("th", "Thai", "Thai"),
        Language("tr", "Turkish", "Latin"),
        Language("vi", "Vietnamese", "Latin"),
        Language("zh", "Chinese", "Han"),
    )
}


def validate_lang(code: str, allowed: Iterable[str], what: str) -> str:
    """Return ``code`` if it is in ``allowed``; otherwise raise a one-line OpticalError.

    ``what`` names the resource (``"XQuAD-R"``, ``"bitext"``) so that, e.g., asking
    XQuAD-R for Romanian says that ro is not in XQuAD-R rather than that it is unknown.
    """
    allowed = tuple(allowed)
    if code in allowed:
        return code
    valid = " ".join(allowed)
    if code in LANGUAGES:
        raise OpticalError(f"language {code!r} ({LANGUAGES[code].name}) is not in {what}; valid codes: {valid}")
    raise OpticalError(f"unknown language code {code!r} for {what}; valid codes: {valid}")


def count_script_letters(text: str, script: str) -> int:
    return len(_SCRIPT_PATTERNS[script].findall(text))


def count_letters(text: str) -> int:
    return len(_LETTER.findall(text))


def mostly_latin(text: str) -> bool:
    """True when at least half of the letters are Latin (or there are no letters)."""
    if text.isascii() or not _NON_LATIN_LETTER.search(text):  # fast path: nearly every line
        return True
    letters = count_letters(text)
    return letters == 0 or 2 * count_script_letters(text, "Latin") >= letters


def has_script(text: str, script: str) -> bool:
    return _SCRIPT_PATTERNS[script].search(text) is not None
