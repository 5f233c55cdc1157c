"""English-foreign bitext: a validating reader and a seeded training-mixture builder.

Reader (:func:`read_bitext_file`): one ``English<TAB>foreign`` pair per line.
Lines are skipped, and counted by reason, when malformed; ``strict=True`` turns
the first malformed line into an :class:`OpticalError` naming ``file:line``.
A UTF-8 BOM at the start of the file and CRLF line ends are accepted
(normalised) and counted. Text is normalised to Unicode NFC with whitespace
runs collapsed; exact duplicate pairs are dropped (counted, not malformed).

Builder (:func:`build_bitext`): mixes sources with per-source caps, filters by
license class, never trains on the reserved FLORES-200 devtest and drops any
pair with a side that matches a devtest sentence after normalisation, subsamples
to a budget, and can inject a known fraction of misaligned pairs (a derangement
of their foreign sides) for robustness studies. Asked to, it also keeps out the
model-selection slice (:func:`selection_slice`: a fixed 200 pairs of the FLORES-200
dev sentences), matched the same way.

A source is a registered name (:data:`optical.data.sources.SOURCES`) or the path
of the user's own ``English<TAB>foreign`` file: the same validation, caps, dedup,
devtest filter, budget and noise apply to it; its license class is ``user`` and
its path and sha256 go into the stats (and so into a run's ``run.json``).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from optical.data.languages import Language, describe, get_language, has_script, mostly_latin, warn_unchecked_script
from optical.data.sources import (
    FLORES_DEVTEST,
    FLORES_LANGS,
    LICENSE_CLASSES,
    REGISTERED_LICENSE_CLASSES,
    SOURCES,
    USER_LICENSE,
    bitext_relpath,
    get_source,
    sources_for,
)
from optical.errors import OpticalError
from optical.storage import sha256_file

MAX_SIDE_CHARS = 2000
"""A side longer than this is not a sentence (a mis-split document or a broken file)."""

# Malformed-line reasons (skipped; an error under strict=True).
TAB_COUNT = "not_one_tab"
EMPTY_SIDE = "empty_side"
INVALID_UTF8 = "invalid_utf8"
TOO_LONG_LINE = "too_long_line"
SWAPPED = "swapped_columns"
WRONG_SCRIPT = "wrong_script"
NUL_BYTE = "nul_byte"
MALFORMED_REASONS = (TAB_COUNT, EMPTY_SIDE, INVALID_UTF8, TOO_LONG_LINE, SWAPPED, WRONG_SCRIPT, NUL_BYTE)
# Filter reasons (valid lines that are not kept).
DUPLICATE = "duplicate"
TOO_SHORT = "too_short"
TOO_LONG = "too_long"

_WHITESPACE = re.compile(r"\s+")
_NOT_WORD = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class BitextPair:
    en: str
    foreign: str
    source: str
    noised: bool = False
    """True when ``foreign`` was deliberately replaced by another pair's foreign side."""


@dataclass(frozen=True)
class LengthFilter:
    """Keep pairs whose English side has ``min_length`` to ``max_length`` units.

    Measured on the English side: whitespace tokens are meaningless for the zh/th
    foreign sides, which have no spaces. ``unit`` is ``"tokens"`` or ``"chars"``.
    """

    min_length: int = 1
    max_length: int | None = None
    unit: str = "tokens"

    def __post_init__(self) -> None:
        if self.unit not in ("tokens", "chars"):
            raise OpticalError(f"length unit must be 'tokens' or 'chars', not {self.unit!r}")
        if self.min_length < 0 or (self.max_length is not None and self.max_length < self.min_length):
            raise OpticalError(f"bad length range {self.min_length}..{self.max_length}; need 0 <= min <= max")

    def verdict(self, english: str) -> str | None:
        length = len(english.split()) if self.unit == "tokens" else len(english)
        if length < self.min_length:
            return TOO_SHORT
        if self.max_length is not None and length > self.max_length:
            return TOO_LONG
        return None


