"""Stage `train`: fine-tune the base model with the Hugging Face Trainer; the best checkpoint on val is kept.

Inputs (sequence-classification): data/augmented/train.parquet, data/splits/val.parquet, and the label set
in data/validated/labels.json. Inputs (causal-lm): the JSONL files named in train.causal_lm (see
stages/causal_lm.py). The base model is resolved offline (stages/modeling.py).

Outputs, replaced atomically:
    models/teacher/             a plain Hugging Face model directory (config.json with id2label/label2id,
                                model.safetensors, tokenizer files) that AutoModelFor*.from_pretrained loads;
                                PEFT methods also keep their adapter in models/teacher/adapter/, and the model
                                beside it is the adapter merged into the base weights
    models/teacher/meta.json    resolved config, parameters (trainable/total), device, wall time,
                                samples/s, peak memory, best step and the metric that chose it, history
    reports/train/history.csv   per evaluation: step, epoch, learning rate, train loss, val metrics (DVC plots)
    reports/metrics/train.json  headline metrics (DVC metrics)

train.use_tuned: the values in models/tune/best_params.yaml (the tune stage's best trial) are merged over the
train section first; meta.json then shows the merged config and where the values came from ("tuned").

Crash safety: checkpoints go to models/.checkpoints/teacher (every train.eval_steps, newest
train.keep_checkpoints kept plus the best); a re-run resumes from the last complete one if it was
written by the same config and data (stages/checkpoints.py), and they are deleted once the stage succeeds.

More than one process (train.num_processes > 1): the stage launches its training through torchrun
(`python -m torch.distributed.run --standalone`, DDP; gloo on CPU, NCCL on GPUs); rank 0 writes the
model, every rank reports a digest of its final weights and the stage checks they agree.
"""

import csv
import hashlib
import io
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import transformers
from transformers import (
    DataCollatorForSeq2Seq,
    DataCollatorWithPadding,
    EarlyStoppingCallback,
    Trainer,
    TrainerCallback,
    set_seed,
)

import stages
from stages import causal_lm, classification_data
from stages.checkpoints import CheckpointMarker, config_hash, discard, resume_point
from stages.config import ModelConfig, TrainConfig
from stages.errors import ConfigError, StageError
from stages.layout import (
    AUGMENTED_DIR,
    SPLITS_DIR,
    TEACHER_DIR,
    VALIDATED_DIR,
    checkpoints_dir,
    metrics_file,
    reports_dir,
)
from stages.methods import apply_method, is_peft_model, merged, peft_config_for
from stages.modeling import (
    check_max_seq_length,
    count_parameters,
    load_causal_lm,
    load_classifier,
    load_config,
    load_tokenizer,
    resolve_base_model,
)
from stages.outputs import Produced, atomic_dirs, atomic_write_text, sha256_path, write_json, write_meta
from stages.runner import stage_main
from stages.training_args import DevicePlan, check_metric, plan_device, training_arguments
from stages.tune_files import BEST_PARAMS, merge_tuned
from tuneforge.integrity import file_hashes

STAGE = "train"
CLASSIFICATION = "sequence-classification"
ADAPTER_DIR = "adapter"
WORKER_MODULE = "stages.train_worker"
REPORTS = reports_dir(STAGE)
METRICS_FILE = metrics_file(STAGE)
HISTORY_NAME = "history.csv"


