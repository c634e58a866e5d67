"""A real local Prefect server: deploy prefect.yaml, start a process worker, and run both deployments.

`finetune` completes and the registry holds the version it registered (promoted to production); then
`drift-monitor` on held-out rows of the same source triggers nothing, while on shifted labelled data it
triggers a `finetune` run on the merged data, which the worker runs to completion: a second version.
"""

import asyncio
import contextlib
import socket
import subprocess

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings

from registry import api
from tests.helpers.monitor import one_thread, write_batches
from tests.helpers.project import copy_project, use_fast_spec
from tuneforge.orchestration import deploy_all, local_server, serving_environment, start_worker, stop
from tuneforge.params import load_params

pytestmark = pytest.mark.e2e
RUN_TIMEOUT_S = 900  # a whole pipeline on the tiny model, on a loaded 2-core box


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def wait_for_final_state(flow_run_id, timeout_s: float = RUN_TIMEOUT_S):
    async with get_client() as client:
        for _ in range(int(timeout_s)):
            run = await client.read_flow_run(flow_run_id)
            if run.state and run.state.is_final():
                return run
            await asyncio.sleep(1)
    raise TimeoutError(f"flow run {flow_run_id} did not finish in {timeout_s} s")


def run_and_wait(deployment: str, parameters: dict):
    flow_run = run_deployment(deployment, parameters=parameters, timeout=0)
    return asyncio.run(wait_for_final_state(flow_run.id))


def finetune_runs() -> list:
    async def read():
        async with get_client() as client:
            return await client.read_flow_runs(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["finetune"]))
            )

    # The weekly schedule adds future runs of its own: only runs someone triggered count here.
    return sorted((run for run in asyncio.run(read()) if not run.auto_scheduled), key=lambda run: run.created)


def model_versions(repo) -> list[int]:
    with contextlib.chdir(repo):
        return [info.version for info in api.versions("intents", config=load_params("params.yaml").registry)]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The project (fast spec: tiny model, few steps) served by a real Prefect server and a process worker."""
    root = tmp_path_factory.mktemp("served")
    repo = use_fast_spec(copy_project(root / "clone"), root / "tiny-bert")
    port = free_port()
    env = serving_environment(repo, port)
    env.update(PREFECT_HOME=str(root / "prefect-home"), PREFECT_WORKER_QUERY_SECONDS="1", OMP_NUM_THREADS="1")
    with one_thread(), local_server(env, port, log=root / "server.log"):
        deploy_all(repo, env)
        worker_log = open(root / "worker.log", "w")  # noqa: SIM115 - the worker outlives this line
        worker = start_worker(repo, env, stdout=worker_log, stderr=subprocess.STDOUT)
        try:
            with temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"]}):
                yield repo, root / "worker.log"
        finally:
            stop(worker)
            worker_log.close()


@pytest.fixture(scope="module")
def first_finetune(served):
    repo, worker_log = served
    run = run_and_wait("finetune/finetune", {"overrides": ["promotion.promote_to=production"]})
    assert run.state.is_completed(), f"{run.state}\n{worker_log.read_text()[-3000:]}"
    write_batches(repo, repo / "batches")  # held-out rows come from the splits this run wrote
    return run


def test_finetune_deployment_completes_and_registers_a_version(served, first_finetune):
    repo, _ = served
    assert (repo / "dvc.lock").is_file()
    assert (repo / "data" / "augmented" / "train.parquet").is_file()
    assert model_versions(repo) == [1]
    with contextlib.chdir(repo):
        production = api.show("intents@production", config=load_params("params.yaml").registry)
    assert production["version"] == 1


def test_drift_monitor_retrains_on_shifted_data_only(served, first_finetune):
    repo, worker_log = served
    held_out = run_and_wait("drift-monitor/drift-monitor", {"new_data": "batches/in_distribution.csv"})
    assert held_out.state.is_completed(), f"{held_out.state}\n{worker_log.read_text()[-3000:]}"
    assert [run.id for run in finetune_runs()] == [first_finetune.id], "no drift, no retrain"

    shifted = run_and_wait("drift-monitor/drift-monitor", {"new_data": "batches/shifted.csv"})
    assert shifted.state.is_completed(), f"{shifted.state}\n{worker_log.read_text()[-3000:]}"
    runs = finetune_runs()
    assert len(runs) == 2, "the shifted batch triggered one retrain"
    retrain = runs[1]
    assert retrain.parameters["data_dir"].startswith("data/retrain/")
    assert retrain.parent_task_run_id is not None, "linked to the monitor run's trigger-finetune task"

    finished = asyncio.run(wait_for_final_state(retrain.id))
    assert finished.state.is_completed(), f"{finished.state}\n{worker_log.read_text()[-3000:]}"
    assert model_versions(repo) == [1, 2], "the retrain registered a new version"
    merged = load_params(repo / "params.yaml").data
    assert (merged.dir, merged.train_file, merged.test_file) == (
        retrain.parameters["data_dir"], "merged_train.parquet", "test.jsonl")
