"""One run at a time per checkout: the lock that `tuneforge run`, `tuneforge stage` and the finetune flow hold.

A run writes its overrides into params.yaml and then runs stages that read params.yaml; DVC records the file
in dvc.lock when each stage ends. Two runs in one checkout would interleave those writes and reads (the gates
of one run used with the params.yaml of the other, and `dvc status` saying all is up to date), so each holds
an exclusive lock on .tuneforge/run.lock from before it writes params.yaml until its last stage has ended.

A second run is refused at once with one line naming the holder (pid, command, start time); it does not
wait. The lock is an flock: the kernel drops it when its holder exits, killed or not, so no stale lock is
ever left to remove by hand. The stages themselves (`python -m stages.X`, launched by DVC) never take it, so
a holder can run them without deadlocking on its own lock.
"""

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from tuneforge.base.errors import StageError

LOCK_FILE = Path(".tuneforge/run.lock")
HOLDER_FILE = Path(".tuneforge/run.holder.json")  # who holds it, for the refusal line (the lock file is empty)


@contextlib.contextmanager
def checkout_lock(root: Path = Path("."), command: str | None = None) -> Iterator[None]:
    """Hold the checkout's run lock for the block, or raise one StageError line naming who holds it."""
    root = Path(root)
    lock_path, holder_path = root / LOCK_FILE, root / HOLDER_FILE
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise StageError(
            f"another run is using this checkout ({_describe(holder_path)}); wait for it to finish, or use "
            f"another clone (lock: {lock_path})"
        ) from None
    try:
        holder = {"pid": os.getpid(), "command": command or _command_line(), "started": time.time()}
        holder_path.write_text(json.dumps(holder) + "\n", encoding="utf-8")
        yield
    finally:
        holder_path.unlink(missing_ok=True)  # before releasing: the next holder writes its own
        lock.release()


def _describe(holder_path: Path) -> str:
    try:
        holder = json.loads(holder_path.read_text(encoding="utf-8"))
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(holder["started"])))
        return f"`{holder['command']}`, pid {int(holder['pid'])}, since {started}"
    except (OSError, ValueError, KeyError, TypeError):
        return "its holder has not recorded itself yet"


def _command_line() -> str:
    name = Path(sys.argv[0]).name if sys.argv else "python"
    return " ".join([name, *sys.argv[1:]])
