"""Model outputs into predictions: one rule per kind of head, the same code wherever a model answers.

Evaluate, distill and export (through the task), `tuneforge predict`, the monitor and the server (through the
rule an exported folder names in labels.json) all turn logits into scores and predicted labels here, so a
task's decision is written once. No torch: the server and `tuneforge predict` run without it.

A rule may be calibrated: `fit` learns its calibration from held-out logits and their true labels (the
export stage fits it on val and ships it in labels.json), and every other function takes that calibration.
ARGMAX's calibration is a softmax temperature (Guo et al., 2017): the logits are divided by the T that
minimises the val negative log-likelihood; the predicted label never changes, its score becomes honest.
THRESHOLDS (multi-label) scores each label by its own sigmoid and predicts every label whose score reaches
its threshold; its calibration is those thresholds, chosen on val to maximise F1 (tuneforge/inference/
thresholds.py). TAGS (token classification) scores each word of a sentence by a softmax over the tags, at one
temperature fitted on every val word, and predicts each word's most probable tag: its logits are one (words,
labels) array per sentence, its predictions tag sequences as the label column holds them (a JSON array cell).
"""

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from tuneforge.base.errors import StageError
from tuneforge.inference import rejection, thresholds

NO_CALIBRATION: Mapping = MappingProxyType({})
# The temperatures searched: wide enough for any model seen (0.3 sharpens, 20 flattens). A fit that ends on a
# bound means val cannot pin T down (every row right by a wide margin drives it towards 0, a val set the model
# gets wrong with confidence towards infinity): the scores are then left as trained.
TEMPERATURE_RANGE = (0.05, 100.0)
# A fit that lowers the mean val NLL by less than this (nats) has found nothing worth shipping: a val set
# right everywhere by a wide margin is flat in T down to the float precision.
MIN_NLL_GAIN = 1e-4


def top_score(scores: np.ndarray) -> np.ndarray:
    """The highest score of each row."""
    return np.asarray(scores).max(axis=1)


@dataclass(frozen=True)
class OutputRule:
    name: str  # recorded as "decision" in an exported labels.json; the loader picks the rule by it
    # (rows, labels) logits, calibration -> (rows, labels) scores in [0, 1]
    scores: Callable[[np.ndarray, Mapping], np.ndarray]
    # scores, labels, calibration -> the predicted label of each row (a rule with decision thresholds reads
    # them from the calibration; argmax has none and ignores it)
    predicted: Callable[[np.ndarray, list[str], Mapping], list]
    # scores, labels, k, calibration -> per row {"label", "score", "top": [{"label", "score"}, ...]} (k best)
    predictions: Callable[[np.ndarray, list[str], int, Mapping], list[dict]]
    # held-out logits, their true label indices -> the calibration every call above takes
    fit: Callable[[np.ndarray, np.ndarray], dict]
    # a calibration read from a file, where, the model's labels -> the same, checked (a StageError naming
    # `where` when it is unusable)
    check: Callable[..., Mapping]
    # a file written beside labels.json for people (the calibration by label name, and how it was chosen), and
    # (calibration, labels) -> its content; None: labels.json says it all
    report_file: str | None = None
    describe: Callable[[Mapping, list[str]], dict] | None = None
    # (calibrated val scores, share to keep, the answer for rejected rows, labels) -> the calibration keys that
    # reject out-of-scope rows; None: the rule has no rejection (reject.enabled is refused)
    fit_rejection: Callable[..., dict] | None = None
    # whether the calibration changes which labels are predicted (thresholds do; a temperature never does):
    # a model compared with others is then judged at its own calibration
    calibration_decides: bool = False
    predicts: str = "label"  # what one prediction is, as reports name it
    # scores -> the confidence of each row's prediction (evaluate's `confidence` column): its top score
    confidence: Callable[[np.ndarray], np.ndarray] = top_score


def softmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def tempered_softmax(logits: np.ndarray, calibration: Mapping) -> np.ndarray:
    return softmax(np.asarray(logits, dtype=np.float64) / calibration.get("temperature", 1.0))


