"""Lineage: the tree from an artifact (or a model version's artifacts) back to the raw sources."""

from typing import Any

from sqlalchemy.orm import Session

from registry.schema import Artifact, LineageEdge, Model, ModelVersion
from registry.versions import linked_artifacts, role_artifacts


def artifact_tree(session: Session, artifact: Artifact, role: str | None = None, seen: set | None = None) -> dict:
    """{ref, kind, sha256, path, stage, role, inputs: [...]}; an artifact met twice is shown once in full."""
    seen = set() if seen is None else seen
    node: dict[str, Any] = {
        "ref": f"{artifact.name}:{artifact.version}", "kind": artifact.kind, "sha256": artifact.sha256,
        "path": artifact.path, "stage": artifact.stage, "role": role, "inputs": [],
    }
    if artifact.id in seen:
        node["repeated"] = True
        return node
    seen.add(artifact.id)
    edges = linked_artifacts(
        session, LineageEdge.role, LineageEdge.input_artifact_id, LineageEdge.artifact_id, artifact.id
    )
    node["inputs"] = [artifact_tree(session, parent, edge_role, seen) for edge_role, parent in edges]
    return node


def version_tree(session: Session, model: Model, version: ModelVersion) -> dict:
    seen: set = set()
    return {
        "ref": f"{model.name}:{version.version}", "kind": "model_version", "sha256": None, "path": None,
        "stage": None, "role": None,
        "inputs": [
            artifact_tree(session, artifact, role, seen)
            for role, artifact in role_artifacts(session, version).items()
        ],
    }


def sources(tree: dict) -> list[dict]:
    """The leaves of a lineage tree: what everything was made from."""
    if not tree["inputs"]:
        return [] if tree.get("repeated") else [tree]
    return [leaf for child in tree["inputs"] for leaf in sources(child)]
