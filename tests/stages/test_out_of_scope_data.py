"""data.oos_file through validate and split: the out-of-scope rows cleaned, kept apart from every in-scope text,
shared between val and test by split.oos_val_fraction; and the bad inputs refused in one line, nothing written."""

import shutil

import pandas as pd
import pytest
import yaml

from stages import split, validate
from tests.helpers.project import REPO_ROOT, labelled_rows, write_csv
from tuneforge.base.outputs import sha256_path

OUTPUTS = ("data/validated", "data/splits", "reports/validate", "reports/split")


def out_of_scope_rows(count: int) -> list[dict]:
    return [{"text": f"what will the weather be like on day {i}", "label": "weather"} for i in range(count)]


def write_project(directory, oos_rows: list[dict], **sections) -> str:
    train = labelled_rows(classes=4, per_class=30)
    write_csv(directory / "in" / "train.csv", train)
    write_csv(directory / "in" / "oos.csv", oos_rows, fieldnames=list(oos_rows[0]))
    (directory / "expectations").mkdir(exist_ok=True)
    shutil.copy(REPO_ROOT / "expectations" / "text_classification.json", directory / "expectations")
    raw = {"data": {"dir": "in", "train_file": "train.csv", "oos_file": "oos.csv"},
           "reject": {"enabled": True}, **sections}
    (directory / "params.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    return str(directory / "params.yaml")


def run_both(params: str) -> None:
    assert validate.main(["--params", params]) == 0
    assert split.main(["--params", params]) == 0


def test_out_of_scope_rows_are_cleaned_and_shared_between_val_and_test(in_tmp_dir):
    in_scope_text = labelled_rows(classes=4, per_class=30)[5]["text"]
    rows = out_of_scope_rows(40) + [
        {"text": "  ", "label": "weather"},  # empty: dropped
        {"text": "what will the weather  be like on day 3", "label": "weather"},  # a duplicate: dropped
        {"text": in_scope_text.upper(), "label": "other"},  # an in-scope text: dropped
    ]
    run_both(write_project(in_tmp_dir, rows, split={"oos_val_fraction": 0.25, "seed": 3}))

    metrics = yaml.safe_load((in_tmp_dir / "reports/metrics/validate.json").read_text())
    assert (metrics["oos_rows_in"], metrics["oos_rows_out"]) == (43, 40)
    assert (metrics["oos_dropped_empty"], metrics["oos_dropped_duplicates"],
            metrics["oos_dropped_in_scope_texts"]) == (1, 1, 1)
    assert "(out of scope)" in (in_tmp_dir / "reports/validate/summary.md").read_text()
    val = pd.read_parquet(in_tmp_dir / "data/splits/oos_val.parquet")
    test = pd.read_parquet(in_tmp_dir / "data/splits/oos_test.parquet")
    assert (len(val), len(test)) == (10, 30)
    assert set(val["text"]) | set(test["text"]) == {row["text"] for row in out_of_scope_rows(40)}
    assert not set(val["text"]) & set(test["text"])
    assert set(val["label"]) == {"weather"}
    split_metrics = yaml.safe_load((in_tmp_dir / "reports/metrics/split.json").read_text())
    assert split_metrics["rows"]["oos_val"] == 10 and split_metrics["rows"]["oos_test"] == 30
    # The in-scope splits are those a run without the file makes.
    assert "oos_val" not in split_metrics["label_counts"]


def test_a_file_without_the_label_column_is_read_as_out_of_scope_texts(in_tmp_dir):
    run_both(write_project(in_tmp_dir, [{"text": row["text"]} for row in out_of_scope_rows(12)]))
    test = pd.read_parquet(in_tmp_dir / "data/splits/oos_test.parquet")
    assert len(test) == 6 and set(test["label"]) == {""}


@pytest.fixture
def good_outputs(in_tmp_dir):
    run_both(write_project(in_tmp_dir, out_of_scope_rows(20)))
    return {path: sha256_path(in_tmp_dir / path) for path in OUTPUTS}


BAD = {
    "known labels": (
        {"oos": out_of_scope_rows(5) + [{"text": "my card is stuck again", "label": "class_2"}]}, {},
        "validate", "in/oos.csv: line 7: label 'class_2' is one of the model's labels (1 of 6 rows carry one)",
    ),
    "every row known": (
        {"oos": [{"text": f"card question {i}", "label": "class_1"} for i in range(4)]}, {},
        "validate", "in/oos.csv: line 2: label 'class_1' is one of the model's labels (4 of 4 rows carry one)",
    ),
    "only in-scope texts": (
        {"oos": [{"text": row["text"], "label": "elsewhere"} for row in labelled_rows(classes=1, per_class=3)]}, {},
        "validate", "in/oos.csv: no out-of-scope rows left of 3",
    ),
    "without rejection": (
        {}, {"reject": {"enabled": False}},
        "validate", "params.yaml: data.oos_file: out-of-scope rows are scored by the rejection; set reject.enabled",
    ),
    "fit on oos with none in val": (
        {}, {"reject": {"enabled": True, "fit": "oos"}, "split": {"oos_val_fraction": 0.0}},
        "split", "params.yaml: reject.fit: oos needs out-of-scope val rows, but split.oos_val_fraction is 0",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_out_of_scope_input_is_one_line_and_nothing_changes(case, good_outputs, in_tmp_dir, capsys):
    files, sections, stage, first_line = BAD[case]
    params = write_project(in_tmp_dir, files.get("oos", out_of_scope_rows(20)), **sections)
    capsys.readouterr()
    code = {"validate": validate, "split": split}[stage].main(["--params", params])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert first_line in err, err
    assert {path: sha256_path(in_tmp_dir / path) for path in OUTPUTS} == good_outputs
