"""Bad input across every command: one line on stderr naming the culprit, exit status 2, no
traceback, and nothing written or changed (the out dir and every existing run byte-identical).

Each case is ``(command line, a fragment the one line must contain, paths that must not change)``;
``{name}`` in a command line is a path from the ``ctx`` fixture (tests/cli/conftest.py). The
classes are those of issue 13: lost data, stubs that block the fix, tracebacks, silent accepts
and unclear messages. The data-loss tests at the end kill -9 a running ``evaluate``,
``compare`` and ``study export`` and check that the previous results are intact or the new
ones complete, never a mix.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cli_support import DISTILL, EVALUATE, Outcome, tree_digest
from optical.cli import main

# (id, command line, fragment of the one error line, paths that must stay byte-identical)
CASES = [
    # ---- distill: stubs that blocked the fix, tracebacks, unclear messages
    ("distill-lang", DISTILL.replace("--lang el", "--lang xx") + " --out {out}", "'xx'", ["out"]),
    ("distill-bitext", DISTILL + " --bitext nosuchsource --out {out}", "nosuchsource", ["out"]),
    ("distill-budget-above-data", DISTILL.replace("--budget 32", "--budget 99999999") + " --out {out}", "99999999", ["out"]),
    ("distill-budget-abc", DISTILL.replace("--budget 32", "--budget abc") + " --out {out}", "--budget", ["out"]),
    ("distill-noise", DISTILL + " --noise 1.5 --out {out}", "--noise", ["out"]),
    ("distill-method", DISTILL.replace("--method mse", "--method bogus") + " --out {out}", "bogus", ["out"]),
    ("distill-device", DISTILL.replace("--device cpu", "--device tpu") + " --out {out}", "tpu", ["out"]),
    ("distill-eps-abc", DISTILL.replace("mse", "ot", 1) + " --loss-opt ot.eps=abc --out {out}", "ot.eps", ["out"]),
    ("distill-eps-negative", DISTILL.replace("mse", "ot", 1) + " --loss-opt ot.eps=-1 --out {out}", "ot.eps", ["out"]),
    ("distill-opt-unknown", DISTILL.replace("mse", "ot", 1) + " --loss-opt ot.bogus=1 --out {out}", "bogus", ["out"]),
    ("distill-opt-syntax", DISTILL + " --loss-opt eps --out {out}", "LOSS.NAME=VALUE", ["out"]),
    ("distill-empty-data-dir", DISTILL + " --data-dir {empty} --out {out}", "empty", ["out", "empty"]),
    ("distill-config-types", "distill --config {budget_lots_yaml} --teacher {teacher}", "budget must be", ["out"]),
    ("distill-config-seed-list", "distill --config {seed_list_yaml} --teacher {teacher}", "seed must be an integer", ["out"]),
    ("distill-config-yaml", "distill --config {bad_yaml}", "bad.yaml:6:5", ["out"]),
    ("distill-lr-nan", DISTILL + " --lr nan --out {out}", "--lr must be a finite number", ["out"]),
    ("distill-lr-inf", DISTILL + " --lr inf --out {out}", "--lr must be a finite number", ["out"]),
    ("distill-seed-negative", DISTILL + " --seed -1 --out {out}", "--seed must be in", ["out"]),
    ("distill-eval-every-negative", DISTILL + " --eval-every -3 --out {out}", "--eval-every", ["out"]),
    (
        "distill-config-range",
        "distill --config {batch_negative_yaml} --teacher {teacher}",
        "batch_negative.yaml: batch_size",
        ["out"],
    ),
    ("distill-config-record-no-out", "distill --config {run}/run.json", "give --out", ["run"]),
    ("distill-config-json", "distill --config {bad_json}", "bad.json:2:", ["out"]),
    ("distill-config-missing", "distill --config {nowhere}", "does not exist", ["out"]),
    ("distill-config-dir", "distill --config {empty}", "is a directory", ["empty"]),
    ("distill-teacher-empty", DISTILL.replace("{teacher}", "{empty_model}") + " --out {out}", "config.json is missing", ["out"]),
    ("distill-teacher-corrupt", DISTILL.replace("{teacher}", "{corrupt_model}") + " --out {out}", "model.safetensors", ["out"]),
    ("distill-teacher-config", DISTILL.replace("{teacher}", "{bad_config_model}") + " --out {out}", "config.json", ["out"]),
    (
        "distill-teacher-tokenizer-empty",
        DISTILL.replace("{teacher}", "{empty_tokenizer_model}") + " --out {out}",
        "tokenizer.json is not a tokenizers file",
        ["out"],
    ),
    ("distill-teacher-tokenizer", DISTILL.replace("{teacher}", "{no_tokenizer_model}") + " --out {out}", "tokenizer", ["out"]),
    ("distill-teacher-nowhere", DISTILL.replace("{teacher}", "{nowhere}") + " --out {out}", "nowhere", ["out"]),
    ("distill-out-file", DISTILL + " --out {file}", "file.txt", ["file"]),
    ("distill-out-under-file", DISTILL + " --out {file}/run", "file.txt", ["file"]),
    ("distill-out-foreign", DISTILL + " --out {foreign}", "foreign", ["foreign"]),
    ("distill-out-eval", DISTILL + " --out {eval_zs}", "evaluation", ["eval_zs"]),
    ("distill-out-other-run", DISTILL.replace("--method mse", "--method ot") + " --out {run}", "different run", ["run"]),
    ("distill-truncated-student", DISTILL + " --out {truncated_run}", "changed since the run finished", ["truncated_run"]),
    # ---- evaluate: lost data (another system's run dir, a distill dir), tracebacks, late errors
    (
        "evaluate-out-other-system",
        EVALUATE + " --student zero-shot --split test --out {eval_mse}",
        "another evaluation",
        ["eval_mse"],
    ),
    (
        "evaluate-out-other-tasks",
        EVALUATE.replace("align", "clir_sentence") + " --student {run} --out {eval_mse}",
        "another evaluation",
        ["eval_mse"],
    ),
    ("evaluate-noise-seed", EVALUATE + " --student zero-shot --noise-seed -1 --out {out}", "--noise-seed", ["out"]),
    ("evaluate-system-empty", EVALUATE + " --student zero-shot --system= --out {out}", "--system is empty", ["out"]),
    (
        "evaluate-collection-langs",
        "evaluate --student zero-shot --collection {empty} --query-lang el --langs de --out {out}",
        "--langs sets the XQuAD evaluation",
        ["out", "empty"],
    ),
    (
        "evaluate-collection-typos",
        "evaluate --student zero-shot --collection {empty} --query-lang el --query-noise 0.1 --data-dir {empty} --out {out}",
        "--query-noise, --data-dir set the XQuAD evaluation",
        ["out", "empty"],
    ),
    (
        "evaluate-collection-cuda",
        "evaluate --student zero-shot --collection {empty} --query-lang el --device cuda --out {out}",
        "CUDA",
        ["out", "empty"],
    ),
    (
        "evaluate-maxsim-task-without-maxsim",
        EVALUATE + " --student zero-shot --scoring dense,maxsim --maxsim-tasks align --out {out}",
        "task align has no MaxSim scoring",
        ["out"],
    ),
    (
        "evaluate-maxsim-tasks-without-maxsim",
        EVALUATE + " --student zero-shot --maxsim-tasks clir_sentence --out {out}",
        "--maxsim-tasks goes with --scoring dense,maxsim",
        ["out"],
    ),
    (
        "evaluate-teacher-is-an-mt-model",
        EVALUATE + " --student zero-shot --teacher opus-mt-zh-en --out {out}",
        "--teacher opus-mt-zh-en is the default translator, not an encoder",
        ["out"],
    ),
    (
        "evaluate-mt-model-for-another-language",
        EVALUATE + " --student translate-test --mt-model opus-mt-zh-en --out {out}",
        "--mt-model opus-mt-zh-en translates zh only",
        ["out"],
    ),
    (
        "evaluate-mt-model-is-an-encoder",
        EVALUATE + " --student translate-test --mt-model multilingual-e5-small --out {out}",
        "--mt-model multilingual-e5-small is the default encoder, not a translator",
        ["out"],
    ),
    (
        "evaluate-collection-maxsim-tasks",
        "evaluate --student zero-shot --collection {empty} --query-lang el --maxsim-tasks clir_sentence --out {out}",
        "--maxsim-tasks sets the XQuAD evaluation",
        ["out", "empty"],
    ),
    ("evaluate-task-name-alone", EVALUATE + " --student zero-shot --task-name x --out {out}", "--task-name goes with", ["out"]),
    (
        "evaluate-langs-empty",
        EVALUATE + " --student zero-shot --langs= --out {out}",
        "argument --langs: '' has an empty item",
        ["out"],
    ),
    ("evaluate-student-empty", EVALUATE + " --student= --out {out}", "--student is empty", ["out"]),
    ("evaluate-student-file", EVALUATE + " --student {file} --out {out}", "is a file", ["out"]),
    (
        "evaluate-task-name-empty",
        "evaluate --student zero-shot --collection {empty} --query-lang el --task-name= --out {out}",
        "--task-name is empty",
        ["out"],
    ),
    ("check-bitext-device", "data check-bitext /dev/null --lang el", "is not a regular file", []),
    ("distill-bitext-comma", DISTILL + " --bitext , --out {out}", "empty item", ["out"]),
    ("fetch-only-empty", "data fetch --only= --data-dir {out}", "--only", ["out"]),
    ("model-list-extra", "model list extra", "see `optical model list --help`", []),
    ("study-run-no-config", "study run --dry-run", "optical study run needs --config", []),
    ("study-parent-flag", "study --config {study_ok_yaml} report {fake_study}", "--config belongs to", ["fake_study"]),
    ("compare-baseline-empty", "compare {eval_zs} {eval_mse} --baseline= --out {out}", "empty item", ["out"]),
    ("evaluate-out-distill-run", EVALUATE + " --student zero-shot --out {run}", "distillation run", ["run"]),
    ("evaluate-out-file", EVALUATE + " --student zero-shot --out {file}", "file.txt", ["file"]),
    ("evaluate-out-foreign", EVALUATE + " --student zero-shot --out {foreign}", "foreign", ["foreign"]),
    (
        "evaluate-truncated-student",
        EVALUATE + " --student {truncated_run} --out {out}",
        "changed since the run finished",
        ["out", "truncated_run"],
    ),
    ("evaluate-student-nowhere", EVALUATE + " --student {nowhere} --out {out}", "nowhere", ["out"]),
    ("evaluate-student-not-run", EVALUATE + " --student {empty} --out {out}", "run.json", ["out"]),
    ("evaluate-student-other-teacher", "evaluate --student {run} --tasks align --out {out}", "teacher", ["out"]),
    ("evaluate-langs", EVALUATE + " --student zero-shot --langs xx --out {out}", "'xx'", ["out"]),
    ("evaluate-tasks", EVALUATE.replace("align", "bogus") + " --student zero-shot --out {out}", "bogus", ["out"]),
    ("evaluate-scoring", EVALUATE + " --student zero-shot --scoring bogus --out {out}", "bogus", ["out"]),
    ("evaluate-query-noise", EVALUATE + " --student zero-shot --query-noise 2 --out {out}", "--query-noise", ["out"]),
    ("evaluate-batch-abc", EVALUATE + " --student zero-shot --batch-size abc --out {out}", "--batch-size", ["out"]),
    ("evaluate-batch-zero", EVALUATE + " --student zero-shot --batch-size 0 --out {out}", "batch_size", ["out"]),
    ("evaluate-split", EVALUATE + " --student zero-shot --split train --out {out}", "--split", ["out"]),
    ("evaluate-device", EVALUATE.replace("cpu", "tpu") + " --student zero-shot --out {out}", "tpu", ["out"]),
    ("evaluate-precision", EVALUATE + " --student zero-shot --mixed-precision fp32 --out {out}", "'fp32'", ["out"]),
    (
        "evaluate-teacher-empty",
        EVALUATE.replace("{teacher}", "{empty_model}") + " --student zero-shot --out {out}",
        "config.json",
        ["out"],
    ),
    (
        "evaluate-teacher-corrupt",
        EVALUATE.replace("{teacher}", "{corrupt_model}") + " --student zero-shot --out {out}",
        "model.safetensors",
        ["out"],
    ),
    ("evaluate-data-dir", EVALUATE + " --student zero-shot --data-dir {empty} --out {out}", "empty", ["out"]),
    # ---- compare: silent accepts, lost data
    ("compare-same-seed-twice", "compare {eval_zs} {eval_mse} {eval_mse_copy} --out {out}", "trained with seed 0", ["out"]),
    ("compare-no-common-task", "compare {eval_mse} {eval_zs_de} --out {out}", "share no task", ["out"]),
    (
        "compare-low-invalid",
        "compare {eval_zs} {eval_mse} --low el,xx --out {out}",
        "--low: 'xx' is not a valid language",
        ["out"],
    ),
    ("compare-seed-negative", "compare {eval_zs} {eval_mse} --seed -1 --out {out}", "--seed must be in", ["out"]),
    ("compare-one-run", "compare {eval_zs} --out {out}", "two distinct systems", ["out"]),
    ("compare-same-dir-twice", "compare {eval_zs} {eval_mse} {eval_mse} --out {out}", "twice", ["out"]),
    ("compare-measures", "compare {eval_zs} {eval_mse} --measures foo --out {out}", "foo", ["out"]),
    ("compare-out-is-run", "compare {eval_zs} {eval_mse} --out {eval_mse}", "overlaps", ["eval_mse"]),
    ("compare-out-file", "compare {eval_zs} {eval_mse} --out {file}", "file.txt", ["file"]),
    ("compare-out-foreign", "compare {eval_zs} {eval_mse} --out {foreign}", "no comparison report", ["foreign"]),
    ("compare-run-nowhere", "compare {eval_zs} {nowhere} --out {out}", "nowhere", ["out"]),
    ("compare-run-is-distill", "compare {eval_zs} {run} --out {out}", "eval.json is missing", ["out", "run"]),
    ("compare-resamples-abc", "compare {eval_zs} {eval_mse} --n-resamples abc --out {out}", "--n-resamples", ["out"]),
    ("compare-resamples-zero", "compare {eval_zs} {eval_mse} --n-resamples 0 --out {out}", "--n-resamples", ["out"]),
    ("compare-baseline", "compare {eval_zs} {eval_mse} --baseline nope --out {out}", "nope", ["out"]),
    ("compare-no-out", "compare {eval_zs} {eval_mse}", "--out", []),
    # ---- study run / report / export
    ("study-config-missing", "study run --config {nowhere} --out {out}", "does not exist", ["out"]),
    ("study-config-yaml", "study run --config {study_bad_yaml} --out {out}", "study_bad.yaml:3:", ["out"]),
    ("study-resamples-type", "study run --config {study_resamples_yaml} --out {out}", "n_resamples", ["out"]),
    ("study-seeds-type", "study run --config {study_seeds_yaml} --out {out}", "seeds", ["out"]),
    ("study-base-type", "study run --config {study_base_yaml} --out {out}", "batch_size must be an integer", ["out"]),
    ("study-lang", "study run --config {study_lang_yaml} --out {out}", "'xx'", ["out"]),
    (
        "study-seed-negative",
        "study run --config {study_seed_negative_yaml} --out {out}",
        "seed -1 budget 2000 domain mixed: --seed must be in",
        ["out"],
    ),
    (
        "study-seed-dry-run",
        "study run --config {study_seed_negative_yaml} --dry-run",
        "seed -1 budget 2000 domain mixed: --seed must be in",
        [],
    ),
    ("study-tiny-heads", "study run --config {study_tiny_heads_yaml} --out {out}", "not a multiple of heads 3", ["out"]),
    ("study-groups-overlap", "study run --config {study_groups_yaml} --out {out}", "el in both low and high", ["out"]),
    ("study-name-empty", "study run --config {study_name_empty_yaml} --out {out}", "non-empty name", ["out"]),
    ("study-unused-variant", "study run --config {study_variant_lr_yaml} --out {out}", "variants.mse-fast: --lr", ["out"]),
    ("study-license-empty", "study run --config {study_license_yaml} --out {out}", "license_classes is empty", ["out"]),
    ("study-teacher-dir", "study run --config {study_teacher_dir_yaml} --out {out}", "no-such-model: no such model", ["out"]),
    ("study-fp16-cpu", "study run --config {study_fp16_yaml} --out {out}", "fp16 needs a CUDA device", ["out"]),
    ("study-data-dir", "study run --config {study_data_dir_yaml} --out {out}", "no-data", ["out"]),
    ("study-budget-huge", "study run --config {study_budget_huge_yaml} --dry-run", "budget 99999999 is not available", []),
    ("study-duplicate-key", "study run --config {study_dup_yaml} --dry-run", "study_dup.yaml:3:1", []),
    ("study-export-is-file", "study run --config {study_export_file_yaml} --dry-run", "file.txt is a file", []),
    (
        "evaluate-qrels-dir",
        "evaluate --student zero-shot --collection {qrels_dir_collection} --query-lang el --out {out}",
        "qrels/test.tsv is not a regular file",
        ["out"],
    ),
    ("study-eps-inf", "study run --config {study_eps_inf_yaml} --out {out}", "ot.eps=inf", ["out"]),
    ("study-no-config", "study run --out {out}", "--config", ["out"]),
    ("study-out-file", "study run --config {study_ok_yaml} --out {file}", "file.txt", ["file"]),
    ("study-out-foreign", "study run --config {study_ok_yaml} --out {foreign}", "holds no study", ["foreign"]),
    ("study-dry-run-out-foreign", "study run --config {study_ok_yaml} --out {foreign} --dry-run", "holds no study", ["foreign"]),
    ("study-dry-run-from-export", "study run --config {study_ok_yaml} --from-export {nowhere} --dry-run", "--from-export", []),
    ("study-dry-run-address", "study run --config {study_ok_yaml} --address auto --dry-run", "--address", []),
    ("study-dry-run-cpus", "study run --config {study_ok_yaml} --executor ray --cpus-per-run -1 --dry-run", "--cpus-per-run", []),
    ("study-out-other", "study run --config {study_ok_yaml} --out {other_study}", "holds another study", ["other_study"]),
    ("study-store-file", "study run --config {study_ok_yaml} --out {out} --store {file}", "--store", ["out", "file"]),
    ("study-report-nowhere", "study report {nowhere}", "does not exist", []),
    ("study-report-not-study", "study report {eval_zs}", "study.json is missing", ["eval_zs"]),
    (
        "study-report-truncated",
        "study report {truncated_study}",
        "study.json is damaged (not valid JSON at line 1",
        ["truncated_study"],
    ),
    ("study-report-config-number", "study report {config_number_study}", "(config is not an object)", ["config_number_study"]),
    ("study-report-future-format", "study report {future_study}", "format 9, where this version", ["future_study"]),
    ("study-report-run-entry", "study report {entry_study}", "runs[0].status is missing", ["entry_study"]),
    ("study-export-run-entry", "study export {entry_study} --out {out}", "runs[0].status is missing", ["out", "entry_study"]),
    ("study-report-resamples", "study report {fake_study} --resamples abc", "--resamples", ["fake_study"]),
    ("study-export-nowhere", "study export {nowhere} --out {out}", "does not exist", ["out"]),
    ("study-export-out-file", "study export {fake_study} --out {file}", "file.txt", ["file", "fake_study"]),
    ("study-export-out-foreign", "study export {fake_study} --out {foreign}", "no exported study", ["foreign", "fake_study"]),
    ("study-export-out-inside", "study export {fake_study} --out {fake_study}/runs", "overlaps", ["fake_study"]),
    ("study-export-out-self", "study export {fake_study} --out {fake_study}", "overlaps", ["fake_study"]),
    ("study-export-resamples", "study export {fake_study} --out {out} --resamples 0", "--resamples", ["out", "fake_study"]),
    # ---- demo (checked before its minutes-long first step)
    ("demo-lang", "demo --lang xx --out {out}", "'xx'", ["out"]),
    ("demo-budget-zero", "demo --budget 0 --out {out}", "--budget", ["out"]),
    ("demo-lang-english", "demo --lang en --out {out}", "'en' (English) is not in bitext", ["out"]),
    ("demo-budget-above-data", "demo --budget 99999999 --out {out}", "budget 99999999 is not available", ["out"]),
    ("demo-budget-abc", "demo --budget abc --out {out}", "--budget", ["out"]),
    ("demo-out-file", "demo --out {file}", "file.txt", ["file"]),
    ("demo-out-foreign", "demo --out {foreign}", "holds other files", ["foreign"]),
    ("demo-device", "demo --device tpu --out {out}", "tpu", ["out"]),
    # ---- model and data, and the command line itself
    ("model-prepare-only", "model prepare --only bogus", "bogus", []),
    ("model-action", "model bogus", "bogus", []),
    ("model-no-action", "model", "required", []),
    ("command-unknown", "bogus", "bogus", []),
    ("data-export-beir-foreign", "data export-beir --lang el --out {foreign}", "holds no BEIR collection", ["foreign"]),
    ("data-summary-nowhere", "data summary --data-dir {nowhere}", "nowhere", []),
    ("data-summary-file", "data summary --data-dir {file}", "is a file, not a directory", ["file"]),
    ("data-fetch-mirror-file", "data fetch --mirror {file} --data-dir {out}", "is a file, not a directory", ["out", "file"]),
    ("data-fetch-into-file", "data fetch --mirror {empty} --data-dir {file}", "file.txt is a file", ["file", "empty"]),
    ("data-check-missing", "data check-bitext {nowhere} --lang el", "nowhere", []),
    ("data-check-lang", "data check-bitext {zero_pairs_tsv} --lang xx", "'xx'", []),
    ("data-fetch-group", "data fetch --only bogus --data-dir {out}", "bogus", ["out"]),
]


def run_cli(command: str, ctx: dict[str, str], capfd) -> Outcome:
    argv = [part.format(**ctx) for part in command.split()]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    captured = capfd.readouterr()
    return Outcome(code, captured.out, captured.err)


def assert_one_line_error(outcome: Outcome, fragment: str) -> None:
    lines = [line for line in outcome.err.splitlines() if line.strip()]
    assert "Traceback" not in outcome.err and "Traceback" not in outcome.out, outcome.err
    assert outcome.code == 2, (outcome.code, outcome.err)
    assert len(lines) == 1, outcome.err
    assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("command, fragment, guarded", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(command, fragment, guarded, ctx, capfd):
    before = {name: tree_digest(Path(ctx[name])) for name in guarded}
    outcome = run_cli(command, ctx, capfd)
    assert_one_line_error(outcome, fragment.format(**ctx))
    assert {name: tree_digest(Path(ctx[name])) for name in guarded} == before


@pytest.mark.parametrize("name", ["zero_pairs_tsv", "empty_tsv"])
@pytest.mark.parametrize("strict", [" --strict", ""])
def test_check_bitext_fails_on_a_file_without_usable_pairs(name, strict, ctx, capfd):
    Path(ctx["tmp"], "empty.tsv").write_text("")
    ctx = {**ctx, "empty_tsv": str(Path(ctx["tmp"], "empty.tsv"))}
    outcome = run_cli(f"data check-bitext {{{name}}} --lang el{strict}", ctx, capfd)
    assert_one_line_error(outcome, ctx[name])
    assert strict or "0 pairs kept" in outcome.out  # without --strict, the reasons lines were skipped come first


def test_evaluate_overwrite_replaces_another_system_whole(runs, ctx, capfd, tmp_path):
    import shutil

    from optical.eval.results import EvalRun

    out = shutil.copytree(runs["eval_mse"], tmp_path / "eval")
    command = EVALUATE.replace("--tasks align", "--tasks retention") + " --student zero-shot --split dev --out " + str(out)
    assert_one_line_error(run_cli(command, ctx, capfd), "--overwrite")
    outcome = run_cli(command + " --overwrite", ctx, capfd)
    assert outcome.code == 0, outcome.err
    assert set(EvalRun.load(out).tasks) == {"retention.en"} and not list(out.rglob("*align*"))


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize(
    "command",
    [
        DISTILL + " --out {ro}/run",
        EVALUATE + " --student zero-shot --out {ro}/e",
        "compare {eval_zs} {eval_mse} --out {ro}/r",
        "demo --out {ro}/demo",
        "study export {fake_study} --out {ro}/x",
        "study run --config {study_ok_yaml} --out {ro}/s",
    ],
)
def test_out_in_a_read_only_dir_is_refused_first(command, ctx, capfd, tmp_path):
    if os.geteuid() == 0:  # root may write into a chmod-ed dir (os.access says yes too); no one makes a dir in /proc
        ro = Path("/proc")
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
    before = sorted(p.name for p in ro.iterdir() if not p.name.isdigit())  # /proc's process dirs come and go
    try:
        assert_one_line_error(run_cli(command, {**ctx, "ro": str(ro)}, capfd), "not writable")
    finally:
        if ro != Path("/proc"):
            ro.chmod(0o755)
    assert sorted(p.name for p in ro.iterdir() if not p.name.isdigit()) == before


def test_a_refused_distill_leaves_no_stub_and_the_corrected_rerun_runs(ctx, capfd):
    out = Path(ctx["out"])
    assert_one_line_error(run_cli(DISTILL.replace("--lang el", "--lang xx") + " --out {out}", ctx, capfd), "'xx'")
    assert not out.exists()
    assert_one_line_error(
        run_cli(DISTILL.replace("{teacher}", "{corrupt_model}") + " --out {out}", ctx, capfd), "model.safetensors"
    )
    assert not out.exists()
    outcome = run_cli(DISTILL + " --out {out}", ctx, capfd)
    assert outcome.code == 0 and "student saved" in outcome.out, outcome.err
    assert (out / "run.json").is_file()


def test_distill_reports_skipped_lines_per_reason_on_stderr(ctx, capfd):
    outcome = run_cli(
        DISTILL.replace("--budget 32", "--budget 16").replace("--batch-size 16", "--batch-size 8") + " --out {out}", ctx, capfd
    )
    assert outcome.code == 0, outcome.err
    skipped = [line for line in outcome.err.splitlines() if line.startswith("bitext ") and "skipped" in line]
    if not skipped:
        pytest.skip("the training sources of el have no malformed line to report")
    assert all("(" in line and ")" in line for line in skipped)


def test_an_unexpected_error_is_one_line_with_a_log_and_debug_shows_it(ctx, capfd, monkeypatch, cli_env):
    import optical.cli.model as model_cli

    def broken(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(model_cli, "_list", broken)
    parser_func = run_cli("model list", ctx, capfd)
    lines = parser_func.err.strip().splitlines()
    assert parser_func.code == 1 and len(lines) == 1 and "Traceback" not in parser_func.err
    assert "ZeroDivisionError: a bug" in lines[0] and "--debug" in lines[0]
    log = Path(lines[0].split("full log: ")[1].split(";")[0])
    assert log.is_file() and "Traceback" in log.read_text() and log.is_relative_to(cli_env)
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "model", "list"])


# ------------------------------------------------------------------ kill -9: previous results or new ones, never a mix
def _kill_during(code: str, seconds: float) -> None:
    """Run ``code`` in a fresh Python and kill -9 it after ``seconds`` (or let it finish first)."""
    env = {**os.environ}
    process = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


def _previous_or_complete(path: Path, before: dict, is_complete) -> None:
    after = tree_digest(path)
    assert after == before or is_complete(path), "a killed write left a mix of two runs"


@pytest.mark.parametrize("after_seconds", [2.5, 4.0])
def test_kill_during_evaluate_keeps_the_previous_run_or_the_new_one(runs, tmp_path, after_seconds):
    import shutil

    from optical.eval.results import EvalRun

    out = shutil.copytree(runs["eval_mse"], tmp_path / "eval")
    before = tree_digest(out)
    code = (
        "from optical.eval.evaluate import EvalConfig, evaluate\n"
        f"evaluate(EvalConfig(student='zero-shot', out_dir={str(out)!r}, teacher={str(runs['teacher'])!r}, "
        "tasks=['align', 'clir_sentence'], split='dev', device='cpu'), progress=False, overwrite=True)\n"
    )
    _kill_during(code, after_seconds)

    def complete(path: Path) -> bool:
        run = EvalRun.load(path)
        return run.is_zero_shot and set(run.tasks) == {"align_x2en.el", "align_en2x.el", "clir_sentence.el"}

    _previous_or_complete(out, before, complete)


@pytest.mark.parametrize("after_seconds", [2.5, 4.0])
def test_kill_during_compare_keeps_the_previous_report_or_the_new_one(runs, tmp_path, after_seconds, capfd):
    out = tmp_path / "report"
    assert main(["compare", str(runs["eval_zs"]), str(runs["eval_mse"]), "--n-resamples", "50", "--out", str(out)]) == 0
    before = tree_digest(out)
    code = (
        "from optical.cli import main\n"
        f"main(['compare', {str(runs['eval_zs'])!r}, {str(runs['eval_mse'])!r}, '--n-resamples', '3000', "
        f"'--seed', '1', '--out', {str(out)!r}])\n"
    )
    _kill_during(code, after_seconds)

    def complete(path: Path) -> bool:
        import json

        return json.loads((path / "comparison.json").read_text())["seed"] == 1 and (path / "report.md").is_file()

    _previous_or_complete(out, before, complete)


def test_kill_during_study_export_keeps_the_previous_export_or_the_new_one(study, tmp_path):
    import shutil

    out = shutil.copytree(study["export"], tmp_path / "export")
    before = tree_digest(out)
    code = (
        "from optical.cli import main\n"
        f"main(['study', 'export', {str(study['dir'])!r}, '--out', {str(out)!r}, '--resamples', '400'])\n"
    )
    _kill_during(code, 4.0)

    def complete(path: Path) -> bool:
        return (path / "study.json").is_file() and (path / "report" / "report.md").is_file()

    _previous_or_complete(out, before, complete)


def test_study_export_over_an_earlier_export_and_report_work(study, tmp_path, capfd):
    import shutil

    out = shutil.copytree(study["export"], tmp_path / "export")
    assert main(["study", "export", str(study["dir"]), "--out", str(out), "--resamples", "50"]) == 0
    assert main(["study", "report", str(out), "--resamples", "50"]) == 0
    capfd.readouterr()


def test_study_report_warns_when_a_finished_runs_evaluation_is_gone(study, tmp_path, capfd):
    import json
    import shutil

    out = shutil.copytree(study["export"], tmp_path / "export")
    manifest = json.loads((out / "study.json").read_text())
    entry = next(e for e in manifest["runs"] if e["status"] == "done" and e["method"] == "mse")
    gone = next(iter(entry["eval_dirs"].values()))
    shutil.rmtree(out / gone)
    capfd.readouterr()
    assert main(["study", "report", str(out), "--resamples", "50"]) == 0
    err = capfd.readouterr().err
    assert "warning: evaluations of finished runs missing: 1" in err and gone in err
    assert gone in (out / "report" / "report.md").read_text()
