"""Compiling for Kubeflow Pipelines v2 (KubeflowV2DagRunner) and submitting to a KFP API server."""

from __future__ import annotations

import importlib
import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from pipeline import pipeline as p
from pipeline.config import ConfigError, load_config
from pipeline.kubeflow import SubmitError, compile_pipeline, submit

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "kubeflow.yaml"  # the shared-volume variant
# The object-store variant (Vertex AI Pipelines, or KFP with GCS), the only one JSON can carry.
GCS = [
    "kubeflow.shared_volume=null",
    "kubeflow.pipeline_root=gs://bucket/sentiment/root",
    "kubeflow.data_root=gs://bucket/sentiment/inputs",
    "kubeflow.serving_dir=gs://bucket/sentiment/models/sentiment",
]
EXPECTED_TASKS = {
    p.EXAMPLE_GEN,
    p.STATISTICS_GEN,
    p.IMPORT_SCHEMA_GEN,
    p.EXAMPLE_VALIDATOR,
    p.ANOMALY_GATE,
    p.TRANSFORM,
    p.TRAINER,
    p.LAST_PUSHED,
    p.EVALUATOR,
    p.PUSHER,
}


def _locked_tfx() -> str:
    lock = (REPO / "requirements" / "lock.txt").read_text()
    return re.search(r"^tfx==(\S+)$", lock, re.M).group(1)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("kfp")
    gcs = load_config(CONFIG, GCS)
    return {
        "out": out,
        "json": compile_pipeline(gcs, out / "pipeline.json"),
        "yaml": compile_pipeline(gcs, out / "pipeline.yaml"),
        "volume": compile_pipeline(load_config(CONFIG), out / "volume.yaml"),
    }


def _spec(compiled) -> dict:
    return json.loads((compiled["out"] / "pipeline.json").read_text())["pipelineSpec"]


def _edges(spec: dict) -> set[tuple[str, str, str, str]]:
    """(producer, output key, consumer, input key) for every artifact passed between tasks."""
    edges = set()
    for consumer, task in spec["root"]["dag"]["tasks"].items():
        for key, source in task.get("inputs", {}).get("artifacts", {}).items():
            out = source["taskOutputArtifact"]
            edges.add((out["producerTask"], out["outputArtifactKey"], consumer, key))
    return edges


def test_both_formats_parse_into_kfp_messages(compiled):
    job = json.loads((compiled["out"] / "pipeline.json").read_text())
    parsed_job = json_format.ParseDict(job, pipeline_spec_pb2.PipelineJob())
    assert parsed_job.runtime_config.gcs_output_directory.startswith("gs://")
    documents = list(yaml.safe_load_all((compiled["out"] / "pipeline.yaml").read_text()))
    assert len(documents) == 1  # no shared volume: no platform document
    spec = json_format.ParseDict(documents[0], pipeline_spec_pb2.PipelineSpec())
    assert spec.pipeline_info.name == "sentiment-kfp"
    assert spec.default_pipeline_root == "gs://bucket/sentiment/root"
    assert documents[0] == job["pipelineSpec"]  # the YAML is the JSON job's PipelineSpec


def test_every_component_is_present_with_the_right_edges(compiled):
    spec = _spec(compiled)
    assert set(spec["root"]["dag"]["tasks"]) == EXPECTED_TASKS
    edges = _edges(spec)
    for edge in [
        (p.EXAMPLE_GEN, "examples", p.STATISTICS_GEN, "examples"),
        (p.STATISTICS_GEN, "statistics", p.EXAMPLE_VALIDATOR, "statistics"),
        (p.IMPORT_SCHEMA_GEN, "schema", p.EXAMPLE_VALIDATOR, "schema"),
        (p.EXAMPLE_VALIDATOR, "anomalies", p.ANOMALY_GATE, "anomalies"),
        (p.EXAMPLE_GEN, "examples", p.TRANSFORM, "examples"),
        (p.TRANSFORM, "transformed_examples", p.TRAINER, "examples"),
        (p.TRANSFORM, "transform_graph", p.TRAINER, "transform_graph"),
        (p.TRAINER, "model", p.EVALUATOR, "model"),
        (p.LAST_PUSHED, "model", p.EVALUATOR, "baseline_model"),
        (p.EXAMPLE_GEN, "examples", p.EVALUATOR, "examples"),
        (p.TRAINER, "model", p.PUSHER, "model"),
        (p.EVALUATOR, "blessing", p.PUSHER, "model_blessing"),
    ]:
        assert edge in edges, edge
    # Transform waits for the anomaly gate although no artifact flows between them.
    assert p.ANOMALY_GATE in spec["root"]["dag"]["tasks"][p.TRANSFORM]["dependentTasks"]


