"""The versioned Pusher executor: atomic versions, never the same model twice."""

import json
from pathlib import Path

import pytest
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from components.versioned_pusher import PROVENANCE_FILE, Executor, pushed_versions


def _model(tmp_path: Path, name: str = "model") -> standard_artifacts.Model:
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / name)
    serving = tmp_path / name / "Format-Serving"
    (serving / "variables").mkdir(parents=True)
    (serving / "variables" / "variables.index").write_bytes(b"index-" + name.encode())
    (serving / "saved_model.pb").write_bytes(b"graph-" + name.encode())
    return model


def _blessing(tmp_path: Path, blessed: bool) -> standard_artifacts.ModelBlessing:
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "blessing")
    blessing.set_int_custom_property("blessed", int(blessed))
    return blessing


def _push(tmp_path, model, blessed=True, output="pushed"):
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / output)
    destination = pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(tmp_path / "serving"))
    )
    Executor().Do(
        {"model": [model], "model_blessing": [_blessing(tmp_path, blessed)]},
        {"pushed_model": [pushed]},
        {"push_destination": proto_utils.proto_to_json(destination)},
    )
    return pushed


def test_blessed_model_is_published_with_provenance(tmp_path):
    model = _model(tmp_path)
    pushed = _push(tmp_path, model)
    assert pushed.get_int_custom_property("pushed") == 1
    versions = pushed_versions(str(tmp_path / "serving"))
    (version,) = versions
    assert versions[version]["model_uri"] == model.uri
    target = tmp_path / "serving" / version
    assert (target / "saved_model.pb").read_bytes() == b"graph-model"
    assert json.loads((target / PROVENANCE_FILE).read_text())["model_uri"] == model.uri
    assert [p.name for p in (tmp_path / "serving").iterdir()] == [version]  # no staging left


def test_unblessed_model_is_not_pushed(tmp_path):
    pushed = _push(tmp_path, _model(tmp_path), blessed=False)
    assert pushed.get_int_custom_property("pushed") == 0
    assert pushed.get_string_custom_property("skipped_reason") == "the model is not blessed"
    assert not (tmp_path / "serving").exists()


def test_the_same_model_is_not_pushed_twice_and_new_versions_do_not_collide(tmp_path):
    first = _model(tmp_path, "first")
    _push(tmp_path, first, output="p1")
    again = _push(tmp_path, first, output="p2")
    assert again.get_int_custom_property("pushed") == 0
    assert "already serving as version" in again.get_string_custom_property("skipped_reason")
    assert again.get_string_custom_property("already_serving_version") in pushed_versions(
        str(tmp_path / "serving")
    )
    _push(tmp_path, _model(tmp_path, "second"), output="p3")  # same second: version bumped
    versions = pushed_versions(str(tmp_path / "serving"))
    assert len(versions) == 2
    assert {v["model_uri"] for v in versions.values()} == {first.uri, str(tmp_path / "second")}


def test_an_interrupted_push_leaves_no_visible_version(tmp_path, monkeypatch):
    model = _model(tmp_path)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed during the copy")

    monkeypatch.setattr(fileio, "rename", killed)
    with pytest.raises(KeyboardInterrupt):
        _push(tmp_path, model)
    serving = tmp_path / "serving"
    assert pushed_versions(str(serving)) == {}
    assert all(p.name.startswith(".staging-") for p in serving.iterdir())  # hidden, partial

    monkeypatch.undo()
    pushed = _push(tmp_path, model, output="retry")  # the next push cleans up and succeeds
    assert pushed.get_int_custom_property("pushed") == 1
    assert [p.name for p in serving.iterdir()] == list(pushed_versions(str(serving)))
