"""AnomalyGate: clean statistics pass, anomalies raise one readable error per problem."""

import os

import pandas as pd
import pytest
import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from components.anomaly_gate import DataAnomaliesError, check_anomalies

SCHEMA = """
feature { name: "text" type: BYTES presence { min_fraction: 1.0 } shape { dim { size: 1 } } }
feature { name: "label" type: INT int_domain { min: 0 max: 1 }
          presence { min_fraction: 1.0 } shape { dim { size: 1 } } }
"""


def _write_anomalies(root, split, frame):
    schema = text_format.Parse(SCHEMA, schema_pb2.Schema())
    stats = tfdv.generate_statistics_from_dataframe(frame)
    anomalies = tfdv.validate_statistics(stats, schema)
    os.makedirs(root / f"Split-{split}", exist_ok=True)
    (root / f"Split-{split}" / "SchemaDiff.pb").write_bytes(anomalies.SerializeToString())


def test_clean_splits_pass(tmp_path):
    good = pd.DataFrame({"text": ["fine film", "bad film"], "label": [1, 0]})
    _write_anomalies(tmp_path, "train", good)
    _write_anomalies(tmp_path, "eval", good)
    check_anomalies(str(tmp_path), ["train", "eval"])  # no exception


def test_label_outside_domain_and_missing_feature_are_listed(tmp_path):
    _write_anomalies(tmp_path, "train", pd.DataFrame({"text": ["a", "b"], "label": [1, 0]}))
    _write_anomalies(tmp_path, "eval", pd.DataFrame({"text": ["a", "b"], "label": [1, 7]}))
    _write_anomalies(tmp_path, "test", pd.DataFrame({"label": [1, 0]}))
    with pytest.raises(DataAnomaliesError) as err:
        check_anomalies(str(tmp_path), ["train", "eval", "test"])
    message = str(err.value)
    assert "training was not started" in message
    assert "eval: feature 'label'" in message and "7" in message
    assert "test: feature 'text'" in message
    assert "train:" not in message
    assert str(tmp_path) in message
