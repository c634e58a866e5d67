"""The train stage with model.task token-classification: a token head on a tiny BERT (2 layers, hidden 32, the
packaged MiniLM tokenizer, which splits `Lovelace` into `love ##lace`), tags on first sub-tokens, long sentences in
windows, entity-level val scores; bad input refused in one line before a model loads."""

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml
from pydantic import ValidationError

from stages.train import main
from tests.helpers.tiny_models import build_tiny_bert_with_minilm_tokenizer
from tests.helpers.token_classification import TAGS, write_token_data
from tests.helpers.training import run_train, tiny_model, tiny_train, write_classification_data
from tuneforge.base.errors import ConfigError, StageError
from tuneforge.base.spec import ModelConfig
from tuneforge.data.token_files import encode_tags
from tuneforge.inference.word_windows import IGNORED
from tuneforge.tasks import get_task
from tuneforge.tasks.token_classification_model import compute_metrics
from tuneforge.training.modeling import base_tokenizer

pytestmark = pytest.mark.usefixtures("one_thread")
TASK = "token-classification"
WINDOW = {"task": TASK, "stride": 8}  # the tiny models read 32 sub-tokens at most: stride at most 16


@pytest.fixture(scope="module")
def tiny_token_bert(tmp_path_factory):
    return build_tiny_bert_with_minilm_tokenizer(tmp_path_factory.mktemp("tiny-token-bert"))


@pytest.fixture
def project(tmp_path):
    return write_token_data(tmp_path)


def test_a_token_head_learns_the_tags_and_records_entity_scores(project, tiny_token_bert):
    run_train(project, tiny_token_bert, tiny_train(max_steps=60, eval_steps=20, dropout=0.0, metric="f1"), **WINDOW)
    teacher = project / "models/teacher"
    config = json.loads((teacher / "config.json").read_text())
    assert config["architectures"] == ["BertForTokenClassification"]
    assert [config["id2label"][str(i)] for i in range(len(TAGS))] == TAGS  # labels.json's order
    meta = json.loads((teacher / "meta.json").read_text())
    assert [row["step"] for row in meta["history"]] == [20, 40, 60]
    assert set(meta["history"][0]) >= {"val_f1", "val_precision", "val_recall", "val_accuracy", "val_loss"}
    assert meta["best"]["metric"] == "f1" and meta["best"]["value"] > 0.5
    assert meta["label_all_subtokens"] is False
    # Every sentence fits 32 sub-tokens: one window each, every word read.
    assert meta["windows"]["train"] == {"sentences": 60, "windowed_sentences": 0, "windows": 60,
                                        "words": meta["windows"]["train"]["words"], "words_unread": 0, "words_cut": 0}
    assert (meta["windows"]["max_seq_length"], meta["windows"]["stride"]) == (32, 8)
    headline = json.loads((project / "reports/metrics/train.json").read_text())
    assert headline["best_metric"] == "f1" and headline["best_f1"] == meta["best"]["value"]
    assert "val_f1" in (project / "reports/train/history.csv").read_text().splitlines()[0]


def test_tags_sit_on_the_first_subtoken_of_each_word(project, tiny_token_bert):
    task = get_task(TASK)
    inputs = task.train_inputs(None, project / "data/augmented", project / "data/splits", project / "data/validated")
    tokenizer = base_tokenizer(tiny_token_bert, str(tiny_token_bert))
    for all_subtokens in (False, True):
        data = task.training_data(tiny_model(tiny_token_bert, **WINDOW), tiny_train(label_all_subtokens=all_subtokens),
                                  tiny_token_bert, tokenizer, TAGS, {k: str(v) for k, v in inputs.items()}, None)
        # Sentence 0: "yesterday Ada Lovelace flew to Paris on day 0" (a person, a location).
        example = data.train[0]
        pieces = tokenizer.convert_ids_to_tokens(example["input_ids"])
        assert pieces[:8] == ["[CLS]", "yesterday", "ada", "love", "##lace", "flew", "to", "paris"]
        tags = [None if label == IGNORED else TAGS[label] for label in example["labels"]]
        later = "I-person" if all_subtokens else None  # `##lace` continues the entity, or is left to the loss
        assert tags[:8] == [None, "O", "B-person", "I-person", later, "O", "O", "B-location"]
        assert tags[-1] is None  # [SEP]
        # Val is scored word by word: its later sub-tokens are never labelled.
        assert data.train is not data.val and all(
            sum(label != IGNORED for label in row["labels"]) == len(text.split())
            for row, text in zip(data.val, pd.read_parquet(project / "data/splits/val.parquet")["text"], strict=True))


