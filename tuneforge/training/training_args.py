"""The spec's `train` section as Hugging Face TrainingArguments, and the device and precision it runs with."""

import math
import platform
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import ProgressCallback, TrainerCallback, TrainingArguments

from tuneforge.base.errors import ConfigError, StageError
from tuneforge.base.spec import TrainConfig
from tuneforge.inference.torch_predictor import pick_device

# train.metric -> (Trainer's eval metric name, greater is better). Perplexity is exp(loss): the same ranking.
BEST_METRIC = {
    "accuracy": ("accuracy", True),
    "macro_f1": ("macro_f1", True),
    "micro_f1": ("micro_f1", True),
    "f1": ("f1", True),
    "precision": ("precision", True),
    "recall": ("recall", True),
    "loss": ("loss", False),
    "perplexity": ("loss", False),
}
@dataclass(frozen=True)
class DevicePlan:
    device: str  # "cuda" or "cpu"
    precision: str  # "fp32", "bf16" or "fp16"
    name: str  # what it is, for meta.json


def plan_device(cfg: TrainConfig) -> DevicePlan:
    """Auto: CUDA when available (bf16 where the GPU supports it, else fp16), else CPU in fp32."""
    device = pick_device(cfg.device, "train.device").type
    precision = cfg.precision
    if precision == "auto":
        precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if device == "cuda" else "fp32"
    if precision == "fp16" and device == "cpu":
        raise ConfigError("train.precision: fp16 needs a CUDA device (on CPU use fp32 or bf16)")
    if precision == "bf16" and device == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("train.precision: bf16 is not supported by this GPU (use fp16 or auto)")
    if device == "cuda" and cfg.num_processes > torch.cuda.device_count():
        raise ConfigError(
            f"train.num_processes: {cfg.num_processes} exceeds the {torch.cuda.device_count()} visible GPU(s)"
        )
    name = torch.cuda.get_device_name(0) if device == "cuda" else (platform.processor() or platform.machine())
    return DevicePlan(device=device, precision=precision, name=f"{device}: {name}")


def check_metric(task, metric: str, key: str) -> None:
    """`task` is the tuneforge.tasks.Task the stage holds: its metrics are the ones train/tune may select on."""
    if metric not in task.metrics:
        raise ConfigError(
            f"{key}: {metric} does not apply to model.task {task.name} (use one of: {', '.join(task.metrics)})"
        )


def training_arguments(
    cfg: TrainConfig, *, output_dir: Path, plan: DevicePlan, world_size: int, scored: bool,
    batch_mean_loss: bool = True,
) -> TrainingArguments:
    """`batch_mean_loss`: the loss is a mean over its own batch (classification heads, a task's compute_loss);
    the Trainer must not rescale it by the processes' token counts, which only token-summed losses need."""
    metric, greater_is_better = BEST_METRIC[cfg.metric]
    return TrainingArguments(
        output_dir=str(output_dir),
        average_tokens_across_devices=not batch_mean_loss,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.eval_batch_size,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps or -1,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        # transformers 5 has no warmup_ratio: a float in [0, 1) given as warmup_steps is a share of the steps.
        warmup_steps=float(cfg.warmup_ratio),
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        optim=cfg.optimizer,
        label_smoothing_factor=cfg.label_smoothing,
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random",
        seed=cfg.seed,
        data_seed=cfg.seed,
        # Evaluation, checkpoints and the logged training loss share one interval: the best checkpoint
        # is always one that exists on disk, and every history row has a training loss beside its val scores.
        eval_strategy="steps",
        eval_steps=cfg.eval_steps,
        save_strategy="steps",
        save_steps=cfg.eval_steps,
        save_total_limit=cfg.keep_checkpoints,
        logging_strategy="steps",
        logging_steps=cfg.eval_steps,
        # The Trainer would log a NaN or infinite step loss as the window's average so far: keep it, so that
        # StopOnNonFiniteLoss sees a diverged step in the next logged loss.
        logging_nan_inf_filter=False,
        load_best_model_at_end=True,
        metric_for_best_model=metric,
        greater_is_better=greater_is_better,
        # Classification needs the logits for accuracy and F1; a language model is scored by its loss alone.
        prediction_loss_only=not scored,  # no compute_metrics: the loss is the score
        use_cpu=plan.device == "cpu",
        bf16=plan.precision == "bf16",
        fp16=plan.precision == "fp16",
        ddp_backend=("nccl" if plan.device == "cuda" else "gloo") if world_size > 1 else None,
        dataloader_num_workers=0,
        dataloader_pin_memory=plan.device == "cuda",
        report_to="none",
        disable_tqdm=False,
        log_level="warning",
        # The stage writes the final model itself (merged, with its tokenizer); checkpoints are for resuming.
        push_to_hub=False,
    )


class NonFiniteLoss(StageError):
    """The training loss became NaN or infinite: the run diverged and nothing it trained is kept."""


class StopOnNonFiniteLoss(TrainerCallback):
    """Stop training at the first logged training or val loss that is NaN or infinite.

    A diverged run (a learning rate far too high, an fp16 overflow) would otherwise train on to the end,
    keep a "best" checkpoint of garbage and hand it to evaluation and the registry. Raising from on_log
    leaves trainer.train() at once (the Trainer's callback handler does not catch); the stage's atomic
    outputs then vanish and its previous outputs stay. The logged training loss is the mean over the
    logging window (train.eval_steps) with nothing filtered out (logging_nan_inf_filter=False), so a single
    diverged step shows; the check costs nothing per step.
    """

    KEYS = ("loss", "eval_loss")

    def __init__(self, section: str = "train"):
        self.section = section  # the spec section whose learning rate the message points at

    def on_log(self, args, state, control, logs=None, **kwargs):
        for key in self.KEYS:
            value = (logs or {}).get(key)
            if isinstance(value, int | float) and not math.isfinite(value):
                what = "training" if key == "loss" else "val"
                raise NonFiniteLoss(
                    f"the {what} loss became {value} by step {state.global_step}: training diverged and was "
                    f"stopped, nothing was written (lower {self.section}.learning_rate, or check "
                    "train.max_grad_norm and train.precision)"
                )


def train_or_stop(trainer, resume_from_checkpoint=None) -> None:
    """trainer.train(), and when StopOnNonFiniteLoss stops it, the progress bar closed before the error goes up.

    The bar is closed by the Trainer's on_train_end, which an exception skips: the stage's error line would
    then continue the bar's line instead of standing on its own."""
    try:
        trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    except NonFiniteLoss:
        for callback in trainer.callback_handler.callbacks:
            if isinstance(callback, ProgressCallback) and callback.training_bar is not None:
                callback.on_train_end(trainer.args, trainer.state, trainer.control)
        raise