@dataclass
class ValidationReport:
    path: Path
    lines: int = 0
    kept: int = 0
    skipped: Counter = field(default_factory=Counter)
    """Reason -> number of lines not kept (malformed reasons and filters)."""
    bom_stripped: bool = False
    crlf_lines: int = 0

    @property
    def malformed(self) -> int:
        return sum(self.skipped[reason] for reason in MALFORMED_REASONS)

    def render(self) -> str:
        lines = [f"{self.path}: {self.lines} lines, {self.kept} pairs kept"]
        for reason in (*MALFORMED_REASONS, DUPLICATE, TOO_SHORT, TOO_LONG):
            if self.skipped[reason]:
                lines.append(f"  skipped {reason}: {self.skipped[reason]}")
        if self.bom_stripped:
            lines.append("  accepted: UTF-8 BOM at file start (stripped)")
        if self.crlf_lines:
            lines.append(f"  accepted: {self.crlf_lines} CRLF line ends (normalised)")
        return "\n".join(lines)


@dataclass(frozen=True)
class BitextFile:
    pairs: list[BitextPair]
    report: ValidationReport


def normalize_text(text: str) -> str:
    """NFC and single spaces: the form every kept pair is stored in."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def overlap_key(text: str) -> str:
    """Key for devtest-overlap detection: NFKC, casefolded, no quotes/punctuation/whitespace."""
    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", text).casefold())


def bitext_language(lang: str) -> Language:
    """The foreign language of a bitext file: any valid code but English (one-line OpticalError otherwise)."""
    language = get_language(lang)
    if language.code.split("-")[0] == "en":
        raise OpticalError(
            f"language {describe(lang)} is not in bitext: bitext pairs English with another language; give --lang XX"
        )
    return language


def check_bitext_path(path: str | Path) -> Path:
    """``path`` if it is a readable file; otherwise a one-line OpticalError saying what to give instead."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise OpticalError(f"bitext path {path} is a directory; give the path of an English<TAB>foreign .tsv file")
    if not path.exists():
        raise OpticalError(f"bitext file {path} does not exist; give the path of an English<TAB>foreign .tsv file")
    if not path.is_file():
        raise OpticalError(f"bitext path {path} is not a regular file; give the path of an English<TAB>foreign .tsv file")
    return path


def _script_problem(english: str, foreign: str, language: Language) -> str | None:
    english_ok = mostly_latin(english)
    if not language.script_known:  # nothing to compare the foreign side with (said once on reading)
        return None if english_ok else WRONG_SCRIPT
    if language.script_checkable:
        foreign_ok = has_script(foreign, language.script_code)
        if not english_ok and not foreign_ok and has_script(english, language.script_code):
            return SWAPPED
        if not english_ok or not foreign_ok:
            return WRONG_SCRIPT
        return None
    # Latin-script language: both sides look alike, only "English side is Latin" can be checked.
    return None if english_ok and mostly_latin(foreign) else WRONG_SCRIPT


