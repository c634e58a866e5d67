"""Multi-label data: reading label sets, checking them, splitting and augmenting rows that carry a label set.

A label cell is a list in JSONL and Parquet (names, or ids 0, 1, ... with data.labels_file) and, in CSV and TSV,
where every cell is a string, the labels joined by data.label_separator (a string cell of JSONL is split the
same way when the separator is set). Each row's set is stored as the canonical cell of
tuneforge/data/label_sets.py: deduplicated, sorted, `[]` when no label applies (a blank CSV/TSV cell is that
empty set: a delimited file has no other way to say it; validate refuses it unless validate.allow_empty_labels).

A separator that splits nothing is a mistake worth a line of its own rather than 28 "unknown labels": when
data.label_separator occurs in no label cell of a file while some cell holds another usual separator
(`,` `;` `|`), the file is refused naming the separator it probably uses.
"""

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from tuneforge.base.errors import ConfigError, StageError
from tuneforge.base.spec import AugmentConfig, DataConfig, ValidateConfig
from tuneforge.data.augmentation import augment_frame
from tuneforge.data.io import (
    LABEL,
    SOURCE_ROW,
    TEXT,
    Table,
    kind_of,
    label_from_id,
    read_label_names,
    read_table,
    require_columns,
    source_rows,
    text_cells,
)
from tuneforge.data.label_set_columns import label_cardinality, rarest_labels, with_label_set_columns
from tuneforge.data.label_sets import decode_label_set, encode_label_set, label_frequencies, label_names
from tuneforge.data.splitting import iterative_split

LIKELY_SEPARATORS = (",", ";", "|")
SUITE = "multi_label"


def read_rows(path: Path, data: DataConfig, *, label_required: bool = True) -> pd.DataFrame:
    """Rows (text, label set or None, source_row); label_required=False: a file without the label column reads
    as unlabelled rows (the drift monitor's batches), and needs no separator."""
    table = read_table(path, columns=data.columns)
    require_columns(table, data.text_column, data.label_column, label_required=label_required)
    labelled = data.label_column in table.columns
    if labelled and table.delimited and data.label_separator is None:
        raise ConfigError(
            f"data.label_separator: required for {table.path}: a CSV/TSV cell holds a label set as one string of "
            "labels joined by a separator; set data.label_separator (e.g. ',')"
        )
    cells = [row.get(data.label_column) for _, row in table.records]
    if data.label_separator is not None:
        _refuse_a_separator_that_splits_nothing(table, cells, data.label_separator)
    names = read_label_names(data.labels_path) if data.labels_path else None
    sets = [
        _label_set(cell, table, line, data, names) for cell, line in zip(cells, source_rows(table), strict=True)
    ]
    return pd.DataFrame({TEXT: text_cells(table, data.text_column), LABEL: sets, SOURCE_ROW: source_rows(table)})


def _label_set(cell, table: Table, line: int, data: DataConfig, names: list[str] | None) -> str | None:
    """One label cell as a canonical label-set string; None when the cell is missing."""
    if cell is None or (isinstance(cell, float) and cell != cell):
        return None
    if isinstance(cell, str) and data.label_separator is not None:
        items = cell.split(data.label_separator)
    elif isinstance(cell, list | tuple | np.ndarray):
        items = [_label_item(item, table, line, data.label_column) for item in cell]
    else:
        raise StageError(
            f"{table.path}: {table.unit} {line}: column '{data.label_column}' (data.label_column) holds "
            f"{kind_of(cell)}, "
            'not a list of labels (e.g. ["anger", "joy"]); set data.label_separator to split strings'
        )
    labels = [item.strip() for item in items if item.strip()]
    if names is not None:
        labels = [label_from_id(label, names, data.labels_path, table, line) for label in labels]
    return encode_label_set(labels)


def _label_item(item, table: Table, line: int, column: str) -> str:
    """A label of a list: a name, or an id (an integer; Parquet may store ids as integral floats)."""
    if isinstance(item, str):
        return item
    if isinstance(item, int | np.integer) and not isinstance(item, bool | np.bool_):
        return str(int(item))
    if isinstance(item, float | np.floating) and float(item).is_integer():
        return str(int(item))
    raise StageError(
        f"{table.path}: {table.unit} {line}: column '{column}' (data.label_column) holds a list with "
        f"{item!r} in it; a label is a name or an integer id"
    )


def _refuse_a_separator_that_splits_nothing(table: Table, cells: list, separator: str) -> None:
    strings = [(line, cell) for (line, _), cell in zip(table.records, cells, strict=True) if isinstance(cell, str)]
    if any(separator in cell for _, cell in strings):
        return
    others = [other for other in LIKELY_SEPARATORS if other != separator]
    holding = Counter(other for _, cell in strings for other in others if other in cell)
    if not holding:
        return  # every row holds one label: a multi-label file may well have no row with two
    likely, count = holding.most_common(1)[0]
    line, first = next((line, cell) for line, cell in strings if likely in cell)
    raise StageError(
        f"{table.path}: data.label_separator {separator!r} splits no label cell, but {count} cells hold "
        f"{likely!r} (first: {table.unit} {line}: {first!r}); set data.label_separator: {likely!r}?"
    )


def check_rows(path: Path, frame: pd.DataFrame, data: DataConfig, labels: list[str], cfg: ValidateConfig) -> None:
    """Multi-label classification needs two labels at least, and a training example of every declared label
    (a sigmoid with no positive example learns only to say no)."""
    used = label_names(frame[LABEL].dropna())
    if not used:
        raise StageError(f"{path}: no labels (every row of column '{data.label_column}' holds an empty set)")
    if len(labels) < 2:
        raise StageError(f"{path}: only {len(labels)} label ({', '.join(labels) or 'none'}); multi-label "
                         "classification needs at least 2")
    absent = [label for label in labels if label not in set(used)]
    if absent:
        source = f"data.labels_file {data.labels_path}" if data.labels_path else "data.labels"
        raise StageError(
            f"{path}: {len(absent)} of the {len(labels)} labels of {source} have no training example "
            f"(first: '{absent[0]}')"
        )


def label_of(frame: pd.DataFrame) -> pd.Series:
    return frame[LABEL]


def split_units(strata: pd.Series, fractions: dict[str, float], seed: int) -> dict[str, pd.Index]:
    return iterative_split(strata.map(decode_label_set), fractions, seed)


def augment(original: pd.DataFrame, cfg: AugmentConfig) -> tuple[pd.DataFrame, dict]:
    """The single-label noise, each variant carrying its original's label set; balancing counts a row for its
    rarest label, so topping up a rare label does not also top up the frequent ones it co-occurs with first."""
    return augment_frame(original, cfg, balance_by=rarest_labels(original[LABEL]))


def label_set(cells: pd.Series) -> list[str]:
    return label_names(cells.dropna())  # a missing cell is reported by the suite, on its line


gx_table = with_label_set_columns
label_counts = label_frequencies
cardinality = label_cardinality
file_label = decode_label_set  # in JSONL and Parquet a label set is a list of names
