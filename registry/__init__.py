"""The model and artifact registry: versioned artifacts with lineage, registered models, aliases,
promotion gates and an append-only audit log (SQLAlchemy metadata, content-addressed blobs on fsspec).

Stages register through `record_stage`; applications and people use `registry.api` and
`tuneforge registry ...` (registry/cli.py).
"""

from registry.errors import RegistryError
from registry.record import record_stage
from registry.store import ArtifactRef

__all__ = ["ArtifactRef", "RegistryError", "record_stage"]
