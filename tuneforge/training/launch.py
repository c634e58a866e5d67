"""More than one training process: `fit` in every rank through torchrun (DDP; gloo on CPU, NCCL on GPUs)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tuneforge.base.errors import StageError
from tuneforge.base.outputs import write_json


def launch(spec: dict, processes: int) -> dict:
    """Run `fit` in `processes` ranks through torchrun; rank 0's result, with every rank's weight digest."""
    launch_dir = Path(spec["checkpoint_dir"]) / "launch"
    launch_dir.mkdir(parents=True, exist_ok=True)
    for stale in launch_dir.glob("*.json"):
        stale.unlink()
    spec_path = launch_dir / "spec.json"
    write_json(spec_path, spec)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
        "-m", "tuneforge.pipeline.train_worker", str(spec_path),
    ]
    # The workers import this package even when the stage runs from another working directory.
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    completed = subprocess.run(command, env=env, check=False)
    if completed.returncode != 0:
        raise StageError(f"training processes failed (torchrun exit code {completed.returncode}); see above")
    result = json.loads((launch_dir / "result.json").read_text(encoding="utf-8"))
    ranks = [json.loads(path.read_text(encoding="utf-8")) for path in sorted(launch_dir.glob("rank-*.json"))]
    result["ranks"] = ranks
    result["memory"]["peak_rss_mb"] = max(rank["peak_rss_mb"] for rank in ranks)
    if len(ranks) != processes or len({rank["weights_sha256"] for rank in ranks}) != 1:
        raise StageError(f"the {processes} training processes ended with different weights; nothing was written")
    return result

