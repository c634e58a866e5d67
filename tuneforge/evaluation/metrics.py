"""Classification metrics on label strings: sklearn computes them, these functions give them one shape.

Macro and weighted averages run over the labels that occur in the test split or in the predictions
(sklearn's default), so a label the model knows but neither sees nor predicts does not count as a zero.
The per-class table lists every label the model knows, with its support.
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

HEADLINE = (
    "accuracy", "macro_f1", "weighted_f1", "macro_precision", "macro_recall", "weighted_precision",
    "weighted_recall",
)


def classification_metrics(y_true: Sequence[str], y_pred: Sequence[str]) -> dict[str, float]:
    """accuracy, macro_/weighted_ precision, recall and f1 (undefined precision or recall counts as 0)."""
    metrics = {"accuracy": float(accuracy_score(y_true, y_pred))}
    for average in ("macro", "weighted"):
        precision, recall, f1, _ = precision_recall_fscore_support(
            y_true, y_pred, average=average, zero_division=0
        )
        metrics |= {f"{average}_precision": float(precision), f"{average}_recall": float(recall),
                    f"{average}_f1": float(f1)}
    return {key: metrics[key] for key in HEADLINE}


def per_class_table(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> pd.DataFrame:
    """One row per label: precision, recall, f1, support (true rows) and predicted (rows predicted as it)."""
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=list(labels), average=None, zero_division=0
    )
    predicted = pd.Series(list(y_pred)).value_counts()
    return pd.DataFrame(
        {
            "label": list(labels),
            "precision": precision.astype(float),
            "recall": recall.astype(float),
            "f1": f1.astype(float),
            "support": support.astype(int),
            "predicted": [int(predicted.get(label, 0)) for label in labels],
        }
    )


def confusion(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Counts: row = true label, column = predicted label, in `labels` order."""
    return confusion_matrix(y_true, y_pred, labels=list(labels))


def top_confusions(frame: pd.DataFrame, count: int, examples: int) -> list[dict]:
    """The `count` most frequent (label, predicted) mistakes, each with its share of the true label's rows
    and up to `examples` of its most confident rows. `frame` has text, label, predicted, confidence."""
    if count == 0:
        return []
    support = frame["label"].value_counts()
    wrong = frame[frame["label"] != frame["predicted"]]
    pairs = wrong.groupby(["label", "predicted"], sort=False).size().reset_index(name="count")
    pairs = pairs.sort_values(["count", "label", "predicted"], ascending=[False, True, True]).head(count)
    listed = []
    for row in pairs.itertuples(index=False):
        mistakes = wrong[(wrong["label"] == row.label) & (wrong["predicted"] == row.predicted)]
        confident = mistakes.sort_values("confidence", ascending=False, kind="stable").head(examples)
        listed.append({
            "label": row.label,
            "predicted": row.predicted,
            "count": int(row.count),
            "share_of_label": float(row.count / support[row.label]),
            "examples": [
                {"text": text, "confidence": float(confidence)}
                for text, confidence in zip(confident["text"], confident["confidence"], strict=True)
            ],
        })
    return listed


def mcnemar_test(candidate_correct: Sequence[bool], baseline_correct: Sequence[bool]) -> dict:
    """McNemar's exact test on paired correctness: do the two models err on the same rows at the same rate?

    Only the discordant rows carry information: b (candidate right, baseline wrong) and c (the reverse).
    Under the null hypothesis b ~ Binomial(b + c, 1/2); the exact two-sided p-value is statsmodels'.
    """
    from statsmodels.stats.contingency_tables import mcnemar

    candidate = np.asarray(candidate_correct, dtype=bool)
    baseline = np.asarray(baseline_correct, dtype=bool)
    if candidate.shape != baseline.shape:
        raise ValueError(f"paired predictions differ in length: {candidate.shape} vs {baseline.shape}")
    table = np.array([
        [int(np.sum(candidate & baseline)), int(np.sum(candidate & ~baseline))],
        [int(np.sum(~candidate & baseline)), int(np.sum(~candidate & ~baseline))],
    ])
    discordant = table[0, 1] + table[1, 0]
    # With no discordant pairs the models are indistinguishable on this split: p = 1 by definition.
    p_value = float(mcnemar(table, exact=True).pvalue) if discordant else 1.0
    return {
        "method": "McNemar exact (binomial) test, two-sided",
        "both_correct": int(table[0, 0]),
        "only_candidate_correct": int(table[0, 1]),
        "only_baseline_correct": int(table[1, 0]),
        "both_wrong": int(table[1, 1]),
        "statistic": int(min(table[0, 1], table[1, 0])),
        "p_value": p_value,
    }


# Metrics where a smaller value is the better one (errors and losses); every other metric is better higher.
LOWER_IS_BETTER = frozenset({"ece", "nll", "ece_calibrated", "nll_calibrated", "hamming_loss", "rejected_share"})


def metric_deltas(candidate: dict[str, float], baseline: dict[str, float]) -> dict[str, dict[str, float]]:
    """{metric: {candidate, baseline, delta}} for every metric both sides have (delta = candidate - baseline)."""
    return {
        name: {"candidate": candidate[name], "baseline": baseline[name], "delta": candidate[name] - baseline[name]}
        for name in candidate
        if name in baseline
    }


def per_class_deltas(candidate: pd.DataFrame, baseline: pd.DataFrame) -> pd.DataFrame:
    """Per label (candidate's order): support and the candidate's, baseline's and delta of precision, recall, f1."""
    joined = candidate.merge(baseline, on="label", how="left", suffixes=("", "_baseline"))
    table = pd.DataFrame({"label": joined["label"], "support": joined["support"]})
    for metric in ("precision", "recall", "f1"):
        table[f"{metric}_candidate"] = joined[metric]
        table[f"{metric}_baseline"] = joined[f"{metric}_baseline"]
        table[f"{metric}_delta"] = joined[metric] - joined[f"{metric}_baseline"]
    return table
