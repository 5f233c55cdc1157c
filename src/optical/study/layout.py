"""The names a study uses on disk, in one place.

A study dir holds :data:`MANIFEST`, a ``runs/`` folder of links into the
shared run store, and :data:`REPORT_DIR`. Each run (``runs/<run_id>``) holds
its distillation in :data:`DISTILL_DIR` (complete once :data:`RUN_JSON` is
written, last) and one evaluation per test-time typo rate
(:func:`eval_dir_name`). The runner, the report and the export all read these
names from here.
"""

from __future__ import annotations

MANIFEST = "study.json"
RUNS_DIR = "runs"
REPORT_DIR = "report"
DISTILL_DIR = "distill"
from optical.train.record import RUN_JSON as RUN_JSON  # noqa: E402  (what `optical distill` writes last: complete once it exists)


def eval_dir_name(query_noise: float) -> str:
    """``eval-0``, ``eval-0.1``: the evaluation variant at one test-time typo rate.

    >>> eval_dir_name(0.1)
    'eval-0.1'
    """
    return f"eval-{query_noise:g}"
