"""Content-addressed blob store on fsspec: `<root>/sha256/ab/cdef...`, one copy per distinct content.

A blob is written under a temporary name while its hash is computed from the very bytes written,
then moved to its content address, so a blob's name always matches its bytes unless someone edits the
store afterwards -- which `fetch` and `verify` detect. Directory artifacts are a manifest (relative path
-> sha256, size) plus one blob per file; their hash is tuneforge.base.outputs.sha256_path(dir), which leaves out the
folder's execution records (meta.json...) although the manifest and the store keep them.
"""

import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import fsspec
from fsspec import AbstractFileSystem

from registry.errors import RegistryError
from tuneforge.base.outputs import is_execution_record

CHUNK = 1 << 20


@dataclass(frozen=True)
class BlobStore:
    url: str  # the root as configured (a local folder or an fsspec URL)
    fs: AbstractFileSystem
    base: str  # the root as a path inside `fs`

    @property
    def is_local(self) -> bool:
        return "file" in _protocols(self.fs)


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative, POSIX separators
    sha256: str
    size: int


def open_store(url: str) -> BlobStore:
    try:
        fs, base = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise RegistryError(f"artifact store {url!r}: {exc}") from None
    if "file" in _protocols(fs):
        base = str(Path(base).resolve())
        Path(base).mkdir(parents=True, exist_ok=True)
    return BlobStore(url=url, fs=fs, base=base.rstrip("/"))


def _protocols(fs: AbstractFileSystem) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def blob_path(store: BlobStore, sha256: str) -> str:
    return f"{store.base}/sha256/{sha256[:2]}/{sha256[2:]}"


def manifest_path(store: BlobStore, sha256: str) -> str:
    return f"{store.base}/manifests/{sha256}.json"


def uri(store: BlobStore, path: str) -> str:
    """Where a stored file is, as recorded in the registry: relative to the working directory (the checkout)
    when the store is a local folder inside it, so a copied checkout's records point into its own copy;
    else the full fsspec URL (a team's bucket is the same place from every checkout)."""
    if store.is_local:
        try:
            return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
        except ValueError:
            pass
    return store.fs.unstrip_protocol(path)


def put_file(store: BlobStore, local: Path) -> FileEntry:
    """Store one file; returns its hash and size. Content already present is not written again."""
    temporary = f"{store.base}/tmp/{uuid.uuid4().hex}"
    store.fs.makedirs(f"{store.base}/tmp", exist_ok=True)
    digest, size = hashlib.sha256(), 0
    try:
        with open(local, "rb") as source, store.fs.open(temporary, "wb") as target:
            for chunk in iter(lambda: source.read(CHUNK), b""):
                digest.update(chunk)
                size += len(chunk)
                target.write(chunk)
        sha256 = digest.hexdigest()
        destination = blob_path(store, sha256)
        if store.fs.exists(destination):
            store.fs.rm(temporary)
            _touch(store, destination)
        else:
            store.fs.makedirs(destination.rsplit("/", 1)[0], exist_ok=True)
            store.fs.mv(temporary, destination)
    except BaseException:
        if store.fs.exists(temporary):
            store.fs.rm(temporary)
        raise
    return FileEntry(path=local.name, sha256=sha256, size=size)


def _touch(store: BlobStore, path: str) -> None:
    # A reused blob is fresh again, so `gc --grace` does not take it while its registration commits.
    if store.is_local:
        Path(path).touch()


def directory_files(directory: Path) -> list[Path]:
    """Files in the order tuneforge.base.outputs.sha256_path lists them (sorted Paths, not sorted strings)."""
    return [child for child in sorted(directory.rglob("*")) if child.is_file()]


def listing_sha256(entries: list[FileEntry], *, with_records: bool = False) -> str:
    """The directory hash of tuneforge.base.outputs.sha256_path, computed from a manifest. `with_records` keeps the
    execution records in: how registries before that rule hashed a folder (their rows stay readable)."""
    ordered = sorted(
        (entry for entry in entries if with_records or not is_execution_record(entry.path)),
        key=lambda entry: PurePosixPath(entry.path),
    )
    listing = "".join(f"{entry.path}\t{entry.sha256}\n" for entry in ordered)
    return hashlib.sha256(listing.encode()).hexdigest()


