"""Multi-label through train, evaluate, distill, export and predict, on a tiny BERT and keyword data."""

import ast
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stages import distill, evaluate, export
from tests.helpers.multi_label import ML_LABELS, write_multi_label_data
from tests.helpers.student import tiny_distill, tiny_export
from tests.helpers.training import run_train, tiny_model, tiny_train
from tests.stages.test_multi_label_train import build_tiny_multi_label_bert
from tuneforge.base.layout import Workspace
from tuneforge.base.spec import EvaluateConfig
from tuneforge.data.label_sets import multi_hot
from tuneforge.inference import onnx_predictor
from tuneforge.inference.thresholds import fit_thresholds
from tuneforge.tasks.multi_label_model import score

pytestmark = pytest.mark.usefixtures("one_thread")
TASK = "multi-label-classification"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Trained, evaluated, distilled and exported once for the module (tests read it, never change it)."""
    root = write_multi_label_data(tmp_path_factory.mktemp("multi-label"))
    base = build_tiny_multi_label_bert(tmp_path_factory.mktemp("base"))
    model_cfg = tiny_model(base, task=TASK)
    run_train(root, base, tiny_train(max_steps=150, eval_steps=50, dropout=0.0), task=TASK)
    workspace = Workspace(root)
    evaluate.run(EvaluateConfig(compare_alias=None), model_cfg=model_cfg, workspace=workspace)
    distill.run(tiny_distill(max_steps=100, num_layers=1), tiny_train(), model_cfg=model_cfg, workspace=workspace)
    export.run(tiny_export(), model_cfg=model_cfg, workspace=workspace)
    return root


def test_evaluate_reports_label_set_metrics_at_thresholds_fitted_on_val(project):
    metrics = json.loads((project / "reports/evaluate/metrics.json").read_text())
    for name in ("macro_f1", "micro_f1", "samples_f1", "accuracy", "hamming_loss", "mean_average_precision",
                 "ece", "ece_calibrated", "nll"):
        assert 0 <= metrics[name] <= 1 or name == "nll", name
    assert metrics["macro_f1"] > 0.7
    assert sorted(metrics["per_class"]) == ML_LABELS
    assert metrics["calibration"]["fitted"]["threshold"] == pytest.approx(metrics["calibration"]["fitted"]["threshold"])
    predictions = pd.read_parquet(project / "reports/evaluate/predictions.parquet")
    # The headline numbers are the predictions' own: recomputed from the written rows.
    assert score(list(predictions["label"]), list(predictions["predicted"]))["macro_f1"] == pytest.approx(
        metrics["macro_f1"])
    assert metrics["accuracy"] == pytest.approx(predictions["correct"].mean())
    per_class = pd.read_csv(project / "reports/evaluate/per_class.csv")
    truth = multi_hot(predictions["label"], ML_LABELS)
    assert list(per_class["support"]) == truth.sum(axis=0).astype(int).tolist()
    # No single-label artifacts: a label set has no confusion matrix.
    assert not (project / "reports/evaluate/confusion_matrix.csv").exists()
    assert (project / "reports/evaluate/reliability.json").is_file()


def test_export_ships_the_thresholds_fitted_on_val_and_predict_uses_them(project):
    onnx = project / "models/onnx"
    shipped = json.loads((onnx / "labels.json").read_text())
    assert shipped["decision"] == "thresholds" and shipped["labels"] == ML_LABELS
    thresholds = shipped["calibration"]
    described = json.loads((onnx / "thresholds.json").read_text())
    assert list(described["labels"].values()) == thresholds["per_label"]

    classifier = onnx_predictor.load(onnx)
    val = pd.read_parquet(project / "data/splits/val.parquet")
    # Dynamic int8 quantizes activations per batch: the same batches as the stage, the same logits.
    val_logits = onnx_predictor.logits(classifier, list(val["text"]), batch_size=tiny_export().batch_size)
    assert fit_thresholds(val_logits, multi_hot(val["label"], ML_LABELS)) == thresholds

    test = pd.read_parquet(project / "data/splits/test.parquet")
    results = onnx_predictor.predict(classifier, list(test["text"]), top_k=3)
    logits = onnx_predictor.logits(classifier, list(test["text"]))
    probabilities = 1 / (1 + np.exp(-logits))
    for result, row in zip(results, probabilities, strict=True):
        expected = [ML_LABELS[j] for j in np.argsort(-row, kind="stable") if row[j] >= thresholds["per_label"][j]]
        assert result["label"] == expected
        assert [top["label"] for top in result["top"]] == [ML_LABELS[j] for j in np.argsort(-row, kind="stable")]

    parity = json.loads((project / "reports/export/parity.json").read_text())
    assert parity["int8_vs_fp32"]["metric"] == "macro_f1"
    meta = json.loads((onnx / "meta.json").read_text())
    assert meta["calibration"]["fitted"] == thresholds


def test_distill_trains_a_sigmoid_student_and_scores_it_at_its_own_thresholds(project):
    assert json.loads((project / "models/student/config.json").read_text())["problem_type"] == (
        "multi_label_classification")
    metrics = json.loads((project / "reports/metrics/distill.json").read_text())
    evaluated = json.loads((project / "reports/evaluate/metrics.json").read_text())
    # The teacher at thresholds fitted on val, as evaluate scores it: the same test macro-F1.
    assert metrics["teacher_macro_f1"] == pytest.approx(evaluated["macro_f1"])
    assert metrics["student_macro_f1"] > 0.6
    assert metrics["f1_retention"] == pytest.approx(metrics["student_macro_f1"] / metrics["teacher_macro_f1"], abs=1e-6)


def test_the_server_answers_with_the_label_set_over_http(project):
    import httpx

    from tuneforge.serving.loadtest import server_process

    (project / "params.yaml").write_text("{}\n")
    texts = ["my parcel is late and the invoice is wrong", "my password is locked"]
    repo = str(Path(__file__).resolve().parents[2])  # this checkout's tuneforge, whatever is installed
    with server_process("models/onnx", cwd=project, sets=["serve.traffic.enabled=false"],
                        env={"PYTHONPATH": repo}) as server:
        answer = httpx.post(f"{server.url}/v1/predict", json={"texts": texts}, timeout=30).json()
        described = httpx.get(f"{server.url}/v1/model", timeout=30).json()
    expected = onnx_predictor.predict(onnx_predictor.load(project / "models/onnx"), texts)
    assert [row["prediction"] for row in answer["predictions"]] == [row["label"] for row in expected]
    assert all(isinstance(row["prediction"], list) for row in answer["predictions"])
    assert described["decision"] == "thresholds"
    assert described["calibration"] == json.loads((project / "models/onnx/labels.json").read_text())["calibration"]


def test_the_model_card_says_how_label_sets_are_decided_and_its_example_runs(project, monkeypatch, capsys):
    card = (project / "models/onnx/README.md").read_text()
    assert "Multi-label text classifier" in card and "one sigmoid per label" in card
    example = card.split("```python\n", 1)[1].split("```", 1)[0].replace("my card was declined", "my parcel is late")
    monkeypatch.chdir(project / "models/onnx")
    exec(example, {})  # the card's own example, as a user would paste it
    expected = onnx_predictor.predict(onnx_predictor.load(project / "models/onnx"), ["my parcel is late"])[0]
    assert sorted(ast.literal_eval(capsys.readouterr().out)) == sorted(expected["label"])
