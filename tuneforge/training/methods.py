"""Fine-tuning methods: which parameters train.

full     every parameter (optionally with the embeddings and the bottom `freeze_layers` layers frozen)
frozen   the backbone frozen, only the task head trains (transfer learning as feature extraction)
lora     a LoRA adapter from the `peft` block
peft     any peft method the `peft` block names (IA3, LoHa, LoKr, AdaLoRA, ...), passed to peft untouched

PEFT models are merged into plain transformers models before saving (see `merged`), so the model
directory is always loadable without peft; methods that cannot merge (prompt learning) are refused up front.
"""

import copy

import peft
from torch import nn

from tuneforge.base.errors import ConfigError
from tuneforge.base.spec import TrainConfig

_SHOWN_MODULE_NAMES = 40


def apply_method(model, cfg: TrainConfig, task):
    """The model to train: `model` itself with some parameters frozen, or a peft model wrapping it.

    `task` is the tuneforge.tasks.Task of model.task (its peft task type, whether it trains a head)."""
    if cfg.method == "full":
        if cfg.freeze_layers:
            freeze_bottom_layers(model, cfg.freeze_layers)
        return model
    if cfg.method == "frozen":
        if not task.trains_a_head:
            raise ConfigError(f"train.method: frozen trains a new head; use lora for model.task {task.name}")
        backbone = model.base_model
        for parameter in backbone.parameters():
            parameter.requires_grad = False
        return model
    return wrap_with_peft(model, cfg.peft, task)


def peft_config_for(block: dict, task):
    """peft's config object from the spec's `peft` block; task_type is filled in from model.task if absent."""
    raw = copy.deepcopy(dict(block))
    raw["peft_type"] = str(raw["peft_type"]).upper()
    raw.setdefault("task_type", task.peft_task_type)
    try:
        config = peft.get_peft_config(raw)
    except KeyError as exc:
        known = ", ".join(sorted(peft.PeftType.__members__))
        raise ConfigError(f"train.peft.peft_type: unknown peft method {exc} (peft knows: {known})") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"train.peft: {_first_line(exc)}") from None
    if config.is_prompt_learning:
        raise ConfigError(
            f"train.peft.peft_type: {raw['peft_type']} cannot be merged into the model, and models/teacher must "
            "load without peft; use a method that merges (LORA, IA3, LOHA, LOKR, ADALORA, ...)"
        )
    return config


def wrap_with_peft(model, block: dict, task):
    config = peft_config_for(block, task)
    try:
        return peft.get_peft_model(model, config)
    except ValueError as exc:
        if "target" in str(exc).lower() or isinstance(exc, peft.utils.error.NoMatchingPeftModuleError):
            targets = block.get("target_modules")
            names = module_names(model)
            shown = ", ".join(names[:_SHOWN_MODULE_NAMES]) + (" ..." if len(names) > _SHOWN_MODULE_NAMES else "")
            raise ConfigError(
                f"train.peft.target_modules: {targets!r} matches no module of the model; its modules are: {shown}"
            ) from None
        raise ConfigError(f"train.peft: {_first_line(exc)}") from None


def module_names(model) -> list[str]:
    """Distinct names of the model's leaf modules (what peft's target_modules match against)."""
    leaves = [name for name, module in model.named_modules() if name and not list(module.children())]
    return sorted({name.rsplit(".", 1)[-1] for name in leaves})


def freeze_bottom_layers(model, count: int) -> None:
    """Freeze the embeddings and the first `count` transformer layers."""
    layers = transformer_layers(model)
    if count > len(layers):
        raise ConfigError(f"train.freeze_layers: {count} exceeds the model's {len(layers)} layers")
    backbone = model.base_model
    embeddings = getattr(backbone, "embeddings", None) or model.get_input_embeddings()
    for module in [embeddings, *layers[:count]]:
        for parameter in module.parameters():
            parameter.requires_grad = False


def transformer_layers(model) -> nn.ModuleList:
    """The stack of transformer layers: the ModuleList as long as config.num_hidden_layers."""
    expected = getattr(model.config, "num_hidden_layers", None)
    for _, module in model.base_model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == expected:
            return module
    raise ConfigError("train.freeze_layers: cannot find the model's layer stack; set freeze_layers: 0")


def is_peft_model(model) -> bool:
    return isinstance(model, peft.PeftModel)


def merged(model):
    """A plain transformers model: the peft adapter merged into the base weights (or `model` itself)."""
    if is_peft_model(model):
        return model.merge_and_unload()
    return model


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
