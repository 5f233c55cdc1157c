"""``optical align``: the OT loss's plan on one pair, for zero-shot and distilled tiny students."""

from __future__ import annotations

import json

import matplotlib.image
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from optical.align import AlignOptions, CenterMode, Centre, align, content_tokens, plot_alignments
from optical.cli import main
from optical.losses.base import DistillBatch
from optical.losses.ot import OTLoss
from optical.models.encoder import Encoder
from optical.models.outputs import TokenEmbeddings
from optical.models.tiny import make_tiny_model

FOREIGN, ENGLISH = "Ο σκύλος τρέχει στο πάρκο.", "The dog runs in the park."


@pytest.fixture(scope="module")
def runs(tmp_path_factory, mirror_dir):
    """A tiny teacher and two tiny distilled students: OT with centred costs (eps 0.1), and MSE."""
    from optical.train import DistillConfig, distill

    root = tmp_path_factory.mktemp("align")
    cache = root / "cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPTICAL_CACHE_DIR", str(cache))
        teacher = make_tiny_model(root / "teacher", seed=0)
        found = {"teacher": teacher, "cache": cache}
        for method, extra in (("ot", {"center_costs": True, "loss_options": {"ot": {"eps": 0.1}}}), ("mse", {})):
            out = root / method
            config = DistillConfig(
                lang="el", method=method, out_dir=str(out), teacher=str(teacher), budget=32, batch_size=16,
                max_length=32, select_on="none", device="cpu", data_dir=str(mirror_dir), **extra,
            )  # fmt: skip
            distill(config, progress=False)
            found[method] = out
    return found


@pytest.fixture(autouse=True)
def cache_env(runs, monkeypatch, mirror_dir):
    monkeypatch.setenv("OPTICAL_CACHE_DIR", str(runs["cache"]))
    monkeypatch.setenv("OPTICAL_DATA_DIR", str(mirror_dir))


def test_the_plan_is_the_ot_loss_of_the_pair(runs):
    """The picture shows the loss: its value is OTLoss's on the same tokens, with the run's eps and centre."""
    [panel] = align(FOREIGN, ENGLISH, [str(runs["ot"])])
    assert "bitext pairs" in panel.center  # the run trained centred: the centre is its bitext's mean teacher token
    n, m = panel.plan.shape
    assert (n, m) == (len(panel.foreign_tokens), len(panel.english_tokens))
    assert panel.plan.sum(1) == pytest.approx(np.full(n, 1 / n), abs=1e-4)
    assert panel.plan.sum(0) == pytest.approx(np.full(m, 1 / m), abs=1e-4)
    assert panel.value == pytest.approx(float((panel.plan * panel.cost).sum()), rel=1e-5)
    student = Encoder.load(runs["ot"] / "student")
    teacher = Encoder.load(runs["teacher"])
    _, s = content_tokens(student, FOREIGN, 32)
    _, t = content_tokens(teacher, ENGLISH, 32)
    from optical.align import load_students, run_centre, run_options

    loaded, _ = load_students([str(runs["ot"])])
    options, ot_run = run_options(loaded, CenterMode.AUTO, {})
    assert options.eps == 0.1 and options.max_length == 32
    centre = run_centre(options, ot_run, teacher).vector

    def side(x: torch.Tensor) -> TokenEmbeddings:
        mask = torch.ones(1, len(x), dtype=torch.bool)
        return TokenEmbeddings(x[None], mask, mask, F.normalize(x.mean(0), dim=-1)[None])

    loss = OTLoss(eps=0.1, center=centre)(DistillBatch(side(s), side(t))).loss
    assert panel.value == pytest.approx(float(loss), rel=1e-5)
    # The cost is 1 - cos of the centred vectors, computed here independently.
    expected = 1 - F.normalize(s - centre, dim=-1) @ F.normalize(t - centre, dim=-1).T
    assert panel.cost == pytest.approx(expected.numpy(), abs=1e-5)


def test_centre_none_and_sentences_change_the_cost(runs):
    run = str(runs["ot"])
    auto, none, sentences = (align(FOREIGN, ENGLISH, [run], center=mode)[0] for mode in ("auto", "none", "sentences"))
    assert none.center == "none" and "English sentence" in sentences.center
    assert not np.allclose(auto.cost, none.cost) and not np.allclose(none.cost, sentences.cost)


