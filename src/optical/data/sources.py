"""Registry of the bitext sources in the data mirror, with their licenses.

The license class decides whether a source may enter a training mixture:
``open`` (CC0, CC BY, CC BY-SA), ``non-commercial`` (CC BY-NC) or
``research-only`` (no explicit open license: WMT news test sets, Multi30k).
A bitext file the user brings (a path given where a source name goes) is class
``user``. FLORES-200 devtest is reserved for the alignment evaluation and is
never a training source.

Languages: NTREX-128 and both FLORES-200 sets have the 110 languages of
:mod:`optical.data.mirror_languages` (the 11 XQuAD foreign languages, the four
truly low-resource ones sw so am yo, and the 95 of the resource spectrum); the
other sources have some of the XQuAD languages.
"""

from __future__ import annotations

from dataclasses import dataclass

from optical.data.languages import BITEXT_LANGS, mirror_file_code
from optical.errors import OpticalError

REGISTERED_LICENSE_CLASSES: tuple[str, ...] = ("open", "non-commercial", "research-only")
USER_LICENSE = "user"
LICENSE_CLASSES: tuple[str, ...] = (*REGISTERED_LICENSE_CLASSES, USER_LICENSE)


@dataclass(frozen=True)
class BitextSource:
    name: str
    license: str
    license_class: str
    domain: str
    languages: tuple[str, ...]
    origin: str
    """Upstream repository and commit (the mirror files are re-layouts of it)."""
    reserved: bool = False
    """Reserved for evaluation: never part of a training mixture."""


# The content-controlled sources (same English sentences in every language) cover every mirror language.
_ALL_FOREIGN = BITEXT_LANGS
_OPUS_TESTSETS = "github.com/Helsinki-NLP/OPUS-MT-testsets @ ac0f19c0be3cb4e0d9450fcb2d7a9847c4bdd180"

SOURCES: dict[str, BitextSource] = {
    source.name: source
    for source in (
        BitextSource(
            "flores200_devtest",
            "CC BY-SA 4.0",
            "open",
            "Wikinews/Wikivoyage/Wikijunior",
            _ALL_FOREIGN,
            _OPUS_TESTSETS + " (datasets/facebook/flores/flores200_dataset/devtest)",
            reserved=True,
        ),
        BitextSource(
            "flores200_sib_dev_extra",
            "CC BY-SA 4.0",
            "open",
            "as FLORES (dev)",
            _ALL_FOREIGN,
            "github.com/dadelani/sib-200 @ 593cea88519930f776c1a4a1980b6a35b39dca57",
        ),
        BitextSource(
            "ntrex128",
            "CC BY-SA 4.0",
            "open",
            "news",
            _ALL_FOREIGN,
            "github.com/MicrosoftTranslator/NTREX @ 8561f6a622db9edad1217683e5c83daefd8bb2bf",
        ),
        BitextSource(
            "xnli_devtest",
            "CC BY-NC 4.0",
            "non-commercial",
            "MultiNLI genres",
            ("ar", "de", "el", "es", "hi", "ru", "th", "tr", "vi", "zh"),
            "github.com/wuhjie/few_shots_that_matters_wu @ 6bfe6324e428ec21a777b5543cd8e50ec82dcb3c (XNLI 1.0 via XTREME)",
        ),
        BitextSource(
            "wmt_newstest",
            "WMT, research use",
            "research-only",
            "news",
            ("de", "es", "hi", "ro", "ru", "tr", "zh"),
            _OPUS_TESTSETS + " (testsets/*/newstest*)",
        ),
        BitextSource(
            "tico19_test",
            "CC0",
            "open",
            "COVID-19",
            ("ar", "es", "hi", "ru", "zh"),
            _OPUS_TESTSETS + " (testsets/*/tico19-test.*)",
        ),
        BitextSource(
            "mintaka_dev_questions",
            "CC BY 4.0",
            "open",
            "factoid questions",
            ("ar", "de", "es", "hi"),
            "github.com/amazon-science/mintaka @ cbb87072c9e0c92a2baf585f1d67b5a9003081a0",
        ),
        BitextSource(
            "ro_sts",
            "CC BY-SA 4.0",
            "open",
            "STS-B sentences",
            ("ro",),
            "github.com/dumitrescustefan/RO-STS @ 98b5804b454892c70815777fe03e874ea7f20f1b",
        ),
        BitextSource(
            "multi30k_test",
            "research use (Flickr30k/Multi30k terms)",
            "research-only",
            "image captions",
            ("de",),
            _OPUS_TESTSETS + " (testsets/deu-eng/multi30k_*)",
        ),
    )
}

FLORES_DEVTEST = "flores200_devtest"


#: Languages with the reserved FLORES-200 devtest (the alignment evaluation).
FLORES_LANGS: tuple[str, ...] = SOURCES[FLORES_DEVTEST].languages


def get_source(name: str) -> BitextSource:
    if name not in SOURCES:
        raise OpticalError(
            f"unknown bitext source {name!r}; known sources: {' '.join(SOURCES)} "
            "(or give the path of an English<TAB>foreign .tsv file)"
        )
    return SOURCES[name]


def sources_for(lang: str) -> tuple[BitextSource, ...]:
    """All sources (the reserved one included) that have English-``lang`` pairs."""
    return tuple(source for source in SOURCES.values() if lang in source.languages)


def bitext_relpath(source: str, lang: str) -> str:
    """Path of a source's file inside a data directory (named by the mirror's file code: ``ku`` -> ``en-kmr.tsv``)."""
    return f"bitext/{source}/en-{mirror_file_code(lang)}.tsv"