def negative_log_likelihood(logits: np.ndarray, truth: np.ndarray, temperature: float = 1.0) -> float:
    """Mean -log p(true label) under softmax(logits / temperature), exact (a log-softmax, no clipping)."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    shifted = scaled - scaled.max(axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probabilities[np.arange(len(truth)), np.asarray(truth)].mean())


def fit_temperature(logits: np.ndarray, truth: np.ndarray) -> dict:
    """{"temperature": T} minimising the NLL of the true labels (a bounded search on log T: the NLL is convex
    in 1/T, so there is one minimum); {} when the minimum lies on a bound or beats T = 1 by less than
    MIN_NLL_GAIN."""
    from scipy.optimize import minimize_scalar  # only the stages fit; predict and the server never load scipy

    low, high = (math.log(bound) for bound in TEMPERATURE_RANGE)
    found = minimize_scalar(
        lambda log_t: negative_log_likelihood(logits, truth, math.exp(log_t)), bounds=(low, high), method="bounded",
        options={"xatol": 1e-4},
    )
    on_bound = min(found.x - low, high - found.x) < 1e-3
    if on_bound or found.fun > negative_log_likelihood(logits, truth) - MIN_NLL_GAIN:
        return {}
    return {"temperature": round(math.exp(found.x), 6)}


def check_temperature(calibration: object, where: str, labels: list[str] | None = None) -> Mapping:
    if not isinstance(calibration, dict):
        raise StageError(f"{where}: calibration must be a mapping like {{\"temperature\": 1.5}}, got {calibration!r}")
    unknown = sorted(set(calibration) - {"temperature", *rejection.KEYS})
    if unknown:
        raise StageError(
            f"{where}: unknown calibration key(s) {', '.join(unknown)} (argmax takes: temperature, "
            f"{', '.join(rejection.KEYS)})"
        )
    rejecting = rejection.check_rejection(calibration, where, labels)
    if "temperature" not in calibration:
        return MappingProxyType(rejecting) if rejecting else NO_CALIBRATION
    temperature = calibration["temperature"]
    number = isinstance(temperature, int | float) and not isinstance(temperature, bool)
    try:  # float() of a huge JSON integer overflows
        usable = number and math.isfinite(float(temperature)) and float(temperature) > 0
    except OverflowError:
        usable = False
    if not usable:
        raise StageError(f"{where}: calibration temperature must be a finite number above 0, got {temperature!r}")
    return MappingProxyType({"temperature": float(temperature), **rejecting})


def most_probable(scores: np.ndarray, labels: list[str], calibration: Mapping) -> list[str]:
    """The likeliest label of each row, or the calibration's reject_label where its top score is below
    reject_below (tuneforge/inference/rejection.py)."""
    rejected = rejection.rejected_rows(scores, calibration)
    return [calibration["reject_label"] if out else labels[i]
            for i, out in zip(np.asarray(scores).argmax(axis=1), rejected, strict=True)]


def top_k(scores: np.ndarray, labels: list[str], k: int, calibration: Mapping) -> list[dict]:
    """`label` and `score`: the likeliest label and its score (the reject_label for a rejected row, with the top
    score that fell short); `top`: the k likeliest labels either way."""
    k = max(1, min(k, len(labels)))
    scores = np.asarray(scores, dtype=np.float64)
    results = []
    for row, out in zip(scores, rejection.rejected_rows(scores, calibration), strict=True):
        best = np.argsort(-row, kind="stable")[:k]
        top = [{"label": labels[i], "score": round(float(row[i]), 6)} for i in best]
        label = calibration["reject_label"] if out else top[0]["label"]
        results.append({"label": label, "score": top[0]["score"], "top": top})
    return results


# Single-label classification: softmax scores (temperature-scaled), the most probable label.
ARGMAX = OutputRule(
    name="argmax", scores=tempered_softmax, predicted=most_probable, predictions=top_k, fit=fit_temperature,
    check=check_temperature, fit_rejection=rejection.fit_rejection,
)
# Multi-label classification: one sigmoid per label, every label at or above its threshold.
THRESHOLDS = OutputRule(
    name="thresholds", scores=thresholds.sigmoid_scores, predicted=thresholds.label_sets,
    predictions=thresholds.predictions, fit=thresholds.fit_thresholds, check=thresholds.check_thresholds,
    report_file="thresholds.json", describe=thresholds.describe, calibration_decides=True,
    predicts="label set",
)


def word_scores(logits: list[np.ndarray], calibration: Mapping) -> list[np.ndarray]:
    """Each sentence's (words, labels) softmax scores at the calibration's temperature."""
    return [tempered_softmax(sentence, calibration) for sentence in logits]


def tag_cell(tags: list[str]) -> str:
    """A tag sequence as the label column holds it (tuneforge/data/token_files.py encode_tags: compact JSON)."""
    return json.dumps(list(tags), ensure_ascii=False, separators=(",", ":"))


def word_tags(scores: list[np.ndarray], labels: list[str], calibration: Mapping) -> list[str]:
    """Each sentence's most probable tag per word, as a tag cell."""
    return [tag_cell([labels[i] for i in np.asarray(sentence).argmax(axis=1)]) for sentence in scores]


