"""The drift monitor's three signals, shown in one Evidently report (reference = the production
version's training rows, current = the new batch):

- descriptors: Evidently's text descriptors (length in characters, word count, share of non-letter
  characters), each tested reference vs new; the signal drifts when at least `drift_share` of them do.
  Sentiment and OOV are left out on purpose: they download NLTK data at run time.
- predictions: the production int8 ONNX model's predicted-label distribution, reference vs new, by a
  permutation test (prediction_drift): the Jensen-Shannon distance between the two label distributions,
  and its p-value against the distances of random re-splits of the pooled rows into the same two sizes.
  It holds for any number of labels, also when most expected counts are small or zero; Evidently's
  chi-square (its choice below 1,000 rows) takes the reference shares as exact and, with 77 or 150
  labels and 1,000 rows a side, flags nearly every same-distribution batch. Evidently's page still shows
  the column, as its Jensen-Shannon distance against the permutation test's critical distance. A spec
  may name an Evidently test instead (predictions.method); then Evidently's verdict counts.
- embeddings: the production model's own sentence embeddings (the mean-pooled last hidden state of its
  teacher) compared by Evidently's model-based embedding drift: a domain classifier learns to tell
  reference from new on half the rows, and its ROC AUC on the other half is the score (0.5: it cannot
  tell them apart). Above `threshold` is drift, or, with bootstrap, above the 95th percentile of the
  ROC AUC of random guesses on the same rows. Evidently's EmbeddingsDrift metric adds only a t-SNE
  picture to the page (a minute per 1,000 rows on CPU), so it is in the report only with
  monitor.embeddings.plot; the verdict is the same drift method either way.
"""

import json
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tuneforge.base.spec import MonitorConfig, PredictionDriftConfig
from tuneforge.data.drift import DESCRIPTORS, text_descriptors
from tuneforge.data.io import TEXT

PREDICTED = "predicted_label"
EMBEDDING = "embedding"
PERMUTATION = "permutation"
PERMUTATIONS_PER_BATCH = 1000  # resamples scored at once: bounds memory at resamples up to 100,000
# Evidently's own rule for when the embedding test bootstraps (EmbeddingsDriftMetric's default).
BOOTSTRAP_BELOW_ROWS = 1000
EMPTY_PAGE = '<!DOCTYPE html>\n<html><head><meta charset="UTF-8"></head><body></body></html>\n'


def predicted_labels(onnx_dir: Path, texts: Sequence[str], *, batch_size: int) -> list[str]:
    """The shipped int8 ONNX model's predicted label for each text (by the decision rule it was exported with)."""
    from tuneforge.inference import onnx_predictor as onnx_predict

    classifier = onnx_predict.load(Path(onnx_dir), variant="int8")
    return onnx_predict.predicted_labels(classifier, texts, batch_size=batch_size)


