"""The model side of multi-label classification: sigmoid heads, binary cross-entropy, thresholds, metrics, KD.

The head is transformers' own for `problem_type: multi_label_classification` (BCE-with-logits over a
multi-hot target); `train.pos_weight` swaps in the same loss with each label's positives weighted by its
negatives/positives ratio in train. Predictions are label sets at per-label thresholds (the THRESHOLDS output
rule, fitted on val); the metrics take label sets as the label column holds them (canonical cells).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    hamming_loss,
    precision_recall_fscore_support,
)
from transformers import DataCollatorWithPadding

from tuneforge.base.errors import ConfigError, StageError
from tuneforge.base.spec import ModelConfig, TrainConfig
from tuneforge.data.io import LABEL, TEXT
from tuneforge.data.label_sets import label_lists, multi_hot
from tuneforge.evaluation.calibration import expected_calibration_error, reliability_bins
from tuneforge.inference.thresholds import DEFAULT_THRESHOLD, sigmoid_scores
from tuneforge.tasks import classification_data
from tuneforge.tasks.interface import TrainingData
from tuneforge.training.modeling import check_max_seq_length, classifier_from_base

PROBLEM_TYPE = "multi_label_classification"  # transformers' name: BCE-with-logits in the head's forward
_SHOWN = 8


def train_inputs(cfg: TrainConfig, augmented: Path, splits: Path, validated: Path) -> dict[str, Path]:
    return {"train": augmented / "train.parquet", "val": splits / "val.parquet", "labels": validated / "labels.json"}


# The stage to re-run when a split file is missing or unreadable.
WRITTEN_BY = {"train": "augment", "val": "split", "test": "split"}


def read_splits(paths: dict[str, Path]) -> dict[str, pd.DataFrame]:
    frames = {name: classification_data.read_split(path, WRITTEN_BY[name]) for name, path in paths.items()}
    for name, frame in frames.items():
        try:
            label_lists(frame[LABEL])
        except StageError:
            raise StageError(
                f"{paths[name]}: its label column does not hold label lists (a single-label split?); rerun "
                "validate and split with model.task: multi-label-classification"
            ) from None
    return frames


def check_label_sets(labels: list[str], splits: dict[str, pd.DataFrame], paths: dict[str, Path]) -> None:
    """Every label of every split is known, and train holds every label (a head never shown a positive
    learns to say no)."""
    known = set(labels)
    for name, frame in splits.items():
        used = {label for row in label_lists(frame[LABEL]) for label in row}
        unknown = sorted(used - known)
        if unknown:
            raise StageError(f"{paths[name]}: label(s) not in the label set: {_few(unknown)}; rerun validate and split")
        if name == "train" and known - used:
            raise StageError(
                f"{paths[name]}: no training row carries {_few(sorted(known - used))}; rerun the split stage "
                "(every label needs positives in train)"
            )


def _few(values: list[str]) -> str:
    return ", ".join(values[:_SHOWN]) + (f" and {len(values) - _SHOWN} more" if len(values) > _SHOWN else "")


def check_train_inputs(inputs: dict[str, Path]) -> list[str]:
    labels = classification_data.read_labels(inputs["labels"])
    check_label_sets(labels, read_splits({name: inputs[name] for name in ("train", "val")}), inputs)
    return labels


def encode_splits(
    splits: dict[str, pd.DataFrame], paths: dict[str, Path], tokenizer, labels: list[str], max_length: int
) -> dict[str, list[dict]]:
    check_label_sets(labels, splits, paths)
    encoded = {}
    for name, frame in splits.items():
        tokens = tokenizer(list(frame[TEXT]), truncation=True, max_length=max_length, padding=False)
        keys = [key for key in ("input_ids", "attention_mask", "token_type_ids") if key in tokens]
        targets = multi_hot(frame[LABEL], labels).tolist()
        encoded[name] = [{**{key: tokens[key][i] for key in keys}, "labels": targets[i]} for i in range(len(frame))]
    return encoded


def training_data(
    model_cfg: ModelConfig, cfg: TrainConfig, base_path: Path, tokenizer, labels: list[str],
    inputs: dict[str, str], pad_multiple: int | None,
) -> TrainingData:
    model, config = classifier_from_base(
        base_path, model_cfg.base, labels, dropout=cfg.dropout, problem_type=PROBLEM_TYPE
    )
    check_max_seq_length(model_cfg.max_seq_length, config, tokenizer, model_cfg.base)
    paths = {name: Path(inputs[name]) for name in ("train", "val")}
    splits = read_splits(paths)
    encoded = encode_splits(splits, paths, tokenizer, labels, model_cfg.max_seq_length)
    collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_multiple)
    extra, loss = {}, None
    if cfg.pos_weight:
        weights = positive_weights(multi_hot(splits["train"][LABEL], labels))
        extra = {"pos_weight": {label: round(float(w), 4) for label, w in zip(labels, weights, strict=True)}}
        loss = weighted_bce(torch.tensor(weights, dtype=torch.float32))
    return TrainingData(
        model=model, train=encoded["train"], val=encoded["val"], collator=collator, extra=extra, compute_loss=loss
    )


def check_train_config(cfg: TrainConfig) -> None:
    if cfg.label_smoothing:
        raise ConfigError("train.label_smoothing: applies to single-label classification only (set it to 0)")
    if cfg.label_all_subtokens:
        raise ConfigError("train.label_all_subtokens: applies to token classification only (set it to false)")


def positive_weights(targets: np.ndarray) -> np.ndarray:
    """negatives / positives per label (train checks every label has positives)."""
    positives = targets.sum(axis=0)
    return (len(targets) - positives) / np.maximum(positives, 1)


def weighted_bce(pos_weight: torch.Tensor):
    """The Trainer's compute_loss_func: the head's BCE with `pos_weight`, a mean over rows and labels."""

    def loss(outputs, labels, num_items_in_batch=None):
        logits = outputs.logits.float()
        return F.binary_cross_entropy_with_logits(logits, labels.float(), pos_weight=pos_weight.to(logits.device))

    return loss


def compute_metrics(prediction) -> dict[str, float]:
    """The Trainer's val scores at the default threshold (the tuned thresholds come later, from val itself)."""
    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    predicted = (sigmoid_scores(logits, {}) >= DEFAULT_THRESHOLD).astype(int)
    truth = np.asarray(prediction.label_ids).astype(int)
    return {
        "macro_f1": float(f1_score(truth, predicted, average="macro", zero_division=0)),
        "micro_f1": float(f1_score(truth, predicted, average="micro", zero_division=0)),
        "accuracy": float(accuracy_score(truth, predicted)),
    }


