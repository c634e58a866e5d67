"""Rejection judged on out-of-scope rows (data.oos_file): the open-set metrics, and a threshold fitted on them.

The inference side (tuneforge/inference/rejection.py: the rule, the keep-in-scope fit) stays free of sklearn,
since the server imports it; what needs out-of-scope rows lives here, where evaluate and export use it.
"""

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from tuneforge.base.errors import StageError

CANDIDATES = 201  # thresholds tried by fit_rejection_on_oos: every half percentile of the top scores


def fit_rejection_on_oos(
    scores: np.ndarray, truth: list[str], oos_scores: np.ndarray, label: str, labels: list[str]
) -> dict:
    """{"reject_below", "reject_label"}: of candidate thresholds (quantiles of every top score), the one with the
    highest open-set macro-F1 (open_set_metrics) on in-scope rows (`scores`, `truth`) and out-of-scope rows;
    among equal ones the lowest, which rejects least."""
    if label in labels:
        raise StageError(f"reject.label: '{label}' is one of the model's labels; choose a name outside the label set")
    scores, oos_scores = np.asarray(scores, dtype=np.float64), np.asarray(oos_scores, dtype=np.float64)
    tops = np.concatenate([scores.max(axis=1), oos_scores.max(axis=1)])
    candidates = np.unique(np.floor(np.quantile(tops, np.linspace(0, 1, CANDIDATES)) * 1e6) / 1e6)
    predicted = [labels[i] for i in scores.argmax(axis=1)]
    oos_predicted = [labels[i] for i in oos_scores.argmax(axis=1)]

    def macro_f1(threshold: float) -> float:
        return open_set_metrics(truth, predicted, scores.max(axis=1) < threshold, oos_predicted,
                                oos_scores.max(axis=1) < threshold, label, labels)["macro_f1_with_oos"]

    found = [macro_f1(threshold) for threshold in candidates]
    return {"reject_below": float(candidates[int(np.argmax(found))]), "reject_label": label}


def open_set_metrics(
    truth: list[str], predicted: list[str], rejected: np.ndarray, oos_predicted: list[str], oos_rejected: np.ndarray,
    label: str, labels: list[str],
) -> dict:
    """In-scope rows (their truth, the classifier's answer, whether rejected) and out-of-scope rows scored together,
    with the reject label as one more class: out-of-scope recall, precision and F1; accuracy over every row; and
    macro-F1 over the labels plus the reject label (the open-set protocol of Shu et al. 2017 and Zhang et al.
    2021)."""
    rejected, oos_rejected = np.asarray(rejected, dtype=bool), np.asarray(oos_rejected, dtype=bool)
    caught, wrongly = int(oos_rejected.sum()), int(rejected.sum())
    recall = caught / len(oos_rejected) if len(oos_rejected) else 0.0
    precision = caught / (caught + wrongly) if caught + wrongly else 0.0
    all_truth = [*truth, *[label] * len(oos_rejected)]
    answers = [label if no else answer for answer, no in zip([*predicted, *oos_predicted],
                                                               [*rejected, *oos_rejected], strict=True)]
    return {
        "oos_recall": recall, "oos_precision": precision,
        "oos_f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "accuracy_with_oos": accuracy_score(all_truth, answers),
        "macro_f1_with_oos": float(f1_score(all_truth, answers, labels=[*labels, label], average="macro",
                                            zero_division=0)),
        "oos_rows": len(oos_rejected),
    }


def choose_rejection(rule, reject, val_scores: np.ndarray, val_truth: list[str], oos_val_scores, labels: list[str]):
    """The rejection threshold on calibrated val scores (`reject`: the spec's RejectConfig): by the share of
    in-scope rows to keep (the output rule's fit), or with reject.fit oos by open-set macro-F1 on the
    out-of-scope val rows too."""
    if reject.fit == "oos":
        if oos_val_scores is None:
            raise StageError("reject.fit: oos, but split wrote no out-of-scope val rows (data/splits/oos_val.parquet):"
                             " raise split.oos_val_fraction, or rerun split")
        return fit_rejection_on_oos(val_scores, val_truth, oos_val_scores, reject.label, labels)
    return rule.fit_rejection(val_scores, reject.keep_in_scope, reject.label, labels)
