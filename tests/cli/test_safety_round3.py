"""Safety round 3 (issue 29): hostile records, two writers, remote code, the reserved set, silent accepts,
tracebacks and hangs, and remedies that fit their cause, all through the real CLI.

Every refusal is exit status 2 and one line on stderr naming the file, value or path, with no traceback, and
the directories around it unchanged (``tree_digest`` before and after); a safe behaviour is asserted as such
(a devtest sentence counted and dropped, a stale temporary gone). The shared tiny runs and study come from
``tests/cli/conftest.py``. The classes follow the issue's list, in its order.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import pytest

from cli_support import DISTILL, EVALUATE, Outcome, tree_digest
from optical.cli import main

SKIP_REPORT = re.compile(r"^bitext \S+: skipped \d+ of \d+ lines \(")


def run_cli(argv: list[str], capfd) -> Outcome:
    try:
        code = main([str(part) for part in argv])
    except SystemExit as exc:  # argparse
        code = exc.code
    captured = capfd.readouterr()
    return Outcome(code, captured.out, captured.err)


def refused(outcome: Outcome, *fragments: str) -> str:
    """The one error line of a refusal, after checking it is one, with status 2 and every fragment (distill's
    report of the lines it skipped in each bitext source comes first when the refusal follows the data)."""
    lines = [line for line in outcome.err.splitlines() if line.strip() and not SKIP_REPORT.match(line)]
    assert "Traceback" not in outcome.err + outcome.out, outcome.err
    assert outcome.code == 2, (outcome.code, outcome.err)
    assert len(lines) == 1, outcome.err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def cmd(template: str, ctx: dict[str, str], **extra: str) -> list[str]:
    return [part.format(**{**ctx, **extra}) for part in template.split()]


def refuses_and_keeps(argv: list[str], capfd, guarded: list[Path], *fragments: str) -> str:
    before = {str(path): tree_digest(path) for path in guarded}
    line = refused(run_cli(argv, capfd), *fragments)
    assert {str(path): tree_digest(path) for path in guarded} == before
    return line


# ====================================================================== 1. paths named by records stay inside
def _edit_json(path: Path, edit) -> None:
    value = json.loads(path.read_text())
    edit(value)
    path.write_text(json.dumps(value))


def _first_task(summary: dict) -> dict:
    return next(iter(summary["tasks"].values()))


def _outside_per_query(eval_dir: Path, elsewhere: Path) -> str:
    """A copy of the run's first per-query file outside it (the file a hostile eval.json points at)."""
    summary = json.loads((eval_dir / "eval.json").read_text())
    source = eval_dir / _first_task(summary)["files"]["per_query"]
    elsewhere.mkdir(parents=True, exist_ok=True)
    return str(shutil.copy(source, elsewhere / source.name))


EVAL_JSON_PATHS = [
    ("absolute", lambda outside: outside, "is absolute"),
    ("climbs", lambda outside: "../" + Path(outside).parent.name + "/" + Path(outside).name, "climbs out with '..'"),
    ("climbs-inside", lambda outside: "per_query/../../x.tsv", "climbs out with '..'"),
    ("nul", lambda outside: "per_query/a\0b.tsv", "holds a NUL byte"),
    ("number", lambda outside: 7, "is not a relative path"),
    ("empty", lambda outside: "", "is not a relative path"),
    ("list", lambda outside: ["per_query/x.tsv"], "is not a relative path"),
]


@pytest.mark.parametrize("field", ["per_query", "run", "qrels"])
@pytest.mark.parametrize("name, value, problem", EVAL_JSON_PATHS, ids=[c[0] for c in EVAL_JSON_PATHS])
def test_compare_refuses_an_eval_json_path_leading_out_of_its_run(field, name, value, problem, runs, tmp_path, capfd):
    run = shutil.copytree(runs["eval_mse"], tmp_path / "eval")
    target = value(_outside_per_query(run, tmp_path / "elsewhere"))
    if field == "per_query" and name in ("number", "list"):
        problem = "files.per_query is missing"
    _edit_json(run / "eval.json", lambda s: _first_task(s)["files"].__setitem__(field, target))
    argv = ["compare", runs["eval_zs"], run, "--out", tmp_path / "out", "--n-resamples", "20"]
    if field == "per_query":
        line = refuses_and_keeps(argv, capfd, [tmp_path / "out", tmp_path / "elsewhere"], f"files.{field}", problem)
    else:  # compare reads no TREC files; evaluate's reuse of a finished run reads them
        run = shutil.copytree(runs["eval_zs"], tmp_path / "eval-zs")  # the same evaluation: its reuse reads the files
        _edit_json(run / "eval.json", lambda s: _first_task(s)["files"].__setitem__(field, target))
        _edit_json(run / "eval.json", lambda s: s["config"]["eval"].__setitem__("out_dir", str(run)))
        argv = cmd(EVALUATE + " --student zero-shot --out {o}", {"teacher": str(runs["teacher"])}, o=str(run))
        if name == "empty":  # an empty run or qrels entry records a run written without TREC files: reused as it is
            assert run_cli(argv, capfd).code == 0
            return
        line = refuses_and_keeps(argv, capfd, [tmp_path / "elsewhere"], f"files.{field}", problem)
    assert "eval.json" in line


