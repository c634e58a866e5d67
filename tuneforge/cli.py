"""`tuneforge`: the pipeline through `dvc repro`, one stage by hand, the spec's schema, the registry."""

import importlib
import subprocess
import sys
from pathlib import Path

import typer
import yaml
from rich.console import Console
from rich.table import Table

from registry.cli import app as registry_app
from tuneforge.base.errors import StageError, report_failure
from tuneforge.base.layout import PARAMS_FILE
from tuneforge.pipeline.environment import stage_environment
from tuneforge.pipeline.run_lock import checkout_lock

app = typer.Typer(help="Declarative fine-tuning pipeline with a model registry.", no_args_is_help=True)
err = Console(stderr=True)

app.add_typer(registry_app, name="registry", help="Versioned artifacts, lineage, aliases and promotion.")


def _fail(exc: StageError) -> typer.Exit:
    return typer.Exit(report_failure(exc))


def pipeline_stages(dvc_file: Path = Path("dvc.yaml")) -> list[str]:
    """Stage names in the order dvc.yaml declares them."""
    if not dvc_file.is_file():
        raise StageError(f"{dvc_file}: not found; run tuneforge from the repository root")
    return list((yaml.safe_load(dvc_file.read_text(encoding="utf-8")) or {}).get("stages", {}))


@app.command()
def run(
    targets: list[str] = typer.Argument(
        None, help="Stages to bring up to date with everything they depend on (as `dvc repro TARGET`); none: all"
    ),
    set_: list[str] = typer.Option([], "--set", "-S", help="Override a spec key for this run: split.seed=7"),
    config: list[Path] = typer.Option([], "--config", "-c", help="Overlay file merged into params.yaml"),
    force: bool = typer.Option(False, "--force", "-f", help="Re-run every stage even if up to date"),
    params: Path = typer.Option(PARAMS_FILE, help="The pipeline spec"),
) -> None:
    """Run the pipeline through `dvc repro` (stages that are up to date are skipped), or up to the named stages."""
    from tuneforge.data.io import check_data_files
    from tuneforge.params.overrides import apply_to_params_file

    targets = list(targets or [])
    command = [sys.executable, "-m", "dvc", "repro", *(["--force"] if force else []), *targets]
    try:
        known = pipeline_stages()
        unknown = [name for name in targets if name not in known]
        if unknown:
            raise StageError(f"unknown stage '{unknown[0]}'; dvc.yaml has: {', '.join(known)}")
        # From writing params.yaml until dvc.lock is written: another run in between would mix the two.
        with checkout_lock():
            apply_to_params_file(params, list(set_), list(config), verify=lambda spec: check_data_files(spec.data))
            returncode = subprocess.run(command, env=stage_environment()).returncode
    except StageError as exc:
        raise _fail(exc) from None
    raise typer.Exit(returncode)


@app.command()
def stage(
    name: str = typer.Argument(..., help="A stage of dvc.yaml, e.g. validate"),
    params: Path = typer.Option(PARAMS_FILE, help="The pipeline spec"),
) -> None:
    """Run one stage by hand (the same as `python -m stages.NAME`), for debugging."""
    try:
        known = pipeline_stages()
    except StageError as exc:
        raise _fail(exc) from None
    if name not in known:
        err.print(f"error: unknown stage '{name}'; dvc.yaml has: {', '.join(known)}", markup=False)
        raise typer.Exit(2)
    module = importlib.import_module(f"stages.{name}")
    try:
        with checkout_lock():
            returncode = module.main(["--params", str(params)])
    except StageError as exc:
        raise _fail(exc) from None
    raise typer.Exit(returncode)


@app.command("tune-worker")
def tune_worker(params: Path = typer.Option(PARAMS_FILE, help="The pipeline spec")) -> None:
    """Run trials of the spec's study (tune.storage) until it holds tune.n_trials; writes no outputs."""
    from stages import tune

    raise typer.Exit(tune.main(["--worker", "--params", str(params)]))


@app.command("params")
def show_params(
    check: bool = typer.Option(False, "--check", help="Only validate params.yaml"),
    params: Path = typer.Option(PARAMS_FILE, help="The pipeline spec"),
) -> None:
    """Print every key of the spec with its default and meaning, or validate params.yaml with --check."""
    from tuneforge.params import describe_schema, load_params

    if check:
        try:
            load_params(params)
        except StageError as exc:
            raise _fail(exc) from None
        Console().print(f"{params}: valid")
        return
    table = Table("key", "default", "meaning", title="params.yaml")
    for section, fields in describe_schema().items():
        for key, (default, description) in fields.items():
            shown = default.model_dump() if hasattr(default, "model_dump") else default
            table.add_row(f"{section}.{key}", repr(shown), description)
    Console().print(table)


