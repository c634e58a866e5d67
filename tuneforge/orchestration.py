"""`tuneforge serve`: a local Prefect server, the process work pool, the deployments of prefect.yaml, a worker.

Everything goes through the `prefect` command line, so that flows/ stays the only code importing prefect.
"""

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

WORK_POOL = "tuneforge-process"


def prefect_command(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "prefect"), *args]


def serving_environment(repo: Path, port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        TUNEFORGE_REPO=str(repo.resolve()),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
    )
    return env


def wait_until_healthy(api_url: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"Prefect server at {api_url} did not become healthy within {timeout_s:.0f} s")


@contextmanager
def local_server(env: dict[str, str], port: int, log: Path | None = None):
    """A `prefect server start` process for the duration of the block."""
    output = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        prefect_command("server", "start", "--host", "127.0.0.1", "--port", str(port)),
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until_healthy(env["PREFECT_API_URL"])
        yield server
    finally:
        stop(server)
        if log:
            output.close()


def deploy_all(repo: Path, env: dict[str, str]) -> None:
    """Create the process work pool (idempotent) and deploy every deployment of prefect.yaml."""
    subprocess.run(
        prefect_command("work-pool", "create", WORK_POOL, "--type", "process", "--overwrite"),
        cwd=repo, env=env, check=True, capture_output=True, text=True,
    )
    subprocess.run(
        prefect_command("--no-prompt", "deploy", "--all"),
        cwd=repo, env=env, check=True, capture_output=True, text=True,
    )


def start_worker(repo: Path, env: dict[str, str], **popen) -> subprocess.Popen:
    # Its own process group, so that stop() also ends the flow runs the worker started.
    return subprocess.Popen(
        prefect_command("worker", "start", "--pool", WORK_POOL, "--type", "process"), cwd=repo, env=env,
        start_new_session=True, **popen,
    )


def stop(process: subprocess.Popen, grace_s: float = 30.0) -> None:
    """SIGTERM to the process's group; SIGKILL to whatever of the group is left once the leader has exited or
    `grace_s` has passed.

    A worker on a loaded machine can take longer than any fixed grace period to shut down; it must never
    outlive the command that started it, nor leave its flow-run processes behind.
    """
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    _signal_group(process, signal.SIGKILL)
    process.wait()


def _signal_group(process: subprocess.Popen, sent: signal.Signals) -> None:
    try:
        os.killpg(process.pid, sent)
    except ProcessLookupError:  # every process of the group has exited
        pass
