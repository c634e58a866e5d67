"""Dynamic micro-batching: requests that arrive within serve.max_wait_ms run as one inference batch.

Requests queue as jobs (a request with more than max_batch texts becomes several). One collector task
takes the oldest job and adds the ones queued behind it, until the batch holds max_batch texts or the
first job has waited max_wait_ms; jobs that waited while the previous batch ran therefore go at once.
A batch only ever holds jobs of one model: a request keeps the model it arrived on, through a swap.
Inference runs on one thread off the event loop (onnxruntime uses its own threads inside a run).
"""

import asyncio
import collections
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field


class ServerClosing(Exception):
    """The server is shutting down and takes no new work."""


@dataclass
class Job:
    model: object
    texts: list[str]
    future: asyncio.Future
    arrived: float = field(default_factory=time.monotonic)


class MicroBatcher:
    def __init__(self, run_batch: Callable[[object, list[str]], list], *, max_batch: int, max_wait_ms: float,
                 enabled: bool = True, metrics=None):
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000 if enabled else 0.0
        self.enabled = enabled
        self.metrics = metrics
        self.queue: collections.deque[Job] = collections.deque()
        self.waiting_texts = 0
        self.wakeup = asyncio.Event()
        self.closing = False
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="inference")
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._collect_forever(), name="micro-batcher")

    async def submit(self, model, texts: list[str]) -> list:
        """The outputs for `texts`, in order, computed on `model`."""
        if self.closing:
            raise ServerClosing()
        loop = asyncio.get_running_loop()
        jobs = [Job(model, texts[i:i + self.max_batch], loop.create_future())
                for i in range(0, len(texts), self.max_batch)]
        self.queue.extend(jobs)
        self._queued(sum(len(job.texts) for job in jobs))
        self.wakeup.set()
        results = await asyncio.gather(*(job.future for job in jobs))
        return [output for chunk in results for output in chunk]

    async def close(self) -> None:
        """Finish every queued job, then stop (new submissions are refused from now on)."""
        self.closing = True
        self.wakeup.set()
        if self.task is not None:
            await self.task
        self.executor.shutdown(wait=True)

    def _queued(self, texts: int) -> None:
        self.waiting_texts += texts
        if self.metrics is not None:
            self.metrics.queue_depth.set(self.waiting_texts)

    async def _collect_forever(self) -> None:
        while True:
            if not self.queue:
                if self.closing:
                    return
                self.wakeup.clear()
                await self.wakeup.wait()
                continue
            batch = await self._collect()
            await self._run(batch)

    async def _collect(self) -> list[Job]:
        first = self.queue.popleft()
        batch, size = [first], len(first.texts)
        deadline = first.arrived + self.max_wait_s
        while self.enabled and size < self.max_batch:
            if self.queue:
                following = self.queue[0]
                if following.model is not first.model or size + len(following.texts) > self.max_batch:
                    break
                batch.append(self.queue.popleft())
                size += len(following.texts)
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.closing:
                break
            self.wakeup.clear()
            try:
                await asyncio.wait_for(self.wakeup.wait(), remaining)
            except TimeoutError:
                break
        self._queued(-size)
        return batch

    async def _run(self, batch: list[Job]) -> None:
        texts = [text for job in batch for text in job.texts]
        started = time.perf_counter()
        try:
            outputs = await asyncio.get_running_loop().run_in_executor(
                self.executor, self.run_batch, batch[0].model, texts)
        except Exception as exc:  # noqa: BLE001 - every waiting request gets the failure, the loop goes on
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        if self.metrics is not None:
            self.metrics.batch_size.observe(len(texts))
            self.metrics.inference.observe(time.perf_counter() - started)
        start = 0
        for job in batch:
            if not job.future.done():  # a client that went away cancelled its future
                job.future.set_result(outputs[start:start + len(job.texts)])
            start += len(job.texts)
