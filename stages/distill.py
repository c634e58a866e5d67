"""Stage `distill`: a smaller student learns from the teacher's logits (knowledge distillation).

Inputs: models/teacher (the train stage's model directory), data/augmented/train.parquet (what the student
learns from), data/splits/val.parquet (picks the best checkpoint), data/splits/test.parquet (retention).

The student keeps `distill.layers` of the teacher's layers (default: a third of them, spread over the
depth, first and last included) or is built from `distill.student_config`. With `distill.prune_vocab` its
embedding matrix keeps only the tokens the training data uses (tuneforge/training/student.py explains the id map).
Loss: alpha * CE + (1 - alpha) * T^2 * KL on temperature-scaled logits (tuneforge/training/kd.py); the teacher's
logits are computed once, before training. Everything else about training (schedule, evaluation interval,
the val metric that picks the checkpoint, early stopping, device, precision) follows the `train` section.

Outputs, replaced atomically:
    models/student/                   a Hugging Face model directory (safetensors, config with id2label,
                                      the teacher's tokenizer) plus vocab_map.safetensors when pruned;
                                      load it with `load_student`, which applies the id map
    models/student/meta.json          config, kept layers, vocabulary, parameters, best checkpoint, retention
    reports/distill/history.csv       per evaluation: step, losses, val accuracy and macro-F1 (DVC plots)
    reports/distill/retention.json    teacher vs student on val and test: accuracy, macro-F1, agreement
    reports/distill/student_vs_teacher.{html,json}  Evidently drift report of the predicted labels on test
    reports/metrics/distill.json      headline metrics (DVC metrics)
"""

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import transformers
from transformers import EarlyStoppingCallback, set_seed

from tuneforge.base.errors import StageError
from tuneforge.base.integrity import file_hashes
from tuneforge.base.layout import Workspace
from tuneforge.base.outputs import (
    Produced,
    atomic_dirs,
    atomic_write_text,
    read_meta,
    sha256_path,
    write_json,
    write_meta,
    write_metrics,
)
from tuneforge.base.spec import DistillConfig, ModelConfig, TrainConfig
from tuneforge.data.drift import write_drift_report
from tuneforge.inference.outputs import labels_from_logits
from tuneforge.inference.torch_predictor import Classifier, count_parameters, load_trained_classifier
from tuneforge.pipeline.runner import stage_main
from tuneforge.tasks import Task, task_for
from tuneforge.training.checkpoints import CheckpointMarker, config_hash, discard, resume_point
from tuneforge.training.kd import TEACHER_LOGITS, DistillationTrainer, distillation_collator
from tuneforge.training.student import (
    choose_layers,
    prune_vocabulary,
    require_tokenizer_file,
    save_id_map,
    student_from_config,
    student_from_layers,
    used_token_ids,
    vocab_coverage,
    with_id_map,
)
from tuneforge.training.telemetry import history_csv, history_rows
from tuneforge.training.training_args import (
    NonFiniteLoss,
    StopOnNonFiniteLoss,
    plan_device,
    train_or_stop,
    training_arguments,
)

STAGE = "distill"
TEACHER_HINT = "run the train stage first (python -m stages.train)"


