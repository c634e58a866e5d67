"""Where each stage writes. dvc.yaml declares the same paths as outs (tests/test_dvc_yaml.py checks they agree)."""

from pathlib import Path

VALIDATED_DIR = Path("data/validated")
SPLITS_DIR = Path("data/splits")
AUGMENTED_DIR = Path("data/augmented")
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
