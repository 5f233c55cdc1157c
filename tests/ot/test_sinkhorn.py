"""optical.ot.sinkhorn against POT 0.9.7 (the oracle), finite differences and edge cases.

POT functions compared, and why:
* ``ot.batch.solve_batch(M, reg, method="log_sinkhorn")``: POT's own batched
  log-domain solver, same problem (entropy regularisation) -> plans and ``value_linear``.
* ``ot.solve(M, a, b, reg, reg_type="entropy")``: the single-problem solver, with
  non-uniform marginals. Its ``grad="envelope"`` sets d value/dM = plan at
  convergence (value = regularised objective), which is what our "detach" mode
  returns; its ``grad="autodiff"`` unrolls the iterations, like ours.
  (POT 0.9.7 has no "implicit" mode; "last_step" is not used.)
* ``ot.unbalanced.sinkhorn_unbalanced(..., reg_m=tau, reg_type="entropy")``: KL
  marginal penalties of strength reg_m = tau and regulariser sum P log P - P, the
  same objective as ours. (``ot.solve(unbalanced=tau)`` uses the KL(P|ab^T)
  regulariser with Sinkhorn, or L-BFGS-B for "entropy", so it is not used.)
"""

import math

import numpy as np
import pytest
import torch

import ot
from optical.errors import OpticalError
from optical.ot import OTResult, sinkhorn

EPS = 0.1