def run(
    cfg: DistillConfig,
    train_cfg: TrainConfig,
    *,
    model_cfg: ModelConfig | None = None,
    workspace: Workspace = Workspace(),
) -> Produced:
    started = time.time()
    out_dir, reports, metrics_path = workspace.student, workspace.reports(STAGE), workspace.metrics(STAGE)
    model_cfg = model_cfg or ModelConfig()
    inputs = {
        "teacher": workspace.teacher, "train": workspace.augmented / "train.parquet",
        "val": workspace.splits / "val.parquet", "test": workspace.test_split,
    }
    task = task_for(model_cfg, STAGE)
    splits = task.read_splits({name: inputs[name] for name in ("train", "val", "test")})
    student_train_cfg = student_training_config(cfg, train_cfg)
    plan = plan_device(student_train_cfg)
    if inputs["teacher"].is_dir():
        require_tokenizer_file(inputs["teacher"])
    teacher = load_trained_classifier(inputs["teacher"], torch.device(plan.device), missing_hint=TEACHER_HINT)
    tokenizer, max_length = teacher.tokenizer, model_cfg.max_seq_length
    encoded = task.encode_splits(splits, inputs, tokenizer, teacher.labels, max_length)
    transformers.logging.disable_progress_bar()
    set_seed(cfg.seed)

    student, kept_layers = build_student(teacher.model, cfg)
    id_map = None
    if cfg.prune_vocab:
        keep = used_token_ids([e["input_ids"] for e in encoded["train"]], tokenizer.all_special_ids)
        id_map = prune_vocabulary(student, keep, unk_id=unknown_token_id(tokenizer))

    logit_started = time.perf_counter()
    for name in ("train", "val"):
        logits = batched_logits(teacher.model, tokenizer, encoded[name], plan.device, train_cfg.eval_batch_size)
        for example, row in zip(encoded[name], logits, strict=True):
            example[TEACHER_LOGITS] = row.tolist()
    logit_seconds = time.perf_counter() - logit_started
    student_sets = {name: remapped(encoded[name], id_map) for name in ("train", "val")}

    checkpoint_dir = workspace.checkpoints / out_dir.name
    run_hash = config_hash({
        "distill": cfg.model_dump(), "train": student_train_cfg.model_dump(), "max_seq_length": max_length,
        "inputs": {name: sha256_path(path) for name, path in inputs.items()},
    })
    resume = resume_point(checkpoint_dir, run_hash)
    print(
        f"{STAGE}: student keeps teacher layers {kept_layers}"
        + (f", {len(keep)} of {len(id_map)} tokens" if id_map is not None else "")
        + f"; training on {plan.device} ({plan.precision})" + (f", resuming from {resume}" if resume else "")
    )
    trainer = make_trainer(cfg, student_train_cfg, plan, task, student, tokenizer, student_sets, id_map,
                           checkpoint_dir, run_hash)
    try:
        train_or_stop(trainer, str(resume) if resume else None)
    except NonFiniteLoss:
        discard(checkpoint_dir)  # the diverged run's checkpoints would only lead to the same divergence
        raise
    student = trainer.model.eval()
    state = trainer.state

    scores = retention(task, teacher, student, id_map, encoded, splits, plan.device, train_cfg.eval_batch_size)
    history = history_rows(state.log_history, task.val_scores)
    best_scores = next((row for row in history if row["step"] == state.best_global_step), {})
    parameters = {"teacher": count_parameters(teacher.model), "student": count_parameters(student)}
    parameters["ratio"] = round(parameters["student"] / parameters["teacher"], 6)
    parameters["student_embedding"] = student.get_input_embeddings().weight.numel()
    metrics = headline_metrics(scores, parameters, kept_layers, train_cfg.metric, state, best_scores)
    coverage = {
        name: round(vocab_coverage([e["input_ids"] for e in encoded[name]], id_map, tokenizer.unk_token_id), 6)
        for name in ("val", "test")
    }
    vocabulary = {
        "pruned": id_map is not None, "tokenizer_size": len(tokenizer),
        "kept": int(student.get_input_embeddings().num_embeddings), "coverage": coverage,
    }

    with atomic_dirs(out_dir, reports) as (model_tmp, reports_tmp):
        student.save_pretrained(model_tmp)
        tokenizer.save_pretrained(model_tmp)
        if id_map is not None:
            save_id_map(model_tmp, id_map)
        write_meta(
            model_tmp, stage=STAGE,
            config={"distill": cfg, "train": student_train_cfg, "model": model_cfg},
            inputs=inputs, metrics=metrics, started=started,
            extra={
                "labels": teacher.labels, "teacher": teacher_summary(inputs["teacher"], teacher),
                "student": {
                    "init": "config" if cfg.student_config else "teacher_layers", "kept_layers": kept_layers,
                    "model_type": student.config.model_type, "class": type(student).__name__,
                },
                "vocabulary": vocabulary, "parameters": parameters,
                "teacher_logits": {"computed": "once, before training", "rows": len(encoded["train"]) + len(
                    encoded["val"]), "seconds": round(logit_seconds, 3)},
                "device": plan.name, "precision": plan.precision,
                "best": {"metric": train_cfg.metric, "step": state.best_global_step, "scores": best_scores},
                "global_step": state.global_step, "resumed_from": str(resume) if resume else None,
                "config_hash": run_hash, "retention": scores, "history": history,
                "files": file_hashes(model_tmp),  # verified before the model is loaded
            },
        )
        atomic_write_text(reports_tmp / "history.csv", history_csv(history))
        write_json(reports_tmp / "retention.json", scores)
        write_drift_report(
            predictions_frame(splits["test"], scores["test"]["teacher_predicted"]),
            predictions_frame(splits["test"], scores["test"]["student_predicted"]),
            reports_tmp, "student_vs_teacher", "Student vs teacher: predicted labels on the test split",
        )
    write_metrics(metrics_path, metrics)
    discard(checkpoint_dir)
    print(
        f"{STAGE}: student accuracy {metrics['student_accuracy']:.4f} vs teacher {metrics['teacher_accuracy']:.4f} "
        f"(retention {metrics['accuracy_retention']:.4f}), {parameters['student']:,} of "
        f"{parameters['teacher']:,} parameters"
    )
    outputs = {"model": out_dir, "reports": reports, "metrics": metrics_path}
    return Produced(stage=STAGE, outputs=outputs, inputs=inputs, metrics=metrics)