def run(
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    *,
    augmented_dir: Path = AUGMENTED_DIR,
    splits_dir: Path = SPLITS_DIR,
    validated_dir: Path = VALIDATED_DIR,
    out_dir: Path = TEACHER_DIR,
    reports: Path = REPORTS,
    metrics_path: Path = METRICS_FILE,
    tuned_params: Path = BEST_PARAMS,
) -> Produced:
    started = time.time()
    out_dir, reports, metrics_path = Path(out_dir), Path(reports), Path(metrics_path)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Every rank would write and rename its own output directory: the stage launches its ranks itself.
        raise ConfigError(
            "train.num_processes: run the stage plainly (python -m stages.train) with num_processes set; "
            "it launches torchrun itself, it does not run under torchrun or accelerate launch"
        )
    cfg, tuned = merge_tuned(cfg, Path(tuned_params)) if cfg.use_tuned else (cfg, None)
    prepared = prepare(model_cfg, cfg, augmented_dir=augmented_dir, splits_dir=splits_dir, validated_dir=validated_dir)
    inputs, base_path, plan = prepared.inputs, prepared.base_path, prepared.plan
    if tuned:
        inputs = {**inputs, "tuned_params": Path(tuned_params)}

    checkpoint_dir = checkpoints_dir(out_dir)
    run_hash = spec_hash(model_cfg, cfg, prepared, extra_inputs={"tuned_params": tuned_params} if tuned else None)
    resume = resume_point(checkpoint_dir, run_hash)
    print(
        f"{STAGE}: {model_cfg.base} ({cfg.method}) on {plan.device} ({plan.precision}), "
        f"{cfg.num_processes} process(es)" + (f"; resuming from {resume}" if resume else "")
        + (f"; tuned values from {tuned_params}: {', '.join(tuned['keys'])}" if tuned else "")
    )

    with atomic_dirs(out_dir, reports) as (out_tmp, reports_tmp):
        spec = build_spec(
            model_cfg, cfg, prepared, out_dir=out_tmp, checkpoint_dir=checkpoint_dir, resume=resume, run_hash=run_hash
        )
        result = fit(spec) if cfg.num_processes == 1 else launch(spec, cfg.num_processes)
        metrics = headline_metrics(result, cfg.metric)
        write_meta(
            out_tmp, stage=STAGE,
            config={"model": model_cfg.model_dump(by_alias=True), "train": cfg.model_dump(by_alias=True)},
            inputs=inputs, metrics=metrics, started=started,
            extra={
                "base_model": {"id": model_cfg.base, "path": str(base_path)},
                "task": model_cfg.task, "method": cfg.method, "labels": prepared.labels,
                "parameters": result["parameters"], "device": plan.name, "precision": plan.precision,
                "num_processes": cfg.num_processes, "throughput": result["throughput"],
                "memory": {**result["memory"], "stage_peak_rss_mb": _peak_rss_mb(children=True)},
                "best": result["best"], "global_step": result["global_step"], "epochs": result["epochs"],
                "stopped_early": result["stopped_early"], "resumed_from": spec["resume"],
                "config_hash": run_hash, "ranks": result["ranks"], "history": result["history"],
                "chat_template": result.get("chat_template"), "skipped_examples": result.get("skipped"),
                **({"tuned": tuned} if tuned else {}),
                "files": file_hashes(out_tmp),  # what stages.predict_torch verifies before it loads the model
            },
        )
        (reports_tmp / HISTORY_NAME).write_text(history_csv(result["history"]), encoding="utf-8")
    # After the rename: a failure above leaves the previous metrics beside the previous model.
    atomic_write_text(metrics_path, json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    discard(checkpoint_dir)
    print(f"{STAGE}: best {cfg.metric} {result['best']['value']:.4f} at step {result['best']['step']}")
    return Produced(
        stage=STAGE,
        outputs={
            "model": out_dir, "meta": out_dir / "meta.json", "history": reports / HISTORY_NAME, "metrics": metrics_path,
        },
        inputs=inputs,
        metrics=metrics,
    )


@dataclass(frozen=True)
class Prepared:
    """What a training run needs besides its config, found (and checked) before any model is trained."""

    inputs: dict[str, Path]
    labels: list[str] | None
    base_path: Path
    plan: DevicePlan
    input_hashes: dict[str, str]


def prepare(
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    *,
    augmented_dir: Path = AUGMENTED_DIR,
    splits_dir: Path = SPLITS_DIR,
    validated_dir: Path = VALIDATED_DIR,
) -> Prepared:
    """Check the metric, device, data and base model; the train and tune stages both start here."""
    check_metric(model_cfg.task, cfg.metric)
    plan = plan_device(cfg)
    inputs = input_paths(model_cfg, cfg, Path(augmented_dir), Path(splits_dir), Path(validated_dir))
    labels = check_inputs(model_cfg, cfg, inputs)
    base_path = resolve_base_model(model_cfg.base)
    preflight(model_cfg, cfg, base_path)
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


def input_paths(model_cfg: ModelConfig, cfg: TrainConfig, augmented: Path, splits: Path, validated: Path):
    if model_cfg.task == CLASSIFICATION:
        return {
            "train": augmented / "train.parquet", "val": splits / "val.parquet", "labels": validated / "labels.json",
        }
    files = cfg.causal_lm
    if not files.train_file or not files.val_file:
        raise ConfigError("train.causal_lm: model.task causal-lm needs train_file and val_file (JSONL)")
    return {"train": Path(files.train_file), "val": Path(files.val_file)}


def check_inputs(model_cfg: ModelConfig, cfg: TrainConfig, inputs: dict[str, Path]) -> list[str] | None:
    """Read and check the data before any model is loaded: bad data fails in a second, not after loading."""
    if model_cfg.task != CLASSIFICATION:
        for name in ("train", "val"):
            causal_lm.read_conversations(inputs[name])
        return None
    labels = classification_data.read_labels(inputs["labels"])
    splits = {
        "train": classification_data.read_split(inputs["train"], "augment"),
        "val": classification_data.read_split(inputs["val"], "split"),
    }
    classification_data.check_label_sets(labels, splits, inputs)
    return labels


def preflight(model_cfg: ModelConfig, cfg: TrainConfig, base_path: Path) -> None:
    """Spec-versus-model mistakes that need only the config and tokenizer, found before training starts."""
    config = load_config(base_path, model_cfg.base)
    tokenizer = load_tokenizer(base_path, model_cfg.base)
    check_max_seq_length(cfg.max_seq_length, config, tokenizer, model_cfg.base)
    if cfg.method in ("lora", "peft"):
        peft_config_for(cfg.peft, model_cfg.task)
    layers = getattr(config, "num_hidden_layers", None)
    if cfg.freeze_layers and layers is not None and cfg.freeze_layers > layers:
        raise ConfigError(f"train.freeze_layers: {cfg.freeze_layers} exceeds the model's {layers} layers")


# ---- the training itself: runs in this process, or in every rank under torchrun ----

def fit(spec: dict, callbacks: Sequence[TrainerCallback] = ()) -> dict:
    """Train, keep the best checkpoint, write the model directory (rank 0); return what happened.

    `callbacks` are extra TrainerCallbacks (the tune stage's pruning); an exception one raises ends the training.
    """
    model_cfg, cfg = ModelConfig.model_validate(spec["model"]), TrainConfig.model_validate(spec["train"])
    classification = model_cfg.task == CLASSIFICATION
    base_path = Path(spec["base_path"])
    plan = plan_device(cfg)
    transformers.logging.disable_progress_bar()  # loading and shard-writing bars; the Trainer keeps its own
    set_seed(cfg.seed)  # before the model: the new head's initial weights depend on it
    tokenizer = load_tokenizer(base_path, model_cfg.base)
    data = classification_datasets if classification else causal_lm_datasets
    # Tensor cores work on multiples of 8: padding a little further costs nothing on a GPU.
    pad_multiple = 8 if plan.device == "cuda" else None
    model, train_set, val_set, collator, extra = data(model_cfg, cfg, base_path, tokenizer, spec, pad_multiple)
    model = apply_method(model, cfg, model_cfg.task)
    trainable, total = count_parameters(model)

    args = training_arguments(
        cfg, output_dir=Path(spec["checkpoint_dir"]), plan=plan, world_size=cfg.num_processes,
        classification=classification,
    )
    meter = ThroughputMeter()
    callbacks = [CheckpointMarker(spec["run_hash"]), meter, LogFinalStep(), *callbacks]
    if cfg.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(cfg.early_stopping_patience, cfg.early_stopping_threshold))
    trainer = Trainer(
        model=model, args=args, train_dataset=train_set, eval_dataset=val_set, data_collator=collator,
        processing_class=tokenizer, callbacks=callbacks,
        compute_metrics=classification_data.compute_metrics if classification else None,
    )
    if classification:
        # Classification heads return a per-batch mean loss and ignore num_items_in_batch, but their forward
        # takes **kwargs, so the Trainer would take the loss as already normalised over the accumulated batch:
        # it would skip dividing by the accumulation steps and multiply by the number of processes.
        trainer.model_accepts_loss_kwargs = False
    trainer.train(resume_from_checkpoint=spec["resume"])

    state = trainer.state
    digest = weights_digest(trainer.model)
    if trainer.is_world_process_zero():
        save_model_dir(trainer.model, tokenizer, Path(spec["out_dir"]))
    history = history_rows(state.log_history, classification)
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
            "value": _metric_value(cfg.metric, state.best_metric),
            "scores": next((row for row in history if row["step"] == state.best_global_step), {}),
        },
        "global_step": state.global_step,
        "epochs": round(state.epoch or 0.0, 4),
        "stopped_early": bool(state.global_step < state.max_steps),
        "final_train_loss": next((r["train_loss"] for r in reversed(history) if r["train_loss"] is not None), None),
        "history": history,
        "ranks": [{"rank": args.process_index, "weights_sha256": digest}],
        **extra,
    }


