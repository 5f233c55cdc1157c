"""Language codes, names and scripts, and the writing-system checks used to validate bitext and queries.

Any language is accepted: an ISO 639-1 or 639-3 code (``sw``, ``swh``), a BCP-47 tag
with a script subtag (``zh-Hant``, ``sr-Latn``) or a FLORES-200 code (``swh_Latn``).
Codes are validated and named with ``langcodes`` (CLDR / IANA data from
``language-data``), not a hand-kept table, and brought to one canonical form: the
shortest code (``swh`` -> ``sw``, a macrolanguage's member -> the macrolanguage),
with a script subtag only where it is not the language's usual script
(``swh_Latn`` -> ``sw``, ``zho_Hant`` -> ``zh-Hant``).

A language's script comes from the tag or from CLDR's likely subtags. Where CLDR has
no script on record for it, the script checks are skipped (and said so once).

Which languages have which built-in data is a separate, fixed fact: XQuAD (12
languages with Romanian), XQuAD-R (the original 11) and the bitext of the data
mirror: NTREX-128 and both FLORES-200 sets for the 110 languages of
:mod:`optical.data.mirror_languages` (the XQuAD languages, the four truly
low-resource ones sw so am yo, and the 95 of the resource spectrum).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass

import langcodes
import regex
from langcodes.data_dicts import LIKELY_SUBTAGS

from optical.data.mirror_languages import MIRROR_LANGUAGES
from optical.errors import OpticalError

XQUAD_LANGS: tuple[str, ...] = ("ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")
XQUADR_LANGS: tuple[str, ...] = tuple(code for code in XQUAD_LANGS if code != "ro")
#: Truly low-resource languages of the data mirror (NTREX-128, FLORES dev extra and devtest; no XQuAD).
LOW_RESOURCE_LANGS: tuple[str, ...] = ("sw", "so", "am", "yo")

_LOG = logging.getLogger(__name__)
_EXAMPLES = "e.g. sw, swh, zh-Hant, sr-Latn or swh_Latn"
# Tags that are valid BCP-47 but name no language.
_NO_LANGUAGE = {"und", "mul", "zxx", "mis"}
# ISO 15924 codes that are a combination or a variant of Unicode scripts.
_SCRIPT_UNION = {"Hans": ("Hani",), "Hant": ("Hani",), "Jpan": ("Hani", "Hira", "Kana"), "Kore": ("Hang", "Hani")}
# ISO 15924 codes that are no writing system one could check for.
_NOT_A_SCRIPT = {"Zinh", "Zmth", "Zsye", "Zsym", "Zxxx", "Zyyy", "Zzzz"}
_WARNED: set[str] = set()


@dataclass(frozen=True)
class Language:
    code: str
    """Canonical BCP-47 tag (``el``, ``sw``, ``zh-Hant``)."""
    name: str
    """English name from CLDR (``Greek``, ``Chinese (Traditional)``)."""
    script: str | None
    """Name of the main script (``Greek``, ``Han``, ``Ethiopic``); None when none is on record."""
    script_code: str | None = None
    """ISO 15924 code of that script (``Grek``, ``Hani``, ``Ethi``), as the checks use it."""

    @property
    def script_checkable(self) -> bool:
        """Whether the foreign side can be told from English by its letters alone."""
        return self.script_code is not None and self.script_code != "Latn" and script_pattern(self.script_code) is not None

    @property
    def script_known(self) -> bool:
        return self.script_code is not None and script_pattern(self.script_code) is not None


def _invalid(code: str, detail: str = "") -> OpticalError:
    return OpticalError(
        f"{code!r} is not a valid language code{detail}: give an ISO 639-1/639-3 code or a BCP-47 tag ({_EXAMPLES})"
    )


@functools.cache
def get_language(code: str) -> Language:
    """The language of any ISO 639 / BCP-47 / FLORES code, canonicalised; one-line OpticalError if invalid.

    >>> get_language("swh_Latn")
    Language(code='sw', name='Swahili', script='Latin', script_code='Latn')
    >>> get_language("zh-Hant").code, get_language("sr-Latn").script, get_language("am").script
    ('zh-Hant', 'Latin', 'Ethiopic')
    """
    if not isinstance(code, str) or not code.strip():
        raise _invalid(str(code), " (empty)")
    text = code.strip().replace("_", "-")
    try:
        if not langcodes.tag_is_valid(text):
            raise _invalid(code)
        tag = langcodes.Language.get(langcodes.standardize_tag(text, macro=True))
    except (ValueError, LookupError) as exc:  # langcodes raises LanguageTagError (a ValueError)
        raise _invalid(code) from exc
    if tag.language is None or tag.language in _NO_LANGUAGE:
        raise _invalid(code, " (it names no language)")
    bare = langcodes.Language.get(tag.language)
    on_record = _likely_script(tag)
    if tag.script is not None and tag.script == _likely_script(bare):
        tag = tag.update_dict({"script": None})  # the usual script says nothing: swh_Latn -> sw
    script_code = tag.script or on_record
    script_code = "Hani" if script_code in ("Hans", "Hant") else script_code
    script_code = None if script_code in _NOT_A_SCRIPT else script_code
    script_name = langcodes.Language.get(f"und-{script_code}").script_name() if script_code else None
    return Language(tag.to_tag(), tag.display_name(), script_name, script_code)


def _likely_script(tag: langcodes.Language) -> str | None:
    """The script of ``tag``, given or from CLDR likely subtags; None when only the 'und' default would say."""
    if tag.script is not None:
        return tag.script
    for broader in tag.broader_tags():
        if broader in LIKELY_SUBTAGS:
            if broader.split("-")[0] == "und":
                return None
            return langcodes.Language.get(LIKELY_SUBTAGS[broader]).script
    return None


def canonical_lang(code: str) -> str:
    """The canonical tag of ``code`` (``swh_Latn`` -> ``sw``); one-line OpticalError if invalid."""
    return get_language(code).code


def describe(code: str) -> str:
    """``'sw' (Swahili)`` for messages."""
    return f"{code!r} ({get_language(code).name})"


def validate_lang(code: str, allowed: Iterable[str], what: str) -> str:
    """The canonical form of ``code`` if it is in ``allowed``; otherwise a one-line OpticalError.

    ``what`` names the resource (``"XQuAD-R"``, ``"bitext"``) so that, e.g., asking
    XQuAD-R for Romanian says that ro is not in XQuAD-R rather than that it is unknown.
    """
    allowed = tuple(allowed)
    valid = " ".join(allowed)
    try:
        language = get_language(code)
    except OpticalError:
        raise OpticalError(
            f"unknown language code {code!r} for {what} (not ISO 639-1/639-3 or BCP-47); valid codes: {valid}"
        ) from None
    if language.code in allowed:
        return language.code
    raise OpticalError(f"language {code!r} ({language.name}) is not in {what}; valid codes: {valid}")


def warn_once(key: str, message: str) -> None:
    """One warning line on stderr per process and ``key``."""
    if key not in _WARNED:
        _WARNED.add(key)
        _LOG.warning("optical: warning: %s", message)


def warn_unchecked_script(language: Language, what: str) -> None:
    """Say once that ``language`` has no script on record, so ``what`` is skipped."""
    warn_once(
        f"script:{language.code}",
        f"no script on record for {language.code} ({language.name}): {what} skipped; "
        f"give the script in the code (e.g. {language.code.split('-')[0]}-Latn) to enable it",
    )


@functools.cache
def script_pattern(script: str) -> regex.Pattern | None:
    """A pattern matching one letter of ``script`` (an ISO 15924 code or a Unicode script name); None if unknown."""
    parts = _SCRIPT_UNION.get(script, (script,))
    try:
        return regex.compile("[" + "".join(rf"\p{{scx={part}}}" for part in parts) + "]")
    except regex.error:
        return None


_LETTER = regex.compile(r"\p{L}")
_LATIN_LETTER = regex.compile(r"(?=\p{scx=Latn})\p{L}")
_NON_LATIN_LETTER = regex.compile(r"(?!\p{scx=Latn})\p{L}")


def _pattern(script: str) -> regex.Pattern:
    pattern = script_pattern(script)
    if pattern is None:
        raise OpticalError(f"unknown script {script!r}: give an ISO 15924 code (e.g. Grek) or a Unicode script name")
    return pattern


def count_script_letters(text: str, script: str) -> int:
    return len(_pattern(script).findall(text))


def count_letters(text: str) -> int:
    return len(_LETTER.findall(text))


def mostly_latin(text: str) -> bool:
    """True when at least half of the letters are Latin (or there are no letters)."""
    if text.isascii() or not _NON_LATIN_LETTER.search(text):  # fast path: nearly every line
        return True
    letters = count_letters(text)
    return letters == 0 or 2 * len(_LATIN_LETTER.findall(text)) >= letters


def has_script(text: str, script: str) -> bool:
    return _pattern(script).search(text) is not None


def in_language_script(text: str, language: Language) -> bool | None:
    """Whether ``text`` is written in ``language``'s script (None when the script is unknown).

    For a Latin-script language this can only say "mostly Latin".
    """
    if not language.script_known:
        return None
    if language.script_code == "Latn":
        return mostly_latin(text)
    return has_script(text, language.script_code)


#: Canonical code -> the code in the mirror's file names, for every language of the mirror's table. They differ
#: where the file code is a member of a macrolanguage or a regional variety: kmr -> ku, prs -> fa-AF.
MIRROR_FILE_CODES: dict[str, str] = {get_language(row.file_code).code: row.file_code for row in MIRROR_LANGUAGES}
#: The 95 languages of the resource spectrum: the mirror's languages beyond XQuAD and the four above.
SPECTRUM_LANGS: tuple[str, ...] = tuple(
    code for code in MIRROR_FILE_CODES if code not in XQUAD_LANGS and code not in LOW_RESOURCE_LANGS
)
#: Languages with built-in English<TAB>foreign bitext: every XQuAD language but English, the four truly
#: low-resource ones, then the resource spectrum.
BITEXT_LANGS: tuple[str, ...] = tuple(code for code in XQUAD_LANGS if code != "en") + LOW_RESOURCE_LANGS + SPECTRUM_LANGS

LANGUAGES: dict[str, Language] = {code: get_language(code) for code in (*XQUAD_LANGS, *LOW_RESOURCE_LANGS, *SPECTRUM_LANGS)}
"""The languages with built-in data (a convenience view; :func:`get_language` takes any code)."""


def mirror_file_code(lang: str) -> str:
    """The code of ``lang``'s files in the mirror (``ku`` -> ``kmr``); ``lang`` itself for any other language.

    >>> mirror_file_code("ku"), mirror_file_code("el"), mirror_file_code("fa-AF")
    ('kmr', 'el', 'prs')
    """
    return MIRROR_FILE_CODES.get(lang, lang)
