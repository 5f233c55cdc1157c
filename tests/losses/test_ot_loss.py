import pytest
import torch
import torch.nn.functional as F

from optical.errors import OpticalError
from optical.losses import DistillBatch, OTLoss
from optical.ot import sinkhorn


def test_loss_is_frobenius_product_of_plan_and_cost(make_batch):
    batch = make_batch()
    loss_fn = OTLoss(eps=0.05, cost="cosine")
    out = loss_fn(batch)
    s = F.normalize(batch.student_foreign.embeddings, dim=-1)
    t = F.normalize(batch.teacher_english.embeddings, dim=-1)
    cost = 1 - s @ t.transpose(1, 2)
    reference = sinkhorn(
        cost.detach(), mask_a=batch.student_foreign.content_mask, mask_b=batch.teacher_english.content_mask, eps=0.05
    )
    expected = (reference.plan * cost.detach()).sum((1, 2)).mean()
    assert torch.allclose(out.loss.detach(), expected, atol=1e-5)


def test_identical_sentences_cost_less_than_unrelated(make_batch):
    batch = make_batch(requires_grad=False)
    same = DistillBatch(student_foreign=batch.teacher_english, teacher_english=batch.teacher_english)
    loss_fn = OTLoss(eps=0.01)
    assert loss_fn(same).loss < loss_fn(batch).loss


def test_gradient_reaches_student_only_through_content_tokens(make_batch):
    batch = make_batch()
    OTLoss()(batch).loss.backward()
    grad = batch.student_foreign.embeddings.grad
    mask = batch.student_foreign.content_mask
    assert grad[mask].abs().sum() > 0
    assert torch.all(grad[~mask] == 0)


def test_sqeuclidean_is_twice_cosine_cost(make_batch):
    batch = make_batch(requires_grad=False)
    cosine = OTLoss(eps=0.1, cost="cosine")(batch).loss
    squared = OTLoss(eps=0.2, cost="sqeuclidean")(batch).loss  # same plan when eps scales with the cost
    assert torch.allclose(squared, 2 * cosine, rtol=1e-4)


def test_centering_changes_the_cost_and_stays_finite(make_batch):
    batch = make_batch(requires_grad=False)
    center = batch.teacher_english.embeddings.mean((0, 1))
    plain = OTLoss()(batch)
    centred = OTLoss(center=center)(batch)
    assert torch.isfinite(centred.loss)
    assert not torch.isclose(plain.loss, centred.loss)


@pytest.mark.parametrize("marginals", ["norm", "idf"])
def test_weighted_marginals_run(make_batch, marginals):
    batch = make_batch(requires_grad=False)
    ids_s = torch.randint(0, 50, batch.student_foreign.content_mask.shape)
    ids_t = torch.randint(0, 50, batch.teacher_english.content_mask.shape)
    batch.student_token_ids, batch.teacher_token_ids = ids_s, ids_t
    idf = torch.linspace(1, 3, 50)
    out = OTLoss(marginals=marginals, student_idf=idf, teacher_idf=idf)(batch)
    assert torch.isfinite(out.loss)
    assert not torch.isclose(out.loss, OTLoss()(batch).loss)


def test_unbalanced_with_large_tau_matches_balanced(make_batch):
    batch = make_batch(requires_grad=False)
    balanced = OTLoss(eps=0.1, max_iter=500, tol=1e-7)(batch).loss
    relaxed = OTLoss(eps=0.1, tau=1e5, max_iter=500, tol=1e-7)(batch).loss
    assert torch.allclose(balanced, relaxed, rtol=1e-3)


def test_all_padding_pair_gives_finite_loss(as_tokens):
    embeddings = torch.randn(2, 4, 8)
    student = as_tokens(embeddings, [4, 0])
    teacher = as_tokens(torch.randn(2, 3, 8), [3, 3])
    out = OTLoss()(DistillBatch(student_foreign=student, teacher_english=teacher))
    assert torch.isfinite(out.loss)


@pytest.mark.parametrize("kwargs", [{"cost": "manhattan"}, {"marginals": "zipf"}, {"eps": 0.0}, {"tau": -1.0}])
def test_bad_options_are_one_line_errors(kwargs):
    with pytest.raises(OpticalError) as err:
        OTLoss(**kwargs)
    assert "\n" not in str(err.value)
