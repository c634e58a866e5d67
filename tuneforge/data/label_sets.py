"""Multi-label rows: a set of labels per text, held in the label column as one canonical string.

Why a string and not a list column: every generic step of the pipeline (cleaning, exact duplicates, texts seen
with two different label sets, Parquet splits, drift reports, equality of a prediction with the truth) then
works on multi-label rows unchanged. The canonical form is a compact JSON array of the distinct label names in
sorted order, `["anger","joy"]`, so two rows with the same set always hold the same string and a label may
contain any character. `[]` is a row none of the labels applies to (kept only with validate.allow_empty_labels).
Only the multi-label task and its library functions decode it.
"""

import json
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from tuneforge.base.errors import StageError


def encode_label_set(labels: Iterable[str]) -> str:
    return json.dumps(sorted(set(labels)), ensure_ascii=False, separators=(",", ":"))


def decode_label_set(value: str) -> list[str]:
    """The labels of one canonical cell (written by encode_label_set: the pipeline's own files). Anything else
    (a single-label split read by a multi-label spec) is one StageError line."""
    try:
        labels = json.loads(value)
    except (TypeError, ValueError):
        labels = None
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise StageError(
            f"label cell {str(value)[:60]!r} is not a label set (written by a single-label spec?); rerun validate and "
            "split with model.task: multi-label-classification"
        )
    return labels


def label_lists(cells: Iterable[str]) -> list[list[str]]:
    return [decode_label_set(cell) for cell in cells]


def multi_hot(cells: Iterable[str], labels: Sequence[str], *, known_only: bool = False) -> np.ndarray:
    """(rows, labels) 0/1 matrix of the label sets in `cells`; column j is labels[j]. Every label is known, or
    with `known_only` the others are left out."""
    index = {label: j for j, label in enumerate(labels)}
    lists = label_lists(cells)
    matrix = np.zeros((len(lists), len(labels)), dtype=np.float32)
    for i, row in enumerate(lists):
        matrix[i, [index[label] for label in row if not known_only or label in index]] = 1.0
    return matrix


def label_frequencies(cells: pd.Series) -> pd.Series:
    """Rows holding each label (a row counts once per label it holds), most frequent first."""
    exploded = pd.Series(label_lists(cells), dtype=object).explode().dropna()
    return exploded.value_counts()


def label_names(cells: Iterable[str]) -> list[str]:
    """Every label used in `cells`, sorted."""
    return sorted({label for row in label_lists(cells) for label in row})
