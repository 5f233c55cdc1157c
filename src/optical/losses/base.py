"""What every distillation loss sees, returns and accepts.

A training step has a batch of bitext pairs (English e, foreign x). The frozen
teacher's view of e comes from the teacher cache; the student encodes x (and,
for losses that ask for it, e too).

Each loss declares the options a user may set (``--loss-opt ot.eps=0.05``, or
``loss_options`` in a config file) as :class:`LossOption` entries in its
``OPTIONS`` class attribute, with a type, a default, a check and help text (in
the way ir_measures measures declare ``SUPPORTED_PARAMS``).
:meth:`DistillLoss.check_options` turns user values into typed keyword
arguments or fails with one line naming the option, the expected type and the
options the loss has.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from optical.errors import OpticalError
from optical.models.outputs import TokenEmbeddings


@dataclass
class DistillBatch:
    """Inputs of a distillation loss for one batch of B bitext pairs.

    Attributes:
        student_foreign: student(x), the foreign side.
        teacher_english: teacher(e), the English side (frozen, usually cached).
        student_english: student(e); only computed when a loss sets
            ``needs_student_english`` (it costs a second student forward).
        student_token_ids / teacher_token_ids: ``[B, n]`` / ``[B, m]`` input ids
            aligned with the embeddings, for marginals weighted by IDF.
    """

    student_foreign: TokenEmbeddings
    teacher_english: TokenEmbeddings
    student_english: TokenEmbeddings | None = None
    student_token_ids: torch.Tensor | None = None
    teacher_token_ids: torch.Tensor | None = None

    @classmethod
    def random(cls, batch: int = 2, n: int = 5, m: int = 4, hidden: int = 8, seed: int = 0) -> DistillBatch:
        """A toy batch of random token embeddings (every token content), for examples and tests.

        >>> DistillBatch.random(batch=3).student_foreign.embeddings.shape
        torch.Size([3, 5, 8])
        """
        generator = torch.Generator().manual_seed(seed)

        def tokens(length: int) -> TokenEmbeddings:
            embeddings = torch.randn(batch, length, hidden, generator=generator)
            mask = torch.ones(batch, length, dtype=torch.bool)
            return TokenEmbeddings(embeddings, mask, mask, torch.nn.functional.normalize(embeddings.mean(1), dim=-1))

        return cls(student_foreign=tokens(n), teacher_english=tokens(m), student_english=tokens(n))


@dataclass
class LossOutput:
    """A scalar loss and the numbers worth logging about it.

    A log value is a float or a detached 0-dim tensor left on the loss's device: the trainer sums them there
    and reads them only at its log interval, so a training step never waits for the device.
    """

    loss: torch.Tensor
    logs: dict[str, float | torch.Tensor] = field(default_factory=dict)


def positive(value: float) -> bool:
    """``> 0`` and finite: an infinite eps, temperature or tau would only turn the loss into nan."""
    return 0 < value < math.inf


def finite_non_negative(value: float) -> bool:
    return 0 <= value < math.inf


def at_least_one(value: int) -> bool:
    return value >= 1


@dataclass(frozen=True)
class LossOption:
    """One user-settable option of a loss.

    Attributes:
        name: keyword of the loss constructor (``eps`` in ``ot.eps=0.05``).
        type: ``float``, ``int`` or ``str``; an int is accepted where a float is expected.
        default: the constructor's default; ``None`` makes ``null`` a valid value too.
        help: one line saying what the option does.
        choices: the allowed values of a ``str`` option.
        check: a predicate every value must satisfy, described by ``constraint``.
        constraint: how ``check`` reads in an error message (``> 0``).
    """

    name: str
    type: type
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    check: Callable[[Any], bool] | None = None
    constraint: str = ""

    @property
    def expected(self) -> str:
        """What a valid value is, in words: ``a float > 0``, ``one of cosine|sqeuclidean``."""
        if self.choices:
            text = f"one of {'|'.join(self.choices)}"
        else:
            text = f"{'an' if self.type is int else 'a'} {self.type.__name__}"
            if self.constraint:
                text += f" {self.constraint}"
        return text + (" or null" if self.default is None else "")

    def describe(self) -> str:
        """``eps (float > 0, default 0.05): entropic regularisation strength``."""
        kind = "|".join(self.choices) or " ".join(filter(None, (self.type.__name__, self.constraint)))
        default = "null" if self.default is None else self.default
        return f"{self.name} ({kind}, default {default}): {self.help}"

    def coerce(self, value: Any) -> Any:
        """``value`` as this option's type, or ``ValueError`` when it is not one."""
        if value is None and self.default is None:
            return None
        if isinstance(value, bool):
            raise ValueError
        if self.type is float and isinstance(value, (int, float)):
            value = float(value)
        elif not isinstance(value, self.type):
            raise ValueError
        if self.choices and value not in self.choices:
            raise ValueError
        if self.check is not None and not self.check(value):
            raise ValueError
        return value


class DistillLoss(nn.Module):
    """Base class: ``forward(batch) -> LossOutput``."""

    #: Name used on the command line (``--method``).
    name: str = ""
    #: Whether the loss needs student(e) in the batch.
    needs_student_english: bool = False
    #: Whether the loss is a sentence-level knowledge-distillation baseline (no token alignment).
    kd_baseline: ClassVar[bool] = False
    #: The options a user may set, with types, defaults and help.
    OPTIONS: ClassVar[tuple[LossOption, ...]] = ()

    @classmethod
    def option(cls, name: str) -> LossOption:
        return next(option for option in cls.OPTIONS if option.name == name)

    @classmethod
    def options_help(cls) -> str:
        """The options of this loss, one per line."""
        return "\n".join(f"{cls.name}.{option.describe()}" for option in cls.OPTIONS) or f"{cls.name} has no options"

    @classmethod
    def check_options(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Typed keyword arguments from user ``values``; one-line :class:`OpticalError` otherwise."""
        available = ", ".join(o.name for o in cls.OPTIONS) or "none"
        known = {option.name: option for option in cls.OPTIONS}
        typed = {}
        for name, value in values.items():
            option = known.get(name)
            if option is None:
                raise OpticalError(
                    f"bad option {cls.name}.{name}: loss {cls.name!r} has no option {name!r}; its options: {available}"
                )
            try:
                typed[name] = option.coerce(value)
            except ValueError:
                raise OpticalError(
                    f"bad option {cls.name}.{name}={value!r}: expected {option.expected} ({option.help}); "
                    f"{cls.name} options: {available}"
                ) from None
        return typed

    @classmethod
    def from_options(cls, values: dict[str, Any] | None = None, **internal: Any) -> DistillLoss:
        """The loss built from checked user options plus ``internal`` arguments set by the trainer
        (tensors such as IDF tables, which are no user options)."""
        return cls(**cls.check_options(values or {}), **internal)

    def forward(self, batch: DistillBatch) -> LossOutput:  # pragma: no cover - interface
        raise NotImplementedError
