"""Task `token-classification`: a BIO tag per word (named entities), rows of whole sentences.

It goes through the data stages today: validate, split and augment (token_classification_data.py: CoNLL,
JSONL/Parquet tokens and tags or text and character spans; IOB2 checks; splits stratified on the entity types of
each sentence; entity-preserving augmentation). train, tune, evaluate, distill, export, register and monitor refuse
it with one line (interface.require) until they learn it (issue #14): a token-classification head with labels
aligned to the first subword of each word, seqeval's entity-level scores, a token-level ONNX output.

The facts below that belong to those stages (metrics, peft task type, head, loss) are what they will use: the
primary metric is the entity-level micro F1 (conlleval's), the head a linear layer per token.
"""

from tuneforge.tasks import token_classification_data as data
from tuneforge.tasks.interface import Task

NAME = "token-classification"
STAGES = frozenset({"validate", "split", "augment"})

TASK = Task(
    name=NAME, stages=STAGES, metrics=("f1", "precision", "recall", "loss"), peft_task_type="TOKEN_CLS",
    trains_a_head=True, loss_is_batch_mean=True,
    # validate, split, augment
    read_rows=data.read_rows, fix_rows=data.fix_rows, check_rows=data.check_rows, suite=data.SUITE,
    label_set=data.label_set, declared_label_set=data.declared_label_set, gx_table=data.gx_table,
    label_counts=data.label_counts, counted=("mentions", "entity type"), counted_names=data.counted_names,
    label_cardinality=data.cardinality, stratify_key=data.label_of, split_units=data.split_units,
    augment=data.augment,
)
