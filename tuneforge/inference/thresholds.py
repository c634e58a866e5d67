"""Multi-label decisions: a sigmoid per label, and the label set of the labels at or above their thresholds.

The thresholds are the rule's calibration, chosen on val logits (`fit_thresholds`):
  - one global threshold, the one that maximises macro-F1 when every label uses it;
  - per label, the one that maximises that label's F1, for labels with at least MIN_SUPPORT positive val rows;
    a label with fewer keeps the global one (a threshold fitted on two examples is noise).
Candidates are a grid of GRID_STEP over (0, 1); among equally good ones the middle of the best run is taken,
so a threshold sits inside the plateau it was chosen from rather than on its edge.

A calibration is {"threshold": global, "per_label": [t_0, ..., t_{n-1}]} in the order of the model's labels
(labels.json holds both); an uncalibrated model predicts at 0.5. No torch: the server runs this.
"""

import math
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

from tuneforge.base.errors import StageError
from tuneforge.data.label_sets import encode_label_set

DEFAULT_THRESHOLD = 0.5
MIN_SUPPORT = 5  # positive val rows a label needs for a threshold of its own
GRID_STEP = 0.01
_GRID = np.round(np.arange(GRID_STEP, 1.0, GRID_STEP), 6)


def sigmoid_scores(logits: np.ndarray, calibration: Mapping) -> np.ndarray:
    # exp(-log(1 + e^-x)): no overflow for very negative logits, as 1 / (1 + e^-x) would warn.
    return np.exp(-np.logaddexp(0.0, -np.asarray(logits, dtype=np.float64)))


def thresholds_of(calibration: Mapping, count: int) -> np.ndarray:
    per_label = calibration.get("per_label")
    if per_label is not None:
        return np.asarray(per_label, dtype=np.float64)
    return np.full(count, calibration.get("threshold", DEFAULT_THRESHOLD), dtype=np.float64)


def chosen(scores: np.ndarray, calibration: Mapping) -> np.ndarray:
    """(rows, labels) booleans: which labels each row is predicted to carry."""
    scores = np.asarray(scores, dtype=np.float64)
    return scores >= thresholds_of(calibration, scores.shape[1])


def label_sets(scores: np.ndarray, labels: list[str], calibration: Mapping) -> list[str]:
    """The predicted label set of each row, as the canonical cell the label column holds (so a prediction
    equals its truth exactly when every label is right)."""
    return [encode_label_set(labels[j] for j in np.flatnonzero(row)) for row in chosen(scores, calibration)]


def predictions(scores: np.ndarray, labels: list[str], k: int, calibration: Mapping) -> list[dict]:
    """Per row: `label`, the predicted labels (most probable first, possibly none); `score`, the highest score
    of a predicted label (else the highest score); `top`, every predicted label then the likeliest others, k
    at least, each with its score and threshold (a predicted label may score below an unpredicted one when
    their thresholds differ: it is listed all the same)."""
    scores = np.asarray(scores, dtype=np.float64)
    limits, picked = thresholds_of(calibration, scores.shape[1]), chosen(scores, calibration)
    results = []
    for row, row_picked in zip(scores, picked, strict=True):
        order = np.argsort(-row, kind="stable")
        predicted = [j for j in order if row_picked[j]]
        others = [j for j in order if not row_picked[j]]
        shown = predicted + others[: max(0, min(len(labels), max(k, 1)) - len(predicted))]
        results.append({
            "label": [labels[j] for j in predicted],
            "score": round(float(row[shown[0]]), 6),
            "top": [{"label": labels[j], "score": round(float(row[j]), 6), "threshold": float(limits[j])}
                    for j in shown],
        })
    return results


def _f1_per_threshold(probabilities: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(grid, labels) F1 of each label at each grid threshold (0 where a label has no positives either way)."""
    positive = truth.astype(bool)
    predicted = probabilities[None, :, :] >= _GRID[:, None, None]  # (grid, rows, labels)
    true_positives = (predicted & positive[None]).sum(axis=1)
    denominator = predicted.sum(axis=1) + positive.sum(axis=0)[None, :]
    return np.divide(2 * true_positives, denominator, out=np.zeros(denominator.shape), where=denominator > 0)


def _middle_of_best(values: np.ndarray) -> float:
    best = np.flatnonzero(np.isclose(values, values.max(), rtol=0, atol=1e-12))
    run = best[: np.argmax(np.diff(np.append(best, best[-1] + 2)) > 1) + 1]  # the first unbroken run
    return float(_GRID[run[len(run) // 2]])


def fit_thresholds(logits: np.ndarray, truth: np.ndarray) -> dict:
    """{"threshold", "per_label"} maximising val F1 (see the module docstring); `truth` is the (rows, labels)
    0/1 matrix. Rows are needed: an empty val set has nothing to choose by, and keeps the default."""
    truth = np.asarray(truth)
    if truth.size == 0:
        return {}
    f1 = _f1_per_threshold(sigmoid_scores(logits, {}), truth)
    global_threshold = _middle_of_best(f1.mean(axis=1))
    support = truth.sum(axis=0)
    per_label = [
        _middle_of_best(f1[:, j]) if support[j] >= MIN_SUPPORT else global_threshold for j in range(truth.shape[1])
    ]
    return {"threshold": global_threshold, "per_label": per_label}


def describe(calibration: Mapping, labels: list[str]) -> dict:
    """thresholds.json: each label's threshold by name, and whether it is its own or the global fallback."""
    limits = thresholds_of(calibration, len(labels))
    global_threshold = calibration.get("threshold", DEFAULT_THRESHOLD)
    return {
        "global": global_threshold, "min_support": MIN_SUPPORT, "grid_step": GRID_STEP,
        "chosen_to": "maximise F1 on val",
        "labels": {label: float(limit) for label, limit in zip(labels, limits, strict=True)},
    }


def check_thresholds(calibration: object, where: str, labels: list[str] | None = None) -> Mapping:
    if not isinstance(calibration, dict):
        raise StageError(f"{where}: calibration must be a mapping like {{\"threshold\": 0.5}}, got {calibration!r}")
    unknown = sorted(set(calibration) - {"threshold", "per_label"})
    if unknown:
        raise StageError(f"{where}: unknown calibration key(s) {', '.join(unknown)} (thresholds take: threshold, "
                         "per_label)")
    checked = {}
    if "threshold" in calibration:
        checked["threshold"] = unit_number(calibration["threshold"], f"{where}: calibration threshold")
    if "per_label" in calibration:
        per_label = calibration["per_label"]
        if not isinstance(per_label, list):
            raise StageError(f"{where}: calibration per_label must be a list of thresholds, one per label")
        if labels is not None and len(per_label) != len(labels):
            raise StageError(
                f"{where}: calibration per_label has {len(per_label)} thresholds for {len(labels)} labels"
            )
        checked["per_label"] = [
            unit_number(value, f"{where}: calibration per_label[{i}]" + (f" ({labels[i]})" if labels else ""))
            for i, value in enumerate(per_label)
        ]
    return MappingProxyType(checked)


def unit_number(value: object, what: str) -> float:
    """A calibration value read from a file that must be a finite number in [0, 1], or one line naming `what`."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    try:
        usable = number and math.isfinite(float(value)) and 0 <= float(value) <= 1
    except OverflowError:
        usable = False
    if not usable:
        raise StageError(f"{what} must be a number in [0, 1], got {value!r}")
    return float(value)
