"""The server's Prometheus metrics, through the official client (prometheus-client).

With several worker processes (serve.workers > 1) the server sets PROMETHEUS_MULTIPROC_DIR before any
worker starts: the client then keeps each process's values in that folder and /metrics adds them up, as
its multiprocess mode documents. One process uses a registry of its own.
"""

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
ROUTES = ("/v1/predict", "/v1/model", "/healthz", "/readyz", "/metrics")


class Metrics:
    def __init__(self):
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = None if self.multiprocess else CollectorRegistry()
        registry = {"registry": self.registry} if self.registry is not None else {}
        self.requests = Counter("tuneforge_serve_requests", "HTTP requests answered, by route and status",
                                ["route", "status"], **registry)
        self.latency = Histogram("tuneforge_serve_request_seconds", "HTTP request latency, by route and status",
                                 ["route", "status"], buckets=LATENCY_BUCKETS, **registry)
        self.batch_size = Histogram("tuneforge_serve_batch_size", "Texts per inference batch",
                                    buckets=BATCH_BUCKETS, **registry)
        self.inference = Histogram("tuneforge_serve_inference_seconds", "Seconds per inference batch",
                                   buckets=LATENCY_BUCKETS, **registry)
        self.queue_depth = Gauge("tuneforge_serve_queue_depth", "Texts waiting for an inference batch",
                                 multiprocess_mode="livesum", **registry)
        self.serving = Gauge("tuneforge_serve_model_info", "The model version this process serves (value 1)",
                             ["name", "version", "sha256"], multiprocess_mode="liveall", **registry)
        self.version = Gauge("tuneforge_serve_model_version", "Registry version served (-1: a plain folder)",
                             multiprocess_mode="liveall", **registry)
        self.reloads = Counter("tuneforge_serve_reloads", "Alias moves acted on: result loaded or refused",
                               ["result"], **registry)
        self.poll_errors = Counter("tuneforge_serve_alias_poll_errors", "Alias reads that failed", **registry)
        self.traffic_rows = Counter("tuneforge_serve_traffic_rows", "Inputs written to the traffic log", **registry)
        self.traffic_files = Counter("tuneforge_serve_traffic_files", "Traffic batch files written", **registry)
        for result in ("loaded", "refused"):
            self.reloads.labels(result)  # exported at 0 from the start: a rate over them then works

    def set_serving(self, previous, current) -> None:
        if previous is not None and _model_labels(previous) != _model_labels(current):
            if self.multiprocess:  # a process's file keeps every label set: mark the old one 0
                self.serving.labels(*_model_labels(previous)).set(0)
            else:
                self.serving.remove(*_model_labels(previous))
        self.serving.labels(*_model_labels(current)).set(1)
        self.version.set(-1 if current.version is None else current.version)

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        route = route if route in ROUTES else "other"
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route, str(status)).observe(seconds)

    def render(self) -> bytes:
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


def _model_labels(model) -> tuple[str, str, str]:
    return model.name, "" if model.version is None else str(model.version), model.sha256
