"""Stage `register`: one pipeline run's artifacts become a version of the registered model.

Every earlier stage registered its outputs as it finished; this stage groups them by role (the
validated data, the splits, teacher, evaluation, student, int8 ONNX directory) into a new version of
`registry.model_name`, and, when `promotion.promote_to` names an alias, runs the declared gates and
moves that alias only if they all pass. A failed gate is a recorded decision, not a failed stage.

reports/register/model_version.json is the receipt of that registry transaction: version numbers, the
artifact versions by role and the gate decision. All of it follows from the inputs and the registry's state
before the run (how many versions it holds, which version holds the alias), nothing from the clock or the
process: the same inputs on registries in the same state write the same file, so DVC hashes it the same.
When and by whom is the registry's event log and meta.json (which .dvcignore keeps out of the hash).
"""

import time
from pathlib import Path

from registry.config import PromotionConfig, RegistryConfig
from tuneforge.base.errors import StageError
from tuneforge.base.layout import Workspace
from tuneforge.base.outputs import Produced, atomic_dirs, write_json, write_meta, write_metrics
from tuneforge.pipeline.runner import stage_main

STAGE = "register"


def workspace_roles(workspace: Workspace) -> dict[str, tuple[Path, str]]:
    """Role -> (workspace path, the stage that writes it). The promotion gates read `role.metric` names."""
    return {
        "validated": (workspace.validated, "validate"),
        "test_split": (workspace.splits, "split"),
        "teacher": (workspace.teacher, "train"),
        "metrics": (workspace.reports("evaluate"), "evaluate"),
        "student": (workspace.student, "distill"),
        "onnx_int8": (workspace.onnx, "export"),
    }


def run(
    registry_cfg: RegistryConfig,
    promotion_cfg: PromotionConfig,
    *,
    roles: dict[str, tuple[Path, str]] | None = None,
    workspace: Workspace = Workspace(),
) -> Produced:
    """Register `roles` (default: the workspace's outputs, workspace_roles) as a new version."""
    from registry import api  # the registry loads only for the stages that read it

    started = time.time()
    reports, metrics_path = workspace.reports(STAGE), workspace.metrics(STAGE)
    roles = roles or workspace_roles(workspace)
    if not registry_cfg.enabled:
        raise StageError("registry.enabled is false: nothing to register a model version in")
    refs = {}
    for role, (path, producer) in roles.items():
        if not Path(path).exists():
            raise StageError(f"{path}: not found; run the {producer} stage first (python -m stages.{producer})")
        ref = api.artifact_with_content(path, config=registry_cfg)
        if ref is None:
            raise StageError(
                f"{path}: not in the registry as it is now; re-run the {producer} stage so that it registers"
            )
        refs[role] = f"{ref.name}:{ref.version}"
    version = api.register_model(registry_cfg.model_name, refs, config=registry_cfg)
    promotion = None
    if promotion_cfg.promote_to:
        result = api.promote(
            registry_cfg.model_name, version.version, promotion_cfg.promote_to, policy=promotion_cfg,
            config=registry_cfg,
        )
        promotion = result.to_json()
    record = {
        "model": registry_cfg.model_name,
        "version": version.version,
        "roles": refs,
        "promotion": promotion,
    }
    metrics = {
        "version": version.version,
        "promoted_to": promotion_cfg.promote_to if promotion and promotion["moved"] else None,
        "gates_passed": promotion["passed"] if promotion else None,
    }
    with atomic_dirs(reports) as (reports_tmp,):
        write_json(reports_tmp / "model_version.json", record)
        write_meta(
            reports_tmp, stage=STAGE,
            config={"registry": registry_cfg, "promotion": promotion_cfg},
            inputs={role: Path(path) for role, (path, _) in roles.items()}, metrics=metrics, started=started,
        )
    write_metrics(metrics_path, metrics)
    _print_outcome(record)
    return Produced(
        stage=STAGE, outputs={"reports": reports, "metrics": metrics_path},
        inputs={role: Path(path) for role, (path, _) in roles.items()}, metrics=metrics,
    )


def _print_outcome(record: dict) -> None:
    name, version, promotion = record["model"], record["version"], record["promotion"]
    print(f"{STAGE}: {name}:{version} registered ({', '.join(f'{r}={a}' for r, a in record['roles'].items())})")
    if promotion is None:
        return
    for gate in promotion["gates"]:
        verdict = "pass" if gate["passed"] else "FAIL"
        print(f"{STAGE}:   {verdict:4}  {gate['gate']}: required {gate['required']}, observed {gate['observed']}")
    outcome = "promoted to" if promotion["moved"] else "NOT promoted to"
    print(f"{STAGE}: {name}:{version} {outcome} {promotion['alias']}")


def main(argv=None) -> int:
    return stage_main(STAGE, lambda params: run(params.registry, params.promotion), argv)


if __name__ == "__main__":
    raise SystemExit(main())
