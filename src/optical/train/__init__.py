"""Training: distil a student query encoder from a frozen teacher on bitext."""

from optical.train.config import DistillConfig
from optical.train.teacher_cache import TeacherCache, load_or_build_teacher_cache
from optical.train.trainer import DistillResult, distill

__all__ = ["DistillConfig", "DistillResult", "TeacherCache", "distill", "load_or_build_teacher_cache"]
