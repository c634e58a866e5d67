"""Worker processes on one SQLite study: each trial runs once, and a killed worker's study is resumed.

Real processes (`python -m stages.tune --worker`), real Optuna storage, the tiny model of test_tune.py.
Most of the time is the workers' start-up (importing torch and transformers on a busy 2-core box).
"""

import csv
import json
import signal
import sqlite3
import time

import optuna
import pytest

from tests.helpers.registry_fixtures import BACKENDS, database_url
from tests.helpers.tuning import finish, load_trials, make_project, stage_command, tune_settings, write_params

pytestmark = pytest.mark.filterwarnings("ignore")
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


@pytest.fixture
def project(in_tmp_dir):
    return in_tmp_dir, make_project(in_tmp_dir)


@pytest.fixture(params=BACKENDS)
def storage(request, in_tmp_dir) -> str:
    """The study's database: SQLite always, PostgreSQL (a schema of its own) when TUNEFORGE_TEST_PG_URL is set."""
    if request.param == "sqlite":
        return f"sqlite:///{in_tmp_dir / 'study' / 'optuna.db'}"
    return database_url(request.param, in_tmp_dir, request)


def test_two_workers_share_one_study_and_run_each_trial_once(project, storage):
    root, base = project
    settings = tune_settings(root, n_trials=5, sampler="tpe", tpe_startup_trials=2, storage=storage)
    write_params(root, base, tune=settings, train={"metric": "loss"}, registry=True)

    workers = [stage_command(root, "--worker") for _ in range(2)]
    results = [finish(worker) for worker in workers]
    for code, _, err in results:
        assert code == 0, err
    ran = [int(out.split("worker done: ")[1].split(" ")[0]) for _, out, _ in results]
    assert sum(ran) == 5, ran

    trials = load_trials(settings["storage"])
    assert [trial.number for trial in trials] == list(range(5))
    assert all(trial.state in FINISHED for trial in trials)
    assert sum(bool(trial.user_attrs.get("default_recipe")) for trial in trials) == 1
    assert not (root / "models/tune").exists(), "workers write no outputs"

    # The stage finds the study full: it runs nothing, reports every worker's trial, and registers them.
    from registry import api
    from stages import tune
    from tuneforge.params import load_params

    assert tune.main(["--params", str(root / "params.yaml")]) == 0
    with open(root / "reports/tune/trials.csv", newline="") as handle:
        assert [int(row["number"]) for row in csv.DictReader(handle)] == list(range(5))
    assert json.loads((root / "reports/tune/study.json").read_text())["trials_run_by_this_process"] == 0
    registered = {artifact["name"] for artifact in api.artifacts(config=load_params(root / "params.yaml").registry)}
    assert {"tune.trials", "tune.study", "tune.summary", "tune.best_params"} <= registered


@pytest.mark.slow
def test_a_worker_killed_mid_trial_leaves_a_study_the_stage_resumes(project):
    root, base = project
    settings = tune_settings(root, n_trials=4, stale_after_s=4)
    write_params(root, base, tune=settings, train={"metric": "loss", "max_steps": 40})

    worker = stage_command(root, "--worker")
    database = root / "study" / "optuna.db"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and worker.poll() is None and not _training_after_a_finished_trial(database):
        time.sleep(0.2)
    worker.send_signal(signal.SIGKILL)
    worker.communicate()
    trials = load_trials(settings["storage"])
    before = {trial.number: (trial.state, trial.value) for trial in trials if trial.state in FINISHED}
    (cut,) = [trial.number for trial in trials if trial.state == optuna.trial.TrialState.RUNNING]
    assert 1 <= len(before) < 4

    from stages import tune

    assert tune.main(["--params", str(root / "params.yaml")]) == 0

    trials = load_trials(settings["storage"])
    finished = {trial.number: (trial.state, trial.value) for trial in trials if trial.state in FINISHED}
    assert len(finished) == 4, "the study is completed to n_trials"
    # Resumed, not restarted: the trials finished before the kill are there, unchanged.
    assert all(finished[number] == outcome for number, outcome in before.items())
    # The trial cut off by the kill stopped sending heartbeats: failed, and its slot run again.
    assert trials[cut].state == optuna.trial.TrialState.FAIL
    assert len(trials) == 5
    assert json.loads((root / "reports/metrics/tune.json").read_text())["n_failed"] == 1


def _training_after_a_finished_trial(database) -> bool:
    """A trial finished and the next one has reported an evaluation: the worker is mid-trial (read-only look)."""
    if not database.is_file():
        return False
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as connection:
            finished = connection.execute(
                "SELECT count(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED')"
            ).fetchone()[0]
            reporting = connection.execute(
                "SELECT count(*) FROM trials JOIN trial_intermediate_values USING (trial_id) WHERE state = 'RUNNING'"
            ).fetchone()[0]
    except sqlite3.OperationalError:  # tables not created yet
        return False
    return finished >= 1 and reporting >= 1
