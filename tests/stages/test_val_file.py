"""data.val_file: a given validation file is the val split row for row, train is not split for it, training
rows that leak into it are dropped and counted, and a bad or missing val file is refused in one line."""

import json
from pathlib import Path

import pandas as pd
import pytest

from stages import split, validate
from tests.helpers.project import REPO_ROOT, labelled_rows, write_csv
from tuneforge.base.errors import ConfigError, StageError
from tuneforge.base.layout import Workspace
from tuneforge.base.spec import DataConfig, SplitConfig, ValidateConfig
from tuneforge.data.io import check_data_files
from tuneforge.params import parse_params

EXPECTATIONS = REPO_ROOT / "expectations"
TRAIN_ROWS = labelled_rows(classes=4, per_class=30)  # lines 2-121


def val_rows() -> list[dict]:
    """12 rows (lines 2-13): a duplicate kept as given, a text needing normalising, two training texts."""
    rows = labelled_rows(classes=4, per_class=2, prefix="val: ")  # lines 2-9
    return rows + [
        dict(rows[0]),  # line 10: exact duplicate of line 2, kept
        {"text": "  val:   a   spaced   question ", "label": "class_1"},  # line 11: normalised
        TRAIN_ROWS[5],  # line 12: also training line 7 -> dropped from train
        {"text": TRAIN_ROWS[70]["text"], "label": TRAIN_ROWS[70]["label"]},  # line 13: training line 72
    ]


def given_test_rows() -> list[dict]:
    return labelled_rows(classes=4, per_class=3, prefix="test: ")  # lines 2-13


def run_validate(data: dict, **validate_cfg):
    return validate.run(
        DataConfig(dir="in", train_file="train.csv", **data), ValidateConfig(**validate_cfg),
        workspace=Workspace(expectations=EXPECTATIONS),
    )


def run_split(**cfg):
    return split.run(SplitConfig(**cfg))


def read(path: str) -> pd.DataFrame:
    return pd.read_parquet(path)


@pytest.fixture
def inputs(in_tmp_dir) -> Path:
    write_csv(in_tmp_dir / "in/train.csv", TRAIN_ROWS)
    write_csv(in_tmp_dir / "in/val.csv", val_rows())
    write_csv(in_tmp_dir / "in/test.csv", given_test_rows())
    (in_tmp_dir / "expectations").symlink_to(EXPECTATIONS)  # where the stage's main looks for the suite
    return in_tmp_dir


def test_given_val_and_test_files_are_those_splits_and_train_is_not_split(inputs):
    produced = run_validate({"val_file": "val.csv", "test_file": "test.csv"})
    metrics = produced.metrics
    assert metrics["dropped_val_overlap"] == 2 and metrics["dropped_test_overlap"] == 0
    assert (metrics["val_rows_in"], metrics["val_rows_out"]) == (12, 12), "duplicates are kept as given"
    assert metrics["rows_out"] == 120 - 2
    val = read("data/validated/val.parquet")
    assert val["source_row"].tolist() == list(range(2, 14))
    assert val["text"].iloc[9] == "val: a spaced question"
    train = read("data/validated/train.parquet")
    assert not set(train["source_row"]) & {7, 72}, "training rows that are val texts are dropped"
    meta = json.loads(Path("data/validated/meta.json").read_text())
    assert set(meta["inputs"]) == {"train", "val", "test", "suite"}
    assert meta["config"]["data"]["val_file"] == "val.csv"
    summary = Path("reports/validate/summary.md").read_text()
    assert "| 2 (val), 0 (test) |" in summary
    assert "| `in/val.csv` | 12 | 0 | none (1 kept) |" in summary
    assert "| label | train | val | test |" in summary and "| class_1 | 30 | 3 | 3 |" in summary

    produced = run_split(val_fraction=0.3, test_fraction=0.3)
    splits = {name: read(f"data/splits/{name}.parquet") for name in ("train", "val", "test")}
    pd.testing.assert_frame_equal(splits["val"], val)
    pd.testing.assert_frame_equal(splits["test"], read("data/validated/test.parquet"))
    pd.testing.assert_frame_equal(splits["train"], train)  # every validated training row, in order
    assert produced.metrics["rows"] == {"train": 118, "val": 12, "test": 12}
    assert (produced.metrics["val_source"], produced.metrics["test_source"]) == ("given", "given")
    meta = json.loads(Path("data/splits/meta.json").read_text())
    assert meta["metrics"]["val_source"] == "given" and set(meta["inputs"]) == {"train", "val", "test"}


def test_given_val_file_only_splits_train_for_test(inputs):
    run_validate({"val_file": "val.csv"})
    produced = run_split(val_fraction=0.3, test_fraction=0.2, seed=4)
    splits = {name: read(f"data/splits/{name}.parquet") for name in ("train", "val", "test")}
    pd.testing.assert_frame_equal(splits["val"], read("data/validated/val.parquet"))
    assert len(splits["train"]) + len(splits["test"]) == 118  # val_fraction is ignored
    assert len(splits["test"]) == 24  # ceil(0.2 * 118): test is its share of the training file
    assert splits["test"]["label"].value_counts().to_dict() == {f"class_{c}": 6 for c in range(4)}
    assert (produced.metrics["val_source"], produced.metrics["test_source"]) == ("given", "split")
    assert not Path("data/validated/test.parquet").exists()


def test_no_val_file_still_splits_val_from_train(in_tmp_dir):
    write_csv(in_tmp_dir / "in/train.csv", TRAIN_ROWS)
    metrics = run_validate({}).metrics
    assert (metrics["dropped_val_overlap"], metrics["val_rows_in"], metrics["val_rows_out"]) == (0, 0, 0)
    assert not Path("data/validated/val.parquet").exists()
    produced = run_split()
    assert produced.metrics["rows"] == {"train": 96, "val": 12, "test": 12}
    assert (produced.metrics["val_source"], produced.metrics["test_source"]) == ("split", "split")


