"""optical.ot.sinkhorn on a CUDA device (skipped without one). Kept apart from test_sinkhorn.py, which
imports POT, so that a GPU box without POT runs it."""

import pytest
import torch

from optical.ot import sinkhorn
from optical.ot._sinkhorn import _GRAPHED_SWEEPS

EPS = 0.1


def random_problem(batch: int, n: int, m: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A cosine cost [B, n, m] and positive marginals [B, n], [B, m] (float32)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.normalize(torch.randn(batch, n, 16, generator=generator), dim=-1)
    y = torch.nn.functional.normalize(torch.randn(batch, m, 16, generator=generator), dim=-1)
    a = torch.rand(batch, n, generator=generator) + 0.2
    b = torch.rand(batch, m, generator=generator) + 0.2
    return 1.0 - x @ y.transpose(-1, -2), a / a.sum(-1, keepdim=True), b / b.sum(-1, keepdim=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("tau", [None, 1.0])
def test_a_fixed_iteration_cuda_solve_never_syncs_and_matches_the_cpu(tau):
    cost, a, b = random_problem(3, 8, 7, seed=41)
    mask_a = torch.ones(3, 8, dtype=torch.bool)
    mask_a[0, 5:] = False
    mask_b = torch.ones(3, 7, dtype=torch.bool)
    mask_b[2, 3:] = False
    solve = dict(eps=EPS, tau=tau, max_iter=200, tol=0.0)
    on_cpu = sinkhorn(cost, a, b, mask_a=mask_a, mask_b=mask_b, **solve)
    shorter = sinkhorn(cost[:, :6, :5], a[:, :6], b[:, :5], **solve)
    moved = [t.cuda() for t in (cost, a, b, mask_a, mask_b)]
    _GRAPHED_SWEEPS.clear()
    sinkhorn(moved[0], moved[1], moved[2], mask_a=moved[3], mask_b=moved[4], **solve)  # captures its graph
    assert len(_GRAPHED_SWEEPS._captured) == 1
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        on_gpu = sinkhorn(moved[0], moved[1], moved[2], mask_a=moved[3], mask_b=moved[4], **solve)
        # Another length in the same padded shape (8 x 8) replays the same graph.
        shorter_on_gpu = sinkhorn(moved[0][:, :6, :5], moved[1][:, :6], moved[2][:, :5], **solve)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert on_gpu.n_iter == 200
    assert len(_GRAPHED_SWEEPS._captured) == 1
    torch.testing.assert_close(on_gpu.plan.cpu(), on_cpu.plan, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(on_gpu.value.cpu(), on_cpu.value, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(shorter_on_gpu.plan.cpu(), shorter.plan, rtol=1e-4, atol=1e-6)
