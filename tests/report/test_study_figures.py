"""Every figure of the tiny study's report (tests/report/conftest.py): its size in pixels, its labels, its fonts."""

from __future__ import annotations

import matplotlib.image
import pytest
from matplotlib.text import Text

from optical.report import style
from optical.report.plots import ForestRow, MeanPoint, forest_figure, means_figure
from optical.report.study.figures import (
    Figures,
    curves_figure,
    differences_figure,
    forest_pages,
    headline_figure,
)
from optical.report.study.write import render_study

SCREEN_PIXELS = (style.SCREEN[0] * style.DPI, style.SCREEN[1] * style.DPI)


def _figures(analysis):
    """(name, figure) for every kind of figure the report draws, built from the analysis."""
    question, langs, tasks = analysis.question, analysis.langs, analysis.question_tasks
    for answer in question.arms:
        yield f"headline {answer.arm.name}", headline_figure(answer.headline, answer.arm, langs, tasks)
        for task, page, _, figure in forest_pages(answer.forest, answer.arm, tasks):
            yield f"forest {answer.arm.name} {task} {page}", figure
    budget = next(c for c in analysis.curves if c.axis == "budget")
    for task in budget.tasks:
        yield f"curves {task.task}", curves_figure(budget, task, langs, analysis.methods)
    yield "differences", differences_figure("budget", budget.values, budget.difference)
    row = ForestRow("ot − mse, de", 0.1, 0.05, 0.15, True)
    yield "compare forest", forest_figure({"clir_sentence MRR@10": [row]}, "difference")
    yield "compare means", means_figure("clir_sentence", "MRR@10", ["de"], {"ot": [MeanPoint(0, 0.5, 0.4, 0.6)]})


def test_every_axis_is_labelled_and_no_text_is_below_the_smallest_font(tiny_analysis):
    import matplotlib.pyplot as plt

    names = []
    for name, fig in _figures(tiny_analysis):
        names.append(name)
        for ax in (ax for ax in fig.axes if ax.get_visible()):
            titled = any(ax.get_title(loc=loc) for loc in ("left", "center", "right"))
            assert ax.get_xlabel() and titled, (name, ax)
            if any(label.get_text() for label in ax.get_yticklabels()):  # panels sharing y show its labels once
                assert ax.get_ylabel(), (name, ax.get_title())
        fig.canvas.draw()
        small = [t.get_text() for t in fig.findobj(Text) if t.get_text() and t.get_fontsize() < style.SMALL_FONT_SIZE]
        assert not small, (name, small)
        plt.close(fig)
    assert {"headline reference", "headline budget", "differences"} <= set(names)


def test_every_saved_figure_fits_one_screen(tiny_analysis, tmp_path):
    figures = Figures(tmp_path)
    doc = render_study(tiny_analysis, figures)
    names = {path.name for path in figures.images}
    assert {"headline.reference.png", "headline.budget.png", "forest.reference.clir_sentence.1.png"} <= names
    for path in figures.images:
        height, width = matplotlib.image.imread(tmp_path / path).shape[:2]
        assert width <= SCREEN_PIXELS[0] and height <= SCREEN_PIXELS[1], (path, width, height)
    text = doc.markdown()
    assert "![Arm reference: where ot is ahead of, level with or behind mse, zero-shot" in text
    assert "(plots/forest.reference.clir_sentence.1.png)" in text  # the full forest, linked


@pytest.mark.parametrize("n_langs", [8, 40])
def test_a_headline_of_many_rows_still_fits(tiny_analysis, tmp_path, n_langs):
    import dataclasses

    from optical.report.plots import save_figure

    answer = tiny_analysis.question.arms[0]
    rows = [dataclasses.replace(r, lang=f"{r.lang}{i}") for i in range(n_langs // 2) for r in answer.headline.rows]
    langs = tuple(dict.fromkeys(r.lang for r in rows))
    headline = dataclasses.replace(answer.headline, rows=tuple(rows))
    path = save_figure(headline_figure(headline, answer.arm, langs, tiny_analysis.question_tasks), tmp_path / "h.png")
    height, width = matplotlib.image.imread(path).shape[:2]
    assert width <= SCREEN_PIXELS[0] and height <= SCREEN_PIXELS[1], (width, height)


def test_a_method_has_one_colour_in_every_figure():
    assert style.method_colour("mse") == "tab:blue" and style.method_colour("zero-shot") == style.ZERO_SHOT_COLOUR
    known = [style.method_colour(m) for m in style.METHOD_COLOURS]
    assert len(set(known)) == len(known)
    assert style.method_colour("my-new-method") == style.method_colour("my-new-method")
