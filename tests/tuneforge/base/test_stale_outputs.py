"""What a killed stage leaves beside its outputs is removed by the next run (issue #18).

A stage builds `models/.teacher.tmp-*` and renames it into place at the end; SIGKILL (or OOM, or a power
cut) skips its cleanup and the temporary directory stayed forever. Temporaries now carry their owner's
pid, and atomic_dirs / atomic_write_text remove the ones whose owner is gone before writing a target.
"""

import subprocess
import sys

from stages import validate
from tests.helpers.project import REPO_ROOT, labelled_rows, write_csv
from tuneforge.base.layout import Workspace
from tuneforge.base.outputs import atomic_dirs, atomic_write_text, remove_stale_siblings
from tuneforge.base.spec import DataConfig, ValidateConfig

# Enters atomic_dirs for the target, says where its temporary directory is, and waits to be killed.
KILLED_WRITER = """\
import sys
from pathlib import Path
from tuneforge.base.outputs import atomic_dirs
with atomic_dirs(Path(sys.argv[1])) as (staging,):
    (staging / "model.safetensors").write_bytes(b"half a model")
    print(staging, flush=True)
    sys.stdin.read()
"""


def dead_pid() -> int:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(finished.stdout)


def test_a_sigkilled_stage_leaves_a_temporary_directory_that_the_next_run_removes(tmp_path):
    target = tmp_path / "models" / "teacher"
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(target)], cwd=REPO_ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    staging = writer.stdout.readline().strip()
    writer.kill()  # SIGKILL: no finally, no cleanup
    writer.wait()
    assert staging.startswith(str(tmp_path / "models" / f".teacher.tmp-{writer.pid}-"))
    assert [path.name for path in (tmp_path / "models").iterdir()] == [staging.rsplit("/", 1)[1]]

    with atomic_dirs(target) as (fresh,):
        (fresh / "config.json").write_text("{}")
    assert sorted(path.name for path in (tmp_path / "models").iterdir()) == ["teacher"]
    assert [path.name for path in target.iterdir()] == ["config.json"]


def test_only_temporaries_of_dead_owners_and_of_this_target_are_removed(tmp_path):
    dead = dead_pid()
    stale = [f".teacher.tmp-{dead}-0badc0de", ".teacher.tmp-5f3a9c1e", f".teacher.old-{dead}-1badc0de"]
    kept = [".teacher.tmp-1-cafe0001",  # pid 1 is alive (and not ours to judge)
            f".student.tmp-{dead}-0badc0de", ".teacher.json.tmp-5f3a9c1e", "teacher"]
    for name in stale + kept:
        (tmp_path / name).mkdir()
        (tmp_path / name / "weights").write_bytes(b"x")
    removed = remove_stale_siblings(tmp_path / "teacher")
    assert sorted(path.name for path in removed) == sorted(stale)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(kept)


def test_a_stale_temporary_file_beside_a_metrics_file_is_removed_on_the_next_write(tmp_path):
    (tmp_path / f".validate.json.tmp-{dead_pid()}-0badc0de").write_text("{")
    atomic_write_text(tmp_path / "validate.json", "{}\n")
    assert [path.name for path in tmp_path.iterdir()] == ["validate.json"]


def test_a_real_stage_run_removes_what_a_killed_run_left(in_tmp_dir):
    write_csv(in_tmp_dir / "in" / "train.csv", labelled_rows(classes=3, per_class=12))
    leftovers = [in_tmp_dir / "data" / ".validated.tmp-0badc0de", in_tmp_dir / "reports" / ".validate.tmp-0badc0de"]
    for path in leftovers:
        path.mkdir(parents=True)
    validate.run(DataConfig(dir="in", train_file="train.csv"), ValidateConfig(),
                 workspace=Workspace(expectations=REPO_ROOT / "expectations"))
    assert not any(path.exists() for path in leftovers)
    assert (in_tmp_dir / "data" / "validated" / "train.parquet").is_file()
