"""optical.ot.sinkhorn vs POT's batched log-Sinkhorn, forward + backward, on CPU (or ``--device cuda``).

Problem: B=32 problems of n=m=32 points, d=384, cost = cosine distance of random
unit vectors, eps=0.05, uniform marginals, float32, stop at marginal error 1e-5
(ours: max over the batch of the L1 row-marginal error, checked every 5
iterations; POT: max over the batch of the L2 row-marginal error, checked every
10 iterations -- ours is the stricter test), max_iter=1000.

Gradient of the value w.r.t. the cost, both through autograd:
* default mode: ours ``grad="detach"`` (d value/dC = plan) vs POT
  ``ot.batch.solve_batch(..., method="log_sinkhorn", grad="envelope")`` (its
  default; same gradient, POT's value is the regularised objective);
* unrolled mode: ours ``grad="autodiff"`` vs POT ``grad="autodiff"``
  (backward of ``value_linear`` through every iteration).

Timing: torch single-threaded, interleaved rounds of 10 runs, median per side.
``sinkhorn_speedup_vs_pot`` is the median over rounds of POT time / ours in
thread CPU time (steady on a shared machine); the ``_wall`` keys are wall time.
With ``--device cuda`` every call ends with a synchronisation, the clock is wall
time only and the keys get a ``_cuda`` suffix.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

import ot

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import record, time_it  # noqa: E402
from optical.ot import sinkhorn  # noqa: E402

BATCH, N, M, DIM = 32, 32, 32, 384
EPS, TOL, MAX_ITER = 0.05, 1e-5, 1000
ROUNDS = 15


def make_cost(device: str) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(BATCH, N, DIM, generator=generator), dim=-1)
    y = torch.nn.functional.normalize(torch.randn(BATCH, M, DIM, generator=generator), dim=-1)
    return (1.0 - x @ y.transpose(-1, -2)).to(device)


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def ours(cost: torch.Tensor, grad: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    leaf = cost.clone().requires_grad_()
    result = sinkhorn(leaf, eps=EPS, max_iter=MAX_ITER, tol=TOL, grad=grad)
    result.value.sum().backward()
    synchronize(cost.device.type)
    return result.plan.detach(), leaf.grad, result.n_iter


def pot(cost: torch.Tensor, grad: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    leaf = cost.clone().requires_grad_()
    result = ot.batch.solve_batch(leaf, reg=EPS, max_iter=MAX_ITER, tol=TOL, method="log_sinkhorn", grad=grad)
    (result.value if grad == "envelope" else result.value_linear).sum().backward()
    synchronize(cost.device.type)
    return result.plan.detach(), leaf.grad, int(result.log["n_iter"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cost = make_cost(args.device)
    # Thread CPU time says nothing about GPU work: on CUDA both clocks are wall time.
    cpu_clock = time.perf_counter if args.device == "cuda" else time.thread_time
    suffix = "" if args.device == "cpu" else f"_{args.device}"
    results: dict[str, float | int | str] = {}
    for label, our_mode, pot_mode in [("", "detach", "envelope"), ("_autodiff", "autodiff", "autodiff")]:
        our_plan, our_grad, our_iters = ours(cost, our_mode)
        pot_plan, pot_grad, pot_iters = pot(cost, pot_mode)
        plan_diff = float((our_plan - pot_plan).abs().max())
        grad_diff = float((our_grad - pot_grad).abs().max())
        assert plan_diff < 1e-5, f"plans differ by {plan_diff}"
        assert grad_diff < 1e-4, f"gradients differ by {grad_diff}"
        # The machine is shared: interleave short rounds so load hits both sides alike.
        # Single-threaded and timed in thread CPU time, which other processes'
        # load does not inflate; wall time is recorded too.
        our_rounds, pot_rounds, our_wall, pot_wall = [], [], [], []
        for _ in range(ROUNDS):
            our_rounds.append(time_it(lambda: ours(cost, our_mode), repeat=10, warmup=1, clock=cpu_clock))
            pot_rounds.append(time_it(lambda: pot(cost, pot_mode), repeat=10, warmup=1, clock=cpu_clock))
            our_wall.append(time_it(lambda: ours(cost, our_mode), repeat=10, warmup=1))
            pot_wall.append(time_it(lambda: pot(cost, pot_mode), repeat=10, warmup=1))
        our_time, pot_time = statistics.median(our_rounds), statistics.median(pot_rounds)
        ratio = statistics.median(p / o for p, o in zip(pot_rounds, our_rounds))
        wall_ratio = statistics.median(p / o for p, o in zip(pot_wall, our_wall))
        results.update(
            {
                f"sinkhorn{label}_ours_fwd_bwd_cpu_ms": round(our_time * 1e3, 4),
                f"sinkhorn{label}_pot_fwd_bwd_cpu_ms": round(pot_time * 1e3, 4),
                f"sinkhorn{label}_speedup_vs_pot": round(ratio, 3),
                f"sinkhorn{label}_ours_fwd_bwd_wall_ms": round(statistics.median(our_wall) * 1e3, 4),
                f"sinkhorn{label}_pot_fwd_bwd_wall_ms": round(statistics.median(pot_wall) * 1e3, 4),
                f"sinkhorn{label}_speedup_vs_pot_wall": round(wall_ratio, 3),
                f"sinkhorn{label}_max_plan_diff_vs_pot": plan_diff,
                f"sinkhorn{label}_max_grad_diff_vs_pot": grad_diff,
                f"sinkhorn{label}_ours_iterations": our_iters,
                f"sinkhorn{label}_pot_iterations": pot_iters,
            }
        )
    results["sinkhorn_problem"] = f"B={BATCH} n=m={N} d={DIM} cosine cost, eps={EPS}, tol={TOL}, float32"
    results = {key + suffix: value for key, value in results.items()}
    for key, value in results.items():
        print(f"{key}: {value}")
    record(results, source="benchmarks/bench_sinkhorn.py", device=args.device)


if __name__ == "__main__":
    main()