def random_cost(batch: int, n: int, m: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.normalize(torch.randn(batch, n, 16, generator=generator, dtype=dtype), dim=-1)
    y = torch.nn.functional.normalize(torch.randn(batch, m, 16, generator=generator, dtype=dtype), dim=-1)
    return 1.0 - x @ y.transpose(-1, -2)


def random_marginal(batch: int, size: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    weights = torch.rand(batch, size, generator=generator, dtype=torch.float64) + 0.2
    return weights / weights.sum(-1, keepdim=True)


def rel_err(x: torch.Tensor, y: torch.Tensor) -> float:
    return float((x - y).abs().max() / y.abs().max())


def test_balanced_matches_pot_solve_batch():
    cost = random_cost(4, 6, 9)
    ours = sinkhorn(cost, eps=EPS, max_iter=5000, tol=1e-12)
    pot = ot.batch.solve_batch(cost, reg=EPS, method="log_sinkhorn", max_iter=5000, tol=1e-13, grad="detach")
    assert isinstance(ours, OTResult)
    assert rel_err(ours.plan, pot.plan) <= 1e-4
    assert rel_err(ours.value, pot.value_linear) <= 1e-4
    assert bool(ours.converged.all())
    assert float(ours.marginal_error.max()) < 1e-12


def test_unbatched_non_uniform_marginals_match_pot_solve():
    cost = random_cost(1, 7, 5, seed=1)[0]
    a, b = random_marginal(1, 7, 2)[0], random_marginal(1, 5, 3)[0]
    ours = sinkhorn(cost, a, b, eps=EPS, max_iter=5000, tol=1e-12)
    pot = ot.solve(cost, a, b, reg=EPS, reg_type="entropy", max_iter=5000, tol=1e-13)
    assert ours.plan.shape == (7, 5) and ours.value.shape == ()
    assert rel_err(ours.plan, pot.plan) <= 1e-4
    assert rel_err(ours.value, pot.value_linear) <= 1e-4


def test_given_marginals_are_renormalised_when_balanced():
    cost = random_cost(2, 4, 5, seed=4)
    a, b = random_marginal(2, 4, 5), random_marginal(2, 5, 6)
    scaled = sinkhorn(cost, 3.0 * a, 0.5 * b, eps=EPS, max_iter=2000, tol=1e-12)
    plain = sinkhorn(cost, a, b, eps=EPS, max_iter=2000, tol=1e-12)
    torch.testing.assert_close(scaled.plan, plain.plan, rtol=1e-9, atol=1e-12)


def test_detach_gradient_is_plan_and_matches_pot_envelope():
    cost = random_cost(1, 5, 6, seed=7)[0]
    a, b = random_marginal(1, 5, 8)[0], random_marginal(1, 6, 9)[0]
    ours_cost = cost.clone().requires_grad_()
    ours = sinkhorn(ours_cost, a, b, eps=EPS, max_iter=5000, tol=1e-12)
    ours.value.backward()
    pot_cost = cost.clone().requires_grad_()
    pot = ot.solve(pot_cost, a, b, reg=EPS, reg_type="entropy", max_iter=5000, tol=1e-13, grad="envelope")
    pot.value.backward()
    assert ours.plan.grad_fn is None
    torch.testing.assert_close(ours_cost.grad, ours.plan, rtol=0, atol=0)
    assert rel_err(ours_cost.grad, pot_cost.grad) <= 1e-4


def test_detach_gradient_matches_finite_differences_of_regularised_objective():
    cost = random_cost(1, 4, 5, seed=10)[0]
    a, b = random_marginal(1, 4, 11)[0], random_marginal(1, 5, 12)[0]

    def objective(c: torch.Tensor) -> float:
        plan = sinkhorn(c, a, b, eps=EPS, max_iter=20000, tol=1e-14).plan
        return float((plan * c).sum() + EPS * (plan * torch.log(plan)).sum())

    leaf = cost.clone().requires_grad_()
    sinkhorn(leaf, a, b, eps=EPS, max_iter=20000, tol=1e-14).value.backward()
    step = 1e-5
    for i, j in [(0, 0), (1, 3), (3, 4), (2, 1)]:
        bump = torch.zeros_like(cost)
        bump[i, j] = step
        numeric = (objective(cost + bump) - objective(cost - bump)) / (2 * step)
        assert abs(numeric - float(leaf.grad[i, j])) <= 1e-6 * max(1.0, abs(numeric))


def test_autodiff_gradient_matches_pot_autodiff():
    cost = random_cost(1, 5, 4, seed=13)[0]
    ours_cost = cost.clone().requires_grad_()
    ours = sinkhorn(ours_cost, eps=EPS, max_iter=3000, tol=1e-13, grad="autodiff")
    ours.value.backward()
    pot_cost = cost.clone().requires_grad_()
    pot = ot.solve(pot_cost, reg=EPS, reg_type="entropy", max_iter=3000, tol=1e-13, grad="autodiff")
    pot.value_linear.backward()
    assert ours.plan.grad_fn is not None
    assert rel_err(ours_cost.grad, pot_cost.grad) <= 1e-4
    # Unrolled d<P, C>/dC differs from the envelope gradient P by <dP/dC, C>.
    assert float((ours_cost.grad - ours.plan.detach()).abs().max()) > 1e-3


def test_autodiff_passes_gradcheck():
    cost = random_cost(2, 3, 4, seed=14).requires_grad_()
    mask_b = torch.tensor([[True, True, True, False], [True, True, True, True]])
    # tol=0 never stops early: a fixed number of iterations is a smooth function of the cost.
    assert torch.autograd.gradcheck(
        lambda c: sinkhorn(c, mask_b=mask_b, eps=0.5, max_iter=30, tol=0.0, grad="autodiff").value, (cost,)
    )


def test_padded_problem_equals_unpadded_problem():
    cost = random_cost(2, 8, 7, seed=15)
    a, b = random_marginal(2, 8, 16), random_marginal(2, 7, 17)
    mask_a = torch.ones(2, 8, dtype=torch.bool)
    mask_b = torch.ones(2, 7, dtype=torch.bool)
    mask_a[0, 5:] = False
    mask_b[0, 4:] = False
    mask_b[1, 6] = False
    padded_cost = cost.clone()
    padded_cost[~(mask_a.unsqueeze(-1) & mask_b.unsqueeze(-2))] = float("inf")  # padding may hold garbage
    padded = sinkhorn(padded_cost, a, b, mask_a=mask_a, mask_b=mask_b, eps=EPS, max_iter=3000, tol=1e-12)
    first = sinkhorn(cost[0, :5, :4], a[0, :5], b[0, :4], eps=EPS, max_iter=3000, tol=1e-12)
    second = sinkhorn(cost[1, :, :6], a[1], b[1, :6], eps=EPS, max_iter=3000, tol=1e-12)
    torch.testing.assert_close(padded.plan[0, :5, :4], first.plan, rtol=1e-9, atol=1e-13)
    torch.testing.assert_close(padded.plan[1, :, :6], second.plan, rtol=1e-9, atol=1e-13)
    torch.testing.assert_close(padded.value, torch.stack([first.value, second.value]), rtol=1e-9, atol=1e-13)
    assert bool((padded.plan[0, 5:, :] == 0).all() and (padded.plan[0, :, 4:] == 0).all())
    assert bool((padded.plan[1, :, 6] == 0).all())
    assert torch.isfinite(padded.value).all()


def test_uniform_default_is_uniform_over_unmasked_entries():
    cost = random_cost(1, 6, 6, seed=18)
    mask_a = torch.tensor([[True, True, True, False, True, False]])
    result = sinkhorn(cost, mask_a=mask_a, eps=EPS, max_iter=3000, tol=1e-12)
    torch.testing.assert_close(result.plan.sum(-1), mask_a.double() / 4, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("grad", ["detach", "autodiff"])
def test_all_masked_row_and_element_give_zero_and_finite_gradients(grad):
    cost = random_cost(3, 4, 5, seed=19, dtype=torch.float32).requires_grad_()
    mask_a = torch.ones(3, 4, dtype=torch.bool)
    mask_b = torch.ones(3, 5, dtype=torch.bool)
    mask_a[0, 2] = False  # one padded row
    mask_a[1] = False  # an element with no real row at all
    mask_b[2] = False  # an element with no real column at all
    result = sinkhorn(cost, mask_a=mask_a, mask_b=mask_b, eps=0.05, grad=grad)
    result.value.sum().backward()
    for tensor in (result.plan, result.value, result.marginal_error, cost.grad):
        assert torch.isfinite(tensor).all()
    assert bool((result.plan[0, 2] == 0).all())
    assert bool((result.plan[1:] == 0).all())
    assert result.value[1:].tolist() == [0.0, 0.0]
    assert bool((cost.grad[1:] == 0).all())
    assert float(result.plan[0].sum().detach()) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("grad", ["detach", "autodiff"])
def test_extreme_eps_and_costs_stay_finite(dtype, grad):
    generator = torch.Generator().manual_seed(20)
    cost = (torch.rand(3, 12, 10, generator=generator, dtype=dtype) * 1e3).requires_grad_()
    mask_b = torch.ones(3, 10, dtype=torch.bool)
    mask_b[1, 7:] = False
    result = sinkhorn(cost, mask_b=mask_b, eps=1e-3, max_iter=50, grad=grad)
    result.value.sum().backward()
    for tensor in (result.plan, result.value, result.marginal_error, cost.grad):
        assert torch.isfinite(tensor).all()
    assert result.plan.dtype == dtype
    assert float(result.plan.detach().sum(-2).sub(1 / mask_b.sum(-1, keepdim=True)).abs().masked_fill(~mask_b, 0).max()) < 1e-3


def test_fast_path_fallback_agrees_with_exact_logsumexp():
    # Wide cost range at small eps: the separable sums underflow in float32 and
    # the detach solver must fall back to the exact log-sum-exp (which autodiff mode always uses).
    generator = torch.Generator().manual_seed(21)
    cost = torch.rand(2, 10, 9, generator=generator) * 50.0
    fast = sinkhorn(cost, eps=0.05, max_iter=300, tol=1e-6)
    exact = sinkhorn(cost, eps=0.05, max_iter=300, tol=1e-6, grad="autodiff")
    assert torch.isfinite(fast.plan).all()
    assert fast.n_iter == exact.n_iter
    torch.testing.assert_close(fast.plan, exact.plan.detach(), rtol=1e-4, atol=1e-7)


# POT warns on every reg_type="entropy" call that its reference matrix c becomes the ones matrix: that is the
# regulariser sum P log P - P this oracle is chosen for, so the warning says nothing about this test.
@pytest.mark.filterwarnings("ignore:If reg_type = entropy:UserWarning")
def test_unbalanced_matches_pot_sinkhorn_unbalanced():
    cost = random_cost(2, 6, 5, seed=22)
    a = random_marginal(2, 6, 23) * 1.5  # unequal masses: the relaxation matters
    b = random_marginal(2, 5, 24)
    tau = 0.7
    ours = sinkhorn(cost, a, b, eps=EPS, tau=tau, max_iter=20000, tol=1e-13)
    assert bool(ours.converged.all())
    for k in range(2):
        pot_plan = ot.unbalanced.sinkhorn_unbalanced(
            a[k].numpy(),
            b[k].numpy(),
            cost[k].numpy(),
            reg=EPS,
            reg_m=tau,
            reg_type="entropy",
            method="sinkhorn_stabilized",
            numItermax=20000,
            stopThr=1e-14,
        )
        pot_plan = torch.from_numpy(np.asarray(pot_plan))
        assert rel_err(ours.plan[k], pot_plan) <= 1e-4
        assert rel_err(ours.value[k], (pot_plan * cost[k]).sum()) <= 1e-4
    # Mass is not forced to a: the row sums differ from the given marginal.
    assert float(ours.marginal_error.min()) > 1e-2


def test_unbalanced_detach_gradient_matches_pot_autodiff_of_objective():
    # Envelope theorem for the unbalanced objective too: d objective / dC = P.
    cost = random_cost(1, 4, 5, seed=25)[0]
    leaf = cost.clone().requires_grad_()
    result = sinkhorn(leaf, eps=EPS, tau=1.0, max_iter=20000, tol=1e-13)
    result.value.backward()
    torch.testing.assert_close(leaf.grad, result.plan, rtol=0, atol=0)


def test_large_tau_recovers_balanced_plan():
    cost = random_cost(2, 5, 6, seed=26)
    balanced = sinkhorn(cost, eps=EPS, max_iter=5000, tol=1e-12)
    nearly = sinkhorn(cost, eps=EPS, tau=1e6, max_iter=20000, tol=1e-12)
    infinite = sinkhorn(cost, eps=EPS, tau=math.inf, max_iter=5000, tol=1e-12)
    assert rel_err(nearly.plan, balanced.plan) <= 1e-4
    torch.testing.assert_close(infinite.plan, balanced.plan)


def test_early_exit_on_easy_problem():
    cost = random_cost(8, 16, 16, seed=27, dtype=torch.float32)
    result = sinkhorn(cost, eps=0.5, max_iter=1000, tol=1e-5)
    assert result.n_iter < 100
    assert bool(result.converged.all())
    assert float(result.marginal_error.max()) < 1e-5
    capped = sinkhorn(cost, eps=0.01, max_iter=3, tol=1e-12)
    assert capped.n_iter == 3 and not bool(capped.converged.all())


def test_mixed_precision_cost_gives_float32_plan():
    cost64 = random_cost(2, 5, 5, seed=28)
    bf16 = cost64.to(torch.bfloat16).requires_grad_()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        result = sinkhorn(bf16, eps=0.05)
    assert result.plan.dtype == torch.float32 and result.value.dtype == torch.float32
    result.value.sum().backward()
    assert bf16.grad.dtype == torch.bfloat16 and torch.isfinite(bf16.grad.float()).all()
    reference = sinkhorn(bf16.detach().float(), eps=0.05)
    torch.testing.assert_close(result.plan, reference.plan)
    assert sinkhorn(cost64, eps=0.05).plan.dtype == torch.float64


@pytest.mark.parametrize(
    "call",
    [
        lambda c: sinkhorn(c, eps=0.0),
        lambda c: sinkhorn(c, tau=-1.0),
        lambda c: sinkhorn(c, grad="last_step"),
        lambda c: sinkhorn(c, torch.ones(2, 3)),
        lambda c: sinkhorn(c, mask_a=torch.ones(2, 4)),
        lambda c: sinkhorn(c.masked_fill(c > 0.5, float("nan"))),
        lambda c: sinkhorn(c[0, 0]),
    ],
)
def test_user_errors_raise_optical_error(call):
    with pytest.raises(OpticalError):
        call(random_cost(2, 4, 5, seed=29, dtype=torch.float32))


def test_tol_zero_runs_a_fixed_number_of_iterations_and_matches_the_converged_plan():
    generator = torch.Generator().manual_seed(11)
    cost = torch.rand(4, 7, 9, generator=generator)
    fixed = sinkhorn(cost, eps=0.1, max_iter=300, tol=0.0)
    assert fixed.n_iter == 300
    converged = sinkhorn(cost, eps=0.1, max_iter=300, tol=1e-7)
    assert converged.n_iter < 300
    assert torch.allclose(fixed.plan, converged.plan, atol=1e-6)
    assert bool(fixed.converged.all())
    unbalanced = sinkhorn(cost, eps=0.1, tau=1.0, max_iter=50, tol=0.0)
    assert unbalanced.n_iter == 50
    with pytest.raises(OpticalError, match="tol=-1"):
        sinkhorn(cost, tol=-1.0)
