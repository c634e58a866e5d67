"""Values a reader must refuse instead of guessing (issue #18): texts that are not strings, a CSV field past
the csv module's limit, a column name given twice, a directory passed as predict's texts file. Each refusal
is one line naming the file and, where there is one, the line or row."""

import json

import pyarrow
import pyarrow.parquet
import pytest
from typer.testing import CliRunner

from stages import validate
from tests.helpers.project import REPO_ROOT, labelled_rows, write_csv
from tuneforge.base.errors import StageError
from tuneforge.base.layout import Workspace
from tuneforge.base.spec import DataConfig, ValidateConfig
from tuneforge.cli import app
from tuneforge.data.io import read_labelled_table
from tuneforge.inference import onnx_predictor as predict
from tuneforge.monitor.data import read_batch
from tuneforge.tasks import text_classification


def refusal(path, **kwargs) -> str:
    with pytest.raises(StageError) as caught:
        read_labelled_table(path, "text", "label", **kwargs)
    assert "\n" not in caught.value.message
    return caught.value.message


def write_jsonl(path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


@pytest.mark.parametrize(
    "value, kind",
    [({"nested": "my card was declined"}, "an object"), (12345, "a number"), (True, "a boolean"),
     (["Hey, my card..."], "a list"), (1.5, "a number")],
)
def test_a_jsonl_text_that_is_not_a_string_is_refused_with_its_line(tmp_path, value, kind):
    path = tmp_path / "d.jsonl"
    write_jsonl(path, [{"text": "fine", "label": "a"}, {"text": value, "label": "b"}])
    assert refusal(path) == f"{path}: line 2: column 'text' (data.text_column) holds {kind}, not a string"


def test_a_parquet_list_of_strings_text_column_is_refused_with_its_row(tmp_path):
    path = tmp_path / "d.parquet"
    texts = pyarrow.array([["Hey, my card was declined"], ["x"]], pyarrow.list_(pyarrow.string()))
    pyarrow.parquet.write_table(pyarrow.table({"text": texts, "label": ["a", "b"]}), path)
    assert refusal(path) == f"{path}: row 1: column 'text' (data.text_column) holds a list, not a string"


def test_a_label_that_is_an_object_or_a_list_is_refused_but_numbers_stay_labels(tmp_path):
    path = tmp_path / "d.jsonl"
    write_jsonl(path, [{"text": "a", "label": 3}, {"text": "b", "label": ["x", "y"]}])
    assert refusal(path) == (
        f"{path}: line 2: column 'label' (data.label_column) holds a list, not a string or a number "
        "(a list of labels is multi-label data: set model.task: multi-label-classification)"
    )
    write_jsonl(path, [{"text": "a", "label": 3}, {"text": "b", "label": 4.0}, {"text": "c", "label": None}])
    assert read_labelled_table(path, "text", "label")["label"].tolist() == ["3", "4", None]

    parquet = tmp_path / "d.parquet"
    labels = pyarrow.array([{"name": "a"}, {"name": "b"}])
    pyarrow.parquet.write_table(pyarrow.table({"text": ["a", "b"], "label": labels}), parquet)
    assert refusal(parquet) == (
        f"{parquet}: row 1: column 'label' (data.label_column) holds an object, not a string or a number"
    )


def test_missing_texts_stay_missing_for_the_cleaning_step(tmp_path):
    path = tmp_path / "d.jsonl"
    write_jsonl(path, [{"text": None, "label": "a"}, {"label": "b"}, {"text": "ok", "label": "c"}])
    assert read_labelled_table(path, "text", "label")["text"].tolist() == [None, None, "ok"]


def test_the_monitor_batch_reader_refuses_a_text_that_is_not_a_string(tmp_path):
    batch = tmp_path / "batch"
    batch.mkdir()
    write_jsonl(batch / "a.jsonl", [{"text": "my card was declined"}])
    write_jsonl(batch / "b.jsonl", [{"text": "fine"}, {"text": {"nested": "x"}}])
    with pytest.raises(StageError) as caught:
        read_batch(batch, DataConfig(), text_classification.read_rows)
    assert caught.value.message == (
        f"{batch / 'b.jsonl'}: line 2: column 'text' (data.text_column) holds an object, not a string"
    )


def test_a_csv_field_past_the_csv_modules_limit_reads_and_is_measured_by_its_length(tmp_path):
    path = tmp_path / "d.csv"
    long_text = "my card was declined " * 10_000  # 210,000 characters: the csv module stops at 131,072
    write_csv(path, [{"text": "short", "label": "a"}, {"text": long_text, "label": "b"}])
    frame = read_labelled_table(path, "text", "label")
    assert frame["text"].tolist() == ["short", long_text] and frame["source_row"].tolist() == [2, 3]


def test_validate_names_max_text_chars_and_the_line_of_a_text_past_the_csv_limit(in_tmp_dir):
    rows = labelled_rows(classes=3, per_class=12)
    rows.insert(2, {"text": "x" * 200_000, "label": rows[0]["label"]})
    write_csv(in_tmp_dir / "in" / "train.csv", rows)
    with pytest.raises(StageError) as caught:
        validate.run(DataConfig(dir="in", train_file="train.csv"), ValidateConfig(),
                     workspace=Workspace(expectations=REPO_ROOT / "expectations"))
    message = caught.value.message
    assert "malformed CSV" not in message
    assert message.startswith(
        "in/train.csv: 1 of 10 expectations failed: text length 2..2000 characters "
        "(validate.min_text_chars, validate.max_text_chars): 1 of 37 rows (2.7%), first at line 4: 'xxx"
    )
    assert not (in_tmp_dir / "data").exists()


@pytest.mark.parametrize(
    "header, column",
    [("text,label,text", "text"), ("label,text,label", "label"), ("text,label,note,note", "note")],
)
def test_a_csv_header_with_a_repeated_column_names_it(tmp_path, header, column):
    path = tmp_path / "d.csv"
    cells = len(header.split(","))
    path.write_text(header + "\n" + ",".join(["x"] * cells) + "\n", encoding="utf-8")
    assert refusal(path) == (
        f"{path}: column '{column}' appears 2 times in the header (line 1); column names must be unique"
    )


def test_blank_trailing_columns_of_a_spreadsheet_export_are_no_duplicates(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label,,\nhello,a,,\n", encoding="utf-8")
    assert read_labelled_table(path, "text", "label")["text"].tolist() == ["hello"]


def test_a_repeated_key_in_a_jsonl_object_or_a_parquet_schema_is_named(tmp_path):
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": "y", "text": "c"}\n', encoding="utf-8")
    assert refusal(jsonl) == f"{jsonl}: line 2: key 'text' appears twice in one JSON object (keys must be unique)"

    parquet = tmp_path / "d.parquet"
    columns = [pyarrow.array(["a"]), pyarrow.array(["x"]), pyarrow.array(["b"])]
    pyarrow.parquet.write_table(pyarrow.Table.from_arrays(columns, names=["text", "label", "text"]), parquet)
    assert refusal(parquet) == (
        f"{parquet}: column 'text' appears 2 times in the schema; column names must be unique"
    )


def test_predict_says_a_texts_file_that_is_a_directory_is_one(tmp_path):
    with pytest.raises(StageError) as caught:
        predict.read_texts(tmp_path)
    assert caught.value.message == (
        f"{tmp_path}: is a directory; --file takes one UTF-8 text file with one text per line"
    )
    result = CliRunner().invoke(app, ["predict", str(tmp_path / "no-model"), "--file", str(tmp_path)])
    assert result.exit_code == 1
    assert [line for line in result.output.splitlines() if line.strip()] == [
        f"error: {tmp_path}: is a directory; --file takes one UTF-8 text file with one text per line"
    ]
