"""Reading CSV, TSV, JSONL and Parquet into (text, label, source_row), and naming the problem when that fails."""

import json

import pandas as pd
import pytest

from tests.helpers.project import write_csv
from tuneforge.base.errors import StageError
from tuneforge.data.io import read_label_names, read_labelled_table


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


def test_tsv_follows_csv_rules_with_tabs(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_text('text\tlabel\n"say ""hi""\tthere"\ta\nplain, with comma\tb\n', encoding="utf-8")
    frame = read_labelled_table(path, "text", "label")
    assert frame["text"].tolist() == ['say "hi"\tthere', "plain, with comma"]
    assert frame["source_row"].tolist() == [2, 3]


@pytest.mark.parametrize("name, separator", [("d.csv", ","), ("d.tsv", "\t")])
def test_a_headerless_file_reads_its_first_line_as_data_by_data_columns(tmp_path, name, separator):
    path = tmp_path / name
    path.write_text(separator.join(["first text", "a", "id1"]) + "\n\n" + separator.join(["second", "b", "id2"]) + "\n")
    frame = read_labelled_table(path, "text", "intent", columns=["text", "intent", "id"])
    assert frame["text"].tolist() == ["first text", "second"] and frame["label"].tolist() == ["a", "b"]
    assert frame["source_row"].tolist() == [1, 3]


@pytest.mark.parametrize("line", ["too\tmany\tfields\there", "too few"])
def test_a_headerless_row_with_another_number_of_fields_names_its_line(tmp_path, line):
    path = tmp_path / "d.tsv"
    path.write_text(f"fine\ta\n{line}\n", encoding="utf-8")
    with pytest.raises(StageError) as caught:
        read_labelled_table(path, "text", "label", columns=["text", "label"])
    fields = line.count("\t") + 1
    assert caught.value.message == f"{path}: line 2 has {fields} fields but data.columns names 2 (text, label)"


def test_data_columns_leave_files_that_name_their_columns_alone(tmp_path):
    # A spec may mix formats: the monitor's retraining merges the training file into Parquet.
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a", "label": "b"}\n', encoding="utf-8")
    frame = read_labelled_table(path, "text", "label", columns=["label", "text"])
    assert frame["text"].tolist() == ["a"] and frame["label"].tolist() == ["b"]


def test_labels_given_by_id_are_named_through_the_labels_file(tmp_path):
    names_path = tmp_path / "labels.txt"
    names_path.write_text("refund\ncard\n\n", encoding="utf-8")  # a trailing blank line ends the file
    names = read_label_names(names_path)
    assert names == ["refund", "card"]
    path = write_csv(tmp_path / "d.csv", [{"text": "x", "label": "1"}, {"text": "y", "label": "refund"}])
    frame = read_labelled_table(path, "text", "label", label_names=names, labels_file=names_path)
    assert frame["label"].tolist() == ["card", "refund"]

    write_csv(path, [{"text": "x", "label": "0"}, {"text": "y", "label": "2"}])
    with pytest.raises(StageError) as caught:
        read_labelled_table(path, "text", "label", label_names=names, labels_file=names_path)
    assert caught.value.message == f"{path}: line 3: label id 2 is not in {names_path} (2 labels: ids 0-1; " \
                                   "data.labels_file)"


@pytest.mark.parametrize(
    "content, message",
    [("a\n\nb\n", "line 2 is blank; the ids are the line numbers"), ("a\nb\na\n", "label 'a' is on lines 1, 3"),
     ("\n\n", "no label names")],
)
def test_a_labels_file_that_would_shift_or_repeat_ids_is_refused(tmp_path, content, message):
    path = tmp_path / "labels.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(StageError, match=message):
        read_label_names(path)


def test_a_jsonl_text_may_hold_unicode_line_separators_raw(tmp_path):
    path = tmp_path / "rows.jsonl"
    rows = [{"text": "first\u2028second\u0085third", "label": "a"}, {"text": "plain", "label": "b"}]
    path.write_text("\r\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + "\n", encoding="utf-8")
    frame = read_labelled_table(path, "text", "label")
    assert list(frame["text"]) == [rows[0]["text"], "plain"] and list(frame["source_row"]) == [1, 2]
