"""Where each stage writes; dvc.yaml declares the same paths as its outs."""

from pathlib import Path

VALIDATED_DIR = Path("data/validated")
SPLITS_DIR = Path("data/splits")
AUGMENTED_DIR = Path("data/augmented")
MODELS_DIR = Path("models")
TEACHER_DIR = MODELS_DIR / "teacher"
STUDENT_DIR = MODELS_DIR / "student"
ONNX_DIR = MODELS_DIR / "onnx"
# Resumable training state lives beside, not inside, the model outputs: it is neither a DVC out nor in git.
CHECKPOINTS_DIR = MODELS_DIR / ".checkpoints"
REPORTS_DIR = Path("reports")
EXPECTATIONS_DIR = Path("expectations")
PARAMS_FILE = Path("params.yaml")

SPLIT_NAMES = ("train", "val", "test")


def reports_dir(stage: str) -> Path:
    """A stage's reports for people (HTML, Markdown) and gates (JSON): a DVC out directory."""
    return REPORTS_DIR / stage


def metrics_file(stage: str) -> Path:
    """A stage's DVC metrics file, outside its reports directory so DVC outputs never overlap."""
    return REPORTS_DIR / "metrics" / f"{stage}.json"


def checkpoints_dir(model_dir: Path) -> Path:
    """Where training a model directory keeps its checkpoints until it succeeds (models/.checkpoints/<name>)."""
    model_dir = Path(model_dir)
    return model_dir.parent / CHECKPOINTS_DIR.name / model_dir.name