def test_sentences_longer_than_max_seq_length_are_trained_in_windows(project, tiny_token_bert):
    # 12 sub-tokens: [CLS] + 10 + [SEP]; "yesterday Ada Lovelace flew to Rio de Janeiro on day 0" is 12 pieces.
    run_train(project, tiny_token_bert, tiny_train(max_steps=10, eval_steps=10, metric="f1", label_all_subtokens=True),
              task=TASK, max_seq_length=12, stride=4)
    meta = json.loads((project / "models/teacher/meta.json").read_text())
    windows = meta["windows"]
    assert windows["train"]["windowed_sentences"] > 0 and windows["train"]["windows"] > 60
    assert windows["val"]["windowed_sentences"] > 0 and windows["val"]["words_unread"] == 0
    assert meta["label_all_subtokens"] is True
    assert meta["throughput"]["train_examples"] == windows["train"]["windows"]  # a window is an example
    assert 0 <= meta["history"][-1]["val_f1"] <= 1


def test_val_scores_join_each_sentences_windows_back():
    # One sentence in two windows, its person entity (words 1 and 2) across the boundary; predicted as two people.
    labels = ["O", "B-person", "I-person"]
    truth = np.array([[IGNORED, 0, 1, IGNORED], [IGNORED, 2, 0, IGNORED]])
    predicted = np.array([[0, 0, 1, 0], [0, 1, 0, 0]])
    prediction = SimpleNamespace(predictions=np.eye(3)[predicted], label_ids=truth)
    joined = compute_metrics(prediction, labels=labels, sentence_of=[0, 0])
    assert (joined["f1"], joined["accuracy"]) == (0.0, 0.75)
    # Window by window, the true entity would be cut in two as well, and the split prediction counted right.
    assert compute_metrics(prediction, labels=labels)["f1"] == 1.0
    exact = SimpleNamespace(predictions=np.eye(3)[np.where(truth == IGNORED, 0, truth)], label_ids=truth)
    assert compute_metrics(exact, labels=labels, sentence_of=[0, 0])["f1"] == 1.0


# ---- bad input: one line, before a model loads ----

def test_a_label_file_that_is_not_a_tag_set_is_refused(project, tiny_token_bert):
    (project / "data/validated/labels.json").write_text(json.dumps({"labels": ["negative", "positive"]}))
    with pytest.raises(StageError, match=r"labels.json: negative, positive is not a BIO tag set .*rerun validate"):
        run_train(project, tiny_token_bert, tiny_train(metric="f1"), **WINDOW)
    assert not (project / "models/teacher").exists()


def test_a_split_with_a_tag_outside_the_tag_set_is_refused(project, tiny_token_bert):
    frame = pd.read_parquet(project / "data/splits/val.parquet")
    frame.loc[0, "label"] = frame.loc[0, "label"].replace("B-location", "B-vehicle").replace("I-location", "O")
    frame.to_parquet(project / "data/splits/val.parquet", index=False)
    with pytest.raises(StageError, match=r"val.parquet: tag\(s\) not in the tag set of .*labels.json: B-vehicle "
                                         r"\(1 tokens\); rerun validate and split"):
        run_train(project, tiny_token_bert, tiny_train(metric="f1"), **WINDOW)


def test_an_entity_type_missing_from_train_is_refused(project, tiny_token_bert):
    frame = pd.read_parquet(project / "data/augmented/train.parquet")
    frame["label"] = frame["label"].str.replace("B-group", "O").str.replace("I-group", "O")
    frame.to_parquet(project / "data/augmented/train.parquet", index=False)
    with pytest.raises(StageError, match=r"train.parquet: no training sentence holds an entity of type group"):
        run_train(project, tiny_token_bert, tiny_train(metric="f1"), **WINDOW)


