"""The drift monitor's pure parts: its spec section, batches, the decision, the pinned test file's line numbers."""

from pathlib import Path

import pandas as pd
import pytest

from tests.helpers.project import REPO_ROOT, write_csv
from tuneforge.base.errors import ConfigError, StageError
from tuneforge.base.spec import MonitorConfig
from tuneforge.data.io import read_labelled_table
from tuneforge.monitor.data import batch_files, batch_sha256, read_batch, sample
from tuneforge.monitor.retrain import write_at_source_lines
from tuneforge.monitor.signals import decide
from tuneforge.params import Params, load_params, parse_params
from tuneforge.tasks import multi_label, text_classification


def test_params_yaml_states_the_monitor_defaults():
    assert load_params(REPO_ROOT / "params.yaml").monitor == Params().monitor


@pytest.mark.parametrize(
    "monitor, expected",
    [
        ({"min_drifted_signals": 3, "signals": ["embeddings", "predictions"]},
         "monitor: min_drifted_signals (3) exceeds the 2 signals computed"),
        ({"signals": ["embeddings", "embeddings"], "min_drifted_signals": 1}, "signals must not repeat"),
        ({"signals": ["sentiment"]}, "monitor.signals.0: must be 'descriptors', 'predictions' or 'embeddings'"),
        ({"predictions": {"method": "ks"}}, "monitor.predictions.method: must be 'permutation', 'chisquare'"),
        ({"predictions": {"threshold": 0.1}}, "monitor.predictions: threshold applies to Evidently's tests; "
         "the permutation test's is level"),
        ({"predictions": {"level": 0}}, "monitor.predictions.level: must be in (0, 1)"),
        ({"predictions": {"resamples": 10}}, "monitor.predictions.resamples: must be greater than or equal to 99"),
        ({"predictions": {"level": 0.001, "resamples": 999}}, "monitor.predictions: level 0.001 needs at least "
         "1000 resamples, got 999"),
        ({"embeddings": {"threshold": 1.5}}, "monitor.embeddings.threshold: must be less than 1"),
        ({"reference_file": "../../etc/passwd"}, "monitor.reference_file: must be 1-64 letters"),
    ],
)
def test_monitor_mistakes_are_named_by_dotted_path(monitor, expected):
    with pytest.raises(ConfigError) as refused:
        parse_params({"monitor": monitor})
    assert expected in refused.value.message


def test_a_folder_batch_reads_its_data_files_in_name_order_and_normalises_texts(tmp_path):
    write_csv(tmp_path / "b.csv", [{"text": "  second   file ", "label": "x"}])
    (tmp_path / "a.jsonl").write_text('{"text": "first", "intent": "y"}\n{"text": ""}\n')
    (tmp_path / "README.md").write_text("not data")
    (tmp_path / ".hidden.csv").write_text("text\nnope\n")
    assert [p.name for p in batch_files(tmp_path)] == ["a.jsonl", "b.csv"]
    batch = read_batch(tmp_path, Params().data, text_classification.read_rows)
    assert batch[["text", "label", "source_row"]].values.tolist() == [["first", None, 1], ["second file", "x", 2]]
    before = batch_sha256(tmp_path)
    (tmp_path / "README.md").write_text("edited, still not data")
    assert batch_sha256(tmp_path) == before, "only data files make the batch's identity"


def test_a_missing_label_column_is_unlabelled_but_a_missing_text_column_is_refused(tmp_path):
    write_csv(tmp_path / "texts.csv", [{"text": "hello"}])
    assert read_labelled_table(tmp_path / "texts.csv", "text", "label", label_required=False)["label"].isna().all()
    with pytest.raises(StageError, match="no column 'label'"):
        read_labelled_table(tmp_path / "texts.csv", "text", "label")
    write_csv(tmp_path / "bodies.csv", [{"body": "hello"}])
    with pytest.raises(StageError, match=r"bodies.csv: no column 'text' \(data.text_column\); columns are: body"):
        read_batch(tmp_path / "bodies.csv", Params().data, text_classification.read_rows)