def main() -> None:  # console-script entry point
    app()


@app.command()
def summary() -> None:
    """Where everything is after a run: outputs, headline metrics, the registered version, what to try next."""
    from tuneforge.summary import print_summary

    try:
        pipeline_stages()
    except StageError as exc:
        raise _fail(exc) from None
    print_summary()


@app.command()
def serve(port: int = typer.Option(4200, help="Port of the local Prefect server")) -> None:
    """Start a local Prefect server and a worker, and deploy prefect.yaml: the schedules then fire here."""
    from tuneforge import orchestration as serving

    repo = Path.cwd()
    if not (repo / "prefect.yaml").is_file():
        err.print("error: prefect.yaml not found; run tuneforge serve from the repository root", markup=False)
        raise typer.Exit(1)
    env = serving.serving_environment(repo, port)
    with serving.local_server(env, port):
        serving.deploy_all(repo, env)
        Console().print(f"Prefect UI: http://127.0.0.1:{port}  (Ctrl-C stops the worker and the server)")
        worker = serving.start_worker(repo, env)
        try:
            worker.wait()
        except KeyboardInterrupt:
            serving.stop(worker)


@app.command("serve-model")
def serve_model(
    ref: str = typer.Argument(..., help="NAME@ALIAS (followed), NAME:VERSION, or a model folder (models/onnx)"),
    host: str = typer.Option(None, help="Interface to listen on (serve.host)"),
    port: int = typer.Option(None, help="TCP port, 0 for any free one (serve.port)"),
    workers: int = typer.Option(None, min=1, help="Server processes on the port (serve.workers)"),
    set_: list[str] = typer.Option([], "--set", "-S", help="Override a key for this server only: serve.max_batch=16"),
    params: Path = typer.Option(PARAMS_FILE, help="The pipeline spec (serve:, registry:, monitor: sections)"),
) -> None:
    """Serve a model over HTTP (onnxruntime + tokenizers, no torch); NAME@ALIAS follows the alias as it moves."""
    from tuneforge.serving import server

    given = {"host": host, "port": port, "workers": workers}
    overrides = list(set_) + [f"serve.{key}={value}" for key, value in given.items() if value is not None]
    raise typer.Exit(server.main(ref, params, overrides))


@app.command()
def predict(
    model_dir: Path = typer.Argument(..., help="A models/onnx directory written by the export stage"),
    texts: list[str] = typer.Argument(None, help="Texts to classify"),
    file: Path = typer.Option(None, "--file", "-f", help="Also classify each line of this UTF-8 file"),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per text (label, score, top)"),
    fp32: bool = typer.Option(False, "--fp32", help="Run model.onnx instead of the int8 model"),
    top_k: int = typer.Option(1, "--top-k", min=1, help="Labels shown per text, best first"),
    no_verify: bool = typer.Option(
        False, "--no-verify",
        help="Load files without checking them against the sha256 in meta.json (only for a folder made by hand)",
    ),
) -> None:
    """Classify texts with an exported model (onnxruntime + tokenizers only): labels with scores."""
    import json

    from tuneforge.inference import onnx_predictor as onnx_predict

    try:
        inputs = list(texts or [])
        if file:
            from_file = onnx_predict.read_texts(file)
            if not from_file:
                raise StageError(f"{file}: no texts in it (one text per line; blank lines are skipped)")
            inputs += from_file
        if not inputs:
            raise StageError("nothing to classify: give texts, or --file FILE with one text per line")
        model = onnx_predict.load(model_dir, variant="fp32" if fp32 else "int8", verify=not no_verify)
        results = onnx_predict.predict(model, inputs, top_k=top_k)
    except StageError as exc:
        raise _fail(exc) from None
    if as_json:
        for result in results:
            typer.echo(json.dumps(result, ensure_ascii=False))
        return
    table = Table("label", "score", "text", title=f"{model_dir}")
    for result in results:
        predicted, top = result["label"], result["top"]
        if isinstance(predicted, list):  # a multi-label prediction: the set (possibly empty), each with its score
            label = ", ".join(predicted) or "(none)"
            score = ", ".join(f"{t['score']:.4f}" for t in top if t["label"] in predicted) or f"{result['score']:.4f}"
        else:  # one label, with the top k
            label, score = ", ".join(t["label"] for t in top), ", ".join(f"{t['score']:.4f}" for t in top)
        table.add_row(label, score, result["text"])
    Console().print(table)

if __name__ == "__main__":
    main()