def val_scores(entry: dict) -> dict:
    return {name: entry.get(f"eval_{name[4:]}") for name in ("val_macro_f1", "val_micro_f1", "val_accuracy")}


def targets(frame: pd.DataFrame, labels: list[str]) -> np.ndarray:
    return multi_hot(frame[LABEL], labels)


# Two columns no row carries, so that sklearn always sees a multi-label indicator (a single column reads as a
# binary problem); they are left out of every per-label number.
_NO_LABELS = ("\x00", "\x01")


def score(truth: list[str], predicted: list[str]) -> dict:
    """Label-set metrics of canonical cells: macro, micro and samples F1, subset accuracy (`accuracy`: the whole
    set right) and Hamming loss, over the labels either side uses. A row with no label predicting none has a
    samples-F1 of 1 (it is right); macro- and micro-F1 are 0 when no row anywhere carries a label."""
    labels = sorted({label for row in label_lists([*truth, *predicted]) for label in row})
    columns = [*labels, *_NO_LABELS]
    y_true, y_pred = multi_hot(truth, columns).astype(int), multi_hot(predicted, columns).astype(int)
    real = list(range(len(labels)))
    metrics = {
        "macro_f1": float(f1_score(y_true, y_pred, labels=real, average="macro", zero_division=0)) if real else 0.0,
        "micro_f1": float(f1_score(y_true, y_pred, labels=real, average="micro", zero_division=0)) if real else 0.0,
        "samples_f1": float(f1_score(y_true, y_pred, average="samples", zero_division=1.0)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "hamming_loss": float(hamming_loss(y_true[:, real], y_pred[:, real])) if real else 0.0,
    }
    return metrics


def per_label_table(truth: list[str], predicted: list[str], labels: list[str]) -> pd.DataFrame:
    """One row per label of `labels`: precision, recall, f1, support (rows carrying it) and predicted (rows given
    it). Labels outside `labels` (a compared model's other label set) are left out, as sklearn's `labels=` does."""
    columns = [*labels, *_NO_LABELS]
    y_true, y_pred = (multi_hot(cells, columns, known_only=True).astype(int) for cells in (truth, predicted))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=list(range(len(labels))), average=None, zero_division=0
    )
    return pd.DataFrame({
        "label": list(labels), "precision": precision.astype(float), "recall": recall.astype(float),
        "f1": f1.astype(float), "support": support.astype(int),
        "predicted": y_pred[:, : len(labels)].sum(axis=0).astype(int),
    })


def ranking_metrics(scores: np.ndarray, truth: np.ndarray) -> dict:
    """Mean average precision: the macro mean of each label's average precision, over the labels with a
    positive row (threshold-free: how well the scores rank rows that carry a label above rows that do not)."""
    truth = np.asarray(truth)
    present = truth.sum(axis=0) > 0
    if not present.any():
        return {}
    return {"mean_average_precision": float(
        average_precision_score(truth[:, present], np.asarray(scores)[:, present], average="macro")
    )}


def measure_calibration(logits: np.ndarray, calibration, truth: np.ndarray, bins: int) -> dict:
    """ECE of every (row, label) probability against how often the label is there, and the mean binary NLL
    (thresholds move decisions, not probabilities: the same either way), with the reliability bins: a bin's
    `accuracy` is the share of its (row, label) pairs where the label is there."""
    probabilities, truth = sigmoid_scores(logits, calibration).ravel(), np.asarray(truth, dtype=np.float64)
    logits = np.asarray(logits, dtype=np.float64)
    # log(1 + e^x) - y x: the binary cross-entropy with logits, exact for large |x|.
    nll = np.logaddexp(0.0, logits) - truth * logits
    present = truth.ravel().astype(bool)
    return {
        "ece": expected_calibration_error(probabilities, present, bins),
        "nll": float(nll.mean()),
        "bins": reliability_bins(probabilities, present, bins),
    }


def distillation_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, *, alpha: float,
    temperature: float,
) -> torch.Tensor:
    """alpha * BCE(student, labels) + (1 - alpha) * T^2 * BCE(sigmoid(student / T), sigmoid(teacher / T)):
    each label is a two-class problem, softened and scaled as Hinton et al.'s softmax KD is."""
    student_logits = student_logits.float()
    hard = F.binary_cross_entropy_with_logits(student_logits, labels.float())
    soft_targets = torch.sigmoid(teacher_logits.float() / temperature)
    soft = F.binary_cross_entropy_with_logits(student_logits / temperature, soft_targets)
    return alpha * hard + (1 - alpha) * temperature**2 * soft