def test_students_side_by_side_share_the_pair_and_options(runs, tmp_path):
    panels = align(FOREIGN, ENGLISH, ["zero-shot", str(runs["mse"]), str(runs["ot"])])
    assert [p.student.split(" ")[0] for p in panels] == ["zero-shot", "mse-s0", "ot-s0"]
    assert len({tuple(p.english_tokens) for p in panels}) == 1 and len({p.center for p in panels}) == 1
    assert not np.allclose(panels[0].plan, panels[2].plan)  # distillation moved the student's tokens
    for token, links in panels[2].top_links(2):
        assert token in panels[2].foreign_tokens and len(links) == 2 and 1.0 >= links[0].share >= links[1].share >= 0
    text = panels[2].text(2).splitlines()
    assert text[0].startswith("ot-s0") and len(text) == 1 + len(panels[2].foreign_tokens)
    one = plot_alignments(panels[:1], tmp_path / "one.png")
    three = plot_alignments(panels, tmp_path / "three.png")
    assert matplotlib.image.imread(three).shape[1] > 2 * matplotlib.image.imread(one).shape[1]
    svg = plot_alignments(panels, tmp_path / "three.svg").read_text()
    assert svg.count("<svg") == 1 and "mse-s0" in svg


def test_a_plan_with_norm_marginals_and_given_options():
    teacher_vectors = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
    student_vectors = torch.randn(3, 8, generator=torch.Generator().manual_seed(1))
    from optical.align import plan_of

    plan, _, _ = plan_of(student_vectors, teacher_vectors, AlignOptions(marginals="norm", eps=0.05), Centre(None, "none"))
    norms = student_vectors.norm(dim=-1)
    assert plan.sum(1) == pytest.approx((norms / norms.sum()).numpy(), abs=1e-4)


def test_cli_reads_a_bitext_file_and_writes_json_and_a_figure(runs, tmp_path, capsys):
    bitext = tmp_path / "pairs.tsv"
    bitext.write_text(f"{ENGLISH}\t{FOREIGN}\nGood morning.\tΚαλημέρα.\n", encoding="utf-8")
    argv = ["align", "--student", "zero-shot", "--student", str(runs["ot"]), "--teacher", str(runs["teacher"])]
    assert main([*argv, "--bitext", str(bitext), "--lines", "1,2", "--json", "--figure", str(tmp_path / "a.png")]) == 0
    captured = capsys.readouterr()
    parsed = json.loads(captured.out)
    assert [item["foreign"] for item in parsed] == [FOREIGN, "Καλημέρα."] and len(parsed[0]["students"]) == 2
    assert (tmp_path / "a-1.png").is_file() and (tmp_path / "a-2.png").is_file() and "a-2.png" in captured.err
    assert main([*argv, "--foreign", FOREIGN, "--english", ENGLISH, "--top", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == [FOREIGN, ENGLISH] and all(line.count("->") == 1 for line in lines if line.startswith("  "))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--student", "zero-shot", "--foreign", " ", "--english", "x"], "foreign sentence is empty"),
        (["--student", "{tmp}/no-run", "--foreign", "a", "--english", "b"], "no such directory"),
        (["--student", "zero-shot", "--foreign", "a", "--english", "b", "--figure", "{tmp}/x.jpg"], ".png or .svg"),
        (["--student", "zero-shot", "--bitext", "{tmp}/pairs.tsv", "--lines", "9"], "has lines 1 to 1"),
        (["--student", "zero-shot", "--foreign", "a"], "give the pair"),
        (["--student", "zero-shot", "--foreign", "a", "--english", "b", "--center", "mean"], "--center 'mean'"),
    ],
)
def test_bad_input_is_one_line(runs, tmp_path, capsys, argv, message):
    (tmp_path / "pairs.tsv").write_text(f"{ENGLISH}\t{FOREIGN}\n", encoding="utf-8")
    argv = [arg.format(tmp=tmp_path) for arg in argv]
    assert main(["align", *argv, "--teacher", str(runs["teacher"])]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("optical: error: ") and message in err, err
