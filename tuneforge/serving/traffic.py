"""The traffic log: a sample of served inputs with their predictions and the version that answered,
appended to batch files the drift monitor reads (monitor.incoming_dir by default).

Rows collect in memory and go to one JSONL file when serve.traffic.rotate_rows are in, or when the oldest
has waited rotate_s. A file is written under a dot name (the monitor skips those) and renamed into place,
so the monitor never reads half a file. Names carry the time, the process id, a random token drawn once
per process (replicas in containers all run as pid 1) and a counter: several workers or replicas can share
the folder. Predictions are not labels: they go in `prediction`, never in
the label column, so a retrain never learns the model's own guesses.
"""

import asyncio
import datetime
import hashlib
import json
import logging
import os
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tuneforge.base.spec import TrafficConfig

log = logging.getLogger("tuneforge.serving")


class TrafficLog:
    def __init__(self, cfg: TrafficConfig, directory: Path, text_column: str, metrics=None, seed: int | None = None):
        self.cfg = cfg
        self.directory = Path(directory)
        self.text_column = text_column
        self.metrics = metrics
        self.random = random.Random(seed)
        self.rows: list[dict] = []
        self.first_row_at = 0.0
        self.files = 0
        self.writer_id = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"  # unique among replicas sharing the folder
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="traffic-log")
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.task = asyncio.get_running_loop().create_task(self._rotate_by_time(), name="traffic-log")

    def record(self, texts: list[str], outputs: list[dict], model) -> None:
        """Sample this request's inputs into the pending rows (called on the event loop, after answering)."""
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
        for text, output in zip(texts, outputs, strict=True):
            if self.random.random() >= self.cfg.sample:
                continue
            row = {self.text_column: text} if self.cfg.store_text else {
                "text_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()}
            best = next(iter(output["scores"].values()), None)
            row.update(prediction=output["prediction"], score=best, model=model.name, version=model.version,
                       model_sha256=model.sha256, served_at=now)
            if not self.rows:
                self.first_row_at = time.monotonic()
            self.rows.append(row)
            if len(self.rows) >= self.cfg.rotate_rows:
                self._rotate()

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self._rotate()
        self.writer.shutdown(wait=True)

    async def _rotate_by_time(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.cfg.rotate_s / 4))
            if self.rows and time.monotonic() - self.first_row_at >= self.cfg.rotate_s:
                self._rotate()

    def _rotate(self) -> None:
        if not self.rows:
            return
        rows, self.rows = self.rows, []
        self.files += 1
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")
        name = f"served-{stamp}-{self.writer_id}-{self.files:05d}.jsonl"
        self.writer.submit(self._write, self.directory / name, rows)

    def _write(self, path: Path, rows: list[dict]) -> None:
        temporary = path.with_name(f".{path.name}.tmp")
        try:
            with open(temporary, "w", encoding="utf-8") as handle:
                handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            log.error("traffic log: could not write %s (%s); %d rows dropped", path, exc.strerror, len(rows))
            return
        if self.metrics is not None:
            self.metrics.traffic_rows.inc(len(rows))
            self.metrics.traffic_files.inc()
