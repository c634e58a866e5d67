"""What a training run reports: loop throughput, memory, the evaluation history, the headline metrics."""

import csv
import io
import math
import resource
import statistics
import time

import torch
from transformers import TrainerCallback

from tuneforge.training.training_args import DevicePlan


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


def memory_report(plan: DevicePlan) -> dict:
    report = {"peak_rss_mb": peak_rss_mb(children=False)}
    if plan.device == "cuda":
        report["cuda_peak_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return report


def peak_rss_mb(*, children: bool) -> float:
    # ru_maxrss is in KiB on Linux; the children's figure is that of the largest finished child.
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if children:
        own = max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return round(own / 1024, 1)


def history_rows(log_history: list[dict], val_scores) -> list[dict]:
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
        row.update(val_scores(entry))  # the task's val_* columns
        rows.append(row)
    return rows


def history_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    columns = list(rows[0]) if rows else ["step"]
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def perplexity(loss: float) -> float:
    return math.exp(loss) if loss < 700 else float("inf")


def metric_value(metric: str, best: float | None) -> float | None:
    if best is None:
        return None
    return perplexity(best) if metric == "perplexity" else best


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

