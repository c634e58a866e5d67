"""The tune stage's file names, and models/tune/best_params.yaml (Workspace.tuned_params), which train reads.

The file is an overlay of params.yaml's `train` section holding only the searched keys, with the study it
came from beside it. When the search is disabled the file says so and holds no values, and a train stage
asked to use it refuses rather than silently training the untuned recipe.
This module stays light (no optuna, no torch): the train stage imports it.
"""

from pathlib import Path
from typing import Any

import yaml

from tuneforge.base.errors import ConfigError
from tuneforge.base.layout import BEST_PARAMS
from tuneforge.base.outputs import sha256_path
from tuneforge.base.spec import TrainConfig
from tuneforge.params import parse_params
from tuneforge.params.overrides import merge

BEST_PARAMS_NAME = BEST_PARAMS.name
# In reports/tune/:
TRIALS_NAME = "trials.csv"
STUDY_NAME = "study.json"
PLOTS_NAME = "plots.html"
TRIAL_COLUMNS = ("number", "state", "value", "default_recipe", "best_step", "pruned_step", "last_step", "duration_s")
# reports/metrics/tune.json: these keys of study.json.
METRIC_KEYS = (
    "study", "metric", "direction", "best_trial", "best_value", "default_value", "improvement_over_default",
    "n_trials", "n_complete", "n_pruned", "n_failed", "n_running",
)

_HEADER = (
    "# Written by the tune stage: the best trial's values as an overlay of params.yaml's train section.\n"
    "# train.use_tuned: true merges `train` below over that section (README \"Hyperparameter search\").\n"
)


def overlay(values: dict[str, Any]) -> dict[str, Any]:
    """{"learning_rate": 1e-4, "peft.r": 16} -> {"learning_rate": 1e-4, "peft": {"r": 16}}."""
    nested: dict[str, Any] = {}
    for key, value in values.items():
        *parents, leaf = key.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def flat_keys(nested: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in nested.items():
        if isinstance(value, dict) and value:
            keys += flat_keys(value, f"{prefix}{key}.")
        else:
            keys.append(f"{prefix}{key}")
    return keys


def best_params_text(record: dict[str, Any] | None) -> str:
    """The file's text: `record` (study, metric, best values...) or None for a disabled search."""
    if record is None:
        note = "tune.enabled is false: no search ran, there are no tuned values"
        body = {"enabled": False, "note": note, "train": {}}
    else:
        body = {"enabled": True, **record}
    return _HEADER + yaml.safe_dump(body, sort_keys=False, default_flow_style=False)


def read_best_params(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"train.use_tuned: {path} not found; run the tune stage with tune.enabled: true first "
            "(or set train.use_tuned: false)"
        )
    try:
        record = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        raise ConfigError(f"train.use_tuned: {path} is not valid YAML") from None
    if not isinstance(record, dict) or not isinstance(record.get("train"), dict) or "enabled" not in record:
        raise ConfigError(f"train.use_tuned: {path} is not a tune stage's best_params file (no enabled/train keys)")
    if record["enabled"] is not True:
        raise ConfigError(
            f"train.use_tuned: {path} says the search is disabled (tune.enabled: false): enable it and run "
            "the tune stage, or set train.use_tuned: false"
        )
    if not record["train"]:
        raise ConfigError(f"train.use_tuned: {path} holds no tuned values")
    return record


def merge_tuned(cfg: TrainConfig, path: Path) -> tuple[TrainConfig, dict[str, Any]]:
    """The train section with the file's values merged over it, and what was merged (for meta.json)."""
    record = read_best_params(path)
    merged = cfg.model_dump(by_alias=True)
    merge(merged, record["train"])
    # Validated like params.yaml itself: a bad value is reported as `<file>: train.<key>: ...`.
    tuned = parse_params({"train": merged}, source=str(path)).train
    info = {
        "path": str(path), "sha256": sha256_path(path), "keys": flat_keys(record["train"]),
        "values": record["train"], "study": record.get("study"), "best_trial": record.get("best_trial"),
        "best_value": record.get("best_value"), "metric": record.get("metric"),
    }
    return tuned, info
