"""The README's results are what the committed reports hold: its per-arm table is recounted from comparisons.json."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_arm_rows() -> list[tuple[str, str, str, tuple[int, int, int]]]:
    """(study, arm, baseline, (ahead, level, behind)) per row of the README's "Per study arm" table; empty study and
    arm cells repeat the row above."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text[text.index("| study (teacher) | arm | OT vs |") :].split("\n\n", 1)[0].splitlines()[2:]
    rows, study, arm = [], "", ""
    for line in table:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        study = cells[0].split(" (")[0] or study
        arm = cells[1].split(" (")[0] or arm
        rows.append((study, arm, cells[2], (int(cells[3]), int(cells[4]), int(cells[5]))))
    return rows


def _counts(study: str) -> dict[tuple[str, str], Counter]:
    """OT's significant wins, levels and losses per (arm, baseline) in a committed study report."""
    comparisons = json.loads((ROOT / "results" / study / "report" / "comparisons.json").read_text(encoding="utf-8"))
    counts: dict[tuple[str, str], Counter] = {}
    for c in comparisons["comparisons"]:
        if c["kind"] != "level" or c["method"] != "ot":
            continue
        verdict = "level" if not c["significant"] else "ahead" if c["diff"] > 0 else "behind"
        counts.setdefault((c["family"].rsplit(", arm ", 1)[1], c["baseline"]), Counter())[verdict] += 1
    return counts


def test_the_readme_arm_table_is_recounted_from_the_committed_reports():
    rows = _readme_arm_rows()
    assert len(rows) >= 10 and {study for study, *_ in rows} >= {"study-v2", "study-v2-minilm"}
    for study, arm, baseline, stated in rows:
        found = _counts(study).get((arm, baseline))
        assert found is not None, f"README row {study} / {arm} / {baseline}: no such comparisons in the report"
        assert stated == (found["ahead"], found["level"], found["behind"]), f"README row {study} / {arm} / {baseline}"


def test_the_readme_late_interaction_figures_are_the_committed_reports():
    """Every figure with a CI ("+0.011 [+0.003, +0.018]") in the README's "Which scoring where" is a row of the
    committed late-interaction report's comparisons.json (OT vs a baseline over all languages at once)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    paragraph = " ".join(text[text.index("**Which scoring where.**") :].split("\n\n", 1)[0].split())
    comparisons = json.loads(
        (ROOT / "results" / "study-late-interaction" / "report" / "comparisons.json").read_text(encoding="utf-8")
    )
    committed = {
        f"{c['diff']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}]" for c in comparisons["late_interaction_across_languages"]
    }
    quoted = re.findall(r"[+-]\d\.\d{3} \[[+-]\d\.\d{3}, [+-]\d\.\d{3}\]", paragraph)
    assert len(quoted) >= 3 and set(quoted) <= committed, set(quoted) - committed
