"""A project whose registry holds three versions of `intents`, for the serving tests; built once per session.

intents:1 comes from the monitor tests' shared build (the real pipeline on a tiny BERT, promoted to
production); this copy adds intents:2, the same pipeline re-run with another distillation seed (so its
student differs) and registered at staging, and intents:3, intents:2's roles with an ONNX folder that also
holds a NOTICE.txt: a blob no other version shares, for the tampering tests.
"""

import shutil
from pathlib import Path

from tests.helpers.monitor import one_thread, production_project
from tests.helpers.project import dvc, git

_BUILT: dict[str, Path] = {}


def registry_config(project: Path):
    """The project's registry with absolute paths, usable from any working directory."""
    from tuneforge.params import load_params

    registry = load_params(project / "params.yaml").registry
    return registry.model_copy(update={
        "url": f"sqlite:///{project / '.tuneforge/registry.db'}", "artifacts": str(project / ".tuneforge/artifacts"),
        "cache": str(project / ".tuneforge/cache"),
    })


def serving_project(tmp_path_factory) -> Path:
    if "project" in _BUILT:
        return _BUILT["project"]
    from registry import api
    from tuneforge.base.outputs import Produced
    from tuneforge.params.overrides import apply_to_params_file

    source = production_project(tmp_path_factory)
    project = tmp_path_factory.mktemp("serving-project") / "clone"
    shutil.copytree(source, project, symlinks=True)
    # A random tiny model's macro-F1 is a few points of noise: the int8 parity gate (tested in the export tests)
    # would decide this fixture by chance, so it is opened here.
    apply_to_params_file(project / "params.yaml", ["distill.seed=7", "distill.learning_rate=0.005",
                                                   "export.max_f1_drop=100", "promotion.promote_to=staging"])
    git(project, "commit", "-q", "-am", "a second version: another distillation, registered at staging")
    with one_thread():
        dvc(project, "repro")
    config = registry_config(project)
    second = api.show("intents:2", config=config)
    assert second["aliases"] == ["staging"], second["aliases"]

    folder = project / "notice-onnx"
    shutil.copytree(api.resolve(f"{second['artifacts']['onnx_int8']['name']}:"
                                f"{second['artifacts']['onnx_int8']['version']}", config=config), folder)
    (folder / "NOTICE.txt").write_text("intents:3 ships this notice; no other version holds these bytes\n")
    onnx = api.record_stage(Produced(stage="export", outputs={"onnx": folder}, inputs={}), config=config)[0]
    roles = {role: f"{ref['name']}:{ref['version']}" for role, ref in second["artifacts"].items()}
    third = api.register_model("intents", {**roles, "onnx_int8": f"{onnx.name}:{onnx.version}"}, config=config)
    assert third.version == 3
    _BUILT["project"] = project
    return project
