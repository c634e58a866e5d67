"""A real server process and a real HTTP load generator, for the serving tests and benchmarks/serving.py.

    with server_process("intents@production", cwd=project) as server:
        samples = run_load(server.url, texts, concurrency=8, max_requests=500, max_seconds=30)

The load generator is an asyncio client (aiohttp): `concurrency` connections, each sending its next request
as soon as the previous answer arrived, until `max_requests` were sent, `max_seconds` passed or `stop` is
set. Every answer is kept as a Sample: status, latency, the version that answered and its predictions.
"""

import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ServerProcess:
    process: subprocess.Popen
    url: str
    log: Path

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=30) as response:
            return json.loads(response.read())

    def metrics_text(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=30) as response:
            return response.read().decode()

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM (a graceful, draining shutdown) and the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def serve_command(ref: str, sets: Sequence[str] = (), params: str = "params.yaml", port: int = 0) -> list[str]:
    options = [part for assignment in sets for part in ("--set", assignment)]
    return [sys.executable, "-m", "tuneforge.cli", "serve-model", ref, "--port", str(port), "--params", params,
            *options]


@contextlib.contextmanager
def server_process(ref: str, *, cwd: Path, sets: Sequence[str] = (), params: str = "params.yaml",
                   log: Path | None = None, env: dict | None = None, startup_s: float = 180) -> Iterator[ServerProcess]:
    """`tuneforge serve-model REF --port 0` in `cwd`, ready; stopped (SIGTERM) on exit."""
    log = Path(log or Path(cwd) / "serve-model.log")
    with open(log, "ab") as stderr:
        process = subprocess.Popen(serve_command(ref, sets, params), cwd=cwd, stdout=subprocess.PIPE, stderr=stderr,
                                   env={**os.environ, **(env or {})}, text=True)
    server = ServerProcess(process, "", log)
    try:
        server.url = _announced_url(process, log, startup_s)
        _wait_ready(server, startup_s)
        yield server
    finally:
        server.stop()
        if process.stdout:
            process.stdout.close()


def _announced_url(process: subprocess.Popen, log: Path, timeout: float) -> str:
    """The URL from the first stdout line: `serve-model: NAME:V on http://HOST:PORT (...)`."""
    found: list[str] = []
    reader = threading.Thread(target=lambda: found.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    line = found[0] if found else ""
    if " on http://" not in line:
        process.kill()
        raise RuntimeError(f"serve-model did not start: {line!r}; log:\n{log.read_text()[-3000:]}")
    return line.split(" on ", 1)[1].split()[0]


def _wait_ready(server: ServerProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"serve-model exited {server.process.returncode}:\n{server.log.read_text()[-3000:]}")
        try:
            server.get("/readyz")
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"serve-model not ready after {timeout:.0f} s")


@dataclass
class Sample:
    index: int  # which text of the pool (the first of the request's texts)
    status: int
    seconds: float
    version: int | None = None
    sha256: str | None = None
    predictions: list = field(default_factory=list)
    error: str | None = None


async def generate_load(url: str, texts: Sequence[str], *, concurrency: int, max_requests: int, max_seconds: float,
                        texts_per_request: int = 1, stop: threading.Event | None = None,
                        samples: list[Sample] | None = None) -> list[Sample]:
    """Run the load; answers are appended to `samples` (a new list unless given) as they arrive."""
    import aiohttp

    samples = [] if samples is None else samples
    counter = iter(range(max_requests))
    deadline = time.monotonic() + max_seconds
    endpoint = f"{url}/v1/predict"

    async def connection(session) -> None:
        for number in counter:
            if time.monotonic() > deadline or (stop is not None and stop.is_set()):
                return
            first = (number * texts_per_request) % len(texts)
            batch = [texts[(first + i) % len(texts)] for i in range(texts_per_request)]
            began = time.perf_counter()
            try:
                async with session.post(endpoint, json={"texts": batch}) as response:
                    body = await response.json(content_type=None)
                    sample = Sample(first, response.status, time.perf_counter() - began)
                    if response.status == 200:
                        sample.version, sample.sha256 = body["model"]["version"], body["model"]["sha256"]
                        sample.predictions = body["predictions"]
                    else:
                        sample.error = body.get("error")
            except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
                sample = Sample(first, 0, time.perf_counter() - began, error=f"{type(exc).__name__}: {exc}")
            samples.append(sample)

    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(connection(session) for _ in range(concurrency)))
    return samples


def run_load(url: str, texts: Sequence[str], **options) -> list[Sample]:
    return asyncio.run(generate_load(url, texts, **options))


def summarize(samples: list[Sample], seconds: float, texts_per_request: int = 1) -> dict:
    """Requests, failures, throughput and latency percentiles (ms) of one load run."""
    latencies = sorted(sample.seconds * 1000 for sample in samples)
    ok = [sample for sample in samples if sample.status == 200]
    return {
        "requests": len(samples), "failed": len(samples) - len(ok), "seconds": round(seconds, 3),
        "requests_per_s": len(ok) / seconds if seconds else 0.0,
        "texts_per_s": len(ok) * texts_per_request / seconds if seconds else 0.0,
        "p50_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95), "p99_ms": percentile(latencies, 99),
        "mean_ms": statistics.fmean(latencies) if latencies else None,
    }


def percentile(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list."""
    if not ordered:
        return None
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]
