"""Training data for a retrain the drift monitor triggers: the current training file plus the batch's
labelled rows, in a new folder under monitor.retrain_dir that the finetune flow points `data.dir` at.

    <monitor.retrain_dir>/<batch id>/merged_train.parquet   data.train_file's rows + the new labelled rows
    <monitor.retrain_dir>/<batch id>/<test file>            the test split, pinned (data.test_file)
    <monitor.retrain_dir>/<batch id>/<val file>             a copy of data.val_file, when the spec names one
    <monitor.retrain_dir>/<batch id>/<labels file>          a copy of data.labels_file, when the spec names one
    <monitor.retrain_dir>/<batch id>/<oos file>             a copy of data.oos_file, when the spec names one

Every file is read the task's way (its `read_rows`) and the merged rows are written so that the spec, with the
returned `data.*` overrides, reads them back as the same rows: a label is the task's file cell (`file_label`:
a label set is a list of names, never its canonical string, which data.label_separator would split), and with
data.labels_file each label is written as its id, read back through the copied labels file (a name would only
stay a name by luck: a label named "3" is read as the label of id 3), so the label set and its recorded order
stay the labels file's. Parquet and JSONL name their own columns and hold lists, so data.columns and
data.label_separator, which the copied CSV/TSV files may still need, do not touch them.

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
from tuneforge.base.spec import DataConfig
from tuneforge.data.io import LABEL, SOURCE_ROW, TEXT, read_label_names
from tuneforge.data.textnorm import text_key
from tuneforge.monitor.data import batch_sha256, read_batch
from tuneforge.params import Params

# (params, folder, {data key: file name in the folder}, shown_as=) -> None, or a StageError naming what a data
# stage refuses
DataCheck = Callable[..., None]
# (file, data cfg, *, label_required) -> rows; label -> its cell in a JSONL or Parquet file (the task's)
ReadRows = Callable[..., pd.DataFrame]
FileLabel = Callable[[str], object]
TRAIN_FILE, PINNED_TEST_FILE = "merged_train.parquet", "test.jsonl"


def prepare_retrain_data(
    params: Params, summary: dict, new_data: Path | str, *, read_rows: ReadRows, file_label: FileLabel,
    check_data: DataCheck,
) -> dict:
    """Write the merged folder for a drifted batch, checked by `check_data` (the caller runs the validate and
    split stages on it: flows/monitor.py) before it is renamed into place; returns {"status", "rows", and when status is
    "prepared": "data_dir", "overrides"}. Status "labels needed": the batch has no labelled rows;
    "nothing new": every labelled text is already in the training data. `read_rows` and `file_label` are the
    task's (tuneforge/tasks/interface.py)."""
    new_data = Path(new_data)
    data = params.data
    batch = read_batch(new_data, data, read_rows)
    if batch_sha256(new_data) != summary["batch"]["sha256"]:
        raise StageError(f"{new_data}: changed since the drift check; run the monitor on it again")
    labelled = batch[batch[LABEL].notna()]
    if labelled.empty:
        return {"status": "labels needed", "rows": {"new": len(batch), "new_labelled": 0}}

    current = read_rows(data.train_path, data)[[TEXT, LABEL]]
    test_name, test = pinned_test_split(params, summary, read_rows)
    files = merged_file_names(data, test_name)
    held_out_keys = set(test[TEXT].fillna("").map(text_key))
    if data.val_path is not None:
        val = read_rows(data.val_path, data)
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
        columns = {TEXT: data.text_column, LABEL: data.label_column}
        with_file_labels(train, data, file_label).rename(columns=columns).to_parquet(staging / TRAIN_FILE, index=False)
        if data.test_path is not None:
            shutil.copyfile(data.test_path, staging / test_name)
        else:
            test = with_file_labels(test, data, file_label)
            write_at_source_lines(test, staging / test_name, data.text_column, data.label_column)
        for key, given in carried_files(data):
            if key in files:
                shutil.copyfile(given, staging / files[key])
        check_data(params, staging, files, shown_as=target)
    overrides = [f"data.{key}={name}" for key, name in files.items()]
    return {"status": "prepared", "rows": rows, "data_dir": str(target), "overrides": overrides}


def merged_file_names(data: DataConfig, test_name: str) -> dict[str, str]:
    """{data key: file name} of the merged folder: the merged train and pinned test files, and copies of
    data.val_file, data.labels_file and data.oos_file under their own names unless a file before them has it."""
    names = {"train_file": TRAIN_FILE, "test_file": test_name}
    for key, given in carried_files(data):
        if given is not None:
            taken = given.name in names.values()
            names[key] = f"given_{key.removesuffix('_file')}{given.suffix}" if taken else given.name
    return names


def carried_files(data: DataConfig) -> tuple[tuple[str, Path | None], ...]:
    """The spec's files copied into the merged folder as they are (those it names)."""
    return (("val_file", data.val_path), ("labels_file", data.labels_path), ("oos_file", data.oos_path))


def with_file_labels(frame: pd.DataFrame, data: DataConfig, file_label: FileLabel) -> pd.DataFrame:
    """`frame` with each label as the merged files hold it: the task's file cell, its names written as ids
    (strings, so that a Parquet column keeps one type) when the spec has data.labels_file."""
    ids = {name: str(i) for i, name in enumerate(read_label_names(data.labels_path))} if data.labels_path else {}

    def as_id(name: str) -> str:
        return ids.get(name, name)  # a name the file lacks stays, for the validate stage to refuse by name

    def cell(label: str | None):
        if label is None:
            return None  # a row of the training file without a label stays one, for validate to judge
        written = file_label(label)
        return [as_id(name) for name in written] if isinstance(written, list) else as_id(written)

    cells = pd.Series([cell(label) for label in frame[LABEL]], index=frame.index, dtype=object)
    return frame.assign(**{LABEL: cells})


def pinned_test_split(params: Params, summary: dict, read_rows: ReadRows) -> tuple[str, pd.DataFrame]:
    """(file name in the merged folder, its rows: text, label, source_row) of the pinned test split."""
    data = params.data
    if data.test_path is not None:
        return data.test_path.name, read_rows(data.test_path, data)
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


