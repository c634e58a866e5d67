"""Predictions from a shipped models/onnx directory with plain onnxruntime + tokenizers (no torch, no transformers).

The directory holds model.int8.onnx (the default) and model.onnx, tokenizer.json (truncation and padding
are part of it), and labels.json ({"labels": [...], "decision": rule, "calibration": {...}}, label i is logit
i; the decision names the rule in tuneforge/inference/outputs.py that turns logits into predictions, argmax
when absent, and the calibration is what the export stage fitted for it on val, e.g. a softmax temperature).
The graph takes the tokenizer's
ids as they are: a student with a pruned vocabulary remaps them inside the graph.

Every way a directory can be unusable (missing, no tokenizer, a tokenizer that does not fit the model,
a corrupt ONNX file, labels that do not match the model's outputs) is one StageError line. By default
the files loaded must hash to the sha256 the export stage recorded in meta.json (tuneforge/base/integrity.py);
they are read once and loaded from the bytes that were checked.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tuneforge.base.errors import StageError
from tuneforge.base.integrity import recorded_hashes, verified_bytes
from tuneforge.inference.outputs import ARGMAX, NO_CALIBRATION, OutputRule, labels_from_logits, rule_named
from tuneforge.inference.tokenizer_check import require_tokenizer

MODEL_FILES = {"int8": "model.int8.onnx", "fp32": "model.onnx"}
TOKENIZER_FILE = "tokenizer.json"
LABELS_FILE = "labels.json"
TOKEN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass(frozen=True)
class OnnxClassifier:
    session: object  # onnxruntime.InferenceSession
    tokenizer: object  # tokenizers.Tokenizer, with truncation and padding enabled
    labels: list[str]
    input_names: list[str]
    path: Path
    outputs: OutputRule = ARGMAX  # logits into predictions, as labels.json names it
    calibration: Mapping = field(default_factory=lambda: NO_CALIBRATION)  # the rule's, from labels.json


def create_session(model_path: Path, threads: int | None = None, *, data: bytes | None = None, spinning: bool = True):
    """An onnxruntime CPU session, or a StageError naming the file when it is missing or not a valid model.
    `data`: the file's bytes, already read (and verified); the session is built from them, not the path.
    `spinning=False`: onnxruntime's worker threads sleep between runs instead of busy-waiting for the next
    one, leaving the cores to the rest of the process (a server's event loop) between batches."""
    import onnxruntime

    model_path = Path(model_path)
    if data is None and not model_path.is_file():
        raise StageError(f"{model_path}: no such file")
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: the warnings are about graph optimisations, not for users
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    try:
        source = data if data is not None else str(model_path)
        return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's errors (InvalidProtobuf, Fail, ...) derive from Exception only
        raise StageError(f"{model_path}: not a valid ONNX model ({_first_line(exc)})") from None


def load(
    directory: Path, *, variant: str = "int8", threads: int | None = None, verify: bool = True,
    spinning: bool = True,
) -> OnnxClassifier:
    """The classifier in a models/onnx directory: `variant` int8 (model.int8.onnx) or fp32 (model.onnx).

    `verify` (the default) refuses any file it loads whose sha256 differs from meta.json's record; only a
    folder made by hand, or one being written (the export stage, before its meta.json), skips it.
    `spinning`: see create_session."""
    directory = Path(directory)
    if variant not in MODEL_FILES:
        raise StageError(f"unknown model variant '{variant}' (use {' or '.join(MODEL_FILES)})")
    if not directory.is_dir():
        raise StageError(f"{directory}: no such model directory")
    hashes = recorded_hashes(directory) if verify else None
    model_path = directory / MODEL_FILES[variant]

    def contents(path: Path) -> bytes | None:
        return verified_bytes(directory, hashes, path.name) if hashes is not None and path.is_file() else None

    labels, outputs, calibration = read_labels(directory / LABELS_FILE, data=contents(directory / LABELS_FILE))
    tokenizer = load_tokenizer(directory / TOKENIZER_FILE, data=contents(directory / TOKENIZER_FILE))
    session = create_session(model_path, threads, data=contents(model_path), spinning=spinning)
    input_names = [item.name for item in session.get_inputs()]
    unknown = [name for name in input_names if name not in TOKEN_INPUTS]
    if unknown or "input_ids" not in input_names:
        raise StageError(f"{model_path}: not a text classifier graph (inputs {input_names})")
    check_fits(model_path, session, tokenizer, labels)
    return OnnxClassifier(
        session=session, tokenizer=tokenizer, labels=labels, input_names=input_names, path=directory, outputs=outputs,
        calibration=calibration,
    )


def read_labels(path: Path, *, data: bytes | None = None) -> tuple[list[str], OutputRule, Mapping]:
    """The label names of the model's outputs, the rule that turns them into predictions and its calibration."""
    if data is None and not path.is_file():
        raise StageError(f"{path}: no such file (the label names of the model's outputs)")
    try:
        content = json.loads((data if data is not None else path.read_bytes()).decode("utf-8"))
        labels, decision = content["labels"], content.get("decision", ARGMAX.name)
        calibration = content.get("calibration", {})
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        raise StageError(f'{path}: not a label file ({{"labels": [...]}})') from None
    if not isinstance(labels, list) or len(labels) < 2:
        raise StageError(f"{path}: needs a list of at least two labels")
    rule = rule_named(str(decision), str(path))
    return [str(label) for label in labels], rule, rule.check(calibration, str(path), [str(label) for label in labels])


def load_tokenizer(path: Path, *, data: bytes | None = None):
    from tokenizers import Tokenizer

    path = Path(path)
    if data is None:  # verified bytes were read from the file already
        require_tokenizer(path.parent, files=(path.name,))
    try:
        tokenizer = Tokenizer.from_str(data.decode("utf-8")) if data is not None else Tokenizer.from_file(str(path))
    except Exception as exc:  # the tokenizers library raises its own Exception subclass
        raise StageError(f"{path}: not a readable tokenizer ({_first_line(exc)})") from None
    require_tokenizer(path.parent, files=(path.name,), tokenizer=tokenizer)
    if tokenizer.padding is None:
        raise StageError(f"{path}: has no padding settings; export the model again (python -m stages.export)")
    return tokenizer


def check_fits(model_path: Path, session, tokenizer, labels: list[str]) -> None:
    """The tokenizer's ids must index the graph's embedding, and the outputs must match labels.json."""
    outputs = session.get_outputs()[0].shape
    if len(outputs) != 2 or (isinstance(outputs[1], int) and outputs[1] != len(labels)):
        raise StageError(f"{model_path}: the model has {outputs[1]} outputs but labels.json names {len(labels)}")
    metadata = session.get_modelmeta().custom_metadata_map
    vocabulary = int(metadata.get("vocab_size", 0) or 0)
    if vocabulary and tokenizer.get_vocab_size(with_added_tokens=True) > vocabulary:
        raise StageError(
            f"{model_path}: tokenizer does not match the model: it has "
            f"{tokenizer.get_vocab_size(with_added_tokens=True)} tokens but the model takes ids below {vocabulary}"
        )


def encode(classifier: OnnxClassifier, texts: Sequence[str]) -> dict[str, np.ndarray]:
    """The graph's inputs for a batch: int64 arrays padded to the batch's longest text."""
    encodings = classifier.tokenizer.encode_batch([str(text) for text in texts])
    columns = {
        "input_ids": [e.ids for e in encodings],
        "attention_mask": [e.attention_mask for e in encodings],
        "token_type_ids": [e.type_ids for e in encodings],
    }
    return {name: np.asarray(columns[name], dtype=np.int64) for name in classifier.input_names}


def logits(classifier: OnnxClassifier, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
    """(rows, labels) logits in the order of `texts`; batches group texts of similar length (less padding)."""
    texts = [str(text) for text in texts]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), len(classifier.labels)), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        out[rows] = classifier.session.run(None, encode(classifier, [texts[i] for i in rows]))[0]
    return out


