"""The retrain's merged folder, read with the spec and the overrides it returns, gives back the rows it merged:
for both tasks, with labels given as ids through data.labels_file, headerless TSV (data.columns) and a label
separator; the validate stage (run for real, as the flow runs it) accepts it and records the labels file's order."""

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from flows.finetune import run_assignments
from flows.monitor import check_with_data_stages
from stages import validate
from stages.monitor import retrain_data
from tests.helpers.multi_label import label_set_rows, write_jsonl
from tests.helpers.project import REPO_ROOT, labelled_rows, write_csv
from tuneforge.base.layout import EXPECTATIONS_DIR, Workspace
from tuneforge.data.label_sets import encode_label_set
from tuneforge.monitor.data import batch_sha256
from tuneforge.params import Params
from tuneforge.params.overrides import apply_to_params_file
from tuneforge.tasks import get_task

# Not in sorted order: the recorded label order must stay the labels file's.
INTENTS = ["zeta_refund", "alpha_card", "mid_transfer", "beta_app"]
EMOTIONS = ("surprise", "anger", "joy", "fear", "love")


@pytest.fixture
def workdir(in_tmp_dir) -> Path:
    (in_tmp_dir / "expectations").symlink_to(REPO_ROOT / "expectations")  # where the data stages find suites
    return in_tmp_dir


def prepare(spec: dict, batch: Path) -> tuple[dict, Params]:
    """The merged folder for `batch` under `spec`, and the spec the finetune flow then runs with (the overrides
    and data_dir written to params.yaml as the flow writes them)."""
    Path("params.yaml").write_text(yaml.safe_dump(spec))
    params = apply_to_params_file(Path("params.yaml"))
    summary = {"batch": {"id": "b1", "sha256": batch_sha256(batch)}}
    prepared = retrain_data(params, summary, batch, check_data=check_with_data_stages)
    assert prepared["status"] == "prepared"
    assignments = run_assignments(prepared["overrides"], prepared["data_dir"], None)
    after = apply_to_params_file(Path("params.yaml"), assignments)
    return prepared, after


def validated(params: Params) -> tuple[dict, pd.DataFrame]:
    """(labels.json, train rows) of the validate stage run on the spec's data."""
    workspace = Workspace(Path("scratch"), expectations=EXPECTATIONS_DIR)
    validate.run(params.data, params.validate_, model_cfg=params.model, workspace=workspace)
    labels = json.loads((workspace.validated / "labels.json").read_text())
    return labels, pd.read_parquet(workspace.validated / "train.parquet")


def test_single_label_ids_through_a_labels_file_are_merged_as_ids_and_the_file_comes_along(workdir):
    def by_id(rows):
        return [{"text": row["text"], "label": INTENTS.index(row["label"])} for row in rows]

    def named(rows):
        return [{**row, "label": INTENTS[int(row["label"][-1])]} for row in rows]

    (workdir / "in").mkdir()
    (workdir / "in/labels.txt").write_text("\n".join(INTENTS) + "\n")
    write_csv(workdir / "in/train.csv", by_id(named(labelled_rows(4, 30))))
    write_csv(workdir / "in/test.csv", by_id(named(labelled_rows(4, 5, prefix="test: "))))
    new = named(labelled_rows(4, 3, prefix="new: "))
    batch = write_csv(workdir / "batch.csv", by_id(new[:6]) + new[6:])  # labelled by id, and by name
    spec = {"data": {"dir": "in", "train_file": "train.csv", "test_file": "test.csv", "labels_file": "labels.txt"},
            "monitor": {"retrain_dir": "retrain"}}

    prepared, after = prepare(spec, batch)

    assert prepared["overrides"] == [
        "data.train_file=merged_train.parquet", "data.test_file=test.csv", "data.labels_file=labels.txt"]
    folder = Path(prepared["data_dir"])
    assert (folder / "labels.txt").read_bytes() == (workdir / "in/labels.txt").read_bytes()
    merged = pd.read_parquet(folder / "merged_train.parquet")
    assert set(merged["label"]) == {"0", "1", "2", "3"}, "names written back as ids"
    labels, train = validated(after)
    assert labels == {"labels": INTENTS, "source": "labels_file"}
    assert {(row["text"], row["label"]) for row in new} <= set(zip(train["text"], train["label"], strict=True))


