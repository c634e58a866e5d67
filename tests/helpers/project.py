"""The project as tests see it: its root, a committed copy of it in a temporary git repo, DVC run there, a fast
spec on a tiny model, and small data builders."""

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.helpers.tiny_models import build_tiny_bert_with_minilm_tokenizer

REPO_ROOT = Path(__file__).resolve().parents[2]
BANKING77 = REPO_ROOT.parent / "shared" / "datasets" / "banking77"


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
        # nor hold int8 parity on macro-F1: at a few percent, one row more or less moves it by points (the gate
        # itself is tested in tests/stages/test_export.py)
        "export.max_f1_drop=100",
    ])
    git(clone, "commit", "-q", "-am", "fast spec for tests")
    return clone

