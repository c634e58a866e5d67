"""One rank of a multi-process training run: `torchrun ... -m tuneforge.pipeline.train_worker SPEC.json`.

The train stage writes SPEC.json (resolved config, paths, resume point) and launches this module through
torchrun; each rank runs tuneforge.training.fit.fit. Every rank writes rank-<n>.json (its weight digest and peak
memory) beside the spec, and rank 0 also writes result.json, which the stage reads back.
"""

import json
import sys
from pathlib import Path

from tuneforge.base.errors import StageError, report_failure
from tuneforge.base.outputs import write_json
from tuneforge.pipeline.runner import quiet_libraries

quiet_libraries()  # before transformers is imported: it reads the environment once

from tuneforge.tasks import get_task  # noqa: E402
from tuneforge.training.fit import fit  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spec_path = Path(argv[0])
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    try:
        result = fit(spec, get_task(spec["model"]["task"]))
    except StageError as exc:
        return report_failure(exc, "train")
    rank = result["ranks"][0]
    write_json(spec_path.parent / f"rank-{rank['rank']}.json", {**rank, "peak_rss_mb": result["memory"]["peak_rss_mb"]})
    if rank["rank"] == 0:
        write_json(spec_path.parent / "result.json", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
