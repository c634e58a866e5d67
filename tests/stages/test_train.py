"""The train stage on a tiny BERT built from a config: every method, early stopping, the outputs contract."""

import csv
import json

import pandas as pd
import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from stages.train import run
from tests.helpers.training import run_train, tiny_model, tiny_train, trained_logits, write_classification_data
from tuneforge.base.layout import Workspace

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def project(tmp_path):
    return write_classification_data(tmp_path)


def predict(directory, texts):
    logits, config = trained_logits(directory, texts)
    return [config.id2label[i] for i in logits.argmax(-1).tolist()]


def val_accuracy(directory, project) -> float:
    val = pd.read_parquet(project / "data/splits/val.parquet")
    return float((pd.Series(predict(directory, list(val["text"]))) == val["label"].values).mean())


def test_full_fine_tuning_writes_a_plain_model_directory_and_its_records(project, tiny_bert):
    produced = run_train(project, tiny_bert, tiny_train(max_steps=40, eval_steps=10, dropout=0.0))
    teacher = project / "models/teacher"

    assert sorted(p.name for p in teacher.iterdir()) == [
        "config.json", "meta.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
    ], "safetensors only, no pickled weights, no adapter for full fine-tuning"
    config = json.loads((teacher / "config.json").read_text())
    assert config["id2label"] == {"0": "class_0", "1": "class_1", "2": "class_2"}
    assert config["label2id"] == {"class_0": 0, "class_1": 1, "class_2": 2}

    meta = json.loads((teacher / "meta.json").read_text())
    history = meta["history"]
    assert [row["step"] for row in history] == [10, 20, 30, 40]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert meta["global_step"] == 40 and meta["epochs"] > 1
    best = max(history, key=lambda row: row["val_macro_f1"])
    assert meta["best"] == {"metric": "macro_f1", "step": best["step"], "value": best["val_macro_f1"], "scores": best}
    assert best["val_accuracy"] > 0.5, "well above chance (1/3) after 40 steps"
    # The directory holds the best checkpoint's weights, whatever step training ended at.
    assert val_accuracy(teacher, project) == pytest.approx(best["val_accuracy"])

    assert meta["parameters"]["trainable"] == meta["parameters"]["total"] > 0
    assert meta["device"].startswith("cpu") and meta["precision"] == "fp32"
    assert meta["throughput"]["train_samples_per_second"] > 0 and meta["memory"]["peak_rss_mb"] > 100
    assert meta["wall_time_s"] > 0 and set(meta["inputs"]) == {"train", "val", "labels"}
    assert meta["labels"] == ["class_0", "class_1", "class_2"]

    with open(project / "reports/train/history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["step"]) for row in rows] == [10, 20, 30, 40]
    assert list(rows[0]) == ["step", "epoch", "learning_rate", "train_loss", "val_loss", "val_accuracy", "val_macro_f1"]
    metrics = json.loads((project / "reports/metrics/train.json").read_text())
    assert metrics["best_macro_f1"] == best["val_macro_f1"] and metrics["best_step"] == best["step"]
    assert produced.metrics == metrics
    assert not (project / "models/.checkpoints/teacher").exists(), "checkpoints are dropped after success"


def test_frozen_trains_only_the_classification_head(project, tiny_bert):
    run_train(project, tiny_bert, tiny_train(method="frozen", max_steps=5))
    teacher = project / "models/teacher"
    meta = json.loads((teacher / "meta.json").read_text())
    hidden, classes = 32, 3
    assert meta["parameters"]["trainable"] == hidden * classes + classes
    trained = load_file(teacher / "model.safetensors")
    base = load_file(tiny_bert / "model.safetensors")
    for name, tensor in base.items():
        assert torch.equal(trained[f"bert.{name}"], tensor), f"{name} must stay frozen"


def test_freeze_layers_keeps_embeddings_and_bottom_layers_unchanged(project, tiny_bert):
    run_train(project, tiny_bert, tiny_train(freeze_layers=1, max_steps=7, eval_steps=5))
    history = json.loads((project / "models/teacher/meta.json").read_text())["history"]
    assert [row["step"] for row in history] == [5, 7], "the last step is evaluated even off the interval"
    assert all(row["train_loss"] > 0 for row in history)
    trained = load_file(project / "models/teacher/model.safetensors")
    base = load_file(tiny_bert / "model.safetensors")
    frozen = [name for name in base if name.startswith(("embeddings.", "encoder.layer.0."))]
    moved = [name for name in base if name.startswith("encoder.layer.1.") and name.endswith("weight")]
    assert frozen and moved
    assert all(torch.equal(trained[f"bert.{name}"], base[name]) for name in frozen)
    assert all(not torch.equal(trained[f"bert.{name}"], base[name]) for name in moved)


@pytest.mark.parametrize(
    "method, peft_block, adapted, initial",
    [
        ("lora", {"peft_type": "LORA", "r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "target_modules": None},
         "lora_B", 0.0),
        ("peft", {"peft_type": "IA3"}, "ia3_l", 1.0),
    ],
    ids=["lora", "ia3"],
)
def test_peft_methods_save_the_adapter_and_a_merged_plain_model(project, tiny_bert, method, peft_block, adapted,
                                                                  initial):
    run_train(project, tiny_bert, tiny_train(method=method, peft=peft_block, max_steps=10, eval_steps=5))
    teacher, adapter = project / "models/teacher", project / "models/teacher/adapter"

    assert json.loads((adapter / "adapter_config.json").read_text())["peft_type"] == peft_block["peft_type"]
    weights = load_file(adapter / "adapter_model.safetensors")
    trained = [tensor for name, tensor in weights.items() if adapted in name]
    assert trained and any(not torch.all(tensor == initial) for tensor in trained), "the adapter was trained"
    merged = load_file(teacher / "model.safetensors")
    assert not any("lora" in name or "ia3" in name or "base_model" in name for name in merged), "plain model"
    meta = json.loads((teacher / "meta.json").read_text())
    assert 0 < meta["parameters"]["trainable"] < meta["parameters"]["total"] / 5

    # The merged model computes what base model + adapter compute (peft restores the trained head too).
    base = AutoModelForSequenceClassification.from_pretrained(
        tiny_bert, num_labels=3, id2label={0: "class_0", 1: "class_1", 2: "class_2"}
    )
    with_adapter = PeftModel.from_pretrained(base, adapter).eval()
    plain = AutoModelForSequenceClassification.from_pretrained(teacher).eval()
    tokenizer = AutoTokenizer.from_pretrained(teacher)
    batch = tokenizer(["my card is not working 3", "wire the money today 9"], padding=True, return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(with_adapter(**batch).logits, plain(**batch).logits, atol=1e-5)


def test_early_stopping_stops_after_patience_and_keeps_the_best_checkpoint(project, tiny_bert):
    # A learning rate this small leaves the val score flat after the first evaluation: nothing improves.
    cfg = tiny_train(learning_rate=1e-9, max_steps=60, eval_steps=2, early_stopping_patience=2, metric="loss")
    run_train(project, tiny_bert, cfg)
    meta = json.loads((project / "models/teacher/meta.json").read_text())
    steps = [row["step"] for row in meta["history"]]
    assert meta["stopped_early"] and meta["global_step"] < 60
    best = meta["best"]["step"]
    assert steps[-1] == best + 2 * 2, "stopped two evaluations (patience 2) after the best one"
    assert meta["best"]["value"] == min(row["val_loss"] for row in meta["history"])


def test_gradient_accumulation_matches_the_larger_batch(project, tiny_bert):
    # 2 x 4 accumulated must train like 1 x 8 (the Trainer would skip the division for classification heads).
    common = dict(dropout=0.0, max_steps=6, eval_steps=6, learning_rate=1e-2)
    run_train(project, tiny_bert, tiny_train(batch_size=8, **common))
    single = json.loads((project / "models/teacher/meta.json").read_text())["history"][-1]["val_loss"]
    run_train(project, tiny_bert, tiny_train(batch_size=4, gradient_accumulation_steps=2, **common))
    accumulated = json.loads((project / "models/teacher/meta.json").read_text())["history"][-1]["val_loss"]
    assert accumulated == pytest.approx(single, abs=1e-4)


def test_hyperparameters_reach_the_trainer(project, tiny_bert, monkeypatch):
    from tuneforge.training import fit as train_module

    seen = {}
    real = train_module.training_arguments

    def spy(cfg, **kwargs):
        seen["args"] = real(cfg, **kwargs)
        return seen["args"]

    monkeypatch.setattr(train_module, "training_arguments", spy)
    cfg = tiny_train(
        lr_scheduler="cosine", warmup_ratio=0.2, weight_decay=0.05, max_grad_norm=0.5, label_smoothing=0.1,
        optimizer="adamw_torch", group_by_length=True, dropout=0.0, max_steps=4, eval_steps=2, seed=7,
    )
    run_train(project, tiny_bert, cfg)
    args = seen["args"]
    assert (args.lr_scheduler_type.value, args.warmup_steps, args.weight_decay) == ("cosine", 0.2, 0.05)
    assert (args.max_grad_norm, args.label_smoothing_factor, args.seed) == (0.5, 0.1, 7)
    assert args.train_sampling_strategy == "group_by_length" and args.load_best_model_at_end
    assert (args.eval_steps, args.save_steps, args.save_total_limit) == (2, 2, 2)
    config = json.loads((project / "models/teacher/config.json").read_text())
    assert config["hidden_dropout_prob"] == config["attention_probs_dropout_prob"] == 0.0


def test_a_failed_run_leaves_the_previous_model_untouched(project, tiny_bert, monkeypatch):
    run_train(project, tiny_bert, tiny_train(max_steps=5))
    teacher = project / "models/teacher"
    before = {p.name: p.read_bytes() for p in teacher.iterdir()}

    from tuneforge.training import fit as train_module

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(train_module, "save_model_dir", crash)
    with pytest.raises(RuntimeError):
        run(tiny_model(tiny_bert), tiny_train(max_steps=5, seed=1), workspace=Workspace(project))
    assert {p.name: p.read_bytes() for p in teacher.iterdir()} == before
    assert not [p for p in teacher.parent.iterdir() if p.name.startswith(".teacher.tmp")]


def test_the_packaged_minilm_fine_tunes_and_reloads_with_plain_transformers(project):
    cfg = tiny_train(max_steps=4, eval_steps=2, batch_size=8, learning_rate=2e-4)
    run_train(project, "sentence-transformers/all-MiniLM-L6-v2", cfg)
    teacher = project / "models/teacher"
    model = AutoModelForSequenceClassification.from_pretrained(teacher, use_safetensors=True)
    assert model.config.num_hidden_layers == 6 and model.config.hidden_size == 384
    assert model.config.id2label == {0: "class_0", 1: "class_1", 2: "class_2"}
    assert len(predict(teacher, ["my card is stuck since 1-2 days"])) == 1
    meta = json.loads((teacher / "meta.json").read_text())
    assert meta["base_model"]["path"].endswith("model") and meta["parameters"]["total"] > 22_000_000
