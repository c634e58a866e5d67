"""`tuneforge serve-model REF`: check everything that can be checked, then hand the socket to uvicorn.

A bad REF, a registry that cannot be read, a version that fails verification or a port in use is one line
and a non-zero exit before anything listens. With serve.workers > 1, uvicorn's supervisor runs that many
processes on the one socket (each loads the model and follows the alias on its own; the settings reach
them through an environment variable) and the metrics use prometheus-client's multiprocess mode.
SIGTERM or Ctrl-C stops accepting, lets requests in flight finish (serve.drain_s), then answers what is
queued and flushes the traffic log.
"""

import json
import os
import shutil
import signal
import socket
import tempfile
from pathlib import Path

import yaml

from tuneforge.base.errors import StageError, report_failure
from tuneforge.params import load_params, parse_params
from tuneforge.params.overrides import assign, parse_assignment
from tuneforge.serving.source import current_version, parse_model_ref

SETTINGS_ENV = "TUNEFORGE_SERVE_SETTINGS"


def load_settings(ref: str, params_path: Path, overrides: list[str]):
    """The REF parsed and the spec with `--set` overrides applied in memory (params.yaml is not written)."""
    from tuneforge.serving.app import Settings

    params_path = Path(params_path)
    if overrides:
        load_params(params_path)  # the file itself must be valid; its errors name it
        raw = yaml.safe_load(params_path.read_text(encoding="utf-8")) or {}
        for assignment in overrides:
            assign(raw, *parse_assignment(assignment))
        params = parse_params(raw, source=f"{params_path} with --set")
    else:
        params = load_params(params_path)
    return Settings(ref=parse_model_ref(ref), params=params)


def settings_from_environment():
    from tuneforge.serving.app import Settings

    payload = json.loads(os.environ[SETTINGS_ENV])
    return Settings(ref=parse_model_ref(payload["ref"]), params=parse_params(payload["params"]))


def listening_socket(host: str, port: int) -> socket.socket:
    """Bound and listening now, so that a port in use is reported before the model loads."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise StageError(f"cannot listen on {host}:{port}: {exc.strerror.lower()} (serve.host, serve.port)") from None
    sock.set_inheritable(True)
    return sock


def run(settings) -> None:
    """Serve until SIGTERM / Ctrl-C; StageError (one line) for anything that stops it from starting."""
    import uvicorn

    from tuneforge.serving.app import create_app
    from tuneforge.serving.model import load_model

    serve, ref = settings.params.serve, settings.ref
    sock = listening_socket(serve.host, serve.port)
    try:
        version = current_version(ref.registry, settings.params.registry) if ref.registry else None
        model = load_model(ref, serve, settings.params.registry, version)
    except BaseException:
        sock.close()
        raise
    host, port = sock.getsockname()[:2]
    print(f"serve-model: {model.label} on http://{_url_host(host)}:{port} "
          f"({serve.workers} worker{'s' if serve.workers > 1 else ''}; Ctrl-C stops)", flush=True)
    options = {"lifespan": "on", "access_log": False, "timeout_graceful_shutdown": serve.drain_s,
               "log_level": "warning", "workers": serve.workers}
    if serve.workers == 1:
        server = uvicorn.Server(uvicorn.Config(create_app(settings, preloaded=model), **options))
        # uvicorn drains on SIGTERM / SIGINT and then re-raises the signal to the handler found before it:
        # this one ends the process with 0, the exit of a completed, graceful shutdown.
        previous = {sig: signal.signal(sig, _stopped) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            server.run(sockets=[sock])
        except Stopped:
            pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if not server.started:
            raise StageError("the server did not start (see the log above)")
        return
    del model  # each worker loads its own
    metrics_dir = tempfile.mkdtemp(prefix="tuneforge-serve-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    os.environ[SETTINGS_ENV] = json.dumps(
        {"ref": ref.text, "params": settings.params.model_dump(mode="json", by_alias=True)})
    try:
        from uvicorn.supervisors import Multiprocess

        config = uvicorn.Config("tuneforge.serving.app:app_from_environment", factory=True, **options)
        Multiprocess(config, sockets=[sock]).run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


class Stopped(Exception):
    """A stop signal arrived and uvicorn has finished its graceful shutdown."""


def _stopped(_signum, _frame) -> None:
    raise Stopped()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def main(ref: str, params_path: Path, overrides: list[str]) -> int:
    """For the CLI: returns the exit code; a known failure is one line on stderr."""
    try:
        run(load_settings(ref, params_path, overrides))
    except StageError as exc:  # ConfigError included
        return report_failure(exc)
    return 0