def test_a_row_whose_tags_do_not_fit_its_words_is_refused(project, tiny_token_bert):
    frame = pd.read_parquet(project / "data/augmented/train.parquet")
    frame.loc[3, "label"] = encode_tags(["O"])
    frame.to_parquet(project / "data/augmented/train.parquet", index=False)
    with pytest.raises(StageError, match=r"train.parquet: row 4: 8 words but 1 tags; rerun the augment stage"):
        run_train(project, tiny_token_bert, tiny_train(metric="f1"), **WINDOW)


def test_single_label_splits_are_refused_by_a_token_spec(tmp_path, tiny_token_bert):
    write_classification_data(tmp_path)
    with pytest.raises(StageError, match=r"labels.json: class_0, class_1, class_2 is not a BIO tag set"):
        run_train(tmp_path, tiny_token_bert, tiny_train(metric="f1"), **WINDOW)
    (tmp_path / "data/validated/labels.json").write_text(json.dumps({"labels": ["O", "B-x", "I-x"]}))
    with pytest.raises(StageError, match=r"train.parquet: row 1: label cell 'class_0' is not a tag sequence"):
        run_train(tmp_path, tiny_token_bert, tiny_train(metric="f1"), **WINDOW)


def test_keys_that_do_not_apply_are_refused_by_their_key(project, tiny_token_bert):
    with pytest.raises(ConfigError, match=r"^train.metric: macro_f1 does not apply to model.task token-classification "
                                          r"\(use one of: f1, precision, recall, accuracy, loss\)$"):
        run_train(project, tiny_token_bert, tiny_train(), **WINDOW)
    with pytest.raises(ConfigError, match=r"^train.pos_weight: applies to multi-label classification only"):
        run_train(project, tiny_token_bert, tiny_train(metric="f1", pos_weight=True), **WINDOW)
    with pytest.raises(ValidationError, match=r"stride \(20\) must be at most half of max_seq_length \(32\)"):
        ModelConfig.model_validate({"task": TASK, "max_seq_length": 32, "stride": 20})
    ModelConfig.model_validate({"max_seq_length": 32, "stride": 20})  # another task reads no windows
    with pytest.raises(ConfigError, match=r"^train.label_all_subtokens: applies to token classification only"):
        get_task("sequence-classification").check_train_config(tiny_train(label_all_subtokens=True))
    with pytest.raises(ConfigError, match=r"^train.label_all_subtokens: applies to token classification only"):
        get_task("multi-label-classification").check_train_config(tiny_train(label_all_subtokens=True))
    assert not (project / "models/teacher").exists()


def test_main_prints_one_line_and_writes_nothing(project, tiny_token_bert, capsys, monkeypatch):
    monkeypatch.chdir(project)
    (project / "data/validated/labels.json").write_text(json.dumps({"labels": ["O", "B-person", "I-person"]}))
    params = {"model": tiny_model(tiny_token_bert, **WINDOW).model_dump(),
              "train": tiny_train(metric="f1").model_dump()}
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    assert main(["--params", "params.yaml"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("train: error:")]
    assert len(lines) == 1 and "augmented/train.parquet: tag(s) not in the tag set" in lines[0], err
    assert not (project / "models/teacher").exists()


def test_tune_searches_on_entity_f1(project, tiny_token_bert):
    from stages import tune
    from tuneforge.base.layout import Workspace
    from tuneforge.base.spec import TuneConfig

    cfg = TuneConfig.model_validate({
        "enabled": True, "sampler": "random", "pruner": "none", "n_trials": 2, "metric": "f1", "seed": 1,
        "storage": f"sqlite:///{project / 'study.db'}", "budget": {"max_steps": 10, "eval_steps": 5},
        "space": {"learning_rate": {"type": "float", "low": 1e-3, "high": 5e-3, "log": True}},
    })
    produced = tune.run(cfg, tiny_model(tiny_token_bert, **WINDOW), tiny_train(metric="f1"),
                        workspace=Workspace(project))
    assert produced.metrics["metric"] == "f1" and produced.metrics["direction"] == "maximize"
    assert 0 <= produced.metrics["best_value"] <= 1
