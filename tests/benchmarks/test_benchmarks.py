"""The benchmark runner (benchmarks/run_all.py): its reading of measurements, and its quick mode end to end.

The end-to-end test is CI's reduced version of the real run: every benchmark script really runs (subset, tiny
model, a few steps) and RESULTS.md must hold every section with a number in every ratio cell.
"""

import json
import re
import subprocess
import sys
import time

import pytest

from tests.helpers.project import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import run_all  # noqa: E402

SECTIONS = ["## Machine", "## Versions", "## Summary", "## Train throughput", "## Int8 student vs PyTorch teacher",
            "## Flow overhead", "## Quality on banking77", "## Data stages", "## Serving", "## Reliability",
            "## Raw output"]
FIGURES = [
    "Train throughput (samples/s)", "Train peak RSS (MB)", "Batch-1 p50 latency (ms)", "Size (MiB)",
    "Test accuracy (%): int8 student vs PyTorch fp32 teacher", "Orchestration (s)",
    "Teacher test accuracy (%) vs BERT-base", "Teacher test accuracy (%) vs DistilBERT",
    "Teacher test accuracy (%) vs RoBERTa-base", "Teacher test accuracy (%) vs BERT-large",
    "Student (PyTorch) test accuracy (%) vs teacher", "Int8 student test accuracy (%) vs teacher",
    "Serving throughput (req/s) at concurrency 64", "Serving p99 latency (ms) at concurrency 8",
    "Serving throughput (texts/s) at concurrency 64 vs model-only ceiling",
]


def summary_rows(results: str) -> dict[str, list[str]]:
    section = results.split("## Summary", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split(" | ") for line in section.splitlines() if line.startswith("| ")]
    return {row[0].strip(): [cell.strip() for cell in row[1:]] for row in rows[1:]}


def test_ratio_targets_and_the_points_rule():
    faster = run_all.figure_row("latency", 0.3, 7.0, "teacher", 3, run_all.Target("ratio", "<=", 1 / 8, "<= 0.125"))
    shown = (faster.value, faster.reference, faster.ratio, faster.result)
    assert shown == ("0.300", "7.000 (teacher)", "0.043", "pass")
    drop = run_all.Target("drop", "<=", 1.0, "within 1.0 point")
    assert run_all.figure_row("int8", 91.2, 92.1, "teacher", 2, drop).result == "pass"
    assert run_all.figure_row("int8", 91.0, 92.1, "teacher", 2, drop).result == "FAIL"
    goal = run_all.Target("value", ">=", 92.0, ">= 92.0")
    assert run_all.figure_row("teacher", 91.9, 93.1, "BERT-base", 2, goal).result == "FAIL"
    missing = run_all.figure_row("x", None, 1.0, "ref", 2, goal, "not run: missing")
    assert (missing.value, missing.ratio, missing.result) == ("not run: missing", "—", "not run")


def test_anchors_are_the_published_constants():
    assert run_all.PUBLISHED_ANCHORS == {"BERT-base": 93.1, "DistilBERT": 92.5, "RoBERTa-base": 93.5,
                                        "BERT-large": 93.7}
    rows = run_all.quality_rows({name: {"accuracy": 0.925} for name in ("teacher", "student", "int8")}, "")
    assert [row.ratio for row in rows[:4]] == [f"{92.5 / anchor:.3f}" for anchor in (93.1, 92.5, 93.5, 93.7)]
    assert rows[0].result == "pass" and rows[1].result == "—"


def test_gnu_time_log_gives_cpu_and_wall_seconds():
    log = ("\tUser time (seconds): 5120.50\n\tSystem time (seconds): 79.50\n"
           "\tElapsed (wall clock) time (h:mm:ss or m:ss): 1:02:03\n")
    assert run_all.parse_time_log(log) == {"cpu_seconds": 5200.0, "wall_seconds": 3723.0}
    assert run_all.parse_time_log("no timing here") == {}


@pytest.mark.parametrize("figures, expected", [
    ({"dvc_repro_seconds": 2.0, "flow_seconds": 5.0, "ratio": 2.5}, (5.0, 2.0, None)),
    ({"noop_dvc_repro": {"median_s": 1.5}, "cached_flow_rerun": {"median_s": 4.5}, "overhead_ratio": 3.0,
      "target": "<= 5"}, (4.5, 1.5, "<= 5")),
])
def test_flow_overhead_figures_are_found_by_name(figures, expected):
    assert run_all.flow_figures(figures) == expected


