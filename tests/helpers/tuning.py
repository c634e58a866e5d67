"""Shared builders for the tune stage's tests: a tiny model, its data, a params.yaml with a search, the study."""

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.helpers.project import REPO_ROOT
from tests.helpers.training import build_tiny_bert, tiny_model, tiny_train, write_classification_data
from tuneforge.base.layout import Workspace

# Learning rates from "barely moves" to "fast" for the random tiny BERT: at the first evaluations the slow
# ones clearly lag the median, so the median pruner has something to prune. Val loss, not accuracy: on 12
# val rows accuracy ties too often for a median to separate trials.
LR_SPACE = {"learning_rate": {"type": "float", "low": 1e-5, "high": 3e-2, "log": True}}


def make_project(root: Path) -> Path:
    """Tiny BERT and the classification data under `root`; returns the model directory."""
    write_classification_data(root)
    return build_tiny_bert(root / "tiny-bert")


def tune_settings(root: Path, **overrides) -> dict:
    settings = dict(
        enabled=True, sampler="random", pruner="median", n_trials=6, metric="loss", seed=42,
        storage=f"sqlite:///{root / 'study' / 'optuna.db'}", space=LR_SPACE,
    )
    return settings | overrides


def write_params(root: Path, base: Path, *, tune: dict, train: dict | None = None, registry: bool = False) -> Path:
    """params.yaml for running the stage as a command inside `root` (the stage's default paths)."""
    params = {
        "model": tiny_model(base).model_dump(),
        "train": tiny_train(**(train or {})).model_dump(),
        "tune": tune,
        "registry": {"enabled": registry, "url": f"sqlite:///{root / '.tuneforge' / 'registry.db'}",
                     "artifacts": str(root / ".tuneforge" / "artifacts"), "cache": str(root / ".tuneforge" / "cache")},
    }
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def run_tune(root: Path, tune: dict, base: Path, **train):
    from stages import tune as tune_stage
    from tuneforge.base.spec import TuneConfig

    return tune_stage.run(
        TuneConfig.model_validate(tune), tiny_model(base), tiny_train(**train), workspace=Workspace(root)
    )


def stage_command(root: Path, *args: str) -> subprocess.Popen:
    """`python -m stages.tune ARGS` inside `root`, one torch thread (the box has two busy cores)."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.Popen(
        [sys.executable, "-m", "stages.tune", *args], cwd=root, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def finish(process: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def load_trials(storage: str):
    """Every trial of the one study in `storage`, by number."""
    import optuna

    (summary,) = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    return sorted(study.get_trials(deepcopy=False), key=lambda trial: trial.number)


def read_yaml(path: Path) -> dict:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
