"""The command line: clear errors with a non-zero exit code and no traceback."""

import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app

runner = CliRunner()
KUBEFLOW_CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "kubeflow.yaml")


def _invoke(*args):
    result = runner.invoke(app, list(args))
    return result, result.output + (result.stderr if result.stderr_bytes is not None else "")


def test_help_has_examples_on_each_command():
    for command in (
        ["run"],
        ["predict"],
        ["data", "import-imdb"],
        ["data", "prepare"],
        ["compile"],
        ["submit"],
    ):
        result, output = _invoke(*command, "--help")
        assert result.exit_code == 0
        assert "Examples" in output and "sentiment-pipeline" in output


def test_unknown_config_key_is_an_error_naming_file_and_key(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("model:\n  lstm_unit: 3\n")
    result, output = _invoke("run", "--config", str(config))
    assert result.exit_code == 2
    assert str(config) in output and "model.lstm_unit: unknown key" in output
    assert "Traceback" not in output


def test_bad_override_is_an_error():
    result, output = _invoke("run", "--set", "model.batch_size=many")
    assert result.exit_code == 2
    assert "model.batch_size" in output and "valid integer" in output


def test_bad_data_stops_before_the_pipeline(tmp_path):
    data = tmp_path / "reviews.csv"
    data.write_text("text,label\ngreat,1\nawful,maybe\n")
    result, output = _invoke(
        "run", "--data", str(data), "--set", f"pipeline.work_dir={tmp_path / 'work'}"
    )
    assert result.exit_code == 2
    assert "row 3" in output and "'maybe'" in output and "Traceback" not in output
    assert not (tmp_path / "work" / "metadata.sqlite").exists()  # nothing ran


def test_missing_schema_file_names_the_key(tmp_path):
    result, output = _invoke(
        "run",
        "--set",
        f"data.schema_path={tmp_path / 'nope.pbtxt'}",
        "--set",
        f"pipeline.work_dir={tmp_path}",
    )
    assert result.exit_code == 2 and "data.schema_path: file not found" in output


def test_predict_errors(tmp_path):
    result, output = _invoke("predict", "--model", str(tmp_path / "absent"), "hello")
    assert result.exit_code == 2 and "no such directory" in output
    result, output = _invoke("predict", "--model", str(tmp_path), "hello")
    assert result.exit_code == 2 and "neither a SavedModel" in output


def test_import_imdb_rejects_a_broken_archive(tmp_path):
    archive = tmp_path / "broken.tar.gz"
    with tarfile.open(archive, "w:gz"):
        pass  # an empty archive: no reviews at all
    result, output = _invoke("data", "import-imdb", str(archive), str(tmp_path / "out"))
    assert result.exit_code == 2 and str(archive) in output and "Traceback" not in output


BAD_INPUTS = {
    "unbalanced_quotes": ('text,label\n"never closed,1\nfine,0\n', "malformed CSV"),
    "wrong_column_count": ("text,label\nfine,1,extra\n", "3 fields, expected 2"),
    "missing_label_column": ("text,stars\nfine,1\n", "missing column(s) ['label']"),
    "label_outside_mapping": ("text,label\nfine,1\nok,7\n", "label '7' is not one of"),
    "invalid_utf8": (b"text,label\ncaf\xe9,1\n", "are not valid utf-8"),
    "empty_file": ("", "the file is empty"),
    "header_only": ("text,label\n", "no data rows"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_fails_before_any_component(tmp_path, case):
    content, expected = BAD_INPUTS[case]
    data = tmp_path / "reviews.csv"
    data.write_bytes(content if isinstance(content, bytes) else content.encode())
    work = tmp_path / "work"
    result, output = _invoke("run", "--data", str(data), "--set", f"pipeline.work_dir={work}")
    assert result.exit_code == 2, output
    assert str(data) in output and expected in output
    assert "Traceback" not in output
    assert not (work / "metadata.sqlite").exists() and not (work / "serving").exists()


def test_missing_input_folder(tmp_path):
    result, output = _invoke(
        "run", "--data", str(tmp_path / "nowhere"), "--set", f"pipeline.work_dir={tmp_path}"
    )
    assert result.exit_code == 2 and "no such file or folder" in output


def test_data_prepare_writes_the_example_gen_layout(tmp_path):
    data = tmp_path / "reviews.tsv"
    rows = [f"review number {i} was {'great' if i % 2 else 'dull'}\t{i % 2}" for i in range(40)]
    data.write_text("text\tlabel\n" + "\n".join(rows) + "\n")
    out = tmp_path / "shared" / "inputs"
    result, output = _invoke(
        "data", "prepare", str(out), "--data", str(data), "--set", f"pipeline.work_dir={tmp_path}"
    )
    assert result.exit_code == 0, output
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"train/data.csv", "eval/data.csv"} <= written and "test/data.csv" not in written
    lines = [
        line
        for split in ("train", "eval")
        for line in (out / split / "data.csv").read_text().splitlines()[1:]
    ]
    assert len(lines) == 40  # every row lands in exactly one split
    assert "kubeflow.test_split: False" in output


def test_compile_prints_the_tasks_and_refuses_a_local_pipeline_root(tmp_path):
    output_file = tmp_path / "pipeline.yaml"
    result, output = _invoke("compile", "-c", KUBEFLOW_CONFIG, "-o", str(output_file))
    assert result.exit_code == 0, output
    assert "Compiled 10 tasks" in output and output_file.is_file()
    result, output = _invoke(
        "compile",
        "-c",
        KUBEFLOW_CONFIG,
        "-o",
        str(tmp_path / "other.yaml"),
        "--set",
        "kubeflow.pipeline_root=runs/here",
    )
    assert result.exit_code == 2
    assert "kubeflow.pipeline_root: must be an object store URI" in output
    assert "Traceback" not in output and not (tmp_path / "other.yaml").exists()
