"""Bad input to the tune stage: one line naming the key, a non-zero exit, no traceback, outputs unchanged.

Each case starts from the outputs of an earlier (disabled) run and checks they are byte for byte the same
afterwards, and that a spec refused before the search opens no study database.
"""

import socket
import subprocess
import sys

import pytest

from stages import train, tune
from tests.helpers.project import REPO_ROOT
from tests.helpers.training import tiny_model, tiny_train
from tests.helpers.tuning import make_project, tune_settings, write_params
from tuneforge.base.layout import Workspace

pytestmark = [pytest.mark.filterwarnings("ignore"), pytest.mark.usefixtures("one_thread")]
OUTPUTS = ("models/tune/best_params.yaml", "reports/tune/study.json", "reports/tune/trials.csv",
           "reports/metrics/tune.json")


@pytest.fixture
def project(in_tmp_dir):
    root = in_tmp_dir
    base = make_project(root)
    write_params(root, base, tune=tune_settings(root, enabled=False))
    assert tune.main(["--params", str(root / "params.yaml")]) == 0
    return root, base


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def refused(root, base, capsys, *, tune_overrides=None, train=None) -> tuple[int, str]:
    before = {name: (root / name).read_bytes() for name in OUTPUTS}
    settings = tune_settings(root, **(tune_overrides or {}))
    write_params(root, base, tune=settings, train={"metric": "loss", **(train or {})})
    capsys.readouterr()
    code = tune.main(["--params", str(root / "params.yaml")])
    err = capsys.readouterr().err
    assert {name: (root / name).read_bytes() for name in OUTPUTS} == before, "outputs changed"
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return code, lines[0]


@pytest.mark.parametrize(
    "overrides, code, expected",
    [
        (
            {"space": {"learning_rate": {"type": "float", "low": 1e-3, "high": 1e-5, "log": True}}}, 2,
            "params.yaml: tune.space.learning_rate: empty range: low (0.001) must be below high (1e-05)",
        ),
        (
            {"space": {"batch_size": {"type": "categorical", "choices": []}}}, 2,
            "params.yaml: tune.space.batch_size: empty choices: give at least one value",
        ),
        (
            {"space": {"learning_rte": {"type": "float", "low": 1e-5, "high": 1e-3}}}, 2,
            "params.yaml: tune.space: unknown parameter 'learning_rte' (tunable: learning_rate, lr_scheduler,",
        ),
        ({"sampler": "bayesian"}, 2, "params.yaml: tune.sampler: must be 'grid', 'random' or 'tpe', got 'bayesian'"),
        ({"pruner": "asha"}, 2, "params.yaml: tune.pruner: must be 'none', 'median' or 'hyperband', got 'asha'"),
        (
            {"sampler": "grid", "include_defaults": False}, 2,
            "params.yaml: tune: space.learning_rate: the grid sampler needs a finite set of values: give a step",
        ),
        ({"storage": "mysql://db/x"}, 2, "params.yaml: tune.storage: must be sqlite:///<file> or postgresql"),
    ],
    ids=["empty-range", "empty-choices", "unknown-name", "unknown-sampler", "unknown-pruner", "grid-continuous",
         "storage-kind"],
)
def test_a_bad_spec_is_refused_in_one_line(project, capsys, overrides, code, expected):
    root, base = project
    exit_code, line = refused(root, base, capsys, tune_overrides=overrides)
    assert exit_code == code
    assert line.startswith(f"tune: error: {root / 'params.yaml'}: {expected.removeprefix('params.yaml: ')}"), line
    assert not (root / "study").exists(), "no study database is created"


