"""The trainer is a sequence of named phases; no function of optical.train grows into a monolith."""

import ast
from pathlib import Path

import pytest

import optical.train
from optical.errors import OpticalError
from optical.models.encoder import Encoder
from optical.train import DistillConfig, DistillTrainer, distill
from optical.train.selection import EVAL_MAX_LENGTH, build_selector
from optical.train.teacher_cache import compute_teacher_cache

PHASES = ("prepare_data", "load_models", "build_loss", "training_step", "evaluate_dev", "save_checkpoint", "finalize")
MAX_FUNCTION_LINES = 60


def test_no_function_in_train_is_longer_than_the_limit():
    package = Path(optical.train.__file__).parent
    long = []
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.name}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, long


def test_phases_are_methods_and_run_calls_them_in_order(tiny_config, monkeypatch):
    assert all(callable(getattr(DistillTrainer, name)) for name in PHASES)
    called = []
    for name in ("prepare_data", "load_models", "build_loss", "evaluate_dev", "save_checkpoint", "finalize"):
        original = getattr(DistillTrainer, name)

        def spy(self, *args, _original=original, _name=name, **kwargs):
            called.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(DistillTrainer, name, spy)
    result = distill(tiny_config("ot", checkpoint_every=4), progress=False)
    assert result.steps == 8
    assert called[:3] == ["prepare_data", "load_models", "build_loss"] and called[-1] == "finalize"
    assert called.count("save_checkpoint") == 2 and called.count("evaluate_dev") == 1  # epoch end; no selector: no-op


def test_a_subclass_can_hook_a_phase(tiny_config):
    class Counting(DistillTrainer):
        steps = 0

        def training_step(self, indices):
            Counting.steps += 1
            return super().training_step(indices)

    result = Counting(tiny_config("mse", grad_accum=2), progress=False).run()
    assert result.steps == 4 and Counting.steps == 8  # two accumulated batches per optimizer step


@pytest.mark.parametrize(
    "field, value, flag",
    [("device", "tpu", "--device"), ("mixed_precision", "fp8", "--mixed-precision"), ("select_on", "bleu", "--select-on")],
)
def test_choices_are_checked_in_one_place_with_one_line(tiny_config, field, value, flag):
    with pytest.raises(OpticalError) as err:
        tiny_config("ot", **{field: value}).validate()
    message = str(err.value)
    assert message.startswith(f"{flag} {value!r} is not one of") and "\n" not in message


def test_loss_options_are_checked_with_the_config(tiny_config, tmp_path):
    with pytest.raises(OpticalError, match=r"bad option ot\.eps='abc'.*expected a float > 0"):
        distill(tiny_config("ot", loss_options={"ot": {"eps": "abc"}}), progress=False)
    assert not (tmp_path / "run").exists()
    assert DistillConfig(lang="el", method="ot:1+mse:0.5", out_dir="x").method_spec.weight("mse") == 0.5


def test_teacher_max_length_is_never_changed_behind_its_back(tiny_teacher, mirror_dir):
    teacher = Encoder.load(tiny_teacher, max_length=16)
    texts = ["a fairly long English sentence " * 8, "short"]
    cache = compute_teacher_cache(teacher, texts, 48, progress=False)
    assert teacher.max_length == 16
    assert int(cache.offsets[1] - cache.offsets[0]) > 16  # but the cache used 48 tokens
    selector = build_selector("xquad_dev", "el", mirror_dir, teacher)
    assert teacher.max_length == 16 and selector is not None
    long_text = ["word " * 300]
    assert not (teacher.encode(long_text, max_length=EVAL_MAX_LENGTH) == teacher.encode(long_text)).all()
