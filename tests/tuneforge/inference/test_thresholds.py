"""Multi-label decisions: per-label thresholds chosen on val, checked when read, applied by every caller."""

import numpy as np
import pytest

from tuneforge.base.errors import StageError
from tuneforge.inference.outputs import THRESHOLDS, labels_from_logits, rule_named
from tuneforge.inference.thresholds import MIN_SUPPORT, describe, fit_thresholds

LABELS = ["a", "b", "c"]


def logit(p):
    p = np.asarray(p, dtype=np.float64)
    return np.log(p / (1 - p))


def test_a_label_that_needs_a_low_threshold_gets_one_and_a_rare_label_falls_back_to_the_global():
    rng = np.random.default_rng(0)
    rows = 200
    truth = np.zeros((rows, 3))
    truth[:100, 0] = 1  # a: positives score 0.3-0.4, negatives 0.05-0.15 -> best cut about 0.16-0.3
    truth[:, 1] = rng.integers(0, 2, rows)  # b: positives 0.7-0.9, negatives 0.1-0.6 -> cut about 0.61-0.7
    truth[:MIN_SUPPORT - 1, 2] = 1  # c: too few positives for a threshold of its own
    probabilities = np.where(truth[:, [0]] == 1, rng.uniform(0.3, 0.4, (rows, 1)), rng.uniform(0.05, 0.15, (rows, 1)))
    probabilities = np.hstack([
        probabilities,
        np.where(truth[:, [1]] == 1, rng.uniform(0.7, 0.9, (rows, 1)), rng.uniform(0.1, 0.6, (rows, 1))),
        rng.uniform(0.0, 1.0, (rows, 1)),
    ])
    fitted = fit_thresholds(logit(probabilities), truth)

    a, b, c = fitted["per_label"]
    assert 0.15 < a <= 0.3 and 0.6 < b <= 0.7
    assert c == fitted["threshold"], "a label with too little val support keeps the global threshold"
    predicted = labels_from_logits(THRESHOLDS, logit(probabilities), LABELS, fitted)
    assert all('"a"' in cell for cell in predicted[:100]) and not any('"a"' in cell for cell in predicted[100:])
    assert describe(fitted, LABELS)["labels"] == dict(zip(LABELS, fitted["per_label"], strict=True))


def test_uncalibrated_predictions_cut_at_one_half_and_list_the_set_most_probable_first():
    scores = THRESHOLDS.scores(logit([[0.9, 0.2, 0.6], [0.1, 0.2, 0.3]]), {})
    assert THRESHOLDS.predicted(scores, LABELS, {}) == ['["a","c"]', "[]"]
    first, second = THRESHOLDS.predictions(scores, LABELS, 1, {})
    assert first["label"] == ["a", "c"] and [t["label"] for t in first["top"]] == ["a", "c"]
    assert second["label"] == [] and [t["label"] for t in second["top"]] == ["c"]
    assert first["top"][0] == {"label": "a", "score": 0.9, "threshold": 0.5}


@pytest.mark.parametrize("calibration, message", [
    ({"threshold": 1.5}, r"calibration threshold must be a number in \[0, 1\], got 1.5"),
    ({"threshold": "0.5"}, r"calibration threshold must be a number in \[0, 1\], got '0.5'"),
    ({"per_label": [0.5, -0.1, 0.5]}, r"calibration per_label\[1\] \(b\) must be a number in \[0, 1\], got -0.1"),
    ({"per_label": [0.5, 0.5]}, r"calibration per_label has 2 thresholds for 3 labels"),
    ({"temperature": 2.0}, r"unknown calibration key\(s\) temperature"),
    ([0.5], r"calibration must be a mapping"),
])
def test_a_threshold_out_of_range_is_refused_in_one_line_naming_the_file(calibration, message):
    with pytest.raises(StageError, match=rf"^models/onnx/labels.json: {message}"):
        rule_named("thresholds", "models/onnx/labels.json").check(calibration, "models/onnx/labels.json", LABELS)


def test_a_checked_calibration_keeps_its_numbers():
    checked = THRESHOLDS.check({"threshold": 0.4, "per_label": [0.3, 1, 0]}, "f", LABELS)
    assert dict(checked) == {"threshold": 0.4, "per_label": [0.3, 1.0, 0.0]}


def test_a_predicted_label_is_listed_even_when_an_unpredicted_one_scores_higher():
    # a is over its low threshold at 0.35; c scores 0.5 but its threshold is 0.7.
    (row,) = THRESHOLDS.predictions(np.array([[0.35, 0.5, 0.1]]), ["a", "c", "d"], 1, {"per_label": [0.3, 0.7, 0.5]})
    assert row["label"] == ["a"] and row["score"] == 0.35
    assert [top["label"] for top in row["top"]] == ["a"]
    (wide,) = THRESHOLDS.predictions(np.array([[0.35, 0.5, 0.1]]), ["a", "c", "d"], 3, {"per_label": [0.3, 0.7, 0.5]})
    assert [top["label"] for top in wide["top"]] == ["a", "c", "d"]


def test_very_negative_logits_give_zero_scores_without_overflow_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert THRESHOLDS.scores(np.array([[-1000.0, 1000.0]]), {}).tolist() == [[0.0, 1.0]]
