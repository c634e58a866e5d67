"""The evaluate stage with model.task token-classification, on tiny BERTs trained by the train stage: entity-level
scores equal to seqeval's on the written predictions, per entity type, per-word calibration, the entity error
table, champion/challenger against a registered production model on entity F1, and bad input in one line."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from seqeval.metrics import accuracy_score, f1_score, precision_score, recall_score

from registry import api, record_stage
from registry.config import PromotionConfig, RegistryConfig
from stages import evaluate
from tests.helpers.tiny_models import build_tiny_bert_with_minilm_tokenizer
from tests.helpers.token_classification import write_token_data
from tests.helpers.training import run_train, tiny_model, tiny_train, write_classification_data
from tuneforge.base.errors import StageError
from tuneforge.base.layout import Workspace
from tuneforge.base.outputs import Produced
from tuneforge.base.spec import EvaluateConfig
from tuneforge.data.bio import entity_spans
from tuneforge.data.token_files import decode_tags
from tuneforge.evaluation.entities import entity_errors

pytestmark = pytest.mark.usefixtures("one_thread")
TASK = "token-classification"
WINDOW = {"task": TASK, "stride": 8}
CFG = EvaluateConfig(batch_size=8, calibration_bins=10, compare_alias=None)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """Two projects on the same data: the candidate trained 60 steps, a weaker `production` 8 steps."""
    base = build_tiny_bert_with_minilm_tokenizer(tmp_path_factory.mktemp("tiny-token-bert"))
    roots = {}
    for name, steps in (("candidate", 60), ("production", 8)):
        root = write_token_data(tmp_path_factory.mktemp(name))
        run_train(root, base, tiny_train(max_steps=steps, eval_steps=steps, dropout=0.0, metric="f1"), **WINDOW)
        roots[name] = root
    return roots | {"base": base}


@pytest.fixture
def project(tmp_path, trained) -> Path:
    """A fresh copy of the candidate's project (a test may change its files)."""
    return Path(shutil.copytree(trained["candidate"], tmp_path / "project"))


def run_stage(root: Path, cfg: EvaluateConfig = CFG, registry_cfg: RegistryConfig | None = None, **placed):
    return evaluate.run(cfg, registry_cfg, model_cfg=tiny_model(Path("unused"), **WINDOW),
                        workspace=Workspace(root, **placed))


def report(root: Path, name: str):
    path = root / "reports/evaluate" / name
    if path.suffix == ".json":
        return json.loads(path.read_text())
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    return path.read_text()


def test_entity_scores_equal_seqevals_on_the_written_predictions(project):
    produced = run_stage(project)
    metrics, predictions = report(project, "metrics.json"), report(project, "predictions.parquet")
    truth = [decode_tags(cell) for cell in predictions["label"]]
    predicted = [decode_tags(cell) for cell in predictions["predicted"]]
    assert [len(t) for t in truth] == [len(p) for p in predicted] == [len(t.split()) for t in predictions["text"]]
    for name, theirs in (("f1", f1_score), ("precision", precision_score), ("recall", recall_score),
                         ("accuracy", accuracy_score)):
        assert metrics[name] == pytest.approx(theirs(truth, predicted), abs=1e-12), name
    assert metrics["f1"] > 0.5  # the tiny model learnt the entities
    assert metrics["sentence_accuracy"] == pytest.approx(predictions["correct"].mean())
    assert produced.metrics["f1"] == metrics["f1"] and metrics["test_rows"] == 20
    # Per entity type, entities counted; the model's types in its order.
    per_class = report(project, "per_class.csv")
    assert list(per_class["label"]) == ["group", "location", "person"]
    supports = {kind: sum(span[2] == kind for tags in truth for span in entity_spans(tags))
                for kind in per_class["label"]}
    assert dict(zip(per_class["label"], per_class["support"], strict=True)) == supports
    assert sorted(metrics["per_class"]) == ["group", "location", "person"]
    # Per-word calibration: a temperature fitted on the val words, ECE and NLL over every test word.
    assert 0 <= metrics["ece"] <= 1 and metrics["nll"] > 0 and "ece_calibrated" in metrics
    reliability = report(project, "reliability.json")
    assert sum(row["count"] for row in reliability["bins"]) == sum(len(t) for t in truth)
    # A sentence's confidence is its least sure word's top score.
    assert ((predictions["confidence"] > 0) & (predictions["confidence"] <= 1)).all()
    # No single-label artifacts.
    assert not (project / "reports/evaluate/confusion_matrix.csv").exists()
    assert not (project / "reports/evaluate/classification.html").exists()
    assert report(project, "meta.json")["labels"][0] == "O"


def test_the_error_table_lists_every_error_of_the_predictions(trained, project):
    # The weak model makes errors of every kind it can: the table is checked against entity_errors row by row.
    shutil.rmtree(project / "models/teacher")
    shutil.copytree(trained["production"] / "models/teacher", project / "models/teacher")
    run_stage(project)
    predictions, errors = report(project, "predictions.parquet"), report(project, "errors.csv")
    expected = [(int(row), error["kind"]) for row, label, guess in
                zip(predictions["source_row"], predictions["label"], predictions["predicted"], strict=True)
                for error in entity_errors(decode_tags(label), decode_tags(guess))]
    assert list(zip(errors["source_row"], errors["kind"], strict=True)) == expected and expected
    written = report(project, "errors.json")
    assert written["counts"]["total"] == len(expected)
    assert sum(written["counts"]["by_kind"].values()) == len(expected)
    assert "# Entity errors (test split)" in report(project, "errors.md")


