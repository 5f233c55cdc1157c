"""Studies: a YAML grid of distillation runs, run resumably with a shared run store, and its report.

Entry points: :func:`load_study_config`, :func:`expand` (the runs),
:func:`dry_run`, :func:`run_study` and :func:`write_study_report`
(:mod:`optical.study.report`, imported on demand: it pulls in matplotlib).
"""

from optical.study.config import ModelSpec, StudyConfig, load_study_config, parse_study_config
from optical.study.grid import StudyPlan, StudyRun, expand
from optical.study.runner import DryRun, StudyResult, default_store, dry_run, run_study

__all__ = [
    "DryRun",
    "ModelSpec",
    "StudyConfig",
    "StudyPlan",
    "StudyResult",
    "StudyRun",
    "default_store",
    "dry_run",
    "expand",
    "load_study_config",
    "parse_study_config",
    "run_study",
]