def test_multi_label_goemotions_shaped_data_is_merged_as_lists_of_ids(workdir):
    """Headerless TSV, comma-joined ids, a labels file; the batch is JSONL with lists of names."""
    def tsv_line(row, number):
        return f"{row['text']}\t{','.join(str(EMOTIONS.index(label)) for label in row['labels'])}\tc{number}\n"

    (workdir / "in").mkdir()
    (workdir / "in/labels.txt").write_text("\n".join(EMOTIONS) + "\n")
    for name, rows in (("train.tsv", label_set_rows(80, EMOTIONS)), ("test.tsv", label_set_rows(20, EMOTIONS, "t "))):
        (workdir / "in" / name).write_text("".join(tsv_line(row, i) for i, row in enumerate(rows)))
    new = label_set_rows(12, EMOTIONS, prefix="new ")
    batch = write_jsonl(workdir / "batch.jsonl", [*new, {"text": "an unlabelled new comment"}])
    spec = {"model": {"task": "multi-label-classification"},
            "data": {"dir": "in", "train_file": "train.tsv", "test_file": "test.tsv", "labels_file": "labels.txt",
                     "columns": ["text", "labels", "id"], "label_column": "labels", "label_separator": ","},
            "monitor": {"retrain_dir": "retrain"}}

    prepared, after = prepare(spec, batch)

    assert prepared["rows"] == {"new": 13, "new_labelled": 12, "added": 12, "test": 20, "train": 92}
    folder = Path(prepared["data_dir"])
    merged = pd.read_parquet(folder / "merged_train.parquet")
    assert list(merged.columns) == ["text", "labels"], "Parquet names its own columns: no data.columns"
    assert list(merged["labels"].iloc[-1]) == sorted(str(EMOTIONS.index(label)) for label in new[-1]["labels"])
    read_back = get_task("multi-label-classification").read_rows(after.data.train_path, after.data)
    assert read_back["label"].tolist()[-12:] == [encode_label_set(row["labels"]) for row in new]
    labels, train = validated(after)
    assert labels == {"labels": list(EMOTIONS), "source": "labels_file"}
    assert len(train) == 92


def test_multi_label_names_are_merged_as_lists_the_separator_does_not_split(workdir):
    """A JSONL spec may set data.label_separator (for string cells): a canonical string `["anger","joy"]` would be
    split by it, a list is not."""
    write_jsonl(workdir / "in/train.jsonl", label_set_rows(80))
    write_jsonl(workdir / "in/test.jsonl", label_set_rows(20, prefix="test "))
    new = label_set_rows(6, prefix="new ")
    batch = write_jsonl(workdir / "batch.jsonl", new)
    spec = {"model": {"task": "multi-label-classification"},
            "data": {"dir": "in", "train_file": "train.jsonl", "test_file": "test.jsonl", "label_column": "labels",
                     "label_separator": ","},
            "monitor": {"retrain_dir": "retrain"}}

    prepared, after = prepare(spec, batch)

    merged = pd.read_parquet(Path(prepared["data_dir"]) / "merged_train.parquet")
    assert [list(cell) for cell in merged["labels"].iloc[-6:]] == [row["labels"] for row in new]
    _, train = validated(after)
    assert {(row["text"], encode_label_set(row["labels"])) for row in new} <= set(
        zip(train["text"], train["label"], strict=True))


def test_an_out_of_scope_file_comes_along_and_validates_beside_the_merged_rows(workdir):
    (workdir / "in").mkdir()
    write_csv(workdir / "in/train.csv", labelled_rows(4, 30))
    write_csv(workdir / "in/test.csv", labelled_rows(4, 5, prefix="test: "))
    write_csv(workdir / "in/oos.csv", [{"text": f"how tall is mountain number {i}"} for i in range(10)])
    batch = write_csv(workdir / "batch.csv", labelled_rows(4, 3, prefix="new: "))
    spec = {"data": {"dir": "in", "train_file": "train.csv", "test_file": "test.csv", "oos_file": "oos.csv"},
            "reject": {"enabled": True}, "monitor": {"retrain_dir": "retrain"}}

    prepared, after = prepare(spec, batch)

    assert "data.oos_file=oos.csv" in prepared["overrides"]
    folder = Path(prepared["data_dir"])
    assert (folder / "oos.csv").read_bytes() == (workdir / "in/oos.csv").read_bytes()
    validated(after)
    out_of_scope = pd.read_parquet(Path("scratch") / "data/validated/oos.parquet")
    assert len(out_of_scope) == 10
