"""Stage `tune`: hyperparameter search (Optuna) over train keys, each trial trained by the train stage's `fit`.

Inputs: those of the train stage (data/augmented/train.parquet, data/splits/val.parquet,
data/validated/labels.json) and the `tune`, `model` and `train` sections of params.yaml.

Each trial takes the train section, applies the per-trial budget (tune.budget) and the values the sampler
chose for tune.space, and trains with tuneforge.training.fit into a temporary directory that is deleted
afterwards; a callback reports the val metric at every evaluation and the pruner may stop the trial there.
With tune.include_defaults the first trial is the train section's own values: the default recipe measured
under the same budget.

The study lives in a database (tune.storage), named after the hash of what determines a trial (data,
model, train section, budget, space) unless tune.study_name is given: re-running resumes it and counts
only the remaining trials towards tune.n_trials; `python -m stages.tune --worker` (or `tuneforge
tune-worker`) runs trials of the same study from other processes or machines and writes nothing. The stage
runs trials, waits for those running elsewhere, then writes outputs from every trial in the study:

    models/tune/best_params.yaml   the best trial's values as an overlay of the train section, which the
                                   train stage merges when train.use_tuned is true
    models/tune/meta.json          config, study name, storage URL (password masked), summary
    reports/tune/trials.csv        every trial: number, state, value, steps, duration, parameters
    reports/tune/study.json        best and default-recipe values, counts per state, the space
    reports/tune/plots.html        optimisation history, intermediate values, importances, parallel coordinates
    reports/metrics/tune.json      headline numbers (DVC metrics)

tune.enabled false: the stage writes the same files saying the search is disabled, at once, with no values.
"""

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuneforge.base.errors import ConfigError, StageError, report_failure
from tuneforge.base.layout import PARAMS_FILE, Workspace
from tuneforge.base.outputs import Produced, atomic_dirs, write_json, write_meta, write_metrics
from tuneforge.base.secrets import mask_url
from tuneforge.base.spec import ModelConfig, TrainConfig, TuneConfig
from tuneforge.params import load_params
from tuneforge.pipeline.runner import quiet_libraries, stage_main
from tuneforge.tuning.files import (
    BEST_PARAMS_NAME,
    METRIC_KEYS,
    PLOTS_NAME,
    STUDY_NAME,
    TRIAL_COLUMNS,
    TRIALS_NAME,
    best_params_text,
    overlay,
)

STAGE = "tune"


def run(
    cfg: TuneConfig, model_cfg: ModelConfig, train_cfg: TrainConfig, *, workspace: Workspace = Workspace()
) -> Produced:
    started = time.time()
    out_dir, reports, metrics_path = workspace.tune, workspace.reports(STAGE), workspace.metrics(STAGE)
    config = {"tune": cfg}  # write_meta records it with tune.storage's password masked
    if not cfg.enabled:
        return _write(out_dir, reports, metrics_path, None, config=config, inputs={}, started=started)

    search = Search.open(cfg, model_cfg, train_cfg, workspace)
    print(
        f"{STAGE}: study {search.name} in {search.storage_shown}: {cfg.sampler} sampler, {cfg.pruner} pruner, "
        f"{cfg.n_trials} trials of {search.metric} ({search.direction})"
    )
    ran = search.run(wait_for_others=True)
    result = search.result(ran)
    config.update(model=model_cfg, train=train_cfg)
    return _write(out_dir, reports, metrics_path, result, config=config, inputs=search.prepared.inputs, started=started)


def run_worker(cfg: TuneConfig, model_cfg: ModelConfig, train_cfg: TrainConfig) -> tuple[str, int]:
    """Join the study and run trials until it holds tune.n_trials; write nothing. (study name, trials run)."""
    if not cfg.enabled:
        raise ConfigError("tune.enabled: false; a worker has no search to join")
    search = Search.open(cfg, model_cfg, train_cfg, Workspace())
    print(f"{STAGE}: worker on study {search.name} in {search.storage_shown}")
    return search.name, search.run(wait_for_others=False)


