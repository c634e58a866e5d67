"""Batched inference with a Hugging Face classification directory, checked before it is trusted.

A directory holds a sequence-classification head (one prediction per text) or a token-classification head (one per
token: tuneforge/inference/word_windows.py reads it word by word); the caller names the head it expects (HEADS).

Loading refuses, with one line each: a missing directory, a directory that is not a model, a file that
differs from (or is not among) the sha256 its meta.json records (folders from train and distill record
them; older or hand-made ones without a record are loaded unchecked), weights that are not safetensors,
a model without a trained classification head, a model trained with the other kind of head, a tokenizer
that is missing or whose token ids do not fit the model's embedding matrix. Weights are read from safetensors only and
`trust_remote_code` is never enabled.
"""

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer

from tuneforge.base.errors import ConfigError, StageError
from tuneforge.base.integrity import has_record, require_recorded_files, verify_folder
from tuneforge.inference.tokenizer_check import VOCABULARY_FILES, require_tokenizer

SAFETENSORS_FILES = ("model.safetensors", "model.safetensors.index.json")
# The heads a trained directory may hold, by the name a task gives (Task.model_head): the Auto class that loads it.
HEADS = {"sequence": AutoModelForSequenceClassification, "token": AutoModelForTokenClassification}


@dataclass(frozen=True)
class Classifier:
    model: torch.nn.Module
    tokenizer: object
    labels: list[str]  # labels[i] is the class of logit i (the config's id2label)
    path: Path
    device: torch.device


@dataclass(frozen=True)
class Predictions:
    # (rows, labels); for a token classifier one (words, labels) array per row. The task's output rule turns them
    # into scores and labels.
    logits: np.ndarray | list[np.ndarray]
    seconds: float


def pick_device(choice: str, key: str) -> torch.device:
    """The torch device of a spec's `device` key (auto, cpu or cuda; `key` names it in the error):
    auto is CUDA when available, else CPU; cuda without a CUDA device is refused."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{key}: cuda, but no CUDA device is available (use auto or cpu)")
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


def check_classifier_dir(path: Path, missing_hint: str) -> Path:
    """One StageError line unless `path` is a model directory with a config and safetensors weights."""
    path = Path(path)
    if not path.exists():
        raise StageError(f"{path}: no such model directory; {missing_hint}")
    if not path.is_dir() or not (path / "config.json").is_file():
        raise StageError(f"{path}: not a model directory (no config.json)")
    if not any((path / name).is_file() for name in SAFETENSORS_FILES):
        raise StageError(f"{path}: no safetensors weights (model.safetensors); pickled weights are never loaded")
    if has_record(path):  # written by train or distill: every file there must be the one they recorded
        verify_folder(path, present_only=True)
    return path


def load_sequence_classifier(path: Path, config, head: str = "sequence"):
    """from_pretrained from safetensors only, refusing a checkpoint that lacks weights (they would be random) or
    was trained with another kind of head (a sequence head's weights would load into a token head unnoticed)."""
    _check_head(path, config, head)
    with _quiet_transformers():
        try:
            model, info = HEADS[head].from_pretrained(
                path, config=config, use_safetensors=True, trust_remote_code=False, dtype=torch.float32,
                output_loading_info=True,
            )
        except (ValueError, OSError, KeyError, RuntimeError) as exc:
            raise StageError(f"{path}: cannot load it as a {head} classifier: {_first_line(exc)}") from None
    if info["missing_keys"]:
        # from_pretrained fills absent weights with random ones; a random head would be evaluated silently.
        missing = ", ".join(sorted(info["missing_keys"])[:3])
        raise StageError(f"{path}: weights missing from the checkpoint (not a trained classifier?): {missing}")
    return model


def _check_head(path: Path, config, head: str) -> None:
    """A directory whose config names a head of another kind (config.architectures) is refused in one line."""
    suffixes = {name: auto.__name__.removeprefix("AutoModel") for name, auto in HEADS.items()}
    trained = [arch for arch in config.architectures or () if arch.endswith(tuple(suffixes.values()))]
    if trained and not any(arch.endswith(suffixes[head]) for arch in trained):
        raise StageError(
            f"{path}: holds a {trained[0]}, not a {head} classifier (model.task names another task than the one "
            "it was trained for)"
        )


def load_trained_classifier(
    path: Path, device: torch.device, *, missing_hint: str, head: str = "sequence"
) -> Classifier:
    """The model, tokenizer and labels of a trained classification directory (what train writes) with the `head`
    of HEADS, or one StageError line. (A new head on a base model: tuneforge.training.modeling.classifier_from_base.)"""
    path = check_classifier_dir(path, missing_hint)
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=False)
    except (ValueError, OSError, KeyError) as exc:
        raise StageError(f"{path}: cannot read config.json: {_first_line(exc)}") from None
    tokenizer = load_tokenizer(path)
    model = load_sequence_classifier(path, config, head)
    _check_tokenizer_fits(path, tokenizer, model)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    labels = [str(config.id2label[i]) for i in range(config.num_labels)]
    if has_record(path):
        require_recorded_files(path)  # after the checks above, which name a missing file more precisely
    model.to(device).eval()
    return Classifier(model=model, tokenizer=tokenizer, labels=labels, path=path, device=device)


