"""Pipeline wiring only: every environment-specific value is an argument of create_pipeline."""

from __future__ import annotations

from typing import Any, Literal

import tensorflow_model_analysis as tfma
from tfx import v1 as tfx

# Not exported by tfx.v1; the documented way to give a standard component another executor.
from tfx.dsl.components.base import executor_spec

from components import serving_baseline, versioned_pusher
from components.anomaly_gate import AnomalyGate
from components.word_vectors import WordVectorsGen

PREPROCESSING_FN = "components.preprocessing.preprocessing_fn"
RUN_FN = "components.trainer.run_fn"

TRAIN, EVAL, TEST = "train", "eval", "test"

# Component ids, used by the run summary and tests.
EXAMPLE_GEN = "CsvExampleGen"
STATISTICS_GEN = "StatisticsGen"
SCHEMA_GEN = "SchemaGen"
IMPORT_SCHEMA_GEN = "ImportSchemaGen"
EXAMPLE_VALIDATOR = "ExampleValidator"
ANOMALY_GATE = "AnomalyGate"
TRANSFORM = "Transform"
WORD_VECTORS = "WordVectorsGen"
TRAINER = "Trainer"
RESOLVER = "latest_blessed_model_resolver"
LAST_PUSHED = "LastPushedModel"
EVALUATOR = "Evaluator"
PUSHER = "Pusher"


def create_pipeline(
    *,
    pipeline_name: str,
    pipeline_root: str,
    data_root: str,
    has_test_split: bool,
    schema_path: str | None,
    transform_config: dict[str, Any],
    trainer_config: dict[str, Any],
    train_steps: int,
    eval_steps: int | None,
    eval_config: tfma.EvalConfig,
    baseline: Literal["latest_blessed", "last_pushed", "none"],
    serving_dir: str,
    serving_state: str = "",
    metadata_connection_config: Any | None = None,
    beam_pipeline_args: list[str] | None = None,
    enable_cache: bool = True,
    word_vectors: dict[str, Any] | None = None,
) -> tfx.dsl.Pipeline:
    """Build the TFX pipeline.

    ``data_root`` holds prepared CSV files in ``train/``, ``eval/`` and optionally ``test/``.
    ``word_vectors`` (parameters of WordVectorsGen) adds in-pipeline word-vector pre-training.
    ``baseline`` picks where the no-regression baseline comes from; ``serving_state`` names
    the versions already pushed (it keys LastPushedModel's cache).
    """
    splits = [TRAIN, EVAL] + ([TEST] if has_test_split else [])
    components: list[Any] = []

    # Reads the prepared CSV splits as they are: the split into train/eval (and the separate
    # test set) is decided once, before the pipeline, so no test review can reach training.
    example_gen = tfx.components.CsvExampleGen(
        input_base=data_root,
        input_config=tfx.proto.Input(
            splits=[tfx.proto.Input.Split(name=s, pattern=f"{s}/*.csv") for s in splits]
        ),
    )
    components.append(example_gen)

    # Statistics of every split: input to schema validation and to the run report.
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    components.append(statistics_gen)

    # A curated schema pins types, required columns and the label domain; inference is the
    # fallback for exploratory data.
    if schema_path:
        schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_path)
    else:
        schema_gen = tfx.components.SchemaGen(
            statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True
        )
    components.append(schema_gen)

    # Compares every split's statistics with the schema.
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    components.append(example_validator)

    # ExampleValidator only records anomalies; the gate turns them into a failed run.
    anomaly_gate = AnomalyGate(anomalies=example_validator.outputs["anomalies"])
    components.append(anomaly_gate)

    # Vocabulary from the training split only; token ids for every split and for serving.
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN,
        splits_config=tfx.proto.SplitsConfig(analyze=[TRAIN], transform=splits),
        custom_config=transform_config,
    )
    transform.add_upstream_node(anomaly_gate)
    components.append(transform)

    base_model = None
    if word_vectors is not None:
        # Word vectors from the training split (+ unlabelled text), in the model's own token ids;
        # the Trainer receives them as its base_model and initialises the embedding from them.
        vectors = WordVectorsGen(
            transform_graph=transform.outputs["transform_graph"],
            transformed_examples=transform.outputs["transformed_examples"],
            **word_vectors,
        )
        components.append(vectors)
        base_model = vectors.outputs["word_vectors"]

    # The LSTM; exports a SavedModel with the Transform graph and two serving signatures.
    trainer = tfx.components.Trainer(
        run_fn=RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        base_model=base_model,
        train_args=tfx.proto.TrainArgs(splits=[TRAIN], num_steps=train_steps),
        eval_args=tfx.proto.EvalArgs(splits=[EVAL], num_steps=eval_steps),
        custom_config=trainer_config,
    )
    components.append(trainer)

    baseline_model = None
    if baseline == "latest_blessed":
        # The latest blessed model (from MLMD) is the baseline the candidate must not regress
        # against. Kubeflow Pipelines v2 cannot execute this Resolver: use last_pushed there.
        resolver = tfx.dsl.Resolver(
            strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
            model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
            model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
        ).with_id(RESOLVER)
        components.append(resolver)
        baseline_model = resolver.outputs["model"]
    elif baseline == "last_pushed":
        # The version TF Serving serves now is the baseline; read from the serving directory,
        # which every orchestrator reaches.
        last_pushed = serving_baseline.LastPushedModel(
            serving_dir=serving_dir, serving_state=serving_state
        ).with_id(LAST_PUSHED)
        components.append(last_pushed)
        baseline_model = last_pushed.outputs["model"]

    # Gates the candidate on TFMA thresholds, on the held-out test split when there is one;
    # records its metrics next to the blessing for the Pusher's provenance.
    evaluator = serving_baseline.Evaluator(
        examples=example_gen.outputs["examples"],
        example_splits=[TEST if has_test_split else EVAL],
        model=trainer.outputs["model"],
        baseline_model=baseline_model,
        eval_config=eval_config,
    )
    components.append(evaluator)

    # Publishes only a blessed model into <serving_dir>/<version>/ (TF Serving layout),
    # atomically, and never the same model twice.
    pusher = tfx.components.Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving_dir)
        ),
        custom_executor_spec=executor_spec.ExecutorClassSpec(versioned_pusher.Executor),
    )
    components.append(pusher)

    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=components,
        enable_cache=enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=beam_pipeline_args or [],
    )
