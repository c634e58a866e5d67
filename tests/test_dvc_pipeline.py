"""End to end: `dvc repro` in a real git repo holding the project's files, on the example data.

First run: every data stage runs. Second run: nothing runs. Changed split.seed: split and augment
rerun, validate does not. DVC decides all of this from dvc.yaml; the test only reads what it did.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT

pytestmark = pytest.mark.e2e
DATA_STAGES = ["validate", "split", "augment"]


def _git(cwd: Path, *args: str) -> str:
    identity = ["-c", "user.name=tuneforge-test", "-c", "user.email=test@tuneforge.invalid"]
    return subprocess.run(["git", *identity, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def _project_files() -> list[str]:
    """What a clone would hold: tracked files plus untracked ones git does not ignore."""
    listing = _git(REPO_ROOT, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
    return [name for name in listing.split("\0") if name and (REPO_ROOT / name).is_file()]


@pytest.fixture
def project_clone(tmp_path) -> Path:
    clone = tmp_path / "clone"
    for name in _project_files():
        target = clone / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, target)
    _git(clone, "init", "-q")
    _git(clone, "add", "-A")
    _git(clone, "commit", "-q", "-m", "snapshot")
    return clone


def dvc(clone: Path, *args: str) -> str:
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
    env.pop("TUNEFORGE_RUN_ID", None)
    result = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=clone, env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def stages_run(output: str) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", output)


def test_dvc_repro_runs_skips_and_reruns_only_what_changed(project_clone):
    first = dvc(project_clone, "repro", *DATA_STAGES)
    assert stages_run(first) == DATA_STAGES
    for path in ("data/validated/train.parquet", "data/splits/val.parquet", "data/augmented/train.parquet",
                 "reports/split/val_vs_train.html", "reports/augment/augmented_vs_original.json"):
        assert (project_clone / path).is_file(), path
    assert "Data and pipelines are up to date" in dvc(project_clone, "status", *DATA_STAGES)

    second = dvc(project_clone, "repro", *DATA_STAGES)
    assert stages_run(second) == []

    validated_before = (project_clone / "data/validated/train.parquet").read_bytes()
    val_before = (project_clone / "data/splits/val.parquet").read_bytes()
    params = project_clone / "params.yaml"
    params.write_text(params.read_text().replace("seed: 42", "seed: 7"))
    third = dvc(project_clone, "repro", *DATA_STAGES)
    assert stages_run(third) == ["split", "augment"]
    assert (project_clone / "data/validated/train.parquet").read_bytes() == validated_before
    assert (project_clone / "data/splits/val.parquet").read_bytes() != val_before, "a new seed, a new split"