@pytest.mark.parametrize(
    "overrides, train_overrides, expected",
    [
        (
            {"space": {"peft.r": {"type": "categorical", "choices": [4, 8]}}}, {},
            "tune.space.peft.r: train.method is full; peft keys apply to methods lora and peft only",
        ),
        (
            {"space": {"lr_scheduler": {"type": "categorical", "choices": ["linear", "triangular"]}}}, {},
            "tune.space.lr_scheduler.choices[1]: 'triangular' is refused by the train section (train.lr_scheduler:",
        ),
        (
            {"space": {"warmup_ratio": {"type": "float", "low": 0.0, "high": 1.5}}}, {},
            "tune.space.warmup_ratio.high: 1.5 is refused by the train section (train.warmup_ratio: must be in [0, 1)",
        ),
        (
            {"space": {"epochs": {"type": "int", "low": 1, "high": 4}}}, {},
            "tune.space.epochs: has no effect while trials run a fixed max_steps (20",
        ),
        (
            {"space": {"batch_size": {"type": "categorical", "choices": [8, 64]}}}, {},
            "tune.include_defaults: train.batch_size is 16, not among tune.space.batch_size.choices [8, 64]",
        ),
        ({"metric": "perplexity"}, {}, "tune.metric: perplexity does not apply to model.task sequence-classification"),
    ],
    ids=["peft-key-full-method", "bad-choice", "bad-bound", "epochs-with-max-steps", "default-not-a-choice", "metric"],
)
def test_a_space_the_train_section_cannot_take_is_refused(project, capsys, overrides, train_overrides, expected):
    root, base = project
    exit_code, line = refused(root, base, capsys, tune_overrides=overrides, train=train_overrides)
    assert exit_code == 2
    assert line.startswith(f"tune: error: {expected}"), line
    assert not (root / "study").exists()


def test_an_unreachable_postgresql_study_is_one_line_with_the_password_masked(project, capsys):
    root, base = project
    url = f"postgresql+psycopg://someone:s3cret@127.0.0.1:{_closed_port()}/studies"
    exit_code, line = refused(root, base, capsys, tune_overrides={"storage": url, "connect_timeout_s": 2})
    assert exit_code == 1
    assert line.startswith("tune: error: tune.storage: cannot open the study database postgresql+psycopg://someone:***@")
    assert "s3cret" not in line


def test_a_sqlite_study_in_a_folder_that_cannot_be_made_is_one_line(project, capsys):
    root, base = project
    (root / "not-a-folder").write_text("a file")
    url = f"sqlite:///{root / 'not-a-folder' / 'optuna.db'}"
    exit_code, line = refused(root, base, capsys, tune_overrides={"storage": url})
    assert exit_code == 1
    assert line.startswith(f"tune: error: tune.storage: cannot create the folder {root / 'not-a-folder'}"), line


def test_a_named_study_made_for_another_spec_is_not_resumed(project, capsys):
    root, base = project
    settings = {"study_name": "shared", "n_trials": 1, "pruner": "none"}
    write_params(root, base, tune=tune_settings(root, **settings), train={"metric": "loss"})
    assert tune.main(["--params", str(root / "params.yaml")]) == 0

    exit_code, line = refused(root, base, capsys, tune_overrides=settings, train={"learning_rate": 1e-3})
    assert exit_code == 2
    assert line.startswith("tune: error: tune.study_name: study 'shared' in sqlite:///"), line
    assert "was made for another spec" in line


def test_use_tuned_without_a_search_is_refused(project, capsys):
    root, base = project
    (root / "models/tune/best_params.yaml").unlink()
    with pytest.raises(train.ConfigError, match=r"train.use_tuned: .*best_params.yaml not found; run the tune stage"):
        train.run(tiny_model(base), tiny_train(use_tuned=True), workspace=Workspace(root))
    assert not (root / "models/teacher").exists()


def test_the_command_itself_exits_with_one_line(project):
    root, base = project
    write_params(root, base, tune=tune_settings(root, sampler="bayesian"))
    result = subprocess.run(
        [sys.executable, "-m", "stages.tune"], cwd=root, capture_output=True, text=True,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"}, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "tune: error: params.yaml: tune.sampler: must be 'grid', 'random' or 'tpe', got 'bayesian'"
    )


def test_a_worker_of_a_disabled_search_is_refused(project):
    from typer.testing import CliRunner

    from tuneforge.cli import app

    root, _ = project
    result = CliRunner().invoke(app, ["tune-worker", "--params", str(root / "params.yaml")])
    assert result.exit_code == 2
    assert "tune: error: tune.enabled: false; a worker has no search to join" in result.output
