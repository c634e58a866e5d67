"""A real local Prefect server: deploy prefect.yaml, start a process worker, trigger `finetune`, see it complete."""

import asyncio
import socket
import subprocess

import pytest
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings

from tuneforge.serve import deploy_all, local_server, serving_environment, start_worker

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def wait_for_final_state(flow_run_id: str, timeout_s: float = 600):
    async with get_client() as client:
        for _ in range(int(timeout_s)):
            run = await client.read_flow_run(flow_run_id)
            if run.state and run.state.is_final():
                return run
            await asyncio.sleep(1)
    raise TimeoutError(f"flow run {flow_run_id} did not finish in {timeout_s} s")


def test_deployment_runs_on_a_local_server_and_worker(fast_project_clone, tmp_path):
    port = free_port()
    env = serving_environment(fast_project_clone, port)
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    env["PREFECT_WORKER_QUERY_SECONDS"] = "1"
    with local_server(env, port, log=tmp_path / "server.log"):
        deploy_all(fast_project_clone, env)
        worker_log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 - the worker outlives this line
        worker = start_worker(fast_project_clone, env, stdout=worker_log, stderr=subprocess.STDOUT)
        try:
            with temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"]}):
                flow_run = run_deployment("finetune/finetune", timeout=0)
                run = asyncio.run(wait_for_final_state(flow_run.id))
        finally:
            worker.terminate()
            worker.wait(timeout=30)
    assert run.state.is_completed(), f"{run.state}\n{(tmp_path / 'worker.log').read_text()[-3000:]}"
    assert (fast_project_clone / "dvc.lock").is_file()
    assert (fast_project_clone / "data" / "augmented" / "train.parquet").is_file()
