"""Crash-safe training: resume from the last complete checkpoint, and only one written by the same config.

The Trainer writes `checkpoint-<step>/` directories under the checkpoint directory (beside the model
outputs, never inside them). After each one is complete, `CheckpointMarker` writes MARKER into it with
the hash of everything that determines the run (the model and train sections, the input files' hashes);
a directory without the marker was cut short by a crash and is discarded. A checkpoint whose hash differs
from this run's is refused, never resumed silently: the user deletes the directory to start over.
"""

import hashlib
import json
import re
import shutil
from pathlib import Path

from transformers import TrainerCallback

from tuneforge.base.errors import StageError
from tuneforge.base.outputs import atomic_write_text

MARKER = "tuneforge_checkpoint.json"
# ASCII digits to the true end (fullmatch): \d and int() also take other scripts' digits, `$` a newline.
_CHECKPOINT = re.compile(r"checkpoint-([0-9]+)")


def config_hash(payload: dict) -> str:
    """sha256 of a canonical JSON rendering of whatever determines the training run."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def checkpoints(directory: Path) -> list[Path]:
    """`checkpoint-<step>` directories, oldest step first."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if p.is_dir() and (m := _CHECKPOINT.fullmatch(p.name))]
    return [path for _, path in sorted(found)]


def resume_point(directory: Path, expected_hash: str) -> Path | None:
    """The last complete checkpoint to resume from, None to start fresh, or a StageError on a config mismatch."""
    directory = Path(directory)
    complete = []
    for path in checkpoints(directory):
        if (path / MARKER).is_file():
            complete.append(path)
        else:
            # Killed while this one was being written: it cannot be trusted, and the step will be redone.
            shutil.rmtree(path, ignore_errors=True)
    for path in complete:
        stored = _stored_hash(path)
        if stored != expected_hash:
            raise StageError(
                f"{path}: checkpoint of a different config or input data (hash {str(stored)[:12]}, this run "
                f"{expected_hash[:12]}); it is never resumed silently: delete it to start over "
                f"(rm -rf {directory})"
            )
    return complete[-1] if complete else None


def _stored_hash(path: Path) -> str | None:
    try:
        return json.loads((path / MARKER).read_text(encoding="utf-8")).get("config_hash")
    except (OSError, ValueError, AttributeError):
        return None


def discard(directory: Path) -> None:
    """After a successful run the checkpoints have served their purpose; a later run starts fresh."""
    shutil.rmtree(directory, ignore_errors=True)


class CheckpointMarker(TrainerCallback):
    """Marks each checkpoint complete, with the run's config hash, once the Trainer has fully written it."""

    def __init__(self, run_hash: str):
        self.run_hash = run_hash

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if path.is_dir():
                payload = {"config_hash": self.run_hash, "step": state.global_step}
                atomic_write_text(path / MARKER, json.dumps(payload, indent=2) + "\n")
        return control
