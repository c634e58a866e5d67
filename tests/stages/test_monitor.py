"""The drift monitor's computation on a real production version (the fast pipeline, real Evidently, real
onnxruntime, the registry): shifted data is flagged, held-out rows of the same source are not, bad input is
one line, and the retrain data it prepares passes the data stages with production's test split pinned."""

import json
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from flows.monitor import check_with_data_stages
from registry import api
from stages import monitor, split, validate
from tests.helpers.monitor import checked_batches, in_project, production_project, shifted_rows
from tuneforge.base.errors import StageError
from tuneforge.base.layout import EXPECTATIONS_DIR, Workspace
from tuneforge.base.outputs import sha256_file
from tuneforge.params import load_params
from tuneforge.params.overrides import apply_to_params_file

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return production_project(tmp_path_factory)


@pytest.fixture(autouse=True)
def _in_project(project, monkeypatch):
    yield from in_project(project, monkeypatch)


@pytest.fixture(scope="module")
def checked(project) -> dict:
    """Each batch checked once (the checks take seconds each); tests read the summaries."""
    return checked_batches(project, ("in_distribution.csv", "shifted.csv", "unlabelled"))


def prepare_retrain_data(params, summary, batch):
    return monitor.retrain_data(params, summary, batch, check_data=check_with_data_stages)


def test_held_out_rows_of_the_same_source_are_not_flagged(checked):
    summary = checked["in_distribution.csv"]
    assert summary["production"] == {"ref": "intents:1", "model": "intents", "version": 1, "alias": "production"}
    assert summary["batch"]["rows"] == summary["batch"]["labelled_rows"] == 122
    assert summary["reference"]["rows"] == summary["reference"]["compared_rows"] == 484
    assert summary["drift"] is False
    assert summary["drifted_signals"] == []
    descriptors = summary["signals"]["descriptors"]
    assert descriptors["drift_share"] == 0
    assert all(column["score"] > 0.05 for column in descriptors["columns"].values()), "K-S p-values"
    assert summary["signals"]["embeddings"]["score"] < 0.65, "a domain classifier cannot tell them apart"
    predictions = summary["signals"]["predictions"]
    assert (predictions["method"], predictions["statistic"]) == ("permutation", "Jensen-Shannon distance")
    assert (predictions["level"], predictions["resamples"]) == (0.05, 1000)
    assert predictions["drifted"] is False and 0 <= predictions["score"] <= predictions["threshold"]
    assert predictions["p_value"] >= 0.05


def test_shifted_data_is_flagged_by_descriptors_and_embeddings(checked):
    summary = checked["shifted.csv"]
    assert summary["drift"] is True
    assert summary["drifted_signals"] == ["descriptors", "embeddings"]
    columns = summary["signals"]["descriptors"]["columns"]
    assert {name for name, column in columns.items() if column["drifted"]} == {
        "text_length", "word_count", "non_letter_pct"}
    assert columns["text_length"]["score"] < 1e-10, "K-S p-value of 80 long letters vs short messages"
    assert summary["signals"]["embeddings"]["score"] > 0.95
    # The tiny production model predicts one class whatever it reads: its label distribution cannot move.
    predictions = summary["signals"]["predictions"]
    assert predictions["drifted"] is False
    assert (predictions["labels"], predictions["score"], predictions["p_value"]) == (1, 0.0, 1.0)


def test_a_folder_batch_without_labels_is_checked_and_its_other_files_ignored(checked):
    summary = checked["unlabelled"]
    assert summary["drift"] is True
    assert summary["batch"]["rows"] == 60 and summary["batch"]["labelled_rows"] == 0
    assert [Path(f).name for f in summary["batch"]["files"]] == ["texts.jsonl"]


