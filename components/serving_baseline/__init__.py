"""The Evaluator's baseline from the serving directory, for orchestrators without TFX's Resolver."""

from components.serving_baseline.component import LastPushedModel, latest_pushed_version
from components.serving_baseline.evaluator import Evaluator, candidate_metrics, is_saved_model

__all__ = [
    "Evaluator",
    "LastPushedModel",
    "candidate_metrics",
    "is_saved_model",
    "latest_pushed_version",
]
