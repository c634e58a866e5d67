"""Run one of configs/*.yaml as a whole pipeline in a fresh clone of this repository, timed, and keep the clone.

Shared by the benchmarks that judge a recipe's quality (run_all.py for banking77, goemotions.py, open_set.py):
each clones the committed HEAD, runs `tuneforge run --config ...` there with the data read in place, and records
the command, exit code, wall and CPU seconds in the clone's .tuneforge/recipe_run.json, where the reports read
the run's cost from.
"""

import datetime
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RECIPE_RECORD = Path(".tuneforge") / "recipe_run.json"


def benchmark_environment() -> dict[str, str]:
    """This interpreter first on PATH (DVC runs `python -m stages.X`), this checkout first on PYTHONPATH."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", DVC_NO_ANALYTICS="1", TOKENIZERS_PARALLELISM="false",
               GX_ANALYTICS_ENABLED="false", PREFECT_SERVER_ANALYTICS_ENABLED="false")
    return env


def clone_repository(prefix: str) -> Path:
    """A fresh clone of this repository's committed HEAD in a new temporary folder."""
    clone = Path(tempfile.mkdtemp(prefix=prefix)) / "repo"
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True)
    return clone


def run_recipe(clone: Path, config: str, overrides: list[str], who: str, targets: tuple[str, ...] = ()) -> dict:
    """Run `tuneforge run [TARGETS] --config CONFIG --set ...` in CLONE (every stage, or those the targets need);
    record and return its cost (exit code included)."""
    command = [sys.executable, "-m", "tuneforge.cli", "run", *targets, "--config", config]
    for override in overrides:
        command += ["--set", override]
    print(f"{who}: running {shlex.join(command[1:])} in {clone}", flush=True)
    env = benchmark_environment()
    env["PYTHONPATH"] = str(clone)
    before, began = os.times(), time.perf_counter()
    done = subprocess.run(command, cwd=clone, env=env)
    after = os.times()
    record = {
        "command": shlex.join(["python", *command[1:]]), "returncode": done.returncode,
        "wall_seconds": round(time.perf_counter() - began, 1),
        # CPU time of the recipe's whole process tree (DVC and every stage), as the kernel accounted it.
        "cpu_seconds": round((after.children_user - before.children_user)
                             + (after.children_system - before.children_system), 1),
        "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    (clone / RECIPE_RECORD).parent.mkdir(exist_ok=True)
    (clone / RECIPE_RECORD).write_text(json.dumps(record, indent=2))
    return record


def read_json(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
