"""One run at a time per checkout (issue #18): two real `tuneforge` processes in one checkout.

Before, `tuneforge run --set promotion.min_improvement=0.002 &` and, seconds later, the same with 0.003 raced:
the first run's gates used 0.002 while params.yaml and dvc.lock said 0.003 and `dvc status` was clean.
Now the first run holds .tuneforge/run.lock from writing params.yaml to its last stage, and the second
`tuneforge run`, a `tuneforge stage` and the finetune flow are refused with one line naming its pid.

The project here is a tiny DVC repo whose one stage records the value it read and then waits, on a FIFO,
until the test lets it finish: the first run is certainly inside its pipeline when the others start.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flows.finetune import finetune
from tests.helpers.project import REPO_ROOT, dvc, dvc_environment
from tuneforge.base.errors import StageError
from tuneforge.pipeline.run_lock import checkout_lock

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
TUNEFORGE = str(Path(sys.executable).parent / "tuneforge")

# The stage: what the gates would use (params.yaml as the stage reads it), then wait to be let go.
GATE = """\
import sys, yaml
value = yaml.safe_load(open("params.yaml"))["promotion"]["min_improvement"]
open("used.txt", "w").write(f"{value}\\n")
print("gate: holding", flush=True)
open("go.fifo").read()
"""


@pytest.fixture
def project(tmp_path) -> Path:
    shutil.copy(REPO_ROOT / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "intents.csv").write_text("text,label\n")  # data.train_file must exist
    (tmp_path / "gate.py").write_text(GATE)
    stage = {"cmd": "python gate.py", "deps": ["gate.py"], "params": ["promotion.min_improvement"],
             "outs": ["used.txt"]}
    # Named after a real stage, so that `tuneforge stage validate` is a command the CLI knows.
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"validate": stage}}))
    os.mkfifo(tmp_path / "go.fifo")
    dvc(tmp_path, "init", "--no-scm", "-q")
    return tmp_path


def tuneforge(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([TUNEFORGE, *args], cwd=project, env=dvc_environment(), capture_output=True, text=True,
                          timeout=300)


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]


def min_improvement(path: Path) -> float:
    return yaml.safe_load(path.read_text())["promotion"]["min_improvement"]


def test_a_second_run_in_the_same_checkout_is_refused_while_the_first_holds_it(project):
    first = subprocess.Popen(
        [TUNEFORGE, "run", "--set", "promotion.min_improvement=0.002"], cwd=project, env=dvc_environment(),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        for line in first.stdout:  # DVC passes the stage's output through
            if line.startswith("gate: holding"):
                break
        else:
            pytest.fail(f"the first run ended before its stage ran (exit {first.wait()})")
        holder = f"(`tuneforge run --set promotion.min_improvement=0.002`, pid {first.pid}, since "

        second = tuneforge(project, "run", "--set", "promotion.min_improvement=0.003")
        assert second.returncode == 1
        [line] = error_lines(second)
        assert line.startswith(f"error: another run is using this checkout {holder}")
        assert line.endswith("wait for it to finish, or use another clone (lock: .tuneforge/run.lock)")
        assert min_improvement(project / "params.yaml") == 0.002, "the refused run wrote nothing"

        stage = tuneforge(project, "stage", "validate")
        assert stage.returncode == 1
        [line] = error_lines(stage)
        assert line.startswith(f"error: another run is using this checkout {holder}")

        busy = rf"^another run is using this checkout \(`tuneforge run .*pid {first.pid}, since "
        with pytest.raises(ValueError, match=busy):
            finetune.fn(overrides=["promotion.min_improvement=0.004"], repo=str(project))
        assert min_improvement(project / "params.yaml") == 0.002

        with open(project / "go.fifo", "w") as go:
            go.write("go\n")
        rest = first.stdout.read()
        assert first.wait(timeout=300) == 0, rest
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    # What the stage used is what params.yaml and dvc.lock say, and DVC agrees nothing is stale.
    assert (project / "used.txt").read_text() == "0.002\n"
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert lock["stages"]["validate"]["params"]["params.yaml"]["promotion.min_improvement"] == 0.002
    assert "up to date" in dvc(project, "status") or dvc(project, "status").strip() == ""
    assert not (project / ".tuneforge" / "run.holder.json").exists()


def test_the_lock_is_free_again_once_its_holder_is_killed(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom tuneforge.pipeline.run_lock import checkout_lock\n"
         "with checkout_lock(sys.argv[1], 'tuneforge run'):\n    print('held', flush=True); sys.stdin.read()",
         str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(StageError, match=rf"\(`tuneforge run`, pid {holder.pid}, since "), checkout_lock(tmp_path):
            pass
        recorded = json.loads((tmp_path / ".tuneforge" / "run.holder.json").read_text())
        assert recorded["pid"] == holder.pid
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The kernel dropped the flock with the process: no stale lock to remove by hand.
    with checkout_lock(tmp_path, "next run"):
        assert json.loads((tmp_path / ".tuneforge" / "run.holder.json").read_text())["pid"] == os.getpid()
