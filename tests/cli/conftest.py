"""Fixtures of the bad-input suite: tiny real runs shared by the session and per-test bad inputs."""

from __future__ import annotations

import shutil

import pytest

from optical.models.tiny import make_tiny_model


@pytest.fixture(scope="session")
def cli_env(private_cache_env):
    """The session's private cache (teacher and document caches, logs) with the mirror as data dir."""
    return private_cache_env


@pytest.fixture(scope="session")
def runs(cli_env, tmp_path_factory, mirror_dir):
    """A tiny teacher, a finished distill run from it, and two evaluations (zero-shot and the student)."""
    from optical.eval.evaluate import EvalConfig, evaluate
    from optical.train import DistillConfig, distill

    root = tmp_path_factory.mktemp("cli-runs")
    teacher = make_tiny_model(root / "teacher", seed=0)
    run = root / "run"
    distill(
        DistillConfig(
            lang="el",
            method="mse",
            out_dir=str(run),
            teacher=str(teacher),
            budget=32,
            batch_size=16,
            max_length=32,
            select_on="none",
            device="cpu",
            data_dir=str(mirror_dir),
        ),
        progress=False,
    )
    evals = {}
    for name, student in (("zero-shot", "zero-shot"), ("mse", str(run))):
        evals[name] = root / f"eval-{name}"
        config = EvalConfig(student=student, out_dir=str(evals[name]), teacher=str(teacher), tasks=["align"], device="cpu")
        evaluate(config, progress=False)
    evals["zero-shot-de"] = root / "eval-zero-shot-de"
    config = EvalConfig(
        student="zero-shot", out_dir=str(evals["zero-shot-de"]), teacher=str(teacher), langs=["de"], tasks=["align"], device="cpu"
    )
    evaluate(config, progress=False)
    return {
        "root": root,
        "teacher": teacher,
        "run": run,
        "eval_zs": evals["zero-shot"],
        "eval_mse": evals["mse"],
        "eval_zs_de": evals["zero-shot-de"],
    }


@pytest.fixture(scope="session")
def study(cli_env, runs, tmp_path_factory):
    """A finished tiny study (zero-shot and mse, one seed, FLORES alignment only) and its export."""
    from optical.report import write_study_report
    from optical.study import parse_study_config, run_study
    from optical.study.export import export_study

    root = tmp_path_factory.mktemp("cli-study")
    raw = {
        "study": "bad-input",
        "teacher": {"tiny": {"hidden": 32, "layers": 2, "heads": 2, "seed": 0}},
        "languages": ["el"],
        "methods": ["zero-shot", "mse"],
        "seeds": [0],
        "budgets": [32],
        "backbones": {"tiny": {"tiny": {"hidden": 32, "layers": 2, "heads": 2, "seed": 0}}},
        "domains": {"nli": ["xnli_devtest"]},
        "n_resamples": 50,
        "base": {
            "distill": {"batch_size": 16, "max_length": 32, "select_on": "none", "device": "cpu"},
            "eval": {"tasks": ["align"], "device": "cpu"},
        },
    }
    result = run_study(parse_study_config(raw, "bad-input.yaml"), root / "study", store=root / "store", progress=False)
    assert not result.failures, result.failures
    write_study_report(result.study_dir)
    export = root / "export"
    export_study(result.study_dir, export, write_report=lambda copy: write_study_report(copy, n_resamples=50).files)
    return {"dir": result.study_dir, "store": root / "store", "export": export}


