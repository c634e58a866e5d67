"""One trial: the train section with the trial's values, trained by tuneforge.training.fit, pruned on its evaluations.

The trial's model and checkpoints go to a temporary directory under models/.checkpoints/tune that is deleted
when the trial ends, however it ends (complete, pruned, failed): the tune stage produces no model.
"""

import math
import tempfile

import optuna
from transformers import TrainerCallback

from tuneforge.base.errors import StageError
from tuneforge.training.fit import build_spec, fit, preflight, spec_hash
from tuneforge.training.telemetry import perplexity
from tuneforge.training.training_args import BEST_METRIC, NonFiniteLoss
from tuneforge.tuning import space as tune_space


class PruneOnEvaluate(TrainerCallback):
    """Report the val metric of every evaluation to the trial; stop the training when the pruner says so.

    Raising from on_evaluate is how the Trainer is stopped: its callback handler does not catch, so
    TrialPruned leaves trainer.train() and fit() at once and Optuna records the trial as pruned.
    """

    def __init__(self, trial: optuna.Trial, metric: str):
        self.trial, self.metric = trial, metric
        self.key = f"eval_{BEST_METRIC[metric][0]}"

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        value = (metrics or {}).get(self.key)
        if value is None or math.isnan(value):
            return
        if self.metric == "perplexity":
            value = perplexity(value)
        step = state.global_step
        self.trial.report(value, step)
        if self.trial.should_prune():
            self.trial.set_user_attr("pruned_step", step)
            raise optuna.TrialPruned(f"at step {step}: {self.metric} {value:.4f}")


def run_trial(trial: optuna.Trial, search) -> float:
    values = tune_space.suggest(trial, search.cfg)
    shown = ", ".join(f"{name}={_short(value)}" for name, value in values.items())
    try:
        value = _train(trial, search, values)
    except optuna.TrialPruned as pruned:
        print(f"tune: trial {trial.number} pruned {pruned} ({shown})", flush=True)
        raise
    except NonFiniteLoss as diverged:
        # Values that make training diverge are an answer of the search, not a failure of the stage:
        # the trial counts as pruned and the sampler learns to avoid that region.
        trial.set_user_attr("diverged", diverged.message)
        print(f"tune: trial {trial.number} pruned: its loss diverged ({shown})", flush=True)
        raise optuna.TrialPruned("diverged") from None
    except StageError:
        raise
    except Exception as exc:  # noqa: BLE001 - a crash inside one trial: recorded FAIL, reported in one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise StageError(
            f"trial {trial.number} failed ({shown}): {type(exc).__name__}: {first}; the study records it as "
            "failed and a re-run continues the search"
        ) from exc
    print(f"tune: trial {trial.number}: {search.metric} {value:.4f} ({shown})", flush=True)
    return value


def _train(trial: optuna.Trial, search, values: dict) -> float:
    cfg = tune_space.apply_values(search.base, values)
    preflight(search.model_cfg, cfg, search.prepared.base_path, search.task)
    search.scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=search.scratch, prefix=f"trial-{trial.number}-") as scratch:
        spec = build_spec(
            search.model_cfg, cfg, search.prepared, out_dir=f"{scratch}/model", checkpoint_dir=f"{scratch}/checkpoints",
            resume=None, run_hash=spec_hash(search.model_cfg, cfg, search.prepared),
        )
        result = fit(spec, search.task, callbacks=[PruneOnEvaluate(trial, search.metric)])
    trial.set_user_attr("best_step", result["best"]["step"])
    trial.set_user_attr("global_step", result["global_step"])
    value = result["best"]["value"]
    if value is None or math.isnan(value):
        raise StageError(f"trial {trial.number}: no val {search.metric} was measured (no evaluation ran)")
    return float(value)


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
