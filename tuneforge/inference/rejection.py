"""Out-of-scope rejection for single-label models: below a threshold on the calibrated top score, no class.

A model trained on a closed label set answers every text with one of its labels, also texts about something
else. With rejection, a text whose top score (the calibrated softmax probability of its likeliest class, the
maximum softmax probability of Hendrycks and Gimpel 2017) is below `reject_below` gets `reject_label` instead.
The threshold is chosen on val: for a declared share of in-scope rows to keep (`reject.keep_in_scope`), the
highest threshold that keeps at least that share; or, given out-of-scope val rows (`data.oos_file`, `reject.fit:
oos`), the threshold with the highest macro-F1 over the labels and the reject label as one more class
(tuneforge/evaluation/open_set.py, which also scores rejection on out-of-scope rows). The threshold is part of
the argmax rule's calibration in labels.json, so `tuneforge predict`, the monitor and the server reject the
same texts.
"""

import math
from collections.abc import Mapping

import numpy as np

from tuneforge.base.errors import ConfigError, StageError
from tuneforge.inference.thresholds import unit_number

KEYS = ("reject_below", "reject_label")


def require_rejection(fit, enabled: bool, task_name: str) -> None:
    """reject.enabled for a task whose output rule has no rejection (`fit`, the rule's fit_rejection, is None)."""
    if enabled and fit is None:
        raise ConfigError(f"reject.enabled: rejection applies to single-label classification, not to model.task "
                          f"{task_name} (set it to false)")


def fit_rejection(scores: np.ndarray, keep_in_scope: float, label: str, labels: list[str]) -> dict:
    """{"reject_below", "reject_label"} from calibrated in-scope val scores: at least `keep_in_scope` of the rows
    score at or above the threshold (with ties, more)."""
    if label in labels:
        raise StageError(f"reject.label: '{label}' is one of the model's labels; choose a name outside the label set")
    top = np.sort(np.asarray(scores, dtype=np.float64).max(axis=1))
    if top.size == 0:
        return {}
    # The rows below index r are rejected: r = floor((1 - keep) * n) keeps n - r >= keep * n rows.
    rejected = math.floor((1 - keep_in_scope) * len(top) + 1e-9)
    # Rounded down, never up: a threshold rounded above the kept row's own score would reject it.
    return {"reject_below": math.floor(float(top[rejected]) * 1e6) / 1e6, "reject_label": label}


def rejected_rows(scores: np.ndarray, calibration: Mapping) -> np.ndarray:
    """Which rows the calibration rejects (none without a threshold)."""
    scores = np.asarray(scores, dtype=np.float64)
    if "reject_below" not in calibration:
        return np.zeros(len(scores), dtype=bool)
    return scores.max(axis=1) < calibration["reject_below"]


def check_rejection(calibration: Mapping, where: str, labels: list[str] | None) -> dict:
    """The rejection keys of a calibration read from a file, checked: both or neither, a threshold in [0, 1], a
    label outside the label set."""
    present = [key for key in KEYS if key in calibration]
    if not present:
        return {}
    if len(present) == 1:
        missing = next(key for key in KEYS if key not in calibration)
        raise StageError(f"{where}: calibration has {present[0]} without {missing}")
    below = unit_number(calibration["reject_below"], f"{where}: calibration reject_below")
    label = calibration["reject_label"]
    if not isinstance(label, str) or not label.strip():
        raise StageError(f"{where}: calibration reject_label must be a non-empty string, got {label!r}")
    if labels is not None and label in labels:
        raise StageError(f"{where}: calibration reject_label '{label}' is one of the model's labels")
    return {"reject_below": below, "reject_label": label}
