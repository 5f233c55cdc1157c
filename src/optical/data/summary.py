"""What a data directory holds, per language: XQuAD, XQuAD-R and validated bitext counts.

The 12 XQuAD languages come first, then the truly low-resource ones (sw so am yo), then
the 95 of the resource spectrum: these have bitext (and the reserved FLORES-200 devtest)
but no XQuAD.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from optical.data.bitext import read_source
from optical.data.languages import LANGUAGES, LOW_RESOURCE_LANGS, SPECTRUM_LANGS, XQUAD_LANGS, XQUADR_LANGS
from optical.data.sources import SOURCES, sources_for
from optical.data.xquad import read_xquad, read_xquadr


@dataclass(frozen=True)
class BitextCount:
    source: str
    pairs: int
    """Pairs kept after validation (malformed lines and in-file duplicates dropped)."""
    skipped: int
    license_class: str
    reserved: bool


@dataclass(frozen=True)
class LanguageSummary:
    lang: str
    xquad_questions: int | None
    """None for a language without XQuAD (every language of the mirror but the 12 XQuAD ones)."""
    xquad_paragraphs: int | None
    xquadr_candidates: int | None
    """None for Romanian, which XQuAD-R lacks, and for the languages without XQuAD."""
    bitext: tuple[BitextCount, ...]


@dataclass(frozen=True)
class DataSummary:
    data_dir: Path
    languages: tuple[LanguageSummary, ...]

    def render(self) -> str:
        lines = [
            f"data directory: {self.data_dir}",
            "lang  XQuAD q/para  XQuAD-R cand  bitext pairs by source (license class; * = reserved for evaluation)",
        ]
        for summary in self.languages:
            candidates = "-" if summary.xquadr_candidates is None else str(summary.xquadr_candidates)
            training = sum(count.pairs for count in summary.bitext if not count.reserved)
            if summary.xquad_questions is None:
                xquad = f"{'-':>5}/{'-':<6}"
                name = f" ({LANGUAGES[summary.lang].name}; no XQuAD: FLORES-200 alignment or your own collection)"
            else:
                xquad, name = f"{summary.xquad_questions:>5}/{summary.xquad_paragraphs:<6}", ""
            lines.append(f"{summary.lang:<5} {xquad} {candidates:>12}  {training} trainable pairs{name}")
            for count in summary.bitext:
                mark = "*" if count.reserved else " "
                skipped = f", {count.skipped} lines skipped" if count.skipped else ""
                lines.append(f"{'':<28}{mark}{count.source:<24} {count.pairs:>6}  ({count.license_class}{skipped})")
        return "\n".join(lines)


def summarize(data_dir: str | Path) -> DataSummary:
    data_dir = Path(data_dir)
    languages = []
    for lang in (*XQUAD_LANGS, *LOW_RESOURCE_LANGS, *SPECTRUM_LANGS):
        xquad = read_xquad(data_dir, lang) if lang in XQUAD_LANGS else None
        candidates = read_xquadr(data_dir, lang).num_candidates() if lang in XQUADR_LANGS else None
        counts = []
        if lang != "en":
            for source in sources_for(lang):
                loaded = read_source(data_dir, source.name, lang)
                counts.append(
                    BitextCount(
                        source.name,
                        loaded.report.kept,
                        loaded.report.lines - loaded.report.kept,
                        SOURCES[source.name].license_class,
                        source.reserved,
                    )
                )
        questions, paragraphs = (len(xquad.questions), len(xquad.paragraphs)) if xquad else (None, None)
        languages.append(LanguageSummary(lang, questions, paragraphs, candidates, tuple(counts)))
    return DataSummary(data_dir, tuple(languages))
