"""Sequence classification data for the train stage: the label set, the tokenized splits, the val metrics.

Labels come from data/validated/labels.json (the declared or inferred label set the validate stage
recorded), in that order: id i is labels[i] in the saved model's id2label. Train and val must hold the
same labels; a difference means the splits are out of date or were edited by hand.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow
from sklearn.metrics import accuracy_score, f1_score

from tuneforge.base.errors import StageError
from tuneforge.data.io import LABEL, TEXT

_SHOWN = 8


def read_labels(path: Path) -> list[str]:
    if not path.is_file():
        raise StageError(f"{path}: not found; run the validate stage first (python -m stages.validate)")
    try:
        labels = json.loads(path.read_text(encoding="utf-8"))["labels"]
    except (ValueError, KeyError, TypeError):
        raise StageError(f"{path}: not a label file ({{\"labels\": [...]}}); rerun the validate stage") from None
    if not isinstance(labels, list) or len(labels) < 2 or len(set(map(str, labels))) != len(labels):
        raise StageError(f"{path}: needs at least two distinct labels; rerun the validate stage")
    return [str(label) for label in labels]


def read_split(path: Path, rerun: str) -> pd.DataFrame:
    if not path.is_file():
        raise StageError(f"{path}: not found; run the {rerun} stage first (python -m stages.{rerun})")
    try:
        with open(path, "rb") as handle:
            frame = pd.read_parquet(handle, columns=None)
    except (pyarrow.ArrowException, OSError, ValueError) as exc:
        raise StageError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    missing = [column for column in (TEXT, LABEL) if column not in frame.columns]
    if missing:
        raise StageError(f"{path}: missing column(s) {', '.join(missing)}; rerun the {rerun} stage")
    if frame.empty:
        raise StageError(f"{path}: has no rows; rerun the {rerun} stage")
    if frame[TEXT].isna().any() or frame[LABEL].isna().any():
        raise StageError(f"{path}: has empty text or label cells; rerun the {rerun} stage")
    return pd.DataFrame({TEXT: frame[TEXT].astype(str), LABEL: frame[LABEL].astype(str)})


def check_label_sets(labels: list[str], splits: dict[str, pd.DataFrame], paths: dict[str, Path]) -> None:
    """Every split's labels are known, and train and val hold the same set."""
    known = set(labels)
    for name, frame in splits.items():
        unknown = sorted(set(frame[LABEL]) - known)
        if unknown:
            raise StageError(
                f"{paths[name]}: label(s) not in the label set: {_few(unknown)}; rerun validate and split"
            )
    train, val = set(splits["train"][LABEL]), set(splits["val"][LABEL])
    if train != val:
        parts = []
        if train - val:
            parts.append(f"only in train: {_few(sorted(train - val))}")
        if val - train:
            parts.append(f"only in val: {_few(sorted(val - train))}")
        raise StageError(
            f"{paths['train']} and {paths['val']} hold different label sets ({'; '.join(parts)}); "
            "rerun the split stage (every class needs examples in both)"
        )


def _few(values: list[str]) -> str:
    return ", ".join(values[:_SHOWN]) + (f" and {len(values) - _SHOWN} more" if len(values) > _SHOWN else "")


def tokenize_frame(frame: pd.DataFrame, tokenizer, label2id: dict[str, int], max_length: int) -> list[dict]:
    """One dict per row (input ids unpadded: batches are padded dynamically by the collator)."""
    encoded = tokenizer(list(frame[TEXT]), truncation=True, max_length=max_length, padding=False)
    keys = [key for key in ("input_ids", "attention_mask", "token_type_ids") if key in encoded]
    labels = [label2id[label] for label in frame[LABEL]]
    return [
        {**{key: encoded[key][i] for key in keys}, "labels": labels[i]}
        for i in range(len(frame))
    ]


def compute_metrics(prediction) -> dict[str, float]:
    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    predicted = np.argmax(logits, axis=-1)
    truth = prediction.label_ids
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "macro_f1": float(f1_score(truth, predicted, average="macro", zero_division=0)),
    }
