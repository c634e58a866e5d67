"""The reliability runs: benchmarks/reliability.py feeds the pipeline bad inputs in a temporary clone, and
every one must be refused cleanly (non-zero exit, one error line naming the problem, no traceback, outputs
and registry unchanged). The default run takes the quick subset (about 2-3 minutes here); the full run
(every case, after the whole pipeline, about 12 minutes here) is marked slow."""

import importlib.util
import json
import sqlite3
import subprocess
import sys

import pytest

from tests.helpers.project import REPO_ROOT

pytestmark = pytest.mark.e2e
SCRIPT = REPO_ROOT / "benchmarks" / "reliability.py"


def load_script():
    spec = importlib.util.spec_from_file_location("reliability", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(tmp_path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    results = tmp_path / "reliability.json"
    table = tmp_path / "reliability.md"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--json", str(results), "--markdown", str(table),
         "--workdir", str(tmp_path / "work"), *args],
        capture_output=True, text=True, timeout=1800,
    )
    assert results.is_file(), f"no results written:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    rows = table.read_text(encoding="utf-8").count("\n| ") - 2  # less the header and separator rows
    assert rows == len(json.loads(results.read_text())["cases"])
    return done, json.loads(results.read_text())


def assert_every_case_clean(done: subprocess.CompletedProcess, results: dict) -> None:
    unclean = [case for case in results["cases"] if not case["clean"]]
    assert not unclean, json.dumps(unclean, indent=1)
    for case in results["cases"]:
        assert case["exit_code"] != 0 and case["error_lines"] == 1 and not case["traceback"], case
        assert case["changed"] == [], case
        # What benchmarks/run_all.py puts in RESULTS.md beside each case: the words its line had to name.
        assert case["expect"] and case["why_not_clean"] == "", case
    assert done.returncode == 0, done.stdout[-3000:]


def test_quick_subset_is_refused_cleanly(tmp_path):
    done, results = run_script(tmp_path, "--quick")
    assert [case["name"] for case in results["cases"]] == [
        case.name for case in load_script().CASES if case.name in load_script().QUICK_CASES
    ]
    categories = {case["category"] for case in results["cases"]}
    assert categories == {"files", "params", "models", "registry", "predict", "serve"}
    assert_every_case_clean(done, results)


@pytest.mark.slow
def test_every_bad_input_is_refused_cleanly_after_a_full_pipeline_run(tmp_path):
    done, results = run_script(tmp_path)
    assert results["total"] >= 25 and results["mode"] == "full pipeline"
    assert_every_case_clean(done, results)
    promotion = next(case for case in results["cases"] if case["name"] == "promote_gates_failing")
    assert promotion["allowed"] == [change for change in promotion["allowed"] if change.startswith("db:events ")]


def test_the_snapshot_sees_changed_outputs_registry_rows_and_blobs(tmp_path):
    # The harness itself: a refusal that did change something must not pass as clean.
    script = load_script()
    (tmp_path / "data" / "validated").mkdir(parents=True)
    (tmp_path / "data" / "validated" / "train.parquet").write_bytes(b"rows")
    (tmp_path / "params.yaml").write_text("split: {seed: 1}\n")
    (tmp_path / ".tuneforge" / "artifacts").mkdir(parents=True)
    with sqlite3.connect(tmp_path / ".tuneforge" / "registry.db") as db:
        db.execute("CREATE TABLE aliases (name TEXT, version INTEGER)")
        db.execute("INSERT INTO aliases VALUES ('staging', 1)")
    before = script.snapshot(tmp_path)

    (tmp_path / "data" / "validated" / "train.parquet").write_bytes(b"other rows")
    with sqlite3.connect(tmp_path / ".tuneforge" / "registry.db") as db:
        db.execute("UPDATE aliases SET version = 2")
    (tmp_path / ".tuneforge" / "artifacts" / "ab12").write_bytes(b"blob")

    assert script.describe_changes(before, script.snapshot(tmp_path)) == [
        "blob:ab12 added", "db:aliases 1 rows -> 1 rows", "file:data/validated/train.parquet modified",
    ]


def test_error_lines_are_ours_and_dvc_summary_lines_apart():
    script = load_script()
    ours, dvc = script.error_lines(
        "validate: error: examples/intents.csv: file is empty\n"
        "ERROR: failed to reproduce 'validate': failed to run: python -m stages.validate, exited with 1\n"
    )
    assert ours == ["validate: error: examples/intents.csv: file is empty"] and len(dvc) == 1
    result = script.Result("x", "files", "tuneforge run", ["empty"], 1, ours[0], 1, True, traceback=True)
    assert not result.clean and script.why_not(result) == "traceback"