def sentence_embeddings(model_dir: Path, texts: Sequence[str], *, batch_size: int, max_length: int) -> np.ndarray:
    """(rows, hidden) mean-pooled last hidden states of a Hugging Face classifier's encoder (safetensors only)."""
    import torch

    from tuneforge.inference.torch_predictor import load_trained_classifier

    classifier = load_trained_classifier(
        Path(model_dir), torch.device("cpu"), missing_hint="the production version has no such model directory"
    )
    encoder = classifier.model.base_model  # the encoder under the classification head
    texts = [str(text) for text in texts]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths batch with less padding
    pooled = np.zeros((len(texts), classifier.model.config.hidden_size), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            batch = classifier.tokenizer(
                [texts[i] for i in rows], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
            )
            hidden = encoder(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled[rows] = ((hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)).numpy()
    return pooled


def embedding_columns(width: int) -> list[str]:
    return [f"{EMBEDDING}_{i:04d}" for i in range(width)]


def with_embeddings(frame: pd.DataFrame, embeddings: np.ndarray) -> pd.DataFrame:
    columns = pd.DataFrame(embeddings, columns=embedding_columns(embeddings.shape[1]), index=frame.index)
    return pd.concat([frame, columns], axis=1)


def prediction_drift(reference: Sequence[str], new: Sequence[str], cfg: PredictionDriftConfig, *, seed: int) -> dict:
    """Whether the predicted-label distribution moved from `reference` to `new`, by a permutation test.

    The statistic is the Jensen-Shannon distance (natural log) between the two samples' label shares.
    Under "no drift" both samples come from one distribution, so any split of the pooled rows into the two
    sizes is as likely as the observed one: the p-value is the share of `cfg.resamples` seeded random
    splits whose distance reaches the observed one (scipy's permutation_test, which counts the observed
    split too). Nothing assumes large expected counts, so rare and unseen labels cannot make it fire.
    """
    from scipy.stats import permutation_test

    labels, codes = np.unique(np.asarray([*map(str, reference), *map(str, new)]), return_inverse=True)
    result = permutation_test(
        (codes[:len(reference)], codes[len(reference):]), _label_distance(len(labels)),
        permutation_type="independent", vectorized=True, n_resamples=cfg.resamples, alternative="greater",
        batch=PERMUTATIONS_PER_BATCH, rng=np.random.default_rng(seed),
    )
    return {
        "drifted": bool(result.pvalue < cfg.level), "method": PERMUTATION,
        "statistic": "Jensen-Shannon distance", "score": float(result.statistic), "p_value": float(result.pvalue),
        "level": cfg.level, "resamples": cfg.resamples, "labels": len(labels),
        "threshold": _critical_distance(result.null_distribution, cfg.level),
    }


def _critical_distance(null: np.ndarray, level: float) -> float:
    """The distance a batch must exceed to drift: p = (1 + #null >= d) / (resamples + 1) < level exactly
    when d is above the k-th largest null distance, k = ceil(level * (resamples + 1) - 1)."""
    k = math.ceil(round(level * (len(null) + 1) - 1, 9))  # >= 1: the config asks for enough resamples
    return float(np.sort(null)[-k])


def _label_distance(n_labels: int):
    """statistic(x, y, axis) for scipy's permutation_test: Jensen-Shannon distance of the label counts of
    two arrays of label codes, for every resample at once (codes along `axis`, resamples along the rest)."""
    from scipy.spatial.distance import jensenshannon

    def counts(codes: np.ndarray) -> np.ndarray:
        rows = codes.reshape(-1, codes.shape[-1]).astype(np.intp)
        offsets = n_labels * np.arange(len(rows))[:, None]  # row r counts into bins r*n_labels ...
        flat = np.bincount((rows + offsets).ravel(), minlength=len(rows) * n_labels)
        return flat.reshape(len(rows), n_labels)

    def statistic(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        x, y = np.moveaxis(np.asarray(x), axis, -1), np.moveaxis(np.asarray(y), axis, -1)
        return jensenshannon(counts(x), counts(y), axis=-1).reshape(x.shape[:-1])

    return statistic


def compare(reference: pd.DataFrame, current: pd.DataFrame, cfg: MonitorConfig) -> tuple[dict, str, dict]:
    """(Evidently's JSON, its HTML page, the signals) for frames with column text, plus predicted_label
    for the predictions signal and embedding_NNNN columns for the embeddings signal."""
    embedding_method = _embedding_method(cfg, reference_rows=len(reference))
    emb_columns = [column for column in reference.columns if column.startswith(f"{EMBEDDING}_")]
    permutation = None
    if "predictions" in cfg.signals and cfg.predictions.method == PERMUTATION:
        permutation = prediction_drift(reference[PREDICTED], current[PREDICTED], cfg.predictions, seed=cfg.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snapshot = _run_report(reference, current, cfg, emb_columns, embedding_method, permutation)
        if snapshot is None:  # embeddings alone, without the picture: nothing for Evidently's page to show
            evidently_json, page = {"metrics": [], "tests": []}, EMPTY_PAGE
        else:
            evidently_json = _finite(json.loads(snapshot.json()))
            page = snapshot.get_html_str(as_iframe=False)
        signals: dict[str, dict[str, Any]] = {}
        columns = _column_drift(evidently_json)
        if "descriptors" in cfg.signals:
            tested = {name: columns[name] for name in DESCRIPTORS}
            share = sum(column["drifted"] for column in tested.values()) / len(tested)
            signals["descriptors"] = {
                "drifted": share >= cfg.descriptors.drift_share, "drift_share": share,
                "required_share": cfg.descriptors.drift_share, "columns": tested,
            }
        if "predictions" in cfg.signals:
            signals["predictions"] = {
                **(permutation or columns[PREDICTED]),
                "reference": _shares(reference[PREDICTED]), "new": _shares(current[PREDICTED]),
            }
        if "embeddings" in cfg.signals:
            # The same deterministic method object Evidently ran for the report: called directly, because
            # Evidently's report keeps only the score, not the verdict of a bootstrapped test.
            score, drifted, method = embedding_method(current[emb_columns].copy(), reference[emb_columns].copy())
            signals["embeddings"] = {
                "drifted": bool(drifted), "method": f"{method} (domain classifier ROC AUC)", "score": float(score),
                "threshold": None if embedding_method.bootstrap else embedding_method.threshold,
                "bootstrap": bool(embedding_method.bootstrap), "dimensions": len(emb_columns),
            }
    return evidently_json, page, signals


def decide(signals: dict[str, dict], cfg: MonitorConfig) -> dict:
    drifted = [name for name in cfg.signals if signals[name]["drifted"]]
    return {
        "drift": len(drifted) >= cfg.min_drifted_signals,
        "drifted_signals": drifted,
        "min_drifted_signals": cfg.min_drifted_signals,
        "signals_counted": list(cfg.signals),
    }


def _embedding_method(cfg: MonitorConfig, *, reference_rows: int):
    from evidently.metrics.embeddings import ModelDriftMethod

    bootstrap = cfg.embeddings.bootstrap
    if bootstrap is None:
        bootstrap = reference_rows < BOOTSTRAP_BELOW_ROWS
    return ModelDriftMethod(threshold=cfg.embeddings.threshold, bootstrap=bootstrap)


def _run_report(reference, current, cfg: MonitorConfig, emb_columns: list[str], embedding_method,
                permutation: dict | None):
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import EmbeddingsDrift
    from evidently.presets import DataDriftPreset

    categorical = [PREDICTED] if "predictions" in cfg.signals else []
    definition = DataDefinition(
        text_columns=[TEXT], categorical_columns=categorical,
        embeddings={EMBEDDING: emb_columns} if emb_columns else None,
    )

    def dataset(frame: pd.DataFrame):
        descriptors = text_descriptors(TEXT) if "descriptors" in cfg.signals else []
        return Dataset.from_pandas(frame.reset_index(drop=True), data_definition=definition, descriptors=descriptors)

    methods, thresholds = {}, {}
    tested = [(name, cfg.descriptors) for name in DESCRIPTORS]
    if permutation is not None:  # the page shows the same distance against the permutation test's critical one
        # Evidently's Jensen-Shannon test drifts at distance >= threshold, the permutation test above it.
        methods[PREDICTED] = "jensenshannon"
        thresholds[PREDICTED] = float(np.nextafter(permutation["threshold"], math.inf))
    elif "predictions" in cfg.signals:
        tested.append((PREDICTED, cfg.predictions))
    for column, signal in tested:
        if signal.method is not None:
            methods[column] = signal.method
        if signal.threshold is not None:
            thresholds[column] = signal.threshold
    columns = (list(DESCRIPTORS) if "descriptors" in cfg.signals else []) + categorical
    metrics = []
    if columns:
        metrics.append(DataDriftPreset(
            columns=columns, per_column_method=methods or None, per_column_threshold=thresholds or None,
        ))
    if emb_columns and cfg.embeddings.plot:  # its only addition to the verdict below is a t-SNE picture
        metrics.append(EmbeddingsDrift(embeddings_name=EMBEDDING, drift_method=embedding_method))
    if not metrics:
        return None
    # include_tests: the per-column tests carry Evidently's own drifted / not drifted verdicts.
    return Report(metrics, include_tests=True).run(dataset(current), dataset(reference))


def _column_drift(evidently_json: dict) -> dict[str, dict[str, Any]]:
    """{column: {method, threshold, score, drifted}} from Evidently's ValueDrift metrics and their tests."""
    columns: dict[str, dict[str, Any]] = {}
    for metric in evidently_json.get("metrics", []):
        config = metric["config"]
        if config["type"].endswith(":ValueDrift"):
            columns[config["column"]] = {
                "method": config["method"], "threshold": config["threshold"], "score": metric["value"],
                "drifted": False,
            }
    for test in evidently_json.get("tests", []):
        params = test["metric_config"]["params"]
        if params["type"].endswith(":ValueDrift") and params["column"] in columns:
            columns[params["column"]]["drifted"] = test["status"] == "FAIL"
    return columns


def _shares(labels: pd.Series) -> dict[str, float]:
    counts = labels.astype(str).value_counts()
    return {str(label): round(int(count) / len(labels), 6) for label, count in sorted(counts.items())}


def _finite(value: Any) -> Any:
    """JSON-safe: NaN and infinities (Evidently emits them for constant columns) become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value