def read_bitext_file(
    path: str | Path, lang: str, source: str | None = None, strict: bool = False, length: LengthFilter | None = None
) -> BitextFile:
    """Read and validate an ``English<TAB>foreign`` file of any source (or any path), for any language."""
    language = bitext_language(lang)
    path = check_bitext_path(path)
    if not language.script_known:
        warn_unchecked_script(language, "the script and swapped-columns checks of the foreign side are")
    source = source or path.parent.name
    raw = path.read_bytes()
    _refuse_encoding(path, raw)
    report = ValidationReport(path)
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
        report.bom_stripped = True
    pairs: list[BitextPair] = []
    seen: set[tuple[str, str]] = set()

    def skip(line_number: int, reason: str, detail: str) -> None:
        if strict and reason in MALFORMED_REASONS:
            raise OpticalError(f"{path}:{line_number}: {reason} ({detail}); fix the line or drop --strict")
        report.skipped[reason] += 1

    raw_lines = raw.split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    for line_number, raw_line in enumerate(raw_lines, start=1):
        report.lines += 1
        if raw_line.endswith(b"\r"):
            raw_line = raw_line[:-1]
            report.crlf_lines += 1
        try:
            line = raw_line.decode("utf-8")
        except UnicodeDecodeError as exc:
            skip(line_number, INVALID_UTF8, f"byte {exc.start}")
            continue
        if "\0" in line:  # no sentence holds a NUL: the line is binary debris, whatever its tabs say
            skip(line_number, NUL_BYTE, f"NUL byte at column {line.index(chr(0)) + 1}")
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            skip(line_number, TAB_COUNT, f"{len(fields) - 1} tabs, expected 1")
            continue
        english, foreign = normalize_text(fields[0]), normalize_text(fields[1])
        if not english or not foreign:
            skip(line_number, EMPTY_SIDE, "English side empty" if not english else "foreign side empty")
            continue
        if max(len(english), len(foreign)) > MAX_SIDE_CHARS:
            skip(line_number, TOO_LONG_LINE, f"a side has over {MAX_SIDE_CHARS} characters")
            continue
        problem = _script_problem(english, foreign, language)
        if problem:
            skip(line_number, problem, f"English side must be Latin script, foreign side {language.script or 'any'}")
            continue
        if length is not None:
            verdict = length.verdict(english)
            if verdict:
                skip(line_number, verdict, "")
                continue
        if (english, foreign) in seen:
            skip(line_number, DUPLICATE, "")
            continue
        seen.add((english, foreign))
        pairs.append(BitextPair(english, foreign, source))
    report.kept = len(pairs)
    return BitextFile(pairs, report)


def _refuse_encoding(path: Path, raw: bytes) -> None:
    """Refuse a file that is not UTF-8 text at all (gzip, UTF-16), saying so: read line by line, every line of it
    would be skipped and the remedy offered would be one for a filter."""
    if raw.startswith(b"\x1f\x8b"):
        raise OpticalError(f"bitext file {path} is gzip-compressed; decompress it (gunzip) and pass the .tsv")
    head = raw[:4096]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or (head and head.count(b"\x00") * 4 >= len(head)):
        raise OpticalError(f"bitext file {path} is UTF-16 text, not UTF-8; save it as UTF-8 (e.g. iconv -f UTF-16 -t UTF-8)")


def read_source(
    data_dir: str | Path, source: str, lang: str, strict: bool = False, length: LengthFilter | None = None
) -> BitextFile:
    """Read ``bitext/<source>/en-<lang>.tsv`` of a data directory."""
    lang = bitext_language(lang).code
    registered = get_source(source)
    if lang not in registered.languages:
        raise OpticalError(
            f"bitext source {source} has no en-{lang} pairs; sources with {lang}: {' '.join(s.name for s in sources_for(lang))}"
        )
    return read_bitext_file(Path(data_dir) / bitext_relpath(source, lang), lang, source, strict, length)


def load_flores_devtest(data_dir: str | Path, lang: str) -> list[BitextPair]:
    """The reserved FLORES-200 devtest pairs for alignment evaluation: 1012, line order, no dedup."""
    lang = get_language(lang).code
    if lang not in FLORES_LANGS:
        raise OpticalError(
            f"language {describe(lang)} is not in the FLORES-200 devtest of the data registry; "
            f"valid codes: {' '.join(FLORES_LANGS)}"
        )
    path = Path(data_dir) / bitext_relpath(FLORES_DEVTEST, lang)
    if not path.is_file():
        raise OpticalError(f"{path} is missing; run `optical data fetch --only bitext`")
    pairs = []
    for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
            raise OpticalError(f"{path}:{line_number}: not an English<TAB>foreign pair; re-fetch the data")
        pairs.append(BitextPair(normalize_text(fields[0]), normalize_text(fields[1]), FLORES_DEVTEST))
    return pairs


def flores_base(lang: str) -> str | None:
    """The FLORES-200 devtest language that ``lang`` is a variant of (``el-GR`` -> ``el``, ``zh-Hant`` -> ``zh``),
    or None: a region or script subtag does not make the reserved set another one."""
    code = get_language(lang).code
    for candidate in (code, code.split("-")[0]):
        if candidate in FLORES_LANGS:
            return candidate
    return None


