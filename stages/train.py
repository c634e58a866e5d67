"""Stage `train`: fine-tune the base model with the Hugging Face Trainer; the best checkpoint on val is kept.

Inputs (sequence-, multi-label and token-classification): data/augmented/train.parquet, data/splits/val.parquet,
and the label set (token-classification: the tag set) in data/validated/labels.json. Inputs (causal-lm): the JSONL
files named in train.causal_lm (see tuneforge/tasks/causal_lm_data.py). The base model is resolved offline
(tuneforge/training/modeling.py).

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
written by the same config and data (tuneforge/training/checkpoints.py), and they are deleted once the stage succeeds.

More than one process (train.num_processes > 1): the stage launches its training through torchrun
(`python -m torch.distributed.run --standalone`, DDP; gloo on CPU, NCCL on GPUs); rank 0 writes the
model, every rank reports a digest of its final weights and the stage checks they agree.
"""

import os
import time

from tuneforge.base.errors import ConfigError
from tuneforge.base.integrity import file_hashes
from tuneforge.base.layout import Workspace
from tuneforge.base.outputs import Produced, atomic_dirs, write_meta, write_metrics
from tuneforge.base.spec import ModelConfig, TrainConfig
from tuneforge.pipeline.runner import stage_main
from tuneforge.tasks import task_for
from tuneforge.training.checkpoints import discard, resume_point
from tuneforge.training.fit import build_spec, fit, prepare, spec_hash
from tuneforge.training.launch import launch
from tuneforge.training.telemetry import headline_metrics, history_csv, peak_rss_mb
from tuneforge.training.training_args import NonFiniteLoss
from tuneforge.tuning.files import merge_tuned

STAGE = "train"
HISTORY_NAME = "history.csv"


def run(model_cfg: ModelConfig, cfg: TrainConfig, *, workspace: Workspace = Workspace()) -> Produced:
    started = time.time()
    out_dir, reports, metrics_path = workspace.teacher, workspace.reports(STAGE), workspace.metrics(STAGE)
    tuned_params = workspace.tuned_params
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Every rank would write and rename its own output directory: the stage launches its ranks itself.
        raise ConfigError(
            "train.num_processes: run the stage plainly (python -m stages.train) with num_processes set; "
            "it launches torchrun itself, it does not run under torchrun or accelerate launch"
        )
    task = task_for(model_cfg, STAGE)
    cfg, tuned = merge_tuned(cfg, tuned_params) if cfg.use_tuned else (cfg, None)
    prepared = prepare(model_cfg, cfg, task, workspace)
    inputs, base_path, plan = prepared.inputs, prepared.base_path, prepared.plan
    if tuned:
        inputs = {**inputs, "tuned_params": tuned_params}

    checkpoint_dir = workspace.checkpoints / out_dir.name
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
        try:
            result = fit(spec, task) if cfg.num_processes == 1 else launch(spec, cfg.num_processes)
        except NonFiniteLoss:
            discard(checkpoint_dir)  # the diverged run's checkpoints would only lead to the same divergence
            raise
        metrics = headline_metrics(result, cfg.metric)
        write_meta(
            out_tmp, stage=STAGE,
            config={"model": model_cfg, "train": cfg},
            inputs=inputs, metrics=metrics, started=started,
            extra={
                "base_model": {"id": model_cfg.base, "path": str(base_path)},
                "task": model_cfg.task, "method": cfg.method, "labels": prepared.labels,
                "parameters": result["parameters"], "device": plan.name, "precision": plan.precision,
                "num_processes": cfg.num_processes, "throughput": result["throughput"],
                "memory": {**result["memory"], "stage_peak_rss_mb": peak_rss_mb(children=True)},
                "best": result["best"], "global_step": result["global_step"], "epochs": result["epochs"],
                "stopped_early": result["stopped_early"], "resumed_from": spec["resume"],
                "config_hash": run_hash, "ranks": result["ranks"], "history": result["history"],
                **result["task_facts"],
                **({"tuned": tuned} if tuned else {}),
                "files": file_hashes(out_tmp),  # verified before the model is loaded
            },
        )
        (reports_tmp / HISTORY_NAME).write_text(history_csv(result["history"]), encoding="utf-8")
    # After the rename: a failure above leaves the previous metrics beside the previous model.
    write_metrics(metrics_path, metrics)
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
















# ---- the training itself: runs in this process, or in every rank under torchrun ----





























# ---- more than one process ----



def main(argv=None) -> int:
    return stage_main(STAGE, lambda p: run(p.model, p.train), argv)


if __name__ == "__main__":
    raise SystemExit(main())