def test_recipe_cost_prefers_the_runners_own_measurement(tmp_path):
    (tmp_path / "models/teacher").mkdir(parents=True)
    (tmp_path / "models/teacher/meta.json").write_text(json.dumps({"wall_time_s": 3000.0, "cpu_time_s": 5800.0}))
    cost = run_all.run_cost(tmp_path, None)
    assert (cost["cpu"], cost["wall"]) == (5800.0, 3000.0) and "meta.json" in cost["source"]
    (tmp_path / ".tuneforge").mkdir()
    (tmp_path / ".tuneforge/recipe_run.json").write_text(json.dumps(
        {"cpu_seconds": 6100.0, "wall_seconds": 3300.0, "command": "python -m tuneforge.cli run"}))
    cost = run_all.run_cost(tmp_path, None)
    assert (cost["cpu"], cost["wall"]) == (6100.0, 3300.0) and "run_all.py" in cost["source"]
    assert cost["stages"] == {"train": {"wall": 3000.0, "cpu": 5800.0}}


def test_one_section_update_replaces_its_rows_and_section_and_keeps_the_rest():
    results = "\n".join([
        "# tuneforge benchmarks", "", "## Summary", "", "| figure | tuneforge |", "|---|---|", "| Train x | 1 |",
        "| Serving old | 2 |", "| Serving old p99 | 2 |", "| Quality y | 4 |", "", "## Data stages", "", "data", "",
        "## Serving (benchmarks/serving.py)", "", "old", "", "## Raw output", "", "raw", ""])
    section = ["## Serving (benchmarks/serving.py)", "", "new", ""]
    updated = run_all.splice_section(results, "Serving", ["| Serving new | 3 |"], section)
    # In place of the old rows, the summary's order kept.
    assert updated.splitlines()[6:9] == ["| Train x | 1 |", "| Serving new | 3 |", "| Quality y | 4 |"]
    assert "old" not in updated and "data" in updated and "raw" in updated
    assert updated.index("new\n") < updated.index("## Raw output")
    first = run_all.splice_section(results.replace("## Serving (benchmarks/serving.py)\n\nold\n\n", ""),
                                   "Serving", ["| Serving new | 3 |"], section)
    assert first.index("## Data stages") < first.index("## Serving") < first.index("## Raw output")

    # A section not there yet: its rows close the summary table, the section goes before the raw output.
    added = run_all.splice_section(updated, "Reliability", ["| Reliability: x | 2 of 2 cases clean |"],
                                   ["## Reliability (benchmarks/reliability.py)", "", "cases", ""])
    assert added.splitlines()[9] == "| Reliability: x | 2 of 2 cases clean |" and added.splitlines()[10] == ""
    assert added.index("new\n") < added.index("## Reliability") < added.index("## Raw output")
    assert run_all.splice_section(added, "Reliability", ["| Reliability: x | 2 of 2 cases clean |"],
                                  ["## Reliability (benchmarks/reliability.py)", "", "cases", ""]) == added


def reliability_json(*cases: dict) -> dict:
    return {"mode": "full pipeline", "total": len(cases), "clean": sum(case["clean"] for case in cases),
            "seconds": 400.0, "pipeline_seconds": 120.0, "cases": list(cases)}


def reliability_case(name: str, clean: bool, **fields) -> dict:
    return {"name": name, "category": "files", "command": "tuneforge run", "expect": ["intents.csv", "empty"],
            "exit_code": 1, "message": "error: examples/intents.csv: file is empty", "error_lines": 1,
            "names_problem": True, "traceback": False, "changed": [], "allowed": [], "seconds": 2.0,
            "clean": clean, "why_not_clean": "" if clean else "traceback", **fields}


