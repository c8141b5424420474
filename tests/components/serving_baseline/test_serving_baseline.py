"""LastPushedModel and the Evaluator executor, on directories the tests write."""

import json
from pathlib import Path

import tensorflow_model_analysis as tfma
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
from tfx.components.evaluator import executor as tfx_evaluator_executor
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from components.serving_baseline import LastPushedModel, is_saved_model, latest_pushed_version
from components.serving_baseline import component as baseline_component
from components.serving_baseline import evaluator as evaluator_module
from components.serving_baseline.evaluator import has_signature
from components.versioned_pusher import PROVENANCE_FILE
from pipeline.evaluation import build_eval_config

EVAL_CONFIG = build_eval_config(num_classes=2, accuracy_lower_bound=0.5, max_accuracy_drop=0.01)


def _version(serving: Path, version: str, model_uri: str, accuracy: float) -> None:
    target = serving / version
    (target / "variables").mkdir(parents=True)
    (target / "saved_model.pb").write_bytes(f"graph-{version}".encode())
    (target / PROVENANCE_FILE).parent.mkdir(parents=True)
    (target / PROVENANCE_FILE).write_text(
        json.dumps(
            {"model_uri": model_uri, "pushed_at": "t", "metrics": {"binary_accuracy": accuracy}}
        )
    )


def _run_last_pushed(tmp_path: Path, serving: Path) -> standard_artifacts.Model:
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "baseline")
    (tmp_path / "baseline").mkdir()
    executor = LastPushedModel.EXECUTOR_SPEC.executor_class()
    executor.Do({}, {"model": [model]}, {"serving_dir": str(serving), "serving_state": ""})
    return model


def test_no_pushed_version_gives_an_empty_baseline(tmp_path):
    serving = tmp_path / "serving"
    assert latest_pushed_version(str(serving)) is None  # not even created yet
    serving.mkdir()
    (serving / ".staging-5-1").mkdir()  # an interrupted push is not a version
    model = _run_last_pushed(tmp_path, serving)
    assert model.get_int_custom_property(baseline_component.FOUND_KEY) == 0
    assert list((tmp_path / "baseline").iterdir()) == []
    assert not is_saved_model(model.uri)


def test_the_newest_version_is_copied_with_its_provenance(tmp_path):
    serving = tmp_path / "serving"
    _version(serving, "9", "/models/old", 0.7)
    _version(serving, "10", "/models/new", 0.8)  # numerically newest, not lexically
    model = _run_last_pushed(tmp_path, serving)
    assert model.get_int_custom_property(baseline_component.FOUND_KEY) == 1
    assert model.get_string_custom_property(baseline_component.VERSION_KEY) == "10"
    assert model.get_string_custom_property(baseline_component.MODEL_URI_KEY) == "/models/new"
    assert json.loads(model.get_string_custom_property(baseline_component.METRICS_KEY)) == {
        "binary_accuracy": 0.8
    }
    copied = tmp_path / "baseline" / baseline_component.SERVING_MODEL_DIR / "saved_model.pb"
    assert copied.read_bytes() == b"graph-10"
    assert is_saved_model(model.uri)
    # A copy: removing the version afterwards does not change the baseline.
    (serving / "10" / "saved_model.pb").unlink()
    assert copied.read_bytes() == b"graph-10"


def _saved_model_pb(*signatures: str) -> bytes:
    graph = meta_graph_pb2.MetaGraphDef()
    for name in signatures:
        graph.signature_def[name].method_name = "tensorflow/serving/predict"
    return saved_model_pb2.SavedModel(meta_graphs=[graph]).SerializeToString()


def _evaluate(
    tmp_path, monkeypatch, baseline_holds_model: bool, baseline_signatures=("transform_features",)
) -> dict:
    seen = {}

    def fake_do(self, input_dict, output_dict, exec_properties):
        seen["inputs"] = sorted(input_dict)
        seen["eval_config"] = proto_utils.json_to_proto(
            exec_properties["eval_config"], tfma.EvalConfig()
        )

    monkeypatch.setattr(tfx_evaluator_executor.Executor, "Do", fake_do)
    monkeypatch.setattr(evaluator_module, "candidate_metrics", lambda uri: {"auc": 0.5})
    candidate, baseline = standard_artifacts.Model(), standard_artifacts.Model()
    candidate.uri, baseline.uri = str(tmp_path / "candidate"), str(tmp_path / "baseline")
    if baseline_holds_model:
        (tmp_path / "baseline" / "Format-Serving").mkdir(parents=True)
        (tmp_path / "baseline" / "Format-Serving" / "saved_model.pb").write_bytes(
            _saved_model_pb("serving_default", *baseline_signatures)
        )
    evaluation, blessing = standard_artifacts.ModelEvaluation(), standard_artifacts.ModelBlessing()
    evaluation.uri, blessing.uri = str(tmp_path / "evaluation"), str(tmp_path / "blessing")
    (tmp_path / "blessing").mkdir()
    evaluator_module.Executor().Do(
        {"model": [candidate], "baseline_model": [baseline], "examples": []},
        {"evaluation": [evaluation], "blessing": [blessing]},
        {"eval_config": proto_utils.proto_to_json(EVAL_CONFIG)},
    )
    seen["metrics"] = json.loads((tmp_path / "blessing" / "metrics.json").read_text())
    return seen


def test_an_empty_baseline_is_dropped_before_tfma_runs(tmp_path, monkeypatch):
    seen = _evaluate(tmp_path, monkeypatch, baseline_holds_model=False)
    assert seen["inputs"] == ["examples", "model"]
    assert seen["metrics"] == {"auc": 0.5}


def test_a_real_baseline_is_passed_on(tmp_path, monkeypatch):
    seen = _evaluate(tmp_path, monkeypatch, baseline_holds_model=True)
    assert seen["inputs"] == ["baseline_model", "examples", "model"]
    assert seen["eval_config"] == EVAL_CONFIG  # untouched


def test_an_older_baseline_without_the_slicing_signature_is_still_compared(tmp_path, monkeypatch):
    seen = _evaluate(tmp_path, monkeypatch, baseline_holds_model=True, baseline_signatures=())
    assert seen["inputs"] == ["baseline_model", "examples", "model"]
    config = seen["eval_config"]
    assert list(config.model_specs[0].preprocessing_function_names) == []
    assert [list(s.feature_keys) for s in config.slicing_specs] == [[]]  # overall slice only
    assert config.metrics_specs == EVAL_CONFIG.metrics_specs  # the gate itself is unchanged


def test_has_signature_reads_the_saved_model_proto(tmp_path):
    model = tmp_path / "m"
    (model / "Format-Serving").mkdir(parents=True)
    (model / "Format-Serving" / "saved_model.pb").write_bytes(_saved_model_pb("a", "b"))
    assert has_signature(str(model), "b") and not has_signature(str(model), "c")
