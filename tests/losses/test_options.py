"""Each loss declares its options (type, default, help, check); bad ones are one clear line."""

import argparse
import inspect

import pytest

from optical.errors import OpticalError
from optical.losses import LOSSES, ContrastiveLoss, MethodSpec, OTLoss, build_loss, check_loss_options


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_option_is_a_constructor_keyword_with_the_declared_default(name):
    cls = LOSSES[name]
    parameters = inspect.signature(cls.__init__).parameters
    for option in cls.OPTIONS:
        assert option.name in parameters, f"{name}.{option.name} is not a keyword of {cls.__name__}"
        assert parameters[option.name].default == option.default
        assert option.help and "\n" not in option.help
        assert option.coerce(option.default) == option.default  # the default passes its own check


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_module_documents_formula_paper_and_example(name):
    doc = inspect.getmodule(LOSSES[name]).__doc__
    assert "Example:" in doc and ">>>" in doc and "L" in doc
    assert "arXiv" in doc or "Huang" in doc


def test_internal_tensors_are_no_user_options():
    assert {o.name for o in OTLoss.OPTIONS} == {"eps", "cost", "marginals", "tau", "max_iter", "tol", "grad"}
    with pytest.raises(OpticalError, match="has no option 'center'"):
        build_loss("ot", {"ot": {"center": [0.0, 1.0]}})


def test_values_are_coerced_to_the_declared_type():
    loss = build_loss("ot", {"ot": {"eps": 1, "tau": None, "max_iter": 7, "cost": "sqeuclidean"}}).losses[0]
    assert isinstance(loss.eps, float) and loss.eps == 1.0 and loss.tau is None
    assert (loss.max_iter, loss.cost) == (7, "sqeuclidean")
    assert ContrastiveLoss.from_options({"temperature": 0.1}).temperature == 0.1


@pytest.mark.parametrize(
    "method, options, fragments",
    [
        ("ot", {"ot": {"eps": "abc"}}, ["ot.eps", "float > 0", "eps, cost, marginals"]),
        ("ot", {"ot": {"eps": 0}}, ["ot.eps", "> 0"]),
        ("ot", {"ot": {"eps": float("inf")}}, ["ot.eps", "> 0, finite"]),
        ("ot", {"ot": {"tau": float("inf")}}, ["ot.tau", "finite"]),
        ("ot", {"ot": {"tol": float("inf")}}, ["ot.tol", ">= 0, finite"]),
        ("contrastive", {"contrastive": {"temperature": float("nan")}}, ["contrastive.temperature", "finite"]),
        ("ot", {"ot": {"eps": True}}, ["ot.eps", "float"]),
        ("ot", {"ot": {"bogus": 1}}, ["ot.bogus", "no option 'bogus'", "eps, cost, marginals, tau, max_iter, tol, grad"]),
        ("ot", {"ot": {"cost": "manhattan"}}, ["ot.cost", "cosine|sqeuclidean"]),
        ("ot", {"ot": {"max_iter": 2.5}}, ["ot.max_iter", "an int >= 1"]),
        ("ot", {"ot": {"tau": -1}}, ["ot.tau", "or null"]),
        ("contrastive", {"contrastive": {"temperature": "hot"}}, ["contrastive.temperature", "float > 0", "temperature"]),
        ("mse", {"mse": {"alpha": 1}}, ["mse.alpha", "its options: none"]),
        ("mse", {"ot": {"eps": 0.1}}, ["does not use"]),
        ("ot", {"wasserstein": {}}, ["unknown loss"]),
    ],
)
def test_bad_options_are_one_line_errors_naming_option_type_and_choices(method, options, fragments):
    with pytest.raises(OpticalError) as err:
        check_loss_options(method, options)
    message = str(err.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("opt, fragment", [("ot.eps=abc", "expected a float > 0"), ("ot.bogus=1", "no option 'bogus'")])
def test_cli_loss_opt_errors_are_one_line_before_any_work(tmp_path, opt, fragment):
    from optical.cli import distill as distill_command

    parser = argparse.ArgumentParser()
    distill_command.register(parser.add_subparsers())
    out = tmp_path / "run"
    args = parser.parse_args(["distill", "--lang", "el", "--method", "ot", "--out", str(out), "--loss-opt", opt, "--quiet"])
    with pytest.raises(OpticalError) as err:  # `optical` prints it as one line, exit status 2
        args.func(args)
    message = str(err.value)
    assert message.startswith("bad option ot.") and fragment in message and "\n" not in message
    assert not out.exists()


def test_constructor_checks_are_the_declared_ones():
    with pytest.raises(OpticalError, match="ot.grad"):
        OTLoss(grad="envelope")
    with pytest.raises(OpticalError, match="contrastive.temperature"):
        ContrastiveLoss(temperature=0.0)


def test_method_spec_is_parsed_once_and_answers_questions():
    spec = MethodSpec.parse("ot:1+mse:0.5")
    assert spec.names == ("ot", "mse") and spec.uses("ot") and not spec.uses("contrastive")
    assert spec.weight("mse") == 0.5 and spec.weight("hard_align") is None
    assert str(spec) == "ot+mse:0.5" and MethodSpec.parse(spec) is spec
    assert spec == MethodSpec.parse("ot+mse:0.5")
    assert spec.needs_student_english and not MethodSpec.parse("ot").needs_student_english
    assert [MethodSpec.parse(m).is_kd_baseline for m in ("mse", "contrastive", "mse:0.5", "ot", "hard_align", "ot+mse")] == [
        True,
        True,
        True,
        False,
        False,
        False,
    ]
    assert build_loss(spec).name == "ot+mse:0.5"
    with pytest.raises(AttributeError):
        spec.terms = ()  # frozen