def reserved_keys(data_dir: str | Path, lang: str) -> set[str]:
    """Overlap keys of the reserved FLORES-200 devtest that a training pair of ``lang`` must not match: its
    English side (the same 1012 sentences in every language's file, so whatever tag the user gives) and the
    foreign side of the devtest of ``lang``'s base language."""
    base = flores_base(lang)
    english_from = base or next(
        (code for code in FLORES_LANGS if (Path(data_dir) / bitext_relpath(FLORES_DEVTEST, code)).is_file()), None
    )
    devtest = load_flores_devtest(data_dir, english_from) if english_from is not None else []
    keys = {overlap_key(pair.en) for pair in devtest}
    if base is not None:
        keys |= {overlap_key(pair.foreign) for pair in devtest}
    return keys - {""}


def devtest_overlap(data_dir: str | Path, lang: str, pairs: list[BitextPair]) -> int:
    """How many of ``pairs`` have a side matching the reserved FLORES-200 devtest (training drops them)."""
    keys = reserved_keys(data_dir, lang)
    return sum(overlap_key(p.en) in keys or overlap_key(p.foreign) in keys for p in pairs)


#: The source and size of the fixed slice held out for model selection (:func:`selection_slice`).
SELECTION_SOURCE = "flores200_sib_dev_extra"
SELECTION_PAIRS = 200


def selection_slice(data_dir: str | Path, lang: str) -> list[BitextPair]:
    """The fixed pairs of FLORES-200 dev (:data:`SELECTION_SOURCE`) held out of training to select a checkpoint on.

    Every language of the mirror has them, so a language without XQuAD can select on alignment too. The slice is
    the same for every run of a language (a sample seeded by the language alone, in file order), and it never
    contains a pair with a side matching the reserved FLORES-200 devtest: selection never sees the evaluation set.
    """
    lang = bitext_language(lang).code
    if lang not in get_source(SELECTION_SOURCE).languages:
        raise OpticalError(
            f"language {describe(lang)} has no {SELECTION_SOURCE} pairs to hold out for selection; "
            "use --select-on none (keep the last step) or xquad_dev"
        )
    reserved = reserved_keys(data_dir, lang)
    pairs = [
        p
        for p in read_source(data_dir, SELECTION_SOURCE, lang).pairs
        if overlap_key(p.en) not in reserved and overlap_key(p.foreign) not in reserved
    ]
    if len(pairs) < SELECTION_PAIRS:
        raise OpticalError(
            f"{SELECTION_SOURCE} has {len(pairs)} usable en-{lang} pairs, fewer than the {SELECTION_PAIRS} to hold out"
        )
    chosen = sorted(random.Random(f"selection-slice:{lang}").sample(range(len(pairs)), SELECTION_PAIRS))
    return [pairs[i] for i in chosen]


@dataclass(frozen=True)
class BitextConfig:
    lang: str
    sources: tuple[str, ...] | None = None
    """Sources to mix, in priority order (a pair found in two keeps the first): registered names
    or paths of the user's own TSV files; None: every non-reserved registered source of ``lang``
    whose license class is allowed."""
    caps: dict[str, int] = field(default_factory=dict)
    """Source (name or path, as given) -> most pairs taken from it (seeded subsample)."""
    license_classes: tuple[str, ...] = LICENSE_CLASSES
    """Allowed license classes. A user file (class ``user``) is allowed when ``user`` is listed,
    or when every registered class is (no restriction asked for)."""
    budget: int | None = None
    """Number of pairs in the mixture; None takes every usable pair."""
    seed: int = 13
    noise_fraction: float = 0.0
    """Fraction of pairs whose foreign side is swapped with another noised pair's."""
    min_length: int = 1
    max_length: int | None = None
    length_unit: str = "tokens"
    strict: bool = False
    """Refuse a user file on its first malformed line (registered sources are always lenient)."""
    hold_out_selection: bool = False
    """Keep out every pair with a side matching the selection slice (:func:`selection_slice`)."""