def classification_datasets(model_cfg, cfg, base_path, tokenizer, spec, pad_multiple):
    labels = spec["labels"]
    model, config = load_classifier(base_path, model_cfg.base, labels, dropout=cfg.dropout)
    check_max_seq_length(cfg.max_seq_length, config, tokenizer, model_cfg.base)
    label2id = {label: i for i, label in enumerate(labels)}
    train = classification_data.read_split(Path(spec["inputs"]["train"]), "augment")
    val = classification_data.read_split(Path(spec["inputs"]["val"]), "split")
    train_set = classification_data.tokenize_frame(train, tokenizer, label2id, cfg.max_seq_length)
    val_set = classification_data.tokenize_frame(val, tokenizer, label2id, cfg.max_seq_length)
    return model, train_set, val_set, DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_multiple), {}


def causal_lm_datasets(model_cfg, cfg, base_path, tokenizer, spec, pad_multiple):
    model, config = load_causal_lm(base_path, model_cfg.base, dropout=cfg.dropout)
    check_max_seq_length(cfg.max_seq_length, config, tokenizer, model_cfg.base)
    template = causal_lm.ensure_chat_template(tokenizer)
    tokenizer.padding_side = "right"  # positions count from the first token; labels mask the padding
    sets, skipped = {}, {}
    for name in ("train", "val"):
        conversations = causal_lm.read_conversations(Path(spec["inputs"][name]))
        examples, skipped[name] = causal_lm.encode_all(conversations, tokenizer, cfg.max_seq_length)
        if cfg.causal_lm.packing and name == "train":
            examples = causal_lm.pack(examples, cfg.max_seq_length)
        if not examples:
            raise StageError(
                f"{spec['inputs'][name]}: no conversation keeps a response token within "
                f"train.max_seq_length={cfg.max_seq_length}"
            )
        sets[name] = examples
    collator = DataCollatorForSeq2Seq(
        tokenizer, label_pad_token_id=causal_lm.IGNORE_INDEX, padding=True, pad_to_multiple_of=pad_multiple
    )
    return model, sets["train"], sets["val"], collator, {"chat_template": template, "skipped": skipped}


