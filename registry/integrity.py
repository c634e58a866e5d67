"""Verify stored blobs against their recorded hashes, and copy verified artifacts out of the store."""

import shutil
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy.orm import Session

from registry import blobs
from registry.blobs import BlobStore
from registry.errors import RegistryError
from registry.schema import Artifact
from registry.store import manifest


def expected_blobs(session: Session, artifact: Artifact) -> list[tuple[str, str]]:
    """(label, sha256) of every blob an artifact needs; a directory's manifest must hash to its sha256."""
    label = f"{artifact.name}:{artifact.version}"
    if not artifact.is_dir:
        return [(label, artifact.sha256)]
    files = manifest(session, artifact)
    if blobs.listing_sha256(files) != artifact.sha256:
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
