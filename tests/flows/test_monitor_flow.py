"""The drift-monitor flow under a Prefect test server: shifted labelled data triggers a run of the finetune
deployment on the merged data; in-distribution data, unlabelled data and bad input trigger none."""

import asyncio
from pathlib import Path

import pytest
from prefect.artifacts import Artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.testing.utilities import prefect_test_harness

from flows.finetune import finetune
from flows.monitor import drift_monitor
from tests.helpers.monitor import production_project, shifted_rows

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return production_project(tmp_path_factory)


@pytest.fixture(scope="module")
def finetune_deployment(project):
    """A test server holding the `finetune/finetune` deployment; no worker: a triggered run stays scheduled."""
    with prefect_test_harness(server_startup_timeout=120):
        yield finetune.to_deployment(name="finetune").apply()


def finetune_runs(deployment_id) -> list:
    async def read():
        async with get_client() as client:
            return await client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
            )

    return asyncio.run(read())


def latest_markdown() -> str:
    return Artifact.get("drift-monitor").data


def test_shifted_labelled_data_triggers_finetune_on_the_merged_data(project, finetune_deployment):
    outcome = drift_monitor(new_data="batches/shifted.csv", repo=str(project))
    assert outcome["drift"] is True
    runs = finetune_runs(finetune_deployment)
    assert [str(run.id) for run in runs] == [outcome["finetune_flow_run"]["id"]]
    data_dir = outcome["retrain_data"]["data_dir"]
    assert data_dir.startswith("data/retrain/") and (project / data_dir / "merged_train.parquet").is_file()
    assert runs[0].parameters == {
        "data_dir": data_dir, "overrides": ["data.train_file=merged_train.parquet", "data.test_file=test.jsonl"],
    }
    assert runs[0].state.is_scheduled()
    markdown = latest_markdown()
    assert "**DRIFT: 2 of 3 signals drifted (2 needed)**" in markdown
    assert f"retrain triggered: finetune/finetune flow run {runs[0].name} on {data_dir} (+80 labelled rows)" in markdown


def test_in_distribution_and_unlabelled_data_trigger_no_retrain(project, finetune_deployment):
    before = len(finetune_runs(finetune_deployment))
    held_out = drift_monitor(new_data="batches/in_distribution.csv", repo=str(project))
    assert held_out["drift"] is False and held_out["action"] == "no drift: nothing to do"
    assert "**no drift: 0 of 3 signals drifted (2 needed)**" in latest_markdown()

    unlabelled = drift_monitor(new_data="batches/unlabelled", repo=str(project))
    assert unlabelled["drift"] is True and unlabelled["finetune_flow_run"] is None
    assert "has no labels" in unlabelled["action"]
    assert len(finetune_runs(finetune_deployment)) == before


def test_refused_retrain_data_fails_the_run_with_its_line_and_triggers_nothing(project, finetune_deployment):
    before = len(finetune_runs(finetune_deployment))
    batch = project / "batches" / "new_class.csv"
    rows = shifted_rows(seed=11, labels=["card_lost"])
    rows.loc[:2, "label"] = "brand_new_intent"
    rows.to_csv(batch, index=False)
    state = drift_monitor(new_data="batches/new_class.csv", repo=str(project), return_state=True)
    assert state.is_failed()
    assert "the validate stage refuses it" in (state.message or "") and "Traceback" not in (state.message or "")
    assert "retrain data was refused" in latest_markdown()
    assert len(finetune_runs(finetune_deployment)) == before


def test_bad_input_fails_the_run_with_one_line(project, finetune_deployment):
    state = drift_monitor(new_data="batches/missing.csv", repo=str(project), return_state=True)
    assert state.is_failed()
    assert "batches/missing.csv: no such file or folder (the batch of new data)" in (state.message or "")
