"""The `tuneforge` command line: spec checks, stage dispatch, and refusal of bad overrides before anything runs."""

import shutil

import pytest
from typer.testing import CliRunner

from tests.helpers.project import REPO_ROOT
from tuneforge.cli import app, pipeline_stages

runner = CliRunner()


@pytest.fixture
def repo_copy(in_tmp_dir):
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy(REPO_ROOT / name, in_tmp_dir / name)
    return in_tmp_dir


def test_stage_order_comes_from_dvc_yaml(repo_copy):
    assert pipeline_stages()[:3] == ["validate", "split", "augment"]


def test_params_check_accepts_shipped_spec(repo_copy):
    result = runner.invoke(app, ["params", "--check"])
    assert result.exit_code == 0, result.output
    assert "params.yaml: valid" in result.output


def test_params_lists_every_key_with_its_meaning(repo_copy):
    result = runner.invoke(app, ["params"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for key in ("data.train_file", "split.val_fraction", "augment.word_swap", "validate.max_duplicate_share"):
        assert key in result.output


def test_params_check_names_the_bad_key(repo_copy):
    (repo_copy / "params.yaml").write_text("split:\n  test_fraction: 1.5\n")
    result = runner.invoke(app, ["params", "--check"])
    assert result.exit_code == 2
    assert "split.test_fraction: must be in (0, 1), got 1.5" in result.output
    assert "Traceback" not in result.output


def test_unknown_stage_lists_the_real_ones(repo_copy):
    result = runner.invoke(app, ["stage", "../evil"])
    assert result.exit_code == 2
    assert "unknown stage '../evil'; dvc.yaml has: validate, split, augment" in result.output


def test_run_refuses_an_invalid_override_and_leaves_params_untouched(repo_copy):
    before = (repo_copy / "params.yaml").read_bytes()
    result = runner.invoke(app, ["run", "--set", "split.seed=abc"])
    assert result.exit_code == 2
    assert "split.seed: must be a valid integer, got 'abc'" in result.output
    assert (repo_copy / "params.yaml").read_bytes() == before


def test_run_outside_a_repository_says_so(in_tmp_dir):
    (in_tmp_dir / "params.yaml").write_text("{}\n")
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 1
    assert "dvc.yaml: not found; run tuneforge from the repository root" in result.output


def test_run_refuses_a_missing_data_folder_before_dvc_starts(repo_copy):
    before = (repo_copy / "params.yaml").read_bytes()
    result = runner.invoke(app, ["run", "--set", "data.dir=nowhere"])
    assert result.exit_code == 1
    assert "data.dir: folder not found: nowhere" in result.output
    assert (repo_copy / "params.yaml").read_bytes() == before
