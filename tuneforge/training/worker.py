"""One rank of a multi-process training run: `torchrun ... -m tuneforge.training.worker SPEC.json`.

The train stage writes SPEC.json (resolved config, paths, resume point) and launches this module through
torchrun; each rank runs stages.train.fit. Every rank writes rank-<n>.json (its weight digest and peak
memory) beside the spec, and rank 0 also writes result.json, which the stage reads back.
"""

import json
import sys
from pathlib import Path

from tuneforge.base.errors import StageError
from tuneforge.base.outputs import write_json
from tuneforge.pipeline.runner import quiet_libraries


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spec_path = Path(argv[0])
    quiet_libraries()
    from stages.train import fit  # after quiet_libraries: importing transformers reads the environment

    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    try:
        result = fit(spec)
    except StageError as exc:
        print(f"train: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    rank = result["ranks"][0]
    write_json(spec_path.parent / f"rank-{rank['rank']}.json", {**rank, "peak_rss_mb": result["memory"]["peak_rss_mb"]})
    if rank["rank"] == 0:
        write_json(spec_path.parent / "result.json", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
