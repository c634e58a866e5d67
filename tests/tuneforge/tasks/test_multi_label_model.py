"""The multi-label task's numbers, checked against counts worked out by hand."""

import math

import numpy as np
import pytest
import torch

from tuneforge.tasks.multi_label_model import (
    distillation_loss,
    measure_calibration,
    per_label_table,
    positive_weights,
    ranking_metrics,
    score,
)

TRUTH = ['["a"]', '["a","b"]', "[]"]
PREDICTED = ['["a"]', '["a"]', '["b"]']


def test_label_set_metrics_match_the_counts():
    # a: 2 right, no mistake (F1 1); b: one missed, one spurious (F1 0). Micro: tp 2, fp 1, fn 1.
    # Samples F1: row 1 is 1, row 2 is 2/3 (half the labels found), row 3 is 0 (a label where none is).
    metrics = score(TRUTH, PREDICTED)
    assert metrics == pytest.approx({
        "macro_f1": 0.5, "micro_f1": 2 / 3, "samples_f1": (1 + 2 / 3 + 0) / 3, "accuracy": 1 / 3,
        "hamming_loss": 2 / 6,
    })


def test_the_per_label_table_counts_rows_carrying_and_given_each_label():
    table = per_label_table(TRUTH, PREDICTED, ["a", "b", "c"])
    assert table.to_dict(orient="list") == {
        "label": ["a", "b", "c"], "precision": [1.0, 0.0, 0.0], "recall": [1.0, 0.0, 0.0], "f1": [1.0, 0.0, 0.0],
        "support": [2, 1, 0], "predicted": [2, 1, 0],
    }


def test_mean_average_precision_ranks_by_score_over_labels_with_a_positive():
    truth = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]])
    # a ranks its two positives first (AP 1); b ranks a negative first: positives at ranks 2 and 3 -> AP
    # (1/2 + 2/3) / 2; c has no positive and is left out.
    scores = np.array([[0.9, 0.8, 0.1], [0.2, 0.3, 0.1], [0.8, 0.2, 0.1]])
    assert ranking_metrics(scores, truth) == pytest.approx({"mean_average_precision": (1 + (1 / 2 + 2 / 3) / 2) / 2})


def test_calibration_of_coin_flip_scores_is_perfect_and_costs_log_two():
    measured = measure_calibration(np.zeros((4, 2)), {}, np.array([[1, 0], [0, 1], [1, 0], [0, 1]]), 10)
    assert measured["ece"] == pytest.approx(0.0) and measured["nll"] == pytest.approx(math.log(2))
    assert [row["count"] for row in measured["bins"] if row["count"]] == [8]


def test_positive_weights_are_negatives_over_positives():
    assert positive_weights(np.array([[1, 0], [1, 1], [0, 0], [0, 0]])).tolist() == [1.0, 3.0]


def test_sigmoid_distillation_is_hard_bce_plus_softened_bce_to_the_teacher():
    student, teacher = torch.tensor([[2.0, -1.0]]), torch.tensor([[4.0, 0.0]])
    labels = torch.tensor([[1.0, 0.0]])
    loss = distillation_loss(student, teacher, labels, alpha=0.25, temperature=2.0)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    expected = 0.25 * bce(student, labels) + 0.75 * 4 * bce(student / 2, torch.sigmoid(teacher / 2))
    assert loss.item() == pytest.approx(expected.item())
    # Only the hard labels at alpha 1: the teacher does not matter.
    assert distillation_loss(student, -teacher, labels, alpha=1.0, temperature=2.0).item() == pytest.approx(
        bce(student, labels).item())


def test_degenerate_label_sets_score_without_a_traceback_and_every_key_is_there():
    keys = {"macro_f1", "micro_f1", "samples_f1", "accuracy", "hamming_loss"}
    # One label in the whole split: sklearn would take a single column for a binary problem.
    one = score(['["a"]', '["a"]'], ['["a"]', "[]"])
    assert set(one) == keys and one["macro_f1"] == pytest.approx(2 / 3) and one["samples_f1"] == 0.5
    # No label anywhere, predicted none: every row is right.
    none = score(["[]", "[]"], ["[]", "[]"])
    assert set(none) == keys and none["accuracy"] == 1.0 and none["samples_f1"] == 1.0


def test_the_per_label_table_leaves_out_labels_another_model_uses():
    table = per_label_table(['["a","x"]', '["b"]'], ['["a","z"]', "[]"], ["a", "b"])
    assert table["label"].tolist() == ["a", "b"] and table["support"].tolist() == [1, 1]
    assert table["predicted"].tolist() == [1, 0]


def test_a_single_label_cell_read_as_a_label_set_is_one_line():
    from tuneforge.base.errors import StageError
    from tuneforge.data.label_sets import label_lists

    with pytest.raises(StageError, match=r"^label cell 'greeting' is not a label set .*model.task: multi-label"):
        label_lists(["greeting"])
