"""Shared test setup: no network, no analytics, Prefect state in a temporary home, small data builders."""

import os
from pathlib import Path

import pytest

from tests.helpers.project import BANKING77, copy_project, use_fast_spec

# tiny_bert and one_thread (training tests), registry_config (SQLite, and PostgreSQL when configured)
pytest_plugins = ["tests.helpers.training", "tests.helpers.registry_fixtures"]

os.environ.update(
    HF_HUB_OFFLINE="1",
    TRANSFORMERS_OFFLINE="1",
    DVC_NO_ANALYTICS="1",
    GX_ANALYTICS_ENABLED="false",
    PREFECT_SERVER_ANALYTICS_ENABLED="false",
    TOKENIZERS_PARALLELISM="false",
)


@pytest.fixture(autouse=True)
def _isolated_prefect_home(tmp_path_factory, monkeypatch):
    # Prefect keeps its database and task cache under PREFECT_HOME: never share it between tests.
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path_factory.mktemp("prefect-home")))


@pytest.fixture
def in_tmp_dir(tmp_path, monkeypatch) -> Path:
    """Run the test inside an empty directory, as a stage runs inside the repo root."""
    monkeypatch.chdir(tmp_path)
    return tmp_path






@pytest.fixture
def banking77() -> Path:
    if not (BANKING77 / "train.csv").is_file():
        pytest.skip("../shared/datasets/banking77 is not beside the repo")
    return BANKING77








@pytest.fixture
def project_clone(tmp_path) -> Path:
    return copy_project(tmp_path / "clone")








@pytest.fixture
def fast_project_clone(project_clone, tmp_path_factory) -> Path:
    """The project clone with its spec switched to a tiny model and a few steps, committed."""
    return use_fast_spec(project_clone, tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="module")
def module_fast_project_clone(tmp_path_factory) -> Path:
    """fast_project_clone shared by a module's tests (for modules that build the whole pipeline once)."""
    clone = copy_project(tmp_path_factory.mktemp("module-clone") / "clone")
    return use_fast_spec(clone, tmp_path_factory.mktemp("tiny-bert"))
