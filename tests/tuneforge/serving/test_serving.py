"""The HTTP model server as a real process on a real socket: predictions, every refused request, the
metrics and model pages, micro-batching, the traffic log read back by the drift monitor, a graceful
drain, startup failures, and following the alias under load (promotion, rollback, tampered blobs)."""

import asyncio
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from registry import api
from registry.blobs import blob_path, open_store
from tests.helpers.serving import registry_config, serving_project
from tuneforge.base.outputs import sha256_file
from tuneforge.base.spec import ServeConfig
from tuneforge.inference import onnx_predictor as predict
from tuneforge.serving.loadtest import generate_load, serve_command, server_process
from tuneforge.serving.model import ServedModel, predictions

pytestmark = pytest.mark.e2e

TEXTS = ["my card is lost", "why was I charged twice", "the transfer has not arrived", "change my address please",
         "what is the exchange rate today", "my top up failed", "I want a refund", "close my account",
         "is my card on its way", "the cash machine kept my money", "pin blocked after three tries",
         "wrong amount charged on my statement"]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return serving_project(tmp_path_factory)


@pytest.fixture(scope="module")
def registry(project):
    return registry_config(project)


@pytest.fixture(scope="module")
def server(project, tmp_path_factory):
    """intents@production (intents:1) with the traffic log off; shared by the read-only tests."""
    with server_process("intents@production", cwd=project, sets=["serve.traffic.enabled=false"],
                        log=tmp_path_factory.mktemp("logs") / "server.log") as running:
        yield running


def expected_outputs(registry, version: int, texts: list[str], variant: str = "int8") -> list[dict]:
    """What NAME:VERSION's model says, computed here on its verified registry copy, one text at a time."""
    artifact = api.show(f"intents:{version}", config=registry)["artifacts"]["onnx_int8"]
    folder = api.resolve(f"{artifact['name']}:{artifact['version']}", config=registry)
    model = ServedModel(predict.load(folder, variant=variant), "intents", version, artifact["sha256"])
    return [predictions(model, [text], ServeConfig().top_k)[0] for text in texts]


