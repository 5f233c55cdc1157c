"""A study on Ray against the same study run one run after another.

Figure: ``study_ray_2workers_over_sequential``: wall seconds of ``configs/study-smoke.yaml`` (tiny models,
zero-shot, mse and ot, two seeds) computed by a local 2-worker Ray cluster (1 CPU per run) over the same study computed
sequentially in this process, each from an empty run store, in one run of this script. Ray's overheads
(starting the cluster, a worker process per task, importing torch there) are included: that is what a
user pays. Also the two wall times.

Usage::

    .venv/bin/python benchmarks/bench_study_ray.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PROJECT_ROOT, publish  # noqa: E402
from optical.study import load_study_config, run_study  # noqa: E402
from optical.study.executor import LocalExecutor, RayExecutor, RayResources  # noqa: E402

SCRIPT = "benchmarks/bench_study_ray.py"
SMOKE = PROJECT_ROOT / "configs" / "study-smoke.yaml"


def timed_study(executor, work: Path) -> float:
    tick = time.perf_counter()
    result = run_study(load_study_config(SMOKE), work / "study", store=work / "store", progress=False, executor=executor)
    if result.failures:
        raise SystemExit(f"the smoke study failed: {result.failures}")
    return time.perf_counter() - tick


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="print the figures, record nothing")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        sequential = timed_study(LocalExecutor(progress=False), Path(tmp) / "sequential")
        ray = timed_study(RayExecutor(resources=RayResources(cpus=1, gpus=0), num_cpus=2), Path(tmp) / "ray")
    results: dict[str, float | str] = {
        "study_sequential_seconds": round(sequential, 1),
        "study_ray_2workers_seconds": round(ray, 1),
        "study_ray_2workers_over_sequential": round(ray / sequential, 3),
        "study_ray_setup": (
            "configs/study-smoke.yaml (tiny models, zero-shot + mse and ot x 2 seeds, two typo rates), empty run store "
            "each; sequential: "
            "--executor local in this process; ray: a local cluster started by the run with 2 CPUs, 1 CPU per run "
            "(so 2 runs at a time), cluster start-up and worker start-up included; ratio of wall seconds (< 1: Ray faster)"
        ),
    }
    publish(results, SCRIPT, args.dry_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
