"""The model side of token classification: a tag per word from its first sub-token, scored entity by entity.

- Labels: data/validated/labels.json is the tag set (`O`, then `B-`/`I-` per entity type, bio.tag_set), in that
  order the head's id2label. A split holding a tag outside it, or a training split without an entity of some type,
  is refused in one line before a model loads.
- Head and loss: transformers' token-classification head (a linear layer per sub-token) and its cross-entropy over
  the labelled sub-tokens. A word's tag is on its first sub-token; its later sub-tokens are ignored by the loss, or
  (train.label_all_subtokens) labelled with the word's tag, `B-` made `I-` (a later piece continues the entity). Val
  is always labelled on first sub-tokens only: its scores are the words'.
- Long sentences: windows of at most model.max_seq_length sub-tokens sharing model.stride (tuneforge/inference/
  word_windows.py); each word is labelled in one window. meta.json records the windows (`windows`).
- Scores: conlleval's entity-level precision, recall and F1 (exact span and type, micro over types; the primary
  metric is f1) and token accuracy (tuneforge/evaluation/entities.py), per entity type in the per-label table;
  during training, on val, each sentence's windows put back together.
- Predictions: per word, a softmax over the tags at a temperature fitted on the val words (the TAGS output rule);
  calibration is measured per word (ECE and NLL over every test word).
- Errors: evaluate writes the entity error table (missed, spurious, wrong type, wrong boundary, wrong type and
  boundary, with examples: tuneforge/evaluation/entity_report.py).
"""

from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from transformers import DataCollatorForTokenClassification

from tuneforge.base.errors import ConfigError, StageError
from tuneforge.base.spec import ModelConfig, TrainConfig
from tuneforge.data.bio import BEGIN, INSIDE, declared_types, entity_types, tag_set
from tuneforge.data.io import LABEL, TEXT
from tuneforge.data.token_files import decode_tags, sentence_tokens
from tuneforge.evaluation.calibration import softmax_calibration
from tuneforge.evaluation.entities import entity_scores, per_type_scores
from tuneforge.inference.torch_predictor import Classifier, Predictions
from tuneforge.inference.word_windows import (
    IGNORED,
    Encoded,
    encode_words,
    predict_words,
    require_fast,
    window_labels,
)
from tuneforge.tasks import classification_data
from tuneforge.tasks.interface import TrainingData
from tuneforge.training.modeling import check_max_seq_length, classifier_from_base

HEAD = "token"
# The stage to re-run when a split file is missing or unreadable.
WRITTEN_BY = {"train": "augment", "val": "split", "test": "split"}
_SHOWN = 8


def train_inputs(cfg: TrainConfig, augmented: Path, splits: Path, validated: Path) -> dict[str, Path]:
    return {"train": augmented / "train.parquet", "val": splits / "val.parquet", "labels": validated / "labels.json"}


def read_tag_set(path: Path) -> list[str]:
    """labels.json's labels, which must be a tag set in bio.tag_set's order (the head's ids)."""
    labels = classification_data.read_labels(path)
    if labels != tag_set(declared_types(labels)):
        raise StageError(
            f"{path}: {_few(labels)} is not a BIO tag set (O, then B- and I- of each entity type by name); rerun "
            "validate with model.task: token-classification"
        )
    return labels


def read_sentences(path: Path, rerun: str) -> tuple[list[list[str]], list[list[str]]]:
    """(words, tags) of every row of a split file; a row that is not a tag sequence of its words is refused."""
    frame = classification_data.read_split(path, rerun)
    words = [sentence_tokens(text) for text in frame[TEXT]]
    tags = []
    for row, (cell, sentence) in enumerate(zip(frame[LABEL], words, strict=True), start=1):
        try:
            sequence = decode_tags(cell)
        except StageError as exc:
            raise StageError(f"{path}: row {row}: {exc.message}") from None
        if len(sequence) != len(sentence):
            raise StageError(
                f"{path}: row {row}: {len(sentence)} words but {len(sequence)} tags; rerun the {rerun} stage"
            )
        tags.append(sequence)
    return words, tags


