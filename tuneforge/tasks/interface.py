"""What varies between tasks, behind one small interface: the stages ask the task `model.task` names.

A task is a frozen record of plain functions and facts, not a class hierarchy: a new task is one module that
builds a `Task` (see text_classification.py), one GX suite, one recipe in configs/, and tests. The library
below (training/, evaluation/, export/ ...) never imports a task; the stages pass the one they hold.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuneforge.base.errors import ConfigError


@dataclass(frozen=True)
class TrainingData:
    """What fine-tuning needs from a task: the model with its head, encoded splits, their collator."""

    model: Any
    train: list[dict]
    val: list[dict]
    collator: Any
    extra: dict  # task facts for meta.json (e.g. a chat template, skipped examples)


@dataclass(frozen=True)
class Task:
    name: str
    # The stages this task goes through; the others refuse it with one line (see `require`).
    stages: frozenset[str]
    # What train.metric / tune.metric may be; the first is the task's primary metric.
    metrics: tuple[str, ...]
    peft_task_type: str  # peft's TaskType for the `peft` block's task_type
    trains_a_head: bool  # whether train.method `frozen` (a new head on a frozen backbone) applies
    # (train cfg, augmented dir, splits dir, validated dir) -> the train stage's input files by role
    train_inputs: Callable[..., dict[str, Path]]
    # the inputs above -> the label set (None for tasks without one); reads and checks before a model loads
    check_train_inputs: Callable[[dict[str, Path]], list[str] | None]
    # (model cfg, train cfg, base path, tokenizer, labels, inputs, pad multiple) -> TrainingData
    training_data: Callable[..., TrainingData]
    # the Trainer's compute_metrics for the val scores, or None when the loss is the only score
    compute_metrics: Callable | None
    # one Trainer eval log entry -> the history's val_* columns
    val_scores: Callable[[dict], dict]
    # Heads that average their loss per batch and ignore num_items_in_batch (the Trainer must not rescale it)
    loss_is_batch_mean: bool

    @property
    def primary_metric(self) -> str:
        return self.metrics[0]


def require(task: Task, stage: str) -> None:
    """A stage the task does not go through yet refuses it with one line naming the task."""
    if stage not in task.stages:
        raise ConfigError(
            f"model.task: {task.name} is not supported by the {stage} stage yet "
            f"(it goes through: {', '.join(sorted(task.stages))})"
        )
