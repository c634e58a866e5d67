"""20 processes register versions of one model at once: versions 1..20, no gaps, no duplicates, every blob
verifies (SQLite always; PostgreSQL when TUNEFORGE_TEST_PG_URL is set). The registry is created by the
racing processes themselves, so opening (and migrating) a new registry concurrently is covered too."""

import multiprocessing
import os
from pathlib import Path

from registry import api, record_stage
from tuneforge.base.outputs import Produced

WORKERS = 20


def _register(index: int, config, barrier, errors) -> None:
    try:
        model = Path(f"worker-{index}/model.bin")
        model.parent.mkdir(parents=True)
        model.write_bytes(f"weights of worker {index}\n".encode() * 1000)
        shared = Path(f"worker-{index}/tokenizer.json")
        shared.write_text('{"vocab": "identical in every worker"}')
        barrier.wait(timeout=60)
        refs = record_stage(
            Produced("train", {"model": model, "tokenizer": shared}, {}), config=config, entry_point="cli"
        )
        api.register_model("intent", {"student": refs[0], "tokenizer": refs[1]}, config=config)
    except BaseException as exc:  # reported to the parent: a child's traceback would be lost
        errors.put(f"worker {index}: {type(exc).__name__}: {exc}")
        raise


def test_twenty_processes_register_versions_one_to_twenty(registry_config):
    context = multiprocessing.get_context("fork")
    barrier, errors = context.Barrier(WORKERS), context.Queue()
    workers = [context.Process(target=_register, args=(i, registry_config, barrier, errors)) for i in range(WORKERS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=240)
    problems = [errors.get() for _ in range(errors.qsize())] if not errors.empty() else []
    assert problems == [] and [w.exitcode for w in workers] == [0] * WORKERS

    versions = api.versions("intent", config=registry_config)
    assert [v.version for v in versions] == list(range(1, WORKERS + 1))
    students = api.versions("train.model", config=registry_config)
    assert [a.version for a in students] == list(range(1, WORKERS + 1))
    assert len({a.sha256 for a in students}) == WORKERS
    # Every model version points at a distinct student; the identical tokenizer stayed one artifact version.
    assert len({v.artifacts["student"].sha256 for v in versions}) == WORKERS
    assert {v.artifacts["tokenizer"].version for v in versions} == {1}
    report = api.verify(config=registry_config)
    assert report["problems"] == [] and report["checked"] == WORKERS + 1
    blob_dir = Path(registry_config.artifacts) / "sha256"
    assert sum(1 for path in blob_dir.rglob("*") if path.is_file()) == WORKERS + 1
    assert not list((Path(registry_config.artifacts) / "tmp").iterdir())
    assert os.getcwd() == str(Path.cwd())
