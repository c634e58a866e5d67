"""Crash safety: a run killed with SIGKILL mid-training resumes from its last checkpoint on the next run and
ends where an uninterrupted run with the same seed ends.

Tolerance: the resumed run restores weights, optimizer, scheduler, RNG states and the data order, so on
the same CPU it reproduces the uninterrupted run; we allow 1e-5 on the val loss (float summation order
is the only thing that may differ) and require the same best step and val accuracy.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers.training import params_yaml, run_train, tiny_train, write_classification_data
from tuneforge.training.checkpoints import MARKER

pytestmark = pytest.mark.usefixtures("one_thread")

SETTINGS = dict(max_steps=40, eval_steps=5, keep_checkpoints=2, dropout=0.1)
VAL_LOSS_TOLERANCE = 1e-5


def start_stage(root):
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")  # as the in-process reference run
    return subprocess.Popen(
        [sys.executable, "-m", "stages.train", "--params", "params.yaml"], cwd=root, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def wait_for_checkpoint(process, checkpoints, step: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not (checkpoints / f"checkpoint-{step}" / MARKER).is_file():
        assert process.poll() is None, f"the stage ended before checkpoint {step}:\n{process.stdout.read()}"
        assert time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.01)


def test_sigkill_then_rerun_resumes_and_matches_an_uninterrupted_run(tmp_path, tiny_bert):
    reference_root = write_classification_data(tmp_path / "reference")
    run_train(reference_root, tiny_bert, tiny_train(**SETTINGS))
    reference = json.loads((reference_root / "models/teacher/meta.json").read_text())

    root = write_classification_data(tmp_path / "killed")
    params_yaml(root, tiny_bert, **SETTINGS)
    checkpoints = root / "models/.checkpoints/teacher"
    process = start_stage(root)
    wait_for_checkpoint(process, checkpoints, 10)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert not (root / "models/teacher").exists(), "killed before it finished: no model directory"
    left = sorted(p.name for p in checkpoints.iterdir() if p.name.startswith("checkpoint-"))
    assert left, "the checkpoints survive the kill"
    last_step = max(int(name.split("-")[1]) for name in left if (checkpoints / name / MARKER).is_file())
    assert 10 <= last_step < 40

    rerun = start_stage(root)
    output, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, output
    assert "resuming from" in output and f"checkpoint-{last_step}" in output
    resumed = json.loads((root / "models/teacher/meta.json").read_text())

    assert resumed["resumed_from"].endswith(f"checkpoint-{last_step}")
    assert resumed["global_step"] == reference["global_step"] == 40
    assert resumed["best"]["step"] == reference["best"]["step"]
    final, expected = resumed["history"][-1], reference["history"][-1]
    assert final["step"] == expected["step"] == 40
    assert final["val_loss"] == pytest.approx(expected["val_loss"], abs=VAL_LOSS_TOLERANCE)
    assert final["val_accuracy"] == expected["val_accuracy"]
    assert [row["step"] for row in resumed["history"]] == [row["step"] for row in reference["history"]]
    assert not checkpoints.exists(), "a successful run drops its checkpoints"


def test_a_checkpoint_cut_short_by_a_crash_is_discarded_not_resumed(tmp_path):
    from tuneforge.training.checkpoints import resume_point

    directory = tmp_path / "checkpoints"
    complete, partial = directory / "checkpoint-5", directory / "checkpoint-10"
    complete.mkdir(parents=True)
    partial.mkdir()
    (complete / MARKER).write_text(json.dumps({"config_hash": "abc", "step": 5}))
    assert resume_point(directory, "abc") == complete
    assert not partial.exists()
    assert resume_point(tmp_path / "none", "abc") is None
