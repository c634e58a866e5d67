"""The layout's import rules (../shared/DESIGN.md "Layout"), checked on the source with `ast`.

Imports point down this table only; modules in one row may import each other but no cycle may form.
"""

import ast
from collections import defaultdict
from pathlib import Path

import yaml

from tests.helpers.imports import REPO_ROOT, imports_of, module_path, project_modules, top_level_reaches

LAYERS = [
    ("flows",),
    ("tuneforge.cli", "tuneforge.serving", "tuneforge.summary", "tuneforge.orchestration"),
    ("stages",),
    ("tuneforge.pipeline",),
    ("tuneforge.tasks",),
    ("tuneforge.data", "tuneforge.training", "tuneforge.tuning", "tuneforge.evaluation", "tuneforge.export",
     "tuneforge.inference", "tuneforge.monitor"),
    ("tuneforge.params",),
    ("registry",),
    ("tuneforge.base", "tuneforge"),
]


def unit(module: str) -> str:
    """The row entry a module belongs to: the longest listed prefix."""
    names = [name for row in LAYERS for name in row if module == name or module.startswith(name + ".")]
    assert names, f"{module} is in no row of LAYERS: add it to the layout"
    return max(names, key=len)


def row(module: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if unit(module) in names)


def project_imports():
    for module in project_modules():
        yield from imports_of(module)


def third_party_roots(module: str) -> set[str]:
    tree = ast.parse(module_path(module).read_text(encoding="utf-8"))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_imports_point_down_the_layout():
    upward = [
        f"{edge.source} (line {edge.line}) imports {edge.target}"
        for edge in project_imports() if row(edge.target) < row(edge.source)
    ]
    assert not upward, "imports pointing up the layout:\n" + "\n".join(upward)


def test_no_stage_imports_another_stage():
    between = [
        f"{edge.source} (line {edge.line}) imports {edge.target}"
        for edge in project_imports()
        if edge.source.startswith("stages.") and edge.target.startswith("stages.") and edge.target != edge.source
    ]
    assert not between, "a stage imports another stage:\n" + "\n".join(between)


def test_the_registry_depends_only_on_the_base_layer():
    outside = [
        f"{edge.source} (line {edge.line}) imports {edge.target}"
        for edge in project_imports()
        if edge.source.split(".")[0] == "registry"
        and not (edge.target.split(".")[0] == "registry" or unit(edge.target) == "tuneforge.base")
    ]
    assert not outside, "registry imports beyond tuneforge.base:\n" + "\n".join(outside)


def test_only_flows_import_prefect():
    offenders = [m for m in project_modules() if not m.startswith("flows") and "prefect" in third_party_roots(m)]
    assert not offenders, f"prefect imported outside flows/: {offenders}"


def test_no_import_cycle_between_packages():
    graph = defaultdict(set)
    for edge in project_imports():
        if unit(edge.source) != unit(edge.target):
            graph[unit(edge.source)].add(unit(edge.target))
    cycles = []

    def visit(node, path):
        for nxt in sorted(graph[node]):
            if nxt in path:
                cycles.append(" -> ".join([*path[path.index(nxt):], nxt]))
            elif len(path) < 20:
                visit(nxt, [*path, nxt])

    for start in sorted(graph):
        visit(start, [start])
    assert not cycles, "import cycles between packages:\n" + "\n".join(sorted(set(cycles)))


def test_no_function_local_import_hides_a_cycle():
    """A lazy import (for start-up time) is fine; one that would form a cycle at module level is not."""
    hidden = [
        f"{edge.source} (line {edge.line}) imports {edge.target} inside a function: "
        f"{edge.target} imports {edge.source}"
        for edge in project_imports() if edge.local and top_level_reaches(edge.target, edge.source)
    ]
    assert not hidden, "function-local imports that dodge a cycle:\n" + "\n".join(hidden)


def test_the_stage_modules_are_the_stages_of_dvc_yaml_and_the_monitor():
    declared = set(yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"])
    modules = {p.stem for p in Path(REPO_ROOT / "stages").glob("*.py") if p.stem != "__init__"}
    assert modules == declared | {"monitor"}


def test_stages_ask_the_task_and_name_none():
    """Stages hold no `if task == ...` branch: they reach a task only through `tuneforge.tasks` (get_task,
    require, the Task record), never a task's own module, and no task's name appears in their code."""
    from tuneforge.tasks import TASKS

    stage_modules = [m for m in project_modules() if m.startswith("stages.")]
    offenders = [
        f"{edge.source} (line {edge.line}) imports {edge.target}"
        for module in stage_modules for edge in imports_of(module)
        if edge.target.startswith("tuneforge.tasks.") and edge.target != "tuneforge.tasks.interface"
    ]
    for module in stage_modules:
        tree = ast.parse(module_path(module).read_text(encoding="utf-8"))
        offenders += [
            f"{module} (line {node.lineno}) names the task '{node.value}'"
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in TASKS
        ]
    assert not offenders, "stages that know a task by name:\n" + "\n".join(offenders)
