"""Typed pipeline configuration: YAML file + ``--set`` overrides -> one validated object.

Everything environment-specific (paths, runner, Beam flags) and every model knob lives here.
The file is read with ``yaml.safe_load`` only, validated once, and every error names the file,
the dotted key and what was expected.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

EMBEDDED_SOURCE = "embedded"

# Label spellings understood out of the box (case-insensitive); a config may replace them.
DEFAULT_LABELS: dict[str, int] = {
    "0": 0,
    "1": 1,
    "neg": 0,
    "pos": 1,
    "negative": 0,
    "positive": 1,
    "false": 0,
    "true": 1,
}


class ConfigError(ValueError):
    """A configuration problem, phrased for the user (file, key, what was expected)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class PipelineSection(_Section):
    name: str = Field("sentiment-sample", pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    # Everything a run writes lives under work_dir unless the paths below are set.
    work_dir: str = "runs/sample"
    pipeline_root: str | None = None
    metadata_path: str | None = None
    serving_dir: str | None = None
    runner: Literal["local", "beam"] = "local"
    # Beam flags, passed through untouched (DirectRunner, Flink, Spark, Dataflow ...).
    beam_pipeline_args: list[str] = Field(
        default_factory=lambda: ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
    )
    enable_cache: bool = True

    @property
    def resolved_pipeline_root(self) -> str:
        return self.pipeline_root or str(Path(self.work_dir) / "pipeline")

    @property
    def resolved_metadata_path(self) -> str:
        return self.metadata_path or str(Path(self.work_dir) / "metadata.sqlite")

    @property
    def resolved_serving_dir(self) -> str:
        return self.serving_dir or str(Path(self.work_dir) / "serving")


class DataSection(_Section):
    # "embedded" (the 100 reviews shipped with tfx), a CSV/TSV file or folder of them, or a
    # folder written by `sentiment-pipeline data import-imdb`.
    source: str = EMBEDDED_SOURCE
    # Optional held-out test set; when given, the Evaluator gates on it instead of `eval`.
    test_source: str | None = None
    format: Literal["auto", "csv", "tsv"] = "auto"
    text_column: str = Field("text", min_length=1)
    label_column: str = Field("label", min_length=1)
    labels: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_LABELS))
    class_names: list[str] = Field(default_factory=lambda: ["negative", "positive"])
    encoding: str = "utf-8"
    eval_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    # Unlabelled texts, one per line, for model.pretrain_word_vectors (never test data).
    unlabelled_source: str | None = None
    # Curated schema (ImportSchemaGen); null lets SchemaGen infer one from the statistics.
    schema_path: str | None = None

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError as exc:
            raise ValueError(f"unknown text encoding {value!r}") from exc
        return value

    @field_validator("labels")
    @classmethod
    def _labels_lower(cls, value: dict[str, int]) -> dict[str, int]:
        if not value:
            raise ValueError("needs at least one label value")
        if any(v < 0 for v in value.values()):
            raise ValueError("class ids must be >= 0")
        return {k.strip().lower(): v for k, v in value.items()}


class TransformSection(_Section):
    vocab_size: int = Field(20000, ge=1)
    frequency_threshold: int = Field(1, ge=0)
    num_oov_buckets: int = Field(1, ge=1)
    max_sequence_length: int = Field(256, ge=1, le=10000)
    # Which tokens of a longer review are kept: the first, the last, or the first quarter and
    # the last three quarters of max_sequence_length.
    truncation: Literal["head", "tail", "head_tail"] = "head"


class WordVectors(_Section):
    # GloVe or word2vec text format ("word v1 v2 ..."; a word2vec "count dim" header is skipped).
    path: str
    trainable: bool = False


