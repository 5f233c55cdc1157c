"""The FastAPI app of ``optical serve``: the page, and a JSON API over :class:`optical.search.Searcher` and
:func:`optical.align.align_with`.

Routes: ``GET /`` (the page), ``GET /static/*`` (its script and style), ``GET /api/options``
(collections and students), ``POST /api/search`` and ``POST /api/align``. A user error
(an empty query, an unknown collection) is a 400 with the one-line message as ``detail``.
One searcher per student and collection is loaded on first use and kept; requests are
served one at a time (one lock), as the models share the CPU anyway.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from optical.align import AlignOptions, CenterMode, Centre, align_with, load_students, run_centre, run_options
from optical.errors import OpticalError
from optical.search import Scoring, SearchConfig, Searcher

STATIC = Path(__file__).parent / "static"
#: Tokens of a document the alignment heatmap shows at most (the document's start).
ALIGN_MAX_TOKENS = 96


@dataclass(frozen=True)
class ServeConfig:
    """What the page offers: named collections (name -> dir) and students (zero-shot or run dirs)."""

    collections: dict[str, str]
    students: list[str]
    teacher: str | None = None
    device: str = "cpu"
    top_k: int = 10

    def validate(self) -> None:
        if not self.collections:
            raise OpticalError("no --collection given: name at least one BEIR or TREC dir to search")
        if not self.students:
            raise OpticalError("no --student given: pass zero-shot and/or output dirs of `optical distill`")
        for name, path in self.collections.items():
            if not Path(path).is_dir():
                raise OpticalError(f"--collection {name}={path}: no such directory; give a BEIR or TREC collection dir")
        load_students(self.students)  # run dirs checked (and their teachers agree) before the page starts
        if self.top_k < 1:
            raise OpticalError(f"--top-k must be >= 1, got {self.top_k}")


class SearchRequest(BaseModel):
    query: str
    collection: str
    student: str


class AlignRequest(SearchRequest):
    doc_id: str


class _Models:
    """The searchers, loaded on first use, and the alignment settings of each student."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.searchers: dict[tuple[str, str], Searcher] = {}
        self.settings: dict[str, tuple[AlignOptions, Centre, str]] = {}  # student -> its alignment options, centre, label
        self.lock = threading.Lock()

    def searcher(self, student: str, collection: str) -> Searcher:
        if collection not in self.config.collections:
            raise OpticalError(f"unknown collection {collection!r}; choose from {', '.join(self.config.collections)}")
        if student not in self.config.students:
            raise OpticalError(f"unknown student {student!r}; choose from {', '.join(self.config.students)}")
        key = (student, collection)
        if key not in self.searchers:
            config = SearchConfig(
                collection=self.config.collections[collection],
                student=student,
                teacher=self.config.teacher,
                top_k=self.config.top_k,
                scoring=Scoring.MAXSIM,
                device=self.config.device,
            )
            self.searchers[key] = Searcher(config)
        return self.searchers[key]

    def alignment(self, request: AlignRequest) -> dict:
        searcher = self.searcher(request.student, request.collection)
        document = searcher.corpus.texts.get(request.doc_id)
        if document is None:
            raise OpticalError(f"unknown document {request.doc_id!r} in {request.collection}")
        if request.student not in self.settings:  # a run's files are verified once, not on every click
            students, _ = load_students([request.student])
            options, ot_run = run_options(students, CenterMode.AUTO, {})
            options = dataclasses.replace(options, max_length=max(options.max_length, ALIGN_MAX_TOKENS))
            self.settings[request.student] = (options, run_centre(options, ot_run, searcher.teacher), students[0].label)
        options, centre, label = self.settings[request.student]
        panel = align_with(searcher.student, searcher.teacher, request.query, document, options, centre, label)
        return panel.to_dict()


def create_app(config: ServeConfig) -> FastAPI:
    """The app serving ``config``'s collections and students."""
    config.validate()
    models = _Models(config)
    app = FastAPI(title="optical", docs_url=None, redoc_url=None, openapi_url=None)  # no page that loads a CDN
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def guarded(work):
        with models.lock:
            try:
                return work()
            except OpticalError as exc:
                raise HTTPException(status_code=400, detail=str(exc)) from None

    @app.get("/")
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/api/options")
    def options() -> dict:
        return {"collections": list(config.collections), "students": config.students, "top_k": config.top_k}

    @app.post("/api/search")
    def search(request: SearchRequest) -> dict:
        def work() -> dict:
            if not request.query.strip():
                raise OpticalError("the query is empty; type the words to search for")
            [result] = models.searcher(request.student, request.collection).search([request.query])
            return result.to_dict()

        return guarded(work)

    @app.post("/api/align")
    def align(request: AlignRequest) -> dict:
        return guarded(lambda: models.alignment(request))

    return app