def test_a_multi_label_batch_is_read_as_the_task_reads_its_data(tmp_path):
    """Lists in JSONL, separated cells in CSV: canonical label sets; a row or a file without labels is unlabelled,
    and a CSV without the label column needs no separator."""
    data = Params().data.model_copy(update={"label_column": "labels", "label_separator": "|"})
    read_rows = multi_label.TASK.read_rows
    (tmp_path / "a.jsonl").write_text('{"text": "so happy", "labels": ["joy", "love"]}\n{"text": "not labelled"}\n'
                                      '{"text": "nothing applies", "labels": []}\n')
    write_csv(tmp_path / "b.csv", [{"text": "scary and sad", "labels": "fear|sadness"}])
    write_csv(tmp_path / "c.csv", [{"text": "only a text"}])
    batch = read_batch(tmp_path, data, read_rows)
    assert batch["label"].tolist() == ['["joy","love"]', None, "[]", '["fear","sadness"]', None]
    unseparated = data.model_copy(update={"label_separator": None})
    assert read_batch(tmp_path / "c.csv", unseparated, read_rows)["label"].tolist() == [None]
    with pytest.raises(ConfigError, match=r"^data.label_separator: required for .*b.csv: a CSV/TSV cell holds"):
        read_batch(tmp_path / "b.csv", unseparated, read_rows)
    (tmp_path / "d.jsonl").write_text('{"text": "fine", "labels": ["joy"]}\n{"text": "odd", "labels": 3}\n')
    with pytest.raises(StageError) as refused:
        read_batch(tmp_path / "d.jsonl", data, read_rows)
    assert refused.value.message.startswith(f"{tmp_path / 'd.jsonl'}: line 2: column 'labels' (data.label_column) "
                                            "holds a number, not a list of labels")


def test_samples_are_seeded_and_keep_order():
    frame = pd.DataFrame({"n": range(100)})
    first, again = sample(frame, 10, seed=1), sample(frame, 10, seed=1)
    assert first.equals(again) and list(first["n"]) == sorted(first["n"])
    assert len(sample(frame, 500, seed=1)) == 100


@pytest.mark.parametrize(
    "drifted, needed, expected",
    [
        ({"descriptors"}, 2, False), ({"descriptors", "embeddings"}, 2, True), ({"predictions"}, 1, True),
        (set(), 1, False),
    ],
)
def test_the_batch_drifts_when_enough_signals_do(drifted, needed, expected):
    cfg = MonitorConfig(min_drifted_signals=needed)
    signals = {name: {"drifted": name in drifted} for name in cfg.signals}
    decision = decide(signals, cfg)
    assert decision["drift"] is expected
    assert decision["drifted_signals"] == [name for name in cfg.signals if name in drifted]


def test_the_pinned_test_file_gives_back_every_row_its_line_number(tmp_path):
    frame = pd.DataFrame({"text": ["a b", "c d", "e f"], "label": ["x", "y", "x"], "source_row": [7, 2, 40]})
    path = tmp_path / "test.jsonl"
    write_at_source_lines(frame, path, "body", "intent")
    read = read_labelled_table(path, "body", "intent")
    assert read.sort_values("source_row").values.tolist() == [["c d", "y", 2], ["a b", "x", 7], ["e f", "x", 40]]
    write_at_source_lines(frame.assign(source_row=[1, 1, 2]), path, "body", "intent")  # unusable: dense
    assert read_labelled_table(path, "body", "intent")["source_row"].tolist() == [1, 2, 3]


def test_shipped_prefect_yaml_deploys_the_monitor_nightly_on_the_process_pool():
    import yaml

    deployments = {d["name"]: d for d in yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())["deployments"]}
    monitor = deployments["drift-monitor"]
    assert monitor["entrypoint"] == "flows/monitor.py:drift_monitor"
    assert monitor["work_pool"]["name"] == deployments["finetune"]["work_pool"]["name"] == "tuneforge-process"
    assert monitor["schedules"][0]["cron"].split()[2:] == ["*", "*", "*"], "every day"
    assert monitor["parameters"] == {"new_data": None}, "null: monitor.incoming_dir"
    assert Path(REPO_ROOT / monitor["entrypoint"].split(":")[0]).is_file()
