"""The data layer: XQuAD / XQuAD-R readers, the dev/test split, retrieval tasks, bitext, fetching.

Everything is typed dataclasses and plain functions of a data directory (no global state).
The names below are imported from their modules on first use (:mod:`optical._lazy`).
"""

from optical._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "optical.data.bitext": (
            "Bitext",
            "BitextConfig",
            "BitextFile",
            "BitextPair",
            "BitextStats",
            "LengthFilter",
            "ValidationReport",
            "build_bitext",
            "load_flores_devtest",
            "read_bitext_file",
            "read_source",
            "selection_slice",
        ),
        "optical.data.datadir": ("DATA_DIR_ENV", "data_dir_location", "resolve_data_dir"),
        "optical.data.fetch": ("FetchReport", "fetch_data"),
        "optical.data.beir": ("Collection", "export_beir", "read_collection", "write_beir"),
        "optical.data.languages": (
            "BITEXT_LANGS",
            "LANGUAGES",
            "LOW_RESOURCE_LANGS",
            "SPECTRUM_LANGS",
            "XQUAD_LANGS",
            "XQUADR_LANGS",
            "Language",
            "canonical_lang",
            "get_language",
            "validate_lang",
        ),
        "optical.data.sources": ("FLORES_LANGS", "LICENSE_CLASSES", "SOURCES", "BitextSource", "get_source", "sources_for"),
        "optical.data.split": ("ArticleSplit", "get_split"),
        "optical.data.summary": ("DataSummary", "summarize"),
        "optical.data.tasks": ("RetrievalTask", "paragraph_task", "sentence_task"),
        "optical.data.xquad": ("Article", "Paragraph", "QADataset", "Question", "read_xquad", "read_xquadr"),
    },
)
