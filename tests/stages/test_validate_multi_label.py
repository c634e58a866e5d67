"""Stage validate with model.task multi-label-classification: label sets read, checked by expectations/multi_label.json
and summarised; every bad input refused in one line naming file, line or key, with the earlier outputs untouched."""

import json
import shutil

import pandas as pd
import pytest
import yaml

from stages import validate
from tests.helpers.multi_label import EMOTIONS, label_set_rows, write_jsonl
from tests.helpers.project import REPO_ROOT, labelled_rows, write_csv
from tuneforge.base.layout import Workspace
from tuneforge.base.outputs import sha256_path
from tuneforge.base.spec import DataConfig, ModelConfig, ValidateConfig

MULTI_LABEL = ModelConfig(task="multi-label-classification")
OUTPUTS = ("data/validated", "reports/validate", "reports/metrics/validate.json")
LABELS_FILE = "\n".join(reversed(EMOTIONS)) + "\n"  # the file's order is the label set's order


def run_in(directory, data: dict, validate_section: dict | None = None):
    config = DataConfig(dir=str(directory / "in"), train_file="train.jsonl", label_column="labels", **data)
    workspace = Workspace(root=directory, expectations=REPO_ROOT / "expectations")
    return validate.run(config, ValidateConfig(**(validate_section or {})), model_cfg=MULTI_LABEL, workspace=workspace)


def test_label_sets_are_validated_counted_and_written_as_canonical_cells(tmp_path):
    rows = label_set_rows(80)
    write_jsonl(tmp_path / "in/train.jsonl", [*rows, rows[5]])  # line 81 is an exact duplicate of line 6
    write_jsonl(tmp_path / "in/test.jsonl", label_set_rows(20, prefix="test "))
    (tmp_path / "in/labels.txt").write_text(LABELS_FILE, encoding="utf-8")

    produced = run_in(tmp_path, {"test_file": "test.jsonl", "labels_file": "labels.txt"})

    metrics = produced.metrics
    assert (metrics["rows_in"], metrics["rows_out"], metrics["dropped_duplicates"]) == (81, 80, 1)
    assert metrics["classes"] == 5 and metrics["expectations_evaluated"] == 20
    assert metrics["label_cardinality"]["train"] == {
        "mean_labels_per_row": 1.4875, "rows_per_label_count": {"1": 45, "2": 31, "3": 4},
    }
    assert metrics["label_cardinality"]["test"]["rows_per_label_count"] == {"1": 11, "2": 8, "3": 1}
    train = pd.read_parquet(tmp_path / "data/validated/train.parquet")
    assert train["label"].iloc[0] == '["anger","joy","surprise"]' and train["source_row"].iloc[0] == 1
    assert json.loads((tmp_path / "data/validated/labels.json").read_text()) == {
        "labels": list(reversed(EMOTIONS)), "source": "labels_file",
    }
    meta = json.loads((tmp_path / "data/validated/meta.json").read_text())
    assert meta["inputs"]["suite"]["path"].endswith("expectations/multi_label.json")
    summary = (tmp_path / "reports/validate/summary.md").read_text()
    assert "10 of 10 expectations of" in summary and "multi_label.json` passed" in summary
    assert "## Labels: 5, declared in `data.labels_file`" in summary
    assert "| joy | 25 | 6 |" in summary  # rows holding the label, train then test
    assert "## Labels per row" in summary and "| 2 | 31 | 8 |" in summary and "| mean | 1.488 | 1.500 |" in summary


def test_empty_label_sets_are_kept_when_allowed(tmp_path):
    rows = label_set_rows(60) + [{"text": "nothing to feel here", "labels": []}]
    write_jsonl(tmp_path / "in/train.jsonl", rows)
    produced = run_in(tmp_path, {}, {"allow_empty_labels": True})
    assert produced.metrics["label_cardinality"]["train"]["rows_per_label_count"]["0"] == 1
    assert pd.read_parquet(tmp_path / "data/validated/train.parquet")["label"].iloc[-1] == "[]"


def test_a_text_seen_with_two_label_sets_is_a_conflict(tmp_path):
    rows = label_set_rows(60) + [{"text": "what a game", "labels": ["joy"]},
                                 {"text": "what a game", "labels": ["joy", "surprise"]}]
    write_jsonl(tmp_path / "in/train.jsonl", rows)
    produced = run_in(tmp_path, {}, {"max_duplicate_share": 0.05})
    assert produced.metrics["dropped_conflicts"] == 2
    summary = (tmp_path / "reports/validate/summary.md").read_text()
    assert """'what a game' labelled ["joy","surprise"], ["joy"] on lines 61, 62 (dropped)""" in summary


def test_old_params_naming_the_text_classification_suite_still_validate(tmp_path):
    write_csv(tmp_path / "in/train.csv", labelled_rows(classes=3, per_class=12))
    data = DataConfig(dir=str(tmp_path / "in"), train_file="train.csv")
    workspace = Workspace(root=tmp_path, expectations=REPO_ROOT / "expectations")
    produced = validate.run(data, ValidateConfig(suite="text_classification"), workspace=workspace)
    assert produced.inputs["suite"].name == "text_classification.json" and produced.metrics["classes"] == 3


@pytest.fixture(scope="module")
def good_outputs(tmp_path_factory):
    """Outputs of one good multi-label validate run, copied into each bad-input test."""
    directory = tmp_path_factory.mktemp("good")
    write_jsonl(directory / "in/train.jsonl", label_set_rows(80))
    run_in(directory, {})
    return directory


