"""The project's import graph read statically with `ast`: what the architecture and dvc.yaml tests check."""

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECT_PACKAGES = ("flows", "tuneforge", "stages", "registry")

# Code that cannot change a stage's outputs, so it is not a DVC dependency of any stage: editing it must never
# retrain a model. This is the one place that says so (dvc.yaml's header points here).
#  - tuneforge/base: errors, paths of the layout, atomic writes, meta.json (an execution record DVC ignores),
#    hashing, the spec schema (the values themselves are DVC params), secrets masking, integrity checks.
#  - registry: recording what a stage produced, after it produced it.
NOT_STAGE_DEPENDENCIES = ("tuneforge/base/", "registry/")


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, dotted
    target: str  # the imported project module, dotted (resolved to a module, not a name inside one)
    line: int
    local: bool  # inside a function: run when called, not when the module is imported


def module_path(module: str) -> Path | None:
    base = REPO_ROOT / module.replace(".", "/")
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> list[str]:
    paths = []
    for package in PROJECT_PACKAGES:
        paths += [p for p in (REPO_ROOT / package).rglob("*.py") if "migrations" not in p.parts]
    return sorted(module_name(p) for p in paths)


def _resolve(name: str) -> str | None:
    """`a.b.c` -> the longest prefix that is a project module (a name imported from a module is not one)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if module_path(candidate):
            return candidate
        parts.pop()
    return None


@cache
def imports_of(module: str) -> tuple[Import, ...]:
    path = module_path(module)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    local_nodes = {
        id(inner) for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        for inner in ast.walk(node)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pkg import mod` imports pkg (its __init__) and the module pkg.mod when there is one
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] not in PROJECT_PACKAGES:
                continue
            target = _resolve(name)
            if target and target != module:
                found.append(Import(module, target, node.lineno, id(node) in local_nodes))
    return tuple(dict.fromkeys(found))


def with_parents(module: str) -> list[str]:
    """Importing a.b.c runs a/__init__.py and a/b/__init__.py first."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def closure(module: str, *, stop_at: tuple[str, ...] = ()) -> set[str]:
    """Every project module importing `module` may run (top-level and function-local imports), not following
    into files under `stop_at` folders."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        current = todo.pop()
        for name in with_parents(current):
            if name in seen or module_path(name) is None:
                continue
            seen.add(name)
            if _relative(name).startswith(stop_at):
                continue
            todo += [edge.target for edge in imports_of(name)]
    return seen


def _relative(module: str) -> str:
    return module_path(module).relative_to(REPO_ROOT).as_posix()


def relative_path(module: str) -> str:
    return _relative(module)


def top_level_reaches(source: str, target: str) -> bool:
    """Whether importing `source` imports `target` at module level (the imports that can form a cycle)."""
    seen, todo = set(), [source]
    while todo:
        current = todo.pop()
        for name in with_parents(current):
            if name in seen or module_path(name) is None:
                continue
            seen.add(name)
            if name == target:
                return True
            todo += [edge.target for edge in imports_of(name) if not edge.local]
    return False


def stage_code_files(module: str) -> set[str]:
    """The project files a stage's entry module may run that can shape its outputs (an empty package
    __init__.py cannot)."""
    reached = {relative_path(m) for m in closure(module, stop_at=NOT_STAGE_DEPENDENCIES)}
    return {
        path for path in reached
        if not path.startswith(NOT_STAGE_DEPENDENCIES) and (REPO_ROOT / path).read_text(encoding="utf-8").strip()
    }


def empty_files() -> set[str]:
    return {
        p.relative_to(REPO_ROOT).as_posix() for package in PROJECT_PACKAGES for p in (REPO_ROOT / package).rglob("*.py")
        if not p.read_text(encoding="utf-8").strip()
    }


def stage_code_dependencies(module: str) -> list[str]:
    """The code deps dvc.yaml should list for a stage: a folder when the stage reaches all of it, else files."""
    needed = stage_code_files(module)
    deps = set()
    for path in needed:
        folder = Path(path).parent
        files = {p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / folder).glob("*.py")} - empty_files()
        whole = folder.as_posix() not in (".", "stages", "tuneforge") and files <= needed
        deps.add(folder.as_posix() if whole else path)
    return sorted(deps)


if __name__ == "__main__":
    # Prints each dvc.yaml stage's code deps as they should be: python -m tests.helpers.imports
    import yaml

    for name, stage in yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"].items():
        print(name, stage_code_dependencies(stage["cmd"].split("-m ", 1)[1].split()[0]))
