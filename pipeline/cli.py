"""``sentiment-pipeline``: run the pipeline, predict with a pushed model, import IMDB."""

from __future__ import annotations

import contextlib
import datetime
import os
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from pipeline.config import ConfigError, load_config

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode="rich",
    help="Train, validate and ship an LSTM sentiment classifier with TFX.",
)
data_app = typer.Typer(no_args_is_help=True, help="Prepare input data.")
app.add_typer(data_app, name="data")

console = Console()
err_console = Console(stderr=True)


class _State:
    debug = False


def _quiet_logs(verbose: bool) -> None:
    """Hide TensorFlow/TFX/Beam log noise on the terminal unless -v (the run's log file still
    gets INFO and up). Must run before TensorFlow is imported."""
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import logging as std_logging

    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.INFO)  # records exist; handlers decide who sees them
    absl_logging.use_absl_handler()
    absl_logging.get_absl_handler().setLevel(std_logging.INFO if verbose else std_logging.ERROR)
    for name in ("apache_beam", "tensorflow"):
        std_logging.getLogger(name).setLevel(std_logging.INFO if verbose else std_logging.WARNING)
    import warnings

    if not verbose:
        warnings.filterwarnings("ignore")


def _with_data(overrides: list[str], data: str | None, test_data: str | None) -> list[str]:
    """``--set`` overrides plus the ``--data``/``--test-data`` shortcuts."""
    extra = list(overrides)
    if data is not None:
        extra.append(f"data.source={data}")
    if test_data is not None:
        extra.append(f"data.test_source={test_data}")
    return extra


def _fail(message: str, code: int = 2) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


RUN_HELP = """Run the whole pipeline: ExampleGen -> statistics/schema/validation -> Transform ->
Trainer -> Evaluator -> Pusher.

Examples:

  sentiment-pipeline run                                   # embedded 100-review sample

  sentiment-pipeline run --config configs/imdb.yaml --data data/imdb

  sentiment-pipeline run --data reviews.tsv --set data.text_column=review
      --set data.label_column=sentiment

  sentiment-pipeline run --set model.num_iterations=50 --set pipeline.runner=beam
"""


@app.command(help=RUN_HELP, short_help="Run the whole pipeline and print a summary.")
def run(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="YAML config (default: built-in sample settings)."
    ),
    data: str | None = typer.Option(
        None, "--data", help="Your CSV/TSV file or folder, or a folder from 'data import-imdb'."
    ),
    test_data: str | None = typer.Option(
        None, "--test-data", help="Held-out test CSV/TSV; the Evaluator gates on it."
    ),
    overrides: list[str] = typer.Option(
        [], "--set", help="Override any config key: section.key=value (repeatable)."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show TFX/Beam/TF logs."),
    debug: bool = typer.Option(False, "--debug", help="Show Python tracebacks on errors."),
) -> None:
    _quiet_logs(verbose)
    try:
        cfg = load_config(config, _with_data(overrides, data, test_data))
    except ConfigError as exc:
        _fail(str(exc))

    from pipeline.data import InputDataError
    from pipeline.imdb import ImdbImportError
    from pipeline.locking import PipelineBusyError
    from pipeline.progress import ProgressTracker, live_progress
    from pipeline.report import print_summary
    from pipeline.runner import absolute, run_pipeline

    console.print(
        f"[bold]sentiment-pipeline[/] running '{cfg.pipeline.name}' "
        f"({cfg.pipeline.runner} runner) in {cfg.pipeline.work_dir}"
    )
    tracker = ProgressTracker()
    started = datetime.datetime.now()  # TFX names runs by their local start time
    # -v streams the libraries' logs instead of the live table (the two would interleave).
    display = contextlib.nullcontext() if verbose else live_progress(tracker, console)
    try:
        with display:
            result = run_pipeline(cfg, progress=tracker, capture_output=not verbose)
    except (ConfigError, InputDataError, ImdbImportError, PipelineBusyError) as exc:
        _fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - the top of the CLI: report, then exit non-zero
        if debug:
            raise
        logs = sorted((Path(absolute(cfg.pipeline.work_dir)) / "logs").glob("run-*.log"))
        run_id = _run_started_since(cfg, started)
        if run_id is not None:  # the failed run reached ML Metadata: report what it did
            _write_report(cfg, logs[-1] if logs else None, run_id)
        _fail(
            f"the pipeline failed: {type(exc).__name__}: {exc}\n"
            + (f"Full log: {logs[-1]}\n" if logs else "")
            + "(re-run with --debug for the traceback)",
            1,
        )
    print_summary(console, result)
    _write_report(cfg, result.log_path)