def test_compare_refuses_a_per_query_file_linked_out_of_its_run(runs, tmp_path, capfd):
    run = shutil.copytree(runs["eval_mse"], tmp_path / "eval")
    summary = json.loads((run / "eval.json").read_text())
    inside = run / _first_task(summary)["files"]["per_query"]
    outside = Path(_outside_per_query(run, tmp_path / "elsewhere"))
    inside.unlink()
    inside.symlink_to(outside)
    argv = ["compare", runs["eval_zs"], run, "--out", tmp_path / "out", "--n-resamples", "20"]
    refuses_and_keeps(argv, capfd, [tmp_path / "out", outside], "leads outside through a link")


STUDY_PATHS = [
    ("eval-absolute", "eval_dirs", "abs", "is absolute"),
    ("eval-climbs", "eval_dirs", "../victim", "climbs out with '..'"),
    ("eval-climbs-deep", "eval_dirs", "runs/x/../../../victim", "climbs out with '..'"),
    ("distill-absolute", "distill_dir", "abs", "is absolute"),
    ("distill-climbs", "distill_dir", "../victim", "climbs out with '..'"),
    ("path-absolute", "path", "abs", "is absolute"),
    ("path-nul", "path", "runs/\0", "holds a NUL byte"),
]


@pytest.mark.parametrize("command", ["export", "report"])
@pytest.mark.parametrize("name, field, value, problem", STUDY_PATHS, ids=[c[0] for c in STUDY_PATHS])
def test_study_commands_refuse_a_manifest_path_out_of_the_study(
    command, name, field, value, problem, study, runs, tmp_path, capfd
):
    copy = shutil.copytree(study["export"], tmp_path / "study")
    victim = shutil.copytree(runs["eval_mse"], tmp_path / "victim")
    value = str(victim) if value == "abs" else value

    def edit(manifest: dict) -> None:
        entry = next(e for e in manifest["runs"] if e["eval_dirs"] and e.get("distill_dir"))
        if field == "eval_dirs":
            entry["eval_dirs"] = {noise: value for noise in entry["eval_dirs"]}
        else:
            entry[field] = value

    _edit_json(copy / "study.json", edit)
    out = tmp_path / "export"
    argv = ["study", "export", copy, "--out", out, "--resamples", "20"] if command == "export" else ["study", "report", copy]
    guarded = [victim, out] if command == "export" else [victim]
    refuses_and_keeps(argv, capfd, guarded, "study.json", field, problem)


@pytest.mark.parametrize("key", ["../../outside.bin", "/etc/hostname", "model.safetensors/../../x"])
def test_evaluate_refuses_student_files_of_run_json_leading_out_of_the_student(key, runs, tmp_path, capfd):
    run = shutil.copytree(runs["run"], tmp_path / "run")
    (tmp_path / "outside.bin").write_bytes(b"x")
    _edit_json(run / "run.json", lambda r: r["student_files"].__setitem__(key, {"size": 1, "sha256": "0" * 64}))
    argv = cmd(EVALUATE + " --student {s} --out {o}", {"teacher": str(runs["teacher"])}, s=str(run), o=str(tmp_path / "e"))
    refuses_and_keeps(argv, capfd, [tmp_path / "e"], "run.json", "student_files")


# ====================================================================== 2. one writer per output dir
HOLDER = (
    "import sys, time\n"
    "from optical.storage import output_lock\n"
    "with output_lock(sys.argv[1]):\n"
    "    print('held', flush=True)\n"
    "    time.sleep(120)\n"
)


@pytest.fixture
def holder():
    """Start a process that holds the lock of a dir (as a running `optical` command does); kill -9 it after."""
    started = []

    def hold(path: Path) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True)
        assert process.stdout.readline().strip() == "held"
        started.append(process)
        return process

    yield hold
    for process in started:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()


