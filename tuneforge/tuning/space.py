"""The search space against the train section: the trials' base config, checks, sampling, applying values.

A dimension's name is a train key (`learning_rate`, or `peft.r` for train.peft.r). Shape errors (an empty
range, empty choices, an unknown name) are refused by the schema (tuneforge/base/spec.py); what needs the train
section as well is checked here, before any study is opened: each bound and choice must be a value the
train section accepts, and each dimension must be able to change the training at all.
"""

from typing import Any

from pydantic import ValidationError

from tuneforge.base.errors import ConfigError
from tuneforge.base.spec import SearchDimension, TrainConfig, TuneConfig
from tuneforge.training.training_args import check_metric
from tuneforge.tuning.files import overlay

PEFT_METHODS = ("lora", "peft")


def trial_base(train: TrainConfig, tune: TuneConfig, task) -> TrainConfig:
    """The train section every trial starts from: the per-trial budget and the study's metric applied.

    `task` is the tuneforge.tasks.Task of model.task: its metrics are the ones a study may optimise."""
    metric = tune.metric or train.metric
    check_metric(task, metric, "tune.metric")
    if train.num_processes != 1:
        raise ConfigError(
            f"train.num_processes: {train.num_processes}, but each trial trains in one process; set it to 1 "
            "for the search and start more tune workers instead (python -m stages.tune --worker)"
        )
    changes: dict[str, Any] = {"metric": metric, "use_tuned": False}
    budget = tune.budget
    if budget.max_steps is not None:
        changes["max_steps"] = budget.max_steps
    elif budget.epochs is not None:
        changes.update(epochs=budget.epochs, max_steps=None)
    if budget.eval_steps is not None:
        changes["eval_steps"] = budget.eval_steps
    return _validated(train.model_dump(by_alias=True) | changes, "tune.budget")


def check_space(tune: TuneConfig, base: TrainConfig, check_task=None) -> None:
    """Refuse dimensions the train section (or the task, `check_task`: its check_train_config) cannot take or
    that cannot change a trial; one line, dotted key."""
    for name, dimension in tune.search_space().items():
        key = f"tune.space.{name}"
        if name.startswith("peft.") and base.method not in PEFT_METHODS:
            raise ConfigError(f"{key}: train.method is {base.method}; peft keys apply to methods lora and peft only")
        if name == "epochs" and base.max_steps is not None:
            raise ConfigError(
                f"{key}: has no effect while trials run a fixed max_steps ({base.max_steps}, from tune.budget or "
                "train); set tune.budget.epochs instead of max_steps, or leave epochs out"
            )
        for where, value in _probe_values(dimension):
            try:
                tried = apply_values(base, {name: value})
                if check_task:
                    check_task(tried)
            except ConfigError as exc:
                raise ConfigError(f"{key}.{where}: {value!r} is refused by the train section ({exc.message})") from None
    if tune.include_defaults:
        for name, value in default_values(base, tune).items():
            dimension = tune.search_space()[name]
            if dimension.type == "categorical" and value not in dimension.choices:
                raise ConfigError(
                    f"tune.include_defaults: train.{name} is {value!r}, not among tune.space.{name}.choices "
                    f"{dimension.choices} (add it, or set include_defaults: false)"
                )


def _probe_values(dimension: SearchDimension) -> list[tuple[str, Any]]:
    if dimension.type == "categorical":
        return [(f"choices[{i}]", choice) for i, choice in enumerate(dimension.choices)]
    cast = int if dimension.type == "int" else float
    return [("low", cast(dimension.low)), ("high", cast(dimension.high))]


def default_values(base: TrainConfig, tune: TuneConfig) -> dict[str, Any]:
    """The train section's own value of each searched key: the default recipe's trial."""
    dumped = base.model_dump(by_alias=True)
    values = {}
    for name in tune.search_space():
        node: Any = dumped
        for part in name.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        values[name] = node
    return values


def suggest(trial, tune: TuneConfig) -> dict[str, Any]:
    """One value per dimension from the trial (a fixed value for an enqueued trial, else the sampler's)."""
    values = {}
    for name, dimension in tune.search_space().items():
        if dimension.type == "categorical":
            values[name] = trial.suggest_categorical(name, dimension.choices)
        elif dimension.type == "int":
            values[name] = trial.suggest_int(
                name, int(dimension.low), int(dimension.high), step=int(dimension.step or 1), log=dimension.log
            )
        else:
            values[name] = trial.suggest_float(
                name, dimension.low, dimension.high, step=dimension.step, log=dimension.log
            )
    return values


def grid(tune: TuneConfig) -> dict[str, list]:
    return {name: dimension.grid_points() for name, dimension in tune.search_space().items()}


def apply_values(base: TrainConfig, values: dict[str, Any]) -> TrainConfig:
    """The train section with the trial's values set (validated as params.yaml would be)."""
    dumped = base.model_dump(by_alias=True)
    for key, value in overlay(values).items():
        if isinstance(value, dict):
            dumped[key] = {**dumped.get(key, {}), **value}
        else:
            dumped[key] = value
    return _validated(dumped, "train")


def _validated(dumped: dict, where: str) -> TrainConfig:
    try:
        return TrainConfig.model_validate(dumped)
    except ValidationError as exc:
        error = exc.errors()[0]
        path = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
        raise ConfigError(f"{where}{'.' + path if path else ''}: {message}") from None
