"""Training data for a retrain the drift monitor triggers: the current training file plus the batch's
labelled rows, in a new folder under monitor.retrain_dir that the finetune flow points `data.dir` at.

    <monitor.retrain_dir>/<batch id>/merged_train.parquet   data.train_file's rows + the new labelled rows
    <monitor.retrain_dir>/<batch id>/<test file>            the test split, pinned (data.test_file)
    <monitor.retrain_dir>/<batch id>/<val file>             a copy of data.val_file, when the spec names one

The test split is pinned so that the retrained model is scored on the same test rows as the production
model: the promotion gates compare two versions only on the same test split (by the hash of the split
stage's test.parquet). It is a byte copy of the current data.test_file when the spec names one, else the
production version's own test split (`promotion.test_split_file` of its `promotion.test_split_role`)
written as test.jsonl with every row on its original line number (blank lines between): validate
numbers rows by line, so the split stage writes back a byte-identical test.parquet.
A given val file is copied over as is: the flow points data.dir at the new folder, where data.val_file
must then be too, and the retrain selects its model on the same val split. Training rows whose text is a
test or val text (after normalisation and casefolding, as the split stage compares texts) are left out, and
new rows whose text is already in the training data are not added twice.

Before anything is written where the flow will look, the caller's check runs the folder through the validate
and split stages in a scratch directory (flows/monitor.py): data those stages refuse never reaches a retrain.
"""

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from tuneforge.base.errors import StageError
from tuneforge.base.outputs import atomic_dirs
from tuneforge.data.io import LABEL, SOURCE_ROW, TEXT, read_data_table
from tuneforge.data.textnorm import text_key
from tuneforge.monitor.data import batch_sha256, read_batch
from tuneforge.params import Params

# (params, folder, test file name, shown_as=, val_file=) -> None, or a StageError naming what a data stage refuses
DataCheck = Callable[..., None]
TRAIN_FILE, PINNED_TEST_FILE = "merged_train.parquet", "test.jsonl"


def prepare_retrain_data(params: Params, summary: dict, new_data: Path | str, *, check_data: DataCheck) -> dict:
    """Write the merged folder for a drifted batch, checked by `check_data` (the caller runs the validate and
    split stages on it: flows/monitor.py) before it is renamed into place; returns {"status", "rows", and when status is
    "prepared": "data_dir", "overrides"}. Status "labels needed": the batch has no labelled rows;
    "nothing new": every labelled text is already in the training data."""
    new_data = Path(new_data)
    data = params.data
    batch = read_batch(new_data, data)
    if batch_sha256(new_data) != summary["batch"]["sha256"]:
        raise StageError(f"{new_data}: changed since the drift check; run the monitor on it again")
    labelled = batch[batch[LABEL].notna()]
    if labelled.empty:
        return {"status": "labels needed", "rows": {"new": len(batch), "new_labelled": 0}}

    current = read_data_table(data.train_path, data)[[TEXT, LABEL]]
    test_name, test = pinned_test_split(params, summary)
    val_name = given_val_name(data, test_name)
    held_out_keys = set(test[TEXT].fillna("").map(text_key))
    if data.val_path is not None:
        val = read_data_table(data.val_path, data)
        held_out_keys |= set(val[TEXT].fillna("").map(text_key))
    current_keys = current[TEXT].fillna("").map(text_key)
    new_keys = labelled[TEXT].map(text_key)
    fresh = labelled[~new_keys.isin(set(current_keys)) & ~new_keys.isin(held_out_keys)]
    fresh = fresh[~fresh[TEXT].map(text_key).duplicated()]
    rows = {"new": len(batch), "new_labelled": len(labelled), "added": len(fresh), "test": len(test)}
    if fresh.empty:
        return {"status": "nothing new", "rows": rows}
    train = pd.concat([current[~current_keys.isin(held_out_keys)], fresh[[TEXT, LABEL]]], ignore_index=True)
    rows["train"] = len(train)

    target = Path(params.monitor.retrain_dir) / summary["batch"]["id"]
    with atomic_dirs(target) as (staging,):
        train.rename(columns={TEXT: data.text_column, LABEL: data.label_column}).to_parquet(
            staging / TRAIN_FILE, index=False
        )
        if data.test_path is not None:
            shutil.copyfile(data.test_path, staging / test_name)
        else:
            write_at_source_lines(test, staging / test_name, data.text_column, data.label_column)
        if val_name is not None:
            shutil.copyfile(data.val_path, staging / val_name)
        check_data(params, staging, test_name, shown_as=target, val_file=val_name)
    overrides = [f"data.train_file={TRAIN_FILE}", f"data.test_file={test_name}"]
    overrides += [f"data.val_file={val_name}"] if val_name is not None else []
    return {"status": "prepared", "rows": rows, "data_dir": str(target), "overrides": overrides}


def given_val_name(data, test_name: str) -> str | None:
    """data.val_file's name in the merged folder: its own, unless the merged train or pinned test file has it."""
    if data.val_path is None:
        return None
    name = data.val_path.name
    return name if name not in (TRAIN_FILE, test_name) else f"given_val{data.val_path.suffix}"


def pinned_test_split(params: Params, summary: dict) -> tuple[str, pd.DataFrame]:
    """(file name in the merged folder, its rows: text, label, source_row) of the pinned test split."""
    data = params.data
    if data.test_path is not None:
        return data.test_path.name, read_data_table(data.test_path, data)
    from registry import api

    promotion = params.promotion
    folder = api.resolve(summary["production"]["ref"], config=params.registry) / promotion.test_split_role
    path = folder / (promotion.test_split_file or "test.parquet") if folder.is_dir() else folder
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise StageError(
            f"{summary['production']['ref']}: its test split ({path.name}) is not readable: {str(exc).splitlines()[0]}"
        ) from None
    if TEXT not in frame.columns or LABEL not in frame.columns:
        raise StageError(f"{summary['production']['ref']}: its test split ({path.name}) has no text and label columns")
    return PINNED_TEST_FILE, frame


def write_at_source_lines(frame: pd.DataFrame, path: Path, text_column: str, label_column: str) -> None:
    """JSONL with each row on line `source_row` (blank lines between), or dense when rows have no usable
    line numbers: read back by tuneforge.data.io, every row gets its source_row again."""
    records = [json.dumps({text_column: text, label_column: label}, ensure_ascii=False)
               for text, label in zip(frame[TEXT], frame[LABEL], strict=True)]
    numbers = frame[SOURCE_ROW].tolist() if SOURCE_ROW in frame.columns else []
    if numbers and all(isinstance(n, int) and n >= 1 for n in numbers) and len(set(numbers)) == len(numbers):
        lines = [""] * max(numbers)
        for number, record in zip(numbers, records, strict=True):
            lines[number - 1] = record
    else:
        lines = records
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