def word_predictions(scores: list[np.ndarray], labels: list[str], k: int, calibration: Mapping) -> list[dict]:
    """Per sentence: `label` (the tags), `score` (its least sure word's top score) and `words`: each word's tag,
    score and k most probable tags."""
    results = []
    for sentence in scores:
        words = top_k(sentence, labels, k, NO_CALIBRATION)
        results.append({"label": [word["label"] for word in words], "score": min(word["score"] for word in words),
                        "words": words})
    return results


def fit_word_temperature(logits: list[np.ndarray], truth: list[np.ndarray]) -> dict:
    """One temperature for every word of every sentence (fit_temperature over the words)."""
    return fit_temperature(np.concatenate(logits), np.concatenate(truth))


def check_word_temperature(calibration: object, where: str, labels: list[str] | None = None) -> Mapping:
    """A temperature only: a tagger has no out-of-scope rejection."""
    if isinstance(calibration, dict) and set(calibration) - {"temperature"}:
        unknown = ", ".join(sorted(set(calibration) - {"temperature"}))
        raise StageError(f"{where}: unknown calibration key(s) {unknown} (tags takes: temperature)")
    return check_temperature(calibration, where, labels)


def sentence_confidence(scores: list[np.ndarray]) -> np.ndarray:
    """A sentence is as sure as its least sure word: the lowest of its words' top scores."""
    return np.array([float(np.asarray(sentence).max(axis=1).min()) for sentence in scores])


# Token classification: per word, softmax scores over the tags (temperature-scaled), the most probable tag.
TAGS = OutputRule(
    name="tags", scores=word_scores, predicted=word_tags, predictions=word_predictions, fit=fit_word_temperature,
    check=check_word_temperature, predicts="tag sequence", confidence=sentence_confidence,
)
# The rules an exported folder may name. TAGS is not among them until export ships a token classifier (its ONNX
# predictor reads one row of logits per text).
RULES = {rule.name: rule for rule in (ARGMAX, THRESHOLDS)}


def labels_from_logits(
    rule: OutputRule, logits: np.ndarray, labels: list[str], calibration: Mapping = NO_CALIBRATION
) -> list:
    """The predicted label of each row of `logits`, by `rule` with `calibration`."""
    return rule.predicted(rule.scores(logits, calibration), labels, calibration)


def rule_named(name: str, where: str) -> OutputRule:
    """The rule an exported folder names; an unknown one (a newer tuneforge's export) is one line."""
    if name not in RULES:
        raise StageError(f"{where}: decision '{name}' is not known to this tuneforge (known: {', '.join(RULES)})")
    return RULES[name]