class ModelSection(_Section):
    batch_size: int = Field(32, ge=1)
    lstm_units: int = Field(64, ge=1)
    bidirectional: bool = False
    num_classes: int = Field(2, ge=2)
    embedding_dimension: int = Field(64, ge=1)
    dense_units: int = Field(64, ge=1)
    # Training steps (batches), as in the seed design.
    num_iterations: int = Field(200, ge=1)
    # Steps between two validation passes (one Keras "epoch"); also the TensorBoard granularity.
    steps_per_epoch: int = Field(100, ge=1)
    # Batches per validation pass; unset: the whole eval split, each example once.
    eval_steps: int | None = Field(None, ge=1)
    dropout_keep_prob: float = Field(0.8, gt=0.0, le=1.0)
    # Fraction of embedding channels dropped during training (SpatialDropout1D); 0 = off.
    embedding_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    # Adversarial training (Miyato et al. 2017): also fit each batch with its embeddings moved
    # this far (L2 norm per review) in the direction that hurts most; 0 = off. Costs about
    # twice the training time; prediction is unchanged.
    adversarial_epsilon: float = Field(0.0, ge=0.0)
    # Keep an exponential moving average of the weights with this momentum and load it into
    # the model at every validation pass (so early stopping picks among averaged weights) and
    # at the end; 0 = off.
    weight_average_momentum: float = Field(0.0, ge=0.0, lt=1.0)
    # Training examples read ahead and shuffled; at least the training split's size shuffles
    # it uniformly (input files are often sorted by label). Each holds one parsed review (its
    # tokens), reshuffled every pass.
    shuffle_buffer: int = Field(100_000, ge=1)
    # Keep the parsed training and eval examples in memory after their first pass (about
    # 8 bytes a token), so later passes neither read nor parse; false streams each pass from
    # disk (splits larger than memory).
    cache_examples: bool = True
    learning_rate: float = Field(1e-3, gt=0.0)
    # "cosine" decays the learning rate to 0 over num_iterations.
    learning_rate_schedule: Literal["constant", "cosine"] = "constant"
    # "last_max_mean" adds the masked max and mean over time to the LSTM's last state.
    pooling: Literal["last", "last_max_mean"] = "last"
    # Batch reviews of similar length and cut each batch to its longest review, so the LSTM
    # does not step through padding (same results, less compute).
    bucket_by_length: bool = False
    # Stop after this many validation passes without a better val accuracy; keep the best.
    early_stopping_patience: int | None = Field(None, ge=1)
    # Pre-computed vectors from a GloVe/word2vec file ...
    word_vectors: WordVectors | None = None
    # ... or computed inside the pipeline (WordVectorsGen: PPMI + SVD) from the training split
    # plus data.unlabelled_source (an imported IMDB folder brings its unsup reviews).
    pretrain_word_vectors: bool = False
    pretrain_window: int = Field(5, ge=1, le=20)
    # Fine-tune the pre-computed vectors (true) or keep them frozen (false).
    pretrain_trainable: bool = True
    seed: int = 42


class EvaluationSection(_Section):
    # Lower bound on accuracy on the evaluation split. A value above 1 can never pass.
    accuracy_lower_bound: float = Field(0.5, ge=0.0)
    # How much accuracy may drop against the latest blessed model (0 = no regression).
    max_accuracy_drop: float = Field(0.0, ge=0.0, le=1.0)
    # The baseline the candidate must not regress against:
    #   latest_blessed  TFX's Resolver (latest blessed model in MLMD); local runners only.
    #   last_pushed     the newest version in the serving directory (LastPushedModel); works
    #                   on every orchestrator, Kubeflow Pipelines included.
    #   none            gate on the absolute bound only.
    baseline: Literal["latest_blessed", "last_pushed", "none"] = "latest_blessed"


# Object stores every pod reaches through tf.io.gfile (s3:// needs tensorflow-io in the image).
REMOTE_SCHEMES = ("gs://", "s3://", "hdfs://")


