"""Regressions for the bad inputs benchmarks/reliability.py found refused unclearly: each is one line now."""

import pytest
from typer.testing import CliRunner

from stages import validate
from tests.helpers.project import REPO_ROOT, build_tiny_bert_with_minilm_tokenizer, labelled_rows, write_csv
from tuneforge.base.errors import ConfigError, StageError
from tuneforge.base.layout import Workspace
from tuneforge.base.spec import DataConfig, ValidateConfig
from tuneforge.cli import app
from tuneforge.data.io import read_labelled_table
from tuneforge.params.overrides import apply_to_params_file
from tuneforge.training import modeling


def test_a_csv_row_with_more_cells_than_the_header_is_refused_with_its_line(tmp_path):
    # Before: the extra cell was dropped silently, and "the new one" became the row's label.
    path = tmp_path / "d.csv"
    path.write_text("text,label\nfine,a\nmy card, the new one, was declined,b\n", encoding="utf-8")
    with pytest.raises(StageError) as caught:
        read_labelled_table(path, "text", "label")
    assert caught.value.message == (
        f"{path}: line 3 has 4 fields but the header has 2 (quote texts that contain commas)"
    )


def test_a_csv_row_with_fewer_cells_still_reads_as_a_missing_label(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\nfine,a\nno label here\n", encoding="utf-8")
    assert read_labelled_table(path, "text", "label")["label"].tolist() == ["a", None]


def test_a_failed_expectation_is_named_on_the_error_line_itself(in_tmp_dir):
    # Before: "train.csv: 1 of 10 expectations failed" - a flow or CI log that keeps only that line said nothing.
    rows = labelled_rows(classes=3, per_class=12) + [{"text": f"rare case {i}", "label": "rare"} for i in range(3)]
    write_csv(in_tmp_dir / "in" / "train.csv", rows)
    with pytest.raises(StageError) as caught:
        validate.run(DataConfig(dir="in", train_file="train.csv"), ValidateConfig(),
                     workspace=Workspace(expectations=REPO_ROOT / "expectations"))
    assert caught.value.message == (
        "in/train.csv: 1 of 10 expectations failed: class_count >= 10 examples per class "
        "(validate.min_examples_per_class): 3 of 39 rows (7.7%), "
        "first at line 38: 'rare case 0' (rare, 3 rows in the class)"
    )
    assert not (in_tmp_dir / "data").exists()


@pytest.mark.parametrize("broken", ["split: {val_fraction: 0.1\ntrain:\n  epochs: 3\n", "data:\n\tdir: x\n"])
def test_malformed_params_yaml_is_one_config_error_and_stays_as_it_was(tmp_path, broken):
    params = tmp_path / "params.yaml"
    params.write_text(broken, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"params.yaml: not valid YAML at line \d"):
        apply_to_params_file(params, ["split.seed=7"])
    assert params.read_text(encoding="utf-8") == broken


def test_malformed_overlay_is_one_config_error_naming_the_overlay(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("split:\n  seed: 42\n", encoding="utf-8")
    overlay = tmp_path / "broken.yaml"
    overlay.write_text("data:\n  dir: [examples\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        apply_to_params_file(params, overlays=[overlay])
    assert caught.value.message == f"{overlay}: not valid YAML at line 3"
    assert params.read_text(encoding="utf-8") == "split:\n  seed: 42\n"


@pytest.fixture
def corrupt_model(tmp_path):
    directory = build_tiny_bert_with_minilm_tokenizer(tmp_path / "model")
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # an interrupted download
    return directory


def test_truncated_safetensors_are_refused_when_the_model_is_resolved(corrupt_model):
    with pytest.raises(StageError) as caught:
        modeling.resolve_base_model(str(corrupt_model))
    assert caught.value.message.startswith(
        f"model.base: {corrupt_model}: model.safetensors is not a readable safetensors file (Error while "
        "deserializing header"
    )


def test_loading_truncated_safetensors_is_a_stage_error_not_a_traceback(corrupt_model):
    # Before: safetensors' own SafetensorError (an Exception, not an OSError) escaped from from_pretrained.
    with pytest.raises(StageError, match="cannot load it as AutoModelForSequenceClassification: Error while"):
        modeling.classifier_from_base(corrupt_model, "tiny", ["a", "b"])


def test_predict_names_a_texts_file_without_texts(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    result = CliRunner().invoke(app, ["predict", str(tmp_path / "no-model"), "--file", str(empty)])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {empty}: no texts in it (one text per line; blank lines are skipped)"
