"""The study: Optuna RDB storage shared by the stage and any number of workers, and the loop that runs trials.

Storage: a SQLite file by default (several processes on one machine, a busy timeout so writers queue), or
PostgreSQL for a team (workers on many machines). Every process opens the study with load_if_exists, so a
re-run resumes it; the study records the hash of the spec it was made for and refuses another spec.

Budget: `tune.n_trials` is the number of trials the study holds when done, counting complete and pruned
trials and those running elsewhere. Failed trials (a crash, a killed worker) do not count, so a re-run
redoes them. Deciding "one more trial" and creating it must be one step or two workers could both take the
last slot: it happens under a claim lock (a lock file beside a SQLite database; a PostgreSQL advisory lock)
held from the count until Optuna has created the trial, not while it trains. A worker that dies mid-trial
stops its heartbeat; after tune.stale_after_s the next claim marks that trial failed and its slot is free.
"""

import hashlib
import math
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from tuneforge.base.errors import ConfigError, StageError
from tuneforge.base.secrets import mask_url
from tuneforge.base.spec import TuneConfig
from tuneforge.training.training_args import BEST_METRIC

SPEC_ATTR = "tuneforge_spec_sha256"
DEFAULT_ATTR = "default_recipe"
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


def direction(metric: str) -> str:
    return "maximize" if BEST_METRIC[metric][1] else "minimize"


def study_name(cfg: TuneConfig, spec_sha256: str) -> str:
    return cfg.study_name or f"tune-{spec_sha256[:12]}"


