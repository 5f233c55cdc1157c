"""Machine translation of queries into English, for the translate-test baseline.

Translate-test is the baseline OPTICAL (Huang et al., WSDM 2023, arXiv:2301.12566) reports beating: translate each
foreign query into English with an MT system, then retrieve with the English teacher alone. Any Hugging Face
sequence-to-sequence MT model serves (Marian/OPUS-MT, M2M-100, NLLB-200): a local directory or a hub name, loaded
with ``trust_remote_code=False``. Multilingual models are told the source and target languages through their
tokenizer's language tokens, found for the query language by its FLORES-200 code (NLLB: ``ell_Grek``), its
``__xx__`` form or its bare code (M2M-100: ``el``); bilingual models (one Marian model per pair) need none.
Decoding is greedy (one beam), so a translation is a function of the model and the text.

:class:`TranslatingEncoder` puts the translation in front of an encoder: the evaluation encodes a foreign query
with it exactly as it would with a student, and the teacher sees the English translation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from optical.errors import OpticalError

if TYPE_CHECKING:
    from optical.models.encoder import Encoder

#: Longest translation, in target tokens (a query or a FLORES sentence is far shorter).
MAX_NEW_TOKENS = 256
_ENGLISH_TOKENS = ("eng_Latn", "__en__", "en")


def _flores_code(lang: str) -> str | None:
    from optical.data.languages import get_language
    from optical.data.mirror_languages import MIRROR_LANGUAGES

    return next((row.flores for row in MIRROR_LANGUAGES if get_language(row.file_code).code == lang), None)


def language_token(tokenizer, lang: str) -> str | None:
    """The token by which a multilingual MT tokenizer names ``lang`` (``eng_Latn``, ``__en__``, ``en``), or None."""
    vocab = tokenizer.get_vocab()
    candidates = _ENGLISH_TOKENS if lang == "en" else tuple(c for c in (_flores_code(lang), f"__{lang}__", lang) if c)
    return next((token for token in candidates if token in vocab), None)


@dataclass
class Translator:
    """A seq2seq MT model translating ``source_lang`` into English, with a memo of what it translated."""

    model: torch.nn.Module
    tokenizer: object
    source_lang: str
    batch_size: int = 16
    memo: dict[str, str] = field(default_factory=dict)
    #: A progress bar over the batches of each call that translates anything.
    show_progress: bool = False

    @classmethod
    def load(cls, location: str | Path, source_lang: str, device: str = "cpu") -> Translator:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        from optical.models.check import check_model_dir

        check_model_dir(location, role="--mt-model")  # refuses a directory that needs code of its own (auto_map)
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(location), trust_remote_code=False)
            model = AutoModelForSeq2SeqLM.from_pretrained(str(location), trust_remote_code=False)
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise OpticalError(
                f"--mt-model {location} is not a sequence-to-sequence MT model transformers can load ({first}); "
                "give a Marian, M2M-100 or NLLB model name or directory"
            ) from None
        return cls(model.to(device).eval(), tokenizer, source_lang)

    def _language_settings(self) -> dict:
        """``forced_bos_token_id`` for a multilingual model (and its tokenizer's ``src_lang`` set); none for a pair model."""
        if not hasattr(self.tokenizer, "src_lang"):
            return {}
        source, target = language_token(self.tokenizer, self.source_lang), language_token(self.tokenizer, "en")
        if source is None or target is None:
            missing = self.source_lang if source is None else "en"
            raise OpticalError(f"--mt-model has no language token for {missing}: it does not translate {self.source_lang} -> en")
        self.tokenizer.src_lang = source
        return {"forced_bos_token_id": self.tokenizer.convert_tokens_to_ids(target)}

    @torch.inference_mode()
    def translate(self, texts: list[str]) -> list[str]:
        """English translations of ``texts``, in order (each distinct text translated once per translator)."""
        from tqdm.auto import tqdm

        new = [text for text in dict.fromkeys(texts) if text not in self.memo]
        settings = self._language_settings() if new else {}
        device = next(self.model.parameters()).device
        starts = range(0, len(new), self.batch_size)
        for start in tqdm(
            starts, desc=f"translate {self.source_lang}->en", unit="batch", disable=not self.show_progress, leave=False
        ):
            batch = new[start : start + self.batch_size]
            inputs = self.tokenizer(batch, return_tensors="pt", padding=True, truncation=True).to(device)
            output = self.model.generate(**inputs, num_beams=1, do_sample=False, max_new_tokens=MAX_NEW_TOKENS, **settings)
            self.memo.update(zip(batch, self.tokenizer.batch_decode(output, skip_special_tokens=True)))
        return [self.memo[text] for text in texts]


@dataclass
class TranslatingEncoder:
    """The English ``encoder`` behind ``translator``: what the evaluation encodes as a query is translated first."""

    encoder: Encoder
    translator: Translator

    @property
    def hidden_size(self) -> int:
        return self.encoder.hidden_size

    @property
    def device(self) -> torch.device:
        return self.encoder.device

    def encode(self, texts, kind="plain", batch_size=64, show_progress=False, max_length=None) -> np.ndarray:
        return self.encoder.encode(self.translator.translate(list(texts)), kind, batch_size, show_progress, max_length)

    def encode_tokens(self, texts, kind="plain", batch_size=64, max_length=None):
        texts = list(texts)
        translated = self.translator.translate(texts)
        empty = [source for source, english in zip(texts, translated) if not english.strip()]
        if empty:  # MaxSim sums over a query's tokens: an empty translation has none to sum
            raise OpticalError(
                f"--mt-model translated {len(empty)} of {len(texts)} {self.translator.source_lang} texts into nothing "
                f"(first: {empty[0][:60]!r}); MaxSim needs a token per query: use a model that translates from "
                f"{self.translator.source_lang}, or --scoring dense"
            )
        return self.encoder.encode_tokens(translated, kind=kind, batch_size=batch_size, max_length=max_length)