def _collection(tmp_path: Path) -> Path:
    collection = tmp_path / "collection"
    (collection / "qrels").mkdir(parents=True)
    (collection / "corpus.jsonl").write_text(
        '{"_id": "d1", "text": "The cat sleeps."}\n{"_id": "d2", "text": "Rain falls in spring."}\n'
    )
    (collection / "queries.jsonl").write_text('{"_id": "q1", "text": "Η γάτα κοιμάται."}\n')
    (collection / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    return collection


WRITERS = {
    "distill": DISTILL + " --out {out}",
    "evaluate": EVALUATE + " --student zero-shot --out {out}",
    "evaluate-collection": "evaluate --student zero-shot --teacher {teacher} --collection {collection} --query-lang el "
    "--device cpu --quiet --out {out}",
    "compare": "compare {eval_zs} {eval_mse} --n-resamples 20 --out {out}",
    "study-export": "study export {study} --resamples 20 --out {out}",
    "data-fetch": "data fetch --mirror {mirror} --only xquad --data-dir {out}",
}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_second_writer_is_refused_at_once_naming_the_holder(writer, ctx, study, mirror_dir, holder, tmp_path, capfd):
    out = tmp_path / "busy"
    held = holder(out)
    extra = {"collection": str(_collection(tmp_path)), "study": str(study["dir"]), "mirror": str(mirror_dir), "out": str(out)}
    started = time.monotonic()
    line = refuses_and_keeps(cmd(WRITERS[writer], ctx, **extra), capfd, [out], str(out), f"pid {held.pid}", "being written")
    assert time.monotonic() - started < 60, "refused at once, not after the work"
    assert socket.gethostname() in line


def test_the_lock_of_a_killed_writer_is_released(ctx, holder, tmp_path, capfd):
    out = tmp_path / "report"
    held = holder(out)
    argv = cmd(WRITERS["compare"], ctx, out=str(out))
    refused(run_cli(argv, capfd), "being written")
    os.kill(held.pid, signal.SIGKILL)
    held.wait()
    outcome = run_cli(argv, capfd)
    assert outcome.code == 0 and (out / "comparison.json").is_file(), outcome.err


def test_two_evaluations_started_at_once_never_both_write(runs, tmp_path):
    out = tmp_path / "eval"
    argv = cmd(EVALUATE + " --student zero-shot --out {o}", {"teacher": str(runs["teacher"])}, o=str(out))
    code = f"import sys\nfrom optical.cli import main\nsys.exit(main({argv!r}))\n"
    processes = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in processes]
    assert any(status == 0 for status, _ in results), results
    for status, err in results:  # the other finished after (reusing the result) or was refused while it ran
        assert status == 0 or (status == 2 and "being written by another optical process" in err), (status, err)
    assert json.loads((out / "eval.json").read_text())["student"] == "zero-shot"


# ====================================================================== 3. no code shipped with a model runs
def _model_with(teacher: Path, where: Path, edit) -> Path:
    model = shutil.copytree(teacher, where)
    (model / "modeling_evil.py").write_text(f"open({str(where / 'RAN')!r}, 'w').write('ran')\n")
    edit(model)
    return model


def _auto_map_config(model: Path) -> None:
    _edit_json(model / "config.json", lambda c: c.update(auto_map={"AutoModel": "modeling_evil.EvilModel"}))


def _auto_map_tokenizer(model: Path) -> None:
    path = model / "tokenizer_config.json"
    config = json.loads(path.read_text()) if path.is_file() else {}
    config["auto_map"] = {"AutoTokenizer": ["modeling_evil.EvilTokenizer", None]}
    path.write_text(json.dumps(config))


REMOTE_CODE = {"config": _auto_map_config, "tokenizer": _auto_map_tokenizer}


@pytest.mark.parametrize("where", list(REMOTE_CODE))
@pytest.mark.parametrize(
    "command",
    [
        DISTILL.replace("{teacher}", "{model}") + " --out {out}",
        DISTILL + " --student {model} --out {out}",
        EVALUATE.replace("{teacher}", "{model}") + " --student zero-shot --out {out}",
        "evaluate --student zero-shot --teacher {model} --collection {collection} --query-lang el --device cpu --out {out}",
    ],
    ids=["distill-teacher", "distill-student", "evaluate-teacher", "collection-teacher"],
)
def test_a_model_that_needs_its_own_code_is_refused_and_its_code_never_runs(where, command, ctx, tmp_path, capfd):
    model = _model_with(Path(ctx["teacher"]), tmp_path / "custom", REMOTE_CODE[where])
    argv = cmd(command, ctx, model=str(model), collection=str(_collection(tmp_path)))
    refuses_and_keeps(argv, capfd, [Path(ctx["out"]), model], "auto_map", "trust_remote_code=False")
    assert not (tmp_path / "custom" / "RAN").exists()


def test_every_transformers_load_in_the_package_passes_trust_remote_code_false():
    import ast

    package = Path(__file__).resolve().parents[2] / "src" / "optical"
    loads = []
    for source in package.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "from_pretrained":
                loads.append((source.name, node))
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "partial":
                if node.args and getattr(node.args[0], "attr", None) == "from_pretrained":
                    loads.append((source.name, node))
    assert loads
    for name, node in loads:
        keywords = {k.arg: k.value for k in node.keywords}
        assert isinstance(keywords.get("trust_remote_code"), ast.Constant), (name, node.lineno)
        assert keywords["trust_remote_code"].value is False, (name, node.lineno)


@pytest.mark.parametrize("layers", [3, 4])
@pytest.mark.parametrize("role", ["teacher", "student"])
def test_a_model_whose_config_does_not_match_its_weights_is_refused(layers, role, ctx, tmp_path, capfd):
    model = shutil.copytree(ctx["teacher"], tmp_path / "mismatch")
    _edit_json(model / "config.json", lambda c: c.update(num_hidden_layers=layers))
    if role == "teacher":
        argv = cmd(EVALUATE.replace("{teacher}", "{model}") + " --student zero-shot --out {out}", ctx, model=str(model))
    else:
        argv = cmd(DISTILL + " --student {model} --out {out}", ctx, model=str(model))
    refuses_and_keeps(argv, capfd, [Path(ctx["out"])], str(model), "would start random", "config.json")


