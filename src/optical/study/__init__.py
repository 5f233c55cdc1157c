"""Studies: a YAML grid of distillation runs, run resumably with a shared run store, and its report.

Entry points: :func:`load_study_config`, :func:`expand` (the runs),
:func:`dry_run` and :func:`run_study` (its runs computed by a :class:`LocalExecutor` or a
:class:`RayExecutor`); the study report is :func:`optical.report.write_study_report`.
The names below are imported from their modules on first use (:mod:`optical._lazy`).
"""

from optical._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "optical.study.config": ("ModelSpec", "StudyConfig", "load_study_config", "parse_study_config"),
        "optical.study.grid": ("StudyPlan", "StudyRun", "expand"),
        "optical.study.runner": ("DryRun", "StudyResult", "default_store", "dry_run", "run_study"),
        "optical.study.manifest": ("read_manifest",),
        "optical.study.executor": ("ExecutorKind", "LocalExecutor", "RayExecutor", "RayResources", "make_executor"),
    },
)