def student_training_config(cfg: DistillConfig, train_cfg: TrainConfig) -> TrainConfig:
    """The `train` section with the student's own hyperparameters: every weight trains, in one process."""
    return TrainConfig.model_validate({
        **train_cfg.model_dump(),
        "method": "full", "freeze_layers": 0, "num_processes": 1, "label_smoothing": 0.0,
        "learning_rate": cfg.learning_rate, "epochs": cfg.epochs, "max_steps": cfg.max_steps,
        "batch_size": cfg.batch_size, "seed": cfg.seed,
    })


def build_student(teacher_model, cfg: DistillConfig):
    """(student, teacher layers it kept); a student from a config keeps none by index."""
    if cfg.student_config:
        return student_from_config(teacher_model, cfg.student_config), []
    total = teacher_model.config.num_hidden_layers
    kept = choose_layers(total, cfg.layers, cfg.num_layers)
    return student_from_layers(teacher_model, kept), kept


def unknown_token_id(tokenizer) -> int:
    if tokenizer.unk_token_id is None:
        raise StageError("distill.prune_vocab: the tokenizer has no unknown token to stand for pruned tokens; "
                         "set distill.prune_vocab: false")
    return int(tokenizer.unk_token_id)


def batched_logits(model, tokenizer, examples: list[dict], device: str, batch_size: int) -> np.ndarray:
    """Logits for tokenized examples, in their order (batched by length: less padding)."""
    keys = [key for key in ("input_ids", "attention_mask", "token_type_ids") if key in examples[0]]
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]["input_ids"]))
    out = None
    model.eval()
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            batch = tokenizer.pad([{k: examples[i][k] for k in keys} for i in rows], return_tensors="pt").to(device)
            logits = model(**batch)
            logits = (logits if isinstance(logits, torch.Tensor) else logits.logits).float().cpu().numpy()
            if out is None:
                out = np.zeros((len(examples), logits.shape[1]), dtype=np.float32)
            out[rows] = logits
    return out


def remapped(examples: list[dict], id_map: torch.Tensor | None) -> list[dict]:
    if id_map is None:
        return examples
    table = id_map.numpy()
    return [{**e, "input_ids": table[np.asarray(e["input_ids"])].tolist()} for e in examples]


