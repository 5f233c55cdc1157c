"""Tiny random-weight models: loadable by transformers, deterministic per seed."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer

from optical.models.tiny import make_tiny_model


def test_tiny_model_loads_with_auto_classes(tiny_model_dir: Path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModel.from_pretrained(tiny_model_dir, add_pooling_layer=False)
    assert model.config.hidden_size == 32 and model.config.num_hidden_layers == 2
    assert 200 < len(tokenizer) <= 1000
    batch = tokenizer(["Η γάτα κοιμάται.", "The cat sleeps."], padding=True, return_tensors="pt")
    assert tokenizer.convert_ids_to_tokens(batch["input_ids"][0])[0] == "[CLS]"
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    assert hidden.shape[:2] == batch["input_ids"].shape and hidden.shape[-1] == 32


def test_tiny_model_is_deterministic_per_seed(tmp_path: Path, tiny_corpus: list[str]):
    first = make_tiny_model(tmp_path / "a", seed=3, corpus=tiny_corpus)
    second = make_tiny_model(tmp_path / "b", seed=3, corpus=tiny_corpus)
    other = make_tiny_model(tmp_path / "c", seed=4, corpus=tiny_corpus)
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert (first / "model.safetensors").read_bytes() != (other / "model.safetensors").read_bytes()
    assert (first / "tokenizer.json").read_bytes() == (other / "tokenizer.json").read_bytes()


def test_tiny_model_sizes_and_builtin_corpus(tmp_path: Path):
    path = make_tiny_model(tmp_path / "m", hidden=48, layers=1, heads=4, vocab_size=300)
    model = AutoModel.from_pretrained(path, add_pooling_layer=False)
    assert (model.config.hidden_size, model.config.num_hidden_layers, model.config.num_attention_heads) == (48, 1, 4)
    assert model.config.vocab_size <= 300