def test_reliability_rows_count_the_clean_cases_and_the_section_lists_each(tmp_path):
    figures = reliability_json(
        reliability_case("empty_file", True),
        reliability_case("promote_gates_failing", True, category="registry", command="tuneforge registry promote "
                         "intents 1 --to 'production\n'", allowed=["db:events 3 rows -> 4 rows"]),
        reliability_case("bad_csv", False, exit_code=0, message="", why_not_clean="exit 0, 0 error lines",
                         changed=["file:data/validated/train.parquet modified"]),
    )
    run = run_all.BenchmarkRun("reliability", "reliability.py", status="ok", figures=figures, command=[
        sys.executable, str(run_all.BENCHMARKS / "reliability.py"), "--json", "/tmp/r.json"])
    [row] = run_all.reliability_rows(run)
    assert (row.figure, row.value, row.reference, row.ratio, row.result) == (
        "Reliability: bad inputs refused cleanly, full pipeline", "2 of 3 cases clean", "3 (cases run)", "0.667",
        "FAIL")
    figures["cases"].pop()
    figures.update(total=2, clean=2)
    assert run_all.reliability_rows(run)[0].result == "pass"

    figures["cases"].append(reliability_case("bad_csv", False, exit_code=0, message="",
                                             why_not_clean="exit 0, 0 error lines",
                                             changed=["file:data/validated/train.parquet modified"]))
    section = run_all.reliability_section(run)
    assert section[0] == "## Reliability (benchmarks/reliability.py)"
    assert "Run by `python benchmarks/reliability.py --json /tmp/r.json`" in section[2]
    rows = [line for line in section if line.startswith("| ")]
    assert rows[0] == "| case | kind | command | expected words | exit | clean | the line it printed |"
    assert rows[1:] == [
        "| empty_file | files | `tuneforge run` | intents.csv, empty | 1 | yes | "
        "error: examples/intents.csv: file is empty |",
        "| promote_gates_failing | registry | `tuneforge registry promote intents 1 --to 'production\\n'` | "
        "intents.csv, empty "
        "| 1 | yes | error: examples/intents.csv: file is empty |",
        "| bad_csv | files | `tuneforge run` | intents.csv, empty | 0 | NO: exit 0, 0 error lines; changed: "
        "file:data/validated/train.parquet modified | (no error line) |",
    ]
    assert "promote_gates_failing (db:events 3 rows -> 4 rows)" in section[-2]

    missing = run_all.BenchmarkRun("reliability", "reliability.py", status="failed", returncode=2)
    assert run_all.reliability_rows(missing)[0].result == "not run"
    assert run_all.reliability_section(missing)[2] == "not run: failed (exit 2)"


def test_only_reliability_writes_an_earlier_runs_json_into_results(tmp_path, capsys):
    results = tmp_path / "RESULTS.md"
    results.write_text("\n".join(["# tuneforge benchmarks", "", "## Summary", "", "| figure | tuneforge |", "|---|---|",
                                  "| Train x | 1 |", "", "## Serving (benchmarks/serving.py)", "", "kept", "",
                                  "## Raw output", "", "raw", ""]))
    earlier = tmp_path / "reliability.json"
    earlier.write_text(json.dumps(reliability_json(reliability_case("empty_file", True))))
    assert run_all.main(["--only", "reliability", "--reliability-json", str(earlier), "--out", str(results)]) == 0
    text = results.read_text()
    assert summary_rows(text)["Reliability: bad inputs refused cleanly, full pipeline"] == [
        "1 of 1 cases clean", "1 (cases run)", "1.000", "all clean", "pass"]
    assert text.index("kept") < text.index("## Reliability") < text.index("## Raw output")
    assert f"Read from {earlier}, the --json of an earlier run" in text
    assert "Written by `python benchmarks/run_all.py --only reliability --reliability-json" in text

    missing = tmp_path / "absent.json"
    assert run_all.main(["--only", "reliability", "--reliability-json", str(missing), "--out", str(results)]) == 2
    assert "absent.json: file not found" in capsys.readouterr().err and results.read_text() == text


def test_a_recipe_dir_without_a_run_is_refused(tmp_path, capsys):
    assert run_all.main(["--quick", "--recipe-dir", str(tmp_path), "--out", str(tmp_path / "R.md")]) == 2
    assert "no reports/metrics" in capsys.readouterr().err
    assert not (tmp_path / "R.md").exists()