class ThroughputMeter(TrainerCallback):
    """Seconds spent in the training loop itself: evaluation and checkpoint writing are not counted.

    It also keeps each optimizer step's duration (forward, backward, clipping, optimizer and scheduler step;
    batch loading excluded): their median is a throughput figure robust to a busy machine.
    """

    def on_train_begin(self, args, state, control, **kwargs):
        self.first_step, self.begin, self.excluded = state.global_step, time.perf_counter(), 0.0
        self.end = self.eval_end = self.begin
        self.steps, self.step_seconds = 0, []

    def on_step_begin(self, args, state, control, **kwargs):
        self.step_began = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.step_seconds.append(time.perf_counter() - self.step_began)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self.excluded += float((metrics or {}).get("eval_runtime", 0.0))
        self.eval_end = time.perf_counter()

    def on_save(self, args, state, control, **kwargs):
        # A checkpoint is always written right after an evaluation (same interval): that gap is the save.
        now = time.perf_counter()
        self.excluded += now - self.eval_end
        self.end, self.steps = now, state.global_step - self.first_step

    def loop_seconds(self) -> float:
        return max(self.end - self.begin - self.excluded, 1e-9)

    def median_step_seconds(self) -> float | None:
        return statistics.median(self.step_seconds) if self.step_seconds else None

    def samples_per_second(self, samples_per_step: int) -> float:
        # Optimizer steps x effective batch: an epoch's last, smaller batch is counted as a full one.
        return self.steps * samples_per_step / self.loop_seconds()


