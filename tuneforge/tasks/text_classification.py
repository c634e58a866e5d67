"""Task `sequence-classification`: one label per text, a classification head on a text encoder.

Rows are (text, label); splits are stratified by label; augmentation adds noisy variants of the texts and
balances the classes; the head is trained with cross-entropy and distilled with softened softmax KL; a
prediction is the most probable label (tuneforge/inference/outputs.py ARGMAX); macro-F1 gates int8 parity.
"""

from pathlib import Path

import numpy as np
import pandas as pd
from transformers import DataCollatorWithPadding

from tuneforge.base.errors import ConfigError, StageError
from tuneforge.base.spec import DataConfig, ModelConfig, TrainConfig, ValidateConfig
from tuneforge.data.augmentation import augment_frame
from tuneforge.data.cleaning import with_derived_columns
from tuneforge.data.io import LABEL, read_data_table
from tuneforge.data.splitting import stratified_split
from tuneforge.evaluation.calibration import softmax_calibration
from tuneforge.evaluation.metrics import classification_metrics, confusion, per_class_table
from tuneforge.evaluation.report import write_classification_report
from tuneforge.inference.outputs import ARGMAX
from tuneforge.tasks import classification_data
from tuneforge.tasks.interface import Task, TrainingData
from tuneforge.training.kd import distillation_loss
from tuneforge.training.modeling import check_max_seq_length, classifier_from_base

NAME = "sequence-classification"
STAGES = frozenset({"validate", "split", "augment", "tune", "train", "evaluate", "distill", "export", "register",
                    "monitor"})


def train_inputs(cfg: TrainConfig, augmented: Path, splits: Path, validated: Path) -> dict[str, Path]:
    return {"train": augmented / "train.parquet", "val": splits / "val.parquet", "labels": validated / "labels.json"}


def check_train_inputs(inputs: dict[str, Path]) -> list[str]:
    labels = classification_data.read_labels(inputs["labels"])
    splits = read_splits({name: inputs[name] for name in ("train", "val")})
    classification_data.check_label_sets(labels, splits, inputs)
    return labels


def training_data(
    model_cfg: ModelConfig, cfg: TrainConfig, base_path: Path, tokenizer, labels: list[str],
    inputs: dict[str, str], pad_multiple: int | None,
) -> TrainingData:
    model, config = classifier_from_base(base_path, model_cfg.base, labels, dropout=cfg.dropout)
    check_max_seq_length(model_cfg.max_seq_length, config, tokenizer, model_cfg.base)
    paths = {name: Path(inputs[name]) for name in ("train", "val")}
    encoded = encode_splits(read_splits(paths), paths, tokenizer, labels, model_cfg.max_seq_length)
    collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_multiple)
    return TrainingData(model=model, train=encoded["train"], val=encoded["val"], collator=collator, extra={})


# The stage to re-run when a split file is missing or unreadable.
WRITTEN_BY = {"train": "augment", "val": "split", "test": "split"}


def read_splits(paths: dict[str, Path]) -> dict[str, pd.DataFrame]:
    return {name: classification_data.read_split(path, WRITTEN_BY[name]) for name, path in paths.items()}


def encode_splits(
    splits: dict[str, pd.DataFrame], paths: dict[str, Path], tokenizer, labels: list[str], max_length: int
) -> dict[str, list[dict]]:
    classification_data.check_label_sets(labels, splits, paths)
    label2id = {label: i for i, label in enumerate(labels)}
    return {
        name: classification_data.tokenize_frame(frame, tokenizer, label2id, max_length)
        for name, frame in splits.items()
    }


def val_scores(entry: dict) -> dict:
    return {"val_accuracy": entry.get("eval_accuracy"), "val_macro_f1": entry.get("eval_macro_f1")}


def check_train_config(cfg: TrainConfig) -> None:
    if cfg.pos_weight:
        raise ConfigError("train.pos_weight: applies to multi-label classification only (set it to false)")
    if cfg.label_all_subtokens:
        raise ConfigError("train.label_all_subtokens: applies to token classification only (set it to false)")


def read_rows(path: Path, data: DataConfig, *, label_required: bool = True) -> pd.DataFrame:
    if data.label_separator is not None:
        raise ConfigError(
            f"data.label_separator: set to {data.label_separator!r}, but model.task {NAME} takes one label per "
            "text; for several labels per text set model.task: multi-label-classification"
        )
    return read_data_table(path, data, label_required=label_required)


def check_rows(path: Path, frame: pd.DataFrame, data: DataConfig, labels: list[str], cfg: ValidateConfig) -> None:
    """Classification needs two classes at least."""
    classes = sorted(frame[LABEL].dropna().unique())
    if not classes:
        raise StageError(f"{path}: no labels (column '{data.label_column}' is empty in every row)")
    if len(classes) == 1:
        raise StageError(f"{path}: only one class ('{classes[0]}'); classification needs at least 2")


def label_set(cells: pd.Series) -> list[str]:
    return sorted(cells.dropna().unique())


def gx_table(frame: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    return with_derived_columns(frame)  # the suite reads the label set from its parameters


def label_counts(cells: pd.Series) -> pd.Series:
    return cells.value_counts()


def label_of(frame: pd.DataFrame) -> pd.Series:
    return frame[LABEL]


def label_ids(frame: pd.DataFrame, labels: list[str]) -> np.ndarray:
    return frame[LABEL].map({label: i for i, label in enumerate(labels)}).to_numpy(dtype=int)


TASK = Task(
    name=NAME, stages=STAGES, metrics=("accuracy", "macro_f1", "loss"), peft_task_type="SEQ_CLS",
    trains_a_head=True, train_inputs=train_inputs, check_train_inputs=check_train_inputs,
    training_data=training_data, compute_metrics=classification_data.compute_metrics, val_scores=val_scores,
    check_train_config=check_train_config,
    loss_is_batch_mean=True, read_rows=read_rows, check_rows=check_rows, suite="text_classification",
    label_set=label_set, gx_table=gx_table, label_counts=label_counts, stratify_key=label_of,
    split_units=stratified_split,
    augment=augment_frame, read_splits=read_splits, encode_splits=encode_splits, kd_loss=distillation_loss,
    score=classification_metrics, outputs=ARGMAX, targets=label_ids, measure_calibration=softmax_calibration,
    per_label_table=per_class_table, confusion=confusion,
    classification_report=write_classification_report,
    onnx_outputs=("logits",), parity_metric="macro_f1",
    drift_signals=frozenset({"descriptors", "predictions", "embeddings"}), file_label=str,
)