@pytest.mark.e2e
def test_quick_mode_writes_every_section_with_numeric_ratios(tmp_path):
    committed = run_all.RESULTS.read_bytes() if run_all.RESULTS.is_file() else None
    out = tmp_path / "RESULTS.md"
    began = time.perf_counter()
    done = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks/run_all.py"), "--quick", "--out", str(out)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    print(f"quick runner: {time.perf_counter() - began:.0f} s")
    results = out.read_text()
    for section in SECTIONS:
        assert section in results, section
    assert "**Quick mode (CI):**" in results and "tuneforge commit" in results and "| torch | 2." in results

    rows = summary_rows(results)
    for figure in FIGURES:
        row = next((cells for name, cells in rows.items() if name.startswith(figure)), None)
        assert row is not None, figure
        value, reference, ratio, target, result = row
        if figure == "Orchestration (s)" and not (REPO_ROOT / "benchmarks/orchestration_overhead.py").is_file():
            assert (value, result) == ("not run: missing", "not run")
            continue
        assert re.fullmatch(r"\d+\.\d{3}", ratio), (figure, row)
        expected = float(value) / float(reference.split()[0])
        assert float(ratio) == pytest.approx(expected, rel=0.02, abs=2e-3), (figure, row)
        assert result in ("pass", "FAIL", "—"), (figure, row)
    assert "93.10 (BERT-base, published)" in rows["Teacher test accuracy (%) vs BERT-base"][1]
    # Reliability: the quick subset ran (benchmarks/reliability.py --quick) and every case was refused cleanly.
    value, reference, ratio, target, result = rows["Reliability: bad inputs refused cleanly, quick (stages before "
                                                   "train)"]
    clean = re.fullmatch(r"(\d+) of (\d+) cases clean", value)
    assert clean and clean.group(1) == clean.group(2) and int(clean.group(1)) >= 20, value
    assert (reference, ratio, target, result) == (f"{clean.group(2)} (cases run)", "1.000", "all clean", "pass")
    section = results.split("## Reliability (benchmarks/reliability.py)", 1)[1].split("\n## ", 1)[0]
    assert "Run by `python benchmarks/reliability.py --quick --json " in section
    case_rows = [line for line in section.splitlines() if line.startswith("| ")][1:]
    assert len(case_rows) == int(clean.group(2)) and all(" | yes | " in line for line in case_rows)
    assert (run_all.RESULTS.read_bytes() if run_all.RESULTS.is_file() else None) == committed, \
        "quick mode must not overwrite the committed RESULTS.md"


def goemotions_figures(teacher: tuple[float, float], int8: tuple[float, float]) -> dict:
    """benchmarks/goemotions.py's --json, trimmed to what the runner reads: (global, per-label) macro-F1 per model."""
    def model(macro: tuple[float, float]) -> dict:
        return {"global_threshold": 0.3, **{mode: {"macro_f1": value, "micro_f1": 0.5, "samples_f1": 0.5,
                                                    "accuracy": 0.4} for mode, value in zip(("global", "per_label"),
                                                                                           macro, strict=True)}}
    return {
        "quick": False, "labels": ["a"] * 28, "val_rows": 5426, "test_rows": 5427, "device": "cpu",
        "measure_seconds": 300.0, "load_average": 1.0,
        "models": {"teacher": model(teacher), "int8": model(int8)},
        "cross_check": {"teacher_evaluate_json_macro_f1": teacher[1], "teacher_difference": 0.0,
                        "int8_export_json_macro_f1": int8[1], "int8_difference": 0.0},
        "goals": {"teacher per-label macro-F1": {"value": teacher[1], "goal": ">= 0.50", "met": teacher[1] >= 0.5}},
        "run": {"path": "/tmp/run", "commit": "0123456789abcdef", "data_dir": "/data/goemotions",
                "model_base": "sentence-transformers/all-MiniLM-L6-v2", "train": {"epochs": 3.0},
                "teacher_trained": {"global_step": 4041}, "distill": {"num_layers": 3}, "student_trained": {}},
        "cost": {"cpu_seconds": 36000.0, "wall_seconds": 20000.0, "source": "recipe_run.json",
                 "stages": {"train": {"wall": 15000.0, "cpu": 28000.0}}},
    }


