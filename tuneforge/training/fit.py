"""Fine-tuning with the Hugging Face Trainer: checks before training, the run itself, the model directory.

`fit` runs in the train stage's process or in every rank under torchrun (launch.py); the tune stage's trials
call it too. The task (a tuneforge.tasks.Task, passed in by the stage) supplies the data, the head and the val
metrics; this module the rest.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import transformers
from transformers import EarlyStoppingCallback, Trainer, TrainerCallback, set_seed

from tuneforge.base.errors import ConfigError
from tuneforge.base.layout import Workspace
from tuneforge.base.outputs import sha256_path
from tuneforge.base.spec import ModelConfig, TrainConfig
from tuneforge.inference.torch_predictor import count_parameters
from tuneforge.training.checkpoints import CheckpointMarker, config_hash
from tuneforge.training.methods import apply_method, is_peft_model, merged, peft_config_for
from tuneforge.training.modeling import base_tokenizer, check_max_seq_length, load_config, resolve_base_model
from tuneforge.training.telemetry import LogFinalStep, ThroughputMeter, history_rows, memory_report, metric_value
from tuneforge.training.training_args import (
    DevicePlan,
    StopOnNonFiniteLoss,
    check_metric,
    plan_device,
    train_or_stop,
    training_arguments,
)

ADAPTER_DIR = "adapter"
@dataclass(frozen=True)
class Prepared:
    """What a training run needs besides its config, found (and checked) before any model is trained."""

    inputs: dict[str, Path]
    labels: list[str] | None
    base_path: Path
    plan: DevicePlan
    input_hashes: dict[str, str]


def prepare(model_cfg: ModelConfig, cfg: TrainConfig, task, workspace: Workspace) -> Prepared:
    """Check the metric, device, data and base model; the train and tune stages both start here."""
    check_metric(task, cfg.metric, "train.metric")
    if task.check_train_config:
        task.check_train_config(cfg)
    plan = plan_device(cfg)
    inputs = task.train_inputs(cfg, workspace.augmented, workspace.splits, workspace.validated)
    labels = task.check_train_inputs(inputs)  # bad data fails in a second, not after loading a model
    base_path = resolve_base_model(model_cfg.base)
    preflight(model_cfg, cfg, base_path, task)
    input_hashes = {name: sha256_path(path) for name, path in inputs.items()}
    return Prepared(inputs=inputs, labels=labels, base_path=base_path, plan=plan, input_hashes=input_hashes)


def spec_hash(model_cfg: ModelConfig, cfg: TrainConfig, prepared: Prepared, extra_inputs=None) -> str:
    """The hash of everything that determines a training run (checkpoints are resumed only under the same one)."""
    hashes = {**prepared.input_hashes, **{name: sha256_path(path) for name, path in (extra_inputs or {}).items()}}
    return config_hash({
        "model": model_cfg.model_dump(by_alias=True), "train": cfg.model_dump(by_alias=True),
        "base_path": str(prepared.base_path), "inputs": hashes,
    })


def build_spec(
    model_cfg: ModelConfig, cfg: TrainConfig, prepared: Prepared, *, out_dir: Path, checkpoint_dir: Path,
    resume: Path | None, run_hash: str,
) -> dict:
    """The plain-data description `fit` trains from (JSON-able: torchrun ranks read it from a file)."""
    return {
        "model": model_cfg.model_dump(by_alias=True), "train": cfg.model_dump(by_alias=True),
        "base_path": str(prepared.base_path), "inputs": {name: str(path) for name, path in prepared.inputs.items()},
        "labels": prepared.labels, "out_dir": str(out_dir), "checkpoint_dir": str(checkpoint_dir),
        "resume": str(resume) if resume else None, "run_hash": run_hash,
    }


def preflight(model_cfg: ModelConfig, cfg: TrainConfig, base_path: Path, task) -> None:
    """Spec-versus-model mistakes that need only the config and tokenizer, found before training starts."""
    config = load_config(base_path, model_cfg.base)
    tokenizer = base_tokenizer(base_path, model_cfg.base)
    check_max_seq_length(model_cfg.max_seq_length, config, tokenizer, model_cfg.base)
    if cfg.method in ("lora", "peft"):
        peft_config_for(cfg.peft, task)
    layers = getattr(config, "num_hidden_layers", None)
    if cfg.freeze_layers and layers is not None and cfg.freeze_layers > layers:
        raise ConfigError(f"train.freeze_layers: {cfg.freeze_layers} exceeds the model's {layers} layers")


def fit(spec: dict, task, callbacks: Sequence[TrainerCallback] = ()) -> dict:
    """Train, keep the best checkpoint, write the model directory (rank 0); return what happened.

    `callbacks` are extra TrainerCallbacks (the tune stage's pruning); an exception one raises ends the training.
    """
    model_cfg, cfg = ModelConfig.model_validate(spec["model"]), TrainConfig.model_validate(spec["train"])
    base_path = Path(spec["base_path"])
    plan = plan_device(cfg)
    transformers.logging.disable_progress_bar()  # loading and shard-writing bars; the Trainer keeps its own
    set_seed(cfg.seed)  # before the model: the new head's initial weights depend on it
    tokenizer = base_tokenizer(base_path, model_cfg.base)
    # Tensor cores work on multiples of 8: padding a little further costs nothing on a GPU.
    pad_multiple = 8 if plan.device == "cuda" else None
    data = task.training_data(model_cfg, cfg, base_path, tokenizer, spec["labels"], spec["inputs"], pad_multiple)
    train_set, val_set = data.train, data.val
    model = apply_method(data.model, cfg, task)
    trainable, total = count_parameters(model, trainable_only=True), count_parameters(model)

    compute_metrics = data.compute_metrics or task.compute_metrics
    args = training_arguments(
        cfg, output_dir=Path(spec["checkpoint_dir"]), plan=plan, world_size=cfg.num_processes,
        scored=compute_metrics is not None, batch_mean_loss=task.loss_is_batch_mean,
    )
    meter = ThroughputMeter()
    callbacks = [StopOnNonFiniteLoss(), CheckpointMarker(spec["run_hash"]), meter, LogFinalStep(), *callbacks]
    if cfg.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(cfg.early_stopping_patience, cfg.early_stopping_threshold))
    trainer = Trainer(
        model=model, args=args, train_dataset=train_set, eval_dataset=val_set, data_collator=data.collator,
        processing_class=tokenizer, callbacks=callbacks,
        compute_metrics=compute_metrics, compute_loss_func=data.compute_loss,
    )
    if task.loss_is_batch_mean:
        # Classification heads return a per-batch mean loss and ignore num_items_in_batch, but their forward
        # takes **kwargs, so the Trainer would take the loss as already normalised over the accumulated batch:
        # it would skip dividing by the accumulation steps and multiply by the number of processes.
        trainer.model_accepts_loss_kwargs = False
        # A task's compute_loss_func is such a mean too, and a Trainer given one would take it as normalised.
        trainer.loss_is_scaled_for_ga = False
    train_or_stop(trainer, spec["resume"])

    state = trainer.state
    digest = weights_digest(trainer.model)
    if trainer.is_world_process_zero():
        save_model_dir(trainer.model, tokenizer, Path(spec["out_dir"]))
    history = history_rows(state.log_history, task.val_scores)
    mean_tokens = sum(len(example["input_ids"]) for example in train_set) / len(train_set)
    samples_per_second = meter.samples_per_second(cfg.batch_size * cfg.gradient_accumulation_steps * args.world_size)
    return {
        "parameters": {"trainable": trainable, "total": total, "trainable_share": round(trainable / total, 6)},
        "throughput": {
            "train_samples_per_second": round(samples_per_second, 3),
            "train_tokens_per_second": round(samples_per_second * mean_tokens, 1),
            "train_loop_seconds": round(meter.loop_seconds(), 3),
            "median_step_seconds": meter.median_step_seconds(),
            "samples_per_step": cfg.batch_size * cfg.gradient_accumulation_steps * args.world_size,
            "train_examples": len(train_set), "val_examples": len(val_set),
        },
        "memory": memory_report(plan),
        "best": {
            "metric": cfg.metric, "step": state.best_global_step,
            "value": metric_value(cfg.metric, state.best_metric),
            "scores": next((row for row in history if row["step"] == state.best_global_step), {}),
        },
        "global_step": state.global_step,
        "epochs": round(state.epoch or 0.0, 4),
        "stopped_early": bool(state.global_step < state.max_steps),
        "final_train_loss": next((r["train_loss"] for r in reversed(history) if r["train_loss"] is not None), None),
        "history": history,
        "ranks": [{"rank": args.process_index, "weights_sha256": digest}],
        "task_facts": data.extra,
    }


def weights_digest(model) -> str:
    """sha256 over the model's parameters and buffers, by name: equal digests, equal models."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_model_dir(model, tokenizer, out_dir: Path) -> None:
    """A plain Hugging Face directory (safetensors); a PEFT model also keeps its adapter under adapter/."""
    if is_peft_model(model):
        model.save_pretrained(out_dir / ADAPTER_DIR)
        model = merged(model)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)

