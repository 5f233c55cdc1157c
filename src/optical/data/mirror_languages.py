"""The languages of the data mirror's content-controlled sources, as one table.

NTREX-128 (Federmann et al., SUMEval 2022), FLORES-200 devtest and the FLORES-200 dev sentences of SIB-200
(NLLB Team 2022; Adelani et al., EACL 2024) translate the *same English sentences* into every language below, so a
difference between two languages on them is a difference of language, not of content. The mirror holds all three
for each of these 110 languages: the 11 XQuAD foreign languages, the four truly low-resource ones of the first
low-resource study (sw so am yo) and 95 more that span the range from languages multilingual encoders know well to
ones they barely saw (the resource spectrum).

One row per language: the mirror's file code (``bitext/<source>/en-<file code>.tsv``; ISO 639-1 where one exists,
else ISO 639-3), the NTREX-128 file code (``newstest2019-ref.<code>.txt``) and the FLORES-200 code (also SIB-200's
folder name). Everything else (the sources' language lists, the file registry, ``optical data summary``) is derived
from this table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MirrorLanguage:
    file_code: str
    """The code in the mirror's file names (``en-<file_code>.tsv``)."""
    ntrex: str
    """NTREX-128's code (``newstest2019-ref.<ntrex>.txt``)."""
    flores: str
    """FLORES-200's code (``<flores>.devtest``; SIB-200's ``data/annotated/<flores>/``)."""


# file code, NTREX-128 code, FLORES-200 code. Varieties are FLORES's: fa is Western Persian (pes), prs Dari, ms
# Standard Malay (zsm), mg Plateau Malagasy (plt), om West Central Oromo (gaz), uz Northern Uzbek (uzn), mn Halh
# Mongolian (khk), sq Tosk Albanian (als), ps Southern Pashto (pbt), ne Nepali (npi), lv Standard Latvian (lvs),
# az North Azerbaijani (azj), fil Tagalog (tgl), sr Serbian in Cyrillic, zh Simplified Chinese.
_TABLE = """
ar   arb       arb_Arab
de   deu       deu_Latn
el   ell       ell_Grek
es   spa       spa_Latn
hi   hin       hin_Deva
ro   ron       ron_Latn
ru   rus       rus_Cyrl
th   tha       tha_Thai
tr   tur       tur_Latn
vi   vie       vie_Latn
zh   zho-CN    zho_Hans
sw   swa       swh_Latn
so   som       som_Latn
am   amh       amh_Ethi
yo   yor       yor_Latn
af   afr       afr_Latn
az   aze-Latn  azj_Latn
ba   bak       bak_Cyrl
be   bel       bel_Cyrl
bem  bem       bem_Latn
bg   bul       bul_Cyrl
bn   ben       ben_Beng
bo   bod       bod_Tibt
bs   bos       bos_Latn
ca   cat       cat_Latn
ckb  ckb-Arab  ckb_Arab
cs   ces       ces_Latn
cy   cym       cym_Latn
da   dan       dan_Latn
dz   dzo       dzo_Tibt
ee   ewe       ewe_Latn
et   est       est_Latn
eu   eus       eus_Latn
fa   fas       pes_Arab
fi   fin       fin_Latn
fil  fil       tgl_Latn
fj   fij       fij_Latn
fo   fao       fao_Latn
fr   fra       fra_Latn
ga   gle       gle_Latn
gl   glg       glg_Latn
gu   guj       guj_Gujr
ha   hau       hau_Latn
he   heb       heb_Hebr
hr   hrv       hrv_Latn
hu   hun       hun_Latn
hy   hye       hye_Armn
id   ind       ind_Latn
ig   ibo       ibo_Latn
is   isl       isl_Latn
it   ita       ita_Latn
ja   jpn       jpn_Jpan
ka   kat       kat_Geor
kk   kaz       kaz_Cyrl
km   khm       khm_Khmr
kmr  kmr       kmr_Latn
kn   kan       kan_Knda
ko   kor       kor_Hang
ky   kir       kir_Cyrl
lb   ltz       ltz_Latn
lo   lao       lao_Laoo
lt   lit       lit_Latn
lv   lav       lvs_Latn
mg   mlg       plt_Latn
mi   mri       mri_Latn
mk   mkd       mkd_Cyrl
ml   mal       mal_Mlym
mn   mon       khk_Cyrl
mr   mar       mar_Deva
ms   msa       zsm_Latn
mt   mlt       mlt_Latn
my   mya       mya_Mymr
nb   nob       nob_Latn
ne   nep       npi_Deva
nl   nld       nld_Latn
nn   nno       nno_Latn
nso  nso       nso_Latn
ny   nya       nya_Latn
om   orm       gaz_Latn
pa   pan       pan_Guru
pl   pol       pol_Latn
prs  prs       prs_Arab
ps   pus       pbt_Arab
pt   por       por_Latn
rw   kin       kin_Latn
sd   snd-Arab  snd_Arab
si   sin       sin_Sinh
sk   slk       slk_Latn
sl   slv       slv_Latn
sm   smo       smo_Latn
sn   sna-Latn  sna_Latn
sq   sqi       als_Latn
sr   srp-Cyrl  srp_Cyrl
ss   ssw       ssw_Latn
sv   swe       swe_Latn
ta   tam       tam_Taml
te   tel       tel_Telu
tg   tgk-Cyrl  tgk_Cyrl
ti   tir       tir_Ethi
tk   tuk       tuk_Latn
tn   tsn       tsn_Latn
tt   tat       tat_Cyrl
ug   uig       uig_Arab
uk   ukr       ukr_Cyrl
ur   urd       urd_Arab
uz   uzb       uzn_Latn
wo   wol       wol_Latn
xh   xho       xho_Latn
yue  yue       yue_Hant
zu   zul       zul_Latn
"""

MIRROR_LANGUAGES: tuple[MirrorLanguage, ...] = tuple(MirrorLanguage(*line.split()) for line in _TABLE.strip().splitlines())