def predicted_labels(classifier: OnnxClassifier, texts: Sequence[str], *, batch_size: int = 32) -> list:
    """The predicted label of each text, by the folder's decision rule."""
    raw = logits(classifier, texts, batch_size=batch_size)
    return labels_from_logits(classifier.outputs, raw, classifier.labels, classifier.calibration)


def predict(classifier: OnnxClassifier, texts: Sequence[str], *, batch_size: int = 32, top_k: int = 1) -> list[dict]:
    """One {text, label, score, top: [{label, score}, ...]} per text, by the folder's decision rule (argmax:
    score is the softmax probability of the temperature the folder was exported with)."""
    if not texts:
        return []
    rule, calibration = classifier.outputs, classifier.calibration
    scores = rule.scores(logits(classifier, texts, batch_size=batch_size), calibration)
    results = rule.predictions(scores, classifier.labels, top_k, calibration)
    return [{"text": str(text), **result} for text, result in zip(texts, results, strict=True)]


def read_texts(path: Path) -> list[str]:
    """One text per line; blank lines are skipped."""
    path = Path(path)
    if path.is_dir():
        # Not the monitor's batch folder of CSV/JSONL/Parquet tables: --file is one plain text file.
        raise StageError(f"{path}: is a directory; --file takes one UTF-8 text file with one text per line")
    if not path.is_file():
        raise StageError(f"{path}: {'not a regular file' if path.exists() else 'no such file'}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise StageError(f"{path}: not UTF-8 text") from None
    return [line.strip() for line in lines if line.strip()]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