def put_directory(store: BlobStore, directory: Path) -> tuple[str, list[FileEntry]]:
    """Store every file of a directory; returns (directory hash, manifest) and writes the manifest."""
    entries = []
    for child in directory_files(directory):
        stored = put_file(store, child)
        entries.append(FileEntry(child.relative_to(directory).as_posix(), stored.sha256, stored.size))
    sha256 = listing_sha256(entries)
    _put_manifest(store, sha256, entries)
    return sha256, entries


def _put_manifest(store: BlobStore, sha256: str, entries: list[FileEntry]) -> None:
    # The store stays self-describing (the database holds the same listing in artifact_files).
    destination = manifest_path(store, sha256)
    if store.fs.exists(destination):
        _touch(store, destination)
        return
    payload = json.dumps([[e.path, e.sha256, e.size] for e in entries], indent=0).encode()
    temporary = f"{store.base}/tmp/{uuid.uuid4().hex}"
    store.fs.pipe_file(temporary, payload)
    store.fs.makedirs(f"{store.base}/manifests", exist_ok=True)
    store.fs.mv(temporary, destination)


def stored_sha256(store: BlobStore, sha256: str) -> str | None:
    """The hash of the bytes stored under `sha256` now (None when the blob is missing)."""
    path = blob_path(store, sha256)
    if not store.fs.exists(path):
        return None
    digest = hashlib.sha256()
    with store.fs.open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(store: BlobStore, sha256: str, destination: Path, label: str) -> None:
    """Copy a blob to a local file, refusing it (and leaving no file) unless its bytes hash to `sha256`."""
    path = blob_path(store, sha256)
    if not store.fs.exists(path):
        raise RegistryError(f"{label}: blob sha256:{sha256} is missing from the artifact store {store.url}")
    destination.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    try:
        with store.fs.open(path, "rb") as source, open(destination, "wb") as target:
            for chunk in iter(lambda: source.read(CHUNK), b""):
                digest.update(chunk)
                target.write(chunk)
        if digest.hexdigest() != sha256:
            raise RegistryError(tampered_message(label, sha256, digest.hexdigest()))
    except BaseException:
        destination.unlink(missing_ok=True)
        raise


def tampered_message(label: str, expected: str, actual: str) -> str:
    return f"{label}: stored blob does not match its hash (expected sha256 {expected}, got {actual}): tampered"


def safe_relative(path: str) -> PurePosixPath:
    """A manifest path that stays inside the download folder."""
    relative = PurePosixPath(path)
    if relative.is_absolute() or not relative.parts or any(part in ("..", "") for part in relative.parts):
        raise RegistryError(f"manifest path {path!r} would leave the target folder")
    return relative


def iter_blobs(store: BlobStore) -> Iterator[tuple[str, str]]:
    """(sha256, path) of every blob in the store."""
    root = f"{store.base}/sha256"
    if not store.fs.exists(root):
        return
    for path in store.fs.find(root):
        parts = path[len(root) + 1 :].split("/")
        if len(parts) == 2 and len(parts[0]) == 2:
            yield parts[0] + parts[1], path


def iter_manifests(store: BlobStore) -> Iterator[tuple[str, str]]:
    root = f"{store.base}/manifests"
    if not store.fs.exists(root):
        return
    for path in store.fs.find(root):
        name = path.rsplit("/", 1)[-1]
        if name.endswith(".json"):
            yield name.removesuffix(".json"), path


def iter_temporaries(store: BlobStore) -> Iterator[str]:
    root = f"{store.base}/tmp"
    if store.fs.exists(root):
        yield from store.fs.find(root)


def age_s(store: BlobStore, path: str) -> float:
    """Seconds since the file was last written; infinite where the filesystem does not say."""
    info = store.fs.info(path)
    stamp = info.get("mtime") or info.get("LastModified") or info.get("created")
    if stamp is None:
        return float("inf")
    seconds = stamp.timestamp() if hasattr(stamp, "timestamp") else float(stamp)
    return time.time() - seconds


def remove(store: BlobStore, path: str) -> int:
    size = store.fs.size(path) or 0
    store.fs.rm(path)
    return size
