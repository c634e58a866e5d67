"""Task `multi-label-classification`: a set of labels per text (none, one or several), one sigmoid per label.

Rows are (text, label set); the label column holds the set as one canonical string (tuneforge/data/label_sets.py),
so cleaning, duplicates and Parquet splits are the single-label ones. The data side (reading lists, separators
and id files; validation; iterative stratification; augmentation) is multi_label_data.py, the model side (binary
cross-entropy, thresholds, metrics, sigmoid distillation) multi_label_model.py; this module only assembles them.
"""

from tuneforge.tasks import multi_label_data as data
from tuneforge.tasks.interface import Task

NAME = "multi-label-classification"
STAGES = frozenset({"validate", "split", "augment"})


def _not_yet(*args, **kwargs):
    raise NotImplementedError("multi-label training is not wired yet")


TASK = Task(
    name=NAME, stages=STAGES, metrics=("macro_f1", "micro_f1", "accuracy", "loss"), peft_task_type="SEQ_CLS",
    trains_a_head=True, train_inputs=_not_yet, check_train_inputs=_not_yet, training_data=_not_yet,
    compute_metrics=None, val_scores=_not_yet, loss_is_batch_mean=True,
    read_rows=data.read_rows, check_rows=data.check_rows, suite=data.SUITE, label_set=data.label_set,
    gx_table=data.gx_table, label_counts=data.label_counts, label_cardinality=data.cardinality,
    stratify_key=data.label_of, split_units=data.split_units, augment=data.augment,
)
