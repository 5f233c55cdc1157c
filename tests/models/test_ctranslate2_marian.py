"""A Marian model through CTranslate2 and back: the library's own converter writes the file, this project reads it."""

from __future__ import annotations

import dataclasses
import json
import struct

import numpy as np
import pytest
import torch

from optical.errors import OpticalError
from optical.models.ctranslate2_marian import read_ctranslate2_model, read_vocabulary, write_marian_directory

ctranslate2 = pytest.importorskip("ctranslate2")  # a dev dependency: installed wherever the suite runs

SENTENCES = [
    "the weather is fine today",
    "how many people live here",
    "a small house by the river",
    "she reads a book in the evening",
    "the train leaves at seven",
    "we walked along the quiet street",
] * 20


@pytest.fixture(scope="module")
def tiny_marian(tmp_path_factory):
    """A random transformers MarianMTModel (swish, scaled embeddings, shared vocabulary) with a real sentencepiece
    tokenizer trained here, saved as OPUS-MT models are."""
    return _tiny_marian(tmp_path_factory.mktemp("marian"), scale_embedding=True)


def _tiny_marian(root, scale_embedding: bool):
    import sentencepiece
    from transformers import MarianConfig, MarianMTModel

    root.mkdir(parents=True, exist_ok=True)
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(SENTENCES), model_prefix=str(root / "spm"), vocab_size=48, minloglevel=2
    )
    processor = sentencepiece.SentencePieceProcessor(model_file=str(root / "spm.model"))
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size()) if not processor.is_control(i)]
    vocabulary = ["</s>", "<unk>"] + [p for p in pieces if p != "<unk>"] + ["<pad>"]
    pad = len(vocabulary) - 1
    torch.manual_seed(0)
    config = MarianConfig(
        vocab_size=len(vocabulary),
        decoder_vocab_size=len(vocabulary),
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        activation_function="swish",
        scale_embedding=scale_embedding,
        max_position_embeddings=64,
        pad_token_id=pad,
        decoder_start_token_id=pad,
        eos_token_id=0,
        forced_eos_token_id=0,
        init_std=0.2,
    )
    hf_dir = root / "hf"
    model = MarianMTModel(config)
    model.final_logits_bias.normal_(0, 0.5)  # a bias the file must carry (a zero one is left out)
    model.final_logits_bias[0, 0] = -4.0  # </s> unlikely: decoding says something before it stops
    model.save_pretrained(hf_dir)
    (hf_dir / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocabulary)}), encoding="utf-8")
    for name in ("source.spm", "target.spm"):
        (hf_dir / name).write_bytes((root / "spm.model").read_bytes())
    (hf_dir / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "MarianTokenizer"}), encoding="utf-8")
    return hf_dir


def _convert_and_rebuild(hf_dir, tmp_path, quantization):
    ct2_dir = tmp_path / f"ct2-{quantization}"
    ctranslate2.converters.TransformersConverter(str(hf_dir)).convert(str(ct2_dir), quantization=quantization)
    vocabulary_file = next(ct2_dir.glob("shared_vocabulary.*"))
    model = read_ctranslate2_model((ct2_dir / "model.bin").read_bytes(), "model.bin")
    vocabulary = read_vocabulary(vocabulary_file.read_bytes(), vocabulary_file.name)
    out = tmp_path / f"rebuilt-{quantization}"
    out.mkdir()
    write_marian_directory(model, vocabulary, (hf_dir / "source.spm").read_bytes(), out)
    return ct2_dir, out


def _logits(model_dir, tokenizer_dir):
    from transformers import MarianMTModel, MarianTokenizer

    tokenizer = MarianTokenizer.from_pretrained(str(tokenizer_dir))
    model = MarianMTModel.from_pretrained(str(model_dir)).eval()
    batch = tokenizer(SENTENCES[:3], return_tensors="pt", padding=True)
    decoder_ids = torch.tensor([[model.config.decoder_start_token_id, 5, 9, 4]] * 3)
    with torch.no_grad():
        return model(**batch, decoder_input_ids=decoder_ids).logits[..., :-1].numpy()  # the pad column aside


@pytest.mark.parametrize(
    ("quantization", "tolerance"),
    [("float32", 1e-4), ("int8", 0.1), ("int16", 0.01), ("float16", 0.01), ("bfloat16", 0.05), ("int8_float16", 0.1)],
)
def test_the_rebuilt_model_gives_the_original_logits(tiny_marian, tmp_path, quantization, tolerance):
    _, rebuilt = _convert_and_rebuild(tiny_marian, tmp_path, quantization)
    original, back = _logits(tiny_marian, tiny_marian), _logits(rebuilt, rebuilt)
    assert np.abs(original - back).max() < tolerance * np.abs(original).max()
    assert (original.argmax(-1) == back.argmax(-1)).mean() >= (1.0 if quantization == "float32" else 0.9)


def test_a_model_without_embedding_scale_comes_back_without_it(tmp_path):
    """CTranslate2 stores the scale as a float (1.0 here): read as a flag it would turn scaling on."""
    from transformers import MarianConfig

    hf_dir = _tiny_marian(tmp_path / "unscaled", scale_embedding=False)
    _, rebuilt = _convert_and_rebuild(hf_dir, tmp_path, "float32")
    assert MarianConfig.from_pretrained(str(rebuilt)).scale_embedding is False
    original, back = _logits(hf_dir, hf_dir), _logits(rebuilt, rebuilt)
    assert np.abs(original - back).max() < 1e-4 * np.abs(original).max()