def check_tags(labels: list[str], tags: dict[str, list[list[str]]], paths: dict[str, Path]) -> None:
    """Every tag of every split is in the tag set, and train holds an entity of every type (a type the head never
    sees in training it would never predict)."""
    known = set(labels)
    for name, sequences in tags.items():
        unknown = pd.Series([tag for sequence in sequences for tag in sequence if tag not in known])
        if len(unknown):
            counted = unknown.value_counts()
            shown = _few([f"{tag} ({count} tokens)" for tag, count in counted.items()])
            raise StageError(f"{paths[name]}: tag(s) not in the tag set of {paths['labels']}: {shown}; rerun "
                             "validate and split")
    if "train" in tags:
        missing = set(declared_types(labels)) - set(entity_types(t for sequence in tags["train"] for t in sequence))
        if missing:
            raise StageError(f"{paths['train']}: no training sentence holds an entity of type "
                             f"{_few(sorted(missing))}; rerun the split stage (every type needs entities in train)")


def _few(values: list[str]) -> str:
    return ", ".join(values[:_SHOWN]) + (f" and {len(values) - _SHOWN} more" if len(values) > _SHOWN else "")


def check_train_inputs(inputs: dict[str, Path]) -> list[str]:
    labels = read_tag_set(inputs["labels"])
    tags = {name: read_sentences(inputs[name], WRITTEN_BY[name])[1] for name in ("train", "val")}
    check_tags(labels, tags, inputs)
    return labels


def check_train_config(cfg: TrainConfig) -> None:
    if cfg.pos_weight:
        raise ConfigError("train.pos_weight: applies to multi-label classification only (set it to false)")


def continuation_ids(labels: list[str]) -> list[int]:
    """For each tag id, the id a word's later sub-tokens get: `B-x` -> `I-x`, any other tag itself."""
    index = {label: i for i, label in enumerate(labels)}
    return [index.get(INSIDE + label[len(BEGIN):], i) if label.startswith(BEGIN) else i
            for i, label in enumerate(labels)]


def encode_sentences(
    tokenizer, words: list[list[str]], tags: list[list[str]], labels: list[str], max_length: int, stride: int,
    *, label_all_subtokens: bool,
) -> tuple[list[dict], Encoded]:
    """(examples with `labels`, one per window; the windows)."""
    encoded = encode_words(tokenizer, words, max_length, stride)
    index = {label: i for i, label in enumerate(labels)}
    later = continuation_ids(labels) if label_all_subtokens else None
    examples = []
    for features, word_ids, window in zip(encoded.features, encoded.word_ids, encoded.windows, strict=True):
        tag_ids = [index[tag] for tag in tags[window.sentence]]
        examples.append({**features, "labels": window_labels(word_ids, window, tag_ids, later)})
    return examples, encoded


def training_data(
    model_cfg: ModelConfig, cfg: TrainConfig, base_path: Path, tokenizer, labels: list[str],
    inputs: dict[str, str], pad_multiple: int | None,
) -> TrainingData:
    require_fast(tokenizer, f"model.base: {model_cfg.base}")
    model, config = classifier_from_base(base_path, model_cfg.base, labels, dropout=cfg.dropout, head=HEAD)
    check_max_seq_length(model_cfg.max_seq_length, config, tokenizer, model_cfg.base)
    paths = {name: Path(inputs[name]) for name in ("train", "val", "labels")}
    splits = {name: read_sentences(paths[name], WRITTEN_BY[name]) for name in ("train", "val")}
    check_tags(labels, {name: tags for name, (_, tags) in splits.items()}, paths)
    window = {"max_length": model_cfg.max_seq_length, "stride": model_cfg.stride}
    train, train_windows = encode_sentences(
        tokenizer, *splits["train"], labels, **window, label_all_subtokens=cfg.label_all_subtokens
    )
    # Val is scored word by word: its labels are on first sub-tokens whatever train.label_all_subtokens says.
    val, val_windows = encode_sentences(tokenizer, *splits["val"], labels, **window, label_all_subtokens=False)
    extra = {
        "label_all_subtokens": cfg.label_all_subtokens,
        "windows": {"max_seq_length": model_cfg.max_seq_length, "stride": model_cfg.stride,
                    "train": train_windows.facts(), "val": val_windows.facts()},
    }
    sentence_of = [window.sentence for window in val_windows.windows]
    return TrainingData(
        model=model, train=train, val=val,
        collator=DataCollatorForTokenClassification(tokenizer, pad_to_multiple_of=pad_multiple), extra=extra,
        compute_metrics=partial(compute_metrics, labels=labels, sentence_of=sentence_of),
    )


