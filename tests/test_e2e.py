"""End to end on the embedded sample with tiny step counts (about 2 minutes on 2 cores).

Modelled on TFX's penguin e2e test: a temporary pipeline root, what each component produced,
MLMD execution states, a cached re-run, and an accuracy bound above 1 that must block the Pusher.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from typer.testing import CliRunner

from components.anomaly_gate import DataAnomaliesError
from components.signatures import raw_text_features
from pipeline import pipeline as p
from pipeline.cli import app
from pipeline.config import load_config
from pipeline.run_report import report_dir
from pipeline.runner import run_pipeline
from pipeline.status import read_run

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
ALL_NODES = {
    p.EXAMPLE_GEN,
    p.STATISTICS_GEN,
    p.IMPORT_SCHEMA_GEN,
    p.EXAMPLE_VALIDATOR,
    p.ANOMALY_GATE,
    p.TRANSFORM,
    p.TRAINER,
    p.RESOLVER,
    p.EVALUATOR,
    p.PUSHER,
}
TINY = [
    "transform.max_sequence_length=32",
    "model.num_iterations=4",
    "model.steps_per_epoch=2",
    "model.eval_steps=1",
    "model.batch_size=8",
    "model.lstm_units=4",
    "model.embedding_dimension=4",
    "model.dense_units=4",
    "evaluation.accuracy_lower_bound=0.0",
    "evaluation.max_accuracy_drop=1.0",
]


def _config(work_dir: Path, *extra: str):
    schema = REPO / "configs" / "schema" / "sentiment.pbtxt"
    return load_config(
        REPO / "configs" / "sample.yaml",
        [f"pipeline.work_dir={work_dir}", f"data.schema_path={schema}", *TINY, *extra],
    )


def _snapshot(directory: Path) -> dict[str, str]:
    return {
        str(f.relative_to(directory)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(directory.rglob("*"))
        if f.is_file()
    }


def _states(status) -> dict[str, str]:
    return {c.node_id: c.state for c in status.components}


def _cli_args(work_dir: Path, *extra: str) -> list[str]:
    schema = REPO / "configs" / "schema" / "sentiment.pbtxt"
    sets = [f"pipeline.work_dir={work_dir}", f"data.schema_path={schema}", *TINY, *extra]
    args = ["--config", str(REPO / "configs" / "sample.yaml")]
    for item in sets:
        args += ["--set", item]
    return args


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three runs on one pipeline root: fresh (through the CLI, as a user runs it), cached
    re-run, impossible accuracy bound."""
    work = tmp_path_factory.mktemp("e2e")
    cli = CliRunner().invoke(app, ["run", *_cli_args(work)], env={"COLUMNS": "200"})
    assert cli.exit_code == 0, cli.output
    config = _config(work)
    first_status = read_run(config.pipeline.resolved_metadata_path, config.pipeline.name)
    serving = Path(config.pipeline.resolved_serving_dir)
    after_first = _snapshot(serving)

    second = run_pipeline(_config(work))
    second_status = read_run(second.metadata_path, second.pipeline_name)
    after_second = _snapshot(serving)

    third = run_pipeline(_config(work, "evaluation.accuracy_lower_bound=1.01"))
    third_status = read_run(third.metadata_path, third.pipeline_name)
    after_third = _snapshot(serving)
    return {
        "work": work,
        "serving": serving,
        "statuses": [first_status, second_status, third_status],
        "snapshots": [after_first, after_second, after_third],
        "prepared": second.prepared,  # the same content: reused, not prepared again
        "cli_output": cli.output,
    }


def test_the_imdb_bench_recognises_everything_a_run_writes(runs):
    # make bench-imdb deletes its previous run directory only when it holds nothing else.
    from bench.imdb import RUN_DIR_ENTRIES

    written = sorted(path.name for path in runs["work"].iterdir())
    assert {"pipeline", "serving", "logs", "reports"} <= set(written)
    assert [name for name in written if not name.startswith(RUN_DIR_ENTRIES)] == []


def test_first_run_executes_every_component(runs):
    status = runs["statuses"][0]
    states = _states(status)
    assert set(states) == ALL_NODES
    assert all(state == "executed" for state in states.values()), states
    assert len(status.components) == len(ALL_NODES)  # one execution each
    assert status.blessed is True and status.pushed is True
    assert status.metrics["example_count"] == runs["prepared"].rows["eval"]
    for metric in ("binary_accuracy", "auc", "precision", "recall", "calibration"):
        assert metric in status.metrics