def _why_no_pairs(counts: dict[str, dict], lang: str) -> str:
    """What took every line, in words, with the remedy that fits it (a wrong language is not a filter to relax)."""
    read = sum(c["read"] for c in counts.values())
    if not read:
        return "the files are empty; pass files with English<TAB>foreign lines"
    skipped: dict[str, int] = {}
    for c in counts.values():
        for reason, count in c["skipped"].items():
            skipped[reason] = skipped.get(reason, 0) + count
    reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(skipped.items(), key=lambda kv: -kv[1]))
    what = f"{read} lines read" + (f", skipped: {reasons}" if reasons else "")
    reserved = sum(c["devtest_overlap"] for c in counts.values())
    if reserved and reserved >= sum(skipped.values()):
        return (
            f"{what}, {reserved} pairs matching the reserved FLORES-200 devtest (the alignment evaluation set, never "
            "trained on); give bitext other than the evaluation set"
        )
    remedies = {
        WRONG_SCRIPT: f"the foreign side is not in {lang}'s script: check --lang and the file",
        SWAPPED: "the columns are swapped: put the English side first (English<TAB>foreign)",
        INVALID_UTF8: "the file is not UTF-8: save it as UTF-8",
        NUL_BYTE: "the lines hold NUL bytes: the file is binary or damaged, export it again as text",
        TAB_COUNT: "the lines are not English<TAB>foreign pairs: give one tab per line",
        EMPTY_SIDE: "a side of each line is empty: give English<TAB>foreign pairs",
        TOO_LONG_LINE: f"every line has a side over {MAX_SIDE_CHARS} characters: split the text into sentences",
    }
    if skipped and max(skipped, key=skipped.get) in remedies:
        return f"{what}; {remedies[max(skipped, key=skipped.get)]}"
    return f"{what}; relax the length filter, caps or license classes"


@dataclass(frozen=True)
class SourceStats:
    read: int
    malformed: int
    filtered: int
    """Dropped by the length filter or as duplicates within the file."""
    devtest_overlap: int
    """Pairs dropped because a side matches a reserved FLORES-200 devtest sentence (normalised), or, when the
    selection slice is held out, one of its sentences."""
    cross_source_duplicates: int
    after_cap: int
    selected: int
    license_class: str = ""
    skipped: dict[str, int] = field(default_factory=dict)
    """Reason -> lines not kept while reading (malformed reasons, length filter, in-file duplicates)."""
    path: str | None = None
    """Absolute path of a user file (None for a registered source)."""
    sha256: str | None = None
    """sha256 of a user file's bytes (None for a registered source)."""


@dataclass(frozen=True)
class BitextStats:
    per_source: dict[str, SourceStats]
    available: int
    """Usable pairs after filters and caps (the most ``budget`` may ask for)."""
    selected: int
    noised: int


@dataclass(frozen=True)
class Bitext:
    config: BitextConfig
    pairs: list[BitextPair]
    stats: BitextStats
    noised_indices: tuple[int, ...]
    fingerprint: str
    """sha256 over the final pairs (in order) and the config: a cache key for downstream steps."""


@dataclass(frozen=True)
class _Source:
    key: str
    """The name or path as given (the key of caps and stats, and each pair's ``source``)."""
    license_class: str
    path: Path | None = None
    """A user file's path (None for a registered source)."""


def is_user_file(name: str) -> bool:
    """Whether a ``--bitext`` entry is a file path rather than a registered source name."""
    return name not in SOURCES


def _user_allowed(license_classes: tuple[str, ...]) -> bool:
    return USER_LICENSE in license_classes or set(REGISTERED_LICENSE_CLASSES) <= set(license_classes)


def check_license_classes(classes: Iterable[str]) -> None:
    """Refuse an empty list of licence classes, or one that names an unknown class, with one line."""
    classes = list(classes)
    if not classes:
        raise OpticalError(f"license_classes is empty; give one or more of {', '.join(LICENSE_CLASSES)}")
    unknown = [c for c in classes if c not in LICENSE_CLASSES]
    if unknown:
        raise OpticalError(f"unknown license class {unknown[0]!r}; classes: {', '.join(LICENSE_CLASSES)}")