def test_the_rebuilt_model_decodes_what_ctranslate2_decodes(tiny_marian, tmp_path):
    from transformers import MarianMTModel, MarianTokenizer

    ct2_dir, rebuilt = _convert_and_rebuild(tiny_marian, tmp_path, "float32")
    tokenizer = MarianTokenizer.from_pretrained(str(rebuilt))
    model = MarianMTModel.from_pretrained(str(rebuilt)).eval()
    translator = ctranslate2.Translator(str(ct2_dir), device="cpu")
    lengths = []
    for sentence in SENTENCES[:6]:
        source = tokenizer.convert_ids_to_tokens(tokenizer(sentence).input_ids)
        expected = translator.translate_batch([source], beam_size=1, max_decoding_length=12, min_decoding_length=0)
        expected = expected[0].hypotheses[0]
        with torch.no_grad():
            ids = model.generate(**tokenizer([sentence], return_tensors="pt"), num_beams=1, do_sample=False, max_new_tokens=12)
        produced = [t for t in tokenizer.convert_ids_to_tokens(ids[0]) if t not in ("<pad>", "</s>")]
        assert produced == expected[: len(produced)] and len(produced) >= min(len(expected), 11)
        lengths.append(len(expected))
    assert max(lengths) >= 3  # the random model says something, not just </s>


def test_untied_or_unread_weights_are_refused(tiny_marian, tmp_path):
    ct2_dir, _ = _convert_and_rebuild(tiny_marian, tmp_path, "float32")
    model = read_ctranslate2_model((ct2_dir / "model.bin").read_bytes(), "model.bin")
    vocabulary = read_vocabulary(next(ct2_dir.glob("shared_vocabulary.*")).read_bytes(), "vocabulary")
    untied = dict(model.variables)
    untied["decoder/projection/weight"] = untied["decoder/projection/weight"] + 1.0
    with pytest.raises(OpticalError, match="decoder/projection/weight is not the decoder's embeddings"):
        write_marian_directory(dataclasses.replace(model, variables=untied), vocabulary, b"", tmp_path / "a")
    extra = dict(model.variables) | {"encoder/layernorm_embedding/gamma": np.ones(32, np.float32)}
    with pytest.raises(OpticalError, match="no place for \\(encoder/layernorm_embedding/gamma\\)"):
        write_marian_directory(dataclasses.replace(model, variables=extra), vocabulary, b"", tmp_path / "b")
    with pytest.raises(OpticalError, match="embedding rows for"):
        write_marian_directory(model, vocabulary[:-1], b"", tmp_path / "c")


def test_a_line_vocabulary_splits_on_newlines_only():
    assert read_vocabulary("</s>\n<unk>\na\u2028b\n".encode(), "v.txt") == ["</s>", "<unk>", "a\u2028b"]
    with pytest.raises(OpticalError, match="v.json: not a CTranslate2 vocabulary"):
        read_vocabulary(b"[1, 2]", "v.json")


def test_hostile_files_fail_with_one_line(tmp_path):
    with pytest.raises(OpticalError, match="binary version 99"):
        read_ctranslate2_model(struct.pack("<I", 99), "model.bin")
    header = struct.pack("<I", 6) + struct.pack("<H", 5) + b"Spec\0" + struct.pack("<II", 1, 1)
    variable = struct.pack("<H", 2) + b"w\0" + struct.pack("<B", 1) + struct.pack("<I", 4) + struct.pack("<BI", 0, 1 << 30)
    with pytest.raises(OpticalError, match="holds 1073741824 bytes for shape \\[4\\]"):
        read_ctranslate2_model(header + variable, "model.bin")
    with pytest.raises(OpticalError, match="truncated or corrupt"):
        read_ctranslate2_model(header + variable[:-4], "model.bin")
    wrong_size = struct.pack("<H", 2) + b"w\0" + struct.pack("<B", 1) + struct.pack("<I", 4) + struct.pack("<BI", 0, 7) + bytes(7)
    with pytest.raises(OpticalError, match="holds 7 bytes for shape"):
        read_ctranslate2_model(header + wrong_size + struct.pack("<I", 0), "model.bin")
    twice = struct.pack("<I", 6) + struct.pack("<H", 5) + b"Spec\0" + struct.pack("<II", 1, 2)
    one = struct.pack("<H", 2) + b"w\0" + struct.pack("<B", 0) + struct.pack("<BI", 1, 1) + bytes(1)
    with pytest.raises(OpticalError, match="variable w appears twice"):
        read_ctranslate2_model(twice + one + one + struct.pack("<I", 0), "model.bin")
    hiding = header + one + struct.pack("<I", 1) + struct.pack("<H", 2) + b"w\0" + struct.pack("<H", 2) + b"w\0"
    with pytest.raises(OpticalError, match="alias w -> w names no variable or hides one"):
        read_ctranslate2_model(hiding, "model.bin")