def load_tokenizer(path: Path, *, where: str | None = None, files: tuple[str, ...] = VOCABULARY_FILES):
    """The tokenizer of a model directory (a base model or a trained one), with a pad token; refused in one
    line when it has none (inference/tokenizer_check.py). `where` prefixes the line (`model.base: NAME`)."""
    subject = f"{where}: {path}" if where else str(path)
    require_tokenizer(path, where=where, files=files)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    except (ValueError, OSError, KeyError, TypeError) as exc:
        raise StageError(f"{subject}: no usable tokenizer in the model directory: {_first_line(exc)}") from None
    if tokenizer is None or isinstance(tokenizer, bool):
        raise StageError(f"{subject}: no usable tokenizer in the model directory")
    require_tokenizer(path, where=where, files=files, tokenizer=tokenizer)
    if tokenizer.pad_token is None:
        # Causal LMs often ship without a pad token; padding positions are masked out, so EOS serves.
        if tokenizer.eos_token is None:
            raise StageError(f"{subject}: its tokenizer has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _check_tokenizer_fits(path: Path, tokenizer, model) -> None:
    """Every id the tokenizer can emit must index a row of the embedding matrix (a tokenizer from another
    model would otherwise crash mid-run, or worse, read the wrong rows)."""
    rows = model.get_input_embeddings().num_embeddings
    size = len(tokenizer)
    if size > rows:
        raise StageError(
            f"{path}: tokenizer does not match the model: it has {size} tokens but the embedding matrix has "
            f"{rows} rows"
        )


def predict(classifier: Classifier, texts: Sequence[str], *, batch_size: int, max_length: int) -> Predictions:
    """The logits for `texts`, in their order. Texts are batched by length (less padding)."""
    started = time.perf_counter()
    texts = [str(text) for text in texts]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    logits = np.zeros((len(texts), len(classifier.labels)), dtype=np.float64)
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            batch = classifier.tokenizer(
                [texts[i] for i in rows], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
            ).to(classifier.device)
            logits[rows] = classifier.model(**batch).logits.float().cpu().double().numpy()
    return Predictions(logits=logits, seconds=time.perf_counter() - started)


def predicts_label_sets(classifier: Classifier) -> bool:
    """Whether the head has one sigmoid per label (transformers' multi-label problem type), not a softmax."""
    return getattr(classifier.model.config, "problem_type", None) == "multi_label_classification"


def count_parameters(model: torch.nn.Module, *, trainable_only: bool = False) -> int:
    """Parameters of `model` (with trainable_only, those that require a gradient)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextlib.contextmanager
def _quiet_transformers():
    # Loading reports (and draws a progress bar for) every weight; only failures matter here.
    before, bars = transformers.logging.get_verbosity(), transformers.logging.is_progress_bar_enabled()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(before)
        if bars:
            transformers.logging.enable_progress_bar()
