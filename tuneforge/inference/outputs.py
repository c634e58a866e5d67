"""Model outputs into predictions: one rule per kind of head, the same code wherever a model answers.

Evaluate, distill and export (through the task), `tuneforge predict`, the monitor and the server (through the
rule an exported folder names in labels.json) all turn logits into scores and predicted labels here, so a
task's decision is written once. No torch: the server and `tuneforge predict` run without it.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tuneforge.base.errors import StageError


@dataclass(frozen=True)
class OutputRule:
    name: str  # recorded as "decision" in an exported labels.json; the loader picks the rule by it
    # (rows, labels) logits -> (rows, labels) scores in [0, 1]
    scores: Callable[[np.ndarray], np.ndarray]
    # scores, labels -> the predicted label of each row
    predicted: Callable[[np.ndarray, list[str]], list]
    # scores, labels, k -> per row {"label", "score", "top": [{"label", "score"}, ...]} (k best labels)
    predictions: Callable[[np.ndarray, list[str], int], list[dict]]


def softmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def most_probable(scores: np.ndarray, labels: list[str]) -> list[str]:
    return [labels[i] for i in np.asarray(scores).argmax(axis=1)]


def top_k(scores: np.ndarray, labels: list[str], k: int) -> list[dict]:
    k = max(1, min(k, len(labels)))
    results = []
    for row in np.asarray(scores, dtype=np.float64):
        best = np.argsort(-row, kind="stable")[:k]
        top = [{"label": labels[i], "score": round(float(row[i]), 6)} for i in best]
        results.append({"label": top[0]["label"], "score": top[0]["score"], "top": top})
    return results


# Single-label classification: softmax scores, the most probable label.
ARGMAX = OutputRule(name="argmax", scores=softmax, predicted=most_probable, predictions=top_k)
RULES = {rule.name: rule for rule in (ARGMAX,)}


def labels_from_logits(rule: OutputRule, logits: np.ndarray, labels: list[str]) -> list:
    """The predicted label of each row of `logits`, by `rule`."""
    return rule.predicted(rule.scores(logits), labels)


def rule_named(name: str, where: str) -> OutputRule:
    """The rule an exported folder names; an unknown one (a newer tuneforge's export) is one line."""
    if name not in RULES:
        raise StageError(f"{where}: decision '{name}' is not known to this tuneforge (known: {', '.join(RULES)})")
    return RULES[name]