def _chosen_sources(config: BitextConfig, lang: str) -> list[_Source]:
    check_license_classes(config.license_classes)
    allowed = tuple(config.license_classes)
    if config.sources is None:
        chosen = [_Source(s.name, s.license_class) for s in sources_for(lang) if not s.reserved and s.license_class in allowed]
        if not chosen:
            raise OpticalError(
                f"no registered bitext source for {lang} has an allowed license class ({' '.join(allowed)}); "
                "give your own English<TAB>foreign file with --bitext PATH"
            )
        return chosen
    if not config.sources:
        raise OpticalError("no bitext sources given; name registered sources or TSV files (e.g. ntrex128,path/to/file.tsv)")
    result = []
    for name in config.sources:
        name = str(name)
        if is_user_file(name):
            if not any(sep in name for sep in ("/", "\\")) and not name.endswith((".tsv", ".txt")) and not Path(name).exists():
                get_source(name)  # neither a source nor anything path-like: the unknown-source error
            path = check_bitext_path(name)
            if not _user_allowed(allowed):
                raise OpticalError(
                    f"bitext file {name} is license class {USER_LICENSE}; allowed license classes: {' '.join(allowed)} "
                    f"(add {USER_LICENSE} to --licenses to train on it)"
                )
            result.append(_Source(name, USER_LICENSE, path.resolve()))
            continue
        source = get_source(name)
        if source.reserved:
            raise OpticalError(
                f"{name} is the reserved alignment evaluation set and cannot be a training source; remove it from the sources"
            )
        if source.license_class not in allowed:
            raise OpticalError(
                f"bitext source {name} is {source.license_class} ({source.license}); allowed license classes: {' '.join(allowed)}"
            )
        if lang not in source.languages:
            raise OpticalError(
                f"bitext source {name} has no en-{lang} pairs; sources with {lang}: "
                f"{' '.join(s.name for s in sources_for(lang) if not s.reserved) or '(none; give your own TSV file)'}"
            )
        result.append(_Source(name, source.license_class))
    keys = [source.key for source in result]
    if len(set(keys)) != len(keys) or len({s.path for s in result if s.path}) != sum(1 for s in result if s.path):
        raise OpticalError(f"bitext sources repeat: {' '.join(keys)}")
    for name in config.caps:
        if name not in keys:
            raise OpticalError(f"cap given for {name}, which is not among the sources {' '.join(keys)}")
    return result


def _derange_foreign(pairs: list[BitextPair], count: int, rng: random.Random) -> tuple[list[BitextPair], tuple[int, ...]]:
    """Give ``count`` pairs the foreign side of another chosen pair (a cyclic shift: no fixed point).

    Only pairs whose English and foreign sides are both unique in the mixture are chosen,
    so a shifted foreign side can never be the true (or an equivalent) translation.
    """
    english_counts = Counter(pair.en for pair in pairs)
    foreign_counts = Counter(pair.foreign for pair in pairs)
    eligible = [i for i, p in enumerate(pairs) if english_counts[p.en] == 1 and foreign_counts[p.foreign] == 1]
    if count > len(eligible):
        raise OpticalError(f"noise needs {count} pairs with unique sides but only {len(eligible)} exist; lower noise_fraction")
    chosen = rng.sample(eligible, count)  # random order = random cycle
    noised = list(pairs)
    for position, index in enumerate(chosen):
        donor = pairs[chosen[(position + 1) % count]]
        noised[index] = BitextPair(pairs[index].en, donor.foreign, pairs[index].source, noised=True)
    return noised, tuple(sorted(chosen))


def _fingerprinted(config: BitextConfig) -> dict:
    """The config fields that can change the pairs (``strict`` only refuses or not); ``hold_out_selection`` only
    where it is set, so mixtures built before it existed keep their fingerprints."""
    values = asdict(config)
    del values["strict"]
    if not config.hold_out_selection:
        del values["hold_out_selection"]
    return values


