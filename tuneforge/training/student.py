"""The student: fewer of the teacher's layers (or a smaller config), and optionally a pruned vocabulary.

Vocabulary pruning keeps the tokenizer untouched and remaps ids instead: the student's embedding matrix
holds only the rows of tokens the training data uses, and `id_map` (original id -> student row, every
other id -> the row of the unknown token) sits beside the model in vocab_map.safetensors. `with_id_map`
applies it in front of the model, and the ONNX export bakes that Gather into the graph, so the shipped
model takes the original tokenizer's ids and the tokenizer/model pair cannot drift apart. This works for
any tokenizer (WordPiece, BPE, Unigram) because the tokenizer itself is never edited.
"""

import copy
import math
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification

from tuneforge.base.errors import ConfigError, StageError
from tuneforge.inference.tokenizer_check import require_tokenizer

VOCAB_MAP_FILE = "vocab_map.safetensors"
TOKENIZER_FILE = "tokenizer.json"
# Config attributes that hold token ids: they index the embedding matrix, so they follow the remap.
TOKEN_ID_KEYS = ("pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id")


def spread_layers(total: int, keep: int) -> list[int]:
    """`keep` of `total` layer indices spread evenly over the depth, always with the first and the last:
    the bottom layer reads the embeddings, the top one feeds the fine-tuned head."""
    if not 1 <= keep <= total:
        raise ConfigError(f"distill.num_layers: must be between 1 and the teacher's {total} layers, got {keep}")
    if keep == 1:
        return [total - 1]
    return sorted({round(i * (total - 1) / (keep - 1)) for i in range(keep)})


def default_layer_count(total: int) -> int:
    """A third of the teacher's layers, rounded up (6 -> 2, 12 -> 4)."""
    return max(1, math.ceil(total / 3))


def choose_layers(total: int, layers: list[int] | None, num_layers: int | None) -> list[int]:
    if layers is not None:
        out_of_range = [layer for layer in layers if layer >= total]
        if out_of_range:
            raise ConfigError(
                f"distill.layers: {out_of_range} out of range: the teacher has {total} layers (0-{total - 1})"
            )
        return sorted(layers)
    return spread_layers(total, num_layers or default_layer_count(total))


def layer_list_name(model: nn.Module) -> str:
    """Dotted name of the transformer's list of layers (bert.encoder.layer, distilbert.transformer.layer...):
    the ModuleList as long as config.num_hidden_layers. Found by shape, not by architecture name."""
    total = getattr(model.config, "num_hidden_layers", None)
    found = [
        name for name, module in model.named_modules()
        if isinstance(module, nn.ModuleList) and total and len(module) == total
    ]
    if len(found) != 1:
        raise StageError(
            f"cannot find the layer list of {type(model).__name__} ({len(found)} module lists of {total} layers); "
            "set distill.student_config to build the student from a smaller config instead"
        )
    return found[0]


def student_from_layers(teacher: nn.Module, keep: list[int]) -> nn.Module:
    """A fresh model of the teacher's class with len(keep) layers, carrying the teacher's weights for the
    embeddings, the kept layers (renumbered) and the head. Loaded strictly: nothing is left random."""
    prefix = layer_list_name(teacher) + "."
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(keep)
    # Some configs list one entry per layer (attention types, window sizes): keep the chosen layers' entries.
    for key, value in config.to_dict().items():
        if isinstance(value, list) and len(value) == teacher.config.num_hidden_layers and key != "id2label":
            setattr(config, key, [value[i] for i in keep])
    renumber = {old: new for new, old in enumerate(keep)}
    state = {}
    for name, tensor in teacher.state_dict().items():
        if name.startswith(prefix):
            index, rest = name[len(prefix):].split(".", 1)
            if int(index) not in renumber:
                continue
            name = f"{prefix}{renumber[int(index)]}.{rest}"
        state[name] = tensor.clone()
    student = type(teacher)(config)
    student.load_state_dict(state, strict=True)
    return student.eval()


def student_from_config(teacher: nn.Module, overrides: dict) -> nn.Module:
    """The teacher's config with `overrides` (passed to transformers as is); every weight whose name and
    shape match the teacher's is copied, the rest keep their fresh initialisation."""
    base = teacher.config.to_dict()
    try:
        config = AutoConfig.for_model(base.pop("model_type"), **{**base, **overrides})
        student = AutoModelForSequenceClassification.from_config(config)
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"distill.student_config: {str(exc).splitlines()[0]}") from None
    own = student.state_dict()
    copied = {
        name: tensor for name, tensor in teacher.state_dict().items()
        if name in own and own[name].shape == tensor.shape
    }
    student.load_state_dict(copied, strict=False)
    return student.eval()


def used_token_ids(encoded_ids: list[list[int]], special_ids: list[int]) -> list[int]:
    """Sorted ids the encoded texts use, plus the tokenizer's special tokens (padding, unknown, separators)."""
    used = set(special_ids)
    for ids in encoded_ids:
        used.update(ids)
    return sorted(used)


