"""A Marian model through CTranslate2 and back: the library's own converter writes the file, this project reads it."""

from __future__ import annotations

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
    import sentencepiece
    from transformers import MarianConfig, MarianMTModel

    root = tmp_path_factory.mktemp("marian")
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
        scale_embedding=True,
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


@pytest.mark.parametrize(("quantization", "tolerance"), [("float32", 1e-4), ("int8", 0.1)])
def test_the_rebuilt_model_gives_the_original_logits(tiny_marian, tmp_path, quantization, tolerance):
    _, rebuilt = _convert_and_rebuild(tiny_marian, tmp_path, quantization)
    original, back = _logits(tiny_marian, tiny_marian), _logits(rebuilt, rebuilt)
    assert np.abs(original - back).max() < tolerance * np.abs(original).max()
    assert (original.argmax(-1) == back.argmax(-1)).mean() >= (1.0 if quantization == "float32" else 0.9)


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


def test_hostile_files_fail_with_one_line(tmp_path):
    with pytest.raises(OpticalError, match="binary version 99"):
        read_ctranslate2_model(struct.pack("<I", 99), "model.bin")
    header = struct.pack("<I", 6) + struct.pack("<H", 5) + b"Spec\0" + struct.pack("<II", 1, 1)
    variable = struct.pack("<H", 2) + b"w\0" + struct.pack("<B", 1) + struct.pack("<I", 4) + struct.pack("<BI", 0, 1 << 30)
    with pytest.raises(OpticalError, match="truncated or corrupt"):
        read_ctranslate2_model(header + variable, "model.bin")
    wrong_size = struct.pack("<H", 2) + b"w\0" + struct.pack("<B", 1) + struct.pack("<I", 4) + struct.pack("<BI", 0, 8) + bytes(8)
    with pytest.raises(OpticalError, match="holds 2 values for shape"):
        read_ctranslate2_model(header + wrong_size + struct.pack("<I", 0), "model.bin")