def build_bitext(data_dir: str | Path, config: BitextConfig) -> Bitext:
    """Build a seeded, license-filtered, devtest-clean training mixture for ``config.lang``."""
    lang = bitext_language(config.lang).code
    if not 0.0 <= config.noise_fraction < 1.0:
        raise OpticalError(f"noise_fraction must be in [0, 1), not {config.noise_fraction}")
    length = LengthFilter(config.min_length, config.max_length, config.length_unit)
    chosen = _chosen_sources(config, lang)
    sources = [source.key for source in chosen]

    # Languages without a FLORES-200 devtest in the registry have no reserved set to keep out.
    reserved = reserved_keys(data_dir, lang)
    if config.hold_out_selection:
        reserved |= {overlap_key(text) for pair in selection_slice(data_dir, lang) for text in (pair.en, pair.foreign)} - {""}

    seen: set[tuple[str, str]] = set()
    pool: list[BitextPair] = []
    counts: dict[str, dict[str, int]] = {}
    for source in chosen:
        name = source.key
        cap = config.caps.get(name)
        if cap is not None and cap < 0:
            raise OpticalError(f"cap for {name} must be >= 0, not {cap}")
        if source.path is None:
            loaded = read_source(data_dir, name, lang, length=length)
            provenance: dict = {}
        else:
            loaded = read_bitext_file(source.path, lang, source=name, strict=config.strict, length=length)
            provenance = dict(path=str(source.path), sha256=sha256_file(source.path))
        clean = [p for p in loaded.pairs if overlap_key(p.en) not in reserved and overlap_key(p.foreign) not in reserved]
        fresh = [p for p in clean if (p.en, p.foreign) not in seen]
        seen.update((p.en, p.foreign) for p in fresh)
        capped = fresh
        if cap is not None and cap < len(fresh):
            keep = sorted(random.Random(f"{config.seed}:cap:{name}").sample(range(len(fresh)), cap))
            capped = [fresh[i] for i in keep]
        pool.extend(capped)
        report = loaded.report
        counts[name] = dict(
            read=report.lines,
            malformed=report.malformed,
            filtered=report.lines - report.malformed - report.kept,
            devtest_overlap=len(loaded.pairs) - len(clean),
            cross_source_duplicates=len(clean) - len(fresh),
            after_cap=len(capped),
            license_class=source.license_class,
            skipped={reason: count for reason, count in sorted(report.skipped.items()) if count},
            **provenance,
        )

    if not pool:
        raise OpticalError(f"no usable en-{lang} pairs in {' '.join(sources)}: {_why_no_pairs(counts, lang)}")
    budget = len(pool) if config.budget is None else config.budget
    if budget > len(pool) or budget <= 0:
        raise OpticalError(
            f"budget {config.budget} is not available: {len(pool)} usable en-{lang} pairs "
            f"in {' '.join(sources)}; ask for 1..{len(pool)}"
        )
    rng = random.Random(f"{config.seed}:mixture:{lang}")
    pairs = rng.sample(pool, budget)  # seeded subsample, in seeded random order

    noise_count = round(config.noise_fraction * len(pairs))
    if noise_count == 1:
        raise OpticalError(
            f"noise_fraction {config.noise_fraction} of {len(pairs)} pairs noises 1 pair, "
            "which cannot be misaligned with itself; use a fraction giving 0 or >= 2 pairs"
        )
    noised_indices: tuple[int, ...] = ()
    if noise_count:
        pairs, noised_indices = _derange_foreign(pairs, noise_count, random.Random(f"{config.seed}:noise"))

    selected = Counter(pair.source for pair in pairs)
    per_source = {name: SourceStats(**values, selected=selected[name]) for name, values in counts.items()}
    stats = BitextStats(per_source, available=len(pool), selected=len(pairs), noised=len(noised_indices))
    payload = json.dumps(
        [_fingerprinted(config), [[p.en, p.foreign, p.source, p.noised] for p in pairs]], ensure_ascii=False, sort_keys=True
    )
    fingerprint = hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]
    return Bitext(config, pairs, stats, noised_indices, fingerprint)
