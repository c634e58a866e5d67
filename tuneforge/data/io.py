"""Reading labelled tables (CSV, JSONL, Parquet) into one shape: text, label, source_row.

`source_row` is where a row came from, so errors can point at it: the line number in a CSV or
JSONL file (the CSV header is line 1), the 1-based row number in a Parquet file.
"""

import contextlib
import csv
import io
import json
from collections import Counter
from collections.abc import Iterator
from numbers import Number
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.parquet

from tuneforge.base.errors import StageError
from tuneforge.base.spec import SUPPORTED_EXTENSIONS

TEXT, LABEL, SOURCE_ROW = "text", "label", "source_row"


def read_labelled_table(
    path: Path, text_column: str, label_column: str, *, label_required: bool = True
) -> pd.DataFrame:
    """Rows of `path` as columns text, label (strings or None) and source_row, in file order.

    With label_required=False a file without the label column reads as all labels None (unlabelled data).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        raise StageError(
            f"{path}: unsupported file extension '{suffix or '(none)'}' (use {', '.join(SUPPORTED_EXTENSIONS)})"
        )
    if not path.is_file():
        raise StageError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise StageError(f"{path}: file is empty")
    if suffix == ".parquet":
        records, columns = _read_parquet(path)
    else:
        text = _decode_utf8(path)
        records, columns = _read_csv(path, text) if suffix == ".csv" else _read_jsonl(path, text)
    unit = "row" if suffix == ".parquet" else "line"
    for role, column in (("data.text_column", text_column), ("data.label_column", label_column)):
        if column not in columns and (label_required or role == "data.text_column"):
            raise StageError(
                f"{path}: no column '{column}' ({role}); columns are: {', '.join(map(str, columns)) or '(none)'}"
            )
    if not records:
        raise StageError(f"{path}: has a header but no data rows")
    return pd.DataFrame(
        {
            TEXT: [
                _as_text(row.get(text_column), where=(path, unit, line, "data.text_column", text_column))
                for line, row in records
            ],
            LABEL: [
                _as_text(row.get(label_column), where=(path, unit, line, "data.label_column", label_column),
                         numbers=True)
                for line, row in records
            ],
            SOURCE_ROW: [line for line, _ in records],
        }
    )


def _as_text(value, *, where: tuple, numbers: bool = False) -> str | None:
    """A cell as a string, None when missing. Anything else (a list, an object, bytes; a number or a boolean
    unless `numbers`) is refused with its file and line: str() would turn it into a text nobody wrote
    ("['Hey, my card...']", "{'nested': ...}", "True"). Labels may be numbers (intent 3 is the label "3")."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, str):
        return value
    if numbers and isinstance(value, Number):
        if isinstance(value, float) and value.is_integer():
            return str(int(value))  # numeric labels read from Parquet as floats stay "3", not "3.0"
        return str(value)
    path, unit, line, key, column = where
    wanted = "a string or a number" if numbers else "a string"
    raise StageError(f"{path}: {unit} {line}: column '{column}' ({key}) holds {_kind(value)}, not {wanted}")


def _kind(value) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple | np.ndarray):
        return "a list"
    if isinstance(value, bool | np.bool_):
        return "a boolean"
    if isinstance(value, Number):
        return "a number"
    if isinstance(value, bytes | bytearray):
        return "bytes"
    return f"a {type(value).__name__}"


def _decode_utf8(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise StageError(
            f"{path}: not valid UTF-8 at line {line} (byte 0x{raw[exc.start]:02x}); re-save the file as UTF-8"
        ) from None


def _read_csv(path: Path, text: str) -> tuple[list[tuple[int, dict]], list[str]]:
    with _field_limit(len(text)):
        return _read_csv_rows(path, text)


@contextlib.contextmanager
def _field_limit(limit: int) -> Iterator[None]:
    """Lift the csv module's field limit (128 KiB) to the file's own length: the whole file is in memory
    already, and a long text is then refused by the validate stage as longer than validate.max_text_chars,
    on its line, instead of as "malformed CSV"."""
    before = csv.field_size_limit()
    csv.field_size_limit(max(before, limit))
    try:
        yield
    finally:
        csv.field_size_limit(before)


def _read_csv_rows(path: Path, text: str) -> tuple[list[tuple[int, dict]], list[str]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if not header or not any(cell.strip() for cell in header):
            raise StageError(f"{path}: no header row")
        _refuse_duplicate_columns(path, header, "the header (line 1)")
        records, line = [], reader.line_num
        for cells in reader:
            start, line = line + 1, reader.line_num  # a quoted field may span lines: report where it starts
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) > len(header):
                # Extra cells would be dropped silently and shift meaning: usually an unquoted comma in a text.
                raise StageError(
                    f"{path}: line {start} has {len(cells)} fields but the header has {len(header)} "
                    "(quote texts that contain commas)"
                )
            records.append((start, dict(zip(header, cells, strict=False))))
    except csv.Error as exc:
        raise StageError(f"{path}: malformed CSV at line {reader.line_num}: {exc}") from None
    return records, header


def _read_jsonl(path: Path, text: str) -> tuple[list[tuple[int, dict]], list[str]]:
    records, columns = [], {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line, object_pairs_hook=_keys_once)
        except json.JSONDecodeError as exc:
            raise StageError(f"{path}: line {number} is not valid JSON ({exc.msg})") from None
        except _DuplicateKey as exc:
            raise StageError(
                f"{path}: line {number}: key '{exc.key}' appears twice in one JSON object (keys must be unique)"
            ) from None
        if not isinstance(row, dict):
            raise StageError(f"{path}: line {number} is not a JSON object")
        columns.update(dict.fromkeys(row))
        records.append((number, row))
    if not records:
        raise StageError(f"{path}: no JSON rows")
    return records, list(columns)


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _keys_once(pairs: list[tuple[str, object]]) -> dict:
    """json's object_pairs_hook: a repeated key would otherwise keep its last value silently."""
    row = {}
    for key, value in pairs:
        if key in row:
            raise _DuplicateKey(key)
        row[key] = value
    return row


def _refuse_duplicate_columns(path: Path, columns: list[str], where: str) -> None:
    """Two columns of one name: one of them would be dropped silently (or the reader fails obscurely)."""
    # Blank names are left alone: spreadsheets export trailing empty columns ("text,label,,").
    repeated = [name for name, count in Counter(columns).items() if count > 1 and str(name).strip()]
    if repeated:
        raise StageError(
            f"{path}: column '{repeated[0]}' appears {columns.count(repeated[0])} times in {where}; "
            "column names must be unique"
        )


def _read_parquet(path: Path) -> tuple[list[tuple[int, dict]], list[str]]:
    try:
        # The schema first: pandas fails on a repeated column name with an error that does not say so.
        _refuse_duplicate_columns(path, pyarrow.parquet.read_schema(path).names, "the schema")
        frame = pd.read_parquet(path)
    except (pyarrow.ArrowException, OSError, ValueError) as exc:
        raise StageError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    return list(enumerate(frame.to_dict("records"), start=1)), [str(c) for c in frame.columns]


def check_data_files(data, root: Path = Path(".")) -> None:
    """Before DVC runs: the configured input files exist (DVC's own error for a missing dep is a traceback-ish line)."""
    folder = Path(root) / data.dir
    if not folder.is_dir():
        raise StageError(f"data.dir: folder not found: {data.dir}")
    files = (("data.train_file", data.train_file), ("data.val_file", data.val_file), ("data.test_file", data.test_file))
    for key, name in files:
        if name and not (folder / name).is_file():
            raise StageError(f"{key}: file not found: {Path(data.dir) / name}")
