"""Cleaning a labelled table before validation: normalised texts, no empty texts, no exact duplicates.

Pure pandas functions on the text / label / source_row frame that tuneforge.data.io reads, so each rule is
testable on its own. Nothing here raises: validation decides what is acceptable, cleaning only counts.
"""

from dataclasses import dataclass

import pandas as pd

from tuneforge.data.io import LABEL, SOURCE_ROW, TEXT
from tuneforge.data.textnorm import normalize_text

CLASS_COUNT = "class_count"  # derived: rows of this row's label that will be written
LABELS_PER_TEXT = "labels_per_text"  # derived: distinct labels this row's text appears with


@dataclass(frozen=True)
class Cleaned:
    """A cleaned table and what cleaning removed from it."""

    frame: pd.DataFrame
    rows_in: int
    dropped_empty: int
    dropped_duplicates: int


def clean_table(frame: pd.DataFrame, *, drop_duplicates: bool = True) -> Cleaned:
    """Normalise texts and labels, drop empty texts and (optionally) exact (text, label) duplicates."""
    texts = frame[TEXT].map(lambda value: normalize_text(value) if isinstance(value, str) else "")
    labels = frame[LABEL].map(_clean_label)
    cleaned = pd.DataFrame({TEXT: texts, LABEL: labels, SOURCE_ROW: frame[SOURCE_ROW]})
    non_empty = cleaned[cleaned[TEXT] != ""]
    kept = non_empty.drop_duplicates([TEXT, LABEL], keep="first") if drop_duplicates else non_empty
    return Cleaned(
        frame=kept.reset_index(drop=True),
        rows_in=len(frame),
        dropped_empty=len(cleaned) - len(non_empty),
        dropped_duplicates=len(non_empty) - len(kept),
    )


def _clean_label(value) -> str | None:
    # A blank label is a missing label: keep it null so validation names its line.
    if not isinstance(value, str):
        return None
    return value.strip() or None


def labels_per_text(frame: pd.DataFrame) -> pd.Series:
    """For each row, how many distinct (non-null) labels its text appears with in the table."""
    return frame.groupby(TEXT)[LABEL].transform("nunique").astype(int)


def conflicts(frame: pd.DataFrame) -> list[dict]:
    """Texts that appear with two or more labels: text, sorted labels, and the input lines they are on."""
    conflicting = frame[labels_per_text(frame) > 1]
    return [
        {"text": text, "labels": sorted(group[LABEL].dropna().unique()), "lines": group[SOURCE_ROW].tolist()}
        for text, group in conflicting.groupby(TEXT, sort=False)
    ]


def class_counts(frame: pd.DataFrame, *, excluding: pd.Series | None = None) -> pd.Series:
    """Per row, the number of rows with its label, not counting rows marked in `excluding`.

    Validation counts the rows a class will have once conflicting texts are dropped, so the
    minimum-per-class check holds for what is written, not for what was read.
    """
    counted = frame if excluding is None else frame[~excluding]
    sizes = counted[LABEL].value_counts()
    # Nullable integers: a row without a label has no class to count (its null label is reported instead).
    counts = frame[LABEL].map(sizes).fillna(0).astype("Int64")
    return counts.where(frame[LABEL].notna(), pd.NA)


def with_derived_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame Great Expectations sees: the cleaned table plus class_count and labels_per_text."""
    per_text = labels_per_text(frame)
    return frame.assign(
        **{CLASS_COUNT: class_counts(frame, excluding=per_text > 1), LABELS_PER_TEXT: per_text}
    )
