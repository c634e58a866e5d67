"""Reading labelled tables (CSV, TSV, JSONL, Parquet) into one shape: text, label, source_row.

`source_row` is where a row came from, so errors can point at it: the line number in a CSV, TSV or JSONL
file (a header is line 1; a headerless file, read with `data.columns`, starts its data on line 1), the 1-based
row number in a Parquet file. TSV is CSV with tabs between the fields (quoting rules and all), which is what
published TSV datasets such as GoEmotions hold.

`read_table` gives the raw cells; `read_labelled_table` turns them into single-label rows, and a task with
another kind of label (a set of labels) converts the label cells itself.
"""

import contextlib
import csv
import io
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from numbers import Number
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.parquet

from tuneforge.base.errors import StageError
from tuneforge.base.spec import CONLL_EXTENSIONS, SUPPORTED_EXTENSIONS, TOKEN_CLASSIFICATION

TEXT, LABEL, SOURCE_ROW = "text", "label", "source_row"
DELIMITERS = {".csv": ",", ".tsv": "\t"}  # the delimited formats; the others are JSONL and Parquet
MULTI_LABEL_HINT = "a list of labels is multi-label data: set model.task: multi-label-classification"


@dataclass(frozen=True)
class Table:
    """A file's rows as read, before any column is interpreted: (line or row number, {column: cell})."""

    path: Path
    records: list[tuple[int, dict]]
    columns: list[str]
    headerless: bool = False  # the columns came from data.columns, not from the file

    @property
    def unit(self) -> str:
        """What a row number counts in error lines: a line of a text file, a row of a Parquet file."""
        return "row" if self.path.suffix.lower() == ".parquet" else "line"

    @property
    def delimited(self) -> bool:
        """CSV or TSV: every cell is a string, so a list can only be written as one joined string."""
        return self.path.suffix.lower() in DELIMITERS


def read_labelled_table(
    path: Path, text_column: str, label_column: str, *, label_required: bool = True,
    columns: list[str] | None = None, label_names: list[str] | None = None,
    labels_file: Path | None = None,
) -> pd.DataFrame:
    """Rows of `path` as columns text, label (strings or None) and source_row, in file order.

    With label_required=False a file without the label column reads as all labels None (unlabelled data).
    `columns` names the columns of a headerless CSV or TSV file; `label_names` (read from `labels_file`)
    maps labels given as ids 0, 1, ... to their names.
    """
    table = read_table(path, columns=columns)
    require_columns(table, text_column, label_column, label_required=label_required)
    labels = [
        _as_text(row.get(label_column), where=(table.path, table.unit, line, "data.label_column", label_column),
                 numbers=True)
        for line, row in table.records
    ]
    if label_names is not None:
        labels = [
            None if label is None else label_from_id(label, label_names, labels_file, table, line)
            for label, (line, _) in zip(labels, table.records, strict=True)
        ]
    return pd.DataFrame({TEXT: text_cells(table, text_column), LABEL: labels, SOURCE_ROW: source_rows(table)})


def read_data_table(path: Path, data, *, label_required: bool = True) -> pd.DataFrame:
    """A file of the spec's data section (a DataConfig) as single-label rows: headerless by data.columns, label
    ids named through data.labels_file; label_required=False as read_labelled_table."""
    names = read_label_names(data.labels_path) if data.labels_path else None
    return read_labelled_table(
        path, data.text_column, data.label_column, label_required=label_required, columns=data.columns,
        label_names=names, labels_file=data.labels_path,
    )


def read_table(path: Path, *, columns: list[str] | None = None) -> Table:
    """The rows of a CSV, TSV, JSONL or Parquet file, refused in one line when the file cannot be read.
    `columns` (data.columns) names the columns of a headerless CSV or TSV file; JSONL and Parquet name their
    own (a spec may mix them: the monitor's retraining writes the merged training file as Parquet)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        hint = f"; a CoNLL file is {TOKEN_CLASSIFICATION} data: set model.task: {TOKEN_CLASSIFICATION}" if (
            suffix in CONLL_EXTENSIONS) else ""
        raise StageError(
            f"{path}: unsupported file extension '{suffix or '(none)'}' (use {', '.join(SUPPORTED_EXTENSIONS)}{hint})"
        )
    if not path.is_file():
        raise StageError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise StageError(f"{path}: file is empty")
    headerless = False
    if suffix == ".parquet":
        records, names = _read_parquet(path)
    elif suffix in DELIMITERS:
        records, names = _read_delimited(path, decode_utf8(path), DELIMITERS[suffix], columns)
        headerless = columns is not None
    else:
        records, names = _read_jsonl(path, decode_utf8(path))
    return Table(path=path, records=records, columns=names, headerless=headerless)


def require_columns(table: Table, text_column: str, label_column: str, *, label_required: bool = True) -> None:
    for role, column in (("data.text_column", text_column), ("data.label_column", label_column)):
        if column not in table.columns and (label_required or role == "data.text_column"):
            names = ", ".join(map(str, table.columns)) or "(none)"
            raise StageError(f"{table.path}: no column '{column}' ({role}); columns are: {names}")
    if not table.records:
        raise StageError(f"{table.path}: {'has no' if table.headerless else 'has a header but no'} data rows")


def text_cells(table: Table, column: str) -> list[str | None]:
    return [
        _as_text(row.get(column), where=(table.path, table.unit, line, "data.text_column", column))
        for line, row in table.records
    ]


def source_rows(table: Table) -> list[int]:
    return [line for line, _ in table.records]


def read_label_names(path: Path) -> list[str]:
    """The label names of data.labels_file, one per line: a label's id is its line number from 0."""
    if not path.is_file():
        raise StageError(f"{path}: file not found (data.labels_file)")
    names = [line.strip() for line in decode_utf8(path).splitlines()]
    while names and not names[-1]:
        names.pop()  # trailing blank lines end the file; a blank line inside it would shift every id after it
    if not names:
        raise StageError(f"{path}: no label names (data.labels_file holds one label name per line)")
    if "" in names:
        raise StageError(f"{path}: line {names.index('') + 1} is blank; the ids are the line numbers, so every "
                         "line names a label (data.labels_file)")
    repeated = [name for name, count in Counter(names).items() if count > 1]
    if repeated:
        raise StageError(f"{path}: label '{repeated[0]}' is on lines "
                         f"{', '.join(str(i + 1) for i, name in enumerate(names) if name == repeated[0])}; "
                         "each label must be named once (data.labels_file)")
    numbers = [(i, name) for i, name in enumerate(names) if name.isdecimal()]
    if numbers:
        # A data cell "3" would be ambiguous: the label named "3", or the label with id 3?
        line, name = numbers[0]
        raise StageError(f"{path}: line {line + 1} names the label '{name}', a number: labels given by id are "
                         "mapped through this file, so its names must not be numbers (data.labels_file; for "
                         "numeric labels, leave data.labels_file out and give the labels as they are)")
    return names