def local_registry(root: Path) -> RegistryConfig:
    return RegistryConfig(model_name="entities", url=f"sqlite:///{root / 'registry' / 'registry.db'}",
                          artifacts=str(root / "registry" / "blobs"), cache=str(root / "registry" / "cache"))


def test_champion_challenger_on_entity_f1_with_the_registered_production_model(trained, project):
    registry_cfg = local_registry(project)
    record_stage(Produced("split", {"splits": project / "data/splits"}, {}), config=registry_cfg)
    (ref,) = record_stage(Produced("train", {"model": trained["production"] / "models/teacher"}, {}),
                          config=registry_cfg)
    api.register_model("entities", {"teacher": ref}, config=registry_cfg)
    open_policy = PromotionConfig(min_metrics={}, parity_flag=None, validation_flag=None, drift_metric=None)
    assert api.promote("entities", 1, "production", policy=open_policy, config=registry_cfg).passed

    run_stage(project, CFG.model_copy(update={"compare_alias": "production"}), registry_cfg)
    comparison = report(project, "comparison.json")
    assert comparison["status"] == "compared" and comparison["version"] == 1
    predictions = report(project, "predictions.parquet")
    truth = [decode_tags(cell) for cell in predictions["label"]]
    ours = f1_score(truth, [decode_tags(cell) for cell in predictions["predicted"]])
    theirs = f1_score(truth, [decode_tags(cell) for cell in predictions["production_predicted"]])
    assert comparison["metrics"]["f1"]["candidate"] == pytest.approx(ours, abs=1e-12)
    assert comparison["metrics"]["f1"]["baseline"] == pytest.approx(theirs, abs=1e-12)
    headline = json.loads((project / "reports/metrics/evaluate.json").read_text())
    assert headline["delta_f1"] == pytest.approx(ours - theirs, abs=1e-12) and headline["production_version"] == 1
    assert "delta_accuracy" in headline and "mcnemar_p_value" in headline
    # McNemar pairs whole sentences: right when every tag is.
    right = predictions["predicted"] == predictions["label"]
    theirs_right = predictions["production_predicted"] == predictions["label"]
    assert comparison["mcnemar"]["only_candidate_correct"] == int((right & ~theirs_right).sum())
    assert {row["label"] for row in comparison["per_class"]} == {"group", "location", "person"}
    assert report(project, "errors.json")["production_counts"]["total"] >= 0
    assert "Candidate vs entities@production (version 1)" in report(project, "summary.md")


# ---- bad input: one line, previous outputs untouched ----

def refuse(root: Path, match: str, **placed) -> None:
    before = {str(p): p.read_bytes() for p in sorted((root / "reports").rglob("*")) if p.is_file()}
    with pytest.raises(StageError, match=match):
        run_stage(root, **placed)
    after = {str(p): p.read_bytes() for p in sorted((root / "reports").rglob("*")) if p.is_file()}
    assert after == before


def test_a_split_with_an_entity_type_the_model_does_not_know_is_named(project):
    run_stage(project)
    frame = pd.read_parquet(project / "data/splits/test.parquet")
    frame["label"] = frame["label"].str.replace("-location", "-vehicle")
    (project / "data/odd").mkdir()
    frame.to_parquet(project / "data/odd/test.parquet", index=False)
    shutil.copy(project / "data/splits/val.parquet", project / "data/odd/val.parquet")
    refuse(project, r"data/odd/test.parquet: 1 entity type\(s\) unknown to the model \(id2label of .*config.json\): "
                    r"'vehicle' \(\d+ mentions\)$", splits=project / "data/odd")


def test_a_split_that_holds_no_tag_sequences_is_named(project, tmp_path):
    run_stage(project)
    write_classification_data(tmp_path / "single")
    (project / "data/odd").mkdir()
    shutil.copy(tmp_path / "single/data/splits/val.parquet", project / "data/odd/test.parquet")
    shutil.copy(project / "data/splits/val.parquet", project / "data/odd/val.parquet")
    refuse(project, r"data/odd/test.parquet: label cell 'class_0' is not a tag sequence", splits=project / "data/odd")


def test_a_model_with_a_sequence_head_is_refused(project, tmp_path):
    run_stage(project)
    config = json.loads((project / "models/teacher/config.json").read_text())
    config["architectures"] = ["BertForSequenceClassification"]
    shutil.copytree(project / "models/teacher", tmp_path / "sequence")
    (tmp_path / "sequence/config.json").write_text(json.dumps(config))
    (tmp_path / "sequence/meta.json").unlink()  # no hash record: the head check is what refuses it
    refuse(project, r"sequence: holds a BertForSequenceClassification, not a token classifier",
           teacher=tmp_path / "sequence")


def test_predict_never_truncates_a_long_test_sentence(project):
    """A test sentence far longer than max_seq_length (32) is tagged word by word to its end."""
    frame = pd.read_parquet(project / "data/splits/test.parquet")
    words = " ".join(frame["text"].iloc[:6]).split()
    tags = [tag for cell in frame["label"].iloc[:6] for tag in decode_tags(cell)]
    long = pd.DataFrame({"text": [" ".join(words)], "label": [json.dumps(tags, separators=(",", ":"))],
                         "source_row": [999]})
    pd.concat([frame, long], ignore_index=True).to_parquet(project / "data/splits/test.parquet", index=False)
    run_stage(project)
    predictions = report(project, "predictions.parquet")
    assert len(decode_tags(predictions["predicted"].iloc[-1])) == len(words) > 40
    # The long sentence is scored as the six sentences it joins: the model reads each word with context.
    assert np.isfinite(report(project, "metrics.json")["f1"])
