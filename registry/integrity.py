"""Verify stored blobs against their recorded hashes, copy verified artifacts out of the store, and check
that a folder copied out earlier (the resolve cache) still holds exactly those bytes."""

import contextlib
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy.orm import Session

from registry import blobs
from registry.blobs import BlobStore
from registry.errors import RegistryError
from registry.schema import Artifact
from registry.store import manifest
from tuneforge.base.outputs import sha256_file


def expected_blobs(session: Session, artifact: Artifact) -> list[tuple[str, str]]:
    """(label, sha256) of every blob an artifact needs; a directory's manifest must hash to its sha256."""
    label = f"{artifact.name}:{artifact.version}"
    if not artifact.is_dir:
        return [(label, artifact.sha256)]
    files = manifest(session, artifact)
    # Rows written before execution records (meta.json) left the folder hash still hash with them in.
    if artifact.sha256 not in (blobs.listing_sha256(files), blobs.listing_sha256(files, with_records=True)):
        raise RegistryError(f"{label}: recorded manifest does not hash to the artifact's sha256 {artifact.sha256}")
    return [(f"{label} {entry.path}", entry.sha256) for entry in files]


def check_blobs(store: BlobStore, expected: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Every problem found: missing blobs and blobs whose bytes no longer hash to their name."""
    problems, seen = [], {}
    for label, sha256 in expected:
        if sha256 not in seen:
            seen[sha256] = blobs.stored_sha256(store, sha256)
        actual = seen[sha256]
        if actual != sha256:
            problems.append({"artifact": label, "expected": sha256, "actual": actual or "missing"})
    return problems


def require_intact(store: BlobStore, expected: list[tuple[str, str]]) -> int:
    """Raise on the first missing or tampered blob; returns how many distinct blobs were checked."""
    problems = check_blobs(store, expected)
    if problems:
        first = problems[0]
        if first["actual"] == "missing":
            raise RegistryError(f"{first['artifact']}: blob sha256:{first['expected']} is missing from {store.url}")
        raise RegistryError(blobs.tampered_message(first["artifact"], first["expected"], first["actual"]))
    return len({sha for _, sha in expected})


def file_name(artifact: Artifact) -> str:
    """The name a file artifact is written under: the name of the file it was registered from."""
    name = PurePosixPath(artifact.path.replace("\\", "/")).name
    return name if name not in ("", ".", "..") else artifact.name


def materialize(session: Session, store: BlobStore, artifact: Artifact, folder: Path) -> None:
    """Write a verified copy of the artifact into `folder` (a file artifact keeps its file name)."""
    label = f"{artifact.name}:{artifact.version}"
    if not artifact.is_dir:
        blobs.fetch(store, artifact.sha256, folder / file_name(artifact), label)
        return
    expected_blobs(session, artifact)  # the manifest itself must match the artifact's hash
    for entry in manifest(session, artifact):
        relative = blobs.safe_relative(entry.path)
        blobs.fetch(store, entry.sha256, folder.joinpath(*relative.parts), f"{label} {entry.path}")


def into_place(build, destination: Path) -> Path:
    """Build into a temporary sibling folder, then rename it to `destination` (which must not exist yet)."""
    destination = Path(destination)
    if destination.exists() and (destination.is_file() or any(destination.iterdir())):
        raise RegistryError(f"{destination} already exists; choose a new destination")
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_name(f".{destination.name}.tmp-{uuid.uuid4().hex[:8]}")
    temporary.mkdir()
    try:
        build(temporary)
        if destination.exists():
            destination.rmdir()
        temporary.rename(destination)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return destination


def expected_layout(session: Session, parts: Mapping[str, Artifact]) -> dict[str, tuple[str, str]]:
    """{path relative to a built folder: (label, sha256)} for every file `build` writes for `parts`
    ({role or "": artifact}); a directory artifact's recorded manifest must hash to its sha256."""
    layout = {}
    for role, artifact in parts.items():
        prefix = PurePosixPath(role) if role else PurePosixPath()
        label = f"{artifact.name}:{artifact.version}"
        if not artifact.is_dir:
            layout[(prefix / file_name(artifact)).as_posix()] = (label, artifact.sha256)
            continue
        expected_blobs(session, artifact)
        for entry in manifest(session, artifact):
            relative = prefix / blobs.safe_relative(entry.path)
            layout[relative.as_posix()] = (f"{label} {entry.path}", entry.sha256)
    return layout


def build(session: Session, store: BlobStore, parts: Mapping[str, Artifact], folder: Path) -> None:
    """Write verified copies of `parts` into `folder`: one sub-folder per role ("" for the folder itself)."""
    for role, artifact in parts.items():
        materialize(session, store, artifact, folder / role if role else folder)


def check_folder(folder: Path, layout: Mapping[str, tuple[str, str]]) -> list[dict[str, Any]]:
    """Every difference between `folder` and `layout`, each file re-hashed: a file missing, changed, added,
    or replaced by a link (a built folder holds plain files only). An empty list: exactly the recorded bytes."""
    problems, present = [], {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if path.is_symlink():
            problems.append({"artifact": f"{folder}/{relative}", "expected": "a file", "actual": "a link"})
        elif path.is_file():
            present[relative] = path
    for relative, (label, sha256) in layout.items():
        path = present.pop(relative, None)
        actual = "missing" if path is None else sha256_file(path)
        if actual != sha256:
            problems.append({"artifact": f"{label} in {folder}", "expected": sha256, "actual": actual})
    problems += [
        {"artifact": f"{folder}/{relative}", "expected": "nothing", "actual": "a file no artifact records"}
        for relative in sorted(present)
    ]
    return problems


def discard(folder: Path) -> None:
    """Move a folder out of the way (one rename: readers never see half of it), then delete it."""
    aside = folder.with_name(f".{folder.name}.discarded-{uuid.uuid4().hex[:8]}")
    with contextlib.suppress(FileNotFoundError):  # another process discarded it first
        folder.rename(aside)
    shutil.rmtree(aside, ignore_errors=True)
