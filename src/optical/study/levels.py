"""How well the zero-shot encoder knows each language of a study, on the dev criterion (issue 27, items 3 and 4).

The spectrum study needs languages chosen *before* any distillation and without the evaluation set: the tuning
languages (one well known, one mid, one barely seen) and the languages that get three seeds (spread over the
spectrum). The level of a language is what its runs' selection sees at step 0: the zero-shot student's
held-out alignment (:class:`~optical.train.selection.AlignmentSelector`: mean of x->en and en->x MRR@10 on the 200
FLORES dev pairs training keeps out, never FLORES devtest), the student encoding in the study's training precision
and the teacher the English side. :func:`measure_levels` writes one row per language to a TSV as it goes, so a
killed measurement resumes where it stopped; :meth:`LevelTable.spread` picks languages evenly spaced in level.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from optical.errors import OpticalError
from optical.storage import atomic_write_text

COLUMNS = ("lang", "heldout_mrr@10", "heldout_margin")
MODEL_LINE = "# model: "
#: The smallest distance from the ceiling (1 − MRR) told apart: one of the 400 queries (200 pairs, both directions)
#: ranking its translation second costs 0.5 / 400 = 1.25e-3.
CEILING_RESOLUTION = 1e-3


@dataclass(frozen=True)
class LanguageLevel:
    """One language's zero-shot held-out alignment: MRR@10 (both directions' mean) and the hardest-negative margin."""

    lang: str
    mrr: float
    margin: float

    @property
    def headroom(self) -> float:
        """log10 of the distance from the ceiling (1 − MRR, at least :data:`CEILING_RESOLUTION`): the scale languages
        are spread on. Most languages an encoder knows crowd within 0.01 of 1.0 and a few it barely saw lie far
        below; on this scale both the crowd and the tail are spread out."""
        return math.log10(max(1.0 - self.mrr, CEILING_RESOLUTION))


@dataclass(frozen=True)
class LevelTable:
    """The levels of one zero-shot model, in measurement order."""

    model: str
    precision: str
    levels: tuple[LanguageLevel, ...]

    @property
    def languages(self) -> set[str]:
        return {level.lang for level in self.levels}

    def spread(self, count: int) -> list[LanguageLevel]:
        """``count`` languages evenly spaced in :attr:`~LanguageLevel.headroom` between the lowest and the highest
        level, lowest level first. Each target takes the nearest language not yet taken (ties: measured earlier).

        Spacing by rank would pick mostly languages at the ceiling and spacing by level mostly the few far below it.

        >>> table = LevelTable("m", "no", tuple(LanguageLevel(name, v, 0.0) for name, v in
        ...     [("a", 0.999), ("b", 0.99), ("c", 1.0), ("d", 0.9), ("e", 0.02), ("f", 0.97)]))
        >>> [level.lang for level in table.spread(4)]
        ['e', 'd', 'b', 'c']
        """
        if not 1 <= count <= len(self.levels):
            raise OpticalError(f"--spread must be between 1 and the {len(self.levels)} languages measured, got {count}")
        low, high = max(level.headroom for level in self.levels), min(level.headroom for level in self.levels)
        targets = [low + (high - low) * i / max(1, count - 1) for i in range(count)]
        left, chosen = list(self.levels), []
        for target in targets:
            nearest = min(left, key=lambda level: abs(level.headroom - target))
            left.remove(nearest)
            chosen.append(nearest)
        return sorted(chosen, key=lambda level: level.mrr)

    def farthest_first(self) -> list[LanguageLevel]:
        """Every language, ordered so that each prefix spreads over the levels: the lowest level first, then each
        time the language farthest in :attr:`~LanguageLevel.headroom` from those already listed (ties: measured
        earlier).

        A study listing its languages in this order runs them in it, so a slice cut off after any number of
        languages still spans the spectrum instead of stopping at one end of it.

        >>> table = LevelTable("m", "no", tuple(LanguageLevel(name, v, 0.0) for name, v in
        ...     [("a", 0.999), ("b", 0.99), ("c", 1.0), ("d", 0.9), ("e", 0.02), ("f", 0.97)]))
        >>> [level.lang for level in table.farthest_first()]
        ['e', 'c', 'f', 'd', 'b', 'a']
        """
        if not self.levels:
            return []
        left = list(self.levels)
        first = min(left, key=lambda level: level.mrr)
        left.remove(first)
        ordered = [first]
        while left:
            chosen = max(left, key=lambda level: min(abs(level.headroom - other.headroom) for other in ordered))
            left.remove(chosen)
            ordered.append(chosen)
        return ordered

    def to_tsv(self) -> str:
        header = [
            "# Zero-shot held-out alignment per language (optical study levels): the selection slice of each language",
            "# (200 FLORES dev pairs that training keeps out; never FLORES devtest), the model encoding the foreign side in",
            "# the study's training precision and the English side in fp32; mean of x->en and en->x MRR@10, and the",
            "# mean hardest-negative cosine margin. Measured before any distillation.",
            f"{MODEL_LINE}{self.model}",
            f"# precision: {self.precision}",
            "\t".join(COLUMNS),
        ]
        rows = [f"{level.lang}\t{level.mrr:.4f}\t{level.margin:.4f}" for level in self.levels]
        return "\n".join(header + rows) + "\n"


def read_levels(path: Path) -> LevelTable:
    """The table written by :func:`measure_levels` (or an earlier one with the same columns), checked line by line."""
    model, precision, levels = "", "", []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise OpticalError(f"cannot read {path}: {exc}; remove it to measure anew") from None
    header_seen = False
    for number, line in enumerate(lines, start=1):
        if line.startswith(MODEL_LINE):
            model = line.removeprefix(MODEL_LINE).strip()
        elif line.startswith("# precision: "):
            precision = line.removeprefix("# precision: ").strip()
        elif line.startswith("#") or not line.strip():
            continue
        elif not header_seen:
            if tuple(line.split("\t")) != COLUMNS:
                raise OpticalError(f"{path}:{number}: expected the header {' '.join(COLUMNS)}; remove the file to measure anew")
            header_seen = True
        else:
            levels.append(_parse_row(path, number, line))
    return LevelTable(model, precision, tuple(levels))


def _parse_row(path: Path, number: int, line: str) -> LanguageLevel:
    fields = line.split("\t")
    try:
        lang, mrr, margin = fields[0], float(fields[1]), float(fields[2])
    except (IndexError, ValueError):
        raise OpticalError(f"{path}:{number}: expected lang, MRR and margin separated by tabs, got {line[:80]!r}") from None
    if len(fields) != 3 or not 0.0 <= mrr <= 1.0 or not math.isfinite(margin):
        raise OpticalError(f"{path}:{number}: expected 3 fields with an MRR in [0, 1], got {line[:80]!r}")
    return LanguageLevel(lang, mrr, margin)


def measure_levels(
    model: str,
    languages: Sequence[str],
    data_dir: Path,
    out: Path,
    precision: str = "no",
    progress: bool = True,
) -> LevelTable:
    """Measure each language of ``languages`` not yet in ``out`` and rewrite ``out`` (atomically) after each one.

    ``model`` is the zero-shot student and the teacher (a name or a local dir), ``precision`` the student's
    autocast (``bf16`` as the study trains; the teacher's English side is fp32, as in training)."""
    import torch
    from tqdm.auto import tqdm

    from optical.models import resolve_model
    from optical.models.encoder import Encoder
    from optical.train.precision import autocast_dtype
    from optical.train.selection import heldout_alignment_selector

    table = read_levels(out) if out.exists() else LevelTable(model, precision, ())
    if table.levels and (table.model, table.precision) != (model, precision):
        raise OpticalError(
            f"{out} holds levels of {table.model or 'an unnamed model'} at precision {table.precision or 'unknown'}, "
            f"not of {model} at {precision}; pick another --out"
        )
    table = LevelTable(model, precision, table.levels)
    todo = [lang for lang in languages if lang not in table.languages]
    if not todo:
        return table
    encoder = Encoder.load(resolve_model(model)).eval()
    for lang in tqdm(todo, desc="zero-shot levels", unit="lang", disable=not progress):
        encoder.inference_autocast = None  # the teacher's English side in fp32, as the trainer builds it
        selector = heldout_alignment_selector(lang, data_dir, encoder, with_xquad=False)
        encoder.inference_autocast = autocast_dtype(precision)
        with torch.inference_mode():
            score = selector(encoder)
        level = LanguageLevel(lang, score.recorded["heldout_align_mrr@10"], score.recorded["heldout_align_margin"])
        table = LevelTable(model, precision, (*table.levels, level))
        atomic_write_text(out, table.to_tsv())
    return table