def test_the_pusher_is_gated_on_the_blessing(compiled):
    spec = _spec(compiled)
    pusher = spec["root"]["dag"]["tasks"][p.PUSHER]
    assert pusher["inputs"]["artifacts"]["model_blessing"]["taskOutputArtifact"] == {
        "outputArtifactKey": "blessing",
        "producerTask": p.EVALUATOR,
    }
    executor = spec["deploymentSpec"]["executors"][pusher["componentRef"]["name"] + "_executor"]
    args = executor["container"]["args"]
    assert args[args.index("--executor_class_path") + 1] == (
        "components.versioned_pusher.executor.Executor"  # pushes only a blessed model
    )
    destination = json.loads(
        pusher["inputs"]["parameters"]["push_destination"]["runtimeValue"]["constantValue"][
            "stringValue"
        ]
    )
    assert destination["filesystem"]["base_directory"] == "gs://bucket/sentiment/models/sentiment"


def test_the_image_tag_matches_the_locked_tfx_version(compiled):
    images = {
        e["container"]["image"] for e in _spec(compiled)["deploymentSpec"]["executors"].values()
    }
    assert images == {load_config(CONFIG).kubeflow.image}
    (image,) = images
    assert image.endswith(f"-tfx{_locked_tfx()}")


def test_entry_points_named_in_the_spec_import_from_the_installed_package(compiled):
    spec = _spec(compiled)
    for name, executor in spec["deploymentSpec"]["executors"].items():
        args = executor["container"]["args"]
        module, _, attr = args[args.index("--executor_class_path") + 1].rpartition(".")
        assert isinstance(getattr(importlib.import_module(module), attr), type), name
    tasks = spec["root"]["dag"]["tasks"]
    for task, param in [(p.TRANSFORM, "preprocessing_fn"), (p.TRAINER, "run_fn")]:
        dotted = tasks[task]["inputs"]["parameters"][param]["runtimeValue"]["constantValue"][
            "stringValue"
        ]
        module, _, attr = dotted.rpartition(".")
        assert module.startswith("components.")  # the package, not a file path
        assert callable(getattr(importlib.import_module(module), attr)), dotted


def test_the_baseline_lookup_is_never_cached(compiled):
    tasks = _spec(compiled)["root"]["dag"]["tasks"]
    assert tasks[p.LAST_PUSHED]["cachingOptions"] == {"enableCache": False}
    assert tasks[p.TRAINER]["cachingOptions"] == {"enableCache": True}


def test_compiling_twice_gives_the_same_spec(compiled, tmp_path):
    again = compile_pipeline(load_config(CONFIG, GCS), tmp_path / "pipeline.json")
    assert again.path.read_bytes() == (compiled["out"] / "pipeline.json").read_bytes()
    again = compile_pipeline(load_config(CONFIG), tmp_path / "volume.yaml")
    assert again.path.read_bytes() == (compiled["out"] / "volume.yaml").read_bytes()


def test_the_shared_volume_is_mounted_into_every_step(compiled, tmp_path):
    spec, platform = yaml.safe_load_all((compiled["out"] / "volume.yaml").read_text())
    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
    json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())
    volume = load_config(CONFIG).kubeflow.shared_volume
    mounts = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(mounts) == set(spec["deploymentSpec"]["executors"])
    assert all(
        m["pvcMount"] == [{"constant": volume.claim_name, "mountPath": volume.mount_path}]
        for m in mounts.values()
    )
    assert spec["defaultPipelineRoot"].startswith("gs://")  # KFP's artifacts: object storage
    pusher = spec["root"]["dag"]["tasks"][p.PUSHER]["inputs"]["parameters"]["push_destination"]
    assert volume.mount_path + "/" in pusher["runtimeValue"]["constantValue"]["stringValue"]
    with pytest.raises(ConfigError, match="needs a .yaml output"):
        compile_pipeline(load_config(CONFIG), tmp_path / "pipeline.json")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["evaluation.baseline=latest_blessed"], "only Vertex AI Pipelines executes"),
        (["kubeflow.image=me/sentiment:1-tfx1.15.0"], "names TFX 1.15.0"),
        (
            ["kubeflow.pipeline_root=runs/kfp"],
            "kubeflow.pipeline_root: must be an object store URI.*got 'runs/kfp'",
        ),
        (["kubeflow.serving_dir=/models"], "kubeflow.serving_dir: .*not reachable.*got '/models'"),
    ],
)
def test_what_cannot_run_in_the_cluster_is_refused(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        compile_pipeline(load_config(CONFIG, GCS + overrides), tmp_path / "p.json")
    assert not (tmp_path / "p.json").exists()


def test_a_config_without_a_kubeflow_section_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="no 'kubeflow' section"):
        compile_pipeline(load_config(REPO / "configs" / "sample.yaml"), tmp_path / "p.json")