def test_val_overlap_kept_fails_validation_naming_the_training_line(inputs):
    with pytest.raises(StageError) as refused:
        run_validate({"val_file": "val.csv"}, drop_test_overlap=False)
    assert refused.value.message.startswith("in/train.csv: 1 of 10 expectations failed")
    assert "none of the 11 texts of the given test and val files" in refused.value.detail
    assert "line 7: '" in refused.value.detail
    assert not Path("data").exists()


def test_unknown_label_in_val_file_is_refused_with_its_file_and_line(inputs, capsys):
    write_csv(inputs / "in/val.csv", [*val_rows()[:3], {"text": "a question of a new kind", "label": "class_9"}])
    Path("params.yaml").write_text(
        "data: {dir: in, train_file: train.csv, val_file: val.csv}\n", encoding="utf-8"
    )
    assert validate.main([]) == 1
    err = capsys.readouterr().err
    first = err.splitlines()[0]
    assert first.startswith("validate: error: in/val.csv: 1 of 10 expectations failed"), err
    assert "line 5: 'a question of a new kind' (class_9)" in err
    assert "Traceback" not in err and not Path("data").exists()


def test_missing_val_file_is_one_line_naming_data_val_file(inputs, capsys):
    data = DataConfig(dir="in", train_file="train.csv", val_file="nosuch.csv")
    with pytest.raises(StageError) as refused:
        check_data_files(data)
    assert refused.value.message == "data.val_file: file not found: in/nosuch.csv"

    Path("params.yaml").write_text(
        "data: {dir: in, train_file: train.csv, val_file: nosuch.csv}\n", encoding="utf-8"
    )
    assert validate.main([]) == 1
    err = capsys.readouterr().err
    assert err == "validate: error: in/nosuch.csv: file not found (data.val_file)\n"


def test_val_and_test_files_sharing_a_text_are_refused(inputs):
    shared = val_rows()[:8] + [given_test_rows()[4]]  # line 10 of val is line 6 of test
    write_csv(inputs / "in/val.csv", shared)
    with pytest.raises(StageError) as refused:
        run_validate({"val_file": "val.csv", "test_file": "test.csv"})
    assert refused.value.message == (
        "in/val.csv: 1 texts are also in in/test.csv (first: line 10, line 6 there: "
        f"'{given_test_rows()[4]['text']}'); a given val file and test file must not share texts"
    )


def test_split_refuses_a_given_val_file_sharing_a_text_with_train(in_tmp_dir):
    # Validate drops exact copies; a case variant only the split's leak check (casefolded) still catches.
    folder = Path("data/validated")
    folder.mkdir(parents=True)
    train = pd.DataFrame(TRAIN_ROWS).assign(source_row=range(2, 122))
    val = pd.DataFrame(val_rows()[:8]).assign(source_row=range(2, 10))
    val.loc[3, "text"] = TRAIN_ROWS[40]["text"].upper()
    train.to_parquet(folder / "train.parquet", index=False)
    val.to_parquet(folder / "val.parquet", index=False)
    with pytest.raises(StageError) as refused:
        run_split()
    assert refused.value.message.startswith("1 texts appear in more than one split")
    assert "val or test file" in refused.value.message
    assert "val (source row 5)" in refused.value.detail and "train (source row 42)" in refused.value.detail
    assert not Path("data/splits").exists()


def test_spec_val_file():
    data = DataConfig(dir="in", val_file="dev.jsonl")
    assert data.val_path == Path("in/dev.jsonl") and DataConfig().val_path is None
    with pytest.raises(ConfigError, match=r"data: val_file and test_file are the same file \(x.csv\)"):
        parse_params({"data": {"val_file": "x.csv", "test_file": "x.csv"}})
    with pytest.raises(ConfigError, match=r"data.val_file: unsupported file extension '.doc'"):
        parse_params({"data": {"val_file": "x.doc"}})
    with pytest.raises(ConfigError, match=r"data.val_file: x.txt is a CoNLL file .*set model.task: token-class"):
        parse_params({"data": {"val_file": "x.txt"}})


def test_monitor_retrain_carries_the_val_file_over(inputs):
    from flows.monitor import check_with_data_stages
    from stages.monitor import retrain_data
    from tuneforge.monitor.data import batch_sha256

    params = parse_params({
        "data": {"dir": "in", "train_file": "train.csv", "val_file": "val.csv", "test_file": "test.csv"},
        "monitor": {"retrain_dir": "retrain"},
    })
    new = labelled_rows(classes=4, per_class=2, prefix="new: ") + [val_rows()[3]]  # the last is a val text
    batch = write_csv(inputs / "batch.csv", new)
    summary = {"batch": {"id": "b1", "sha256": batch_sha256(batch)}}

    prepared = retrain_data(params, summary, batch, check_data=check_with_data_stages)

    assert prepared["overrides"] == [
        "data.train_file=merged_train.parquet", "data.test_file=test.csv", "data.val_file=val.csv",
    ]
    folder = Path(prepared["data_dir"])
    assert (folder / "val.csv").read_bytes() == (inputs / "in/val.csv").read_bytes()
    # Training rows that are val texts are left out, and so is a new row that is one.
    assert prepared["rows"]["added"] == 8 and prepared["rows"]["train"] == 118 + 8
    merged = set(pd.read_parquet(folder / "merged_train.parquet")["text"])
    assert not merged & {row["text"] for row in val_rows()}