def open_storage(cfg: TuneConfig) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage on tune.storage, or one StageError line naming the key and the cause."""
    url = make_url(cfg.storage)
    if url.get_backend_name() == "sqlite":
        folder = Path(url.database or "").parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StageError(
                f"tune.storage: cannot create the folder {folder} of {cfg.storage}: {exc.strerror}"
            ) from None
        engine_kwargs: dict[str, Any] = {"connect_args": {"timeout": cfg.busy_timeout_s}}
    else:
        engine_kwargs = {"connect_args": {"connect_timeout": cfg.connect_timeout_s}, "pool_pre_ping": True}
    heartbeat = max(1, cfg.stale_after_s // 4)
    try:
        # Optuna creates its tables on first open: two processes starting at once would both try.
        lock = claim_lock(cfg, "tuneforge-storage")
        lock.acquire()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # heartbeat_interval is marked experimental
                return optuna.storages.RDBStorage(
                    cfg.storage, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat,
                    grace_period=cfg.stale_after_s,
                )
        finally:
            lock.release()
            lock.close()
    except (SQLAlchemyError, optuna.exceptions.StorageInternalError, ImportError, ValueError, OSError) as exc:
        raise StageError(
            f"tune.storage: cannot open the study database {mask_url(cfg.storage)}: {_cause(exc)}"
        ) from None


def _cause(exc: BaseException) -> str:
    while exc.__cause__ is not None or getattr(exc, "orig", None) is not None:
        exc = getattr(exc, "orig", None) or exc.__cause__
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def open_study(
    storage, name: str, metric: str, spec_sha256: str, cfg: TuneConfig, max_steps: int | None
) -> optuna.Study:
    """Create the study, or load it to resume; refuse one made for another spec."""
    try:
        study = optuna.create_study(
            storage=storage, study_name=name, direction=direction(metric), load_if_exists=True,
            pruner=make_pruner(cfg, max_steps),
        )
    except (SQLAlchemyError, optuna.exceptions.StorageInternalError) as exc:
        raise StageError(f"tune.storage: {mask_url(cfg.storage)}: {_cause(exc)}") from None
    if study.direction.name.lower() != direction(metric):
        raise ConfigError(
            f"tune.study_name: study '{name}' {study.direction.name.lower()}s, but tune.metric {metric} needs "
            f"{direction(metric)}; pick another study_name (or null)"
        )
    stored = study.user_attrs.get(SPEC_ATTR)
    if stored is None:
        study.set_user_attr(SPEC_ATTR, spec_sha256)
    elif stored != spec_sha256:
        raise ConfigError(
            f"tune.study_name: study '{name}' in {mask_url(cfg.storage)} was made for another spec (data, model, "
            "train, budget or space differ); pick another study_name, or null for one named after the spec"
        )
    return study


def make_sampler(cfg: TuneConfig, slot: int, grid: dict[str, list]) -> optuna.samplers.BaseSampler:
    """The sampler for the `slot`-th trial of the study: seeded by slot, so a run (or a resumed one) repeats."""
    if cfg.sampler == "grid":
        # The grid's order is shuffled by the seed: every worker must share it to share out the points.
        return optuna.samplers.GridSampler(grid, seed=cfg.seed)
    if cfg.sampler == "random":
        return optuna.samplers.RandomSampler(seed=cfg.seed + slot)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return optuna.samplers.TPESampler(
            seed=cfg.seed + slot, n_startup_trials=cfg.tpe_startup_trials, constant_liar=True
        )


def make_pruner(cfg: TuneConfig, max_steps: int | None) -> optuna.pruners.BasePruner:
    if cfg.pruner == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=cfg.pruner_startup_trials, n_warmup_steps=cfg.pruner_warmup_steps
        )
    if cfg.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=cfg.hyperband_min_resource, max_resource=max_steps or "auto",
            reduction_factor=cfg.hyperband_reduction_factor,
        )
    return optuna.pruners.NopPruner()


# ---- the claim lock ----

class _FileClaim:
    """A lock file beside the SQLite database: every process that opens that file can see it."""

    def __init__(self, database: Path):
        from filelock import FileLock

        self._lock = FileLock(str(database) + ".claim.lock")

    def acquire(self) -> None:
        self._lock.acquire()

    def release(self) -> None:
        self._lock.release()

    def close(self) -> None:
        pass


class _PostgresClaim:
    """A session-level advisory lock, keyed by `name` (the study's), on a connection of its own."""

    def __init__(self, url: str, name: str, connect_timeout_s: int):
        self._engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": connect_timeout_s})
        self._key = int(hashlib.sha256(f"tuneforge-claim:{name}".encode()).hexdigest()[:15], 16)
        self._connection = None

    def acquire(self) -> None:
        self._connection = self._engine.connect()
        self._connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": self._key})

    def release(self) -> None:
        if self._connection is not None:
            self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
            self._connection.close()
            self._connection = None

    def close(self) -> None:
        self._engine.dispose()


def claim_lock(cfg: TuneConfig, name: str):
    """A lock every process using tune.storage shares (SQLite: one per database file; PostgreSQL: per name)."""
    url = make_url(cfg.storage)
    if url.get_backend_name() == "sqlite":
        return _FileClaim(Path(url.database))
    return _PostgresClaim(cfg.storage, name, cfg.connect_timeout_s)


# ---- the loop ----

def counts(study: optuna.Study) -> dict[str, int]:
    states = [trial.state for trial in study.get_trials(deepcopy=False)]
    return {state.name.lower(): states.count(state) for state in TrialState}


def run_trials(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    cfg: TuneConfig,
    *,
    grid: dict[str, list],
    default_params: dict[str, Any] | None,
    wait_for_others: bool,
    poll_s: float | None = None,
) -> int:
    """Run trials until the study holds tune.n_trials (or this process's time budget is spent); how many ran here.

    `wait_for_others`: when every slot is taken, wait for trials running in other processes to end (the
    stage does, so that its outputs cover the whole study; a stale one frees its slot and is redone here).
    """
    deadline = time.monotonic() + cfg.timeout_s if cfg.timeout_s else math.inf
    poll_s = poll_s or max(1.0, min(10.0, cfg.stale_after_s / 4))
    claim = claim_lock(cfg, study.study_name)
    ran = 0
    try:
        while time.monotonic() < deadline:
            outcome = _claim_and_run(study, objective, cfg, claim, grid, default_params)
            if outcome == "ran":
                ran += 1
            elif outcome == "busy" and wait_for_others:
                time.sleep(poll_s)
            else:
                break
    finally:
        claim.close()
    return ran


def _claim_and_run(study, objective, cfg: TuneConfig, claim, grid, default_params) -> str:
    """"ran" one trial, "busy" (no free slot but trials run elsewhere) or "full"."""
    claim.acquire()
    held = True

    def objective_after_claim(trial):
        # Optuna has created (or popped) this trial: the slot is taken, other processes may claim theirs.
        nonlocal held
        claim.release()
        held = False
        return objective(trial)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            optuna.storages.fail_stale_trials(study)
        trials = study.get_trials(deepcopy=False)
        taken = sum(trial.state in COUNTED for trial in trials)
        if taken >= cfg.n_trials:
            running = sum(trial.state == TrialState.RUNNING for trial in trials)
            return "busy" if running else "full"
        if default_params is not None and not any(
            trial.user_attrs.get(DEFAULT_ATTR) and trial.state != TrialState.FAIL for trial in trials
        ):
            # The default recipe goes first (Optuna hands out enqueued trials before sampling new ones).
            study.enqueue_trial(default_params, user_attrs={DEFAULT_ATTR: True})
        study.sampler = make_sampler(cfg, len(trials), grid)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            study.optimize(objective_after_claim, n_trials=1, gc_after_trial=True)
        return "ran"
    finally:
        if held:
            claim.release()
