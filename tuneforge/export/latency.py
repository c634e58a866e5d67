"""Inference speed on CPU: batch-1 latency percentiles and batch throughput, model time only.

Tokenization is done before timing: the numbers compare the models, not the tokenizers. Batch-1 inputs
cycle through real test texts (unpadded, so lengths vary like production traffic); throughput runs padded
batches of consecutive test texts.
"""

import contextlib
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

MAX_THROUGHPUT_BATCHES = 20


def measure(
    run: Callable[[object], object], singles: Sequence[object], batches: Sequence[object], batch_rows: Sequence[int],
    *, runs: int, warmup: int,
) -> dict:
    """{p50_ms, p95_ms, mean_ms, runs, throughput_rows_per_s, throughput_batch_size} of `run`."""
    for i in range(warmup):
        run(singles[i % len(singles)])
    times = []
    for i in range(runs):
        inputs = singles[i % len(singles)]
        started = time.perf_counter()
        run(inputs)
        times.append(time.perf_counter() - started)
    run(batches[0])  # warm the larger shapes once
    started = time.perf_counter()
    for batch in batches:
        run(batch)
    seconds = time.perf_counter() - started
    ms = np.array(times) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 4), "p95_ms": round(float(np.percentile(ms, 95)), 4),
        "mean_ms": round(float(ms.mean()), 4), "runs": runs,
        "throughput_rows_per_s": round(sum(batch_rows) / seconds, 2),
        "throughput_batch_size": max(batch_rows),
    }


def chunks(texts: Sequence[str], size: int) -> list[list[str]]:
    texts = list(texts)
    return [texts[i:i + size] for i in range(0, len(texts), size)][:MAX_THROUGHPUT_BATCHES]


def torch_runner(model: torch.nn.Module) -> Callable[[dict], object]:
    def run(inputs: dict):
        with torch.inference_mode():
            return model(**inputs)

    return run


def onnx_runner(session) -> Callable[[dict], object]:
    return lambda inputs: session.run(None, inputs)


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """Run PyTorch with `threads` intra-op threads (None: leave as is), then restore the setting."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
