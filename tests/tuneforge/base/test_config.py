"""The spec: every shipped params file validates, and every kind of mistake is named by its dotted path."""

from pathlib import Path

import pytest
import yaml

from tests.helpers.project import REPO_ROOT
from tuneforge.base.errors import ConfigError
from tuneforge.params import Params, describe_schema, load_params, parse_params
from tuneforge.params.overrides import apply_to_params_file, merge, parse_assignment


def shipped_params() -> list[Path]:
    return [REPO_ROOT / "params.yaml"]


def shipped_overlays() -> list[Path]:
    return sorted((REPO_ROOT / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", shipped_params(), ids=lambda p: p.name)
def test_shipped_params_file_validates(path):
    assert isinstance(load_params(path), Params)


@pytest.mark.parametrize("overlay", shipped_overlays(), ids=lambda p: p.name)
def test_shipped_overlay_validates_on_top_of_params(overlay):
    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    merge(raw, yaml.safe_load(overlay.read_text()))
    parse_params(raw, source=overlay.name)


def test_params_yaml_states_every_default_of_the_schema():
    # params.yaml is the readable spec: it must not silently drift from the schema's defaults.
    shipped = load_params(REPO_ROOT / "params.yaml").model_dump(by_alias=True)
    defaults = Params().model_dump(by_alias=True)
    for section in ("validate", "split", "augment", "model", "train", "evaluate", "distill", "export"):
        assert shipped[section] == defaults[section], section


def test_every_field_has_a_description():
    for section, fields in describe_schema().items():
        for key, (_, description) in fields.items():
            assert description.strip(), f"{section}.{key} has no description"


@pytest.mark.parametrize(
    "raw, expected",
    [
        ({"split": {"val_fraction": 1.2}}, "split.val_fraction: must be in (0, 1), got 1.2"),
        ({"split": {"val_fraction": 0.5, "test_fraction": 0.5}}, "val_fraction + test_fraction must be < 1"),
        ({"split": {"seed": "7"}}, "split.seed: must be a valid integer, got '7'"),
        ({"splitt": {}}, "splitt: unknown key (expected one of: data, validate, split, augment"),
        ({"augment": {"char_noise": {"probability": 1.5}}}, "augment.char_noise.probability: must be in [0, 1]"),
        ({"augment": {"balance": {"targett": 3}}}, "augment.balance.targett: unknown key (expected one of: enabled"),
        ({"data": {"train_file": "x.xlsx"}}, "data.train_file: unsupported file extension '.xlsx'"),
        ({"validate": {"suite": "../etc/passwd"}}, "validate.suite: must be 1-64 letters"),
        (
            {"validate": {"min_examples_per_class": 0}},
            "validate.min_examples_per_class: must be greater than or equal to 1",
        ),
        ({"data": {"labels": "a,b"}}, "data.labels: must be a valid list"),
        ({"data": {"train_file": "x.conll"}}, "data.train_file: x.conll is a CoNLL file (a token and its tag per "
                                              "line), data for model.task token-classification, not "
                                              "sequence-classification; set model.task: token-classification"),
        ({"validate": {"min_sentence_tokens": 9, "max_sentence_tokens": 8}},
         "validate: min_sentence_tokens (9) must not exceed max_sentence_tokens (8)"),
        ([1, 2], "must be a mapping of sections"),
    ],
)
def test_mistakes_are_named_by_dotted_path(raw, expected):
    with pytest.raises(ConfigError) as caught:
        parse_params(raw)
    assert expected in caught.value.message
    assert "\n" not in caught.value.message


def test_conll_files_are_token_classification_data():
    params = parse_params({"model": {"task": "token-classification"},
                           "data": {"train_file": "train.conll", "val_file": "dev.txt", "test_file": "test.jsonl"}})
    assert params.data.val_file == "dev.txt"


def test_every_mistake_is_reported_not_only_the_first():
    with pytest.raises(ConfigError) as caught:
        parse_params({"split": {"seed": "x", "val_fraction": 3}})
    assert "split.val_fraction" in caught.value.message + caught.value.detail
    assert "split.seed" in caught.value.message + caught.value.detail


@pytest.mark.parametrize("section", ["train", "evaluate", "export", "monitor"])
def test_an_old_max_seq_length_is_told_where_it_moved(section):
    with pytest.raises(ConfigError) as caught:
        parse_params({section: {"max_seq_length": 64}})
    assert caught.value.message == (
        f"params.yaml: {section}.max_seq_length: moved to model.max_seq_length; set it there (once, for every stage)"
    )
    assert parse_params({"model": {"max_seq_length": 64}}).model.max_seq_length == 64


def test_missing_and_malformed_params_files(tmp_path):
    with pytest.raises(ConfigError, match="params file not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("split:\n  seed: [1,\n")
    with pytest.raises(ConfigError, match=r"not valid YAML at line \d"):
        load_params(bad)


def test_parse_assignment_reads_values_as_yaml():
    assert parse_assignment("split.seed=7") == (["split", "seed"], 7)
    assert parse_assignment("data.labels=[a, b]") == (["data", "labels"], ["a", "b"])
    assert parse_assignment("data.test_file=null") == (["data", "test_file"], None)
    with pytest.raises(ConfigError, match="expected dotted.key=value"):
        parse_assignment("split.seed")


def test_overrides_keep_comments_and_refuse_invalid_values(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text((REPO_ROOT / "params.yaml").read_text())
    before = params.read_text()
    with pytest.raises(ConfigError, match="split.val_fraction: must be in"):
        apply_to_params_file(params, ["split.val_fraction=2"])
    assert params.read_text() == before, "an invalid override must not touch params.yaml"

    resolved = apply_to_params_file(params, ["split.seed=7"])
    assert resolved.split.seed == 7
    text = params.read_text()
    assert "# tuneforge pipeline spec" in text and "seed: 7" in text
    assert load_params(params).split.seed == 7


def test_overlay_file_merges_sections(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text((REPO_ROOT / "params.yaml").read_text())
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("data:\n  label_column: category\nsplit:\n  seed: 3\n")
    resolved = apply_to_params_file(params, overlays=[overlay])
    assert resolved.data.label_column == "category"
    assert resolved.data.text_column == "text", "keys the overlay does not name keep their values"
    assert resolved.split.seed == 3


def test_set_replaces_the_value_it_names_while_overlays_merge(tmp_path):
    # `dvc exp run -S promotion.min_metrics={}` empties the mapping; a deep merge would keep the shipped gate.
    params = tmp_path / "params.yaml"
    params.write_text((REPO_ROOT / "params.yaml").read_text())
    assert load_params(params).promotion.min_metrics, "the shipped spec has a metric gate"
    resolved = apply_to_params_file(params, ["promotion.min_metrics={}"])
    assert resolved.promotion.min_metrics == {}
    resolved = apply_to_params_file(params, ["promotion.min_metrics={metrics.accuracy: 0.3}"])
    assert resolved.promotion.min_metrics == {"metrics.accuracy": 0.3}
    assert load_params(params).promotion.min_metrics == {"metrics.accuracy": 0.3}
