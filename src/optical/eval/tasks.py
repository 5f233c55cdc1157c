"""The evaluation tasks, one :class:`TaskSpec` each, and the study conventions every report reads.

A task is named once here with everything the evaluation and the reports need
to know about it: how its retrieval task is built, which passage length its
documents are encoded at, whether MaxSim scoring applies, which measure is its
headline, and whether it carries the language-bias measures. ``evaluate()``
walks :data:`TASKS`; ``optical compare`` and the study report take the main
measure from :func:`main_measure`. Adding a task means adding one entry.

Task keys in results are ``<result name>.<lang>``: ``clir_sentence.el``,
``align_x2en.el``; MaxSim adds ``<name>_maxsim.<lang>``.

The resource groups (:data:`RESOURCE_GROUPS`) live here too, because every
report and command that groups languages must use the same ones. (Which
methods are KD baselines is a property of the method:
:attr:`optical.losses.combined.MethodSpec.is_kd_baseline`.)
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from optical.data.languages import XQUADR_LANGS
from optical.data.tasks import RetrievalTask, paragraph_task, sentence_task
from optical.errors import OpticalError

#: Languages grouped by resource level (XQuAD's, as in OPTICAL's low/high split).
RESOURCE_GROUPS: dict[str, tuple[str, ...]] = {"low": ("el", "hi", "th", "tr"), "high": ("de", "es", "ru", "zh")}
MAXSIM_SUFFIX = "_maxsim"


class Task(enum.StrEnum):
    CLIR_SENTENCE = "clir_sentence"
    CLIR_PARAGRAPH = "clir_paragraph"
    POOL = "pool"
    RETENTION = "retention"
    ALIGN = "align"


class PassageLength(enum.Enum):
    """Which of the evaluation's max lengths the task's documents are encoded at."""

    QUERY = "query"  # sentences: as short as the questions
    PASSAGE = "passage"  # paragraphs


Builder = Callable[[Path, str, str], RetrievalTask]


@dataclass(frozen=True)
class TaskSpec:
    """One evaluation task.

    ``build(data_dir, lang, split)`` makes its retrieval task (None for the
    FLORES alignment, which is scored as a translation matrix, not a ranked
    run). ``results`` are the result names it writes, each with its main
    measure. ``query_langs`` says which of the requested languages it runs for:
    ``foreign`` (every one but English), ``all``, or ``english`` (once, on
    English, whatever was requested).
    """

    task: Task
    help: str
    results: dict[str, str]
    build: Builder | None
    passage_length: PassageLength
    maxsim: bool
    language_bias: bool
    query_langs: str

    @property
    def takes_query_typos(self) -> bool:
        """Whether ``--query-noise`` acts on it: typos go into the queries of ranked retrieval, not into the FLORES
        sentences of the alignment task."""
        return self.build is not None

    @property
    def needs_xquad(self) -> bool:
        """Whether its queries are XQuAD questions in the requested language (so only XQuAD-R languages have it)."""
        return self.build is not None and self.query_langs != "english"

    def langs_for(self, requested: list[str]) -> list[str]:
        if self.query_langs == "english":
            return ["en"]
        if self.query_langs == "foreign":
            return [lang for lang in requested if lang != "en"]
        return list(requested)


TASKS: dict[Task, TaskSpec] = {
    spec.task: spec
    for spec in (
        TaskSpec(
            Task.CLIR_SENTENCE,
            "questions in X against the English XQuAD-R sentences",
            {"clir_sentence": "RR@10"},
            lambda data_dir, lang, split: sentence_task(data_dir, lang, ["en"], split),
            PassageLength.QUERY,
            maxsim=True,
            language_bias=False,
            query_langs="foreign",
        ),
        TaskSpec(
            Task.CLIR_PARAGRAPH,
            "questions in X against the English XQuAD paragraphs",
            {"clir_paragraph": "RR@10"},
            lambda data_dir, lang, split: paragraph_task(data_dir, lang, "en", split),
            PassageLength.PASSAGE,
            maxsim=True,
            language_bias=False,
            query_langs="foreign",
        ),
        TaskSpec(
            Task.POOL,
            "questions in X against the sentences of all 11 XQuAD-R languages (LAReQA)",
            {"pool": "AP"},
            lambda data_dir, lang, split: sentence_task(data_dir, lang, list(XQUADR_LANGS), split),
            PassageLength.QUERY,
            maxsim=True,
            language_bias=True,
            query_langs="all",
        ),
        TaskSpec(
            Task.RETENTION,
            "English questions against English sentences",
            {"retention": "RR@10"},
            lambda data_dir, lang, split: sentence_task(data_dir, "en", ["en"], split),
            PassageLength.QUERY,
            maxsim=True,
            language_bias=False,
            query_langs="english",
        ),
        TaskSpec(
            Task.ALIGN,
            "FLORES-200 devtest translation retrieval, both directions",
            {"align_x2en": "R@1", "align_en2x": "R@1"},
            None,
            PassageLength.QUERY,
            maxsim=False,
            language_bias=False,
            query_langs="foreign",
        ),
    )
}


def supported_tasks(tasks: list[str], lang: str) -> list[str]:
    """The tasks of ``tasks`` that ``lang`` has data for: XQuAD tasks need an XQuAD-R language, the alignment a
    FLORES-200 one; English retention runs for any.

    >>> supported_tasks(["clir_sentence", "pool", "align", "retention"], "dz")
    ['align', 'retention']
    """
    from optical.data.sources import FLORES_LANGS

    def has(task: str) -> bool:
        spec = TASKS[parse_task(task)]
        if spec.needs_xquad:
            return lang in XQUADR_LANGS
        return spec.task != Task.ALIGN or lang in FLORES_LANGS

    return [task for task in tasks if has(task)]


_MAIN_MEASURES = {name: measure for spec in TASKS.values() for name, measure in spec.results.items()}


def parse_task(name: str) -> Task:
    """The task called ``name``, or one clear error listing the tasks."""
    try:
        return Task(name)
    except ValueError:
        raise OpticalError(f"unknown task {name!r}; choose from {', '.join(TASKS)}") from None


def task_spec(result_name: str) -> TaskSpec | None:
    """The task that writes a result name (``align_x2en`` -> the alignment task); None if unknown."""
    base = result_name.removesuffix(MAXSIM_SUFFIX)
    return next((spec for spec in TASKS.values() if base in spec.results), None)


def main_measure(result_name: str) -> str | None:
    """The headline measure of a result name (``clir_sentence_maxsim`` -> ``RR@10``); None if unknown.

    >>> main_measure("pool"), main_measure("clir_sentence_maxsim"), main_measure("nope")
    ('AP', 'RR@10', None)
    """
    return _MAIN_MEASURES.get(result_name.removesuffix(MAXSIM_SUFFIX))
