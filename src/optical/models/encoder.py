"""One wrapper over any Hugging Face encoder + tokenizer: teacher and student alike.

It adds what retrieval and distillation need on top of ``AutoModel``: the model's text
prefixes (E5's "query: " / "passage: ", Wang et al. 2022, arXiv:2212.03533), a content-token
mask that drops special and prefix tokens (the token sets OT distillation aligns), mean or CLS
pooling with L2 normalisation, an optional linear projection of a student's hidden states to
the teacher's width, fast sorted-batch encoding, and saving in a format that both
transformers and sentence-transformers load.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging as transformers_logging

from optical.errors import OpticalError
from optical.models.check import check_model_dir
from optical.models.outputs import TokenEmbeddings
from optical.models.registry import default_model_for, resolve_model
from optical.models.st_format import (
    POOLING_MODES,
    load_dense_projection,
    read_sentence_transformers_config,
    write_sentence_transformers_files,
)
from optical.storage import atomic_directory

TextKind = Literal["query", "passage", "plain"]
TEXT_KINDS = ("query", "passage", "plain")


class Encoder(torch.nn.Module):
    """A transformer encoder with its tokenizer, prefixes, pooling and optional projection.

    Build it with :meth:`load`. ``forward`` runs a batch from :meth:`tokenize`; ``encode``
    returns normalised sentence embeddings as numpy, in input order.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        pooling: str = "mean",
        query_prefix: str = "",
        passage_prefix: str = "",
        max_length: int = 128,
        projection: torch.nn.Linear | None = None,
        name: str = "",
    ):
        super().__init__()
        if pooling not in POOLING_MODES:
            raise OpticalError(f"pooling {pooling!r} is not supported; use one of {', '.join(POOLING_MODES)}")
        if not tokenizer.is_fast:
            raise OpticalError(f"{name}: the encoder needs a fast (Rust) tokenizer for offset mappings; provide tokenizer.json")
        self.model = model
        self.tokenizer = tokenizer
        self.projection = projection
        self.pooling = pooling
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self.max_length = max_length
        self.name = name
        #: Autocast dtype of the forward passes of :meth:`encode` and :meth:`encode_tokens` (None: the weights'
        #: dtype). Evaluation sets it from its ``mixed_precision``; outputs stay float32 either way.
        self.inference_autocast: torch.dtype | None = None

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(
        cls,
        name_or_path: str | Path,
        device: str | torch.device = "cpu",
        pooling: str | None = None,
        query_prefix: str | None = None,
        passage_prefix: str | None = None,
        max_length: int = 128,
        projection_dim: int | None = None,
    ) -> Encoder:
        """Load a default model name, a local directory or a hub name.

        Settings left ``None`` come from the registry (default models), else from the model's
        sentence-transformers files, else mean pooling and no prefix. ``projection_dim`` adds a
        fresh ``Linear(hidden, projection_dim)`` unless the directory already holds a projection
        (a saved student), which is then loaded.
        """
        location = resolve_model(name_or_path)
        registry_entry = default_model_for(name_or_path)
        check_model_dir(location, role="model")
        try:
            return cls._load(
                location, registry_entry, name_or_path, device, pooling, query_prefix, passage_prefix, max_length, projection_dim
            )
        except OpticalError:
            raise
        except pickle.UnpicklingError:
            # torch loads pickled weights with weights_only=True; its refusal advises to load the file unsafely.
            raise OpticalError(
                f"model {location}: its pickled weights (pytorch_model.bin) hold more than tensors, and loading them "
                "would run code they carry; refused. Use a model with model.safetensors weights"
            ) from None
        except Exception as exc:  # transformers' chained errors: one line naming the model instead
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise OpticalError(f"model {location} cannot be loaded ({type(exc).__name__}: {first})") from exc

    @classmethod
    def _load(
        cls, location, registry_entry, name_or_path, device, pooling, query_prefix, passage_prefix, max_length, projection_dim
    ):
        st_config = read_sentence_transformers_config(location)
        if registry_entry is not None:
            defaults = (registry_entry.pooling, registry_entry.query_prefix, registry_entry.passage_prefix)
        elif st_config is not None:
            defaults = (st_config.pooling or "mean", st_config.query_prefix or "", st_config.passage_prefix or "")
        else:
            defaults = ("mean", "", "")
        tokenizer = AutoTokenizer.from_pretrained(str(location), trust_remote_code=False)
        model = _load_backbone(str(location))
        projection = None
        if st_config is not None and st_config.dense_dir is not None:
            projection = load_dense_projection(st_config.dense_dir)
        hidden = model.config.hidden_size
        if projection_dim is not None and (projection is None or projection.out_features != projection_dim):
            if projection is not None:
                raise OpticalError(
                    f"{location}: holds a projection to {projection.out_features} dims, not the requested {projection_dim}"
                )
            projection = torch.nn.Linear(hidden, projection_dim)
        encoder = cls(
            model,
            tokenizer,
            pooling=pooling or defaults[0],
            query_prefix=defaults[1] if query_prefix is None else query_prefix,
            passage_prefix=defaults[2] if passage_prefix is None else passage_prefix,
            max_length=max_length,
            projection=projection,
            name=str(name_or_path),
        )
        return encoder.to(device).eval()

    # --------------------------------------------------------------- properties
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def hidden_size(self) -> int:
        """Width of ``forward``'s embeddings: the projection's output if there is one."""
        return self.projection.out_features if self.projection is not None else self.model.config.hidden_size

    def prefix(self, kind: TextKind) -> str:
        if kind not in TEXT_KINDS:
            raise ValueError(f"kind must be one of {TEXT_KINDS}, not {kind!r}")
        return {"query": self.query_prefix, "passage": self.passage_prefix, "plain": ""}[kind]

    # --------------------------------------------------------------- tokenizing
    def tokenize(self, texts: Sequence[str], kind: TextKind = "plain", max_length: int | None = None) -> dict[str, torch.Tensor]:
        """Prefix, tokenize and pad ``texts`` into a batch on the encoder's device, truncated to
        ``max_length`` tokens (default: the encoder's ``max_length``).

        ``content_mask`` marks the tokens that cover text characters: special tokens have no
        characters, and a prefix token's characters all lie inside the prefix (its end offset
        is at most the prefix length), whatever the tokenizer makes of the prefix.
        """
        device = self.device
        return {key: value.to(device, non_blocking=True) for key, value in self._tokenize_cpu(texts, kind, max_length).items()}

    def tokenize_all(
        self, texts: Sequence[str], kind: TextKind = "plain", max_length: int | None = None, chunk: int = 4096
    ) -> dict[str, torch.Tensor]:
        """:meth:`tokenize` of every text at once, on the CPU, padded to the longest: a run tokenizes its
        bitext once and slices batches out of it. Row ``i`` cut to its batch's widest length equals what
        :meth:`tokenize` gives for that batch; ``lengths`` holds each text's token count.
        """
        parts = []
        for start in range(0, len(texts), chunk):
            parts.append(self._tokenize_cpu(texts[start : start + chunk], kind, max_length))
        width = max((p["input_ids"].shape[1] for p in parts), default=0)
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        out = {}
        for key, fill in (("input_ids", pad_id), ("attention_mask", 0), ("content_mask", False)):
            padded = [torch.full((p[key].shape[0], width), fill, dtype=p[key].dtype) for p in parts]
            for target, p in zip(padded, parts):
                target[:, : p[key].shape[1]] = p[key]
            out[key] = torch.cat(padded) if padded else torch.zeros(0, 0, dtype=torch.long)
        out["lengths"] = out["attention_mask"].sum(-1)
        return out

    def _tokenize_cpu(self, texts: Sequence[str], kind: TextKind, max_length: int | None) -> dict[str, torch.Tensor]:
        prefix = self.prefix(kind)
        encoded = self.tokenizer(
            [prefix + text for text in texts],
            padding=True,
            truncation=True,
            max_length=self.max_length if max_length is None else max_length,
            return_tensors="pt",
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
            return_token_type_ids=False,
        )
        attention_mask = encoded["attention_mask"].bool()
        content_mask = attention_mask & ~encoded["special_tokens_mask"].bool() & (encoded["offset_mapping"][..., 1] > len(prefix))
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"], "content_mask": content_mask}

    # ------------------------------------------------------------------ forward
    def forward(self, batch: dict[str, torch.Tensor]) -> TokenEmbeddings:
        """Token embeddings, masks and the pooled, L2-normalised sentence embedding."""
        attention_mask = batch["attention_mask"]
        hidden = self._token_states(batch["input_ids"], attention_mask)
        mask = attention_mask.bool()
        content_mask = batch.get("content_mask")
        if content_mask is None:
            content_mask = mask
        return TokenEmbeddings(
            embeddings=hidden,
            attention_mask=mask,
            content_mask=content_mask.bool(),
            pooled=self._pool(hidden, attention_mask),
        )

    def _token_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.projection(hidden) if self.projection is not None else hidden

    def _pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            # Masked mean as one batched matmul: [B,1,L] @ [B,L,H] -> [B,1,H].
            weights = attention_mask.to(hidden.dtype).unsqueeze(1)
            pooled = torch.bmm(weights, hidden).squeeze(1) / weights.sum(-1).clamp(min=1)
        return F.normalize(pooled.float(), dim=-1)

    # ----------------------------------------------------------------- encoding
    def _sorted_batches(self, texts: Sequence[str], kind: TextKind, batch_size: int, max_length: int | None = None):
        """Tokenize everything once, sort by length (less padding), yield (indices, ids, mask)."""
        prefix = self.prefix(kind)
        ids = self.tokenizer(
            [prefix + text for text in texts],
            truncation=True,
            max_length=self.max_length if max_length is None else max_length,
            return_attention_mask=False,
            return_token_type_ids=False,
        )["input_ids"]
        lengths = np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(ids))
        order = np.argsort(-lengths, kind="stable")
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            width = int(lengths[chunk[0]])
            input_ids = np.full((len(chunk), width), pad_id, dtype=np.int64)
            attention = np.zeros((len(chunk), width), dtype=np.int64)
            for row, index in enumerate(chunk):
                length = lengths[index]
                input_ids[row, :length] = ids[index]
                attention[row, :length] = 1
            yield chunk, torch.from_numpy(input_ids), torch.from_numpy(attention)

    def _inference_precision(self):
        """Autocast to :attr:`inference_autocast` around a forward pass (a no-op context when it is None)."""
        if self.inference_autocast is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.inference_autocast)

    @torch.inference_mode()
    def encode(
        self,
        texts: Sequence[str],
        kind: TextKind = "plain",
        batch_size: int = 64,
        show_progress: bool = False,
        max_length: int | None = None,
    ) -> np.ndarray:
        """``[N, hidden_size]`` float32 L2-normalised sentence embeddings, in input order; texts are
        truncated to ``max_length`` tokens (default: the encoder's ``max_length``)."""
        texts = list(texts)
        output = np.zeros((len(texts), self.hidden_size), dtype=np.float32)
        if not texts:
            return output
        was_training = self.training
        self.eval()
        device = self.device
        pooled_batches, index_batches = [], []
        batches = self._sorted_batches(texts, kind, batch_size, max_length)
        if show_progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, total=-(-len(texts) // batch_size), desc=f"encode {kind}", unit="batch")
        for indices, input_ids, attention in batches:
            input_ids = input_ids.to(device, non_blocking=True)
            attention = attention.to(device, non_blocking=True)
            # Results stay on the device until the end: one transfer instead of a sync per batch.
            with self._inference_precision():
                pooled_batches.append(self._pool(self._token_states(input_ids, attention), attention))
            index_batches.append(indices)
        output[np.concatenate(index_batches)] = torch.cat(pooled_batches).cpu().numpy()
        self.train(was_training)
        return output

    @torch.inference_mode()
    def encode_tokens(
        self,
        texts: Sequence[str],
        kind: TextKind = "plain",
        *,
        batch_size: int = 64,
        normalize: bool = True,
        max_length: int | None = None,
    ) -> list[np.ndarray]:
        """Per text, ``[n_content, hidden_size]`` float32 content-token embeddings (no special
        or prefix tokens), L2-normalised per token when ``normalize``: the inputs of MaxSim
        late interaction (ColBERT, Khattab & Zaharia, SIGIR 2020). Texts are truncated to
        ``max_length`` tokens (default: the encoder's ``max_length``)."""
        texts = list(texts)
        result: list[np.ndarray] = [np.zeros((0, self.hidden_size), np.float32)] * len(texts)
        was_training = self.training
        self.eval()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            with self._inference_precision():
                out = self.forward(self.tokenize([texts[i] for i in chunk], kind, max_length))
            states = F.normalize(out.embeddings.float(), dim=-1) if normalize else out.embeddings.float()
            states, content = states.cpu(), out.content_mask.cpu()
            for row, index in enumerate(chunk):
                result[index] = states[row][content[row]].numpy()
        self.train(was_training)
        return result

    # ----------------------------------------------------------------- training
    def freeze_word_embeddings(self) -> None:
        """Stop gradients into the input word-embedding matrix (96M of e5-small's 118M
        parameters), which makes a CPU training step much cheaper."""
        self.model.get_input_embeddings().weight.requires_grad_(False)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    # ------------------------------------------------------------------- saving
    def save(self, out_dir: str | Path) -> Path:
        """Write an HF model dir (safetensors + tokenizer) plus sentence-transformers files, so
        ``Encoder.load``, ``AutoModel`` and ``SentenceTransformer`` all load it; the projection,
        if any, becomes a sentence-transformers ``Dense`` module. Atomic: built aside, then renamed."""
        out = Path(out_dir)
        with atomic_directory(out) as tmp:
            with _without_transformers_bars():
                self.model.save_pretrained(tmp, safe_serialization=True)
            self.tokenizer.save_pretrained(tmp)
            write_sentence_transformers_files(
                tmp,
                hidden_size=self.model.config.hidden_size,
                pooling=self.pooling,
                query_prefix=self.query_prefix,
                passage_prefix=self.passage_prefix,
                max_seq_length=self.max_length,
                projection=self.projection,
            )
        return out


def _load_backbone(location: str) -> PreTrainedModel:
    """``AutoModel`` without the unused pooler head where the architecture has one (BERT,
    XLM-R): retrieval pools token states itself, and a random pooler would only add noise.

    transformers' own load report is silenced (a sentence-transformers checkpoint such as
    all-MiniLM-L6-v2 ships pooler weights, which it would list as unexpected on every load,
    ``--quiet`` or not); what matters in it is refused in one line instead: weights the model
    needs that the checkpoint lacks (they would start random). No code shipped with a model runs
    (``trust_remote_code=False``; :func:`~optical.models.check.check_model_dir` refuses such a dir
    first). A local directory loads without
    transformers' per-tensor progress bar, which would interleave with the project's own
    bars; a hub download keeps its bar."""
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        with _without_transformers_bars(Path(location).is_dir()):
            load = partial(AutoModel.from_pretrained, location, output_loading_info=True, trust_remote_code=False)
            try:
                model, info = load(add_pooling_layer=False)
            except TypeError:
                model, info = load()
    finally:
        transformers_logging.set_verbosity(verbosity)
    missing = [*info.get("missing_keys", ()), *(key for key, *_ in info.get("mismatched_keys", ()))]
    if missing:
        # Random weights would be evaluated (or distilled from) as if they were the model: refused, not warned.
        raise OpticalError(
            f"model {location}: {len(missing)} weights its config.json needs are not in the checkpoint "
            f"(e.g. {', '.join(sorted(missing)[:3])}), so they would start random; the config does not match "
            "the weights: copy the model again, or fix config.json"
        )
    return model


@contextmanager
def _without_transformers_bars(active: bool = True) -> Iterator[None]:
    """Silence transformers' own progress bars (per-tensor loading, shard writing), which
    would interleave with the project's bars, and restore them afterwards."""
    quiet = active and transformers_logging.is_progress_bar_enabled()
    if quiet:
        transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if quiet:
            transformers_logging.enable_progress_bar()
