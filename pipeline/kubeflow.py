"""Kubeflow Pipelines v2: compile the same pipeline with TFX's KubeflowV2DagRunner, and submit it.

``compile_pipeline`` builds the pipeline from the ``kubeflow`` section of a config (image,
storage every pod reaches), compiles it to a PipelineJob (JSON) or PipelineSpec (YAML), and
writes it deterministically. ``submit`` sends a compiled file to a KFP 2.x API server.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from tfx import v1 as tfx
from tfx import version as tfx_version

from pipeline.config import (
    REMOTE_SCHEMES,
    Config,
    ConfigError,
    KubeflowSection,
    reachable_from_pods,
)
from pipeline.pipeline import LAST_PUSHED, create_pipeline
from pipeline.runner import model_args

YAML_SUFFIXES = (".yaml", ".yml")


class SubmitError(RuntimeError):
    """The KFP API server could not be reached or rejected the run; the message says which."""


@dataclass
class CompiledPipeline:
    path: Path
    pipeline_job: dict[str, Any]  # the PipelineJob as TFX compiled it (after our post-processing)
    tasks: list[str]


def _image_tfx_version(image: str) -> str | None:
    """The TFX version an image tag names (``...:0.1.0-tfx1.16.0`` -> ``1.16.0``), if any."""
    tag = image.rsplit("/", 1)[-1].partition(":")[2]
    match = re.search(r"tfx-?(\d+\.\d+\.\d+)", tag)
    return match.group(1) if match else None


def _reachable(key: str, value: str, kubeflow: KubeflowSection) -> None:
    if reachable_from_pods(value, kubeflow.shared_volume):
        return
    raise ConfigError(
        f"{key}: {value!r} is a local path no Kubeflow pod can read; use an object store URI "
        f"({', '.join(REMOTE_SCHEMES)}) or a path under kubeflow.shared_volume.mount_path"
    )


def check_compilable(config: Config) -> KubeflowSection:
    """Everything that would make the compiled pipeline fail in the cluster, as a ConfigError."""
    kubeflow = config.kubeflow
    if kubeflow is None:
        raise ConfigError(
            "the config has no 'kubeflow' section (image, pipeline_root, data_root, "
            "serving_dir): see configs/kubeflow.yaml"
        )
    if config.evaluation.baseline == "latest_blessed":
        raise ConfigError(
            "evaluation.baseline: 'latest_blessed' compiles to MLMD artifact queries that only "
            "Vertex AI Pipelines executes; use 'last_pushed' (or 'none') on Kubeflow Pipelines"
        )
    image_tfx = _image_tfx_version(kubeflow.image)
    if image_tfx is not None and image_tfx != tfx_version.__version__:
        raise ConfigError(
            f"kubeflow.image: {kubeflow.image!r} names TFX {image_tfx} but this pipeline is "
            f"compiled with TFX {tfx_version.__version__}; build the image from "
            "kubernetes/Dockerfile with the locked versions"
        )
    if config.model.word_vectors is not None:
        _reachable("model.word_vectors.path", config.model.word_vectors.path, kubeflow)
    if config.model.pretrain_word_vectors and config.data.unlabelled_source:
        _reachable("data.unlabelled_source", config.data.unlabelled_source, kubeflow)
    return kubeflow


def build_kubeflow_pipeline(config: Config, kubeflow: KubeflowSection) -> tfx.dsl.Pipeline:
    """The pipeline of ``create_pipeline`` with the storage and code paths of the image
    (``kubeflow``: the section ``check_compilable`` returned). URIs in the config are kept
    as written, not made absolute on this machine."""
    return create_pipeline(
        pipeline_name=config.pipeline.name,
        pipeline_root=kubeflow.pipeline_root,
        data_root=kubeflow.data_root,
        has_test_split=kubeflow.test_split,
        schema_path=kubeflow.schema_path,
        serving_dir=kubeflow.serving_dir,
        beam_pipeline_args=list(kubeflow.beam_pipeline_args),
        enable_cache=kubeflow.enable_cache,
        **model_args(config, local=False),
    )


def _post_process(job: dict[str, Any], kubeflow: KubeflowSection) -> dict[str, Any]:
    spec = job["pipelineSpec"]
    # KFP's own compiler records the pipeline root in the spec; a YAML package needs it there.
    spec["defaultPipelineRoot"] = kubeflow.pipeline_root
    last_pushed = spec["root"]["dag"]["tasks"].get(LAST_PUSHED)
    if last_pushed is not None:
        # The serving directory changes between runs while this task's inputs do not: a cached
        # result would compare the candidate with a stale baseline.
        last_pushed["cachingOptions"] = {"enableCache": False}
    return job


def platform_spec(job: dict[str, Any], kubeflow: KubeflowSection) -> dict[str, Any] | None:
    """kfp-kubernetes PlatformSpec that mounts the shared volume into every executor."""
    volume = kubeflow.shared_volume
    if volume is None:
        return None
    executors = job["pipelineSpec"]["deploymentSpec"]["executors"]
    return {
        "platforms": {
            "kubernetes": {
                "deploymentSpec": {
                    "executors": {
                        name: {
                            "pvcMount": [
                                {"constant": volume.claim_name, "mountPath": volume.mount_path}
                            ]
                        }
                        for name in sorted(executors)
                    }
                }
            }
        }
    }


def compile_pipeline(config: Config, output: str | Path) -> CompiledPipeline:
    """Compile for Kubeflow Pipelines v2 into ``output`` (.json PipelineJob, .yaml PipelineSpec)."""
    output = Path(output)
    kubeflow = check_compilable(config)
    is_yaml = output.suffix in YAML_SUFFIXES
    if kubeflow.shared_volume is not None and not is_yaml:
        raise ConfigError(
            "kubeflow.shared_volume needs a .yaml output: the volume mounts travel in the "
            "PipelineSpec's platform document, which a PipelineJob JSON cannot carry"
        )
    pipeline = build_kubeflow_pipeline(config, kubeflow)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            display_name=kubeflow.display_name or config.pipeline.name,
            default_image=kubeflow.image,
        ),
    )
    job = _post_process(runner.run(pipeline, write_out=False), kubeflow)
    output.parent.mkdir(parents=True, exist_ok=True)
    if is_yaml:
        documents = [job["pipelineSpec"]]
        platform = platform_spec(job, kubeflow)
        if platform is not None:
            documents.append(platform)
        text = yaml.safe_dump_all(documents, sort_keys=True)
    else:
        text = json.dumps(job, indent=2, sort_keys=True) + "\n"
    # Written whole or not at all: a half-written spec must never be submitted.
    with tempfile.NamedTemporaryFile("w", dir=output.parent, delete=False, suffix=".tmp") as tmp:
        tmp.write(text)
    Path(tmp.name).replace(output)
    tasks = sorted(job["pipelineSpec"]["root"]["dag"]["tasks"])
    return CompiledPipeline(path=output, pipeline_job=job, tasks=tasks)


def load_package(path: str | Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(PipelineSpec, PlatformSpec or {}, runtime parameter values) of a compiled file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SubmitError(f"{path}: compiled pipeline not found (run `compile` first)") from None
    try:
        if path.suffix in YAML_SUFFIXES:
            documents = [d for d in yaml.safe_load_all(text) if d is not None]
            spec, platform = documents[0], (documents[1] if len(documents) > 1 else {})
            params: dict[str, Any] = {}
        elif path.suffix == ".json":
            job = json.loads(text)
            spec, platform = job["pipelineSpec"], {}
            params = {
                k: v.get("stringValue", v.get("intValue", v.get("doubleValue")))
                for k, v in job.get("runtimeConfig", {}).get("parameters", {}).items()
            }
        else:
            raise SubmitError(f"{path}: expected a .json PipelineJob or a .yaml PipelineSpec")
    except (yaml.YAMLError, json.JSONDecodeError, KeyError, IndexError) as exc:
        raise SubmitError(f"{path}: not a compiled pipeline ({exc})") from None
    if not isinstance(spec, dict) or "root" not in spec or "pipelineInfo" not in spec:
        raise SubmitError(f"{path}: not a compiled pipeline (no pipelineInfo/root)")
    return spec, platform, params


def submit(
    package: str | Path,
    host: str,
    *,
    run_name: str | None = None,
    experiment: str | None = None,
    namespace: str | None = None,
    existing_token: str | None = None,
) -> str:
    """Create a run from a compiled file on the KFP API server at ``host``; return the run id."""
    import kfp  # the kubeflow extra; imported here so local runs do not need it
    from kfp_server_api.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    spec, platform, params = load_package(package)
    run_name = run_name or spec["pipelineInfo"]["name"]
    with tempfile.TemporaryDirectory() as tmp:
        # kfp.Client reads YAML packages only: a PipelineJob JSON goes in as its PipelineSpec.
        as_yaml = Path(tmp) / "pipeline.yaml"
        documents = [spec] + ([platform] if platform else [])
        as_yaml.write_text(yaml.safe_dump_all(documents, sort_keys=True), encoding="utf-8")
        try:
            client = kfp.Client(host=host, namespace=namespace, existing_token=existing_token)
            result = client.create_run_from_pipeline_package(
                str(as_yaml),
                arguments=params,
                run_name=run_name,
                experiment_name=experiment,
                namespace=namespace,
                pipeline_root=spec.get("defaultPipelineRoot"),
            )
        except ApiException as exc:
            raise SubmitError(
                f"{host} rejected the run (HTTP {exc.status} {exc.reason}): "
                f"{(exc.body or '').strip()[:500]}"
            ) from None
        except (HTTPError, OSError) as exc:
            raise SubmitError(
                f"cannot reach the Kubeflow Pipelines API at {host}: {exc}. Is the URL right "
                "(e.g. http://localhost:8080 after `kubectl port-forward -n kubeflow "
                "svc/ml-pipeline-ui 8080:80`)?"
            ) from None
    return result.run_id
