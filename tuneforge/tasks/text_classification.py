"""Task `sequence-classification`: one label per text, a classification head on a text encoder."""

from pathlib import Path

from transformers import DataCollatorWithPadding

from tuneforge.base.spec import ModelConfig, TrainConfig
from tuneforge.tasks import classification_data
from tuneforge.tasks.interface import Task, TrainingData
from tuneforge.training.modeling import check_max_seq_length, classifier_from_base

NAME = "sequence-classification"
STAGES = frozenset({"validate", "split", "augment", "tune", "train", "evaluate", "distill", "export", "register",
                    "monitor"})


def train_inputs(cfg: TrainConfig, augmented: Path, splits: Path, validated: Path) -> dict[str, Path]:
    return {"train": augmented / "train.parquet", "val": splits / "val.parquet", "labels": validated / "labels.json"}


def check_train_inputs(inputs: dict[str, Path]) -> list[str]:
    labels = classification_data.read_labels(inputs["labels"])
    splits = {
        "train": classification_data.read_split(inputs["train"], "augment"),
        "val": classification_data.read_split(inputs["val"], "split"),
    }
    classification_data.check_label_sets(labels, splits, inputs)
    return labels


def training_data(
    model_cfg: ModelConfig, cfg: TrainConfig, base_path: Path, tokenizer, labels: list[str],
    inputs: dict[str, str], pad_multiple: int | None,
) -> TrainingData:
    model, config = classifier_from_base(base_path, model_cfg.base, labels, dropout=cfg.dropout)
    check_max_seq_length(model_cfg.max_seq_length, config, tokenizer, model_cfg.base)
    label2id = {label: i for i, label in enumerate(labels)}
    encoded = {
        name: classification_data.tokenize_frame(
            classification_data.read_split(Path(inputs[name]), rerun), tokenizer, label2id, model_cfg.max_seq_length
        )
        for name, rerun in (("train", "augment"), ("val", "split"))
    }
    collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_multiple)
    return TrainingData(model=model, train=encoded["train"], val=encoded["val"], collator=collator, extra={})


def val_scores(entry: dict) -> dict:
    return {"val_accuracy": entry.get("eval_accuracy"), "val_macro_f1": entry.get("eval_macro_f1")}


TASK = Task(
    name=NAME, stages=STAGES, metrics=("accuracy", "macro_f1", "loss"), peft_task_type="SEQ_CLS",
    trains_a_head=True, train_inputs=train_inputs, check_train_inputs=check_train_inputs,
    training_data=training_data, compute_metrics=classification_data.compute_metrics, val_scores=val_scores,
    loss_is_batch_mean=True,
)