def test_report_is_written_and_registered_against_the_production_version(checked, project):
    summary = checked["shifted.csv"]
    report = project / summary["report"]["dir"]
    assert summary["batch"]["id"] == f"{sha256_file(project / 'batches/shifted.csv')[:12]}-v1"
    assert report.name == summary["batch"]["id"] and report.parent == project / "reports/monitor"
    assert sorted(p.name for p in report.iterdir()) == ["drift.html", "drift.json", "meta.json", "summary.json"]
    page = (report / "drift.html").read_text()
    assert "DRIFT: 2 of 3 signals drifted (2 needed)" in page and "text_length" in page
    assert "Jensen-Shannon distance 0, permutation p-value 1 (drift below 0.05, i.e. a distance above 0;" in page
    saved = json.loads((report / "drift.json").read_text())
    assert saved["drift"] is True and any(m["config"]["type"].endswith(":ValueDrift") for m in saved["metrics"])
    assert saved["signals"]["predictions"] == summary["signals"]["predictions"]
    # Evidently's column on the page: the same distance, against the permutation test's critical distance.
    column = next(m for m in saved["metrics"] if m["config"].get("column") == "predicted_label")
    assert (column["config"]["method"], column["value"]) == ("jensenshannon", 0.0)
    assert column["config"]["threshold"] > summary["signals"]["predictions"]["threshold"] == 0.0
    assert [t["status"] for t in saved["tests"] if t["metric_config"]["params"].get("column") == "predicted_label"
            ] == ["SUCCESS"], "the page's verdict on the column is the permutation test's"
    meta = json.loads((report / "meta.json").read_text())
    assert meta["metrics"]["predictions_p_value"] == 1.0

    params = load_params("params.yaml")
    registered = summary["registered"]
    event = next(e for e in api.events("intents", config=params.registry) if e["id"] == registered["event"])
    assert (event["kind"], event["version"], event["alias"]) == ("drift_checked", 1, "production")
    assert event["evidence"]["drifted_signals"] == ["descriptors", "embeddings"]
    assert event["evidence"]["report"] == registered["report"]
    tree = json.dumps(api.lineage(registered["report"], config=params.registry))
    assert "shifted.csv" in tree and "export.onnx" in tree and "split.splits" in tree


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda d: d / "missing.csv", "missing.csv: no such file or folder (the batch of new data)"),
        (lambda d: _write(d / "no_text.csv", "body,label\nhello there,a\n"), "no column 'text' (data.text_column)"),
        (lambda d: _write(d / "empty.csv", ""), "empty.csv: file is empty"),
        (lambda d: _write(d / "blank_texts.csv", "text,label\n ,a\n"), "every text in column 'text' is empty"),
        (lambda d: (d / "folder").mkdir() or d / "folder", "no .csv, .tsv, .jsonl, .parquet files in this folder"),
        (lambda d: _write(d / "few.jsonl", '{"text": "my card is lost"}\n'), "1 non-empty texts, fewer than "
         "monitor.min_new_rows (20)"),
    ],
)
def test_bad_batches_are_one_line_and_change_nothing(project, tmp_path, make, expected):
    before = _state(project)
    with pytest.raises(StageError) as refused:
        monitor.check(load_params("params.yaml"), make(tmp_path))
    assert expected in refused.value.message and "\n" not in refused.value.message
    assert _state(project) == before


