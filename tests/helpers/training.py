"""Shared builders for the train stage's tests: tiny models made from a config (no download) and their data."""

import json
from pathlib import Path

import pandas as pd
import pytest

from tuneforge.base.layout import Workspace
from tuneforge.base.spec import ModelConfig, TrainConfig

CLASSES = 3


def single_thread():
    """Generator for an autouse fixture: one intra-op thread for the test's training.

    Tiny models gain nothing from a second thread, and on a busy 2-core machine OpenMP's two threads
    wait on each other: a 40-step run measured 0.5 s with one thread and 11-36 s with two.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def one_thread():
    """One torch thread for the test (see single_thread); modules opt in with usefixtures("one_thread")."""
    yield from single_thread()


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    """A random tiny BERT with a word-level tokenizer, built once per test module."""
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def build_tiny_bert(directory: Path, texts=None) -> Path:
    """A 2-layer BERT, hidden size 32, random weights, with a word-level tokenizer of the words of `texts`
    (default: the classification test data's)."""
    from transformers import BertConfig, BertModel

    tokenizer = build_word_tokenizer(classification_rows()["text"] if texts is None else texts)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id,
    )
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def trained_logits(directory: Path, texts: list[str]):
    """(logits of a saved sequence classifier on `texts`, its config), with plain transformers."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForSequenceClassification.from_pretrained(directory, use_safetensors=True).eval()
    with torch.no_grad():
        return model(**tokenizer(texts, padding=True, return_tensors="pt")).logits, model.config


def build_word_tokenizer(texts):
    """A BERT-style tokenizer ([CLS] text [SEP], lower case) whose vocabulary is the words of `texts`."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = sorted({word for text in texts for word in text.lower().split()} | set("0123456789"))
    vocab = {token: i for i, token in enumerate(specials + words)}
    backend = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]",
    )


def classification_rows(classes: int = CLASSES, per_class: int = 20) -> pd.DataFrame:
    """Texts whose class shows in a keyword among shared filler words, so even a tiny random model learns it."""
    keywords = [["card", "atm", "pin"], ["transfer", "iban", "wire"], ["refund", "return", "money"],
                ["app", "login", "password"]]
    fillers = ["my", "the", "is", "not", "working", "since", "today", "please", "help", "again"]
    rows = []
    for label in range(classes):
        for i in range(per_class):
            words = [fillers[(i + k) % len(fillers)] for k in range(3 + i % 4)]
            words.insert(i % len(words), keywords[label][i % 3])
            rows.append({"text": " ".join(words) + f" {i}", "label": f"class_{label}"})
    frame = pd.DataFrame(rows)
    frame["source_row"] = range(2, len(frame) + 2)
    return frame


def write_classification_data(root: Path, *, classes: int = CLASSES, per_class: int = 20) -> Path:
    """data/augmented/train.parquet, data/splits/val.parquet and data/validated/labels.json under `root`."""
    rows = classification_rows(classes, per_class)
    val = rows.iloc[::5]
    train = rows.drop(val.index)
    for directory in ("data/augmented", "data/splits", "data/validated"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    train.to_parquet(root / "data/augmented/train.parquet", index=False)
    val.to_parquet(root / "data/splits/val.parquet", index=False)
    labels = sorted(rows["label"].unique())
    (root / "data/validated/labels.json").write_text(json.dumps({"labels": labels, "source": "inferred"}))
    return root


TINY_MAX_SEQ_LENGTH = 32  # within the tiny models' 64 positions


def tiny_model(base: Path | str, **overrides) -> ModelConfig:
    """The `model` section for a tiny test model at `base`: short inputs."""
    return ModelConfig.model_validate({"base": str(base), "max_seq_length": TINY_MAX_SEQ_LENGTH} | overrides)


def tiny_train(**overrides) -> TrainConfig:
    """A few fast steps; the learning rate is high because the tiny model starts from random weights."""
    settings = dict(
        max_steps=20, eval_steps=5, batch_size=16, eval_batch_size=32, learning_rate=3e-3,
        warmup_ratio=0.0, early_stopping_patience=None,
    )
    return TrainConfig.model_validate(settings | overrides)


def run_train(root: Path, base: Path | str, cfg: TrainConfig, **model):
    from stages import train

    return train.run(tiny_model(base, **model), cfg, workspace=Workspace(root))


def params_yaml(root: Path, base: Path, **train) -> Path:
    """A params.yaml for running the stage as a command inside `root` (paths are the stage's defaults)."""
    import yaml

    path = root / "params.yaml"
    path.write_text(yaml.safe_dump({"model": tiny_model(base).model_dump(), "train": tiny_train(**train).model_dump()}))
    return path
