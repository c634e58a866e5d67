"""Multi-label rows: a label set per text read from lists, separated strings and label ids, as one canonical cell;
and every way a label cell can be wrong, refused in one line naming the file, the line and the key."""

import json

import pandas as pd
import pyarrow
import pyarrow.parquet
import pytest

from tuneforge.base.errors import ConfigError, StageError
from tuneforge.base.spec import DataConfig
from tuneforge.tasks.multi_label_data import read_rows


def write_jsonl(path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def data(tmp_path, train_file: str, **keys) -> DataConfig:
    return DataConfig(dir=str(tmp_path), train_file=train_file, **keys)


def labels_of(tmp_path, config: DataConfig) -> list:
    return read_rows(tmp_path / config.train_file, config)["label"].tolist()


def test_jsonl_lists_become_sorted_distinct_canonical_cells(tmp_path):
    write_jsonl(tmp_path / "d.jsonl", [
        {"text": "a", "label": ["joy", " anger ", "joy"]}, {"text": "b", "label": []},
        {"text": "c", "label": None}, {"text": "d", "label": [3, 1]},
    ])
    frame = read_rows(tmp_path / "d.jsonl", data(tmp_path, "d.jsonl"))
    assert frame["label"].tolist() == ['["anger","joy"]', "[]", None, '["1","3"]']
    assert frame["source_row"].tolist() == [1, 2, 3, 4]


def test_parquet_lists_of_ids_are_named_through_the_labels_file(tmp_path):
    (tmp_path / "labels.txt").write_text("admiration\namusement\nanger\n", encoding="utf-8")
    ids = pyarrow.array([[2, 0], [1], []], pyarrow.list_(pyarrow.int64()))
    pyarrow.parquet.write_table(pyarrow.table({"text": ["x", "y", "z"], "label": ids}), tmp_path / "d.parquet")
    config = data(tmp_path, "d.parquet", labels_file="labels.txt")
    assert labels_of(tmp_path, config) == ['["admiration","anger"]', '["amusement"]', "[]"]


def test_a_headerless_tsv_splits_its_cells_by_the_separator(tmp_path):
    (tmp_path / "d.tsv").write_text("first\t4, 27\tc1\nsecond\t\tc2\nthird\t27\tc3\n", encoding="utf-8")
    config = data(tmp_path, "d.tsv", columns=["text", "label", "id"], label_separator=",")
    frame = read_rows(tmp_path / "d.tsv", config)
    assert frame["label"].tolist() == ['["27","4"]', "[]", '["27"]']  # a blank cell is the empty set
    assert frame["source_row"].tolist() == [1, 2, 3]


def test_every_row_holding_one_label_is_not_a_separator_that_splits_nothing(tmp_path):
    pd.DataFrame({"text": ["a", "b"], "label": ["joy", "anger"]}).to_csv(tmp_path / "d.csv", index=False)
    assert labels_of(tmp_path, data(tmp_path, "d.csv", label_separator=";")) == ['["joy"]', '["anger"]']


def test_a_separator_that_splits_nothing_is_refused_naming_the_likely_one(tmp_path):
    (tmp_path / "d.tsv").write_text("one\t3\tc1\ntwo\t4,27\tc2\nthree\t1,2\tc3\n", encoding="utf-8")
    config = data(tmp_path, "d.tsv", columns=["text", "label", "id"], label_separator=";")
    with pytest.raises(StageError) as refused:
        read_rows(tmp_path / "d.tsv", config)
    assert refused.value.message == (
        f"{tmp_path / 'd.tsv'}: data.label_separator ';' splits no label cell, but 2 cells hold ',' "
        "(first: line 2: '4,27'); set data.label_separator: ','?"
    )


def test_a_csv_without_a_separator_is_refused_by_its_key(tmp_path):
    pd.DataFrame({"text": ["a"], "label": ["joy,anger"]}).to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(ConfigError, match=r"^data.label_separator: required for .*d.csv: a CSV/TSV cell holds"):
        read_rows(tmp_path / "d.csv", data(tmp_path, "d.csv"))


def test_a_label_id_outside_the_labels_file_names_file_line_and_id(tmp_path):
    (tmp_path / "labels.txt").write_text("a\nb\n", encoding="utf-8")
    write_jsonl(tmp_path / "d.jsonl", [{"text": "x", "label": [0]}, {"text": "y", "label": [1, 5]}])
    with pytest.raises(StageError) as refused:
        read_rows(tmp_path / "d.jsonl", data(tmp_path, "d.jsonl", labels_file="labels.txt"))
    assert refused.value.message == (
        f"{tmp_path / 'd.jsonl'}: line 2: label id 5 is not in {tmp_path / 'labels.txt'} (2 labels: ids 0-1; "
        "data.labels_file)"
    )


@pytest.mark.parametrize(
    "cell, message",
    [("joy", "holds a string, not a list of labels"), (3, "holds a number, not a list of labels"),
     ([["nested"]], "holds a list with ['nested'] in it"), ([True], "holds a list with True in it")],
)
def test_a_jsonl_cell_that_is_not_a_list_of_labels_is_refused_with_its_line(tmp_path, cell, message):
    write_jsonl(tmp_path / "d.jsonl", [{"text": "x", "label": ["a"]}, {"text": "y", "label": cell}])
    with pytest.raises(StageError) as refused:
        read_rows(tmp_path / "d.jsonl", data(tmp_path, "d.jsonl"))
    assert refused.value.message.startswith(f"{tmp_path / 'd.jsonl'}: line 2: column 'label' (data.label_column) ")
    assert message in refused.value.message


def test_a_jsonl_string_is_split_when_a_separator_is_set(tmp_path):
    write_jsonl(tmp_path / "d.jsonl", [{"text": "x", "label": "joy|anger"}, {"text": "y", "label": ["fear"]}])
    assert labels_of(tmp_path, data(tmp_path, "d.jsonl", label_separator="|")) == ['["anger","joy"]', '["fear"]']


def test_labels_and_a_labels_file_together_are_refused():
    with pytest.raises(ValueError, match="labels and labels_file both declare the label set"):
        DataConfig(labels=["a", "b"], labels_file="labels.txt")