def test_no_production_version_is_one_line_from_the_command_line(project, tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text((project / "params.yaml").read_text())
    apply_to_params_file(params, ["monitor.reference_alias=canary"])
    before = _state(project)
    assert monitor.main(["batches/shifted.csv", "--params", str(params)]) == 1
    assert capsys.readouterr().err == (
        "monitor: error: unknown alias intents@canary: model 'intents' has aliases: production\n"
    )
    assert _state(project) == before


def test_retrain_data_merges_labelled_rows_and_pins_production_test_split(checked, project):
    params = load_params("params.yaml")
    prepared = prepare_retrain_data(params, checked["shifted.csv"], "batches/shifted.csv")
    assert prepared["status"] == "prepared"
    folder = project / prepared["data_dir"]
    assert folder == project / "data/retrain" / checked["shifted.csv"]["batch"]["id"]
    assert prepared["overrides"] == ["data.train_file=merged_train.parquet", "data.test_file=test.jsonl"]
    merged = pd.read_parquet(folder / "merged_train.parquet")
    assert prepared["rows"] == {"new": 80, "new_labelled": 80, "added": 80, "test": 61, "train": len(merged)}
    assert set(shifted_rows()["text"]) <= set(merged["text"])

    # What the retrain's data stages make of it: production's test split, byte for byte (the promotion
    # gates compare versions only on the same test split), and the new rows in training.
    data = params.data.model_copy(update={"dir": str(folder), "train_file": "merged_train.parquet",
                                          "test_file": "test.jsonl"})
    with tempfile.TemporaryDirectory() as scratch:
        out = Workspace(Path(scratch), expectations=EXPECTATIONS_DIR)
        validate.run(data, params.validate_, workspace=out)
        split.run(params.split, workspace=out)
        assert sha256_file(out.test_split) == sha256_file(project / "data/splits/test.parquet")
        trained_on = pd.concat([pd.read_parquet(out.splits / f"{name}.parquet") for name in ("train", "val")])
        assert set(shifted_rows()["text"]) <= set(trained_on["text"])


def test_retrain_data_needs_labels_and_something_new(checked):
    params = load_params("params.yaml")
    assert prepare_retrain_data(params, checked["unlabelled"], "batches/unlabelled")["status"] == "labels needed"
    # Held-out rows come from the training file itself: nothing to add.
    nothing = prepare_retrain_data(params, checked["in_distribution.csv"], "batches/in_distribution.csv")
    assert nothing == {"status": "nothing new", "rows": {"new": 122, "new_labelled": 122, "added": 0, "test": 61}}


def test_retrain_data_the_validate_stage_refuses_is_never_written(checked, project, tmp_path):
    params = load_params("params.yaml")
    batch = tmp_path / "new_class.csv"
    rows = shifted_rows(labels=["card_lost"])
    rows.loc[:2, "label"] = "brand_new_intent"  # 3 examples of a new class; validate needs 10
    rows.to_csv(batch, index=False)
    summary = monitor.check(params, batch)
    with pytest.raises(StageError) as refused:
        prepare_retrain_data(params, summary, batch)
    message = refused.value.message
    target = f"data/retrain/{summary['batch']['id']}"
    assert message.startswith(f"merged data {target}: the validate stage refuses it: ")
    assert "brand_new_intent" in message
    assert not (project / target).exists()


def test_a_batch_changed_after_its_check_is_refused(checked, tmp_path):
    params = load_params("params.yaml")
    batch = tmp_path / "shifted.csv"
    shifted_rows(40).to_csv(batch, index=False)
    with pytest.raises(StageError, match="changed since the drift check"):
        prepare_retrain_data(params, checked["shifted.csv"], batch)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _state(project: Path) -> tuple:
    reports = project / "reports/monitor"
    listing = sorted(str(p.relative_to(project)) for p in reports.rglob("*")) if reports.is_dir() else []
    events = len(api.events("intents", limit=10_000, config=load_params(project / "params.yaml").registry))
    return listing, events


def test_signals_can_be_chosen_and_the_check_left_unregistered(project):
    params = load_params("params.yaml")
    only_embeddings = params.monitor.model_copy(update={"signals": ["embeddings"], "min_drifted_signals": 1})
    before = _state(project)[1]
    summary = monitor.check(params.model_copy(update={"monitor": only_embeddings}), "batches/shifted.csv",
                            register=False)
    assert list(summary["signals"]) == ["embeddings"] and summary["drift"] is True
    assert "registered" not in summary and _state(project)[1] == before
    assert "DRIFT: 1 of 1 signals drifted (1 needed)" in (project / summary["report"]["html"]).read_text()


def test_a_rejecting_production_model_reports_the_share_of_texts_it_rejects(tmp_path):
    import json as json_module

    from stages.monitor import headline, rejected_shares

    shares = {"reference": {"card": 0.9, "out_of_scope": 0.1}, "new": {"card": 0.6, "out_of_scope": 0.4}}
    (tmp_path / "labels.json").write_text(json_module.dumps({"labels": ["card", "refund"], "calibration": {
        "temperature": 1.2, "reject_below": 0.5, "reject_label": "out_of_scope"}}))
    found = rejected_shares(tmp_path, shares)
    assert found == {"rejected": {"label": "out_of_scope", "reference_share": 0.1, "new_share": 0.4}}
    summary = {"drift": True, "drifted_signals": ["predictions"], "batch": {"rows": 10, "labelled_rows": 0},
               "signals": {"predictions": {"score": 0.3, **shares, **found}}}
    assert headline(summary)["rejected_share"] == 0.4
    # A model without rejection adds nothing.
    (tmp_path / "labels.json").write_text(json_module.dumps({"labels": ["card", "refund"]}))
    assert rejected_shares(tmp_path, shares) == {}
