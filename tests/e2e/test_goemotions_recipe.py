"""CI's run of the GoEmotions benchmark (issue #13): `benchmarks/goemotions.py --quick` in a clean clone of the project.

The script clones that project, runs `tuneforge run --config configs/goemotions.yaml` there on a subset of
GoEmotions written in the shipped format (headerless TSV, label ids, labels.txt) with a tiny model and a few steps
(benchmarks/quick_data.py), and measures the teacher and the shipped int8 student with a global threshold and with
per-label thresholds. The whole multi-label chain runs through register, the figures it reports are the run's own,
and the shipped model predicts label sets.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers.project import BANKING77
from tuneforge.data.label_sets import label_lists

pytestmark = pytest.mark.e2e
GOEMOTIONS = BANKING77.parent / "goemotions"


def test_the_quick_goemotions_benchmark_runs_the_multi_label_chain_and_measures_both_threshold_modes(
    project_clone, tmp_path
):
    if not (GOEMOTIONS / "train.tsv").is_file():
        pytest.skip("../shared/datasets/goemotions is not beside the repo")
    figures_path = tmp_path / "goemotions.json"
    # The script's clone and quick inputs go under TMPDIR: here, this test's own folder.
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(project_clone), TMPDIR=str(tmp_path))
    env.pop("TUNEFORGE_RUN_ID", None)
    env.pop("TUNEFORGE_RUN_PARAMETERS", None)
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "benchmarks/goemotions.py", "--quick", "--data", str(GOEMOTIONS), "--json", str(figures_path)],
        cwd=project_clone, env=env, capture_output=True, text=True, timeout=1200,
    )
    print(f"goemotions.py --quick: {time.perf_counter() - began:.0f} s")
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    figures = json.loads(figures_path.read_text())
    run_dir = Path(figures["run"]["path"])
    assert run_dir.is_relative_to(tmp_path) and figures["quick"] is True
    assert "per-label" in done.stdout and "published: BERT-base macro-F1 0.46" in done.stdout

    def metrics(stage):
        return json.loads((run_dir / f"reports/metrics/{stage}.json").read_text())

    # The recipe ran through register, and its cost was measured around it.
    assert figures["recipe_run"]["returncode"] == 0 and "configs/goemotions.yaml" in figures["recipe_run"]["command"]
    assert figures["cost"]["cpu_seconds"] > 0 and figures["cost"]["wall_seconds"] > 0
    assert "recipe_run.py" in figures["cost"]["source"] and {"train", "export", "register"} <= set(
        figures["cost"]["stages"])
    assert figures["run"]["train"]["max_steps"] == 6 and figures["run"]["teacher_trained"]["global_step"] == 6
    registered = json.loads((run_dir / "reports/register/model_version.json").read_text())
    assert registered["model"] == "goemotions" and {"teacher", "student", "onnx_int8"} <= set(registered["roles"])

    # Both models, both threshold modes, every score a fraction; the per-label teacher is evaluate's own procedure.
    names = (GOEMOTIONS / "labels.txt").read_text().split()
    split = pd.read_parquet(run_dir / "data/splits/test.parquet")
    assert figures["labels"] == names and figures["test_rows"] == len(split)
    for model in ("teacher", "int8"):
        found = figures["models"][model]
        assert 0 < found["global_threshold"] < 1 and len(found["per_label_thresholds"]) == 28
        for mode in ("global", "per_label"):
            for metric in ("macro_f1", "micro_f1", "samples_f1", "accuracy"):
                assert 0 <= found[mode][metric] <= 1, (model, mode, metric)
    assert figures["models"]["teacher"]["per_label"]["macro_f1"] == pytest.approx(metrics("evaluate")["macro_f1"],
                                                                                   abs=1e-6)
    assert figures["cross_check"]["teacher_difference"] <= 1e-6
    assert figures["models"]["int8"]["shipped_calibration_matches"] is True
    assert figures["models"]["int8"]["per_label"]["macro_f1"] == pytest.approx(metrics("export")["macro_f1"], abs=1e-6)
    assert set(figures["goals"]) == {"teacher per-label macro-F1", "int8 student's drop from the teacher"}
    assert figures["published"]["macro_f1"] == 0.46 and "published" in figures["published"]["source"]

    # What the chain wrote: 28 labels, the given val and test files, label sets, thresholds shipped.
    assert metrics("validate")["classes"] == 28
    assert {label for row in label_lists(split["label"]) for label in row} <= set(names)
    assert metrics("split")["test_source"] == "given" and metrics("split")["val_source"] == "given"
    assert {"macro_f1", "micro_f1", "samples_f1", "hamming_loss", "mean_average_precision"} <= set(metrics("evaluate"))
    assert metrics("export")["parity_passed"] is True
    shipped = json.loads((run_dir / "models/onnx/labels.json").read_text())
    assert shipped["decision"] == "thresholds" and shipped["labels"] == names
    assert len(json.loads((run_dir / "models/onnx/thresholds.json").read_text())["labels"]) == 28

    env["PYTHONPATH"] = str(run_dir)
    predicted = subprocess.run(
        [sys.executable, "-m", "tuneforge.cli", "predict", "models/onnx", "I love this so much", "--json"],
        cwd=run_dir, env=env, capture_output=True, text=True, timeout=120,
    )
    assert predicted.returncode == 0, predicted.stderr
    result = json.loads(predicted.stdout)
    assert isinstance(result["label"], list) and set(result["label"]) <= set(names)