def label_declaration(data) -> tuple[list[str] | None, str]:
    """(the label set data (a DataConfig) declares, or None to infer it from the rows; where it comes from:
    "declared" for data.labels, "labels_file", or "inferred")."""
    if data.labels is not None:
        return list(data.labels), "declared"
    if data.labels_file is not None:
        return read_label_names(data.labels_path), "labels_file"
    return None, "inferred"


def label_from_id(label: str, names: list[str], labels_file: Path | None, table: Table, line: int) -> str:
    """A label given by its id (0, 1, ... as in data.labels_file) as its name; a label given by name stays."""
    if not label.isdecimal():
        return label
    index = int(label)
    if index >= len(names):
        raise StageError(
            f"{table.path}: {table.unit} {line}: label id {index} is not in {labels_file} "
            f"({len(names)} labels: ids 0-{len(names) - 1}; data.labels_file)"
        )
    return names[index]


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
    kind = kind_of(value)
    hint = f" ({MULTI_LABEL_HINT})" if numbers and kind == "a list" else ""
    raise StageError(f"{path}: {unit} {line}: column '{column}' ({key}) holds {kind}, not {wanted}{hint}")


def kind_of(value) -> str:
    """What a cell holds, as an error line says it ("a list", "a number")."""
    if isinstance(value, str):
        return "a string"
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


def decode_utf8(path: Path) -> str:
    """The text of a UTF-8 file (a byte order mark dropped); refused in one line naming where it is not UTF-8."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise StageError(
            f"{path}: not valid UTF-8 at line {line} (byte 0x{raw[exc.start]:02x}); re-save the file as UTF-8"
        ) from None


def _read_delimited(
    path: Path, text: str, delimiter: str, columns: list[str] | None
) -> tuple[list[tuple[int, dict]], list[str]]:
    with _field_limit(len(text)):
        return _read_delimited_rows(path, text, delimiter, columns)


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


def _read_delimited_rows(
    path: Path, text: str, delimiter: str, columns: list[str] | None
) -> tuple[list[tuple[int, dict]], list[str]]:
    """CSV rules with `delimiter`; the header is the first line, or `columns` (data.columns) when given."""
    kind = "TSV" if delimiter == "\t" else "CSV"
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        if columns is None:
            header = next(reader, None)
            if not header or not any(cell.strip() for cell in header):
                raise StageError(f"{path}: no header row")
            _refuse_duplicate_columns(path, header, "the header (line 1)")
        else:
            header = list(columns)
            _refuse_duplicate_columns(path, header, "data.columns")
        records, line = [], reader.line_num
        for cells in reader:
            start, line = line + 1, reader.line_num  # a quoted field may span lines: report where it starts
            if not any(cell.strip() for cell in cells):
                continue
            if columns is not None and len(cells) != len(header):
                # Without a header nothing else says which cell is which: a short row is as wrong as a long one.
                raise StageError(
                    f"{path}: line {start} has {len(cells)} fields but data.columns names {len(header)} "
                    f"({', '.join(header)})"
                )
            if len(cells) > len(header):
                # Extra cells would be dropped silently and shift meaning: usually an unquoted comma in a text.
                raise StageError(
                    f"{path}: line {start} has {len(cells)} fields but the header has {len(header)} "
                    f"(quote texts that contain {'tabs' if kind == 'TSV' else 'commas'})"
                )
            records.append((start, dict(zip(header, cells, strict=False))))
    except csv.Error as exc:
        raise StageError(f"{path}: malformed {kind} at line {reader.line_num}: {exc}") from None
    return records, header


def _read_jsonl(path: Path, text: str) -> tuple[list[tuple[int, dict]], list[str]]:
    records, columns = [], {}
    # JSON Lines are separated by "\n" only: str.splitlines would also break inside a JSON string holding U+2028,
    # U+2029 or U+0085 raw, as json.dumps(ensure_ascii=False) writes them. A "\r" before "\n" is JSON whitespace.
    for number, line in enumerate(text.split("\n"), start=1):
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
    files = (("data.train_file", data.train_file), ("data.val_file", data.val_file), ("data.test_file", data.test_file),
             ("data.oos_file", data.oos_file), ("data.labels_file", data.labels_file))
    for key, name in files:
        if name and not (folder / name).is_file():
            raise StageError(f"{key}: file not found: {Path(data.dir) / name}")
