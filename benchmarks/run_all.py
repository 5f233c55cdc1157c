"""Run every benchmark script in turn (``make bench``); each merges its keys into results.json.

Scripts run in separate interpreters so one's threads, caches and allocator state do not
colour another's timings. Extra arguments (e.g. ``--device cuda``) go to the scripts that
accept them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS_DIR = Path(__file__).resolve().parent
#: Scripts in the order they run, with whether they take ``--device``.
SCRIPTS = (
    ("bench_sinkhorn.py", True),
    ("bench_encode.py", True),
    ("bench_train.py", False),
    ("bench_eval.py", True),
    ("bench_distill_peer.py", False),
    ("bench_ann.py", False),
    ("bench_study_ray.py", False),
    ("bench_ddp.py", False),
    ("bench_demo.py", False),
)


def main(argv: list[str]) -> int:
    device_args = argv if argv else []
    failed = []
    for script, takes_device in SCRIPTS:
        command = [sys.executable, str(BENCHMARKS_DIR / script), *(device_args if takes_device else [])]
        print(f"== {' '.join(command[1:])}", flush=True)
        if subprocess.run(command, check=False).returncode != 0:
            failed.append(script)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
