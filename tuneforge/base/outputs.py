"""How a stage writes: all outputs appear at once or not at all, each beside a meta.json.

A stage builds its out directories under temporary names and only renames them into place once
everything succeeded, so a failure leaves the previous outputs exactly as they were.
"""

import contextlib
import glob
import hashlib
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

from tuneforge.base.errors import StageError
from tuneforge.base.secrets import for_records

TRACKED_LIBRARIES = (
    "tuneforge", "torch", "transformers", "peft", "great-expectations", "evidently",
    "pandas", "pyarrow", "scikit-learn", "dvc", "prefect", "onnx", "onnxruntime",
)
# Set by whatever started the stage for a run of several stages (the Prefect flow): the run's id (the one the
# registry records) and a JSON object of what the run was asked for (overrides, data_dir, promote_to).
RUN_ID_ENV, RUN_PARAMETERS_ENV = "TUNEFORGE_RUN_ID", "TUNEFORGE_RUN_PARAMETERS"
# Files at the top of an output folder that record one execution (wall time, git commit, timings of this
# machine at this moment), not what the stage computed. .dvcignore keeps them out of DVC's hashes; the same
# names stay out of sha256_path, so the content hash (the registry's artifact identity, the input hashes in
# meta.json) is the same for the same inputs however often the stage runs. By name rather than by
# .dvcignore's repository paths because a folder is hashed wherever it lies (a test's temporary folder, the
# registry's cache); tests/registry/test_registry_reliability.py checks the two lists agree.
EXECUTION_RECORDS = frozenset({"meta.json", "speed.json", "speed.md"})


@dataclass(frozen=True)
class Produced:
    """What a stage's run() returns: its outputs and inputs by name, and its headline metrics."""

    stage: str
    outputs: dict[str, Path]
    inputs: dict[str, Path]
    metrics: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def atomic_dirs(*targets: Path) -> Iterator[list[Path]]:
    """Yield fresh temporary directories; on success each replaces its target, on failure all vanish.

    A process killed outright (SIGKILL, OOM, power loss) cannot clean up: what it left beside a target is
    removed here, the next time a stage writes that target."""
    for target in targets:
        remove_stale_siblings(target)
    token = _owned_token()
    staging = [target.with_name(f".{target.name}.tmp-{token}") for target in targets]
    try:
        for path in staging:
            path.mkdir(parents=True)
        yield staging
        for path, target in zip(staging, targets, strict=True):
            _replace(path, target)
    finally:
        for path in staging:
            shutil.rmtree(path, ignore_errors=True)


def _owned_token() -> str:
    """`<pid>-<random>`: the pid says whose a temporary directory is, so a dead owner's can be told apart."""
    return f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


def remove_stale_siblings(target: Path) -> list[Path]:
    """Remove the `.NAME.tmp-*` and `.NAME.old-*` siblings of `target` whose owning process is gone.

    One that names no pid predates pid-named temporaries and has no live owner either. A live owner's
    (another stage writing the same target right now) is left alone."""
    target = Path(target)
    if not target.parent.is_dir():
        return []
    removed = []
    for kind in ("tmp", "old"):
        for path in target.parent.glob(f".{glob.escape(target.name)}.{kind}-*"):
            owner = path.name.rpartition(f".{kind}-")[2].partition("-")[0]
            if owner.isdigit() and _process_alive(int(owner)):
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: nothing is sent, only whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    return True


def _replace(new: Path, target: Path) -> None:
    old = target.with_name(f".{target.name}.old-{_owned_token()}")
    if target.exists():
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(path)
    temporary = path.with_name(f".{path.name}.tmp-{_owned_token()}")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")


def write_metrics(path: Path, metrics: dict[str, Any]) -> None:
    """A stage's headline metrics, reports/metrics/<stage>.json (DVC metrics), replaced atomically.

    Stages call it after their outputs are renamed into place: a failure before leaves the previous metrics
    beside the previous outputs."""
    atomic_write_text(Path(path), json.dumps(metrics, indent=2, sort_keys=True, default=str) + "\n")


def read_meta(directory: Path) -> dict[str, Any]:
    """`directory`/meta.json as a mapping; {} when it is missing or unreadable (for optional context only:
    a loader that trusts the record reads it through tuneforge.base.integrity)."""
    try:
        meta = json.loads((Path(directory) / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_execution_record(relative: str | PurePosixPath) -> bool:
    """Whether a path relative to an output folder is one of its execution records (EXECUTION_RECORDS)."""
    parts = PurePosixPath(relative).parts
    return len(parts) == 1 and parts[0] in EXECUTION_RECORDS


def sha256_path(path: Path) -> str:
    """A file's sha256, or for a directory the sha256 of its sorted (relative path, file hash) listing,
    leaving out its execution records (meta.json...) as DVC does: the content hash of what a stage made."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    listing = "".join(
        f"{child.relative_to(path).as_posix()}\t{sha256_file(child)}\n"
        for child in sorted(path.rglob("*"))
        if child.is_file() and not is_execution_record(child.relative_to(path).as_posix())
    )
    return hashlib.sha256(listing.encode()).hexdigest()


def library_versions() -> dict[str, str]:
    versions = {}
    for name in TRACKED_LIBRARIES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions


def git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def write_meta(
    directory: Path,
    *,
    stage: str,
    config: Any,
    inputs: dict[str, Path],
    metrics: dict[str, Any],
    started: float,
    extra: dict[str, Any] | None = None,
) -> None:
    """meta.json: the record the registry reads (resolved config, versions, input hashes, metrics, time).

    `config` is the stage's sections (pydantic models, or a mapping of them). The whole record goes through
    tuneforge.base.secrets.for_records: a password in a URL (registry.url, tune.storage, a flow's overrides) is
    masked, here and so in the registry, which stores this file and its content."""
    write_json(
        directory / "meta.json",
        for_records({
            "stage": stage,
            "config": config,
            "inputs": {name: {"path": str(p), "sha256": sha256_path(p)} for name, p in inputs.items()},
            "metrics": metrics,
            "libraries": library_versions(),
            "git_commit": git_commit(),
            "wall_time_s": round(time.time() - started, 3),
            # User + system CPU seconds of this process and its finished children so far, imports included:
            # under dvc repro each stage is its own process, so this is the stage's CPU cost.
            "cpu_time_s": round(sum(os.times()[:4]), 3),
            **run_record(),
            **(extra or {}),
        }),
    )


def run_record() -> dict[str, Any]:
    """{"run": {id, parameters}} when the stage runs inside a declared run (the flow), else {}.

    meta.json is what the registry stores with each artifact, so a flow run's overrides end up recorded
    beside what they produced; meta.json stays out of DVC's hashes, so they never change dvc.lock."""
    run_id, raw = os.environ.get(RUN_ID_ENV), os.environ.get(RUN_PARAMETERS_ENV)
    if not run_id and not raw:
        return {}
    try:
        parameters = json.loads(raw) if raw else {}
    except ValueError:
        parameters = None
    if not isinstance(parameters, dict):
        raise StageError(f"{RUN_PARAMETERS_ENV}: not a JSON object: {raw[:80]!r}")
    return {"run": {"id": run_id, "parameters": parameters}}
