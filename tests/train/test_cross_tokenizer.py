"""Your own English retriever as the teacher: another tokenizer and another width than the student's."""

from __future__ import annotations

import torch
from safetensors.torch import load_file

from optical.models.encoder import Encoder
from optical.models.tiny import make_tiny_model
from optical.train import distill

SENTENCE = "The committee approved the new budget for regional hospitals."


def test_ot_and_mse_distil_across_tokenizers_and_widths(tiny_config, tiny_teacher, tmp_path):
    # A student with its own, much smaller WordPiece vocabulary (so it splits words differently) and width 48.
    corpus = ["the a an of to in on for and committee budget new regional hospital approved"] * 3
    student_dir = make_tiny_model(tmp_path / "student", hidden=48, seed=3, vocab_size=120, corpus=corpus)
    teacher, student = Encoder.load(tiny_teacher), Encoder.load(student_dir)
    assert teacher.tokenizer.get_vocab() != student.tokenizer.get_vocab()
    teacher_tokens = teacher.tokenizer(SENTENCE)["input_ids"]
    student_tokens = student.tokenizer(SENTENCE)["input_ids"]
    assert len(teacher_tokens) != len(student_tokens)  # token sets of different sizes: OT aligns them anyway

    before = load_file(student_dir / "model.safetensors")
    for method in ("ot", "mse"):
        result = distill(tiny_config(method, out=f"cross-{method}", student=str(student_dir), projection=True), progress=False)
        trained = Encoder.load(result.student_dir)
        assert trained.hidden_size == teacher.hidden_size == 32  # the projection maps 48 -> the teacher's 32
        after = load_file(result.student_dir / "model.safetensors")
        changed = [k for k in before if k in after and not torch.equal(before[k], after[k])]
        assert changed, f"{method}: no student weight moved"
        assert trained.encode([SENTENCE], kind="query").shape == (1, 32)
