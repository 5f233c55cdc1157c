"""A collapsed student (pooled embeddings of different sentences nearly identical) is told apart from one that
learned little: each dev evaluation records the query-embedding spread, and the record names the first collapsed step."""

from __future__ import annotations

import torch

from optical.models.encoder import Encoder
from optical.train.record import COLLAPSE_SPREAD_RATIO, SPREAD_KEY, RunResult
from optical.train.selection import build_selector, embedding_spread


def result_with(history: list[dict]) -> RunResult:
    return RunResult(
        steps=8, selection_metric="xquad_dev_mrr@10", best_step=0, best_metric=0.1, seconds=1.0, pairs_per_second=1.0,
        resumed_from_step=None, history=history,
    )  # fmt: skip


def test_a_student_whose_outputs_are_made_constant_is_flagged_as_collapsed(tiny_teacher, mirror_dir):
    teacher = Encoder.load(tiny_teacher)
    selector = build_selector("xquad_dev", "el", mirror_dir, teacher)
    student = Encoder.load(tiny_teacher)
    before = selector(student)
    assert 0.0 < before.spread <= 2.0
    # Every token of every sentence now leaves the last layer as the same vector: the collapse, made on purpose.
    last_norm = student.model.encoder.layer[-1].output.LayerNorm
    with torch.no_grad():
        last_norm.weight.zero_()
        last_norm.bias.copy_(torch.linspace(-1.0, 1.0, last_norm.bias.numel()))
    after = selector(student)
    assert after.spread < 1e-6 < before.spread * COLLAPSE_SPREAD_RATIO
    history = [
        {"step": 0, SPREAD_KEY: before.spread},
        {"step": 4, SPREAD_KEY: before.spread},
        {"step": 8, SPREAD_KEY: after.spread},
    ]
    assert result_with(history).collapsed_at == 8 and result_with(history).spread_measured
    assert result_with(history[:2]).collapsed_at is None
    # Collapsed at step 8 is not the same as keeping a collapsed student: selection may keep an earlier step.
    assert not result_with(history).kept_collapsed
    kept_last = RunResult(**{**result_with(history).__dict__, "best_step": 8})
    assert kept_last.kept_collapsed and not RunResult(**{**kept_last.__dict__, "best_step": 4}).kept_collapsed
    # Runs written before the spread was recorded: nothing measured, nothing claimed.
    old = result_with([{"step": 0, "xquad_dev_mrr@10": 0.1}])
    assert old.collapsed_at is None and not old.spread_measured and not old.kept_collapsed


def test_embedding_spread_is_one_minus_the_mean_pairwise_cosine():
    rows = torch.nn.functional.normalize(torch.randn(50, 8, generator=torch.Generator().manual_seed(0)), dim=1)
    cosine = rows @ rows.T
    expected = 1.0 - float((cosine.sum() - cosine.diagonal().sum()) / (50 * 49))
    assert abs(embedding_spread(rows) - expected) < 1e-9