class LogFinalStep(TrainerCallback):
    """Log the training loss at the last step too, so the history's last row has one beside its val scores."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps:
            control.should_log = True
        return control


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


def memory_report(plan: DevicePlan) -> dict:
    report = {"peak_rss_mb": _peak_rss_mb(children=False)}
    if plan.device == "cuda":
        report["cuda_peak_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return report


def _peak_rss_mb(*, children: bool) -> float:
    # ru_maxrss is in KiB on Linux; the children's figure is that of the largest finished child.
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if children:
        own = max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return round(own / 1024, 1)


def history_rows(log_history: list[dict], classification: bool) -> list[dict]:
    """One row per evaluation, with the training loss logged at the same step."""
    train_logs = {entry["step"]: entry for entry in log_history if "loss" in entry and "step" in entry}
    rows = []
    for entry in log_history:
        if "eval_loss" not in entry:
            continue
        logged = train_logs.get(entry["step"], {})
        row = {
            "step": entry["step"], "epoch": round(entry.get("epoch", 0.0), 4),
            "learning_rate": logged.get("learning_rate"), "train_loss": logged.get("loss"),
            "val_loss": entry["eval_loss"],
        }
        if classification:
            row.update(val_accuracy=entry.get("eval_accuracy"), val_macro_f1=entry.get("eval_macro_f1"))
        else:
            row["val_perplexity"] = _perplexity(entry["eval_loss"])
        rows.append(row)
    return rows


def history_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    columns = list(rows[0]) if rows else ["step"]
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _perplexity(loss: float) -> float:
    return math.exp(loss) if loss < 700 else float("inf")


def _metric_value(metric: str, best: float | None) -> float | None:
    if best is None:
        return None
    return _perplexity(best) if metric == "perplexity" else best


def headline_metrics(result: dict, metric: str) -> dict:
    scores = {key: value for key, value in result["best"]["scores"].items() if key.startswith("val_")}
    return {
        "best_step": result["best"]["step"], "best_metric": metric, f"best_{metric}": result["best"]["value"],
        **scores,
        "global_step": result["global_step"], "stopped_early": result["stopped_early"],
        "final_train_loss": result["final_train_loss"],
        "train_samples_per_second": result["throughput"]["train_samples_per_second"],
        "peak_rss_mb": result["memory"]["peak_rss_mb"],
        "trainable_parameters": result["parameters"]["trainable"],
    }


# ---- more than one process ----

def launch(spec: dict, processes: int) -> dict:
    """Run `fit` in `processes` ranks through torchrun; rank 0's result, with every rank's weight digest."""
    launch_dir = Path(spec["checkpoint_dir"]) / "launch"
    launch_dir.mkdir(parents=True, exist_ok=True)
    for stale in launch_dir.glob("*.json"):
        stale.unlink()
    spec_path = launch_dir / "spec.json"
    write_json(spec_path, spec)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
        "-m", WORKER_MODULE, str(spec_path),
    ]
    # The workers import this package even when the stage runs from another working directory.
    root = str(Path(stages.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    completed = subprocess.run(command, env=env, check=False)
    if completed.returncode != 0:
        raise StageError(f"training processes failed (torchrun exit code {completed.returncode}); see above")
    result = json.loads((launch_dir / "result.json").read_text(encoding="utf-8"))
    ranks = [json.loads(path.read_text(encoding="utf-8")) for path in sorted(launch_dir.glob("rank-*.json"))]
    result["ranks"] = ranks
    result["memory"]["peak_rss_mb"] = max(rank["peak_rss_mb"] for rank in ranks)
    if len(ranks) != processes or len({rank["weights_sha256"] for rank in ranks}) != 1:
        raise StageError(f"the {processes} training processes ended with different weights; nothing was written")
    return result


def main(argv=None) -> int:
    return stage_main(STAGE, lambda p: run(p.model, p.train), argv)


if __name__ == "__main__":
    raise SystemExit(main())
