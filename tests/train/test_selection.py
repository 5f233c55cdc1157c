"""Model selection on the held-out bitext slice (``--select-on heldout_align``): what it holds out, what it records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from optical.data.bitext import (
    SELECTION_PAIRS,
    BitextConfig,
    build_bitext,
    load_flores_devtest,
    overlap_key,
    selection_slice,
)
from optical.data.languages import BITEXT_LANGS
from optical.errors import OpticalError
from optical.train import DistillConfig, distill
from optical.train.selection import MARGIN_TIEBREAK, translation_margin, translation_mrr

RESULTS = Path(__file__).resolve().parents[2] / "results"


def _keys(pairs) -> set[str]:
    return {overlap_key(text) for pair in pairs for text in (pair.en, pair.foreign)} - {""}


def test_the_selection_slice_is_fixed_and_never_touches_devtest(mirror_dir):
    for lang in dict.fromkeys([*BITEXT_LANGS[::12], "el", "dz", "ku", "fa-AF"]):  # spread over the table, odd codes included
        chosen = selection_slice(mirror_dir, lang)
        assert len(chosen) == SELECTION_PAIRS and chosen == selection_slice(mirror_dir, lang)
        assert not _keys(chosen) & _keys(load_flores_devtest(mirror_dir, lang)), lang


def test_training_keeps_the_slice_out_only_when_asked(mirror_dir):
    sources = ("ntrex128", "flores200_sib_dev_extra")
    held = build_bitext(mirror_dir, BitextConfig("el", sources=sources, budget=None, seed=0, hold_out_selection=True))
    plain = build_bitext(mirror_dir, BitextConfig("el", sources=sources, budget=None, seed=0))
    held_out = _keys(selection_slice(mirror_dir, "el"))
    assert not _keys(held.pairs) & held_out and _keys(plain.pairs) & held_out
    assert plain.stats.available - held.stats.available >= SELECTION_PAIRS
    assert not _keys(held.pairs) & _keys(load_flores_devtest(mirror_dir, "el"))
    assert held.fingerprint != plain.fingerprint


def test_a_committed_run_rebuilds_the_mixture_it_recorded(mirror_dir):
    """Mixtures built without the option keep the fingerprint they had before it existed."""
    record = json.loads((RESULTS / "study-lowres/runs/01af26a666493027/distill/run.json").read_text(encoding="utf-8"))
    config = DistillConfig.from_dict({**record["config"], "data_dir": None})
    assert build_bitext(mirror_dir, config.bitext_config()).fingerprint == record["data_fingerprint"]


def test_a_language_without_the_slice_source_is_refused_in_one_line(mirror_dir):
    with pytest.raises(OpticalError, match="no flores200_sib_dev_extra pairs to hold out.*--select-on none") as caught:
        selection_slice(mirror_dir, "or")
    assert "\n" not in str(caught.value)


def test_mrr_and_margin_rank_ties_last_and_the_margin_only_breaks_ties():
    scores = torch.tensor([[0.9, 0.9, 0.1], [0.2, 0.8, 0.1], [0.1, 0.3, 0.7]])
    assert translation_mrr(scores) == pytest.approx((0.5 + 1 + 1) / 3)
    assert translation_margin(scores) == pytest.approx((0.0 + 0.6 + 0.4) / 3)
    # The smallest change of the MRR (one query from rank 9 to 10 among 2 x 200) outweighs any margin change.
    assert (1 / 9 - 1 / 10) / (2 * SELECTION_PAIRS) > MARGIN_TIEBREAK * 4


def test_distill_selects_on_the_slice_and_records_xquad_dev_beside_it(tiny_config, mirror_dir):
    config = tiny_config("ot", select_on="heldout_align", sources=["ntrex128", "flores200_sib_dev_extra"], eval_every=4)
    result = distill(config, progress=False)
    assert result.steps >= 8 and len(result.history) >= 3
    for entry in result.history:
        assert {"heldout_align", "heldout_align_mrr@10", "heldout_align_margin", "xquad_dev_mrr@10"} <= set(entry)
        assert entry["heldout_align"] == pytest.approx(
            entry["heldout_align_mrr@10"] + MARGIN_TIEBREAK * entry["heldout_align_margin"], abs=1e-12
        )
    best = max(result.history, key=lambda entry: entry["heldout_align"])
    assert result.best_step == best["step"]
    record = json.loads((result.out_dir / "run.json").read_text(encoding="utf-8"))
    assert record["config"]["select_on"] == "heldout_align"


def test_a_language_without_xquad_selects_on_the_slice_alone(tiny_config):
    result = distill(tiny_config("mse", lang="dz", select_on="heldout_align", sources=["ntrex128"], budget=64), progress=False)
    assert result.history and all("xquad_dev_mrr@10" not in entry for entry in result.history)