def test_goemotions_rows_judge_the_goals_and_the_section_labels_the_anchor_as_published():
    run = run_all.BenchmarkRun("goemotions", "goemotions.py", status="ok",
                               figures=goemotions_figures(teacher=(0.48, 0.52), int8=(0.47, 0.515)))
    anchor, per_label, int8 = run_all.goemotions_rows(run)
    assert all(row.figure.startswith("GoEmotions ") for row in (anchor, per_label, int8))
    assert (anchor.value, anchor.reference, anchor.result) == ("0.5200", "0.4600 (BERT-base, published)", "pass")
    assert "(published, one threshold)" in anchor.figure
    assert (per_label.reference, per_label.ratio, per_label.result) == ("0.4800 (global threshold)", "1.083", "—")
    assert (int8.value, int8.reference, int8.result) == ("0.5150", "0.5200 (teacher)", "pass")
    section = "\n".join(run_all.goemotions_section(run))
    assert section.startswith("## GoEmotions (benchmarks/goemotions.py)")
    assert "| int8 student (ONNX, shipped) | per-label | 0.5150 |" in section
    assert "published, not measured here: Demszky et al. 2020" in section and "macro-F1 0.46" in section
    assert "CPU time 36000 s (10.00 h)" in section

    below = run_all.BenchmarkRun("goemotions", "goemotions.py", status="ok",
                                 figures=goemotions_figures(teacher=(0.45, 0.49), int8=(0.44, 0.475)))
    assert [row.result for row in run_all.goemotions_rows(below)] == ["FAIL", "—", "FAIL"]
    missing = run_all.BenchmarkRun("goemotions", "goemotions.py")
    assert {row.result for row in run_all.goemotions_rows(missing)} == {"not run"}
    assert "not run: missing: give --goemotions-dir DIR" in run_all.goemotions_section(missing)[2]


def test_only_goemotions_needs_a_completed_run(tmp_path, capsys):
    results = tmp_path / "RESULTS.md"
    results.write_text("# tuneforge benchmarks\n\n## Summary\n\n| figure | tuneforge |\n|---|---|\n")
    assert run_all.main(["--only", "goemotions", "--out", str(results)]) == 2
    assert "--only goemotions needs --goemotions-dir" in capsys.readouterr().err
    assert run_all.main(["--only", "goemotions", "--goemotions-dir", str(tmp_path), "--out", str(results)]) == 2
    assert "no reports/metrics" in capsys.readouterr().err


def test_open_set_rows_judge_ours_against_adb_and_say_how_many_seeds():
    table = [
        {"ratio": 0.75, "teacher_seeds": 3, "int8_seeds": 2, "teacher_accuracy_with_oos": 82.0,
         "teacher_macro_f1_with_oos": 85.0, "int8_accuracy_with_oos": 85.5, "int8_macro_f1_with_oos": 87.0},
        {"ratio": 0.25, "teacher_seeds": 1, "int8_seeds": 0, "teacher_accuracy_with_oos": 80.0,
         "teacher_macro_f1_with_oos": 72.0, "int8_accuracy_with_oos": None, "int8_macro_f1_with_oos": None},
    ]
    run = run_all.BenchmarkRun("open_set", "open_set.py", status="ok", figures={"table": table})
    rows = {row.figure: row for row in run_all.open_set_rows(run)}
    accuracy = rows["Open-set banking77, 75% known: teacher accuracy (%) vs ADB (3 seed(s))"]
    assert (accuracy.value, accuracy.reference, accuracy.result) == ("82.00", "81.08 (ADB, published)", "pass")
    assert rows["Open-set banking77, 75% known: teacher macro-F1 (%) vs ADB (3 seed(s))"].result == "FAIL"
    assert rows["Open-set banking77, 25% known: teacher macro-F1 (%) vs ADB (1 seed(s))"].result == "pass"
    assert rows["Open-set banking77, 50% known: teacher accuracy (%) vs ADB (0 seed(s))"].result == "not run"
    assert rows["Open-set banking77, 75% known: int8 student accuracy (%) vs ADB (2 seed(s))"].result == "pass"
    assert rows["Open-set banking77, 75% known: int8 student macro-F1 (%) vs ADB (2 seed(s))"].result == "FAIL"