def metric(text: str, sample_name: str, /, **labels) -> float:
    """The value of one sample of the /metrics page (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == sample_name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def post(url: str, body, **options) -> httpx.Response:
    return httpx.post(f"{url}/v1/predict", json=body, timeout=60, **options)


# --- predictions and pages ----------------------------------------------------------------------------------


def test_predict_answers_each_text_with_the_models_prediction_and_names_the_version(server, registry):
    response = post(server.url, {"texts": TEXTS[:5]})
    assert response.status_code == 200
    body = response.json()
    artifact = api.show("intents:1", config=registry)["artifacts"]["onnx_int8"]
    assert body["model"] == {"name": "intents", "version": 1, "sha256": artifact["sha256"]}
    expected = expected_outputs(registry, 1, TEXTS[:5])
    assert [p["prediction"] for p in body["predictions"]] == [e["prediction"] for e in expected]
    for got, want in zip(body["predictions"], expected, strict=True):
        assert list(got["scores"]) == list(want["scores"]) and len(got["scores"]) == ServeConfig().top_k
        assert got["scores"] == pytest.approx(want["scores"], abs=0.02)  # int8: batch mates move the scale a bit
        assert got["prediction"] == max(got["scores"], key=got["scores"].get)


BAD_REQUESTS = [
    ("malformed JSON", {"content": b'{"texts": ["a",', "headers": {"content-type": "application/json"}}, 400,
     "body is not valid JSON"),
    ("not UTF-8", {"content": b'{"texts": ["\xff"]}', "headers": {"content-type": "application/json"}}, 400,
     "not UTF-8"),
    ("wrong content type", {"content": b'{"texts": ["a"]}', "headers": {"content-type": "text/plain"}}, 415,
     "content type must be application/json, got text/plain"),
    ("no content type", {"content": b'{"texts": ["a"]}'}, 415, "content type must be application/json, got none"),
    ("a list, not an object", {"json": ["a"]}, 422, 'body must be a JSON object {"texts": [...]}, got a list'),
    ("no texts field", {"json": {"text": "a"}}, 422, "unknown field 'text'"),
    ("missing texts", {"json": {}}, 422, 'missing field "texts"'),
    ("texts not a list", {"json": {"texts": "a"}}, 422, '"texts" must be a list of strings, got a string'),
    ("empty list", {"json": {"texts": []}}, 422, '"texts" is empty'),
    ("a non-string", {"json": {"texts": ["a", 3]}}, 422, "texts[1] must be a string, got a number"),
    ("a null", {"json": {"texts": [None]}}, 422, "texts[0] must be a string, got null"),
    ("too many texts", {"json": {"texts": ["a"] * 65}}, 413, "65 texts; at most 64 per request (serve.max_texts)"),
    ("a text too long", {"json": {"texts": ["a", "b" * 2001]}}, 413, "texts[1] has 2001 characters; at most 2000"),
    ("body too large", {"content": b'{"texts": ["' + b"x" * (1024 * 1024) + b'"]}',
                        "headers": {"content-type": "application/json"}}, 413, "at most 1048576 (serve.max_body_kb)"),
]


@pytest.mark.parametrize("case, request_options, status, reason", BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_a_bad_request_is_a_4xx_with_a_one_line_reason(server, case, request_options, status, reason):
    options = dict(request_options)
    if "json" in options:
        options = {"content": json.dumps(options.pop("json")).encode(),
                   "headers": {"content-type": "application/json"}}
    response = httpx.post(f"{server.url}/v1/predict", timeout=60, **options)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert reason in error and "\n" not in error
    assert post(server.url, {"texts": ["still serving"]}).status_code == 200


def test_wrong_method_and_unknown_route_are_4xx_json(server):
    assert httpx.get(f"{server.url}/v1/predict").status_code == 405
    missing = httpx.get(f"{server.url}/v2/nothing")
    assert missing.status_code == 404 and missing.json() == {"error": "Not Found"}


def test_health_readiness_model_page_and_metrics(server, registry):
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "alive"}
    ready = httpx.get(f"{server.url}/readyz").json()
    assert ready["status"] == "ready" and ready["model"]["version"] == 1

    page = httpx.get(f"{server.url}/v1/model").json()
    artifact = api.show("intents:1", config=registry)["artifacts"]["onnx_int8"]
    recorded = api.show(f"{artifact['name']}:{artifact['version']}", config=registry)
    assert (page["name"], page["version"], page["alias"], page["follows"]) == (
        "intents", 1, "production", "intents@production")
    assert page["artifact"] == f"{artifact['name']}:{artifact['version']}" and page["sha256"] == artifact["sha256"]
    assert page["hashes"] == {f["path"]: f["sha256"] for f in recorded["files"]}
    labels = json.loads((Path(page["path"]) / "labels.json").read_text())["labels"]
    assert page["labels"] == labels and page["decision"] == "argmax"
    assert page["runtime"]["torch_loaded"] is False, "the serving process must not import torch"
    assert page["reloads"] == {"loaded": 0, "refused": 0} and page["refused"] is None

    before = httpx.get(f"{server.url}/metrics").text
    for _ in range(3):
        post(server.url, {"texts": TEXTS[:2]})
    post(server.url, {"texts": []})
    after = httpx.get(f"{server.url}/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text
    ok = {"route": "/v1/predict", "status": "200"}
    assert metric(text, "tuneforge_serve_requests_total", **ok) - metric(before, "tuneforge_serve_requests_total",
                                                                         **ok) == 3
    assert metric(text, "tuneforge_serve_request_seconds_count", **ok) >= 3
    assert metric(text, "tuneforge_serve_requests_total", route="/v1/predict", status="422") >= 1
    assert metric(text, "tuneforge_serve_batch_size_sum") - metric(before, "tuneforge_serve_batch_size_sum") == 6
    assert metric(text, "tuneforge_serve_model_info", name="intents", version="1", sha256=artifact["sha256"]) == 1
    assert metric(text, "tuneforge_serve_model_version") == 1
    assert metric(text, "tuneforge_serve_queue_depth") == 0
    assert metric(text, "tuneforge_serve_reloads_total", result="refused") == 0
    assert not any(s.labels.get("status", "").startswith("5") for f in text_string_to_metric_families(text)
                   for s in f.samples), "no request may end in a 5xx"


def test_the_serving_package_does_not_import_torch():
    code = ("import sys, tuneforge.cli, tuneforge.serving.app, tuneforge.serving.server, tuneforge.serving.loadtest; "
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


# --- batching -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("batching", [True, False], ids=["batching-on", "batching-off"])
def test_concurrent_requests_share_batches_only_with_batching_on(project, tmp_path, batching):
    sets = ["serve.traffic.enabled=false", f"serve.batching={str(batching).lower()}", "serve.max_batch=8",
            "serve.max_wait_ms=300", "serve.follow=false"]
    with server_process("intents:1", cwd=project, sets=sets, log=tmp_path / "server.log") as server:
        samples = asyncio.run(generate_load(server.url, TEXTS, concurrency=16, max_requests=48, max_seconds=120))
        text = server.metrics_text()
    assert [s.status for s in samples] == [200] * 48
    batches, texts = metric(text, "tuneforge_serve_batch_size_count"), metric(text, "tuneforge_serve_batch_size_sum")
    assert texts == 48
    assert metric(text, "tuneforge_serve_batch_size_bucket", le="8.0") == batches, "no batch over serve.max_batch"
    if batching:
        assert batches <= 48 / 2, f"{batches} batches for 48 concurrent requests"
    else:
        assert batches == 48


# --- traffic log and the drift monitor ----------------------------------------------------------------------


def test_traffic_log_batches_are_read_by_the_monitor_and_shutdown_drains(project, registry, tmp_path):
    incoming = tmp_path / "incoming"
    sets = ["serve.traffic.sample=1.0", "serve.traffic.rotate_rows=25", f"serve.traffic.dir={incoming}",
            "serve.max_wait_ms=5000", "serve.max_batch=64", "serve.follow=false", "serve.drain_s=60"]
    texts = [row for row in _held_out_texts(project)][:60]
    with server_process("intents@production", cwd=project, sets=sets, log=tmp_path / "server.log") as server:
        for start in range(0, 50, 10):  # 50 rows: two full files of 25
            assert post(server.url, {"texts": texts[start:start + 10]}).status_code == 200
        _wait_for(lambda: len(list(incoming.glob("served-*.jsonl"))) == 2)
        # Ten requests in flight (each waits up to 5 s for batch mates) when SIGTERM arrives: all answered.
        answers = []
        senders = [threading.Thread(target=lambda t=t: answers.append(post(server.url, {"texts": [t]})))
                   for t in texts[50:60]]
        for sender in senders:
            sender.start()
        _wait_for(lambda: metric(server.metrics_text(), "tuneforge_serve_queue_depth") == 10)
        server.process.send_signal(signal.SIGTERM)
        for sender in senders:
            sender.join(60)
        assert server.process.wait(60) == 0
        assert "stopped: every queued request answered, traffic log flushed" in server.log.read_text()
    assert sorted(a.status_code for a in answers) == [200] * 10
    files = sorted(incoming.iterdir())
    assert [f.name.startswith("served-") and f.suffix == ".jsonl" for f in files] == [True] * 3, files
    rows = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert sorted(row["text"] for row in rows) == sorted(texts)
    artifact = api.show("intents:1", config=registry)["artifacts"]["onnx_int8"]
    assert {(row["model"], row["version"], row["model_sha256"]) for row in rows} == {
        ("intents", 1, artifact["sha256"])}
    assert "label" not in rows[0], "predictions are not labels"

    done = subprocess.run([sys.executable, "-m", "stages.monitor", str(incoming)], cwd=project, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "monitor: intents:1 (production) vs" in done.stdout and "60 new texts (0 labelled)" in done.stdout
    assert "no drift" in done.stdout or "DRIFT" in done.stdout


def test_traffic_log_can_keep_a_hash_instead_of_the_text(project, tmp_path):
    incoming = tmp_path / "incoming"
    sets = ["serve.traffic.sample=1.0", "serve.traffic.store_text=false", f"serve.traffic.dir={incoming}",
            "serve.follow=false"]
    with server_process("intents:1", cwd=project, sets=sets, log=tmp_path / "server.log") as server:
        assert post(server.url, {"texts": ["my secret card number"]}).status_code == 200
    (row,) = [json.loads(line) for f in incoming.glob("served-*.jsonl") for line in f.read_text().splitlines()]
    import hashlib

    assert "text" not in row and row["text_sha256"] == hashlib.sha256(b"my secret card number").hexdigest()


# --- startup failures ---------------------------------------------------------------------------------------


@pytest.fixture
def busy_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize("ref, extra, expected", [
    ("intents@@production", [], "invalid alias '@production'"),
    ("./no/such/folder", [], "./no/such/folder: no such model folder"),
    ("intents", [], "intents: not a model reference (give NAME@ALIAS, NAME:VERSION or a model folder)"),
    ("intents@canary", [], "unknown alias intents@canary"),
    ("intents:9", [], "intents:9"),
    ("intents@production", ["--set", "registry.url=postgresql+psycopg://u:p@127.0.0.1:9/none"],
     "cannot reach registry database"),
    ("intents@production", ["--set", "serve.max_batch=0"], "serve.max_batch: must be greater than or equal to 1"),
    ("intents@production", ["PORT"], "cannot listen on 127.0.0.1:"),
], ids=["bad-ref", "missing-folder", "bare-name", "unknown-alias", "unknown-version", "unreachable-registry",
        "bad-setting", "port-in-use"])
def test_a_server_that_cannot_start_says_why_in_one_line(project, busy_port, ref, extra, expected):
    command = serve_command(ref)
    if extra == ["PORT"]:
        command[command.index("--port") + 1], extra = str(busy_port), []
    done = subprocess.run(command + extra, cwd=project, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert expected in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""


# --- following the alias under load -------------------------------------------------------------------------


class Load:
    """The load generator running in a thread until stopped: every answer kept. A context manager, so that
    a test that fails midway stops it too (it would otherwise go on against a stopped server)."""

    def __init__(self, url: str, concurrency: int = 4):
        self.stop_event, self.samples = threading.Event(), []
        self.thread = threading.Thread(target=lambda: asyncio.run(generate_load(
            url, TEXTS, concurrency=concurrency, max_requests=10**6, max_seconds=600, stop=self.stop_event,
            samples=self.samples)), daemon=True)
        self.thread.start()

    def __enter__(self) -> "Load":
        _wait_for(lambda: len(self.samples) >= 10)
        return self

    def __exit__(self, *_exc) -> None:
        self.finish()

    def finish(self) -> list:
        self.stop_event.set()
        self.thread.join(120)
        return self.samples


def test_promotion_and_rollback_under_load_swap_without_a_failed_request(project, registry, tmp_path):
    sets = ["serve.traffic.enabled=false", "serve.poll_s=0.2", "serve.variant=fp32"]
    expected = {version: expected_outputs(registry, version, TEXTS, "fp32") for version in (1, 2)}
    assert any(abs(expected[1][i]["scores"].get(label, 0) - score) > 1e-3
               for i in range(len(TEXTS)) for label, score in expected[2][i]["scores"].items()), \
        "the two versions must answer differently for this test to tell them apart"
    with (server_process("intents@production", cwd=project, sets=sets, log=tmp_path / "server.log") as server,
          Load(server.url) as load):
        api.promote("intents", 2, "production", force=True, reason="serving test: promote under load",
                    config=registry)
        _wait_for(lambda: _served_version(server) == 2)
        time.sleep(0.5)  # some answers from version 2
        api.rollback("intents", "production", reason="serving test: roll back under load", config=registry)
        _wait_for(lambda: _served_version(server) == 1)
        time.sleep(0.5)
        samples = load.finish()
        page = server.get("/v1/model")
        log = server.log.read_text()
    assert samples and [s for s in samples if s.status != 200] == []
    versions = {s.version for s in samples}
    assert versions == {1, 2}, versions
    shas = {v: api.show(f"intents:{v}", config=registry)["artifacts"]["onnx_int8"]["sha256"] for v in (1, 2)}
    for sample in samples:
        assert sample.sha256 == shas[sample.version]
        # The version a response names is the one whose model computed it.
        assert sample.predictions[0]["scores"] == pytest.approx(expected[sample.version][sample.index]["scores"],
                                                                abs=1e-4)
    assert page["version"] == 1 and page["reloads"] == {"loaded": 2, "refused": 0}
    assert "now serving intents:2 (was intents:1)" in log and "now serving intents:1 (was intents:2)" in log


def test_a_tampered_copy_is_repaired_and_a_tampered_blob_refused_under_load(project, registry, tmp_path):
    """intents:3 tampered twice: its local copy (promotion: resolve rebuilds it from the verified store, and
    the server answers with the recorded bytes), then its stored blob (rollback onto it: refused, counted,
    logged, and intents:1 keeps serving)."""
    sets = ["serve.traffic.enabled=false", "serve.poll_s=0.2", "serve.variant=fp32"]
    third = api.show("intents:3", config=registry)["artifacts"]["onnx_int8"]
    third_ref = f"{third['name']}:{third['version']}"
    recorded = {f["path"]: f["sha256"] for f in api.show(third_ref, config=registry)["files"]}
    expected = {version: expected_outputs(registry, version, TEXTS, "fp32") for version in (1, 3)}
    cached = api.resolve(third_ref, config=registry)
    with (server_process("intents@production", cwd=project, sets=sets, log=tmp_path / "server.log") as server,
          Load(server.url) as load):
        assert _served_version(server) == 1
        # 1. The cached copy of the very file the server loads is altered on this machine; the store is intact.
        with open(cached / "model.onnx", "r+b") as handle:
            handle.seek(-16, 2)
            handle.write(b"\0" * 16)
        assert sha256_file(cached / "model.onnx") != recorded["model.onnx"]
        api.promote("intents", 3, "production", force=True, reason="serving test: a tampered copy",
                    config=registry)
        _wait_for(lambda: _served_version(server) == 3)
        served_third = server.get("/v1/model")
        direct = [post(server.url, {"texts": [text]}) for text in TEXTS]
        # 2. Back to intents:1, then the store's NOTICE.txt blob of intents:3 is altered and the alias rolled
        #    back onto intents:3: its local copy is intact, but the stored blob no longer matches its hash.
        api.promote("intents", 1, "production", force=True, reason="serving test: back to 1", config=registry)
        _wait_for(lambda: _served_version(server) == 1)
        Path(blob_path(open_store(registry.artifacts), recorded["NOTICE.txt"])).write_text("altered in the store\n")
        api.rollback("intents", "production", reason="serving test: onto the tampered blob", config=registry)
        _wait_for(lambda: (server.get("/v1/model")["refused"] or {}).get("version") == 3)
        refusal = server.get("/v1/model")["refused"]["reason"]
        time.sleep(0.5)
        samples = load.finish()
        page, text = server.get("/v1/model"), server.metrics_text()
        answer = post(server.url, {"texts": ["still here"]})
        log = server.log.read_text()
    # The copy the server loaded intents:3 from holds the recorded bytes again, and its answers are the model's.
    assert Path(served_third["path"]) == cached and served_third["hashes"] == recorded
    assert sha256_file(cached / "model.onnx") == recorded["model.onnx"]
    for response, want in zip(direct, expected[3], strict=True):
        assert response.status_code == 200 and response.json()["model"]["version"] == 3
        assert response.json()["predictions"][0]["scores"] == pytest.approx(want["scores"], abs=1e-4)
    # The tampered blob: refused with the registry's reason, counted and logged; nothing failed meanwhile.
    assert refusal.startswith("intents:3: ") and "NOTICE.txt: stored blob does not match its hash" in refusal
    assert f"expected sha256 {recorded['NOTICE.txt']}" in refusal and refusal.endswith("tampered")
    assert f"refused intents:3: {refusal}; still serving intents:1" in log
    assert samples and [s for s in samples if s.status != 200] == []
    assert {s.version for s in samples} == {1, 3}
    for sample in samples:
        assert sample.predictions[0]["scores"] == pytest.approx(expected[sample.version][sample.index]["scores"],
                                                                abs=1e-4)
    assert page["version"] == 1 and page["reloads"] == {"loaded": 2, "refused": 1}
    assert page["refused"] == {"version": 3, "reason": refusal}
    assert metric(text, "tuneforge_serve_reloads_total", result="refused") == 1
    assert answer.status_code == 200 and answer.json()["model"]["version"] == 1


def _served_version(server) -> int:
    return server.get("/v1/model")["version"]


def _wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def _held_out_texts(project: Path) -> list[str]:
    import pandas as pd

    splits = project / "data/splits"
    frame = pd.concat([pd.read_parquet(splits / name) for name in ("test.parquet", "val.parquet")])
    return list(frame["text"])
