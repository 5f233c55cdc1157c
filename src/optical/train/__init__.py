"""Training: distil a student query encoder from a frozen teacher on bitext.

The names below are imported from their modules on first use (:mod:`optical._lazy`).
"""

from optical._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "optical.train.config": ("DistillConfig",),
        "optical.train.teacher_cache": ("TeacherCache", "load_or_build_teacher_cache"),
        "optical.train.record": ("RunRecord",),
        "optical.train.trainer": ("DistillResult", "DistillTrainer", "distill"),
    },
)
