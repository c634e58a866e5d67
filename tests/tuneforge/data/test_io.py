"""Reading CSV, JSONL and Parquet into (text, label, source_row), and naming the problem when that fails."""

import json

import pandas as pd
import pytest

from tests.helpers.project import write_csv
from tuneforge.base.errors import StageError
from tuneforge.data.io import read_labelled_table


def test_csv_rows_keep_their_line_numbers_even_across_quoted_newlines(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('text,label\n"first, with comma",a\n"spans\ntwo lines",b\n\nlast,a\n', encoding="utf-8")
    frame = read_labelled_table(path, "text", "label")
    assert frame["text"].tolist() == ["first, with comma", "spans\ntwo lines", "last"]
    assert frame["source_row"].tolist() == [2, 3, 6]


def test_csv_with_byte_order_mark_and_missing_cells(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes("\ufefftext,label\nhello,a\nno label\n".encode())
    frame = read_labelled_table(path, "text", "label")
    assert frame["label"].tolist() == ["a", None]


def test_jsonl_and_parquet_read_the_configured_columns(tmp_path):
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("\n".join(json.dumps({"utterance": f"t{i}", "intent": i}) for i in range(3)) + "\n")
    frame = read_labelled_table(jsonl, "utterance", "intent")
    assert frame["label"].tolist() == ["0", "1", "2"] and frame["source_row"].tolist() == [1, 2, 3]

    parquet = tmp_path / "d.parquet"
    pd.DataFrame({"utterance": ["x", "y"], "intent": [3.0, None]}).to_parquet(parquet)
    frame = read_labelled_table(parquet, "utterance", "intent")
    assert frame["label"].tolist() == ["3", None] and frame["source_row"].tolist() == [1, 2]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("d.csv", None, "d.csv: file not found"),
        ("d.csv", b"", "d.csv: file is empty"),
        ("d.csv", b"text,label\n", "d.csv: has a header but no data rows"),
        ("d.csv", b"text,label\nok,a\ncaf\xe9,b\n", "d.csv: not valid UTF-8 at line 3 (byte 0xe9)"),
        ("d.csv", b"body,intent\nx,y\n", "d.csv: no column 'text' (data.text_column); columns are: body, intent"),
        ("d.jsonl", b'{"text": "a", "label": "b"}\n{oops\n', "d.jsonl: line 2 is not valid JSON"),
        ("d.jsonl", b'["a", "b"]\n', "d.jsonl: line 1 is not a JSON object"),
        ("d.parquet", b"not parquet at all", "d.parquet: not a readable Parquet file"),
        ("d.xlsx", b"x", "d.xlsx: unsupported file extension '.xlsx'"),
    ],
)
def test_bad_files_give_one_line_naming_the_problem(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(StageError) as caught:
        read_labelled_table(path, "text", "label")
    assert message in caught.value.message
    assert "\n" not in caught.value.message


def test_write_csv_helper_round_trips(tmp_path):
    path = write_csv(tmp_path / "x.csv", [{"text": "héllo", "label": "a"}])
    assert read_labelled_table(path, "text", "label")["text"].tolist() == ["héllo"]
