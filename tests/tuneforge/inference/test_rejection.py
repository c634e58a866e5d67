"""Out-of-scope rejection: the threshold keeps the declared share of in-scope val rows; the argmax rule applies it."""

import numpy as np
import pytest

from tuneforge.base.errors import ConfigError, StageError
from tuneforge.inference.outputs import ARGMAX
from tuneforge.inference.rejection import fit_rejection, rejected_rows, require_rejection

LABELS = ["card", "refund", "transfer"]


def test_the_threshold_is_the_highest_that_keeps_the_declared_share():
    top = np.linspace(0.40, 0.99, 100)  # 100 val rows, top scores spread out (each its row's maximum)
    scores = np.column_stack([top, (1 - top) / 2, (1 - top) / 2])
    fitted = fit_rejection(scores, 0.95, "out_of_scope", LABELS)
    assert fitted == {"reject_below": pytest.approx(top[5], abs=1e-6), "reject_label": "out_of_scope"}
    assert fitted["reject_below"] <= top[5]
    kept = ~rejected_rows(scores, fitted)
    assert kept.sum() == 95 and kept.mean() >= 0.95
    # A stricter share keeps more rows, so its threshold is lower.
    assert fit_rejection(scores, 0.99, "out_of_scope", LABELS)["reject_below"] < fitted["reject_below"]


def test_a_reject_label_that_is_a_class_is_refused():
    with pytest.raises(StageError, match=r"^reject.label: 'refund' is one of the model's labels"):
        fit_rejection(np.full((4, 3), 1 / 3), 0.9, "refund", LABELS)


def test_argmax_answers_the_reject_label_below_the_threshold_and_keeps_the_top_labels():
    calibration = ARGMAX.check({"temperature": 1.0, "reject_below": 0.6, "reject_label": "out_of_scope"}, "f",
                               LABELS)
    scores = np.array([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25]])
    assert ARGMAX.predicted(scores, LABELS, calibration) == ["card", "out_of_scope"]
    kept, rejected = ARGMAX.predictions(scores, LABELS, 2, calibration)
    assert kept["label"] == "card" and kept["score"] == 0.7
    assert rejected["label"] == "out_of_scope" and rejected["score"] == 0.4
    assert [top["label"] for top in rejected["top"]] == ["card", "refund"]


@pytest.mark.parametrize("calibration, message", [
    ({"reject_below": 1.2, "reject_label": "oos"}, r"calibration reject_below must be a number in \[0, 1\], got 1.2"),
    ({"reject_below": 0.5}, r"calibration has reject_below without reject_label"),
    ({"reject_below": 0.5, "reject_label": "card"}, r"calibration reject_label 'card' is one of the model's labels"),
    ({"reject_below": 0.5, "reject_label": ""}, r"calibration reject_label must be a non-empty string"),
])
def test_a_bad_rejection_in_labels_json_is_one_line_naming_the_file(calibration, message):
    with pytest.raises(StageError, match=rf"^models/onnx/labels.json: {message}"):
        ARGMAX.check(calibration, "models/onnx/labels.json", LABELS)


def test_rejection_for_a_rule_without_it_is_refused_by_name():
    with pytest.raises(ConfigError, match=r"^reject.enabled: rejection applies to single-label classification, not "
                                          r"to model.task multi-label-classification"):
        require_rejection(None, True, "multi-label-classification")
    require_rejection(None, False, "multi-label-classification")  # off: nothing to refuse
