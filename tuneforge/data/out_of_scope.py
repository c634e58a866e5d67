"""Out-of-scope rows (data.oos_file): texts the model's labels do not cover, to fit and to measure rejection.

validate reads them like any data file (the label column may be absent), normalises them, drops empty texts,
exact duplicates and texts that are also in-scope rows (a text cannot be both), and refuses a row whose label
is one of the model's labels: a file of in-scope rows named as out-of-scope would make every rejection number
meaningless. split shares them, seeded, between val and test (split.oos_val_fraction). Their label column keeps
what the file said (empty where it said nothing); evaluate and export score them as `reject.label`.
"""

import math
from pathlib import Path

import numpy as np
import pandas as pd

from tuneforge.base.errors import StageError
from tuneforge.data.cleaning import Cleaned, clean_table
from tuneforge.data.io import LABEL, SOURCE_ROW, TEXT
from tuneforge.data.textnorm import text_key

OOS_SPLITS = ("oos_val", "oos_test")


def clean_out_of_scope(
    rows: pd.DataFrame, path, labels: list[str], in_scope_texts: set[str]
) -> tuple[pd.DataFrame, dict]:
    """The file's rows kept as out-of-scope (text, label or "", source_row), and the counts of what went."""
    cleaned: Cleaned = clean_table(rows, drop_duplicates=True)
    known = cleaned.frame[cleaned.frame[LABEL].isin(set(labels))]
    if not known.empty:
        first = known.iloc[0]
        raise StageError(
            f"{path}: line {first[SOURCE_ROW]}: label '{first[LABEL]}' is one of the model's labels "
            f"({len(known)} of {len(cleaned.frame)} rows carry one); an out-of-scope row's label must be outside "
            "the label set (data.oos_file)"
        )
    keys = cleaned.frame[TEXT].map(text_key)
    in_scope = keys.isin(in_scope_texts)
    frame = cleaned.frame[~in_scope & ~keys.duplicated()].reset_index(drop=True)
    if frame.empty:
        raise StageError(f"{path}: no out-of-scope rows left of {cleaned.rows_in} (empty, duplicated, or texts "
                         "that are also in-scope rows)")
    counts = {
        "oos_rows_in": cleaned.rows_in,
        "oos_rows_out": len(frame),
        "oos_dropped_empty": cleaned.dropped_empty,
        "oos_dropped_duplicates": cleaned.dropped_duplicates + int((keys.duplicated() & ~in_scope).sum()),
        "oos_dropped_in_scope_texts": int(in_scope.sum()),
    }
    return frame.assign(**{LABEL: frame[LABEL].fillna("")}), counts


def split_out_of_scope(frame: pd.DataFrame, val_fraction: float, seed: int) -> dict[str, pd.DataFrame]:
    """{"oos_val", "oos_test"}: a seeded shuffle cut at `val_fraction` of the rows (rounded down), each part in
    file order."""
    order = np.random.default_rng(seed).permutation(len(frame))
    cut = math.floor(val_fraction * len(frame) + 1e-9)
    parts = {"oos_val": np.sort(order[:cut]), "oos_test": np.sort(order[cut:])}
    return {name: frame.iloc[rows][[TEXT, LABEL, SOURCE_ROW]].reset_index(drop=True) for name, rows in parts.items()}


def read_out_of_scope(splits: Path) -> dict[str, pd.DataFrame]:
    """The out-of-scope val and test rows split wrote (by name, possibly empty); none without data.oos_file."""
    found = {}
    for name in OOS_SPLITS:
        path = Path(splits) / f"{name}.parquet"
        if not path.is_file():
            continue
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError) as exc:
            raise StageError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
        if TEXT not in frame.columns or frame[TEXT].isna().any():
            raise StageError(f"{path}: no column {TEXT}, or rows without text; rerun the split stage")
        found[name] = frame.astype({TEXT: str}).reset_index(drop=True)
    return found
