import pytest
import torch

from optical.errors import OpticalError
from optical.losses import MSELoss, OTLoss, build_loss, parse_method


def test_parse_weights():
    terms = parse_method("ot:2+mse:0.5")
    assert [(t.name, t.weight) for t in terms] == [("ot", 2.0), ("mse", 0.5)]
    assert [t.weight for t in parse_method("contrastive")] == [1.0]


@pytest.mark.parametrize("method", ["", "otx", "ot+", "ot:abc", "ot:-1", "ot:inf", "ot+mse:nan", "ot+ot", "mse;ot"])
def test_malformed_methods_are_one_line_errors(method):
    with pytest.raises(OpticalError) as err:
        parse_method(method)
    assert "\n" not in str(err.value)


def test_combined_is_weighted_sum(make_batch):
    batch = make_batch(requires_grad=False)
    combined = build_loss("ot:2+mse:0.5", {"ot": {"eps": 0.1}})
    expected = 2 * OTLoss(eps=0.1)(batch).loss + 0.5 * MSELoss()(batch).loss
    assert torch.allclose(combined(batch).loss, expected, atol=1e-6)
    assert combined.needs_student_english
    assert not build_loss("ot").needs_student_english


def test_options_for_unknown_or_bad_keys_are_errors():
    with pytest.raises(OpticalError):
        build_loss("ot", {"wasserstein": {}})
    with pytest.raises(OpticalError, match="bad option"):
        build_loss("ot", {"ot": {"epsilon": 0.1}})
