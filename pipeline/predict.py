"""Load a pushed SavedModel and classify raw texts through its ``serving_default`` signature."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components import features


class ModelLoadError(RuntimeError):
    """The path is missing or is not a model this pipeline exported."""


def newest_version(path: Path) -> Path:
    """``path`` itself if it is a SavedModel, else its newest numeric version sub-directory."""
    if (path / "saved_model.pb").is_file():
        return path
    if not path.is_dir():
        raise ModelLoadError(f"--model {path}: no such directory")
    versions = [p for p in path.iterdir() if p.name.isdigit() and (p / "saved_model.pb").is_file()]
    if not versions:
        raise ModelLoadError(
            f"--model {path}: neither a SavedModel (no saved_model.pb) nor a serving directory "
            "with numbered versions"
        )
    return max(versions, key=lambda p: int(p.name))


@dataclass
class Predictor:
    path: Path
    _signature: Any

    @classmethod
    def load(cls, path: str | Path) -> Predictor:
        import tensorflow as tf

        version = newest_version(Path(path))
        try:
            loaded = tf.saved_model.load(str(version))
        except (OSError, ValueError, tf.errors.OpError) as exc:
            raise ModelLoadError(f"--model {version}: cannot load the SavedModel: {exc}") from None
        signature = loaded.signatures.get(features.SERVING_RAW)
        if signature is None:
            raise ModelLoadError(
                f"--model {version}: the SavedModel has no '{features.SERVING_RAW}' signature; "
                "was it exported by this pipeline?"
            )
        predictor = cls(version, signature)
        predictor._loaded = loaded  # keep the object (and its variables) alive
        return predictor

    def predict(self, texts: list[str], batch_size: int = 256) -> list[dict[str, Any]]:
        import tensorflow as tf

        results: list[dict[str, Any]] = []
        for start in range(0, len(texts), batch_size):
            batch = [str(t) for t in texts[start : start + batch_size]]
            out = self._signature(text=tf.constant(batch, dtype=tf.string))
            probs = out[features.OUTPUT_PROBABILITIES].numpy()
            labels = out[features.OUTPUT_LABEL].numpy()
            names = out[features.OUTPUT_CLASS_NAME].numpy()
            for text, p, label, name in zip(batch, probs, labels, names, strict=True):
                results.append(
                    {
                        "text": text,
                        "label": int(label),
                        "class_name": name.decode("utf-8"),
                        "probability": float(p[label]),
                        "probabilities": [float(x) for x in p],
                    }
                )
        return results