class _RecordingKfp(BaseHTTPRequestHandler):
    """The few KFP v2beta1 endpoints kfp.Client calls to create a run; records every request."""

    requests: list[tuple[str, str, dict]] = []
    reject_runs = False

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else {}
        type(self).requests.append((self.command, self.path, body))
        path = self.path.split("?")[0]
        if path == "/apis/v2beta1/experiments" and self.command == "GET":
            self._reply(200, {"experiments": []})
        elif path == "/apis/v2beta1/experiments":
            self._reply(200, {"experiment_id": "exp-1", "display_name": body["display_name"]})
        elif path == "/apis/v2beta1/runs" and type(self).reject_runs:
            self._reply(400, {"error": "invalid pipeline spec", "code": 3})
        elif path == "/apis/v2beta1/runs":
            self._reply(200, {"run_id": "run-42", "display_name": body["display_name"]})
        else:
            self._reply(200, {})

    do_GET = do_POST = _handle

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def kfp_server(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))  # kfp.Client keeps a context file under HOME
    _RecordingKfp.requests = []
    _RecordingKfp.reject_runs = False
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RecordingKfp)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("name", ["pipeline.json", "pipeline.yaml"])
def test_submit_sends_the_compiled_spec_and_the_run_name(compiled, kfp_server, name):
    run_id = submit(compiled["out"] / name, kfp_server, run_name="nightly", experiment="exp")
    assert run_id == "run-42"
    (run,) = [body for method, path, body in _RecordingKfp.requests if path == "/apis/v2beta1/runs"]
    assert run["display_name"] == "nightly"
    assert run["experiment_id"] == "exp-1"
    # Compared as messages: the client's proto round trip drops default values (enableCache).
    assert json_format.ParseDict(
        run["pipeline_spec"], pipeline_spec_pb2.PipelineSpec()
    ) == json_format.ParseDict(_spec(compiled), pipeline_spec_pb2.PipelineSpec())
    assert run["runtime_config"]["pipeline_root"] == "gs://bucket/sentiment/root"


def test_a_rejected_spec_is_reported_with_the_server_answer(compiled, kfp_server):
    _RecordingKfp.reject_runs = True
    with pytest.raises(SubmitError, match="rejected the run \\(HTTP 400.*invalid pipeline spec"):
        submit(compiled["out"] / "pipeline.yaml", kfp_server)


def test_a_refused_connection_names_the_host(compiled, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    with socket.socket() as sock:  # a port nothing listens on once the socket is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    host = f"http://127.0.0.1:{port}"
    with pytest.raises(SubmitError, match=f"cannot reach the Kubeflow Pipelines API at {host}"):
        submit(compiled["out"] / "pipeline.json", host)


def test_a_file_that_is_not_a_compiled_pipeline_is_refused(tmp_path):
    bad = tmp_path / "notes.yaml"
    bad.write_text("hello: world\n")
    with pytest.raises(SubmitError, match="not a compiled pipeline"):
        submit(bad, "http://127.0.0.1:1")
    with pytest.raises(SubmitError, match="not found"):
        submit(tmp_path / "missing.json", "http://127.0.0.1:1")


def test_submit_sends_the_volume_mounts_with_the_spec(compiled, kfp_server):
    submit(compiled["out"] / "volume.yaml", kfp_server)
    (run,) = [body for method, path, body in _RecordingKfp.requests if path == "/apis/v2beta1/runs"]
    spec, platform = yaml.safe_load_all((compiled["out"] / "volume.yaml").read_text())
    # With a platform document, kfp sends {"pipeline_spec": ..., "platform_spec": ...}.
    sent = run["pipeline_spec"]
    assert json_format.ParseDict(
        sent["platform_spec"], pipeline_spec_pb2.PlatformSpec()
    ) == json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())
    assert sent["pipeline_spec"]["defaultPipelineRoot"] == spec["defaultPipelineRoot"]
    assert run["runtime_config"]["pipeline_root"] == spec["defaultPipelineRoot"]
