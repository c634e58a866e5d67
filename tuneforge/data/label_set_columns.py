"""The derived columns expectations/multi_label.json checks on rows that hold a label set, and label-set facts.

Great Expectations checks one value per row, and a label set is several: each rule on the labels (all known,
not empty, frequent enough) becomes a per-row column the suite bounds, and an offending row still names its
input line. Cells are the canonical label-set strings of tuneforge/data/label_sets.py; a missing cell (None)
gets missing derived values, and the suite's not-null expectation on `label` reports it.
"""

from collections import Counter

import pandas as pd

from tuneforge.data.cleaning import LABELS_PER_TEXT, labels_per_text
from tuneforge.data.io import LABEL
from tuneforge.data.label_sets import decode_label_set, encode_label_set

LABEL_COUNT = "label_count"  # labels in the row's set (0: none applies)
UNKNOWN_LABELS = "unknown_labels"  # the row's labels outside the label set, as a label-set cell ("[]": none)
RAREST_LABEL = "rarest_label"  # the row's known label with the fewest rows that will be written (ties: by name)
RAREST_LABEL_COUNT = "rarest_label_count"  # rows of that label


def with_label_set_columns(frame: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """The frame the multi-label suite sees: the cleaned rows plus the columns above and labels_per_text.

    Label counts leave out the rows of texts seen with two label sets, which validation drops, so the
    minimum-per-label check holds for what is written, as for single-label classes."""
    per_text = labels_per_text(frame)
    sets = _label_lists(frame[LABEL])
    counts = Counter(label for labels_of_row in sets[per_text <= 1] for label in labels_of_row)
    known = set(labels)
    # An unknown label is reported as unknown, not once more as a rare one.
    rarest = [rarest_of([label for label in row if label in known], counts) for row in sets]
    missing = frame[LABEL].isna()
    return frame.assign(**{
        LABELS_PER_TEXT: per_text,
        LABEL_COUNT: sets.map(len).astype("Int64").mask(missing),
        UNKNOWN_LABELS: sets.map(lambda row: encode_label_set(set(row) - known)).mask(missing),
        RAREST_LABEL: pd.Series(rarest, index=frame.index, dtype=object),
        RAREST_LABEL_COUNT: pd.Series([counts[r] if r is not None else pd.NA for r in rarest], index=frame.index,
                                      dtype="Int64"),
    })


def rarest_of(labels: list[str], counts: Counter) -> str | None:
    """The label of `labels` with the fewest rows in `counts` (ties: the first by name); None for no label."""
    return min(labels, key=lambda label: (counts[label], label)) if labels else None


def rarest_labels(cells: pd.Series) -> list[str | None]:
    """Each row's rarest label among the rows of `cells` (None for a row without labels)."""
    sets = _label_lists(cells)
    counts = Counter(label for row in sets for label in row)
    return [rarest_of(row, counts) for row in sets]


def label_cardinality(cells: pd.Series) -> dict:
    """How many labels rows hold: the mean, and rows per number of labels."""
    sizes = _label_lists(cells).map(len)
    return {
        "mean_labels_per_row": round(float(sizes.mean()), 4) if len(sizes) else 0.0,
        "rows_per_label_count": {str(size): int(rows) for size, rows in sorted(Counter(sizes).items())},
    }


def _label_lists(cells: pd.Series) -> pd.Series:
    return cells.map(lambda cell: decode_label_set(cell) if isinstance(cell, str) else [])
