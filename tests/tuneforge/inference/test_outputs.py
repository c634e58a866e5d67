"""tuneforge/inference/outputs.py: logits into predictions, and the temperature that calibrates them."""

import math

import numpy as np
import pytest

from tuneforge.base.errors import StageError
from tuneforge.evaluation.calibration import softmax_calibration
from tuneforge.inference.outputs import ARGMAX, NO_CALIBRATION, negative_log_likelihood, rule_named, softmax

LABELS = ["a", "b", "c", "d", "e"]


def sampled(temperature: float, rows: int = 6000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels drawn from softmax(logits / temperature): `temperature` is the true calibration."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=4.0, size=(rows, len(LABELS)))
    probabilities = softmax(logits / temperature)
    truth = np.array([rng.choice(len(LABELS), p=row) for row in probabilities])
    return logits, truth


@pytest.mark.parametrize("true_temperature", [0.5, 1.0, 2.5])
def test_the_fitted_temperature_is_the_one_the_labels_were_drawn_with(true_temperature):
    logits, truth = sampled(true_temperature)
    fitted = ARGMAX.fit(logits, truth)["temperature"]
    assert fitted == pytest.approx(true_temperature, rel=0.08)
    assert negative_log_likelihood(logits, truth, fitted) <= negative_log_likelihood(logits, truth, 1.0) + 1e-12


def test_an_overconfident_model_becomes_calibrated_and_keeps_its_predictions():
    val_logits, val_truth = sampled(3.0, seed=1)
    test_logits, test_truth = sampled(3.0, seed=2)
    calibration = ARGMAX.fit(val_logits, val_truth)
    raw = ARGMAX.scores(test_logits, NO_CALIBRATION)
    calibrated = ARGMAX.scores(test_logits, calibration)
    assert ARGMAX.predicted(raw, LABELS, NO_CALIBRATION) == ARGMAX.predicted(calibrated, LABELS, calibration)
    before = softmax_calibration(test_logits, NO_CALIBRATION, test_truth, 15)
    after = softmax_calibration(test_logits, calibration, test_truth, 15)
    assert before["ece"] > 0.15 and after["ece"] < 0.03, (before, after)  # overconfident by a factor of 3
    assert after["nll"] < before["nll"]
    assert np.allclose(calibrated, softmax(test_logits / calibration["temperature"]))


@pytest.mark.parametrize("value", [0, -1.0, math.inf, math.nan, "2", True, None, 10**400])
def test_a_bad_temperature_is_refused_naming_the_file(value):
    with pytest.raises(StageError, match=r"^models/x/labels.json: calibration temperature must be a finite number"):
        ARGMAX.check({"temperature": value}, "models/x/labels.json")


def test_a_calibration_key_the_rule_does_not_take_is_refused():
    assert ARGMAX.check({"temperature": 2}, "f") == {"temperature": 2.0}
    assert ARGMAX.check({}, "f") == {}  # never calibrated: told apart from a fitted 1.0
    for not_a_mapping in (0, False, [], "t=2"):
        with pytest.raises(StageError, match=r"^f: calibration must be a mapping"):
            ARGMAX.check(not_a_mapping, "f")
    takes = r"\(argmax takes: temperature, reject_below, reject_label\)"
    with pytest.raises(StageError, match=rf"^f: unknown calibration key\(s\) thresholds {takes}$"):
        ARGMAX.check({"temperature": 2, "thresholds": [0.5]}, "f")


def test_an_unknown_decision_rule_is_one_line():
    known = r"\(known: argmax, thresholds\)"
    with pytest.raises(StageError, match=rf"^f: decision 'sigmoid' is not known to this tuneforge {known}$"):
        rule_named("sigmoid", "f")


def test_a_val_set_that_cannot_pin_the_temperature_leaves_the_scores_as_trained():
    """Every val row right by a wide margin: the NLL keeps falling as T -> 0; shipping T = 0.05 would turn
    every later score into 1.0. The fit says so by fitting nothing."""
    truth = np.arange(40) % len(LABELS)
    logits = np.full((40, len(LABELS)), -10.0)
    logits[np.arange(40), truth] = 10.0
    assert ARGMAX.fit(logits, truth) == {}
    assert ARGMAX.scores(logits, {}) == pytest.approx(softmax(logits))