def _run_started_since(cfg, since: datetime.datetime) -> str | None:
    """The id of the latest run of ``cfg``'s pipeline if it started at or after ``since``."""
    from pipeline.runner import absolute
    from pipeline.status import open_store, run_ids

    try:
        ids = run_ids(open_store(absolute(cfg.pipeline.resolved_metadata_path)), cfg.pipeline.name)
    except (FileNotFoundError, LookupError):
        return None
    if not ids:
        return None
    try:
        return ids[-1] if datetime.datetime.fromisoformat(ids[-1]) >= since else None
    except ValueError:  # not a timestamp: cannot tell, so do not guess
        return None


def _report(cfg, log_path: Path | None, run_id: str | None) -> Path:
    from pipeline.run_report import write_report
    from pipeline.runner import absolute

    return write_report(
        absolute(cfg.pipeline.resolved_metadata_path),
        cfg.pipeline.name,
        work_dir=absolute(cfg.pipeline.work_dir),
        run_id=run_id,
        log_path=log_path,
        serving_dir=absolute(cfg.pipeline.resolved_serving_dir),
        class_names=list(cfg.data.class_names),
    )


def _write_report(cfg, log_path: Path | None, run_id: str | None = None) -> Path | None:
    """The run's HTML report; a report that cannot be written never fails the run."""
    try:
        path = _report(cfg, log_path, run_id)
    except Exception as exc:  # noqa: BLE001 - reporting must not turn a run into a failure
        err_console.print(f"[yellow]warning:[/] the run report was not written: {exc}")
        return None
    console.print(f"Report: {path}")
    return path


REPORT_HELP = """Write the HTML report of a run (default: the latest) again: data summary,
vocabulary coverage, training curves, metrics against thresholds and the baseline, confusion
matrix, metrics by review length, verdict and pushed versions. PNG charts, no JavaScript.

Examples:

  sentiment-pipeline report

  sentiment-pipeline report 2026-12-04T15:59:58.711517 --config configs/imdb.yaml
"""


@app.command(help=REPORT_HELP, short_help="Write the HTML report of a run.")
def report(
    run_id: str | None = typer.Argument(None, help="Run id (see 'status'); default: latest."),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML config."),
    overrides: list[str] = typer.Option([], "--set", help="section.key=value (repeatable)."),
) -> None:
    _quiet_logs(False)
    try:
        cfg = load_config(config, overrides)
    except ConfigError as exc:
        _fail(str(exc))
    from pipeline.runner import absolute

    metadata = absolute(cfg.pipeline.resolved_metadata_path)
    if not Path(metadata).is_file():
        _fail(f"no metadata store at {metadata}: has the pipeline run with this config?")
    logs = sorted((Path(absolute(cfg.pipeline.work_dir)) / "logs").glob("run-*.log"))
    # The latest run's log is the newest file; an older run's report keeps the copy it has.
    log_path = logs[-1] if logs and run_id is None else None
    try:
        path = _report(cfg, log_path, run_id)
    except LookupError as exc:  # no such run
        _fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - the top of the CLI: report, then exit non-zero
        _fail(f"the run report was not written: {exc}", 1)
    console.print(f"Report: {path}")


STATUS_HELP = """List recent runs from ML Metadata (per component: executed, cached or failed, and
duration; metrics, blessing, push) and the versions in the serving directory.

Examples:

  sentiment-pipeline status

  sentiment-pipeline status --config configs/imdb.yaml --runs 10
"""


@app.command(help=STATUS_HELP, short_help="List recent runs and pushed versions.")
def status(
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML config."),
    overrides: list[str] = typer.Option([], "--set", help="Override a config key."),
    runs: int = typer.Option(5, "--runs", "-n", min=1, help="How many recent runs."),
) -> None:
    _quiet_logs(False)
    try:
        cfg = load_config(config, overrides)
    except ConfigError as exc:
        _fail(str(exc))
    from pipeline.report import print_status

    try:
        print_status(console, cfg, runs)
    except (FileNotFoundError, LookupError) as exc:
        _fail(str(exc))


