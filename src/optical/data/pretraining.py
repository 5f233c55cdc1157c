"""What is documented of each mirror language in the pre-training of the encoders: the x-axis's companions in the
resource-spectrum report (issue 27, item 5).

multilingual-e5 models are initialised from the XLM-R family (Wang et al. 2024, "Multilingual E5 Text Embeddings: A
Technical Report", arXiv 2402.05672: mE5-small from Multilingual-MiniLM, which distils XLM-R Base), whose
pre-training corpus is CC-100. The sizes below are CC-100's uncompressed text per language in GiB, from Conneau et
al., ACL 2020 ("Unsupervised Cross-lingual Representation Learning at Scale"), Appendix A, Table 6, with the Swedish and
Ukrainian sizes as the authors corrected them (github.com/mayhewsw/multilingual-data-stats, cc-100/). Keyed by the
mirror's file code; CC-100's Norwegian is given to nb (Bokmål), its Tagalog (tl) to fil, its Kurmanji (ku) to kmr.
A language absent here is not one of XLM-R's 100 languages (e.g. dz, bo, ee, fj, yo): the encoder met it, if at
all, as stray text in other languages' data. The share is a size over :data:`CC100_TOTAL_GIB`, not the sampling
probability XLM-R trained with (it up-weights small languages, alpha = 0.3).
"""

from __future__ import annotations

from optical.data.languages import mirror_file_code
from optical.data.mirror_languages import MIRROR_LANGUAGES

#: CC-100's size summed over Table 6's 100 rows (its romanised Hindi, Urdu, Bengali, Telugu and Tamil included).
CC100_TOTAL_GIB = 2467.2

_CC100_GIB = """
ar 28  de 66.6  el 46.9  es 53.3  hi 20.2  ro 61.4  ru 278  th 71.7  tr 20.9  vi 137.3  zh 46.9  sw 1.6  so 0.4
am 0.8  af 1.3  az 6.5  be 4.3  bg 57.5  bn 8.4  bs 0.1  ca 10.1  cs 16.3  cy 0.8  da 45.6  et 6.1  eu 2
fa 111.6  fi 54.3  fil 3.1  fr 56.8  ga 0.5  gl 2.9  gu 1.9  ha 0.3  he 31.6  hr 20.5  hu 58.4  hy 5.5
id 148.3  is 3.2  it 30.2  ja 69.3  ka 9.1  kk 6.4  km 1.5  kmr 0.4  kn 3.3  ko 54.2  ky 1.2  lo 0.6  lt 13.7
lv 8.8  mg 0.2  mk 4.8  ml 7.6  mn 3  mr 2.8  ms 8.5  my 1.6  nb 49  ne 3.8  nl 29.3  om 0.1  pa 0.8  pl 44.6
ps 0.7  pt 49.1  sd 0.4  si 3.6  sk 23.2  sl 10.3  sq 5.4  sr 9.1  sv 85  ta 12.2  te 4.7  ug 0.4  uk 84.6
ur 5.7  uz 0.7  xh 0.1
"""
CC100_GIB: dict[str, float] = {code: float(size) for code, size in zip(*[iter(_CC100_GIB.split())] * 2)}

_SCRIPTS = {language.file_code: language.flores.split("_")[1] for language in MIRROR_LANGUAGES}


def cc100_gib(lang: str) -> float | None:
    """``lang``'s CC-100 size in GiB, None where XLM-R's pre-training has no such language.

    >>> cc100_gib("el"), cc100_gib("ku"), cc100_gib("dz")
    (46.9, 0.4, None)
    """
    return CC100_GIB.get(mirror_file_code(lang))


def script(lang: str) -> str | None:
    """The ISO 15924 script of ``lang``'s FLORES-200 text (None for a language outside the mirror's table).

    >>> script("el"), script("fa-AF"), script("yue"), script("xx")
    ('Grek', 'Arab', 'Hant', None)
    """
    return _SCRIPTS.get(mirror_file_code(lang))
