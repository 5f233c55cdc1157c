"""How numbers and names are written in every table, report and file name of the project.

One formatter, so that a mean, a difference, a p-value or a confidence
interval reads the same in ``optical compare``, the study report, the demo and
the dry-run listing.
"""

from __future__ import annotations

import re


def number(value: float, signed: bool = False) -> str:
    """Three decimals, with a sign for differences.

    >>> number(0.71649), number(-0.0234, signed=True)
    ('0.716', '-0.023')
    """
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def p_value(value: float) -> str:
    """A p-value: three decimals, two significant digits below 0.001.

    >>> p_value(0.0312), p_value(0.0001)
    ('0.031', '0.0001')
    """
    return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


def interval(low: float, high: float, signed: bool = False) -> str:
    """``[low, high]``.

    >>> interval(0.1, 0.25)
    '[0.100, 0.250]'
    """
    return f"[{number(low, signed)}, {number(high, signed)}]"


def cell_text(value: object) -> str:
    """A table cell: ``-`` for a missing value, floats in their shortest form (0.5, 2000).

    >>> cell_text(None), cell_text(0.5), cell_text(2000)
    ('-', '0.5', '2000')
    """
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def safe_filename(name: str) -> str:
    """A name usable as a file name on every system (``RR@10`` -> ``RR_at_10``).

    >>> safe_filename("clir_sentence.RR@10"), safe_filename("ot+mse:0.5")
    ('clir_sentence.RR_at_10', 'ot_mse_0.5')
    """
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name.replace("@", "_at_"))
