"""The drift monitor on a multi-label production version (the real pipeline on label-set data, real Evidently,
real onnxruntime, the registry): the prediction signal compares the predicted label sets, held-out rows of the
same source are not flagged and texts of another topic are, and a labelled batch (JSONL lists) becomes retrain
data that the data stages accept with the returned overrides and production's test split pinned."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from flows.finetune import run_assignments
from flows.monitor import check_with_data_stages
from stages import monitor, split, validate
from tests.helpers.monitor import (
    checked_batches,
    held_out_rows,
    in_project,
    multi_label_production_project,
    shifted_label_set_rows,
)
from tests.helpers.multi_label import EMOTIONS
from tuneforge.base.layout import EXPECTATIONS_DIR, Workspace
from tuneforge.base.outputs import sha256_file
from tuneforge.data.label_sets import decode_label_set
from tuneforge.params import load_params
from tuneforge.params.overrides import apply_to_params_file

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return multi_label_production_project(tmp_path_factory)


@pytest.fixture(autouse=True)
def _in_project(project, monkeypatch):
    yield from in_project(project, monkeypatch)


@pytest.fixture(scope="module")
def checked(project) -> dict:
    return checked_batches(project, ("in_distribution.jsonl", "shifted.jsonl"))


def test_held_out_rows_are_not_flagged_and_the_predictions_compared_are_label_sets(checked, project):
    summary = checked["in_distribution.jsonl"]
    assert summary["production"]["ref"] == "emotions:1"
    assert summary["batch"]["rows"] == summary["batch"]["labelled_rows"] == len(held_out_rows(project))
    assert summary["drift"] is False and summary["drifted_signals"] == []
    predictions = summary["signals"]["predictions"]
    assert (predictions["predicted"], predictions["method"]) == ("label set", "permutation")
    assert predictions["p_value"] >= 0.05
    shares = {**predictions["reference"], **predictions["new"]}
    assert all(set(decode_label_set(label_set)) <= set(EMOTIONS) for label_set in shares)
    assert predictions["labels"] == len(shares) > 1, "the model predicts different sets for different texts"
    assert sum(predictions["reference"].values()) == pytest.approx(1, abs=1e-5)
    # The embeddings are the multi-label teacher's mean-pooled hidden states (the tiny BERT's 32 dimensions).
    assert summary["signals"]["embeddings"]["dimensions"] == 32
    assert summary["signals"]["embeddings"]["drifted"] is False


def test_another_topic_moves_the_predicted_label_sets_and_every_signal_drifts(checked, project):
    summary = checked["shifted.jsonl"]
    assert (summary["batch"]["rows"], summary["batch"]["labelled_rows"]) == (60, 55)
    assert summary["drift"] is True and summary["drifted_signals"] == ["descriptors", "predictions", "embeddings"]
    predictions = summary["signals"]["predictions"]
    assert predictions["p_value"] < 0.01 and predictions["score"] > predictions["threshold"]
    assert predictions["new"] != predictions["reference"]
    page = (project / summary["report"]["html"]).read_text()
    assert "DRIFT: 3 of 3 signals drifted (2 needed)" in page
    assert "predicted label sets&#x27; Jensen-Shannon distance" in page and "distinct label sets" in page


def test_a_labelled_batch_becomes_retrain_data_the_data_stages_accept(checked, project, tmp_path):
    params = load_params("params.yaml")
    prepared = monitor.retrain_data(params, checked["shifted.jsonl"], "batches/shifted.jsonl",
                                    check_data=check_with_data_stages)
    assert prepared["status"] == "prepared"
    assert prepared["overrides"] == ["data.train_file=merged_train.parquet", "data.test_file=test.jsonl"]
    production_test = pd.read_parquet(project / "data/splits/test.parquet")
    assert prepared["rows"]["added"] == 55 and prepared["rows"]["test"] == len(production_test)

    folder = project / prepared["data_dir"]
    merged = pd.read_parquet(folder / "merged_train.parquet")
    assert list(merged.columns) == ["text", "labels"]
    added = shifted_label_set_rows()[:55]
    assert [list(cell) for cell in merged["labels"].iloc[-55:]] == [row["labels"] for row in added]
    pinned = [json.loads(line) for line in (folder / "test.jsonl").read_text().splitlines() if line]
    assert all(isinstance(row["labels"], list) for row in pinned), "label sets as lists, as the spec reads them"

    # The retrain's spec as the finetune flow writes it, and its data stages run for real.
    spec = shutil.copy(project / "params.yaml", tmp_path / "params.yaml")
    after = apply_to_params_file(spec, run_assignments(prepared["overrides"], prepared["data_dir"], None))
    out = Workspace(tmp_path / "scratch", expectations=EXPECTATIONS_DIR)
    validate.run(after.data, after.validate_, model_cfg=after.model, workspace=out)
    split.run(after.split, model_cfg=after.model, workspace=out)
    labels = json.loads((out.validated / "labels.json").read_text())["labels"]
    assert labels == json.loads((project / "data/validated/labels.json").read_text())["labels"]
    assert sha256_file(out.test_split) == sha256_file(project / "data/splits/test.parquet"), "production's test split"
    trained_on = pd.concat([pd.read_parquet(out.splits / f"{name}.parquet") for name in ("train", "val")])
    assert {row["text"] for row in added} <= set(trained_on["text"])
