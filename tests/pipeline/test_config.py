"""Config: a good file, unknown keys, wrong types, out-of-range values, --set overrides."""

from pathlib import Path

import pytest

from pipeline.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["sample.yaml", "imdb.yaml"])
def test_shipped_configs_validate(name):
    cfg = load_config(REPO / "configs" / name)
    assert cfg.model.num_classes == 2
    assert cfg.data.schema_path and (REPO / cfg.data.schema_path).is_file()


def test_good_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "pipeline: {name: my-run, work_dir: /tmp/x}\n"
        "model: {batch_size: 8, lstm_units: 4, bidirectional: true}\n"
        "data: {labels: {POS: 1, Neg: 0}}\n"
    )
    cfg = load_config(path)
    assert cfg.pipeline.name == "my-run"
    assert cfg.model.batch_size == 8 and cfg.model.bidirectional is True
    assert cfg.data.labels == {"pos": 1, "neg": 0}  # case-insensitive
    assert cfg.pipeline.resolved_serving_dir == "/tmp/x/serving"
    assert cfg.transform.max_sequence_length == 256  # default kept


def test_unknown_key_names_file_and_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  batch_size: 8\n  lstm_unit: 4\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert "model.lstm_unit: unknown key" in str(err.value)


def test_unknown_section(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("modle: {}\n")
    with pytest.raises(ConfigError, match=r"modle: unknown key"):
        load_config(path)


def test_wrong_type_names_key_and_value(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  batch_size: lots\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert "model.batch_size" in message and "valid integer" in message and "'lots'" in message


def test_out_of_range(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  dropout_keep_prob: 1.5\ndata:\n  eval_fraction: 0\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "model.dropout_keep_prob" in str(err.value)
    assert "data.eval_fraction" in str(err.value)


def test_cross_field_consistency(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: {num_classes: 3}\n")
    with pytest.raises(ConfigError, match="class_names has 2 names but model.num_classes is 3"):
        load_config(path)


def test_overrides_are_typed_and_validated():
    cfg = load_config(None, ["model.batch_size=64", "model.bidirectional=true"])
    assert cfg.model.batch_size == 64 and cfg.model.bidirectional is True
    with pytest.raises(
        ConfigError,
        match=r"(?s)--set model.batch_size.*model.batch_size: Input should be a valid integer",
    ):
        load_config(None, ["model.batch_size=abc"])
    assert load_config(None).transform.truncation == "head"
    assert load_config(None, ["transform.truncation=tail"]).transform.truncation == "tail"
    with pytest.raises(ConfigError, match=r"transform.truncation: Input should be 'head'"):
        load_config(None, ["transform.truncation=middle"])
    with pytest.raises(ConfigError, match="model.nope: unknown key"):
        load_config(None, ["model.nope=1"])
    with pytest.raises(ConfigError, match="expected section.key=value"):
        load_config(None, ["batch_size=3"])


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping of sections"):
        load_config(listy)


def test_yaml_is_loaded_safely(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("pipeline: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)
