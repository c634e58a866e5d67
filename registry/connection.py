"""An open registry: the database engine plus the blob store, from the `registry:` section of params.yaml."""

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from registry.blobs import BlobStore, open_store
from registry.config import RegistryConfig
from registry.db import open_database


@dataclass(frozen=True)
class Registry:
    engine: Engine
    store: BlobStore
    cache: Path


@contextlib.contextmanager
def opened(config: RegistryConfig | None = None) -> Iterator[Registry]:
    config = config or RegistryConfig()
    engine = open_database(config.url, config.busy_timeout_s, config.connect_timeout_s)
    try:
        yield Registry(engine=engine, store=open_store(config.artifacts), cache=Path(config.cache))
    finally:
        engine.dispose()
