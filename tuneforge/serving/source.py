"""What a REF names (NAME@ALIAS, NAME:VERSION or a model folder), and a verified local folder for it.

A registered version is served from its `serve.model_role` artifact (the int8 ONNX folder). Verification
is the registry's and the loader's, not the server's own: `registered_model_folder` has the registry
re-hash every stored blob of the version and hand back the role's copy through `api.resolve` (re-verified,
repaired from the store when it was altered); onnx_predictor.load then checks each file it loads against
the sha256 its meta.json records. A missing or tampered blob refuses the version.
"""

import re
from dataclasses import dataclass
from pathlib import Path

from registry.config import RegistryConfig
from registry.errors import RegistryError
from registry.names import Ref, parse_ref
from tuneforge.base.errors import StageError

_SHA256 = re.compile(r"[0-9a-f]{64}")


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


def registered_model_folder(name: str, version: int, role: str, config: RegistryConfig) -> tuple[Path, dict]:
    """(local folder of `role`, {"artifact", "sha256", "files": {path: sha256}}) of NAME:VERSION, verified
    by the registry: every stored blob of the version re-hashed (all roles, as a promotion does), then the
    role's copy from `api.resolve`, which re-hashes its cached copy and rebuilds it from the store when it
    differs. The loader then checks the bytes it loads (onnx_predictor.load). No hashing of our own here.
    """
    from registry import api
    from registry.blobs import tampered_message

    ref = f"{name}:{version}"
    # cache=False: a cached copy that differs is not a reason to refuse; resolve below repairs it.
    problems = api.verify(ref, cache=False, config=config)["problems"]
    if problems:
        label, expected, actual = (problems[0][key] for key in ("artifact", "expected", "actual"))
        if actual == "missing":
            raise StageError(f"{ref}: {label}: blob sha256:{expected} is missing from the store")
        if not _SHA256.fullmatch(actual):  # the registry's own reason (a manifest that does not hash right)
            raise StageError(f"{ref}: {actual}")
        raise StageError(f"{ref}: {tampered_message(label, expected, actual)}")
    artifacts = api.show(ref, config=config)["artifacts"]
    if role not in artifacts:
        raise StageError(f"{ref} has no role '{role}' (serve.model_role); its roles: {', '.join(sorted(artifacts))}")
    artifact = f"{artifacts[role]['name']}:{artifacts[role]['version']}"
    recorded = api.show(artifact, config=config)
    if not recorded.get("is_dir", bool(recorded["files"])):
        raise StageError(f"{ref}: role '{role}' is {artifact}, a file, not a model folder (serve.model_role)")
    folder = api.resolve(artifact, config=config)
    files = {entry["path"]: entry["sha256"] for entry in recorded["files"]}
    return folder, {"artifact": artifact, "sha256": recorded["sha256"], "files": files}
