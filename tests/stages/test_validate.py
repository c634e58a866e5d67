"""Stage validate: cleaning + the Great Expectations suite, its outputs, and every bad input it must refuse.

Bad inputs are run after a good validate: the failure must be one line on stderr naming the file, row
or key, a non-zero exit, no traceback, and the earlier outputs byte-for-byte as they were.
"""

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from stages import validate
from tests.helpers.project import REPO_ROOT, labelled_rows, write_csv
from tuneforge.base.errors import StageError
from tuneforge.base.layout import Workspace
from tuneforge.base.outputs import sha256_path
from tuneforge.base.spec import DataConfig, ValidateConfig

OUTPUTS = ("data/validated", "reports/validate", "reports/metrics/validate.json")


def write_params(directory, data: dict, validate_section: dict | None = None) -> str:
    raw = {"data": {"dir": "in", "train_file": "train.csv", **data}, "validate": validate_section or {}}
    (directory / "params.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    return str(directory / "params.yaml")


def with_suite(directory):
    (directory / "expectations").mkdir(exist_ok=True)
    shutil.copy(REPO_ROOT / "expectations" / "text_classification.json", directory / "expectations")


def good_train_rows() -> list[dict]:
    """120 clean rows (lines 2-121) followed by every kind of row cleaning has to deal with."""
    rows = labelled_rows(classes=4, per_class=30)
    rows += [
        {"text": "", "label": "class_0"},  # line 122: empty
        {"text": "   \t ", "label": "class_1"},  # line 123: empty once stripped
        {"text": rows[0]["text"].replace(" ", "   "), "label": "class_0"},  # 124: duplicate of line 2
        {"text": " " + rows[1]["text"], "label": "class_0"},  # 125: duplicate of line 3
        {"text": rows[40]["text"], "label": " class_1 "},  # 126: duplicate of line 42 (label stripped)
        {"text": "where did my money go", "label": "class_2"},  # 127: conflict ...
        {"text": "where  did my money go", "label": "class_3"},  # 128: ... with another label
        {"text": "Cafe\u0301 card payment refused twice", "label": "class_3"},  # 129: NFC normalised
        {"text": "is this text in the test file too", "label": "class_1"},  # 130: test overlap
        {"text": "and this one as well", "label": "class_2"},  # 131: test overlap
    ]
    return rows


def good_test_rows() -> list[dict]:
    rows = [
        {"text": f"test question {i} about class {c}", "label": f"class_{c}"} for c in range(4) for i in range(2)
    ]
    return rows + [
        {"text": "is this  text in the test file too", "label": "class_1"},
        {"text": "and this one as well", "label": "class_2"},
    ]


def write_good_inputs(directory) -> str:
    write_csv(directory / "in" / "train.csv", good_train_rows())
    write_csv(directory / "in" / "test.csv", good_test_rows())
    return write_params(directory, {"test_file": "test.csv"}, {"max_duplicate_share": 0.05})


def test_happy_path_cleans_validates_and_writes_everything(in_tmp_dir, capsys):
    with_suite(in_tmp_dir)
    params = write_good_inputs(in_tmp_dir)

    assert validate.main(["--params", params]) == 0
    assert "validate: done" in capsys.readouterr().out

    metrics = json.loads((in_tmp_dir / "reports/metrics/validate.json").read_text())
    assert metrics == {
        "rows_in": 130, "rows_out": 130 - 2 - 3 - 2 - 2, "dropped_empty": 2, "dropped_duplicates": 3,
        "dropped_conflicts": 2, "dropped_test_overlap": 2, "test_rows_in": 10, "test_rows_out": 10,
        "dropped_val_overlap": 0, "val_rows_in": 0, "val_rows_out": 0,
        "classes": 4, "expectations_evaluated": 20, "success": True,
    }
    train = pd.read_parquet("data/validated/train.parquet")
    assert list(train.columns) == ["text", "label", "source_row"]
    assert len(train) == 121
    texts = set(train["text"])
    assert "where did my money go" not in texts, "conflicting texts are dropped"
    assert not texts & {"is this text in the test file too", "and this one as well"}, "overlap is dropped"
    assert "Café card payment refused twice" in texts
    assert train.set_index("text").loc["Café card payment refused twice", "source_row"] == 129
    assert train["source_row"].tolist()[:3] == [2, 3, 4]
    test = pd.read_parquet("data/validated/test.parquet")
    assert test["text"].tolist()[-2] == "is this text in the test file too", "test texts are normalised"

    assert json.loads((in_tmp_dir / "data/validated/labels.json").read_text()) == {
        "labels": ["class_0", "class_1", "class_2", "class_3"], "source": "inferred",
    }
    meta = json.loads((in_tmp_dir / "data/validated/meta.json").read_text())
    assert set(meta["inputs"]) == {"train", "test", "suite"}
    suite = in_tmp_dir / "expectations/text_classification.json"
    assert meta["inputs"]["suite"]["sha256"] == sha256_path(suite)
    assert meta["metrics"] == metrics and meta["labels_source"] == "inferred"

    gx_result = json.loads((in_tmp_dir / "reports/validate/gx_result.json").read_text())
    assert {name: r["success"] for name, r in gx_result.items()} == {"train": True, "test": True}
    assert gx_result["train"]["statistics"]["evaluated_expectations"] == 10
    summary = (in_tmp_dir / "reports/validate/summary.md").read_text()
    assert "'where did my money go' labelled class_2, class_3 on lines 127, 128 (dropped)" in summary
    assert "## Labels: 4, inferred from the training file" in summary
    # Per class, train then test: duplicates, conflicts and overlaps were extra rows; class_3 gained "Café".
    assert "| class_0 | 30 | 2 |" in summary and "| class_1 | 30 | 3 |" in summary
    assert "| class_3 | 31 | 2 |" in summary


def test_jsonl_input_with_declared_labels(in_tmp_dir):
    with_suite(in_tmp_dir)
    (in_tmp_dir / "in").mkdir()
    rows = [{"utterance": r["text"], "intent": r["label"]} for r in labelled_rows(classes=3, per_class=10)]
    (in_tmp_dir / "in/train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    labels = ["class_0", "class_1", "class_2"]
    data = DataConfig(dir="in", train_file="train.jsonl", text_column="utterance", label_column="intent",
                      labels=labels)
    produced = validate.run(data, ValidateConfig())
    assert produced.metrics["rows_out"] == 30 and produced.metrics["classes"] == 3
    assert json.loads((in_tmp_dir / "data/validated/labels.json").read_text()) == {
        "labels": labels, "source": "declared",
    }
    assert not (in_tmp_dir / "data/validated/test.parquet").exists()


def test_parquet_input(in_tmp_dir):
    with_suite(in_tmp_dir)
    (in_tmp_dir / "in").mkdir()
    pd.DataFrame(labelled_rows(classes=2, per_class=12)).to_parquet(in_tmp_dir / "in/train.parquet")
    produced = validate.run(DataConfig(dir="in", train_file="train.parquet"), ValidateConfig())
    train = pd.read_parquet("data/validated/train.parquet")
    assert produced.metrics["rows_out"] == 24 and train["source_row"].tolist() == list(range(1, 25))


@pytest.fixture(scope="module")
def good_outputs(tmp_path_factory):
    """Outputs of one good validate run, copied into each bad-input test so that it runs GX only once."""
    directory = tmp_path_factory.mktemp("good")
    with_suite(directory)
    params = write_good_inputs(directory)
    result = subprocess.run(
        [sys.executable, "-m", "stages.validate", "--params", params], cwd=directory,
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return directory


def base_rows() -> list[dict]:
    return labelled_rows(classes=4, per_class=12)  # lines 2-49


# name -> (files under in/, data params, validate params, first stderr line contains, detail contains)
BAD_INPUTS = {
    "missing file": ({}, {}, {}, "in/train.csv: file not found", []),
    "not utf-8": (
        {"train.csv": b"text,label\nfine text,a\ncaf\xe9 au lait,b\n"}, {}, {},
        "in/train.csv: not valid UTF-8 at line 3 (byte 0xe9)", [],
    ),
    "empty file": ({"train.csv": b""}, {}, {}, "in/train.csv: file is empty", []),
    "header only": (
        {"train.csv": b"text,label\n"}, {}, {}, "in/train.csv: has a header but no data rows", [],
    ),
    "no text column": (
        {"train.csv": b"body,label\nhello there,a\n"}, {}, {},
        "in/train.csv: no column 'text' (data.text_column); columns are: body, label", [],
    ),
    "no label column": (
        {"train.csv": b"text,intent\nhello there,a\n"}, {}, {},
        "in/train.csv: no column 'label' (data.label_column); columns are: text, intent", [],
    ),
    "only empty texts": (
        {"train.csv": b'text,label\n"  ",a\n"",b\n"\t",a\n'}, {}, {},
        "in/train.csv: no non-empty texts (all 3 rows were empty)", [],
    ),
    "single class": (
        {"train.csv": [{"text": f"text {i}", "label": "only"} for i in range(20)]}, {}, {},
        "in/train.csv: only one class ('only'); classification needs at least 2", [],
    ),
    "label outside declared set": (
        {"train.csv": base_rows() + [{"text": "a stray label row", "label": "class_9"}]},
        {"labels": ["class_0", "class_1", "class_2", "class_3"]}, {},
        "in/train.csv: 2 of 10 expectations failed",
        ["expect_column_values_to_be_in_set", "line 50: 'a stray label row' (class_9)"],
    ),
    "class below minimum": (
        {"train.csv": base_rows() + [{"text": f"rare case {i}", "label": "rare"} for i in range(3)]}, {}, {},
        "in/train.csv: 1 of 10 expectations failed",
        ["class_count", ">= 10 examples per class", "line 50: 'rare case 0' (rare, 3 rows in the class)"],
    ),
    "conflicting labels above share": (
        {"train.csv": base_rows() + [{"text": "where is my money", "label": "class_0"},
                                     {"text": "where is  my money", "label": "class_1"}]}, {}, {},
        "in/train.csv: 1 of 10 expectations failed",
        ["labels_per_text", "2 of 50 rows (4.0%)", "at most 1.0% of rows",
         "line 50: 'where is my money' (class_0)", "line 51: 'where is my money' (class_1)"],
    ),
    "test overlap kept": (
        {"train.csv": base_rows(), "test.csv": base_rows()[:8]}, {"test_file": "test.csv"},
        {"drop_test_overlap": False},
        "in/train.csv: 1 of 10 expectations failed",
        ["expect_column_values_to_not_be_in_set", "none of the 8 texts of the given test and val files", "line 2: '"],
    ),
    "test label unknown": (
        {"train.csv": base_rows(), "test.csv": [{"text": "a new kind of question", "label": "class_7"}]},
        {"test_file": "test.csv"}, {},
        "in/test.csv: 1 of 10 expectations failed", ["line 2: 'a new kind of question' (class_7)"],
    ),
    "text too long": (
        {"train.csv": base_rows() + [{"text": "x" * 300, "label": "class_0"}]}, {}, {"max_text_chars": 200},
        "in/train.csv: 1 of 10 expectations failed", ["length 2..200 characters", "line 50: 'xxx"],
    ),
    "unsupported extension": (
        {"train.xls": b"text,label\na,b\n"}, {"train_file": "train.xls"}, {},
        "data.train_file: unsupported file extension '.xls'", [],
    ),
    "missing suite": (
        {"train.csv": base_rows()}, {}, {"suite": "nosuch"},
        "expectations/nosuch.json: expectation suite not found", [],
    ),
}


def write_inputs(directory, files: dict) -> None:
    (directory / "in").mkdir(exist_ok=True)
    for name, content in files.items():
        if isinstance(content, bytes):
            (directory / "in" / name).write_bytes(content)
        else:
            write_csv(directory / "in" / name, content)


def output_hashes(directory) -> dict[str, str]:
    return {path: sha256_path(directory / path) for path in OUTPUTS}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_and_leaves_outputs_untouched(case, good_outputs, in_tmp_dir, capsys):
    files, data, validate_section, first_line, detail = BAD_INPUTS[case]
    for path in ("data", "reports", "expectations"):
        shutil.copytree(good_outputs / path, in_tmp_dir / path)
    before = output_hashes(in_tmp_dir)
    write_inputs(in_tmp_dir, files)
    params = write_params(in_tmp_dir, data, validate_section)

    code = validate.main(["--params", params])

    err = capsys.readouterr().err
    assert code != 0
    assert first_line in err.splitlines()[0], err
    assert err.splitlines()[0].startswith("validate: error: ")
    for fragment in detail:
        assert fragment in err, f"{fragment!r} not in:\n{err}"
    assert "Traceback" not in err
    assert output_hashes(in_tmp_dir) == before
    leftovers = [*in_tmp_dir.glob("data/.*"), *in_tmp_dir.glob("reports/.*")]
    assert not leftovers, "no temporary directories are left behind"


def test_bad_input_end_to_end_in_a_subprocess_has_no_traceback(good_outputs, in_tmp_dir):
    for path in ("data", "reports", "expectations"):
        shutil.copytree(good_outputs / path, in_tmp_dir / path)
    before = output_hashes(in_tmp_dir)
    files, data, validate_section, first_line, detail = BAD_INPUTS["class below minimum"]
    write_inputs(in_tmp_dir, files)
    params = write_params(in_tmp_dir, data, validate_section)

    result = subprocess.run(
        [sys.executable, "-m", "stages.validate", "--params", params], cwd=in_tmp_dir,
        capture_output=True, text=True, timeout=120,
    )

    assert result.returncode == 1
    assert result.stderr.splitlines()[0].startswith(f"validate: error: {first_line}: class_count ")
    assert all(fragment in result.stderr for fragment in detail)
    assert "Traceback" not in result.stderr and "Calculating Metrics" not in result.stderr + result.stdout
    assert output_hashes(in_tmp_dir) == before


def test_an_invalid_expectation_in_the_suite_is_named_not_skipped(in_tmp_dir):
    # GX itself would log and skip it, quietly validating less than the suite says.
    (in_tmp_dir / "in").mkdir()
    write_csv(in_tmp_dir / "in/train.csv", base_rows())
    suite = json.loads((REPO_ROOT / "expectations/text_classification.json").read_text())
    suite["expectations"][2]["type"] = "expect_column_values_to_not_be_nul"
    (in_tmp_dir / "expectations").mkdir()
    (in_tmp_dir / "expectations/typo.json").write_text(json.dumps(suite))
    with pytest.raises(StageError, match=r"typo.json: expectation 3 \(expect_column_values_to_not_be_nul\)"):
        validate.run(DataConfig(dir="in", train_file="train.csv"), ValidateConfig(suite="typo"))
    assert not (in_tmp_dir / "data").exists()


@pytest.mark.slow
def test_banking77_passes_with_defaults(in_tmp_dir, banking77):
    data = DataConfig(
        dir=str(banking77), train_file="train.csv", test_file="test.csv", label_column="category"
    )
    produced = validate.run(data, ValidateConfig(), workspace=Workspace(expectations=REPO_ROOT / "expectations"))
    assert produced.metrics == {
        "rows_in": 10003, "rows_out": 9992, "dropped_empty": 0, "dropped_duplicates": 4,
        "dropped_conflicts": 0, "dropped_test_overlap": 7, "test_rows_in": 3080, "test_rows_out": 3080, "classes": 77,
        "dropped_val_overlap": 0, "val_rows_in": 0, "val_rows_out": 0,
        "expectations_evaluated": 20, "success": True,
    }
    assert len(pd.read_parquet("data/validated/test.parquet")) == 3080
    assert len(json.loads((in_tmp_dir / "data/validated/labels.json").read_text())["labels"]) == 77
