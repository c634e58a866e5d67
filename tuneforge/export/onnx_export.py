"""A sequence classifier to ONNX (fp32) and to dynamic int8, plus the tokenizer file that ships beside it.

Exporter: torch.onnx.export with the TorchScript tracer (`dynamo=False`). Measured on torch 2.13 /
transformers 5.24 with MiniLM-L6: both exporters give logits within 1e-7 of PyTorch with dynamic batch and
sequence axes, and int8 latencies within noise of each other; the dynamo exporter needs `onnxscript` (not a
dependency here) and takes 3-4x longer to export. The tracer is deprecated upstream, and torch is pinned
below 2.14 in pyproject.toml; moving to `dynamo=True` means adding onnxscript.

The example batch is padded on purpose (two texts of different lengths): a graph traced from an unpadded
batch may bake in "no padding" and ignore the attention mask on padded inputs (measured on an earlier stack:
max |logit difference| 1.95). `padded_example` refuses an example without padding, and the parity gate
compares padded batches against PyTorch on the whole test split.
"""

import contextlib
import io
import logging
import warnings
from pathlib import Path

import onnx
import torch

from tuneforge.base.errors import StageError

TOKEN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
EXPORTER = "torch.onnx.export (TorchScript tracer, dynamo=False)"
EXAMPLE_TEXTS = ("a short one", "a somewhat longer example sentence that the other one is padded to match")


def check_exportable(model, where: Path) -> None:
    """Only sequence classifiers with labels are exported: anything else gets one line naming its class."""
    name = type(model).__name__
    config = getattr(model, "config", None)
    if not name.endswith("ForSequenceClassification") or not getattr(config, "id2label", None):
        raise StageError(
            f"{where}: the exporter handles sequence classifiers (*ForSequenceClassification) only, "
            f"not {name}"
        )


def input_names(tokenizer) -> list[str]:
    names = [name for name in TOKEN_INPUTS if name in tokenizer.model_input_names]
    if "input_ids" not in names or "attention_mask" not in names:
        raise StageError(
            f"tokenizer {type(tokenizer).__name__} does not produce input_ids and attention_mask "
            f"(it produces {tokenizer.model_input_names})"
        )
    return names


def padded_example(tokenizer, names: list[str], max_length: int) -> tuple[torch.Tensor, ...]:
    encoded = tokenizer(list(EXAMPLE_TEXTS), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    if bool(encoded["attention_mask"].all()):
        raise StageError("export: the example batch has no padding; the graph could ignore the attention mask")
    return tuple(encoded[name] for name in names)


def export_fp32(
    module: torch.nn.Module, tokenizer, path: Path, *, outputs: tuple[str, ...], opset: int, max_length: int,
    where: Path,
) -> None:
    """Trace `module` (tokenizer inputs -> the task's `outputs`, e.g. logits) into `path` with dynamic batch and
    sequence axes."""
    names = input_names(tokenizer)
    example = padded_example(tokenizer, names, max_length)
    axes = {name: {0: "batch", 1: "sequence"} for name in names} | {name: {0: "batch"} for name in outputs}
    classifier = getattr(module, "model", module)
    try:
        with _quiet():
            torch.onnx.export(
                module.eval(), example, str(path), input_names=names, output_names=list(outputs),
                dynamic_axes=axes, opset_version=opset, do_constant_folding=True, dynamo=False,
            )
    except Exception as exc:  # the tracer raises anything from RuntimeError to TypeError on unsupported code
        raise StageError(
            f"{where}: cannot export {type(classifier).__name__} ({classifier.config.model_type}) to ONNX: "
            f"{_first_line(exc)}"
        ) from None


def quantize_int8(source: Path, target: Path, *, per_channel: bool) -> None:
    """Dynamic int8: weights stored as int8, activations quantized on the fly (no calibration data)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet():
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=per_channel)


def set_metadata(path: Path, values: dict[str, str]) -> None:
    """Key/value pairs in the ONNX file itself (predict reads vocab_size to check a tokenizer fits)."""
    model = onnx.load(str(path))
    kept = [prop for prop in model.metadata_props if prop.key not in values]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in values.items():
        model.metadata_props.add(key=key, value=str(value))
    onnx.save(model, str(path))


def write_tokenizer(tokenizer, directory: Path, max_length: int) -> None:
    """The tokenizer files, with truncation and padding written into tokenizer.json, so plain `tokenizers`
    encodes batches exactly as the stage did."""
    from tokenizers import Tokenizer

    tokenizer.save_pretrained(directory)
    path = Path(directory) / "tokenizer.json"
    if not path.is_file():
        raise StageError(f"tokenizer {type(tokenizer).__name__} has no tokenizer.json (a fast tokenizer is needed)")
    backend = Tokenizer.from_file(str(path))
    backend.enable_truncation(max_length=max_length)
    backend.enable_padding(
        direction=tokenizer.padding_side, pad_id=tokenizer.pad_token_id, pad_token=tokenizer.pad_token,
        pad_type_id=getattr(tokenizer, "pad_token_type_id", 0),
    )
    backend.save(str(path))


@contextlib.contextmanager
def _quiet():
    # The tracer's and quantizer's warnings (deprecation, "consider pre-processing") are not for users.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
