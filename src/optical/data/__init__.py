"""The data layer: XQuAD / XQuAD-R readers, the dev/test split, retrieval tasks, bitext, fetching.

Everything is typed dataclasses and plain functions of a data directory (no global state).
"""

from optical.data.bitext import (Bitext, BitextConfig, BitextFile, BitextPair, BitextStats, LengthFilter,
                                 ValidationReport, build_bitext, load_flores_devtest, read_bitext_file, read_source)
from optical.data.datadir import DATA_DIR_ENV, data_dir_location, resolve_data_dir
from optical.data.fetch import FetchReport, fetch_data
from optical.data.languages import BITEXT_LANGS, LANGUAGES, XQUAD_LANGS, XQUADR_LANGS, Language, validate_lang
from optical.data.sources import LICENSE_CLASSES, SOURCES, BitextSource, get_source, sources_for
from optical.data.split import ArticleSplit, get_split
from optical.data.summary import DataSummary, summarize
from optical.data.tasks import RetrievalTask, paragraph_task, sentence_task
from optical.data.xquad import Article, Paragraph, QADataset, Question, read_xquad, read_xquadr

__all__ = [
    "Article", "ArticleSplit", "BITEXT_LANGS", "Bitext", "BitextConfig", "BitextFile", "BitextPair", "BitextSource",
    "BitextStats", "DATA_DIR_ENV", "DataSummary", "FetchReport", "LANGUAGES", "LICENSE_CLASSES", "Language",
    "LengthFilter", "Paragraph", "QADataset", "Question", "RetrievalTask", "SOURCES", "ValidationReport",
    "XQUADR_LANGS", "XQUAD_LANGS", "build_bitext", "data_dir_location", "fetch_data", "get_source", "get_split",
    "load_flores_devtest", "paragraph_task", "read_bitext_file", "read_source", "read_xquad", "read_xquadr",
    "resolve_data_dir", "sentence_task", "sources_for", "summarize", "validate_lang",
]
