"""CI's run of the open-set banking77 benchmark (issue #13): `benchmarks/open_set.py --quick` in a clean clone.

The script draws the known intents of a banking77 subset by seed, writes the open-set files outside the repository,
runs `tuneforge run --config configs/banking77.yaml` in a clone of the project with a tiny model and a few steps,
and keeps the (ratio, seed) result: the figures it reports are the stages' own, the open rows are all test rows,
and a second invocation reuses the kept result instead of training again.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.e2e


def run_script(clone: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(clone), TMPDIR=str(tmp_path))
    env.pop("TUNEFORGE_RUN_ID", None)
    env.pop("TUNEFORGE_RUN_PARAMETERS", None)
    return subprocess.run([sys.executable, "benchmarks/open_set.py", *args], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=1200)


def test_the_quick_open_set_benchmark_keeps_its_run_and_reports_the_stages_own_figures(project_clone, tmp_path):
    results, figures_path = tmp_path / "open_set.json", tmp_path / "figures.json"
    done = run_script(project_clone, tmp_path, "--quick", "--results", str(results), "--json", str(figures_path))
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    figures = json.loads(figures_path.read_text())
    run = figures["runs"]["0.75/0"]
    assert (run["known"], run["intents"]) == (6, 8)
    clone = Path(run["clone"])

    # The protocol: only known intents are trained on; every open row is a test row, none fits the threshold.
    train = pd.read_parquet(clone / "data/splits/train.parquet")
    assert set(train["label"]) == set(run["known_intents"])
    assert len(pd.read_parquet(clone / "data/splits/oos_val.parquet")) == 0
    open_rows = pd.read_parquet(clone / "reports/evaluate/oos_predictions.parquet")
    assert len(open_rows) == run["open_test_rows"] > 0
    assert not set(open_rows["label"]) & set(run["known_intents"])

    # The figures are the stages' own, for the teacher (evaluate) and the shipped int8 student (export).
    evaluate = json.loads((clone / "reports/metrics/evaluate.json").read_text())
    export = json.loads((clone / "reports/metrics/export.json").read_text())
    for key in ("accuracy_with_oos", "macro_f1_with_oos", "oos_recall"):
        assert run["teacher"][key] == evaluate[key] and run["int8"][key] == export[key]
        assert 0 <= run["teacher"][key] <= 1
    assert open_rows["rejected"].mean() == pytest.approx(evaluate["oos_recall"])
    row = figures["table"][0]
    assert (row["ratio"], row["teacher_seeds"], row["int8_seeds"]) == (0.75, 1, 1)
    assert row["teacher_macro_f1_with_oos"] == pytest.approx(100 * evaluate["macro_f1_with_oos"])
    assert any("ADB 81.08 / 85.96 (published)" in line for line in figures["markdown"])

    again = run_script(project_clone, tmp_path, "--quick", "--results", str(results))
    assert again.returncode == 0 and "ratio 0.75, seed 0: kept from" in again.stdout, again.stdout[-2000:]
    assert json.loads(results.read_text())["runs"]["0.75/0"]["finished"] == run["finished"]