def make_trainer(cfg, train_cfg, plan, task: Task, student, tokenizer, sets, id_map, checkpoint_dir, run_hash):
    args = training_arguments(train_cfg, output_dir=checkpoint_dir, plan=plan, world_size=1, scored=True)
    # The teacher's logits are a batch key the model's forward does not take: the Trainer must keep it.
    args.remove_unused_columns = False
    callbacks = [StopOnNonFiniteLoss("distill"), CheckpointMarker(run_hash)]
    if train_cfg.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(train_cfg.early_stopping_patience, train_cfg.early_stopping_threshold))
    pad_id = int(id_map[tokenizer.pad_token_id]) if id_map is not None else None
    return DistillationTrainer(
        model=student, args=args, train_dataset=sets["train"], eval_dataset=sets["val"],
        data_collator=distillation_collator(tokenizer, pad_id), callbacks=callbacks,
        compute_metrics=task.compute_metrics, kd_loss=task.kd_loss, alpha=cfg.alpha, temperature=cfg.temperature,
    )


def retention(task: Task, teacher: Classifier, student, id_map, encoded, splits, device, batch_size) -> dict:
    """Teacher and student on val and test: accuracy, macro-F1, their ratio, and top-1 agreement, each model
    deciding by its own calibration fitted on val (multi-label thresholds decide predictions)."""
    mapped = with_id_map(student, id_map).to(device)
    logits = {"teacher": {}, "student": {}}
    for name in ("val", "test"):
        if TEACHER_LOGITS in encoded[name][0]:  # computed once before training: not run again
            logits["teacher"][name] = np.asarray([e[TEACHER_LOGITS] for e in encoded[name]])
        else:
            logits["teacher"][name] = batched_logits(
                teacher.model, teacher.tokenizer, encoded[name], device, batch_size
            )
        logits["student"][name] = batched_logits(mapped, teacher.tokenizer, encoded[name], device, batch_size)
    val_targets = task.targets(splits["val"], teacher.labels)
    calibration = {model: task.outputs.fit(found["val"], val_targets) for model, found in logits.items()}
    scores = {}
    for name in ("val", "test"):
        truth = list(splits[name]["label"])
        teacher_pred, student_pred = (
            labels_from_logits(task.outputs, logits[model][name], teacher.labels, calibration[model])
            for model in ("teacher", "student")
        )
        t, s = task.score(truth, teacher_pred), task.score(truth, student_pred)
        scores[name] = {
            "rows": len(truth),
            "teacher": {"accuracy": t["accuracy"], "macro_f1": t["macro_f1"]},
            "student": {"accuracy": s["accuracy"], "macro_f1": s["macro_f1"]},
            "accuracy_retention": _ratio(s["accuracy"], t["accuracy"]),
            "f1_retention": _ratio(s["macro_f1"], t["macro_f1"]),
            "agreement": float(np.mean([a == b for a, b in zip(teacher_pred, student_pred, strict=True)])),
            "teacher_predicted": teacher_pred, "student_predicted": student_pred,
        }
    return scores


def _ratio(part: float, whole: float) -> float:
    return round(part / whole, 6) if whole else 0.0


def headline_metrics(scores, parameters, kept_layers, metric, state, best_scores) -> dict:
    test = scores["test"]
    return {
        "teacher_accuracy": test["teacher"]["accuracy"], "student_accuracy": test["student"]["accuracy"],
        "teacher_macro_f1": test["teacher"]["macro_f1"], "student_macro_f1": test["student"]["macro_f1"],
        "accuracy_retention": test["accuracy_retention"], "f1_retention": test["f1_retention"],
        "agreement": test["agreement"], "student_parameters": parameters["student"],
        "teacher_parameters": parameters["teacher"], "parameter_ratio": parameters["ratio"],
        "kept_layers": len(kept_layers) or None, "best_metric": metric, "best_step": state.best_global_step,
        **{key: value for key, value in best_scores.items() if key.startswith("val_")},
    }


def predictions_frame(frame: pd.DataFrame, predicted: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"text": frame["text"].to_numpy(), "label": predicted})


def teacher_summary(teacher_dir: Path, teacher: Classifier) -> dict:
    meta = read_meta(teacher_dir)
    return {
        "path": str(teacher_dir), "class": type(teacher.model).__name__,
        "layers": teacher.model.config.num_hidden_layers, "base_model": meta.get("base_model"),
        "best": meta.get("best"),
    }


def main(argv=None) -> int:
    return stage_main(STAGE, lambda p: run(p.distill, p.train, model_cfg=p.model), argv)


if __name__ == "__main__":
    raise SystemExit(main())
