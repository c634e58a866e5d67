"""A loaded model and its identity: what every response names (model, version, sha256) and /v1/model shows.

`predictions` is the one call from model outputs to the response's per-input shape; it goes through
tuneforge.inference.onnx_predictor.predict(), so a task that predict() learns comes through without server changes.
"""

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from registry.config import RegistryConfig
from tuneforge.base.errors import StageError
from tuneforge.base.integrity import recorded_hashes
from tuneforge.base.outputs import sha256_path
from tuneforge.base.spec import ServeConfig
from tuneforge.inference import onnx_predictor as onnx_predict
from tuneforge.serving.source import ModelRef, registered_model_folder


@dataclass(frozen=True)
class ServedModel:
    classifier: onnx_predict.OnnxClassifier
    name: str
    version: int | None
    sha256: str  # the served folder's hash: the registry artifact's sha256 (a folder: its listing's hash)
    alias: str | None = None
    artifact: str | None = None  # e.g. export.onnx:3
    files: dict[str, str] = field(default_factory=dict)
    loaded_at: float = field(default_factory=time.time)
    load_seconds: float = 0.0

    @property
    def label(self) -> str:
        return f"{self.name}:{self.version}" if self.version is not None else self.name

    def identity(self) -> dict:
        """What every prediction response carries."""
        return {"name": self.name, "version": self.version, "sha256": self.sha256}

    def describe(self) -> dict:
        """/v1/model: identity, where it came from, hashes, labels and the decision rule."""
        return {
            **self.identity(), "alias": self.alias, "artifact": self.artifact, "path": str(self.classifier.path),
            "hashes": self.files, "labels": self.classifier.labels,
            # The rule labels.json names (tuneforge/inference/outputs.py) and its calibration: a temperature,
            # or multi-label thresholds; {} when the folder ships raw scores.
            "decision": self.classifier.outputs.name, "calibration": dict(self.classifier.calibration),
            "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.loaded_at)),
            "load_seconds": round(self.load_seconds, 3),
        }


def predictions(model: ServedModel, texts: list[str], top_k: int) -> list[dict]:
    """{"prediction", "scores": {label: probability}} per text, the k most probable labels in scores; a
    multi-label prediction is the list of labels at or above their thresholds (possibly empty)."""
    results = onnx_predict.predict(model.classifier, texts, batch_size=max(1, len(texts)), top_k=top_k)
    return [{"prediction": r["label"], "scores": {top["label"]: top["score"] for top in r["top"]}} for r in results]


def onnx_threads(serve: ServeConfig) -> int:
    """serve.threads, else this process's share of the usable cores."""
    if serve.threads:
        return serve.threads
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, usable // serve.workers)


def load_model(ref: ModelRef, serve: ServeConfig, registry: RegistryConfig, version: int | None = None) -> ServedModel:
    """Load what REF names (for an alias: `version`, the one it names now), verified, and warmed up.

    A registered version comes verified from the registry (source.registered_model_folder); a plain folder
    is checked by the loader alone, against its meta.json. Either way onnx_predictor.load refuses any file
    it loads that does not hash to its recorded sha256 (it loads the bytes it checked)."""
    started = time.perf_counter()
    if ref.folder is not None:
        folder = model_folder(ref.folder, serve.model_role)
        # The folder's content hash as the registry computes it: the same model has the same sha256 either way.
        identity = {"name": ref.folder.resolve().name, "version": None, "sha256": sha256_path(folder),
                    "artifact": None, "files": recorded_hashes(folder)}
    else:
        name = ref.registry.name
        version = version if version is not None else ref.registry.version
        folder, recorded = registered_model_folder(name, version, serve.model_role, registry)
        identity = {"name": name, "version": version, "sha256": recorded["sha256"], "artifact": recorded["artifact"],
                    "files": recorded["files"]}
    # No spinning: busy-waiting onnxruntime threads take the cores from the event loop between batches
    # (at concurrency 8 on 2 shared cores, p99 37-40 ms without it vs 80-87 ms with it, twice the req/s).
    classifier = onnx_predict.load(folder, variant=serve.variant, threads=onnx_threads(serve), verify=True,
                                   spinning=False)
    model = ServedModel(classifier=classifier, alias=ref.registry.alias if ref.registry else None, **identity)
    predictions(model, ["warm-up"], 1)  # the first run allocates: pay it before the model takes traffic
    return replace(model, load_seconds=time.perf_counter() - started)


def model_folder(folder: Path, role: str) -> Path:
    """A models/onnx folder itself, or a downloaded version folder holding it as `role`/."""
    if any((folder / name).is_file() for name in onnx_predict.MODEL_FILES.values()):
        return folder
    if (folder / role).is_dir():
        return folder / role
    raise StageError(f"{folder}: no model.int8.onnx or model.onnx in it, nor in {folder / role}")