PREDICT_HELP = """Classify texts with a SavedModel (a pushed version, or the serving directory:
its newest version is used).

Examples:

  sentiment-pipeline predict --model runs/sample/serving "A wonderful film." "Dull and long."

  sentiment-pipeline predict --model runs/sample/serving --file reviews.txt

  echo "What a waste of time" | sentiment-pipeline predict --model runs/sample/serving
"""


@app.command(help=PREDICT_HELP, short_help="Classify texts with a pushed model.")
def predict(
    texts: list[str] = typer.Argument(None, help="Texts to classify (default: lines of stdin)."),
    model: Path = typer.Option(..., "--model", "-m", help="SavedModel or serving directory."),
    file: Path | None = typer.Option(None, "--file", "-f", help="Read one text per line."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines instead of a table."),
) -> None:
    _quiet_logs(False)
    from pipeline.predict import ModelLoadError, Predictor

    items = list(texts or [])
    if file is not None:
        try:
            items += [line.rstrip("\n") for line in file.read_text(encoding="utf-8").splitlines()]
        except (OSError, UnicodeDecodeError) as exc:
            _fail(f"--file {file}: {exc}")
    if not items and not sys.stdin.isatty():
        items = [line.rstrip("\n") for line in sys.stdin]
    if not items:
        _fail("no text to classify: pass TEXT arguments, --file, or lines on stdin")
    try:
        predictor = Predictor.load(model)
    except ModelLoadError as exc:
        _fail(str(exc))
    predictions = predictor.predict(items)
    if as_json:
        import json

        for p in predictions:
            console.print_json(json.dumps(p))
        return
    table = Table(title=f"model {predictor.path}")
    table.add_column("label")
    table.add_column("probability", justify="right")
    table.add_column("text", overflow="ellipsis", max_width=80, no_wrap=True)
    for p in predictions:
        table.add_row(p["class_name"], f"{p['probability']:.3f}", p["text"])
    console.print(table)


SERVE_HELP = """Serve pushed versions over HTTP in TensorFlow Serving's REST shape (newest version;
a newly pushed one is picked up without a restart).

Examples:

  sentiment-pipeline serve --model-dir runs/sample/serving

  curl -d '{"instances": ["A wonderful film."]}' localhost:8501/v1/models/sentiment:predict

  curl localhost:8501/v1/models/sentiment
"""


@app.command(help=SERVE_HELP, short_help="Serve the pushed model over HTTP (TF Serving REST).")
def serve(
    model_dir: Path = typer.Option(..., "--model-dir", help="The serving directory."),
    port: int = typer.Option(8501, "--port", min=0, max=65535),
    host: str = typer.Option("127.0.0.1", "--host", help="Bind address (loopback by default)."),
    name: str = typer.Option("sentiment", "--name", help="Model name in the URL."),
) -> None:
    _quiet_logs(False)
    from pipeline.serve import make_server

    server = make_server(model_dir, name, host=host, port=port)
    address = f"http://{host}:{server.server_address[1]}/v1/models/{name}"
    console.print(f"serving {model_dir} at {address} (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


IMPORT_HELP = """Convert the official IMDB archive (aclImdb_v1.tar.gz layout) into pipeline input:
OUT_DIR/train.csv and OUT_DIR/test.csv (the official split: no test review reaches training),
OUT_DIR/unsup.txt and a manifest. Idempotent.

Examples:

  sentiment-pipeline data import-imdb ../shared/data/imdb/aclImdb_v1.tar.gz data/imdb

  sentiment-pipeline data import-imdb data/imdb        # downloads the official archive
"""


@data_app.command(
    "import-imdb", help=IMPORT_HELP, short_help="Convert the official IMDB archive into input."
)
def import_imdb_cmd(
    args: list[str] = typer.Argument(
        ..., metavar="[SOURCE] OUT_DIR", help="Archive path, extracted folder or URL; then OUT_DIR."
    ),
) -> None:
    from pipeline.imdb import DEFAULT_URL, ImdbImportError, import_imdb

    if len(args) not in (1, 2):
        _fail("expected [SOURCE] OUT_DIR")
    source, out_dir = (DEFAULT_URL, args[0]) if len(args) == 1 else (args[0], args[1])
    try:
        import_imdb(source, out_dir, log=console.print)
    except ImdbImportError as exc:
        _fail(str(exc))


PREPARE_HELP = """Validate and normalise the configured input (data.source, data.test_source) into
ExampleGen's layout (train/, eval/, test/ CSV) and copy it to OUT, a local folder or an object
store URI (gs://...). Kubeflow runs read it from kubeflow.data_root.

Examples:

  sentiment-pipeline data prepare gs://my-bucket/sentiment/inputs

  sentiment-pipeline data prepare --config configs/imdb.yaml --data data/imdb /mnt/shared/inputs
"""


@data_app.command("prepare", help=PREPARE_HELP, short_help="Prepare input for Kubeflow runs.")
def prepare_cmd(
    out: str = typer.Argument(..., metavar="OUT", help="Folder or URI to write the splits to."),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML config."),
    data: str | None = typer.Option(None, "--data", help="Overrides data.source."),
    test_data: str | None = typer.Option(None, "--test-data", help="Overrides data.test_source."),
    overrides: list[str] = typer.Option([], "--set", help="section.key=value (repeatable)."),
) -> None:
    _quiet_logs(False)
    from pipeline.data import InputDataError, export_prepared, prepare_inputs
    from pipeline.imdb import ImdbImportError
    from pipeline.runner import absolute

    try:
        cfg = load_config(config, _with_data(overrides, data, test_data))
        prepared = prepare_inputs(cfg.data, absolute(cfg.pipeline.work_dir))
        export_prepared(prepared, out)
    except (ConfigError, InputDataError, ImdbImportError, OSError) as exc:
        _fail(str(exc))
    rows = ", ".join(f"{name} {n}" for name, n in prepared.rows.items())
    console.print(f"Prepared {rows} rows into {out}")
    console.print(f"Set kubeflow.data_root: {out} and kubeflow.test_split: {prepared.has_test}")


COMPILE_HELP = """Compile the pipeline for Kubeflow Pipelines v2 with TFX's KubeflowV2DagRunner:
a PipelineJob (.json) or a PipelineSpec (.yaml). The config's 'kubeflow' section names the
image and the storage every pod reaches.

Examples:

  sentiment-pipeline compile --config configs/kubeflow.yaml --output sentiment.yaml
"""


@app.command("compile", help=COMPILE_HELP, short_help="Compile for Kubeflow Pipelines v2.")
def compile_cmd(
    config: Path = typer.Option(..., "--config", "-c", help="YAML config with a kubeflow section."),
    output: Path = typer.Option(..., "--output", "-o", help="pipeline.json or pipeline.yaml."),
    overrides: list[str] = typer.Option([], "--set", help="section.key=value (repeatable)."),
) -> None:
    _quiet_logs(False)
    from pipeline.kubeflow import compile_pipeline

    try:
        compiled = compile_pipeline(load_config(config, overrides), output)
    except ConfigError as exc:
        _fail(str(exc))
    spec = compiled.pipeline_job["pipelineSpec"]
    image = sorted({e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()})
    console.print(f"Compiled {len(compiled.tasks)} tasks into {compiled.path}")
    console.print(f"  tasks: {', '.join(compiled.tasks)}")
    console.print(f"  image: {', '.join(image)}")
    console.print(f"  pipeline root: {spec['defaultPipelineRoot']}")


SUBMIT_HELP = """Create a run of a compiled pipeline on a Kubeflow Pipelines 2.x API server.

Examples:

  sentiment-pipeline submit sentiment.yaml --host http://localhost:8080 --experiment nightly
"""


@app.command(help=SUBMIT_HELP, short_help="Submit a compiled pipeline to Kubeflow Pipelines.")
def submit(
    package: Path = typer.Argument(..., help="File written by 'compile' (.json or .yaml)."),
    host: str = typer.Option(..., "--host", help="KFP API endpoint, e.g. http://localhost:8080."),
    experiment: str | None = typer.Option(None, "--experiment", help="Experiment name."),
    namespace: str | None = typer.Option(None, "--namespace", help="Kubeflow profile namespace."),
    run_name: str | None = typer.Option(None, "--run-name", help="Default: the pipeline name."),
) -> None:
    _quiet_logs(False)
    from pipeline.kubeflow import SubmitError
    from pipeline.kubeflow import submit as submit_run

    try:
        run_id = submit_run(
            package, host, run_name=run_name, experiment=experiment, namespace=namespace
        )
    except SubmitError as exc:
        _fail(str(exc))
    console.print(f"Submitted run {run_id} to {host}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
