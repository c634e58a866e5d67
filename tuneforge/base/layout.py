"""Where each stage reads and writes; dvc.yaml declares the same paths as its deps and outs.

The constants are those paths relative to the checkout; `Workspace` is the same layout under any root,
which is how every stage's run() is told where to work.
"""

from dataclasses import dataclass
from pathlib import Path

VALIDATED_DIR = Path("data/validated")
SPLITS_DIR = Path("data/splits")
AUGMENTED_DIR = Path("data/augmented")
MODELS_DIR = Path("models")
TEACHER_DIR = MODELS_DIR / "teacher"
STUDENT_DIR = MODELS_DIR / "student"
ONNX_DIR = MODELS_DIR / "onnx"
TUNE_DIR = MODELS_DIR / "tune"
BEST_PARAMS = TUNE_DIR / "best_params.yaml"
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


# Workspace's folders and where each lies under its root by default.
_FOLDERS = {
    "validated": VALIDATED_DIR,
    "splits": SPLITS_DIR,
    "augmented": AUGMENTED_DIR,
    "teacher": TEACHER_DIR,
    "student": STUDENT_DIR,
    "onnx": ONNX_DIR,
    "tune": TUNE_DIR,
    "expectations": EXPECTATIONS_DIR,
}


@dataclass(frozen=True)
class Workspace:
    """The pipeline's files under `root` (default: the working directory, as dvc.yaml runs the stages).

    Each folder lies where the constants above put it, under `root`, unless given: a folder given lies where
    it says (relative to the working directory, not to `root`), e.g. validate and split run in a scratch
    workspace on the checkout's suites as `Workspace(root=scratch, expectations=EXPECTATIONS_DIR)`.
    Reports, metrics and checkpoints always lie under `root`.
    """

    root: Path = Path(".")
    # None: the folder's place under root (filled in on creation, so each is a Path once made).
    validated: Path | None = None
    splits: Path | None = None
    augmented: Path | None = None
    teacher: Path | None = None
    student: Path | None = None
    onnx: Path | None = None
    tune: Path | None = None
    expectations: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))
        for name, default in _FOLDERS.items():
            given = getattr(self, name)
            object.__setattr__(self, name, self.root / default if given is None else Path(given))

    @property
    def test_split(self) -> Path:
        return self.splits / "test.parquet"

    @property
    def tuned_params(self) -> Path:
        """The tune stage's best trial, which the train stage merges when train.use_tuned is true."""
        return self.tune / BEST_PARAMS.name

    @property
    def checkpoints(self) -> Path:
        """Where training keeps a model's checkpoints (in <checkpoints>/<model folder name>) until it succeeds."""
        return self.root / CHECKPOINTS_DIR

    def reports(self, stage: str) -> Path:
        return self.root / reports_dir(stage)

    def metrics(self, stage: str) -> Path:
        return self.root / metrics_file(stage)
