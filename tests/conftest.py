"""Shared test setup: no network, no analytics, Prefect state in a temporary home, small data builders."""

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.tiny_models import build_tiny_bert_with_minilm_tokenizer  # noqa: F401 - tests import it from here

REPO_ROOT = Path(__file__).resolve().parents[1]
BANKING77 = REPO_ROOT.parent / "shared" / "datasets" / "banking77"

pytest_plugins = ["train_support"]  # tiny_bert and one_thread fixtures for the training tests

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


def write_csv(path: Path, rows: list[dict], fieldnames: list[str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames or list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def labelled_rows(classes: int = 4, per_class: int = 30, prefix: str = "") -> list[dict]:
    """Distinct, realistic-looking texts: every class shares words with the others."""
    subjects = ["my card", "the transfer", "my account", "the payment", "this app", "my refund"]
    verbs = ["is stuck", "was declined", "shows twice", "has not arrived", "keeps failing", "looks wrong"]
    rows = []
    for label in range(classes):
        for i in range(per_class):
            text = f"{prefix}{subjects[i % 6]} {verbs[(i // 6 + label) % 6]} since {label}-{i} days"
            rows.append({"text": text, "label": f"class_{label}"})
    return rows


@pytest.fixture
def banking77() -> Path:
    if not (BANKING77 / "train.csv").is_file():
        pytest.skip("../shared/datasets/banking77 is not beside the repo")
    return BANKING77


def git(cwd: Path, *args: str) -> str:
    identity = ["-c", "user.name=tuneforge-test", "-c", "user.email=test@tuneforge.invalid"]
    return subprocess.run(["git", *identity, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def _project_files() -> list[str]:
    """What a clone would hold: tracked files plus untracked ones git does not ignore."""
    listing = git(REPO_ROOT, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
    return [name for name in listing.split("\0") if name and (REPO_ROOT / name).is_file()]


def copy_project(clone: Path) -> Path:
    """The project's files (as a clone of the working tree would hold them) in `clone`, committed to git."""
    for name in _project_files():
        target = clone / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, target)
    git(clone, "init", "-q")
    git(clone, "add", "-A")
    git(clone, "commit", "-q", "-m", "snapshot")
    return clone


@pytest.fixture
def project_clone(tmp_path) -> Path:
    return copy_project(tmp_path / "clone")


def dvc_environment() -> dict[str, str]:
    """This interpreter's python first on PATH (stages run as `python -m`), outside any declared run."""
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
    env.pop("TUNEFORGE_RUN_ID", None)
    env.pop("TUNEFORGE_RUN_PARAMETERS", None)
    return env


def dvc(clone: Path, *args: str) -> str:
    """Run DVC in `clone` (see dvc_environment); fails the test with DVC's output if it fails."""
    result = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=clone, env=dvc_environment(), capture_output=True, text=True,
        timeout=900,
    )
    assert result.returncode == 0, f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def use_fast_spec(clone: Path, model_dir: Path) -> Path:
    """Switch the clone's spec to a tiny model (built in `model_dir`) and a few steps, and commit it."""
    from tuneforge.params.overrides import apply_to_params_file

    base = build_tiny_bert_with_minilm_tokenizer(model_dir)
    apply_to_params_file(clone / "params.yaml", [
        f"model.base={base}", "train.max_steps=6", "train.eval_steps=3", "train.batch_size=16",
        "distill.max_steps=6", "export.benchmark_runs=5", "export.benchmark_warmup=1",
        "promotion.min_metrics={}",  # a random tiny model cannot reach a real quality bar
    ])
    git(clone, "commit", "-q", "-am", "fast spec for tests")
    return clone


@pytest.fixture
def fast_project_clone(project_clone, tmp_path_factory) -> Path:
    """The project clone with its spec switched to a tiny model and a few steps, committed."""
    return use_fast_spec(project_clone, tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="module")
def module_fast_project_clone(tmp_path_factory) -> Path:
    """fast_project_clone shared by a module's tests (for modules that build the whole pipeline once)."""
    clone = copy_project(tmp_path_factory.mktemp("module-clone") / "clone")
    return use_fast_spec(clone, tmp_path_factory.mktemp("tiny-bert"))
