"""Model files checked against the sha256 recorded when they were written, before anything loads them.

The stages that write a model folder (train, distill, export) record each of its files in its meta.json
(`"files": {relative path: {"sha256", "bytes"}}`, from `file_hashes`). A loader reads that record once
(`recorded_hashes`) and checks the files it is about to load: `verify_files` hashes them where they lie (for
loaders that open paths themselves), `verified_bytes` returns the bytes it hashed (so what was checked is
exactly what gets loaded). Each file is hashed once per load, never per request. Every refusal is one
StageError line naming the file.
"""

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath

from tuneforge.base.errors import StageError
from tuneforge.base.outputs import read_meta, sha256_file

META_FILE = "meta.json"
NO_VERIFY_HINT = "for a folder made by hand, tuneforge predict --no-verify skips the check"
_SHA256 = re.compile(r"[0-9a-f]{64}")


def file_hashes(folder: Path) -> dict[str, dict]:
    """{relative path: {"sha256", "bytes"}} of every file in `folder` but its meta.json: what a stage records."""
    folder = Path(folder)
    return {
        path.relative_to(folder).as_posix(): {"sha256": sha256_file(path), "bytes": path.stat().st_size}
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.relative_to(folder).as_posix() != META_FILE
    }


def has_record(folder: Path) -> bool:
    """Whether `folder`/meta.json records its files (folders written before that, or by hand, do not)."""
    return "files" in read_meta(folder)


def verify_folder(folder: Path, *, present_only: bool = False) -> None:
    """Every file of `folder` is one meta.json records, with its recorded sha256: for loaders that read
    whichever files a library picks (from_pretrained), so no file may be unaccounted for. Recorded files
    that are absent are refused too, unless `present_only` (a loader whose own checks name a missing
    config, weights or tokenizer more precisely calls `require_recorded_files` once they have run)."""
    folder = Path(folder)
    hashes = recorded_hashes(folder)
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if path.is_file() and relative != META_FILE and relative not in hashes:
            raise StageError(f"{path}: not among the files {folder / META_FILE} records; refusing to load it")
    if not present_only:
        require_recorded_files(folder, hashes)
    verify_files(folder, hashes, [name for name in hashes if (folder / name).is_file()])


def require_recorded_files(folder: Path, hashes: Mapping[str, str] | None = None) -> None:
    """Every file `folder`/meta.json records is there (a deleted file changes what a loader builds)."""
    folder = Path(folder)
    hashes = recorded_hashes(folder) if hashes is None else hashes
    for name in hashes:
        _recorded_path(folder, hashes, name)


def recorded_hashes(folder: Path) -> dict[str, str]:
    """{relative path: sha256} from `folder`/meta.json's "files", or one StageError line."""
    folder = Path(folder)
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise StageError(f"{folder}: no {META_FILE} recording its files' sha256, so they cannot be verified "
                         f"({NO_VERIFY_HINT})")
    try:
        files = json.loads(meta_path.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise StageError(f'{meta_path}: no "files" with their sha256, so they cannot be verified '
                         f"({NO_VERIFY_HINT})") from None
    if not isinstance(files, dict):
        raise StageError(f'{meta_path}: "files" must map file names to their sha256')
    hashes = {}
    for name, entry in files.items():
        sha256 = entry.get("sha256") if isinstance(entry, dict) else entry
        if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
            raise StageError(f'{meta_path}: "files" has no valid sha256 for {name!r}')
        hashes[str(name)] = sha256
    return hashes


def verify_files(folder: Path, hashes: Mapping[str, str], names: Iterable[str] | None = None) -> None:
    """Each of `names` (default: every recorded file) must be in `folder` and hash to its recorded sha256."""
    folder = Path(folder)
    for name in hashes if names is None else names:
        path = _recorded_path(folder, hashes, name)
        _check(folder, path, hashes[name], sha256_file(path))


def verified_bytes(folder: Path, hashes: Mapping[str, str], name: str) -> bytes:
    """The bytes of `folder`/`name`, read once, after checking they hash to the recorded sha256."""
    folder = Path(folder)
    path = _recorded_path(folder, hashes, name)
    data = path.read_bytes()
    _check(folder, path, hashes[name], hashlib.sha256(data).hexdigest())
    return data


def _recorded_path(folder: Path, hashes: Mapping[str, str], name: str) -> Path:
    relative = PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise StageError(f"{folder / META_FILE}: file {name!r} is outside the folder")
    path = folder.joinpath(*relative.parts)
    if name not in hashes:
        raise StageError(f"{path}: not among the files {folder / META_FILE} records; refusing to load it")
    if not path.is_file():
        raise StageError(f"{path}: no such file")
    return path


def _check(folder: Path, path: Path, expected: str, actual: str) -> None:
    if actual != expected:
        raise StageError(
            f"{path}: sha256 {actual[:16]}... does not match the {expected[:16]}... recorded in "
            f"{folder / META_FILE}: the file changed after it was written; refusing to load it"
        )
