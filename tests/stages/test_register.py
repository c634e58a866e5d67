"""Stage register: a run's registered outputs become one model version; gates decide the alias, recorded."""

import json
from pathlib import Path

import pytest

from registry import api, record_stage
from registry.config import PromotionConfig, RegistryConfig
from stages import register
from tuneforge.base.errors import StageError
from tuneforge.base.outputs import Produced

ROLE_METRICS = {
    "validated": {"success": True},
    "test_split": {"drift_share": {"test_vs_train": 0.1}},
    "teacher": {"accuracy": 0.9},
    "metrics": {"accuracy": 0.91, "macro_f1": 0.9},
    "student": {"accuracy": 0.9},
    "onnx_int8": {"parity_passed": True},
}


@pytest.fixture
def registry_cfg(in_tmp_dir) -> RegistryConfig:
    return RegistryConfig(model_name="intents", url=f"sqlite:///{in_tmp_dir / 'reg.db'}",
                          artifacts=str(in_tmp_dir / "blobs"), cache=str(in_tmp_dir / "cache"))


def produce_stage_outputs(registry_cfg: RegistryConfig, macro_f1: float = 0.9) -> dict[str, tuple[Path, str]]:
    """Each role's folder with a meta.json, registered the way the stage runner registers it."""
    roles = {}
    for role, metrics in ROLE_METRICS.items():
        folder = Path("out") / role
        folder.mkdir(parents=True, exist_ok=True)
        metrics = {**metrics, "macro_f1": macro_f1} if role == "metrics" else metrics
        (folder / "meta.json").write_text(json.dumps({"metrics": metrics}))
        (folder / "payload.txt").write_text(f"{role} {macro_f1}")
        record_stage(Produced(stage=f"s_{role}", outputs={"out": folder}, inputs={}), config=registry_cfg)
        roles[role] = (folder, f"s_{role}")
    return roles


def test_registers_a_version_grouping_every_role_and_promotes_when_gates_pass(registry_cfg):
    roles = produce_stage_outputs(registry_cfg)
    produced = register.run(registry_cfg, PromotionConfig(promote_to="staging"), roles=roles)
    assert produced.metrics == {"version": 1, "promoted_to": "staging", "gates_passed": True}
    record = json.loads(Path("reports/register/model_version.json").read_text())
    assert set(record["roles"]) == set(ROLE_METRICS)
    info = api.show("intents@staging", config=registry_cfg)
    assert info["version"] == 1
    assert info["metrics"]["metrics.macro_f1"] == 0.9 and info["metrics"]["onnx_int8.parity_passed"] is True


def test_a_failing_gate_is_recorded_and_leaves_the_alias_where_it_was(registry_cfg):
    roles = produce_stage_outputs(registry_cfg, macro_f1=0.9)
    register.run(registry_cfg, PromotionConfig(promote_to="staging"), roles=roles)
    worse = produce_stage_outputs(registry_cfg, macro_f1=0.4)
    produced = register.run(registry_cfg, PromotionConfig(promote_to="staging"), roles=worse)
    assert produced.metrics == {"version": 2, "promoted_to": None, "gates_passed": False}
    assert api.show("intents@staging", config=registry_cfg)["version"] == 1
    decisions = [e for e in api.events("intents", config=registry_cfg) if e["kind"] == "gate_decided"]
    assert len(decisions) == 2
    failed = [g for g in json.loads(Path("reports/register/model_version.json").read_text())["promotion"]["gates"]
              if not g["passed"]]
    assert {g["gate"] for g in failed} >= {"min metrics.macro_f1"}


def test_without_promote_to_only_registers(registry_cfg):
    produced = register.run(registry_cfg, PromotionConfig(), roles=produce_stage_outputs(registry_cfg))
    assert produced.metrics == {"version": 1, "promoted_to": None, "gates_passed": None}


def test_missing_or_unregistered_outputs_name_the_stage_to_run(registry_cfg):
    roles = produce_stage_outputs(registry_cfg)
    with pytest.raises(StageError, match=r"out/nowhere: not found; run the export stage first"):
        register.run(registry_cfg, PromotionConfig(), roles={**roles, "onnx_int8": (Path("out/nowhere"), "export")})
    (Path("out/student") / "payload.txt").write_text("changed after it was registered")
    with pytest.raises(StageError, match=r"out/student: not in the registry as it is now; re-run the s_student"):
        register.run(registry_cfg, PromotionConfig(), roles=roles)
    assert not Path("reports/register").exists(), "nothing written when the stage refuses"
