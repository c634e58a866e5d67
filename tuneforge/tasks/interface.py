"""What varies between tasks, behind one small interface: the stages ask the task `model.task` names.

A task is a frozen record of plain functions and facts, not a class hierarchy: a new task is one module that
builds a `Task` (see text_classification.py), one GX suite, one recipe in configs/, and tests. The library
below (training/, evaluation/, export/ ...) never imports a task; the stages pass the one they hold, or the
pieces of it a library function takes (a loss, a scoring function, an output rule).

A field a task leaves as None belongs to a stage the task does not go through yet (`stages`): that stage
refuses the task with one line before it would need the field.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tuneforge.base.errors import ConfigError
from tuneforge.inference.outputs import OutputRule


@dataclass(frozen=True)
class TrainingData:
    """What fine-tuning needs from a task: the model with its head, encoded splits, their collator."""

    model: Any
    train: list[dict]
    val: list[dict]
    collator: Any
    extra: dict  # task facts for meta.json (e.g. a chat template, skipped examples)
    # the Trainer's compute_loss_func (outputs, labels, num_items_in_batch) -> a batch-mean loss; None: the
    # model's own loss
    compute_loss: Callable | None = None
    # the Trainer's compute_metrics for these val examples, when scoring them needs what only the data knows (token
    # classification: the tag names, and which windows make one sentence); None: the task's compute_metrics
    compute_metrics: Callable | None = None


@dataclass(frozen=True)
class Task:
    name: str
    # The stages this task goes through; the others refuse it with one line (see `require`).
    stages: frozenset[str]
    # What train.metric / tune.metric may be; the first is the task's primary metric.
    metrics: tuple[str, ...]
    peft_task_type: str  # peft's TaskType for the `peft` block's task_type
    trains_a_head: bool  # whether train.method `frozen` (a new head on a frozen backbone) applies
    # Heads that average their loss per batch and ignore num_items_in_batch (the Trainer must not rescale it)
    loss_is_batch_mean: bool
    # train, tune: (train cfg, augmented dir, splits dir, validated dir) -> the train stage's input files by role
    train_inputs: Callable[..., dict[str, Path]] | None = None
    # train, tune: the inputs above -> the label set (None for tasks without one); reads and checks before a model
    # loads
    check_train_inputs: Callable[[dict[str, Path]], list[str] | None] | None = None
    # train, tune: (model cfg, train cfg, base path, tokenizer, labels, inputs, pad multiple) -> TrainingData
    training_data: Callable[..., TrainingData] | None = None
    # the Trainer's compute_metrics for the val scores, or None when the loss is the only score (or when
    # training_data supplies its own: TrainingData.compute_metrics)
    compute_metrics: Callable | None = None
    # train, tune: one Trainer eval log entry -> the history's val_* columns
    val_scores: Callable[[dict], dict] | None = None
    # train, tune: the train section -> None, or a ConfigError naming a key the task does not take (checked before
    # anything loads, and on every value a tune search space could try)
    check_train_config: Callable[[Any], None] | None = None
    # validate, monitor: (data file, data cfg, *, label_required=True) -> rows (text, label, source_row); a bad row
    # is refused with file and line; label_required=False reads a file without the label column as label None
    read_rows: Callable[..., pd.DataFrame] | None = None
    # validate: (file, rows as read, validate cfg) -> (the rows, facts for the metrics): the task's own fixes of what
    # it read (token classification: ill-formed BIO tags repaired or refused), on every given file before cleaning;
    # None: the rows as read
    fix_rows: Callable[[Path, pd.DataFrame, Any], tuple[pd.DataFrame, dict[str, int]]] | None = None
    # validate: (file, cleaned rows, data cfg, label set, validate cfg) -> None, or a StageError on data the task
    # cannot learn from
    check_rows: Callable[[Path, pd.DataFrame, Any, list[str], Any], None] | None = None
    # validate: the GX suite (expectations/<suite>.json) that validate.suite null stands for
    suite: str | None = None
    # validate: label cells -> the label set they use, sorted (when data.labels and data.labels_file are null)
    label_set: Callable[[pd.Series], list[str]] | None = None
    # validate: the declared labels (data.labels, data.labels_file) -> the label set recorded; None: as declared
    # (token classification declares entity types or tags and records every tag of those types)
    declared_label_set: Callable[[list[str]], list[str]] | None = None
    # validate: (cleaned rows, label set) -> the table the suite checks: the rows and the derived columns it reads
    gx_table: Callable[[pd.DataFrame, list[str]], pd.DataFrame] | None = None
    # validate, split, augment: label cells -> rows per label (a row counts once for each label it holds), or what
    # `counted` names
    label_counts: Callable[[pd.Series], pd.Series] | None = None
    # what label_counts counts, and per what, as the summaries' tables say it; token classification counts
    # ("mentions", "entity type")
    counted: tuple[str, str] = ("rows", "label")
    # validate: the label set -> the names label_counts counts by, in the summary's order; None: the labels
    counted_names: Callable[[list[str]], list[str]] | None = None
    # validate: label cells -> facts on how many labels rows hold, for metrics and the summary; None: one each
    label_cardinality: Callable[[pd.Series], dict] | None = None
    # split: rows -> the stratum of each row, kept in proportion (and present) in every split
    stratify_key: Callable[[pd.DataFrame], pd.Series] | None = None
    # split: (strata of the distinct texts, indexed by text; shares of the held-out splits to cut; seed) -> the
    # index of each split (train and the ones cut); a stratum too rare to reach every split is refused
    split_units: Callable[[pd.Series, dict[str, float], int], dict[str, pd.Index]] | None = None
    # augment: (train rows, augment cfg) -> (augmented rows with provenance, facts for the metrics); None: the
    # task has no augmentation, augment.enabled true is refused and false passes the train split through
    augment: Callable[[pd.DataFrame, Any], tuple[pd.DataFrame, dict]] | None = None
    # distill: split files by name -> their rows, read and checked before any model loads
    read_splits: Callable[[dict[str, Path]], dict[str, pd.DataFrame]] | None = None
    # distill: (rows by split, their files, the teacher's tokenizer and labels, max length) -> encoded examples
    # by split, with `labels`; splits the teacher's labels cannot score are refused
    encode_splits: Callable[..., dict[str, list[dict]]] | None = None
    # distill: (student logits, teacher logits, labels, *, alpha, temperature) -> the batch-mean loss
    kd_loss: Callable[..., Any] | None = None
    # (true labels, predicted labels) -> metrics, among them every name in `metrics` but the loss
    score: Callable[[list, list], dict] | None = None
    # model outputs into scores and predictions: evaluate, distill, export, and (named in the exported
    # labels.json) `tuneforge predict`, the monitor and the server
    outputs: OutputRule | None = None
    # evaluate: the head a trained model directory holds (tuneforge/inference/torch_predictor.py HEADS): "sequence"
    # (one prediction per text) or "token" (one per token)
    model_head: str = "sequence"
    # evaluate: (classifier, texts, *, batch_size, max_length, stride) -> Predictions whose logits `outputs` takes;
    # None: torch_predictor.predict (one row of logits per text, truncated to max_length; stride unused)
    predict: Callable[..., Any] | None = None
    # evaluate: (true labels, predicted labels, the model's labels) -> one row per label: label, precision,
    # recall, f1, support, predicted
    per_label_table: Callable[[list, list, list[str]], pd.DataFrame] | None = None
    # evaluate: (true labels, predicted labels, the model's labels) -> the confusion count matrix; None for tasks
    # without one (then no confusion files and no confusions.md)
    confusion: Callable[[list, list, list[str]], Any] | None = None
    # evaluate: (scores, targets) -> threshold-free ranking metrics (e.g. mean average precision); None: none
    ranking_metrics: Callable[[Any, Any], dict] | None = None
    # evaluate: (rows with label and predicted, the production model's or None, out dir) -> writes the Evidently
    # classification report, or the task's own (token classification: the entity error table); None: no report
    classification_report: Callable[..., Any] | None = None
    # evaluate, export: (rows, the model's labels) -> the true labels as `outputs.fit` and `measure_calibration`
    # take them (label indices for single-label); every label of the rows is known to the model
    targets: Callable[[pd.DataFrame, list[str]], Any] | None = None
    # evaluate, export: (logits, calibration, targets, bins) -> {"ece", "nll", "bins"}: how well the scores match
    # how often the model is right, and the reliability table behind the ECE
    measure_calibration: Callable[[Any, Any, Any, int], dict] | None = None
    # export: the graph's output names, and the metric the int8 parity gate compares
    onnx_outputs: tuple[str, ...] = ()
    parity_metric: str | None = None
    # monitor: the drift signals that apply to the task's inputs and predictions
    drift_signals: frozenset[str] = frozenset()
    # monitor (retraining): a row's label as a JSONL or Parquet cell that read_rows reads back as that label
    # (the retrain's merged training file is written with it)
    file_label: Callable[[str], Any] | None = None

    @property
    def primary_metric(self) -> str:
        return self.metrics[0]


# The fields each stage asks for: a task that goes through a stage sets every one of them (tests check it).
STAGE_NEEDS: dict[str, tuple[str, ...]] = {
    "validate": ("read_rows", "check_rows", "suite", "label_set", "gx_table", "label_counts"),
    "split": ("stratify_key", "split_units", "label_counts"),
    "augment": ("label_counts",),  # without `augment` only augment.enabled: false goes through
    "train": ("train_inputs", "check_train_inputs", "training_data", "val_scores"),
    "tune": ("train_inputs", "check_train_inputs", "training_data", "val_scores"),
    "evaluate": ("outputs", "score", "targets", "measure_calibration", "label_counts", "per_label_table"),
    "distill": ("read_splits", "encode_splits", "kd_loss", "compute_metrics", "outputs", "score", "val_scores",
                "targets"),
    "export": ("onnx_outputs", "outputs", "score", "parity_metric", "targets", "measure_calibration", "label_counts"),
    "register": (),
    "monitor": ("drift_signals", "read_rows", "file_label", "outputs"),
}


def require(task: Task, stage: str) -> None:
    """A stage the task does not go through yet refuses it with one line naming the task."""
    if stage not in task.stages:
        raise ConfigError(
            f"model.task: {task.name} is not supported by the {stage} stage yet "
            f"(it goes through: {', '.join(sorted(task.stages))})"
        )
