"""Task `token-classification`: a BIO tag per word (named entities), rows of whole sentences.

It goes through validate, split and augment (token_classification_data.py: CoNLL, JSONL/Parquet tokens and tags or
text and character spans; IOB2 checks; splits stratified on the entity types of each sentence; entity-preserving
augmentation), and train, tune and evaluate (token_classification_model.py: a token-classification head with each
word's tag on its first sub-token, long sentences in overlapping windows, conlleval's entity-level scores, the
entity error table). distill, export, register and monitor refuse it with one line (interface.require) until they
learn it (issue #14): a token-level KD loss, a token-level ONNX output and parity metric, word drift signals.

The primary metric is the entity-level micro F1 (conlleval's); `accuracy` is per token.
"""

from tuneforge.evaluation.entity_report import write_error_table
from tuneforge.inference.outputs import TAGS
from tuneforge.tasks import token_classification_data as data
from tuneforge.tasks import token_classification_model as model
from tuneforge.tasks.interface import Task

NAME = "token-classification"
STAGES = frozenset({"validate", "split", "augment", "train", "tune", "evaluate"})

TASK = Task(
    name=NAME, stages=STAGES, metrics=("f1", "precision", "recall", "accuracy", "loss"), peft_task_type="TOKEN_CLS",
    trains_a_head=True, loss_is_batch_mean=True,
    # validate, split, augment
    read_rows=data.read_rows, fix_rows=data.fix_rows, check_rows=data.check_rows, suite=data.SUITE,
    label_set=data.label_set, declared_label_set=data.declared_label_set, gx_table=data.gx_table,
    label_counts=data.label_counts, counted=("mentions", "entity type"), counted_names=data.counted_names,
    label_cardinality=data.cardinality, stratify_key=data.label_of, split_units=data.split_units,
    augment=data.augment,
    # train, tune (the val scores need the tag names and the windows: TrainingData.compute_metrics)
    train_inputs=model.train_inputs, check_train_inputs=model.check_train_inputs, training_data=model.training_data,
    val_scores=model.val_scores, check_train_config=model.check_train_config,
    # evaluate
    score=model.score, outputs=TAGS, model_head=model.HEAD, predict=model.predict, targets=model.targets,
    measure_calibration=model.measure_calibration, per_label_table=model.per_label_table,
    classification_report=write_error_table,
)
