"""``sentiment-pipeline``: run the pipeline, predict with a pushed model, import IMDB."""

from __future__ import annotations

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
    """Hide TensorFlow/TFX/Beam log noise unless -v. Must run before TensorFlow is imported."""
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import logging as std_logging

    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.INFO if verbose else absl_logging.ERROR)
    for name in ("apache_beam", "tensorflow", "absl"):
        std_logging.getLogger(name).setLevel(std_logging.INFO if verbose else std_logging.ERROR)
    import warnings

    if not verbose:
        warnings.filterwarnings("ignore")


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
    extra = list(overrides)
    if data is not None:
        extra.append(f"data.source={data}")
    if test_data is not None:
        extra.append(f"data.test_source={test_data}")
    try:
        cfg = load_config(config, extra)
    except ConfigError as exc:
        _fail(str(exc))

    from pipeline.data import InputDataError
    from pipeline.imdb import ImdbImportError
    from pipeline.locking import PipelineBusyError
    from pipeline.report import print_summary
    from pipeline.runner import run_pipeline

    console.print(
        f"[bold]sentiment-pipeline[/] running '{cfg.pipeline.name}' "
        f"({cfg.pipeline.runner} runner) in {cfg.pipeline.work_dir}"
    )
    try:
        result = run_pipeline(cfg)
    except (ConfigError, InputDataError, ImdbImportError, PipelineBusyError) as exc:
        _fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - the top of the CLI: report, then exit non-zero
        if debug:
            raise
        _fail(
            f"the pipeline failed: {type(exc).__name__}: {exc}\n"
            "(re-run with --debug for the traceback)",
            1,
        )
    print_summary(console, result)


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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
