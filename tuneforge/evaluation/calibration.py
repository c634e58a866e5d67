"""Calibration: does a model that says 90% sure turn out right 90% of the time?

Fitting a calibration (a softmax temperature) is the output rule's (tuneforge/inference/outputs.py); this
module measures one: reliability bins, the expected calibration error and the negative log-likelihood.

Top-1 confidences are grouped in equal-width bins over [0, 1] (bin i holds (i/n, (i+1)/n]; the first
also holds 0). The expected calibration error (Guo et al., 2017) is the row-weighted mean gap between
each bin's accuracy and its mean confidence: ECE = sum_b |B_b| / N * |acc(B_b) - conf(B_b)|.
"""

from collections.abc import Mapping, Sequence

import numpy as np

from tuneforge.inference.outputs import negative_log_likelihood, tempered_softmax


def reliability_bins(confidence: Sequence[float], correct: Sequence[bool], bins: int) -> list[dict]:
    """Every bin: index, lower, upper, count, and (for non-empty bins) mean confidence, accuracy and gap."""
    confidence = np.asarray(confidence, dtype=float)
    correct = np.asarray(correct, dtype=bool)
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    if confidence.shape != correct.shape:
        raise ValueError(f"confidence and correct differ in length: {confidence.shape} vs {correct.shape}")
    if confidence.size and (confidence.min() < 0 or confidence.max() > 1):
        raise ValueError("confidences must lie in [0, 1]")
    # As sklearn's calibration_curve: a confidence equal to an inner edge goes to the lower bin.
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.searchsorted(edges[1:-1], confidence, side="left")
    table = []
    for i in range(bins):
        members = index == i
        count = int(members.sum())
        row = {"bin": i, "lower": i / bins, "upper": (i + 1) / bins, "count": count}
        if count:
            mean_confidence = float(confidence[members].mean())
            accuracy = float(correct[members].mean())
            row |= {"confidence": mean_confidence, "accuracy": accuracy, "gap": accuracy - mean_confidence}
        table.append(row)
    return table


def expected_calibration_error(confidence: Sequence[float], correct: Sequence[bool], bins: int) -> float:
    table = reliability_bins(confidence, correct, bins)
    total = sum(row["count"] for row in table)
    if total == 0:
        raise ValueError("expected calibration error of no predictions")
    return float(sum(row["count"] * abs(row["gap"]) for row in table if row["count"]) / total)


def softmax_calibration(logits: np.ndarray, calibration: Mapping, truth: Sequence[int], bins: int) -> dict:
    """ECE, NLL and the reliability bins of single-label softmax scores at the calibration's temperature: the
    top score is the confidence, right when it is the true label's (the NLL exact, from the logits)."""
    truth = np.asarray(truth, dtype=int)
    scores = tempered_softmax(logits, calibration)
    confidence, correct = scores.max(axis=1), scores.argmax(axis=1) == truth
    return {
        "ece": expected_calibration_error(confidence, correct, bins),
        "nll": negative_log_likelihood(logits, truth, calibration.get("temperature", 1.0)),
        "bins": reliability_bins(confidence, correct, bins),
    }