def prune_vocabulary(model: nn.Module, keep_ids: list[int], unk_id: int) -> torch.Tensor:
    """Shrink the input embeddings to `keep_ids` (in place) and return the id map of the original vocabulary:
    id_map[original id] = student row; ids not kept map to the row of `unk_id`."""
    embeddings = model.get_input_embeddings()
    if unk_id not in keep_ids:
        raise StageError(f"vocabulary pruning: the unknown token id {unk_id} must be kept")
    if max(keep_ids) >= embeddings.num_embeddings:
        raise StageError(
            f"vocabulary pruning: token id {max(keep_ids)} is beyond the model's {embeddings.num_embeddings} "
            "embedding rows (tokenizer and model do not match)"
        )
    index = torch.tensor(keep_ids, dtype=torch.long)
    id_map = torch.full((embeddings.num_embeddings,), -1, dtype=torch.long)
    id_map[index] = torch.arange(len(keep_ids))
    id_map[id_map < 0] = id_map[unk_id]

    padding_idx = embeddings.padding_idx
    pruned = nn.Embedding(
        len(keep_ids), embeddings.embedding_dim,
        padding_idx=int(id_map[padding_idx]) if padding_idx is not None else None,
    )
    pruned.weight.data = embeddings.weight.data[index].clone()
    model.set_input_embeddings(pruned)
    model.config.vocab_size = len(keep_ids)
    for key in TOKEN_ID_KEYS:
        value = getattr(model.config, key, None)
        if isinstance(value, int) and 0 <= value < len(id_map):
            setattr(model.config, key, int(id_map[value]))
    return id_map


class IdMapped(nn.Module):
    """A sequence classifier behind a fixed id map: takes the original tokenizer's ids, returns logits.
    Also the exported graph's signature (tokenizer inputs in, logits out), with or without a map."""

    def __init__(self, model: nn.Module, id_map: torch.Tensor | None):
        super().__init__()
        self.model = model
        self.register_buffer("id_map", id_map, persistent=False)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        if self.id_map is not None:
            input_ids = self.id_map[input_ids]
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        return self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).logits


def with_id_map(model: nn.Module, id_map: torch.Tensor | None) -> nn.Module:
    return IdMapped(model, id_map).eval()


def save_id_map(directory: Path, id_map: torch.Tensor) -> None:
    save_file({"id_map": id_map.contiguous()}, str(Path(directory) / VOCAB_MAP_FILE))


def load_id_map(directory: Path, model: nn.Module) -> torch.Tensor | None:
    """The id map beside a pruned model, checked against its embedding matrix; None for an unpruned one."""
    path = Path(directory) / VOCAB_MAP_FILE
    if not path.is_file():
        return None
    try:
        id_map = load_file(str(path))["id_map"].long()
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        raise StageError(f"{path}: not a readable id map ({str(exc).splitlines()[0]})") from None
    rows = model.get_input_embeddings().num_embeddings
    if id_map.ndim != 1 or int(id_map.min()) < 0 or int(id_map.max()) >= rows:
        raise StageError(f"{path}: does not match the model's {rows} embedding rows; rerun the distill stage")
    return id_map


def vocab_coverage(encoded_ids: list[list[int]], id_map: torch.Tensor | None, unk_id: int) -> float:
    """Share of the tokens in `encoded_ids` the (pruned) vocabulary keeps; tokens already unknown count as kept."""
    if id_map is None:
        return 1.0
    unk_row = int(id_map[unk_id])
    total = kept = 0
    for ids in encoded_ids:
        rows = id_map[torch.tensor(ids, dtype=torch.long)]
        originals = torch.tensor(ids, dtype=torch.long)
        kept += int(((rows != unk_row) | (originals == unk_id)).sum())
        total += len(ids)
    return kept / total if total else 1.0


def load_student(directory: Path, device: torch.device | str = "cpu"):
    """(Classifier taking the original tokenizer's ids, id map or None) for a models/student directory.

    The checks of tuneforge.inference.torch_predictor.load_trained_classifier, except that a pruned student's embedding
    matrix is smaller than its tokenizer by design: there the id map must cover every id the tokenizer emits."""
    from tuneforge.base.integrity import has_record, require_recorded_files
    from tuneforge.inference.torch_predictor import (
        Classifier,
        check_classifier_dir,
        load_sequence_classifier,
        load_tokenizer,
    )

    directory = check_classifier_dir(directory, "run the distill stage (python -m stages.distill)")
    try:
        config = AutoConfig.from_pretrained(directory, trust_remote_code=False)
    except (ValueError, OSError, KeyError, TypeError) as exc:
        raise StageError(f"{directory}: cannot load its config: {_first_line(exc)}") from None
    tokenizer = load_tokenizer(directory, files=(TOKENIZER_FILE,))
    model = load_sequence_classifier(directory, config)
    id_map = load_id_map(directory, model)
    rows = len(id_map) if id_map is not None else model.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:
        raise StageError(
            f"{directory}: tokenizer does not match the model: it has {len(tokenizer)} tokens but the model "
            f"takes ids below {rows}"
        )
    labels = [str(config.id2label[i]) for i in range(config.num_labels)]
    if has_record(directory):  # check_classifier_dir verified the files there; none recorded may be gone
        require_recorded_files(directory)
    mapped = with_id_map(model.eval(), id_map).to(device)
    classifier = Classifier(
        model=mapped, tokenizer=tokenizer, labels=labels, path=directory, device=torch.device(device)
    )
    return classifier, id_map


def require_tokenizer_file(directory: Path) -> None:
    """Distill and export need the fast tokenizer's tokenizer.json (the ONNX directory ships it)."""
    require_tokenizer(directory, files=(TOKENIZER_FILE,))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
