"""What a REF names (NAME@ALIAS, NAME:VERSION or a model folder), and a verified local folder for it.

A registered version is served from its `serve.model_role` artifact (the int8 ONNX folder). Before a
version is loaded, every blob it holds in the store is re-hashed and the local copy of the served role is
hashed against the registry's manifest (`verified_model_folder`): a missing or tampered file refuses it.
"""

from dataclasses import dataclass
from pathlib import Path

from registry.errors import RegistryError
from registry.names import Ref, parse_ref
from tuneforge.base.errors import StageError
from tuneforge.base.outputs import sha256_file
from tuneforge.base.spec import RegistryConfig


@dataclass(frozen=True)
class ModelRef:
    """A parsed REF: `registry` set for NAME@ALIAS and NAME:VERSION, `folder` for a model folder."""

    text: str
    registry: Ref | None = None
    folder: Path | None = None

    @property
    def follows_alias(self) -> bool:
        return self.registry is not None and self.registry.alias is not None


def parse_model_ref(text: str) -> ModelRef:
    """NAME@ALIAS, NAME:VERSION, or an existing folder; anything else is one StageError line."""
    if Path(text).is_dir():
        return ModelRef(text, folder=Path(text))
    if "@" not in text and ":" not in text:
        looks_like_path = "/" in text or text.startswith(".")
        what = "no such model folder" if looks_like_path else "not a model reference"
        raise StageError(f"{text}: {what} (give NAME@ALIAS, NAME:VERSION or a model folder)")
    try:
        return ModelRef(text, registry=parse_ref(text))
    except RegistryError as exc:
        raise StageError(exc.message) from None


class AliasWatcher:
    """Reads which version NAME@ALIAS names now, on one database engine kept open between polls."""

    def __init__(self, ref: Ref, config: RegistryConfig):
        from registry.db import open_database

        self.ref = ref
        self.engine = open_database(config.url, config.busy_timeout_s, config.connect_timeout_s)

    def version(self) -> int:
        from registry.db import reading
        from registry.versions import get_version

        with reading(self.engine) as session:
            return get_version(session, self.ref)[1].version

    def close(self) -> None:
        self.engine.dispose()


def current_version(ref: Ref, config: RegistryConfig) -> int:
    """The version NAME@ALIAS or NAME:VERSION names now (RegistryError when there is none)."""
    from registry import api

    return api.show(str(ref), config=config)["version"]


def verified_model_folder(name: str, version: int, role: str, config: RegistryConfig) -> tuple[Path, dict]:
    """(local folder of `role`, {"artifact", "sha256", "files": {path: sha256}}) of NAME:VERSION, verified.

    Re-hashes every stored blob of the version (all roles, as a promotion does) and every file of the local
    copy of `role` against the recorded manifest. One function, so that a registry-side check can replace it.
    """
    from registry import api

    ref = f"{name}:{version}"
    report = api.verify(ref, config=config)
    if report["problems"]:
        problem = report["problems"][0]
        state = "missing" if problem["actual"] == "missing" else f"tampered (its bytes hash to {problem['actual']})"
        raise StageError(f"{ref}: {problem['artifact']}: blob sha256:{problem['expected']} is {state}")
    artifacts = api.show(ref, config=config)["artifacts"]
    if role not in artifacts:
        raise StageError(f"{ref} has no role '{role}' (serve.model_role); its roles: {', '.join(sorted(artifacts))}")
    artifact = f"{artifacts[role]['name']}:{artifacts[role]['version']}"
    recorded = api.show(artifact, config=config)
    folder = api.resolve(artifact, config=config)
    if not recorded.get("is_dir", bool(recorded["files"])):
        raise StageError(f"{ref}: role '{role}' is {artifact}, a file, not a model folder (serve.model_role)")
    files = {entry["path"]: entry["sha256"] for entry in recorded["files"]}
    check_files(folder, files, f"{ref} ({role} = {artifact})")
    return folder, {"artifact": artifact, "sha256": recorded["sha256"], "files": files}


def check_files(folder: Path, files: dict[str, str], label: str) -> None:
    """Every recorded file present with its recorded sha256, and nothing else in the folder."""
    present = {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()}
    for relative, expected in sorted(files.items()):
        if relative not in present:
            raise StageError(f"{label}: {relative} is missing from the local copy {folder}")
        actual = sha256_file(folder / relative)
        if actual != expected:
            raise StageError(f"{label}: {folder / relative} does not match its recorded sha256 "
                             f"{expected} (got {actual}): tampered")
    extra = sorted(present - set(files))
    if extra:
        raise StageError(f"{label}: {folder} holds files the registry did not record: {', '.join(extra[:3])}")


def folder_hashes(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file in a plain model folder."""
    return {path.relative_to(folder).as_posix(): sha256_file(path) for path in sorted(folder.rglob("*"))
            if path.is_file()}
