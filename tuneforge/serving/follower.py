"""The model served now, and the task that follows NAME@ALIAS.

Every serve.poll_s the follower reads which version the alias names. When it names another version, that
version is resolved, verified (every blob re-hashed) and loaded beside the serving one, then swapped in
with one assignment: a request holds the model it arrived on until it is answered, so requests in flight
finish on the old model and none fails. A version that fails verification or loading is refused, logged
and counted, and the old model keeps serving; it is tried again only once the alias has moved again.
"""

import asyncio
import logging

from tuneforge.base.errors import StageError
from tuneforge.serving.model import ServedModel

log = logging.getLogger("tuneforge.serving")


class ModelHolder:
    def __init__(self, model: ServedModel, metrics, load_version=None, watcher=None):
        self.current = model
        self.metrics = metrics
        self.load_version = load_version  # version -> ServedModel (blocking; runs in a thread)
        self.watcher = watcher  # source.AliasWatcher, or None for a pinned REF
        self.refused: tuple[int, str] | None = None  # (version, reason) while the alias stays on it
        self.reloads = {"loaded": 0, "refused": 0}
        metrics.set_serving(None, model)

    async def follow(self, poll_s: float) -> None:
        while True:
            await asyncio.sleep(poll_s)
            await self.check_once()

    async def check_once(self) -> None:
        try:
            version = await asyncio.to_thread(self.watcher.version)
        except Exception as exc:  # noqa: BLE001 - a registry that is away must not stop the service
            self.metrics.poll_errors.inc()
            log.warning("alias %s: could not read it (%s); still serving %s", self.watcher.ref,
                        _one_line(exc), self.current.label)
            return
        if version == self.current.version:
            self.refused = None
            return
        if self.refused is not None and self.refused[0] == version:
            return
        target = f"{self.watcher.ref.name}:{version}"
        log.info("alias %s moved to %s (serving %s): loading it", self.watcher.ref, target, self.current.label)
        try:
            loaded = await asyncio.to_thread(self.load_version, version)
        except Exception as exc:  # noqa: BLE001 - a bad version is refused, whatever broke it
            reason = exc.message if isinstance(exc, StageError) else _one_line(exc)
            self.refused = (version, reason)
            self.reloads["refused"] += 1
            self.metrics.reloads.labels("refused").inc()
            log.error("refused %s: %s; still serving %s", target, reason, self.current.label)
            return
        previous, self.current = self.current, loaded
        self.refused = None
        self.reloads["loaded"] += 1
        self.metrics.reloads.labels("loaded").inc()
        self.metrics.set_serving(previous, loaded)
        log.info("now serving %s (was %s), loaded in %.2f s", loaded.label, previous.label, loaded.load_seconds)

    def state(self) -> dict:
        return {
            "follows": str(self.watcher.ref) if self.watcher else None,
            "reloads": dict(self.reloads),
            "refused": {"version": self.refused[0], "reason": self.refused[1]} if self.refused else None,
        }


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