def tsv(rows: list[dict], separator: str = ",") -> bytes:
    return "".join(f"{row['text']}\t{separator.join(row['labels'])}\tid{i}\n" for i, row in enumerate(rows)).encode()


def ids_of(rows: list[dict]) -> list[dict]:
    order = list(reversed(EMOTIONS))
    return [{"text": row["text"], "labels": [order.index(label) for label in row["labels"]]} for row in rows]


ROWS = label_set_rows(80)  # lines 1-80
TSV_DATA = {"train_file": "train.tsv", "columns": ["text", "labels", "id"]}
# name -> (files under in/, data keys, validate keys, model.task, first error line contains)
BAD_INPUTS = {
    "unknown label inside a list": (
        {"train.jsonl": ROWS + [{"text": "a furious comment", "labels": ["joy", "rage"]}]},
        {"labels": list(EMOTIONS)}, {}, MULTI_LABEL.task,
        "in/train.jsonl: 1 of 10 expectations failed: unknown_labels no label outside the label set: 1 of 81 rows "
        """(1.2%), first at line 81: 'a furious comment' (["joy","rage"]; unknown: rage)""",
    ),
    "empty list where refused": (
        {"train.jsonl": ROWS + [{"text": "a calm comment", "labels": []}]}, {}, {}, MULTI_LABEL.task,
        "in/train.jsonl: 1 of 10 expectations failed: label_count >= 1 labels per row "
        "(validate.allow_empty_labels): 1 of 81 rows (1.2%), first at line 81: 'a calm comment' ([])",
    ),
    "separator that splits nothing": (
        {"train.tsv": tsv(ROWS)}, {**TSV_DATA, "label_separator": ";"}, {}, MULTI_LABEL.task,
        "in/train.tsv: data.label_separator ';' splits no label cell, but 35 cells hold ',' "
        "(first: line 1: 'anger,joy,surprise'); set data.label_separator: ','?",
    ),
    "label id outside the labels file": (
        {"train.jsonl": ids_of(ROWS) + [{"text": "an odd comment", "labels": [2, 9]}], "labels.txt": LABELS_FILE},
        {"labels_file": "labels.txt"}, {}, MULTI_LABEL.task,
        "in/train.jsonl: line 81: label id 9 is not in in/labels.txt (5 labels: ids 0-4; data.labels_file)",
    ),
    "multi-label data with a single-label spec": (
        {"train.jsonl": ROWS}, {}, {}, "sequence-classification",
        "in/train.jsonl: line 1: column 'labels' (data.label_column) holds a list, not a string or a number "
        "(a list of labels is multi-label data: set model.task: multi-label-classification)",
    ),
    "separated labels with a single-label spec": (
        {"train.tsv": tsv(ROWS)}, {**TSV_DATA, "label_separator": ","}, {}, "sequence-classification",
        "data.label_separator: set to ',', but model.task sequence-classification takes one label per text",
    ),
    "csv label sets without a separator": (
        {"train.tsv": tsv(ROWS)}, TSV_DATA, {}, MULTI_LABEL.task,
        "data.label_separator: required for in/train.tsv",
    ),
    "label below the minimum": (
        {"train.jsonl": ROWS + [{"text": f"a proud comment {i}", "labels": ["joy", "pride"]} for i in range(3)]},
        {}, {}, MULTI_LABEL.task,
        "in/train.jsonl: 1 of 10 expectations failed: rarest_label_count >= 10 examples per label "
        """(validate.min_examples_per_class): 3 of 83 rows (3.6%), first at line 81: 'a proud comment 0' """
        """(["joy","pride"]; 'pride' has 3 rows)""",
    ),
    "declared label without an example": (
        {"train.jsonl": ROWS, "labels.txt": LABELS_FILE + "pride\n"}, {"labels_file": "labels.txt"}, {},
        MULTI_LABEL.task,
        "in/train.jsonl: 1 of the 6 labels of data.labels_file in/labels.txt have no training example "
        "(first: 'pride')",
    ),
    "labels and a labels file": (
        {"train.jsonl": ROWS, "labels.txt": LABELS_FILE}, {"labels_file": "labels.txt", "labels": ["joy"]}, {},
        MULTI_LABEL.task, "data: labels and labels_file both declare the label set; set one of them",
    ),
}


def write_inputs(directory, files: dict) -> None:
    for name, content in files.items():
        path = directory / "in" / name
        if isinstance(content, list):
            write_jsonl(path, content)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content if isinstance(content, bytes) else content.encode())


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_and_leaves_outputs_untouched(case, good_outputs, in_tmp_dir, capsys):
    files, data, validate_section, task, first_line = BAD_INPUTS[case]
    for path in ("data", "reports"):
        shutil.copytree(good_outputs / path, in_tmp_dir / path)
    shutil.copytree(REPO_ROOT / "expectations", in_tmp_dir / "expectations")
    before = {path: sha256_path(in_tmp_dir / path) for path in OUTPUTS}
    write_inputs(in_tmp_dir, files)
    params = {
        "model": {"task": task}, "registry": {"enabled": False}, "validate": validate_section,
        "data": {"dir": "in", "train_file": "train.jsonl", "label_column": "labels", **data},
    }
    (in_tmp_dir / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")

    code = validate.main(["--params", "params.yaml"])

    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert err.splitlines()[0].startswith("validate: error: ") and first_line in err.splitlines()[0], err
    assert {path: sha256_path(in_tmp_dir / path) for path in OUTPUTS} == before
