"""The train stage with model.task multi-label-classification: a sigmoid head trained with binary cross-entropy."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from tests.helpers.multi_label import ML_LABELS, multi_label_frame, write_multi_label_data
from tests.helpers.training import build_tiny_bert, run_train, tiny_train, trained_logits, write_classification_data
from tuneforge.base.errors import ConfigError, StageError
from tuneforge.data.label_sets import multi_hot

pytestmark = pytest.mark.usefixtures("one_thread")
TASK = "multi-label-classification"


def build_tiny_multi_label_bert(directory):
    """The tiny BERT with a vocabulary of the multi-label test data's words."""
    texts = pd.concat([multi_label_frame(n, seed) for n, seed in ((120, 1), (40, 2), (40, 3))])["text"]
    return build_tiny_bert(directory, texts)


@pytest.fixture(scope="module")
def tiny_ml_bert(tmp_path_factory):
    return build_tiny_multi_label_bert(tmp_path_factory.mktemp("tiny-ml-bert"))


@pytest.fixture
def project(tmp_path):
    return write_multi_label_data(tmp_path)


def sigmoid_scores(directory, texts):
    return torch.sigmoid(trained_logits(directory, texts)[0]).numpy()


def test_a_sigmoid_head_learns_every_label_of_a_row(project, tiny_ml_bert):
    run_train(project, tiny_ml_bert, tiny_train(max_steps=150, eval_steps=50, dropout=0.0), task=TASK)
    teacher = project / "models/teacher"

    config = json.loads((teacher / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    assert [config["id2label"][str(i)] for i in range(3)] == ML_LABELS
    meta = json.loads((teacher / "meta.json").read_text())
    history = meta["history"]
    assert [row["step"] for row in history] == [50, 100, 150]
    assert set(history[0]) >= {"val_macro_f1", "val_micro_f1", "val_accuracy"}
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert meta["best"]["metric"] == "macro_f1"

    val = pd.read_parquet(project / "data/splits/val.parquet")
    truth = multi_hot(val["label"], ML_LABELS)
    predicted = sigmoid_scores(teacher, list(val["text"])) >= 0.5
    # Per (row, label) decision: half the labels of a row are there, so a constant answer is right half the time.
    assert (predicted == truth.astype(bool)).mean() > 0.7
    assert meta["best"]["value"] > 0.7


def test_pos_weight_weighs_each_label_by_its_negatives_over_positives(project, tiny_ml_bert):
    run_train(project, tiny_ml_bert, tiny_train(max_steps=10, eval_steps=10, pos_weight=True), task=TASK)
    meta = json.loads((project / "models/teacher/meta.json").read_text())
    train = multi_hot(pd.read_parquet(project / "data/augmented/train.parquet")["label"], ML_LABELS)
    positives = train.sum(axis=0)
    expected = (len(train) - positives) / positives
    assert [meta["pos_weight"][label] for label in ML_LABELS] == pytest.approx(np.round(expected, 4))


def test_label_smoothing_is_refused_for_multi_label(project, tiny_ml_bert):
    with pytest.raises(ConfigError, match=r"^train.label_smoothing: applies to single-label"):
        run_train(project, tiny_ml_bert, tiny_train(label_smoothing=0.1), task=TASK)
    assert not (project / "models/teacher").exists()


def test_single_label_splits_are_refused_by_a_multi_label_spec(tmp_path, tiny_ml_bert):
    write_classification_data(tmp_path)
    with pytest.raises(StageError, match=r"train.parquet: its label column does not hold label lists"):
        run_train(tmp_path, tiny_ml_bert, tiny_train(), task=TASK)
    assert not (tmp_path / "models/teacher").exists()


def test_a_label_no_training_row_carries_is_refused(project, tiny_ml_bert):
    labels = project / "data/validated/labels.json"
    labels.write_text(json.dumps({"labels": [*ML_LABELS, "returns"]}))
    with pytest.raises(StageError, match=r"no training row carries returns; rerun the split stage"):
        run_train(project, tiny_ml_bert, tiny_train(), task=TASK)


def test_pos_weight_is_refused_for_single_label_before_a_model_loads(tmp_path, tiny_bert):
    write_classification_data(tmp_path)
    with pytest.raises(ConfigError, match=r"^train.pos_weight: applies to multi-label classification only"):
        run_train(tmp_path, tiny_bert, tiny_train(pos_weight=True))


def test_a_tune_space_with_label_smoothing_is_refused_for_multi_label_by_its_key():
    from tuneforge.base.spec import TuneConfig
    from tuneforge.tasks import get_task
    from tuneforge.tuning.space import check_space

    space = {"label_smoothing": {"type": "float", "low": 0.0, "high": 0.2}}
    with pytest.raises(ConfigError, match=r"^tune.space.label_smoothing.high: 0.2 is refused .*train.label_smoothing"):
        check_space(TuneConfig(space=space), tiny_train(), get_task(TASK).check_train_config)