class SharedVolume(_Section):
    # A PersistentVolumeClaim (ReadWriteMany) mounted into every step at mount_path.
    claim_name: str = Field(..., pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    mount_path: str = Field(..., pattern=r"^/.+")


def reachable_from_pods(value: str, volume: SharedVolume | None) -> bool:
    """Whether every Kubeflow step can read ``value``: an object store URI or a shared path."""
    if value.startswith(REMOTE_SCHEMES):
        return True
    return volume is not None and value.startswith(volume.mount_path.rstrip("/") + "/")


class KubeflowSection(_Section):
    """How the pipeline is compiled for Kubeflow Pipelines v2 (`sentiment-pipeline compile`)."""

    # The image built from kubernetes/Dockerfile; its tag names the TFX version it was built on.
    image: str = "ghcr.io/sentiment-pipeline/sentiment-pipeline:0.1.0-tfx1.16.0"
    display_name: str | None = None
    # A PersistentVolumeClaim mounted into every step, for clusters without an object store.
    shared_volume: SharedVolume | None = None
    # Every artifact. An object store URI: KFP v2's launcher passes artifacts through object
    # storage only (kubeflow/pipelines#10510), and TFX's executors write it through tf.io.gfile.
    pipeline_root: str
    # ExampleGen input prepared by `sentiment-pipeline data prepare` (train/, eval/, test/) and
    # the Pusher's destination: an object store URI or a path under shared_volume.
    data_root: str
    test_split: bool = False
    serving_dir: str
    # The curated schema as the image holds it (kubernetes/Dockerfile copies configs/ to /app).
    schema_path: str | None = "/app/configs/schema/sentiment.pbtxt"
    # Beam flags for the component pods (each step runs Beam inside its own pod).
    beam_pipeline_args: list[str] = Field(
        default_factory=lambda: ["--direct_running_mode=multi_processing", "--direct_num_workers=0"]
    )
    enable_cache: bool = True

    @field_validator("pipeline_root")
    @classmethod
    def _object_store(cls, value: str) -> str:
        if not value.startswith(REMOTE_SCHEMES):
            raise ValueError(
                f"must be an object store URI ({', '.join(REMOTE_SCHEMES)}): Kubeflow Pipelines "
                "v2 passes artifacts through object storage only, not through volumes"
            )
        return value

    @field_validator("data_root", "serving_dir")
    @classmethod
    def _reachable_storage(cls, value: str, info: ValidationInfo) -> str:
        if not reachable_from_pods(value, info.data.get("shared_volume")):
            raise ValueError(
                "not reachable from every pod: use an object store URI "
                f"({', '.join(REMOTE_SCHEMES)}) or a path under shared_volume.mount_path"
            )
        return value


class Config(_Section):
    pipeline: PipelineSection = Field(default_factory=PipelineSection)
    data: DataSection = Field(default_factory=DataSection)
    transform: TransformSection = Field(default_factory=TransformSection)
    model: ModelSection = Field(default_factory=ModelSection)
    evaluation: EvaluationSection = Field(default_factory=EvaluationSection)
    kubeflow: KubeflowSection | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        if self.model.word_vectors is not None and self.model.pretrain_word_vectors:
            raise ValueError(
                "model.word_vectors and model.pretrain_word_vectors are exclusive: "
                "use a vectors file or pre-train in the pipeline"
            )
        n = self.model.num_classes
        bad = sorted(k for k, v in self.data.labels.items() if v >= n)
        if bad:
            raise ValueError(f"data.labels maps {bad} to class ids >= model.num_classes ({n})")
        if len(self.data.class_names) != n:
            raise ValueError(
                f"data.class_names has {len(self.data.class_names)} names but "
                f"model.num_classes is {n}"
            )
        return self


def _format_errors(exc: ValidationError, origin: str) -> str:
    lines = [f"{origin}: invalid configuration"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        else:
            msg = err["msg"].removeprefix("Value error, ")
        got = err.get("input")
        shown = (
            "" if err["type"] == "extra_forbidden" or isinstance(got, dict) else f" (got {got!r})"
        )
        lines.append(f"  {key}: {msg}{shown}")
    return "\n".join(lines)


def parse_override(item: str) -> tuple[list[str], Any]:
    """``section.key=value`` -> (["section", "key"], value parsed as a YAML scalar)."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected section.key=value")
    key, raw = item.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if len(parts) < 2:
        raise ConfigError(f"--set {item!r}: expected section.key=value (e.g. model.batch_size=64)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {item!r}: value is not valid YAML: {exc}") from exc
    return parts, value


def _apply_override(data: dict[str, Any], parts: list[str], value: Any) -> None:
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def build_config(
    raw: Mapping[str, Any] | None, origin: str, overrides: Iterable[str] = ()
) -> Config:
    data: dict[str, Any] = _deep_copy(raw or {})
    applied = []
    for item in overrides:
        parts, value = parse_override(item)
        _apply_override(data, parts, value)
        applied.append(".".join(parts))
    where = origin + (f" with --set {', '.join(applied)}" if applied else "")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, where)) from None


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> Config:
    """Read and validate a YAML config (``None`` = built-in defaults)."""
    if path is None:
        return build_config({}, "built-in defaults", overrides)
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return build_config(raw, str(path), overrides)


def _deep_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value