def test_trainer_writes_tensorboard_logs_and_history(runs):
    model_run = Path(runs["statuses"][0].model_run_uri)
    assert list(model_run.rglob("events.out.tfevents.*")), "no TensorBoard event files"
    history = json.loads((model_run / "history.json").read_text())
    assert history["epochs"] * history["steps_per_epoch"] == 4 == history["train_steps"]
    assert len(history["history"]["loss"]) == history["epochs"]
    assert len(history["history"]["val_accuracy"]) == history["epochs"]


def test_prepared_splits_cover_the_sample(runs):
    prepared = runs["prepared"]
    assert prepared.rows["train"] + prepared.rows["eval"] == 100
    assert 5 <= prepared.rows["eval"] <= 35


def test_pushed_model_in_tf_serving_layout_answers_raw_text_and_examples(runs):
    versions = [d for d in runs["serving"].iterdir() if d.is_dir()]
    assert len(versions) == 1 and versions[0].name.isdigit()
    assert (versions[0] / "saved_model.pb").is_file()
    assert (versions[0] / "variables").is_dir()

    loaded = tf.saved_model.load(str(versions[0]))
    texts = ["A moving, beautiful film.", "Dull <br /> and far too long!", ""]
    raw = loaded.signatures["serving_default"](text=tf.constant(texts))
    probabilities = raw["probabilities"].numpy()
    assert probabilities.shape == (3, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(raw["label"].numpy(), probabilities.argmax(axis=1))
    assert set(raw["class_name"].numpy()) <= {b"negative", b"positive"}

    examples = [
        tf.train.Example(
            features=tf.train.Features(
                feature={
                    "text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[t.encode()]))
                }
            )
        ).SerializeToString()
        for t in texts
    ]
    parsed = loaded.signatures["serving_tf_example"](examples=tf.constant(examples))
    np.testing.assert_allclose(parsed["probabilities"].numpy(), probabilities, rtol=1e-5)


def test_predict_cli_answers_from_the_serving_dir(runs):
    result = CliRunner().invoke(
        app, ["predict", "--model", str(runs["serving"]), "--json", "What a great movie"]
    )
    assert result.exit_code == 0, result.output
    assert '"class_name"' in result.output and "What a great movie" in result.output


def test_status_lists_runs_cache_hits_and_versions(runs):
    schema = REPO / "configs" / "schema" / "sentiment.pbtxt"
    result = CliRunner().invoke(
        app,
        ["status", "--config", str(REPO / "configs" / "sample.yaml")]
        + ["--set", f"pipeline.work_dir={runs['work']}", "--set", f"data.schema_path={schema}"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    run_rows = [line for line in lines if any(s.run_id in line for s in runs["statuses"])]
    assert len(run_rows) == 3  # every run listed
    first, second, third = (s.run_id for s in runs["statuses"])
    row = {rid: next(line for line in run_rows if rid in line) for rid in (first, second, third)}
    assert "10/0/0" in row[first] and "pushed" in row[first]  # ran/cached/failed
    assert "3/7/0" in row[second] and "already serving" in row[second]
    assert "3/7/0" in row[third] and "not blessed" in row[third]
    (version,) = [d.name for d in runs["serving"].iterdir()]
    assert version in result.output


def test_second_run_is_cached(runs):
    states = _states(runs["statuses"][1])
    for node in (p.EXAMPLE_GEN, p.STATISTICS_GEN, p.TRANSFORM, p.TRAINER):
        assert states[node] == "cached", states
    # The resolver now finds run 1's model as the baseline, so the Evaluator compares the
    # cached candidate with itself and blesses it; the Pusher sees it is already serving.
    status = runs["statuses"][1]
    assert status.blessed is True and status.pushed is False
    assert "already serving" in status.not_pushed_reason
    assert runs["snapshots"][1] == runs["snapshots"][0]  # nothing pushed twice


def test_accuracy_bound_above_one_blocks_the_pusher(runs):
    status = runs["statuses"][2]
    states = _states(status)
    assert states[p.TRAINER] == "cached"  # only the evaluation changed
    assert states[p.EVALUATOR] == "executed"
    assert status.blessed is False and status.pushed is False
    assert any("binary_accuracy" in reason and ">= 1.01" in reason for reason in status.reasons)
    assert runs["snapshots"][2] == runs["snapshots"][0]  # serving directory byte-for-byte same


def test_schema_anomaly_stops_the_run_before_training(tmp_path):
    # Three classes against the curated two-class schema: label 2 is outside its domain.
    data = tmp_path / "three.csv"
    rows = [f"review number {i} is {'good' if i % 3 else 'bad'},{i % 3}" for i in range(30)]
    data.write_text("text,label\n" + "\n".join(rows) + "\n")
    cfg = _config(
        tmp_path / "work",
        f"data.source={data}",
        "model.num_classes=3",
        "data.class_names=[a, b, c]",
        "data.labels={'0': 0, '1': 1, '2': 2}",
        "pipeline.runner=beam",  # BeamDagRunner, on the short path that stops at the gate
    )
    with pytest.raises(DataAnomaliesError, match=r"feature 'label'"):
        run_pipeline(cfg)
    status = read_run(cfg.pipeline.resolved_metadata_path, cfg.pipeline.name)
    states = _states(status)
    assert states[p.ANOMALY_GATE] == "failed"
    assert p.TRANSFORM not in states and p.TRAINER not in states
    assert not Path(cfg.pipeline.resolved_serving_dir).exists()


def test_a_failed_cli_run_points_to_its_log_and_reports_where_it_stopped(tmp_path):
    data = tmp_path / "three.csv"
    rows = [f"review number {i} is {'good' if i % 3 else 'bad'},{i % 3}" for i in range(30)]
    data.write_text("text,label\n" + "\n".join(rows) + "\n")
    work = tmp_path / "work"
    args = _cli_args(
        work,
        f"data.source={data}",
        "model.num_classes=3",
        "data.class_names=[a, b, c]",
        "data.labels={'0': 0, '1': 1, '2': 2}",
    )
    result = CliRunner().invoke(app, ["run", *args], env={"COLUMNS": "300"})
    assert result.exit_code == 1
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    (log,) = (work / "logs").glob("run-*.log")
    assert f"Full log: {log}" in output.replace("\n", "")
    assert "DataAnomaliesError" in output and "Traceback" not in output
    (report,) = (work / "reports").glob("*/index.html")
    verdict, _ = _page(report)
    assert verdict == "The run did not finish in AnomalyGate: no evaluation, nothing pushed."


def test_trainer_with_the_imdb_levers(tmp_path):
    # The levers configs/imdb.yaml uses, through the real components: word vectors pre-computed
    # in the pipeline from train + unlabelled text, length-bucketed batches, last+max+mean
    # pooling, a BiLSTM, cosine learning rate, early stopping and adversarial training (whose
    # model the Evaluator must load and the Pusher ship like any other).
    unlabelled = tmp_path / "unlabelled.txt"
    unlabelled.write_text("a fine and moving film\nthe plot was dull and slow\n" * 20)
    cfg = _config(
        tmp_path,
        "model.pretrain_word_vectors=true",
        f"data.unlabelled_source={unlabelled}",
        "model.bucket_by_length=true",
        "model.pooling=last_max_mean",
        "model.bidirectional=true",
        "model.learning_rate_schedule=cosine",
        "model.early_stopping_patience=1",
        "model.adversarial_epsilon=0.5",
        "model.num_iterations=6",
        "model.steps_per_epoch=2",
        "evaluation.baseline=none",
    )
    result = run_pipeline(cfg)
    status = read_run(result.metadata_path, result.pipeline_name)
    states = _states(status)
    assert states[p.WORD_VECTORS] == "executed"
    assert states[p.TRAINER] == "executed" and status.pushed is True
    vectors_dir = Path(cfg.pipeline.resolved_pipeline_root) / p.WORD_VECTORS / "word_vectors"
    (vectors_file,) = vectors_dir.rglob("vectors.npy")
    vectors = np.load(vectors_file)
    assert vectors.shape[1] == 4 and np.all(vectors[0] == 0)
    history = json.loads((Path(status.model_run_uri) / "history.json").read_text())
    assert 2 <= history["train_steps"] <= 6 and history["train_seconds"] > 0
    # Every step is timed once: per validation pass, and the first steps apart (the bench's
    # steady-state throughput leaves them out).
    assert len(history["epoch_train_seconds"]) == len(history["history"]["val_accuracy"])
    assert sum(history["epoch_train_seconds"]) == pytest.approx(history["train_seconds"])
    assert history["warmup_steps"] == history["train_steps"]  # fewer than WARMUP_STEPS
    assert history["warmup_seconds"] == pytest.approx(history["train_seconds"])
    loaded = tf.saved_model.load(status.pushed_destination)
    out = loaded.signatures["serving_default"](text=tf.constant(["Short.", "A much longer " * 20]))
    assert out["probabilities"].shape == (2, 2)
    # The pushed model is also a Keras model again (to fine-tune or inspect), and its serving
    # signature (fused LSTM kernel) gives the Keras model's answers.
    revived = keras.models.load_model(status.pushed_destination, compile=False)
    graph_dir = Path(cfg.pipeline.resolved_pipeline_root) / p.TRANSFORM / "transform_graph"
    (graph,) = [d for d in graph_dir.iterdir() if d.is_dir()]
    transform_output = tft.TFTransformOutput(str(graph))
    texts = tf.constant(["Short.", "A much longer " * 20, ""])
    raw = raw_text_features(texts, transform_output.raw_feature_spec())
    tokens = transform_output.transform_features_layer()(raw)["tokens"]
    np.testing.assert_allclose(
        revived(tokens, training=False).numpy(),
        loaded.signatures["serving_default"](text=texts)["probabilities"].numpy(),
        rtol=1e-5,
        atol=1e-6,
    )


def test_predict_handles_empty_very_long_and_unusual_text(runs):
    from pipeline.predict import Predictor

    predictor = Predictor.load(runs["serving"])
    texts = ["", "   ", "word " * 50_000, "😀 סרט נהדר", 12345]
    results = predictor.predict(texts)
    assert [r["text"] for r in results] == [str(t) for t in texts]
    for r in results:
        assert r["class_name"] in ("negative", "positive")
        assert abs(sum(r["probabilities"]) - 1.0) < 1e-5


def test_created_files_are_not_world_writable(runs):
    for path in [runs["work"], *runs["work"].rglob("*")]:
        if path.is_symlink():
            continue
        assert not path.stat().st_mode & 0o002, path


def test_local_serving_matches_the_saved_model_and_rejects_bad_requests(runs):
    import base64
    import threading
    import urllib.error
    import urllib.request

    from pipeline.serve import make_server

    server = make_server(runs["serving"], "sentiment", port=0, max_body_bytes=4096)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/v1/models"

    def call(path, body=None, raw=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body else None)
        request = urllib.request.Request(base + path, data=data)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    try:
        (version,) = [d.name for d in runs["serving"].iterdir()]
        status, body = call("/sentiment")
        assert status == 200 and body["model_version_status"][0]["version"] == version

        texts = ["A lovely film.", "Awful."]
        status, body = call("/sentiment:predict", {"instances": texts})
        loaded = tf.saved_model.load(str(runs["serving"] / version))
        direct = loaded.signatures["serving_default"](text=tf.constant(texts))
        assert status == 200
        got = np.array([p["probabilities"] for p in body["predictions"]])
        np.testing.assert_allclose(got, direct["probabilities"].numpy(), rtol=1e-5)

        example = tf.train.Example(
            features=tf.train.Features(
                feature={"text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"Awful."]))}
            )
        ).SerializeToString()
        status, body = call(
            "/sentiment:predict",
            {
                "signature_name": "serving_tf_example",
                "instances": [{"b64": base64.b64encode(example).decode()}],
            },
        )
        assert status == 200
        np.testing.assert_allclose(body["predictions"][0]["probabilities"], got[1], rtol=1e-5)

        assert call("/sentiment:predict", raw=b"{not json")[0] == 400
        assert call("/sentiment:predict", {"instances": [1, 2]})[0] == 400
        assert call("/other:predict", {"instances": ["x"]})[0] == 404
        assert call("/sentiment:predict", raw=b'{"instances": ["' + b"x" * 5000 + b'"]}')[0] == 413

        # A newly pushed version is picked up without a restart.
        newer = str(int(version) + 1)
        shutil.copytree(runs["serving"] / version, runs["serving"] / newer)
        time.sleep(1.1)
        status, body = call("/sentiment:predict", {"instances": texts})
        assert status == 200 and body["version"] == newer
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(runs["serving"] / str(int(version) + 1), ignore_errors=True)


# --- progress, log file, report ----------------------------------------------------------------


def test_the_run_command_logs_to_a_file_and_writes_a_report(runs):
    logs = sorted((runs["work"] / "logs").glob("run-*.log"))
    assert len(logs) == 3  # one per run
    first_log = logs[0].read_text()
    for node in ALL_NODES - {p.RESOLVER}:
        assert f"Component {node} is running." in first_log
    assert "Epoch 1/" in first_log  # what Keras prints went to the file, not the terminal
    output = runs["cli_output"]
    assert "Epoch 1/" not in output
    report = report_dir(runs["work"], runs["statuses"][0].run_id) / "index.html"
    assert f"Report: {report}" in output.replace("\n", "")
    assert report.is_file() and (report.parent / "run.log").read_text() == first_log


def _page(report: Path) -> tuple[str, list[str]]:
    """(verdict text, image sources) of a report page, read with html.parser."""

    class Parser(HTMLParser):
        def __init__(self):
            super().__init__()
            self.images, self.verdict, self._in_verdict = [], "", False

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "img":
                self.images.append(attrs["src"])
            self._in_verdict = tag == "div" and "verdict" in (attrs.get("class") or "")

        def handle_data(self, data):
            if self._in_verdict:
                self.verdict += data

    parser = Parser()
    parser.feed(report.read_text())
    return parser.verdict, parser.images


def test_report_charts_are_valid_pngs_and_the_verdict_matches_the_blessing(runs):
    status = runs["statuses"][0]
    report = report_dir(runs["work"], status.run_id) / "index.html"
    verdict, images = _page(report)
    assert status.blessed and verdict == (
        f"Blessed and pushed as version {Path(status.pushed_destination).name}."
    )
    expected = {"lengths.png", "classes.png", "training.png", "confusion.png", "slices.png"}
    assert set(images) == expected
    for name in images:
        data = (report.parent / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", name
        height, width, _ = matplotlib.image.imread(report.parent / name).shape
        assert height > 100 and width > 100, name
    page = report.read_text()
    assert "&lt;100" in page  # the review-length slice TFMA computed
    assert "<script" not in page.lower()  # readable without JavaScript


def test_report_of_a_blocked_run_names_the_failed_threshold(runs):
    status = runs["statuses"][2]
    result = CliRunner().invoke(app, ["report", status.run_id, *_cli_args(runs["work"])])
    assert result.exit_code == 0, result.output
    report = report_dir(runs["work"], status.run_id) / "index.html"
    verdict, _ = _page(report)
    assert status.blessed is False
    assert verdict.startswith("Not blessed: binary_accuracy value")
    assert ">= 1.01" in verdict and verdict.endswith("Nothing was pushed.")
    page = report.read_text()
    assert '<span class="fail">FAIL</span>' in page
    assert "baseline" in page and "delta" in page  # run 1's model was the baseline


@pytest.fixture(scope="session")
def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("Debian's chromium is not installed (make test installs it when it can)")
    return found


def test_report_opens_in_headless_chromium_without_broken_images(runs, chromium, tmp_path):
    source = report_dir(runs["work"], runs["statuses"][0].run_id)
    copy = tmp_path / "report"
    shutil.copytree(source, copy)
    (copy / "broken.png").write_bytes(b"not a png")  # proves the check below can fail
    # A test-only copy of the page that counts images the browser could not decode.
    check = (
        (copy / "index.html")
        .read_text()
        .replace(
            "</body>",
            '<img src="broken.png" alt="control"><script>window.addEventListener("load",()=>{'
            "const bad=[...document.images].filter(i=>!i.complete||i.naturalWidth===0)"
            ".map(i=>i.getAttribute('src'));"
            'document.body.setAttribute("data-broken",bad.join(","));});</script></body>',
        )
    )
    (copy / "check.html").write_text(check)
    flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    dom = subprocess.run(
        [chromium, *flags, "--dump-dom", (copy / "check.html").as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert 'data-broken="broken.png"' in dom  # every report image loaded; only the control failed
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            chromium,
            *flags,
            "--window-size=1100,2400",
            f"--screenshot={shot}",
            (copy / "index.html").as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert matplotlib.image.imread(shot).shape[:2] == (2400, 1100)
