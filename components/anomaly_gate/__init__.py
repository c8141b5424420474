"""AnomalyGate: stop the pipeline before training when ExampleValidator found anomalies."""

from components.anomaly_gate.component import (
    AnomalyGate,
    DataAnomaliesError,
    check_anomalies,
    summarize_anomalies,
)

__all__ = ["AnomalyGate", "DataAnomaliesError", "check_anomalies", "summarize_anomalies"]
