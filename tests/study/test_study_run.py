"""Studies end to end with tiny models: the smoke study, its report, dry-run, reuse across studies, kill and resume."""

from __future__ import annotations

import copy
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from optical.cli import main
from optical.errors import OpticalError
from optical.report import write_study_report
from optical.study import dry_run, load_study_config, run_study
from optical.study.executor import Concurrency, RayExecutor, RayResources

SMOKE_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "study-smoke.yaml"


def write_config(path: Path, raw: dict) -> Path:
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def _run_json_mtimes(store: Path) -> dict[str, int]:
    return {p.parent.parent.name: p.stat().st_mtime_ns for p in store.glob("*/distill/run.json")}


def test_smoke_study_runs_every_run_and_writes_the_report(smoke_study):
    study_dir = smoke_study.study_dir
    assert not smoke_study.failures
    manifest = json.loads((study_dir / "study.json").read_text())
    assert manifest["status"] == "complete"
    assert [r["status"] for r in manifest["runs"]] == ["done"] * 5
    for entry in manifest["runs"]:
        link = study_dir / entry["path"]
        assert link.is_symlink() and link.resolve().parent == smoke_study.store.resolve()
        for rel in entry["eval_dirs"].values():
            assert (study_dir / rel / "eval.json").is_file()
        if entry["method"] != "zero-shot":
            assert json.loads((study_dir / entry["distill_dir"] / "run.json").read_text())["completed"] is True
    report_md = (study_dir / "report" / "report.md").read_text()
    # The answer comes first and is generated from the comparisons, whichever way they fall.
    assert report_md.index("## Answer to the research question") < report_md.index("## Degradation vs query typo rate")
    # One subsection per arm: the reference (el, 3 tasks) and the typo-rate arm (only clir_sentence: typos do not
    # touch the alignment task), each with its own families.
    reference, typos = report_md.index("### Arm: reference"), report_md.index("### Arm: typo rate (typo rate 0.2)")
    assert reference < typos
    for start, end, arm, n in ((reference, typos, "reference", 3), (typos, len(report_md), "typo rate", 1)):
        section = report_md[start:end]
        assert f"ot vs mse: of {n} comparisons" in section and f"ot vs zero-shot: of {n} comparisons" in section
        assert f"Holm family: OT vs each KD baseline, arm {arm}, {n} comparisons" in section
    changes = "Change from the reference, ot vs mse"
    assert changes in report_md[typos:] and changes not in report_md[reference:typos]
    assert "Change from the reference, ot vs zero-shot" in report_md[typos:]
    # Each arm has its own headline figure right under its verdicts, and links to the pages of its full forest.
    assert "![Arm reference: where ot is ahead of" in report_md[reference:typos]
    assert "(plots/headline.reference.png)" in report_md[reference:typos]
    assert "(plots/headline.typo_rate.png)" in report_md[typos:]
    assert "[clir_sentence](plots/forest.typo_rate.clir_sentence.1.png)" in report_md[typos:]
    assert (study_dir / "report" / "plots" / "query_noise.difference.png").is_file()
    assert "Holm-corrected" in report_md
    pngs = sorted((study_dir / "report" / "plots").glob("*.png"))
    assert pngs and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    linked = re.findall(r"\]\((plots/[^)]+\.png)\)", report_md)
    assert sorted(set(linked)) == sorted(p.relative_to(study_dir / "report").as_posix() for p in pngs)
    html = (study_dir / "report" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == report_md.count("![")  # figures embedded, forest pages linked
    assert "<img" in html and '<img alt="Arm reference' in html and 'src="plots/' not in html  # self-contained


def test_report_subcommand_rewrites_the_report(smoke_study, capsys):
    report_md = smoke_study.study_dir / "report" / "report.md"
    report_md.unlink()
    stale = smoke_study.study_dir / "report" / "plots" / "forest.png"  # the name an older version used
    stale.write_bytes(b"\x89PNG\r\n\x1a\n")
    assert main(["study", "report", str(smoke_study.study_dir), "--resamples", "200"]) == 0
    assert report_md.is_file() and "report.md" in capsys.readouterr().out
    assert not stale.exists()  # a plot the report no longer draws does not linger beside it


def test_export_is_compact_and_reproduces_the_report(smoke_study, tmp_path, capsys):
    out = tmp_path / "export"
    assert main(["study", "export", str(smoke_study.study_dir), "--out", str(out), "--resamples", "200"]) == 0
    assert "exported 10 evaluations and 4 distillation runs" in capsys.readouterr().out
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert not any(name.endswith((".safetensors", ".trec", ".qrels", ".bin", ".pt")) for name in files)
    assert all(not (out / name).is_symlink() for name in files)
    assert any(name.endswith("per_query/clir_sentence.el.tsv.gz") for name in files)
    # The same tables as the report of the study dir itself, at the same number of resamples.
    write_study_report(smoke_study.study_dir, n_resamples=200)
    assert (out / "report" / "report.md").read_text() == (smoke_study.study_dir / "report" / "report.md").read_text()
    assert main(["study", "export", str(smoke_study.study_dir), "--out", str(tmp_path)]) == 2
    assert "not empty" in capsys.readouterr().err


def test_dry_run_lists_runs_with_status_and_measured_rates(smoke_study, tmp_path):
    config = load_study_config(SMOKE_CONFIG)
    done = dry_run(config, store=smoke_study.store)
    assert [s.label for s in done.statuses] == ["done"] * 5 and done.total_seconds == 0
    text = done.render()
    for status in done.statuses:
        assert status.run.run_id in text
    assert "5 runs: 5 done, 0 to run" in text
    assert "4 finished distill runs" in text

    fresh = dry_run(config, store=tmp_path / "empty-store")
    assert [s.label for s in fresh.statuses] == ["pending"] * 5 and fresh.total_seconds > 0
    assert "assumed 16 pairs/s" in fresh.render()


def test_dry_run_rates_come_from_runs_of_the_same_precision(smoke_study, smoke_raw, tmp_path):
    """The smoke runs trained at the default precision; a plan at another precision does not borrow their rate
    as if it were its own."""
    from optical.train.precision import resolve_precision

    ran = resolve_precision("cpu", "auto")
    bases = {}
    for precision in (ran, "bf16" if ran == "no" else "no"):
        raw = copy.deepcopy(smoke_raw)
        raw["base"]["distill"]["mixed_precision"] = precision
        raw["seeds"] = [7]  # runs not in the store, so each is estimated
        plan = dry_run(load_study_config(write_config(tmp_path / f"{precision}.yaml", raw)), store=smoke_study.store)
        bases[precision] = {e.basis for e in plan.estimates.values() if e.basis.startswith("distill")}
    other = "bf16" if ran == "no" else "no"
    assert bases[ran] and all("mixed_precision/batch_size/max_length" in b for b in bases[ran])
    assert bases[other] and not any("mixed_precision" in b for b in bases[other])


def test_dry_run_divides_by_the_runs_at_once_and_scales_rates_to_their_cores(smoke_study, smoke_raw, tmp_path):
    """Runs that share the machine each train slower: a plan whose runs get fewer cores than any finished run had
    borrows their speed scaled down, and the total divides the runs' time by how many run at once."""
    raw = copy.deepcopy(smoke_raw)
    raw["seeds"] = [7]  # runs not in the store, so each is estimated
    config = load_study_config(write_config(tmp_path / "seed7.yaml", raw))
    local = dry_run(config, store=smoke_study.store)
    threads = local.concurrency.threads_per_run
    assert local.concurrency.runs_at_once == 1 and "(one run at a time" in local.render()
    trained = [run_id for run_id, e in local.estimates.items() if e.basis.startswith("distill")]
    assert trained and not any("other thread counts" in local.estimates[r].basis for r in trained)

    def on_ray(cpus: float, **cluster):
        return dry_run(config, store=smoke_study.store, executor=RayExecutor(resources=RayResources(cpus=cpus), **cluster))

    # As many threads per run as the finished runs had, two runs at once: the same runs' time, halved, unless one
    # run is longer than the rest together.
    alike = on_ray(threads, num_cpus=2 * threads)
    assert alike.concurrency == Concurrency(runs_at_once=2, threads_per_run=threads, cores_per_run=threads)
    longest = max(e.seconds for e in local.estimates.values())
    assert alike.total_seconds == pytest.approx(max(local.total_seconds / 2, longest))
    assert alike.total_seconds < local.total_seconds
    assert "2 runs at once" in alike.render()

    # Half a CPU per run: 4 x threads runs at once on 2 x threads cores, each on one thread with half a core, so
    # each training takes longer than measured; the total is still never below the longest run.
    halves = on_ray(0.5, num_cpus=2 * threads)
    assert halves.concurrency == Concurrency(runs_at_once=4 * threads, threads_per_run=1, cores_per_run=0.5)
    assert all("at other thread counts than 1" in halves.estimates[r].basis for r in trained) or threads == 1
    assert all(halves.estimates[r].seconds > local.estimates[r].seconds for r in trained)
    assert halves.total_seconds >= max(e.seconds for e in halves.estimates.values())

    # Twice the threads of any finished run: measured elsewhere, and not assumed faster for it.
    wider = on_ray(2 * threads, num_cpus=2 * threads)
    assert wider.concurrency.runs_at_once == 1
    assert all("at other thread counts than" in wider.estimates[r].basis for r in trained)
    assert all(wider.estimates[r].seconds == pytest.approx(local.estimates[r].seconds) for r in trained)

    # A cluster joined by address runs as many at once as it likes: the estimate is the runs' time, and says so.
    remote = on_ray(threads, address="auto")
    assert remote.total_seconds == pytest.approx(local.total_seconds) and "the cluster decides" in remote.render()


def _dry_run_options(smoke_study) -> list[str]:
    return ["--config", str(SMOKE_CONFIG), "--out", str(smoke_study.study_dir), "--store", str(smoke_study.store), "--dry-run"]


def test_dry_run_from_the_command_line(smoke_study, capsys):
    code = main(["study", "run", *_dry_run_options(smoke_study)])
    out = capsys.readouterr().out
    assert code == 0
    assert "id" in out.splitlines()[0] and "status" in out.splitlines()[0]
    assert out.count(" done ") + out.count(" done\n") >= 5


def test_short_form_runs_the_run_subcommand_and_no_config_is_one_line(smoke_study, capsys):
    code = main(["study", *_dry_run_options(smoke_study)])
    assert code == 0 and "status" in capsys.readouterr().out.splitlines()[0]
    assert main(["study"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--config" in err and len(err.splitlines()) == 1


def test_a_second_study_reuses_the_finished_runs_it_shares(smoke_study, smoke_raw, tmp_path):
    before = _run_json_mtimes(smoke_study.store)
    raw = copy.deepcopy(smoke_raw)
    raw["seeds"] = [0]
    raw["methods"] = ["mse", "ot"]
    raw["budgets"] = [64, 32]
    raw["query_noises"] = [0.0]
    config = load_study_config(write_config(tmp_path / "overlap.yaml", raw))
    result = run_study(config, tmp_path / "study2", store=smoke_study.store, progress=False)
    assert not result.failures and all(s.done for s in result.statuses)
    after = _run_json_mtimes(smoke_study.store)
    shared = [s.run.run_id for s in result.statuses if s.run.budget == 64]
    assert len(shared) == 2
    for run_id in shared:
        assert after[run_id] == before[run_id]  # not redone
        assert (tmp_path / "study2" / "runs" / run_id).resolve() == (smoke_study.store / run_id).resolve()
    assert len(after) == len(before) + 2  # the two budget-32 runs are new


def test_a_revised_config_of_the_same_study_keeps_its_finished_runs_and_unlinks_the_rest(smoke_study, smoke_raw, tmp_path):
    before = _run_json_mtimes(smoke_study.store)
    raw = copy.deepcopy(smoke_raw)
    raw.update(seeds=[0], methods=["mse", "ot"], budgets=[64], query_noises=[0.0])
    first = run_study(
        load_study_config(write_config(tmp_path / "v1.yaml", raw)), tmp_path / "study", store=smoke_study.store, progress=False
    )
    mse_id = next(s.run.run_id for s in first.statuses if s.run.method == "mse")
    raw["methods"] = ["ot"]  # the grid narrowed (or widened) under the same study name
    revised = run_study(
        load_study_config(write_config(tmp_path / "v2.yaml", raw)), tmp_path / "study", store=smoke_study.store, progress=False
    )
    assert [s.done for s in revised.statuses] == [True]
    assert _run_json_mtimes(smoke_study.store) == before  # nothing recomputed
    assert sorted(p.name for p in (tmp_path / "study" / "runs").iterdir()) == [revised.statuses[0].run.run_id]
    assert (smoke_study.store / mse_id / "distill" / "run.json").is_file()  # only the link went
    manifest = json.loads((tmp_path / "study" / "study.json").read_text())
    assert [entry["method"] for entry in manifest["runs"]] == ["ot"]
    raw["study"] = "another-study"
    with pytest.raises(OpticalError, match="holds another study"):
        run_study(
            load_study_config(write_config(tmp_path / "other.yaml", raw)),
            tmp_path / "study",
            store=smoke_study.store,
            progress=False,
        )


def test_a_killed_study_resumes_without_redoing_finished_runs(study_env, smoke_raw, tmp_path):
    raw = copy.deepcopy(smoke_raw)
    raw.update(methods=["mse", "ot"], seeds=[0, 1], query_noises=[0.0])
    raw["base"]["eval"]["tasks"] = ["align"]
    config_path = write_config(tmp_path / "kill.yaml", raw)
    store, study_dir = tmp_path / "store", tmp_path / "study"
    command = [
        sys.executable,
        "-m",
        "optical.cli",
        "study",
        "run",
        "--config",
        str(config_path),
        "--out",
        str(study_dir),
        "--store",
        str(store),
        "--quiet",
        "--no-report",
    ]
    process = subprocess.Popen(command, env=study_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if list(store.glob("*/eval-0/eval.json")):
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()[-2000:]
    finished = {
        p.parent.parent.name: p.stat().st_mtime_ns
        for p in store.glob("*/distill/run.json")
        if (p.parent.parent / "eval-0" / "eval.json").is_file()
    }
    assert 1 <= len(finished) < 4
    manifest = json.loads((study_dir / "study.json").read_text())
    assert manifest["status"] == "running"

    rerun = subprocess.run(command, env=study_env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    for run_id, mtime in finished.items():
        assert (store / run_id / "distill" / "run.json").stat().st_mtime_ns == mtime
    manifest = json.loads((study_dir / "study.json").read_text())
    assert manifest["status"] == "complete" and [r["status"] for r in manifest["runs"]] == ["done"] * 4


def test_bad_config_on_the_command_line_is_one_line(smoke_raw, tmp_path, capsys):
    raw = copy.deepcopy(smoke_raw)
    raw["languages"] = ["el", "klingon"]
    path = write_config(tmp_path / "bad.yaml", raw)
    assert main(["study", "run", "--config", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "klingon" in err and str(path) in err


def test_report_of_a_dir_that_is_no_study_is_an_error(tmp_path, capsys):
    assert main(["study", "report", str(tmp_path)]) == 2
    assert "study.json is missing" in capsys.readouterr().err


def test_runs_held_by_a_committed_export_are_not_recomputed_with_an_empty_store(smoke_study, tmp_path, capsys):
    from optical.study.export import export_study

    export = export_study(smoke_study.study_dir, tmp_path / "export").out_dir
    store, study_dir = tmp_path / "new-machine-store", tmp_path / "study"
    planned = dry_run(load_study_config(SMOKE_CONFIG), study_dir, store=store, from_export=export)
    assert all(s.done for s in planned.statuses) and planned.total_seconds == 0 and not store.exists()
    result = run_study(load_study_config(SMOKE_CONFIG), study_dir, store=store, progress=False, from_export=export)
    assert not result.failures and all(s.done for s in result.statuses)
    assert not list(store.glob("*/distill/student"))  # nothing trained: only the records were adopted
    assert len(list(store.glob("*/distill/run.json"))) == 4 and len(list(store.glob("*/eval-*/eval.json"))) == 10
    write_study_report(study_dir, n_resamples=200)
    write_study_report(smoke_study.study_dir, n_resamples=200)
    assert (study_dir / "report" / "report.md").read_text() == (smoke_study.study_dir / "report" / "report.md").read_text()
    assert (
        main(["study", "run", "--config", str(SMOKE_CONFIG), "--out", str(tmp_path / "s2"), "--from-export", str(tmp_path)]) == 2
    )
    assert "no study.json there" in capsys.readouterr().err


def test_a_new_machine_estimates_from_the_rates_of_the_committed_export(smoke_study, smoke_raw, tmp_path):
    """With an empty store, the export's finished runs give the rates of the runs still to do."""
    from optical.study.export import export_study

    export = export_study(smoke_study.study_dir, tmp_path / "export").out_dir
    raw = copy.deepcopy(smoke_raw)
    raw["seeds"] = [7]  # runs the export does not hold
    config = load_study_config(write_config(tmp_path / "more-seeds.yaml", raw))
    alone = dry_run(config, store=tmp_path / "empty-store")
    adopted = dry_run(config, store=tmp_path / "empty-store", from_export=export)
    assert all("default" in e.basis for e in alone.estimates.values())
    assert adopted.estimates and not any("default" in e.basis for e in adopted.estimates.values())
    assert "4 finished distill runs and 10 finished evaluations in the store and the export" in adopted.render()


def test_without_the_data_a_dry_run_still_estimates_and_a_finished_study_still_reruns(
    smoke_study, smoke_raw, tmp_path, monkeypatch
):
    """The data checks of the plan concern pending runs and are skipped by a dry run on a machine without data."""
    from optical.study.export import export_study

    export = export_study(smoke_study.study_dir, tmp_path / "export").out_dir
    monkeypatch.setenv("OPTICAL_DATA_DIR", str(tmp_path / "no-data"))
    raw = copy.deepcopy(smoke_raw)
    raw["seeds"] = [7]
    assert dry_run(load_study_config(write_config(tmp_path / "more.yaml", raw)), store=tmp_path / "s1").estimates
    config = load_study_config(SMOKE_CONFIG)
    done = run_study(config, tmp_path / "study", store=tmp_path / "s2", from_export=export, progress=False)
    assert all(s.done for s in done.statuses)
    with pytest.raises(OpticalError, match="no-data"):  # a real run of pending runs needs the data
        run_study(load_study_config(tmp_path / "more.yaml"), tmp_path / "study-more", store=tmp_path / "s3", progress=False)


def test_every_budget_is_checked_against_its_bitext_before_the_first_run(smoke_raw, tmp_path):
    raw = copy.deepcopy(smoke_raw)
    raw["budgets"] = ["all", 64, 99_999_999]  # "all" must not hide the number above the bitext
    config = load_study_config(write_config(tmp_path / "budgets.yaml", raw))
    with pytest.raises(OpticalError, match="budget 99999999 is not available"):
        dry_run(config, store=tmp_path / "store")
    assert not (tmp_path / "store").exists()


def test_evaluation_estimates_prefer_the_same_teacher_and_precision_then_the_same_precision():
    from optical.study.runner import DEFAULT_EVAL_SECONDS, _MeasuredRates

    tasks = ["clir_sentence", "align"]

    def finished(teacher: str, precision: str, seconds: float) -> dict:
        return {"teacher": teacher, "config": {"eval": {"tasks": tasks, "mixed_precision": precision}},
                "timings": {"wall_seconds": seconds}}  # fmt: skip

    def measured(evals: list[dict]) -> _MeasuredRates:  # planned runs at 2 threads; older records count as 2
        return _MeasuredRates([], evals, Concurrency(runs_at_once=1, threads_per_run=2, cores_per_run=2.0), default_threads=2)

    evals = [finished("e5", "no", 30.0), finished("e5", "bf16", 12.0), finished("minilm", "no", 40.0)]
    rates = measured(evals)
    assert rates._eval_seconds("minilm", tasks, "no")[0] == 40.0  # same teacher and precision
    seconds, basis = rates._eval_seconds("minilm", tasks, "bf16")  # no such run: the same precision, another teacher
    assert seconds == 12.0 and "another teacher" in basis
    assert measured(evals[:1])._eval_seconds("minilm", tasks, "bf16")[0] == 30.0  # only another teacher's
    assert measured(evals)._eval_seconds("minilm", ["pool"], "no") == (DEFAULT_EVAL_SECONDS, "default")
    # Evaluations at the planned 2 threads are preferred within a tier; one at 4 threads, on the planned runs' 2
    # cores, would take twice as long; one at 1 thread is not assumed to get faster.
    four_threads, one_thread = finished("minilm", "no", 10.0), finished("minilm", "no", 50.0)
    four_threads["timings"]["torch_threads"], one_thread["timings"]["torch_threads"] = 4, 1
    assert measured([*evals, four_threads, one_thread])._eval_seconds("minilm", tasks, "no")[0] == 40.0
    seconds, basis = measured([four_threads])._eval_seconds("minilm", tasks, "no")
    assert seconds == 20.0 and "at other thread counts than 2" in basis
    assert measured([one_thread])._eval_seconds("minilm", tasks, "no")[0] == 50.0
    # A precision match outranks a thread-count match: bf16 at 4 threads beats fp32 at 2 for a bf16 plan.
    bf16_four = finished("minilm", "bf16", 6.0)
    bf16_four["timings"]["torch_threads"] = 4
    assert measured([*evals, bf16_four])._eval_seconds("minilm", tasks, "bf16")[0] == 12.0


def test_stop_after_starts_no_run_once_it_has_passed(study_env, tmp_path, capsys):
    """``--stop-after 0s``: nothing starts and the manifest says stopped; a bad duration is one line."""
    study_dir, store = tmp_path / "study", tmp_path / "store"
    options = ["--config", str(SMOKE_CONFIG), "--out", str(study_dir), "--store", str(store), "--quiet", "--no-report"]
    assert main(["study", "run", *options, "--stop-after", "0s"]) == 0
    out = capsys.readouterr().out
    manifest = json.loads((study_dir / "study.json").read_text())
    pending = len(manifest["runs"])
    assert manifest["status"] == "stopped" and all(run["status"] != "done" for run in manifest["runs"])
    assert f"stopped: --stop-after 0s passed with {pending} run(s) not started" in out
    assert not list(store.glob("*/distill/run.json"))  # nothing was computed
    assert main(["study", "run", *options[:-2], "--stop-after", "soon"]) == 2
    assert capsys.readouterr().err.strip().endswith("--stop-after soon: expected a duration such as 2h30m, 45m, 1.5h or 600s")


def test_tasks_are_handed_out_only_until_the_deadline():
    from optical.study.runner import _until, parse_duration

    now = [0.0]
    started: list[str] = []
    tasks = _until(["a", "b", "c"], 10.0, started, clock=lambda: now[0])
    assert next(tasks) == "a"
    now[0] = 10.0
    assert list(tasks) == [] and started == ["a"]
    assert list(_until(["a", "b"], None, started)) == ["a", "b"]
    assert parse_duration("1h") == 3600 and parse_duration("2m30s") == 150
    for bad in ("", "h", "-1m", "3 days"):
        with pytest.raises(OpticalError, match="expected a duration"):
            parse_duration(bad)


def test_a_dry_run_with_stop_after_counts_the_runs_that_would_start():
    from types import SimpleNamespace

    from optical.study.runner import DryRun, RunEstimate

    statuses = [SimpleNamespace(run=SimpleNamespace(run_id=f"r{i}"), done=i == 0) for i in range(6)]
    estimates = {f"r{i}": RunEstimate(60.0, "measured") for i in range(1, 6)}
    two_at_once = Concurrency(runs_at_once=2, threads_per_run=1, cores_per_run=1.0)
    plan = DryRun(None, statuses, estimates, 180.0, two_at_once)
    assert [plan.runs_started_within(s) for s in (1, 60, 61, 121, 1e9)] == [2, 2, 4, 5, 5]
    one_slot = DryRun(None, statuses, estimates, 300.0, Concurrency(runs_at_once=None, threads_per_run=1, cores_per_run=1.0))
    assert one_slot.runs_started_within(61) == 2
