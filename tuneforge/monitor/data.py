"""The drift monitor's inputs: a batch of new texts (a file or a folder of files) and seeded samples.

A batch is one CSV, TSV, JSONL or Parquet file, or a folder whose data files (directly inside it) are read in
name order; other files there (a README, .gitkeep) are ignored. Each file is read as the task reads the
training data (its `read_rows`, with the data section's columns, separator and labels file), except that the
label column (data.label_column) is optional: labelled rows can be merged into the training data when drift
triggers a retrain, unlabelled rows are only compared. The text column (data.text_column) is required. Texts
are normalised the way the validate stage normalises the training data, so a descriptor compares like with
like.
"""

import hashlib
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from tuneforge.base.errors import StageError
from tuneforge.base.outputs import sha256_file
from tuneforge.base.spec import SUPPORTED_EXTENSIONS, DataConfig
from tuneforge.data.io import LABEL, SOURCE_ROW, TEXT
from tuneforge.data.textnorm import normalize_text

FILE = "file"


def batch_files(path: Path) -> list[Path]:
    """The data files of a batch: the file itself, or the data files directly inside the folder."""
    path = Path(path)
    if not path.exists():
        raise StageError(f"{path}: no such file or folder (the batch of new data)")
    if path.is_file():
        return [path]
    files = sorted(child for child in path.iterdir() if child.is_file() and _is_data_file(child))
    if not files:
        raise StageError(f"{path}: no {', '.join(SUPPORTED_EXTENSIONS)} files in this folder")
    return files


def _is_data_file(path: Path) -> bool:
    return not path.name.startswith(".") and path.suffix.lower() in SUPPORTED_EXTENSIONS


def batch_sha256(path: Path) -> str:
    """The batch's identity: a file's sha256, or the sha256 of a folder's (name, sha256) data-file listing."""
    files = batch_files(path)
    if Path(path).is_file():
        return sha256_file(files[0])
    listing = "".join(f"{file.name}\t{sha256_file(file)}\n" for file in files)
    return hashlib.sha256(listing.encode()).hexdigest()


def read_batch(path: Path, data: DataConfig, read_rows: Callable[..., pd.DataFrame]) -> pd.DataFrame:
    """Every non-empty text of the batch as columns text, label (None when unlabelled), file, source_row;
    `read_rows` is the task's (tuneforge/tasks/interface.py)."""
    frames = []
    for file in batch_files(path):
        table = read_rows(file, data, label_required=False)
        table[TEXT] = [normalize_text(text) if text else "" for text in table[TEXT]]
        table[LABEL] = [(label.strip() or None) if label else None for label in table[LABEL]]
        table[FILE] = str(file)
        frames.append(table[table[TEXT] != ""])
    batch = pd.concat(frames, ignore_index=True)
    if batch.empty:
        raise StageError(f"{path}: every text in column '{data.text_column}' is empty")
    return batch[[TEXT, LABEL, FILE, SOURCE_ROW]]


def read_reference(path: Path) -> pd.DataFrame:
    """The production version's training rows (a split Parquet file: text, label, source_row)."""
    if not Path(path).is_file():
        raise StageError(f"{path}: the production version holds no such reference file (monitor.reference_file)")
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise StageError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    if TEXT not in frame.columns:
        raise StageError(f"{path}: no column '{TEXT}' in the reference data")
    frame = frame[frame[TEXT].notna()]
    if frame.empty:
        raise StageError(f"{path}: the reference data has no rows")
    return frame.reset_index(drop=True)


def sample(frame: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    """At most max_rows rows, a seeded sample in the original order (all rows when there are fewer)."""
    if len(frame) <= max_rows:
        return frame.reset_index(drop=True)
    return frame.sample(n=max_rows, random_state=seed).sort_index().reset_index(drop=True)
