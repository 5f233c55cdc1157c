import dataclasses

import torch
import torch.nn.functional as F

from optical.losses import ContrastiveLoss, DistillBatch, HardAlignLoss, MSELoss


def test_mse_has_both_terms(make_batch):
    batch = make_batch()
    out = MSELoss()(batch)
    t = batch.teacher_english.pooled
    expected = F.mse_loss(batch.student_foreign.pooled, t) + F.mse_loss(batch.student_english.pooled, t)
    assert torch.allclose(out.loss, expected)
    out.loss.backward()
    assert batch.student_english.embeddings.grad.abs().sum() > 0
    assert MSELoss.needs_student_english


def test_mse_is_zero_when_student_equals_teacher(make_batch):
    batch = make_batch(requires_grad=False)
    same = DistillBatch(batch.teacher_english, batch.teacher_english, batch.teacher_english)
    assert MSELoss()(same).loss.item() < 1e-12


def test_contrastive_matches_cross_entropy_and_prefers_aligned_batches(make_batch):
    batch = make_batch(requires_grad=False)
    loss_fn = ContrastiveLoss(temperature=0.1)
    logits = batch.student_foreign.pooled @ batch.teacher_english.pooled.T / 0.1
    expected = F.cross_entropy(logits, torch.arange(4))
    assert torch.allclose(loss_fn(batch).loss, expected)
    aligned = DistillBatch(batch.teacher_english, batch.teacher_english)
    out = loss_fn(aligned)
    assert out.loss < loss_fn(batch).loss
    assert out.logs["inbatch_acc"] == 1.0


def test_bidirectional_contrastive_averages_both_rankings_and_penalises_a_foreign_hub(make_batch):
    batch = make_batch(requires_grad=False)
    logits = batch.student_foreign.pooled @ batch.teacher_english.pooled.T / 0.1
    targets = torch.arange(4)
    expected = (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
    assert torch.allclose(ContrastiveLoss(temperature=0.1, directions="both")(batch).loss, expected)
    # A foreign hub (every foreign vector the same) gives each English key B equal candidates: the
    # English-to-foreign term is log B, its largest value for tied logits, whatever the x2en term makes of it.
    english = batch.teacher_english
    hub_vector = F.normalize(english.pooled.mean(0, keepdim=True), dim=-1).expand_as(english.pooled).contiguous()
    hub = DistillBatch(dataclasses.replace(english, pooled=hub_vector), english)
    x2en, both = ContrastiveLoss()(hub).loss, ContrastiveLoss(directions="both")(hub).loss
    assert torch.allclose(2 * both - x2en, torch.log(torch.tensor(4.0)))


def test_hard_align_picks_argmax_teacher_token(as_tokens):
    teacher = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    student = torch.tensor([[[1.0, 0.1], [0.2, 1.0], [1.0, 1.0]]], requires_grad=True)
    batch = DistillBatch(as_tokens(student, [3]), as_tokens(teacher, [2]))
    out = HardAlignLoss()(batch)
    s = F.normalize(student.detach(), dim=-1)
    best = torch.stack([s[0, 0, 0], s[0, 1, 1], s[0, 2].max()])
    assert torch.allclose(out.loss.detach(), (1 - best).mean())


def test_hard_align_ignores_masked_teacher_tokens(as_tokens):
    teacher = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    student = torch.tensor([[[0.0, 1.0]]])
    masked = DistillBatch(as_tokens(student, [1]), as_tokens(teacher, [1]))
    assert torch.isclose(HardAlignLoss()(masked).loss, torch.tensor(1.0))
