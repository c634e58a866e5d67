"""Task `multi-label-classification`: a set of labels per text (none, one or several), one sigmoid per label.

Rows are (text, label set); the label column holds the set as one canonical string (tuneforge/data/label_sets.py),
so cleaning, duplicates and Parquet splits are the single-label ones. The data side (reading lists, separators
and id files; validation; iterative stratification; augmentation) is multi_label_data.py, the model side (binary
cross-entropy, thresholds, metrics, sigmoid distillation) multi_label_model.py; this module only assembles them.
"""

from tuneforge.inference.outputs import THRESHOLDS
from tuneforge.tasks import multi_label_data as data
from tuneforge.tasks import multi_label_model as model
from tuneforge.tasks.interface import Task

NAME = "multi-label-classification"
STAGES = frozenset({"validate", "split", "augment", "train", "tune", "evaluate", "distill", "export", "register",
                    "monitor"})

TASK = Task(
    name=NAME, stages=STAGES, metrics=("macro_f1", "micro_f1", "accuracy", "loss"), peft_task_type="SEQ_CLS",
    trains_a_head=True, train_inputs=model.train_inputs, check_train_inputs=model.check_train_inputs,
    training_data=model.training_data, compute_metrics=model.compute_metrics, val_scores=model.val_scores,
    check_train_config=model.check_train_config,
    loss_is_batch_mean=True,
    # validate, split, augment
    read_rows=data.read_rows, check_rows=data.check_rows, suite=data.SUITE, label_set=data.label_set,
    gx_table=data.gx_table, label_counts=data.label_counts, label_cardinality=data.cardinality,
    stratify_key=data.label_of, split_units=data.split_units, augment=data.augment,
    # distill, evaluate, export
    read_splits=model.read_splits, encode_splits=model.encode_splits, kd_loss=model.distillation_loss,
    score=model.score, outputs=THRESHOLDS, targets=model.targets, measure_calibration=model.measure_calibration,
    per_label_table=model.per_label_table, ranking_metrics=model.ranking_metrics, onnx_outputs=("logits",),
    parity_metric="macro_f1",
    # monitor: a prediction is a label set (its canonical cell), so the prediction signal compares label sets
    drift_signals=frozenset({"descriptors", "predictions", "embeddings"}), file_label=data.file_label,
)
