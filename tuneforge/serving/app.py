"""The FastAPI application: /v1/predict, /v1/model, /healthz, /readyz, /metrics.

Every refused request is a 4xx whose JSON body is {"error": "<one line>"}; an unexpected failure is a 500
with the same shape (and a logged traceback), never an HTML page. Request bodies are read and checked by
hand, not through a pydantic model, so that each mistake gets its own short reason and status.
"""

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from dataclasses import dataclass

import onnxruntime
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException

from tuneforge.params import Params
from tuneforge.serving.batching import MicroBatcher, ServerClosing
from tuneforge.serving.follower import ModelHolder
from tuneforge.serving.metrics import Metrics
from tuneforge.serving.model import ServedModel, load_model, onnx_threads, predictions
from tuneforge.serving.source import AliasWatcher, ModelRef, current_version
from tuneforge.serving.traffic import TrafficLog

log = logging.getLogger("tuneforge.serving")


class Refused(Exception):
    """A request the server will not run: HTTP `status` with a one-line `reason`."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass(frozen=True)
class Settings:
    ref: ModelRef
    params: Params


def create_app(settings: Settings, preloaded: ServedModel | None = None) -> FastAPI:
    serve, metrics = settings.params.serve, Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        configure_logging()
        ref, registry = settings.ref, settings.params.registry
        watcher = None
        if ref.follows_alias and serve.follow:
            watcher = await asyncio.to_thread(AliasWatcher, ref.registry, registry)
        model = preloaded
        if model is None:
            version = await asyncio.to_thread(current_version, ref.registry, registry) if ref.registry else None
            model = await asyncio.to_thread(load_model, ref, serve, registry, version)
        holder = ModelHolder(model, metrics, lambda version: load_model(ref, serve, registry, version), watcher)
        batcher = MicroBatcher(lambda m, texts: predictions(m, texts, serve.top_k), max_batch=serve.max_batch,
                               max_wait_ms=serve.max_wait_ms, enabled=serve.batching, metrics=metrics)
        batcher.start()
        traffic = None
        if serve.traffic.enabled:
            folder = serve.traffic.dir or settings.params.monitor.incoming_dir
            traffic = TrafficLog(serve.traffic, folder, settings.params.data.text_column, metrics)
            traffic.start()
        follower = asyncio.create_task(holder.follow(serve.poll_s)) if watcher else None
        app.state.holder, app.state.batcher, app.state.traffic = holder, batcher, traffic
        app.state.ready = True
        log.info("serving %s (sha256 %s) from %s%s; %d onnxruntime threads, batching %s", model.label,
                 model.sha256[:12], model.classifier.path, f", following {ref.registry}" if watcher else "",
                 onnx_threads(serve), f"max {serve.max_batch} / {serve.max_wait_ms:g} ms" if serve.batching else "off")
        try:
            yield
        finally:
            # uvicorn has stopped accepting and waited for requests in flight (serve.drain_s): drain the rest.
            app.state.ready = False
            if follower is not None:
                follower.cancel()
            await batcher.close()
            if traffic is not None:
                await traffic.close()
            if watcher is not None:
                watcher.close()
            log.info("stopped: every queued request answered, traffic log flushed")

    app = FastAPI(title="tuneforge model server", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.ready = False
    app.add_middleware(RequestMetrics, metrics=metrics)

    @app.exception_handler(Refused)
    async def refused(_request: Request, exc: Refused):
        return JSONResponse({"error": exc.reason}, status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception):
        log.exception("unexpected failure")
        return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)

    @app.post("/v1/predict")
    async def predict(request: Request):
        texts = parse_texts(await read_json(request, serve.max_body_kb * 1024), serve)
        model = request.app.state.holder.current  # this request is answered by this model, swap or not
        try:
            outputs = await request.app.state.batcher.submit(model, texts)
        except ServerClosing:
            raise Refused(503, "the server is shutting down") from None
        if request.app.state.traffic is not None:
            request.app.state.traffic.record(texts, outputs, model)
        return JSONResponse({"model": model.identity(), "predictions": outputs})

    @app.get("/healthz")
    async def healthz():
        return {"status": "alive"}

    @app.get("/readyz")
    async def readyz(request: Request):
        if not request.app.state.ready:
            return JSONResponse({"status": "not ready"}, status_code=503)
        return {"status": "ready", "model": request.app.state.holder.current.identity()}

    @app.get("/metrics")
    async def metrics_page():
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/model")
    async def model_info(request: Request):
        holder = request.app.state.holder
        return {**holder.current.describe(), **holder.state(), "runtime": {
            "pid": os.getpid(), "onnxruntime": onnxruntime.__version__, "threads": onnx_threads(serve),
            "torch_loaded": "torch" in sys.modules, "batching": serve.batching, "max_batch": serve.max_batch,
            "max_wait_ms": serve.max_wait_ms, "limits": {"max_texts": serve.max_texts, "max_chars": serve.max_chars,
                                                         "max_body_kb": serve.max_body_kb}}}

    return app


async def read_json(request: Request, limit: int):
    """The body parsed as JSON: 415 when it is not declared JSON, 413 past `limit` bytes, 400 when malformed."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise Refused(415, f"content type must be application/json, got {content_type or 'none'}")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise Refused(413, f"body of {int(declared)} bytes; at most {limit} (serve.max_body_kb)")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Refused(413, f"body over {limit} bytes (serve.max_body_kb)")
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise Refused(400, "body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise Refused(400, f"body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None


def parse_texts(body, serve) -> list[str]:
    """{"texts": [str, ...]} within serve.max_texts and serve.max_chars, or a Refused naming the problem."""
    if not isinstance(body, dict):
        raise Refused(422, f'body must be a JSON object {{"texts": [...]}}, got {_json_type(body)}')
    unknown = sorted(set(body) - {"texts"})
    if unknown:
        raise Refused(422, f'unknown field {unknown[0]!r}; the body is {{"texts": [...]}}')
    if "texts" not in body:
        raise Refused(422, 'missing field "texts" (a list of strings)')
    texts = body["texts"]
    if not isinstance(texts, list):
        raise Refused(422, f'"texts" must be a list of strings, got {_json_type(texts)}')
    if not texts:
        raise Refused(422, '"texts" is empty; give at least one text')
    if len(texts) > serve.max_texts:
        raise Refused(413, f"{len(texts)} texts; at most {serve.max_texts} per request (serve.max_texts)")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise Refused(422, f"texts[{i}] must be a string, got {_json_type(text)}")
        if len(text) > serve.max_chars:
            raise Refused(413, f"texts[{i}] has {len(text)} characters; at most {serve.max_chars} (serve.max_chars)")
    return texts


def _json_type(value) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
             float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


class RequestMetrics:
    """ASGI middleware: count and time every HTTP request by route and status."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), 500

        async def sending(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.observe_request(scope["path"], status, time.perf_counter() - started)


def configure_logging() -> None:
    logger = logging.getLogger("tuneforge.serving")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s tuneforge.serving[%(process)d]: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def app_from_environment() -> FastAPI:
    """uvicorn's factory in each worker process (serve.workers > 1): settings come from the parent."""
    from tuneforge.serving.server import settings_from_environment

    return create_app(settings_from_environment())
