"""tuneforge.orchestration.stop: the Prefect server and worker never outlive `tuneforge serve` or a test, nor leave the
processes they started behind (real processes, no Prefect needed)."""

import subprocess
import time
from pathlib import Path

from tuneforge.orchestration import stop


def alive(pid: int) -> bool:
    """Running, not a zombie: an orphan's exit is reaped by init, which may take its time."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def start_group(script: str, pid_file) -> tuple[subprocess.Popen, int]:
    """A shell leading its own group with one background child, whose pid it writes to pid_file."""
    leader = subprocess.Popen(["bash", "-c", script.format(pid_file=pid_file)], start_new_session=True)
    for _ in range(100):
        if pid_file.is_file() and pid_file.read_text().strip():
            return leader, int(pid_file.read_text())
        time.sleep(0.05)
    raise TimeoutError("the child's pid was not written")


def test_a_leader_that_ignores_sigterm_is_killed_after_the_grace_period_with_its_child(tmp_path):
    leader, child = start_group("trap '' TERM; sleep 300 & echo $! > {pid_file}; wait", tmp_path / "pid")
    began = time.monotonic()
    stop(leader, grace_s=1.0)
    assert 1.0 <= time.monotonic() - began < 10
    assert leader.returncode == -9
    time.sleep(0.2)
    assert not alive(child), "the child in the group was killed too"


def test_a_child_that_outlives_its_leader_is_not_left_behind(tmp_path):
    # The leader exits on SIGTERM at once; its child ignores SIGTERM (like a flow run still shutting down).
    leader, child = start_group("(trap '' TERM; sleep 300) & echo $! > {pid_file}; wait", tmp_path / "pid")
    began = time.monotonic()
    stop(leader, grace_s=30.0)
    assert time.monotonic() - began < 10, "no grace period spent once the leader has exited"
    time.sleep(0.2)
    assert not alive(child)