def compute_metrics(prediction, *, labels: list[str], sentence_of: Sequence[int] | None = None) -> dict[str, float]:
    """The Trainer's val scores (f1, precision, recall, accuracy) from the labelled positions of each window (the
    first sub-token of each word it owns), each sentence's windows joined back in order (`sentence_of`: the
    sentence of each window; None, or a count that does not match, scores each window as a sentence)."""
    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    predicted, truth = np.asarray(logits).argmax(axis=-1), np.asarray(prediction.label_ids)
    if sentence_of is None or len(sentence_of) != len(truth):
        sentence_of = range(len(truth))
    true_tags: dict[int, list[str]] = {}
    predicted_tags: dict[int, list[str]] = {}
    for sentence, row_truth, row_predicted in zip(sentence_of, truth, predicted, strict=True):
        labelled = row_truth != IGNORED
        true_tags.setdefault(sentence, []).extend(labels[i] for i in row_truth[labelled])
        predicted_tags.setdefault(sentence, []).extend(labels[i] for i in row_predicted[labelled])
    scores = entity_scores(list(true_tags.values()), list(predicted_tags.values()))
    return {name: scores[name] for name in ("f1", "precision", "recall", "accuracy")}


def val_scores(entry: dict) -> dict:
    return {f"val_{name}": entry.get(f"eval_{name}") for name in ("f1", "precision", "recall", "accuracy")}


# ---- evaluate ----

def _tags(cells: Sequence[str]) -> list[list[str]]:
    return [decode_tags(cell) for cell in cells]


def score(truth: list[str], predicted: list[str]) -> dict:
    """Entity-level f1, precision, recall, macro_f1 (over types) and token accuracy, sentence_accuracy, of tag
    cells (tuneforge/evaluation/entities.py)."""
    return entity_scores(_tags(truth), _tags(predicted))


def per_label_table(truth: list[str], predicted: list[str], labels: list[str]) -> pd.DataFrame:
    """One row per entity type of the model's tags: precision, recall, f1, support (true entities) and predicted
    (predicted entities). Types outside `labels` (a compared model's) are left out."""
    rows = per_type_scores(_tags(truth), _tags(predicted), declared_types(labels))
    return pd.DataFrame({
        "label": [row["type"] for row in rows], "precision": [float(row["precision"]) for row in rows],
        "recall": [float(row["recall"]) for row in rows], "f1": [float(row["f1"]) for row in rows],
        "support": [int(row["support"]) for row in rows], "predicted": [int(row["predicted"]) for row in rows],
    })


def targets(frame: pd.DataFrame, labels: list[str]) -> list[np.ndarray]:
    """Each sentence's tag ids, one per word."""
    index = {label: i for i, label in enumerate(labels)}
    found = []
    for row, (text, cell) in enumerate(zip(frame[TEXT], frame[LABEL], strict=True), start=1):
        tags = decode_tags(cell)
        if len(tags) != len(sentence_tokens(text)):
            raise StageError(f"row {row}: {len(sentence_tokens(text))} words but {len(tags)} tags; rerun the split "
                             "stage")
        unknown = sorted({tag for tag in tags if tag not in index})
        if unknown:
            raise StageError(f"row {row}: tag(s) unknown to the model: {_few(unknown)}")
        found.append(np.array([index[tag] for tag in tags], dtype=int))
    return found


def measure_calibration(logits: list[np.ndarray], calibration, truth: list[np.ndarray], bins: int) -> dict:
    """ECE, NLL and reliability bins over every word: its top tag score against whether that tag is right."""
    return softmax_calibration(np.concatenate(logits), calibration, np.concatenate(truth), bins)


def predict(classifier: Classifier, texts: Sequence[str], *, batch_size: int, max_length: int,
            stride: int) -> Predictions:
    """Each text's words (its single-space-separated tokens) tagged: one (words, labels) logits array per text."""
    return predict_words(classifier, [sentence_tokens(str(text)) for text in texts], batch_size=batch_size,
                         max_length=max_length, stride=stride)
