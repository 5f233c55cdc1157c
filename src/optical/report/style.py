"""The one plotting style of the package: sizes, fonts and colours shared by every figure (``optical compare`` and
the study report), so that a method has the same colour in every figure and every label is readable at 100%.

Importing this module chooses matplotlib's Agg backend (no display needed) and sets its fonts.
A figure is laid out in inches and saved at :data:`DPI`, so ``inches x DPI`` is its size in pixels; a figure meant
to be seen whole (a headline) keeps within :data:`SCREEN` (about one screen at 100% zoom).
"""

from __future__ import annotations

import zlib

import matplotlib

matplotlib.use("Agg")

#: Pixels per inch of every saved figure.
DPI = 100
#: (width, height) in inches a headline figure keeps within: 1600 x 1000 pixels at :data:`DPI`.
SCREEN = (16.0, 10.0)
#: Font sizes in points: text, and the smallest any label gets (tick labels, legends).
FONT_SIZE = 10
SMALL_FONT_SIZE = 9
#: One panel of a grid of panels (curves along an axis), in inches.
PANEL_WIDTH = 3.2
PANEL_HEIGHT = 2.5
#: One row of a forest plot (a difference with its CI), in inches, and the most rows one page of it holds.
ROW_HEIGHT = 0.26
ROWS_PER_PAGE = 30

ZERO_SHOT_COLOUR = "black"
#: The vertical (or horizontal) line at a difference of 0.
ZERO_LINE = {"color": "grey", "linestyle": "--", "linewidth": 0.9}

#: The methods of the studies, each with its own colour in every figure (tab10 without its grey).
METHOD_COLOURS = {
    "zero-shot": ZERO_SHOT_COLOUR,
    "mse": "tab:blue",
    "contrastive": "tab:orange",
    "contrastive-both": "tab:purple",
    "ot": "tab:green",
    "ot+mse": "tab:olive",
    "ot-unbalanced": "tab:cyan",
    "ot-idf": "tab:pink",
    "hard_align": "tab:brown",
}
#: Colours for any other name, picked by a hash of the name (the same name, the same colour, in every figure).
EXTRA_COLOURS = ("#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5", "tab:red")
#: Colours of series that are not methods (languages, systems of ``optical compare``), in order.
SERIES_COLOURS = (
    "tab:blue",
    "tab:orange",
    "tab:green",
    "tab:red",
    "tab:purple",
    "tab:brown",
    "tab:pink",
    "tab:olive",
    "tab:cyan",
    *EXTRA_COLOURS[:-1],
)

matplotlib.rcParams.update(
    {
        "font.size": FONT_SIZE,
        "axes.titlesize": FONT_SIZE,
        "axes.labelsize": FONT_SIZE,
        "xtick.labelsize": SMALL_FONT_SIZE,
        "ytick.labelsize": SMALL_FONT_SIZE,
        "legend.fontsize": SMALL_FONT_SIZE,
        "legend.title_fontsize": SMALL_FONT_SIZE,
        "figure.titlesize": FONT_SIZE + 1,
        "figure.dpi": DPI,
        "savefig.dpi": DPI,
    }
)


def method_colour(method: str) -> str:
    """The colour of ``method`` in every figure (zero-shot black)."""
    known = METHOD_COLOURS.get(method)
    return known if known is not None else EXTRA_COLOURS[zlib.crc32(method.encode("utf-8")) % len(EXTRA_COLOURS)]


def series_colours(names) -> dict[str, str]:
    """One colour per name, in order (for series that are not methods: languages, systems)."""
    return {name: SERIES_COLOURS[i % len(SERIES_COLOURS)] for i, name in enumerate(names)}