@dataclass
class Search:
    """A study opened for this spec, with everything a trial needs."""

    cfg: TuneConfig
    model_cfg: ModelConfig
    base: TrainConfig  # the train section every trial starts from (budget and metric applied)
    task: Any  # tuneforge.tasks.Task of model.task
    prepared: Any  # tuneforge.training.fit.Prepared: checked inputs, base model path, input hashes
    study: Any  # optuna.Study
    spec: str  # sha256 of what determines a trial; the default study name is made from it
    storage_shown: str
    scratch: Path

    @property
    def name(self) -> str:
        return self.study.study_name

    @property
    def metric(self) -> str:
        return self.base.metric

    @property
    def direction(self) -> str:
        from tuneforge.tuning.study import direction

        return direction(self.metric)

    @classmethod
    def open(cls, cfg, model_cfg, train_cfg, workspace: Workspace) -> "Search":
        # Imported here: a disabled stage answers at once, without loading torch, transformers or optuna.
        import optuna

        from tuneforge.tasks import task_for
        from tuneforge.training.checkpoints import config_hash
        from tuneforge.training.fit import prepare
        from tuneforge.tuning import space as tune_space
        from tuneforge.tuning import study as tune_study

        optuna.logging.set_verbosity(optuna.logging.ERROR)  # trials are reported by our own lines
        task = task_for(model_cfg, STAGE)
        base = tune_space.trial_base(train_cfg, cfg, task)
        tune_space.check_space(cfg, base, task.check_train_config)
        prepared = prepare(model_cfg, base, task, workspace)
        spec = config_hash({
            "model": model_cfg.model_dump(by_alias=True), "train": base.model_dump(by_alias=True),
            "space": {name: dim.model_dump() for name, dim in cfg.search_space().items()},
            "inputs": prepared.input_hashes,
        })
        storage = tune_study.open_storage(cfg)
        study = tune_study.open_study(storage, tune_study.study_name(cfg, spec), base.metric, spec, cfg, base.max_steps)
        return cls(
            cfg=cfg, model_cfg=model_cfg, base=base, task=task, prepared=prepared, study=study, spec=spec,
            storage_shown=mask_url(cfg.storage), scratch=workspace.checkpoints / workspace.tune.name,
        )

    def run(self, *, wait_for_others: bool) -> int:
        from tuneforge.tuning import space as tune_space
        from tuneforge.tuning import study as tune_study

        defaults = tune_space.default_values(self.base, self.cfg) if self.cfg.include_defaults else None
        return tune_study.run_trials(
            self.study, self.objective, self.cfg, grid=tune_space.grid(self.cfg) if self.cfg.sampler == "grid" else {},
            default_params=defaults, wait_for_others=wait_for_others,
        )

    def objective(self, trial) -> float:
        from tuneforge.tuning.trial import run_trial

        return run_trial(trial, self)

    def result(self, ran: int) -> dict:
        from tuneforge.tuning import report as tune_report

        summary = tune_report.summary(self.study, self.metric)
        if summary["best_trial"] is None:
            raise StageError(
                f"study {self.name}: no trial completed ({summary['n_pruned']} pruned, {summary['n_failed']} failed, "
                f"{summary['n_running']} running); nothing written"
            )
        names = list(self.cfg.search_space())
        rows = tune_report.trial_rows(self.study, names)
        best = self.study.best_trial
        record = {
            "study": self.name, "storage": self.storage_shown, "metric": self.metric, "direction": self.direction,
            "best_trial": best.number, "best_value": best.value, "default_value": summary["default_value"],
            "train": overlay({name: best.params[name] for name in names if name in best.params}),
        }
        study_record = {
            **summary, "storage": self.storage_shown, "spec_sha256": self.spec, "sampler": self.cfg.sampler,
            "pruner": self.cfg.pruner, "n_trials_target": self.cfg.n_trials, "trials_run_by_this_process": ran,
            "space": {name: dim.model_dump() for name, dim in self.cfg.search_space().items()},
            "budget": self.cfg.budget.model_dump(), "optuna_version": _optuna_version(),
        }
        print(
            f"{STAGE}: best {self.metric} {best.value:.4f} (trial {best.number})"
            + (f", default recipe {summary['default_value']:.4f}" if summary["default_value"] is not None else "")
            + f"; {summary['n_complete']} complete, {summary['n_pruned']} pruned, {summary['n_failed']} failed"
        )
        return {
            "best_params": record, "study": study_record,
            "trials_csv": tune_report.trials_csv(rows, names),
            "plots": tune_report.plots_html(self.study, self.cfg.seed),
        }


def _optuna_version() -> str:
    import optuna

    return optuna.__version__


def _write(out_dir, reports, metrics_path, result, *, config, inputs, started) -> Produced:
    if result is None:
        metrics = {"enabled": False}
        study = {"enabled": False}
    else:
        study = {"enabled": True, **result["study"]}
        metrics = {key: study[key] for key in METRIC_KEYS}
    with atomic_dirs(out_dir, reports) as (out_tmp, reports_tmp):
        (out_tmp / BEST_PARAMS_NAME).write_text(
            best_params_text(result["best_params"] if result else None), encoding="utf-8"
        )
        write_meta(
            out_tmp, stage=STAGE, config=config, inputs=inputs, metrics=metrics, started=started,
            extra={"study": study},
        )
        write_json(reports_tmp / STUDY_NAME, study)
        (reports_tmp / TRIALS_NAME).write_text(
            result["trials_csv"] if result else ",".join(TRIAL_COLUMNS) + "\n", encoding="utf-8"
        )
        if result:
            (reports_tmp / PLOTS_NAME).write_text(result["plots"], encoding="utf-8")
    write_metrics(metrics_path, metrics)
    return Produced(
        stage=STAGE,
        outputs={
            "best_params": out_dir / BEST_PARAMS_NAME, "meta": out_dir / "meta.json", "study": reports,
            "trials": reports / TRIALS_NAME, "summary": reports / STUDY_NAME, "metrics": metrics_path,
        },
        inputs=inputs,
        metrics=metrics,
    )


def worker_main(params_path: str) -> int:
    quiet_libraries()
    try:
        params = load_params(params_path)
        name, ran = run_worker(params.tune, params.model, params.train)
    except StageError as exc:
        return report_failure(exc, STAGE)
    print(f"{STAGE}: worker done: {ran} trial(s) run here; study {name} holds its trials")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--worker", action="store_true")
    known, rest = parser.parse_known_args(argv)
    if known.worker:
        params = argparse.ArgumentParser(prog="python -m stages.tune --worker", description="Run trials only.")
        params.add_argument("--params", default=str(PARAMS_FILE), help="the pipeline spec (default: params.yaml)")
        return worker_main(params.parse_args(rest).params)
    return stage_main(STAGE, lambda p: run(p.tune, p.model, p.train), rest)


if __name__ == "__main__":
    raise SystemExit(main())