def _pickled_model(teacher: Path, where: Path, evil: bool) -> Path:
    import torch
    from safetensors.torch import load_file

    model = shutil.copytree(teacher, where)
    weights = load_file(model / "model.safetensors")
    (model / "model.safetensors").unlink()
    if evil:
        weights["payload"] = _Payload(str(where / "RAN"))
    torch.save(weights, model / "pytorch_model.bin")
    return model


class _Payload:
    """An object whose unpickling would create a file: what a hostile pickle carries."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


@pytest.mark.parametrize("command", ["evaluate", "distill"])
def test_a_pickle_carrying_code_is_refused_in_our_words(command, ctx, tmp_path, capfd):
    model = _pickled_model(Path(ctx["teacher"]), tmp_path / "pickled", evil=True)
    template = EVALUATE + " --student zero-shot --out {out}" if command == "evaluate" else DISTILL + " --out {out}"
    line = refuses_and_keeps(cmd(template.replace("{teacher}", "{model}"), ctx, model=str(model)), capfd, [Path(ctx["out"])])
    assert "pytorch_model.bin" in line and "refused" in line and "weights_only" not in line
    assert not (tmp_path / "pickled" / "RAN").exists()


def test_a_pickle_of_plain_tensors_still_loads(ctx, tmp_path, capfd):
    model = _pickled_model(Path(ctx["teacher"]), tmp_path / "plain", evil=False)
    outcome = run_cli(
        cmd(EVALUATE.replace("{teacher}", "{model}") + " --student zero-shot --out {out}", ctx, model=str(model)), capfd
    )
    assert outcome.code == 0, outcome.err


# ====================================================================== 4. the reserved FLORES devtest never trains
def _devtest(mirror_dir: Path, lang: str, count: int = 6):
    from optical.data.bitext import load_flores_devtest

    return load_flores_devtest(mirror_dir, lang)[:count]


def _disguise(text: str, how: str) -> str:
    """The same sentence as the overlap key sees it, written differently."""
    if how == "upper":
        return text.upper()
    if how == "no-punctuation":
        return "".join(ch for ch in text if not unicodedata.category(ch).startswith("P"))
    if how == "fullwidth":
        return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)
    if how == "spaces":
        return "  ".join(text.split(" ")) + "  "
    if how == "extra-punctuation":
        return f"«{text}»!!"
    return text


TAGS = [
    ("el", "el-GR"),
    ("el", "el-CY"),
    ("el", "ell"),
    ("el", "ell_Grek"),
    ("el", "el-Grek-GR"),
    ("zh", "zh-Hant"),
    ("zh", "zh-TW"),
    ("zh", "zh-CN"),
    ("zh", "zho_Hans"),
    ("de", "de-AT"),
    ("de", "de-CH"),
    ("ar", "ar-EG"),
    ("es", "es-MX"),
    ("ru", "ru-RU"),
    ("hi", "hi-IN"),
    ("sw", "sw-KE"),
    ("tr", "tr-TR"),
    ("vi", "vi-VN"),
]


@pytest.mark.parametrize("base, tag", TAGS, ids=[t[1] for t in TAGS])
def test_check_bitext_counts_devtest_pairs_under_any_tag_of_the_language(base, tag, mirror_dir, tmp_path, capfd):
    pairs = _devtest(mirror_dir, base)
    path = tmp_path / "my-own-clean-corpus.tsv"  # the name says nothing of FLORES
    path.write_text("".join(f"{p.en}\t{p.foreign}\n" for p in pairs), encoding="utf-8")
    outcome = run_cli(["data", "check-bitext", path, "--lang", tag, "--data-dir", mirror_dir], capfd)
    assert outcome.code == 0, outcome.err
    assert f"{len(pairs)} pairs match it (normalised) and would be dropped from training" in outcome.out


@pytest.mark.parametrize("how", ["upper", "no-punctuation", "fullwidth", "spaces", "extra-punctuation"])
@pytest.mark.parametrize("side", ["en", "foreign"])
def test_a_devtest_sentence_written_differently_still_matches(how, side, mirror_dir, tmp_path, capfd):
    pairs = _devtest(mirror_dir, "el", 4)
    lines = [
        f"{_disguise(p.en, how) if side == 'en' else 'A sentence of my own, number {i}.'}\t"
        f"{_disguise(p.foreign, how) if side == 'foreign' else 'Μια δική μου πρόταση, αριθμός ' + str(i) + '.'}\n"
        for i, p in enumerate(pairs)
    ]
    path = tmp_path / "disguised.tsv"
    path.write_text("".join(lines), encoding="utf-8")
    outcome = run_cli(["data", "check-bitext", path, "--lang", "el-GR", "--data-dir", mirror_dir], capfd)
    assert outcome.code == 0, outcome.err
    assert "4 pairs match it" in outcome.out


@pytest.mark.parametrize("tag", ["fr", "pt-BR", "it", "nl", "pl", "ca"])
def test_devtest_english_is_reserved_for_languages_without_a_devtest_of_their_own(tag, mirror_dir, tmp_path, capfd):
    pairs = _devtest(mirror_dir, "de", 5)  # the English side is the same 1012 sentences in every language's file
    path = tmp_path / "pairs.tsv"
    path.write_text("".join(f"{p.en}\tTraduction numéro {i} faite à la main.\n" for i, p in enumerate(pairs)))
    outcome = run_cli(["data", "check-bitext", path, "--lang", tag, "--data-dir", mirror_dir], capfd)
    assert outcome.code == 0, outcome.err
    assert "English side" in outcome.out and "5 pairs match it" in outcome.out


@pytest.mark.parametrize("tag", ["el-GR", "ell", "el"])
def test_distill_on_a_bitext_that_is_the_devtest_is_refused_saying_why(tag, ctx, mirror_dir, tmp_path, capfd):
    pairs = _devtest(mirror_dir, "el", 64)
    path = tmp_path / "train.tsv"
    path.write_text("".join(f"{p.en}\t{p.foreign}\n" for p in pairs), encoding="utf-8")
    argv = cmd(DISTILL.replace("--lang el", "--lang {tag}") + " --bitext {bitext} --out {out}", ctx, tag=tag, bitext=str(path))
    line = refuses_and_keeps(argv, capfd, [Path(ctx["out"])], "reserved FLORES-200 devtest", str(path))
    assert "relax the length filter" not in line


def test_distill_drops_the_devtest_pairs_of_a_mixed_file_and_records_them(ctx, mirror_dir, tmp_path, capfd):
    from optical.data.bitext import read_source

    devtest = _devtest(mirror_dir, "el", 10)
    own = read_source(mirror_dir, "ntrex128", "el").pairs[:40]
    path = tmp_path / "mixed.tsv"
    path.write_text("".join(f"{p.en}\t{p.foreign}\n" for p in [*devtest, *own]), encoding="utf-8")
    argv = cmd(DISTILL.replace("--lang el", "--lang el-GR") + " --bitext {bitext} --out {out}", ctx, bitext=str(path))
    outcome = run_cli(argv, capfd)
    assert outcome.code == 0, outcome.err
    record = json.loads((Path(ctx["out"]) / "run.json").read_text())
    assert '"devtest_overlap": 10' in json.dumps(record)


# ====================================================================== 5. silent acceptance
@pytest.mark.parametrize("where", ["start", "middle", "end", "english", "foreign"])
def test_nul_bytes_inside_pairs_are_skipped_and_named(where, tmp_path, mirror_dir, capfd):
    clean = "Good morning to all of you.\tΚαλημέρα σε όλους σας."
    english, foreign = clean.split("\t")
    dirty = {
        "start": "\0" + clean,
        "middle": english + "\0\t" + foreign,
        "end": clean + "\0",
        "english": english.replace("morning", "mor\0ning") + "\t" + foreign,
        "foreign": english + "\t" + foreign.replace("σε", "σ\0ε"),
    }[where]
    path = tmp_path / "nul.tsv"
    path.write_bytes((dirty + "\n" + clean.replace("all", "every one") + "\n").encode("utf-8"))
    outcome = run_cli(["data", "check-bitext", path, "--lang", "el", "--data-dir", mirror_dir], capfd)
    assert outcome.code == 0 and "1 pairs kept" in outcome.out and "skipped nul_byte: 1" in outcome.out, outcome.out
    refused(run_cli(["data", "check-bitext", path, "--lang", "el", "--strict"], capfd), f"{path}:1: nul_byte")


FRACTIONAL = ["1.7", "0.5", "2.25", "0.001", "nan", "inf", "-0.5", "1e-9"]


@pytest.mark.parametrize("grade", FRACTIONAL)
@pytest.mark.parametrize("layout", ["beir", "trec"])
def test_a_fractional_relevance_grade_is_refused_not_truncated(grade, layout, ctx, tmp_path, capfd):
    collection = _collection(tmp_path)
    if layout == "beir":
        qrels = collection / "qrels" / "test.tsv"
        qrels.write_text(f"query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t{grade}\n")
    else:
        (collection / "queries.jsonl").unlink()
        (collection / "qrels").rename(tmp_path / "unused-qrels")
        (collection / "topics.tsv").write_text("q1\tΗ γάτα κοιμάται.\n")
        qrels = collection / "qrels.txt"
        qrels.write_text(f"q1 0 d1 1\nq1 0 d2 {grade}\n")
    argv = cmd(WRITERS["evaluate-collection"], ctx, collection=str(collection))
    line = refuses_and_keeps(argv, capfd, [Path(ctx["out"])], f"{qrels}:", repr(grade))
    assert "number" in line


@pytest.mark.parametrize("grade", ["1.0", "2", "0", "3.000"])
def test_a_whole_relevance_grade_written_as_a_decimal_is_read(grade, tmp_path):
    from optical.data.beir import read_collection

    collection = _collection(tmp_path)
    (collection / "qrels" / "test.tsv").write_text(f"q1\td1\t1\nq1\td2\t{grade}\n")
    read = read_collection(collection, "test")
    assert read.qrels["q1"].get("d2", 0) == int(float(grade))


SPLITS = ["../other/qrels/test", "/etc/passwd", "qrels/test", "..", ".hidden", "te st", "a\\b", "test/../test", ""]


@pytest.mark.parametrize("split", SPLITS)
def test_split_is_a_name_never_a_path(split, ctx, tmp_path, capfd):
    collection = _collection(tmp_path)
    other = shutil.copytree(collection, tmp_path / "other")
    (other / "qrels" / "test.tsv").write_text("q1\td2\t1\n")
    argv = [*cmd(WRITERS["evaluate-collection"], ctx, collection=str(collection)), f"--split={split}"]
    refuses_and_keeps(argv, capfd, [Path(ctx["out"]), other], "--split", "not a split name")


@pytest.mark.parametrize(
    "budget, batch, extra",
    [("16", "16", ""), ("20", "16", ""), ("31", "16", ""), ("8", "8", ""), ("32", "16", " --grad-accum 2")],
)
def test_a_run_whose_only_step_is_in_the_warm_up_is_refused_up_front(budget, batch, extra, ctx, capfd):
    argv = cmd(
        DISTILL.replace("--budget 32", f"--budget {budget}").replace("--batch-size 16", f"--batch-size {batch}")
        + extra
        + " --out {out}",
        ctx,
    )
    refuses_and_keeps(argv, capfd, [Path(ctx["out"])], "warm-up at learning rate 0", "no weight would change")
    assert not Path(ctx["out"]).exists()


def test_a_single_step_without_warm_up_trains(ctx, tmp_path, capfd):
    from safetensors.torch import load_file

    config = tmp_path / "one-step.yaml"
    config.write_text(
        f"lang: el\nmethod: mse\nteacher: {ctx['teacher']}\nbudget: 16\nbatch_size: 16\nmax_length: 32\n"
        f"select_on: none\ndevice: cpu\nwarmup_ratio: 0.0\nout_dir: {ctx['out']}\n"
    )
    outcome = run_cli(["distill", "--config", config, "--quiet"], capfd)
    assert outcome.code == 0, outcome.err
    student = load_file(Path(ctx["out"]) / "student" / "model.safetensors")
    teacher = load_file(Path(ctx["teacher"]) / "model.safetensors")
    changed = [name for name, tensor in student.items() if name in teacher and not (tensor == teacher[name]).all()]
    assert changed, "one step at a learning rate above 0 changes weights"


@pytest.mark.parametrize("precision", ["fp8", "fp32", "int8", "BF16", ""])
def test_evaluate_collection_refuses_an_unknown_mixed_precision(precision, ctx, tmp_path, capfd):
    argv = [*cmd(WRITERS["evaluate-collection"], ctx, collection=str(_collection(tmp_path))), f"--mixed-precision={precision}"]
    refuses_and_keeps(argv, capfd, [Path(ctx["out"])], "--mixed-precision", repr(precision))


# ====================================================================== 6. tracebacks and hangs
def _bomb(levels: int = 9, width: int = 9) -> str:
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


BOMBS = {
    "billion-laughs": "lang: el\nmethod: mse\n" + _bomb() + "seed: *a8\n",
    "bomb-in-a-list-field": "lang: el\nmethod: mse\n" + _bomb(7, 10) + "license_classes: *a6\n",
    "bomb-in-loss-options": "lang: el\nmethod: ot\n" + _bomb(6, 12) + "loss_options: {ot: {eps: *a5}}\n",
    "self-alias": "lang: el\nmethod: mse\nseed: &s [*s]\n",
    "mapping-bomb": "a0: &a0 {x: 1, y: 2, z: 3, w: 4}\n"
    + "".join(f"a{i}: &a{i} {{p: *a{i - 1}, q: *a{i - 1}, r: *a{i - 1}, s: *a{i - 1}}}\n" for i in range(1, 10))
    + "lang: el\nmethod: mse\nseed: *a9\n",
}


@pytest.mark.parametrize("command", ["distill", "study"])
@pytest.mark.parametrize("name", list(BOMBS))
def test_a_yaml_alias_bomb_is_refused_before_it_expands(name, command, tmp_path, capfd):
    config = tmp_path / "bomb.yaml"
    text = BOMBS[name]
    if command == "study":
        text = text.replace("lang: el\nmethod: mse\n", "").replace("lang: el\nmethod: ot\n", "")
        text = text.replace("seed:", "languages: [el]\nmethods: [mse]\nseeds:").replace("license_classes:", "budgets:")
        text = text.replace("loss_options: {ot: {eps:", "base: {distill: {batch_size:")
    config.write_text(text)
    started = time.monotonic()
    if command == "distill":
        argv = ["distill", "--config", config, "--out", tmp_path / "out"]
    else:
        argv = ["study", "run", "--config", config, "--dry-run"]
    line = refuses_and_keeps(argv, capfd, [tmp_path / "out"], str(config), "aliases")
    assert time.monotonic() - started < 30 and len(line) < 400


@pytest.mark.parametrize("value", ["1e300", "1e39", "3.5e38", "1e-300", "1e-46", "1e-39"])
@pytest.mark.parametrize("where", ["flag", "yaml"])
def test_a_learning_rate_that_float32_cannot_hold_is_refused(value, where, ctx, tmp_path, capfd):
    if where == "flag":
        argv = cmd(DISTILL + " --lr {lr} --out {out}", ctx, lr=value)
    else:
        config = tmp_path / "lr.yaml"
        lr = f"{float(value):.1e}"  # YAML 1.1 reads a float only with a dot
        config.write_text(f"lang: el\nmethod: mse\nteacher: {ctx['teacher']}\nlr: {lr}\nout_dir: {ctx['out']}\n")
        argv = ["distill", "--config", config]
    refuses_and_keeps(argv, capfd, [Path(ctx["out"])], "--lr", "float32")


@pytest.mark.parametrize(
    "key, value",
    [
        ("epochs", 2**31),
        ("batch_size", 10**12),
        ("checkpoint_every", 2**40),
        ("evals_per_epoch", 10**18),
        ("eval_every", 2**63),
        ("budget", 10**15),
        ("max_length", 2**31),
        ("grad_accum", 2**33),
    ],
)
def test_a_step_count_beyond_any_run_is_refused(key, value, ctx, tmp_path, capfd):
    config = tmp_path / "steps.yaml"
    config.write_text(f"lang: el\nmethod: mse\nteacher: {ctx['teacher']}\n{key}: {value}\nout_dir: {ctx['out']}\n")
    refuses_and_keeps(["distill", "--config", config], capfd, [Path(ctx["out"])], str(value))


def _limited_file_size(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write then fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.parametrize(
    "template",
    [
        "compare {eval_zs} {eval_mse} --n-resamples 20 --out {out}",
        "study export {study} --resamples 20 --out {out}",
        "data fetch --mirror {mirror} --only xquad --data-dir {out}",
        DISTILL + " --out {out}",
    ],
    ids=["compare", "study-export", "data-fetch", "distill"],
)
def test_a_write_past_the_file_size_limit_names_the_path(template, ctx, study, mirror_dir, tmp_path, capfd):
    out = tmp_path / "out"
    argv = cmd(template, ctx, out=str(out), study=str(study["dir"]), mirror=str(mirror_dir))
    code = f"import sys\nfrom optical.cli import main\nsys.exit(main({argv!r}))\n"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, preexec_fn=_limited_file_size(2048), timeout=300
    )
    lines = [line for line in done.stderr.splitlines() if line.strip() and not SKIP_REPORT.match(line)]
    assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "ulimit -f" in lines[0] and str(out) in lines[0], lines[0]
    assert not list(tmp_path.glob(".out.*.tmp"))
    # Nothing half-written is taken as done: the same command, with room to write, completes (a distillation
    # resumes from its run dir, dropping the checkpoint it was writing).
    assert run_cli(argv, capfd).code == 0
    assert not list(tmp_path.glob(".out.*.tmp")) and not list(out.rglob("*.tmp"))


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/proc/mounts").is_file(), reason="mounting a small tmpfs needs root")
def test_a_full_disk_names_the_path(ctx, tmp_path, capfd):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("this container may not mount a tmpfs")
    try:
        out = disk / "report"
        line = refused(run_cli(cmd("compare {eval_zs} {eval_mse} --n-resamples 20 --out {o}", ctx, o=str(out)), capfd))
        assert str(out) in line and "No space left on device" in line
        assert not [p for p in disk.iterdir()], "nothing half-written stays on the full disk"
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def _stale_temporary(target: Path, kind: str, alive: bool) -> Path:
    from optical.storage import _temp_prefix

    pid = os.getpid() if alive else _dead_pid()
    name = _temp_prefix(target).replace(f"-{os.getpid()}.", f"-{pid}.") + "abc123.tmp"
    leftover = target.parent / name
    if kind == "dir":
        (leftover / "runs").mkdir(parents=True)
        (leftover / "runs" / "half.json").write_text("{")
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        leftover.write_bytes(b"half")
    return leftover


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_killed_study_export_leaves_nothing_once_the_next_one_ran(study, tmp_path, capfd):
    out = tmp_path / "export"
    stale = _stale_temporary(out, "dir", alive=False)
    live = _stale_temporary(out, "dir", alive=True)  # another export still building (this process stands in for it)
    assert run_cli(["study", "export", study["dir"], "--out", out, "--resamples", "20"], capfd).code == 0
    assert not stale.exists() and live.exists()


def test_a_killed_data_fetch_leaves_nothing_once_the_next_one_ran(mirror_dir, tmp_path, capfd):
    from optical.data.registry import GROUPS

    data = tmp_path / "data"
    files = json.loads((Path(__file__).resolve().parents[2] / "src/optical/data/files.json").read_text())
    first = next(f["path"] for f in files if f["group"] == "xquad")
    stale = _stale_temporary(data / first, "file", alive=False)
    assert "xquad" in GROUPS
    assert run_cli(["data", "fetch", "--mirror", mirror_dir, "--only", "xquad", "--data-dir", data], capfd).code == 0
    assert not stale.exists() and not list(data.rglob("*.tmp"))


def test_a_killed_export_process_leaves_a_temporary_the_next_export_removes(study, tmp_path, capfd):
    out = tmp_path / "export"
    code = (
        "from optical.cli import main\n"
        f"main(['study', 'export', {str(study['dir'])!r}, '--out', {str(out)!r}, '--resamples', '3000'])\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".export.*.tmp")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert run_cli(["study", "export", study["dir"], "--out", out, "--resamples", "20"], capfd).code == 0
    assert not list(tmp_path.glob(".export.*.tmp"))


@pytest.mark.parametrize("address", ["127.0.0.1:{port}", "ray://127.0.0.1:{port}", "localhost:{port}"])
def test_ray_at_a_port_where_nothing_listens_is_refused_in_seconds(address, ctx, tmp_path, capfd):
    pytest.importorskip("ray")
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = address.format(port=port)
    out = tmp_path / "study"
    started = time.monotonic()
    argv = ["study", "run", "--config", ctx["study_ok_yaml"], "--executor", "ray", "--address", address, "--out", out]
    refuses_and_keeps(argv, capfd, [out], f"--address {address}", "no Ray cluster answers")
    assert time.monotonic() - started < 20
    assert not out.exists()


# ====================================================================== 7. a remedy that fits the cause
def _write_bitext(path: Path, kind: str, pairs: list[tuple[str, str]]) -> None:
    text = "".join(f"{en}\t{foreign}\n" for en, foreign in pairs)
    if kind == "gzip":
        path.write_bytes(gzip.compress(text.encode("utf-8")))
    elif kind == "utf-16":
        path.write_bytes(text.encode("utf-16"))  # with its BOM
    elif kind == "utf-16-le":
        path.write_bytes(text.encode("utf-16-le"))  # none
    elif kind == "utf-16-be":
        path.write_bytes(text.encode("utf-16-be"))
    elif kind == "swapped":
        path.write_text("".join(f"{foreign}\t{en}\n" for en, foreign in pairs), encoding="utf-8")
    else:
        path.write_text(text, encoding="utf-8")


GREEK = [(f"This is sentence number {i} of my file.", f"Αυτή είναι η πρόταση αριθμός {i} του αρχείου μου.") for i in range(40)]
MESSAGES = {
    "gzip": "gzip-compressed",
    "utf-16": "UTF-16",
    "utf-16-le": "UTF-16",
    "utf-16-be": "UTF-16",
    "swapped": "columns are swapped",
}


@pytest.mark.parametrize("kind", list(MESSAGES))
@pytest.mark.parametrize("command", ["distill", "check-bitext"])
def test_an_unusable_bitext_says_what_is_wrong_with_it(kind, command, ctx, tmp_path, capfd):
    path = tmp_path / "bitext.tsv"
    _write_bitext(path, kind, GREEK)
    if command == "distill":
        argv = cmd(DISTILL + " --bitext {bitext} --out {out}", ctx, bitext=str(path))
        line = refuses_and_keeps(argv, capfd, [Path(ctx["out"])], str(path), MESSAGES[kind])
    else:
        outcome = run_cli(["data", "check-bitext", path, "--lang", "el", "--strict"], capfd)
        line = refused(outcome, str(path))
        assert MESSAGES[kind] in line or (kind == "swapped" and "swapped_columns" in line), line
    assert "relax the length filter" not in line


EMPTY_MODEL = {
    "distill-teacher": (DISTILL + " --out {out}", "--teacher", ""),
    "distill-teacher-space": (DISTILL + " --out {out}", "--teacher", " "),
    "distill-student": (DISTILL + " --out {out}", "--student", ""),
    "evaluate-teacher": (EVALUATE + " --student zero-shot --out {out}", "--teacher", ""),
    "collection-teacher": (WRITERS["evaluate-collection"], "--teacher", ""),
}


@pytest.mark.parametrize("name", list(EMPTY_MODEL))
def test_an_empty_model_name_is_refused_not_taken_as_the_current_directory(name, ctx, tmp_path, capfd, monkeypatch):
    template, flag, value = EMPTY_MODEL[name]
    monkeypatch.chdir(ctx["teacher"])  # the current dir is a model: an empty name would load it
    argv = [*cmd(template, ctx, collection=str(_collection(tmp_path))), f"{flag}={value}"]
    refuses_and_keeps(argv, capfd, [Path(ctx["out"])], flag, "is empty")


EMPTY_AXES = {
    "languages": "languages: []\nmethods: [mse]\n",
    "methods": "languages: [el]\nmethods: []\n",
    "seeds": "languages: [el]\nmethods: [mse]\nseeds: []\n",
    "budgets": "languages: [el]\nmethods: [mse]\nbudgets: []\n",
    "noises": "languages: [el]\nmethods: [mse]\nnoises: []\n",
    "domains": "languages: [el]\nmethods: [mse]\ndomains: []\n",
    "cell-seeds": "languages: [el]\nmethods: [mse]\ncells: [{seeds: []}]\n",
    "zero-shot-no-evaluation": "languages: [el]\nmethods: [zero-shot, mse]\nquery_noises: []\n",
}


@pytest.mark.parametrize("name", list(EMPTY_AXES))
@pytest.mark.parametrize("dry_run", [True, False])
def test_an_empty_study_axis_is_refused_in_one_line(name, dry_run, tmp_path, capfd):
    config = tmp_path / f"{name}.yaml"
    config.write_text(EMPTY_AXES[name])
    out = tmp_path / "study"
    argv = ["study", "run", "--config", config, *(["--dry-run"] if dry_run else ["--out", out])]
    refuses_and_keeps(argv, capfd, [out], str(config), "empty")
    assert not out.exists()