@pytest.fixture
def ctx(runs, tmp_path):
    """Paths the cases refer to: the shared runs and per-test bad inputs (small files only)."""
    teacher = runs["teacher"]
    paths = {k: str(v) for k, v in runs.items()}
    tmp = tmp_path
    (tmp / "file.txt").write_text("not a directory\n")
    (tmp / "empty").mkdir()
    (tmp / "foreign").mkdir()
    (tmp / "foreign" / "notes.txt").write_text("someone's notes\n")
    (tmp / "empty_model").mkdir()
    corrupt = shutil.copytree(teacher, tmp / "corrupt_model")
    weights = corrupt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-64])
    bad_config = shutil.copytree(teacher, tmp / "bad_config_model")
    (bad_config / "config.json").write_text("{not json")
    empty_tokenizer = shutil.copytree(teacher, tmp / "empty_tokenizer_model")
    (empty_tokenizer / "tokenizer.json").write_text("{}")
    paths["empty_tokenizer_model"] = str(empty_tokenizer)
    no_tokenizer = shutil.copytree(teacher, tmp / "no_tokenizer_model")
    for name in ("tokenizer.json", "vocab.txt"):
        (no_tokenizer / name).unlink(missing_ok=True)
    shutil.copytree(runs["eval_mse"], tmp / "eval_mse_copy")
    truncated = shutil.copytree(runs["run"], tmp / "truncated_run")
    student = truncated / "student" / "model.safetensors"
    student.write_bytes(student.read_bytes()[: student.stat().st_size // 2])
    files = {
        "bad.yaml": "lang: el\nmethod: ot\nout_dir: x\nbudget: [1,\n  2\nseed: 0\n",
        "bad.json": '{"lang": "el",\n "method": }\n',
        "batch_negative.yaml": "lang: el\nmethod: ot\nout_dir: {out}\nbatch_size: -4\n",
        "budget_lots.yaml": "lang: el\nmethod: ot\nout_dir: {out}\nbudget: lots\n",
        "seed_list.yaml": "lang: el\nmethod: ot\nout_dir: {out}\nseed: [1, 2]\n",
        "study_bad.yaml": "study: x\nlanguages: [el\nmethods: [mse]\n",
        "study_resamples.yaml": "languages: [el]\nmethods: [mse]\nn_resamples: lots\n",
        "study_seeds.yaml": "languages: [el]\nmethods: [mse]\nseeds: [x]\n",
        "study_base.yaml": "languages: [el]\nmethods: [mse]\nbase: {distill: {batch_size: lots}}\n",
        "study_lang.yaml": "languages: [xx]\nmethods: [mse]\n",
        "study_ok.yaml": "languages: [el]\nmethods: [zero-shot]\nbase: {eval: {tasks: [align]}}\n",
        "study_seed_negative.yaml": "languages: [el]\nmethods: [mse]\nseeds: [0, -1]\n",
        "study_tiny_heads.yaml": "languages: [el]\nmethods: [mse]\nbackbones: {t: {tiny: {hidden: 32, heads: 3}}}\n",
        "study_groups.yaml": "languages: [el]\nmethods: [mse]\nresource_groups: {low: [el, th], high: [de, el]}\n",
        "study_name_empty.yaml": "study: ''\nlanguages: [el]\nmethods: [mse]\n",
        "study_variant_lr.yaml": "languages: [el]\nmethods: [mse]\nvariants: {mse-fast: {method: mse, lr: -1}}\n",
        "study_license.yaml": "languages: [el]\nmethods: [mse]\nbase: {distill: {license_classes: []}}\n",
        "study_teacher_dir.yaml": "languages: [el]\nmethods: [mse]\nteacher: {model: ./no-such-model}\n",
        "study_fp16.yaml": "languages: [el]\nmethods: [mse]\nbase: {distill: {device: cpu, mixed_precision: fp16}}\n",
        "study_data_dir.yaml": "languages: [el]\nmethods: [mse]\ndata_dir: {tmp}/no-data\n",
        "study_budget_huge.yaml": "languages: [el]\nmethods: [mse]\nbudgets: [2000, 99999999]\n",
        "study_dup.yaml": "languages: [el]\nmethods: [mse]\nlanguages: [de]\n",
        "study_export_file.yaml": "languages: [el]\nmethods: [zero-shot]\nexport: {tmp}/file.txt\n",
        "study_eps_inf.yaml": "languages: [el]\nmethods: [ot]\nbase: {distill: {loss_options: {ot: {eps: .inf}}}}\n",
        "zero_pairs.tsv": "no tab on this line\n\t\n",
    }
    for name, text in files.items():
        (tmp / name).write_text(text.replace("{out}", str(tmp / "out")).replace("{tmp}", str(tmp)))
    fake_study = tmp / "fake_study"
    (fake_study / "runs").mkdir(parents=True)
    (fake_study / "study.json").write_text('{"runs": []}\n')
    truncated_study = tmp / "truncated_study"
    truncated_study.mkdir()
    (truncated_study / "study.json").write_text('{"runs": [{"run_id": ')
    for name, manifest in (
        ("config_number_study", '{"format": 1, "config": 5, "reference": {}, "runs": []}'),
        ("future_study", '{"format": 9, "reference": {}, "runs": []}'),
        ("entry_study", '{"format": 1, "reference": {}, "runs": [{"id": "a", "lang": "el", "method": "mse"}]}'),
    ):
        (tmp / name / "runs").mkdir(parents=True)
        (tmp / name / "study.json").write_text(manifest + "\n")
        paths[name] = str(tmp / name)
    collection = tmp / "qrels_dir_collection"
    (collection / "qrels" / "test.tsv").mkdir(parents=True)
    (collection / "corpus.jsonl").write_text('{"_id": "d1", "text": "a passage"}\n')
    (collection / "queries.jsonl").write_text('{"_id": "q1", "text": "a query"}\n')
    paths["qrels_dir_collection"] = str(collection)
    other_study = tmp / "other_study"
    (other_study / "runs").mkdir(parents=True)
    (other_study / "study.json").write_text('{"study": "another", "config": {"study": "another"}, "runs": []}\n')
    paths.update({name.replace(".", "_"): str(tmp / name) for name in files})
    paths.update(
        tmp=str(tmp),
        out=str(tmp / "out"),
        file=str(tmp / "file.txt"),
        empty=str(tmp / "empty"),
        foreign=str(tmp / "foreign"),
        nowhere=str(tmp / "nowhere"),
        empty_model=str(tmp / "empty_model"),
        corrupt_model=str(corrupt),
        bad_config_model=str(bad_config),
        no_tokenizer_model=str(no_tokenizer),
        truncated_run=str(truncated),
        fake_study=str(fake_study),
        other_study=str(other_study),
        truncated_study=str(truncated_study),
        eval_mse_copy=str(tmp / "eval_mse_copy"),
    )
    return paths
