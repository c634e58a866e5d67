"""dvc.yaml's code dependencies cannot drift: each stage lists every project file its entry module may import.

Editing a helper that shapes a stage's outputs must re-run exactly the stages that use it; code that cannot
change outputs (tests/helpers/imports.py NOT_STAGE_DEPENDENCIES: the base layer and registry/) is left out.
"""

import yaml

from tests.helpers.imports import NOT_STAGE_DEPENDENCIES, REPO_ROOT, stage_code_files

CODE_ROOTS = ("stages/", "tuneforge/", "registry/", "flows/")


def stage_code():
    """(stage, listed code deps, files its import closure reaches) for every python stage of dvc.yaml."""
    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        module = stage["cmd"].split("-m ", 1)[1].split()[0]
        listed = [dep.rstrip("/") for dep in stage.get("deps", []) if str(dep).startswith(CODE_ROOTS)]
        yield name, listed, stage_code_files(module)


def covers(dep: str, path: str) -> bool:
    return path == dep or path.startswith(dep + "/")


def test_every_file_a_stage_imports_is_a_dependency_in_dvc_yaml():
    missing = [
        f"{name}: {path}" for name, listed, needed in stage_code()
        for path in sorted(needed) if not any(covers(dep, path) for dep in listed)
    ]
    assert not missing, "dvc.yaml misses code the stage imports (stage: file):\n" + "\n".join(missing)


def test_no_stage_lists_code_it_does_not_import():
    stale = [
        f"{name}: {dep}" for name, listed, needed in stage_code()
        for dep in listed if not any(covers(dep, path) for path in needed)
    ]
    assert not stale, "dvc.yaml lists code the stage never imports (stage: dep):\n" + "\n".join(stale)


def test_the_exempt_code_is_only_the_base_layer_and_the_registry():
    assert NOT_STAGE_DEPENDENCIES == ("tuneforge/base/", "registry/")
