"""A Pusher executor that publishes versions atomically and never pushes one model twice."""

from components.versioned_pusher.executor import PROVENANCE_FILE, Executor, pushed_versions

__all__ = ["PROVENANCE_FILE", "Executor", "pushed_versions"]
