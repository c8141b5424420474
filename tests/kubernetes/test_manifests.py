"""kubernetes/: every overlay renders, validates against the Kubernetes schemas, meets the
restricted Pod Security profile, and agrees with the Dockerfile, the lock and the in-cluster
config. Offline and fast: nothing here builds an image or talks to a cluster.

Rendering uses `kustomize build` or `kubectl kustomize` when on PATH, else the fallback in
kustomize_lite.py; the fallback always runs too, and is compared with the real tool when both
are there.
"""

from __future__ import annotations

import copy
import fnmatch
import functools
import re
import shlex
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kustomize_lite import (
    Unsupported,
    kustomize_command,
    render,
    render_fallback,
    unsupported_fields,
)

from pipeline.config import load_config

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "kubernetes"
OVERLAYS = ("kind", "kubeflow")
DOCKERFILE = K8S / "Dockerfile"
IMAGE_REPO = "ghcr.io/sentiment-pipeline/sentiment-pipeline"
# The oldest Kubernetes these manifests claim (CronJob.timeZone is GA since 1.27), and kind's
# default node version at the time of writing.
K8S_VERSIONS = ("1.29", "1.33")
# What each overlay deploys (kind, name): a change here is a design change, not a typo.
EXPECTED = {
    "kind": {
        ("Namespace", "sentiment"),
        ("ServiceAccount", "sentiment-pipeline"),
        ("ConfigMap", "sentiment-pipeline-config"),
        ("PersistentVolumeClaim", "sentiment-data"),
        ("Deployment", "sentiment-serving"),
        ("Service", "sentiment-serving"),
        ("Job", "sentiment-pipeline-run"),
        ("CronJob", "sentiment-pipeline-retrain"),
    },
    "kubeflow": {
        ("ServiceAccount", "sentiment-pipeline"),
        ("Job", "sentiment-prepare-inputs"),
        ("PersistentVolumeClaim", "sentiment-data"),
        ("Deployment", "sentiment-serving"),
        ("Service", "sentiment-serving"),
    },
}
POD_KINDS = ("Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob")
# Volume types the restricted profile allows.
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


@functools.cache
def _rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    objects, _renderer = render(K8S / "overlays" / overlay)
    return tuple(objects)


def rendered(overlay: str) -> list[dict[str, Any]]:
    """A fresh copy of the overlay's objects (tests may mutate theirs)."""
    return copy.deepcopy(list(_rendered(overlay)))


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def key(obj: dict[str, Any]) -> tuple[str, str, str | None, str]:
    meta = obj["metadata"]
    return obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"]


def pod_specs(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(where, pod spec) of every object that makes pods; refuses a pod-making kind it does not
    know, so that no pod template escapes the checks below."""
    specs = []
    for obj in objects:
        kind, where = obj["kind"], f"{obj['kind']}/{obj['metadata']['name']}"
        spec = obj.get("spec") or {}
        if kind == "Pod":
            specs.append((where, spec))
        elif kind == "CronJob":
            specs.append((where, spec["jobTemplate"]["spec"]["template"]["spec"]))
        elif kind in POD_KINDS:
            specs.append((where, spec["template"]["spec"]))
        else:
            assert "template" not in spec and "jobTemplate" not in spec, (
                f"{where}: has a pod template but is not a known pod-making kind"
            )
    return specs


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        *spec.get("initContainers", []),
        *spec.get("containers", []),
        *spec.get("ephemeralContainers", []),
    ]


def restricted_violations(where: str, spec: dict[str, Any]) -> list[str]:
    """Departures from the restricted Pod Security profile, plus our own rules: read-only root
    filesystem, no service account token, requests and limits on every container."""
    bad = []
    pod_sc = spec.get("securityContext") or {}
    if pod_sc.get("runAsNonRoot") is not True:
        bad.append(f"{where}: pod securityContext.runAsNonRoot is not true")
    if (pod_sc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        bad.append(f"{where}: pod seccompProfile.type is not RuntimeDefault")
    if pod_sc.get("runAsUser") == 0:
        bad.append(f"{where}: pod runAsUser is 0")
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            bad.append(f"{where}: {field}")
    if spec.get("automountServiceAccountToken") is not False:
        bad.append(f"{where}: automountServiceAccountToken is not false")
    for volume in spec.get("volumes", []):
        types = set(volume) - {"name"}
        if not types <= RESTRICTED_VOLUMES:
            bad.append(f"{where}: volume {volume['name']} of type {sorted(types)}")
    all_containers = containers(spec)
    if not spec.get("containers"):
        bad.append(f"{where}: no containers")
    for c in all_containers:
        at = f"{where} container {c['name']}"
        sc = c.get("securityContext") or {}
        if sc.get("allowPrivilegeEscalation") is not False:
            bad.append(f"{at}: allowPrivilegeEscalation is not false")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            bad.append(f"{at}: capabilities.drop lacks ALL")
        if caps.get("add"):
            bad.append(f"{at}: capabilities.add {caps['add']}")
        if sc.get("privileged"):
            bad.append(f"{at}: privileged")
        if sc.get("readOnlyRootFilesystem") is not True:
            bad.append(f"{at}: readOnlyRootFilesystem is not true")
        if sc.get("runAsNonRoot") is False or sc.get("runAsUser") == 0:
            bad.append(f"{at}: runs as root")
        if sc.get("seccompProfile", {}).get("type") not in (None, "RuntimeDefault", "Localhost"):
            bad.append(f"{at}: seccompProfile {sc['seccompProfile']}")
        if c.get("ports") and any(p.get("hostPort") for p in c["ports"]):
            bad.append(f"{at}: hostPort")
        resources = c.get("resources") or {}
        for part in ("requests", "limits"):
            for res in ("cpu", "memory"):
                if res not in (resources.get(part) or {}):
                    bad.append(f"{at}: no resources.{part}.{res}")
    return bad


# --- rendering ------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_the_expected_objects(overlay):
    objects = rendered(overlay)
    assert {(o["kind"], o["metadata"]["name"]) for o in objects} == EXPECTED[overlay]
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "sentiment", key(obj)
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "sentiment-pipeline"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_fallback_renders_each_overlay(overlay):
    objects = render_fallback(K8S / "overlays" / overlay)
    assert {(o["kind"], o["metadata"]["name"]) for o in objects} == EXPECTED[overlay]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_fallback_matches_kustomize(overlay):
    command = kustomize_command()
    if command is None:
        pytest.skip("neither kustomize nor kubectl on PATH: only the fallback renders here")
    real = {key(o): o for o in rendered(overlay)}
    lite = {key(o): o for o in render_fallback(K8S / "overlays" / overlay)}
    assert lite.keys() == real.keys()
    for k in real:
        assert lite[k] == real[k], f"{k}: the fallback differs from {' '.join(command)}"


def _kustomization_dirs() -> list[Path]:
    found = [p.parent for p in K8S.rglob("kustomization.yaml")]
    found += [p.parent for p in (REPO / "configs").rglob("kustomization.yaml")]
    return sorted(found)


def test_every_kustomization_uses_only_what_the_fallback_implements():
    dirs = _kustomization_dirs()
    assert K8S / "base" in dirs and REPO / "configs" in dirs
    for directory in dirs:
        data = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
        assert unsupported_fields(data) == [], directory


@pytest.mark.parametrize(
    ("kustomization", "expected"),
    [
        ({"commonLabels": {"a": "b"}}, "commonLabels"),
        ({"replicas": [{"name": "x", "count": 2}]}, "replicas"),
        ({"patches": [{"path": "p.yaml", "target": {"kind": "Deployment"}}]}, "patches[0].target"),
        ({"patches": [{"patch": "- op: remove"}]}, "patches[0].patch"),
        (
            {"configMapGenerator": [{"name": "c", "literals": ["a=b"]}]},
            "configMapGenerator[0].literals",
        ),
        ({"configMapGenerator": [{"name": "c", "files": ["a"]}]}, "name hash suffix"),
        ({"labels": [{"pairs": {"a": "b"}, "includeSelectors": True}]}, "includeSelectors"),
        ({"images": [{"name": "x", "digest": "sha256:00"}]}, "images[0].digest"),
        ({"resources": ["https://example.com/x.yaml"]}, "remote"),
    ],
)
def test_unsupported_kustomize_features_are_reported(kustomization, expected):
    problems = unsupported_fields(kustomization)
    assert any(expected in p for p in problems), problems


def test_fallback_refuses_rather_than_skips(tmp_path):
    (tmp_path / "sa.yaml").write_text("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a}\n")
    (tmp_path / "kustomization.yaml").write_text("resources: [sa.yaml]\ncommonLabels: {team: x}\n")
    with pytest.raises(Unsupported, match="commonLabels"):
        render_fallback(tmp_path)
    # kustomize's load restrictor: a generator may not read a file above its directory.
    (tmp_path / "outside.yaml").write_text("x: 1\n")
    (tmp_path / "k").mkdir()
    (tmp_path / "k" / "kustomization.yaml").write_text(
        "configMapGenerator:\n- name: c\n  files: [c.yaml=../outside.yaml]\n"
        "  options: {disableNameSuffixHash: true}\n"
    )
    with pytest.raises(Unsupported, match="outside"):
        render_fallback(tmp_path / "k")


# --- schemas --------------------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_objects_validate_against_kubernetes_schemas(overlay, version):
    errors = []
    for obj in rendered(overlay):
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            at = "/".join(str(part) for part in exc.absolute_path)
            errors.append(f"{key(obj)} at {at}: {exc.message}")
    assert errors == []


def test_schema_validation_catches_a_misspelt_field():
    deployment = one(rendered("kind"), "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["readOnlyRootFileSystem"] = True  # capital S: not a field
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[0], strict=True)


# --- pod security ---------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_meets_the_restricted_profile(overlay):
    specs = pod_specs(rendered(overlay))
    assert len(specs) == {"kind": 3, "kubeflow": 2}[overlay]
    problems = [p for where, spec in specs for p in restricted_violations(where, spec)]
    assert problems == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda s: s["securityContext"].pop("runAsNonRoot"), "runAsNonRoot"),
        (lambda s: s["securityContext"].pop("seccompProfile"), "seccompProfile"),
        (lambda s: s.pop("automountServiceAccountToken"), "automountServiceAccountToken"),
        (
            lambda s: s["containers"][0]["securityContext"].pop("readOnlyRootFilesystem"),
            "readOnlyRootFilesystem",
        ),
        (
            lambda s: s["initContainers"][0]["securityContext"]["capabilities"].update(drop=[]),
            "container wait-for-model: capabilities.drop lacks ALL",
        ),
        (
            lambda s: s["containers"][0]["securityContext"].update(allowPrivilegeEscalation=True),
            "allowPrivilegeEscalation",
        ),
        (
            lambda s: s["initContainers"][0]["resources"].pop("limits"),
            "wait-for-model: no resources.limits.cpu",
        ),
        (lambda s: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}), "hostPath"),
    ],
)
def test_restricted_check_catches_violations(mutate, expected):
    [(where, spec)] = pod_specs([one(rendered("kubeflow"), "Deployment")])
    assert restricted_violations(where, spec) == []
    mutate(spec)
    problems = restricted_violations(where, spec)
    assert any(expected in p for p in problems), problems


def test_unknown_pod_making_kind_is_not_skipped():
    rollout = {"kind": "Rollout", "metadata": {"name": "r"}, "spec": {"template": {}}}
    with pytest.raises(AssertionError, match="not a known pod-making kind"):
        pod_specs([rollout])


def _dockerfile_env() -> dict[str, str]:
    env = {}
    for instruction, args in dockerfile_instructions():
        if instruction == "ENV":
            for item in shlex.split(args):
                name, _, value = item.partition("=")
                env[name] = value
    return env


def _emptydir_mounts(spec: dict[str, Any], container: dict[str, Any]) -> set[str]:
    empty = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
    return {m["mountPath"] for m in container.get("volumeMounts", []) if m["name"] in empty}


def test_read_only_root_filesystem_leaves_the_needed_paths_writable():
    home = _dockerfile_env()["HOME"]
    specs = pod_specs(rendered("kind"))
    pipeline_containers = [
        (spec, c) for _, spec in specs for c in spec["containers"] if IMAGE_REPO in c["image"]
    ]
    assert len(pipeline_containers) == 2  # the Job and the CronJob
    for spec, container in pipeline_containers:
        assert {"/tmp", home} <= _emptydir_mounts(spec, container)
    serving = one(rendered("kind"), "Deployment")["spec"]["template"]["spec"]
    assert "/tmp" in _emptydir_mounts(serving, serving["containers"][0])


def test_no_pod_gets_kubernetes_api_access():
    for overlay in OVERLAYS:
        objects = rendered(overlay)
        kinds = {o["kind"] for o in objects}
        assert not kinds & {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}
        assert one(objects, "ServiceAccount")["automountServiceAccountToken"] is False


# --- consistency between objects ------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_references_resolve(overlay):
    objects = rendered(overlay)
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    for where, spec in pod_specs(objects):
        assert ("ServiceAccount", spec["serviceAccountName"]) in names, where
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                assert ("ConfigMap", volume["configMap"]["name"]) in names, where
            if "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]["claimName"]
                assert ("PersistentVolumeClaim", claim) in names, where
        for c in containers(spec):
            declared = {v["name"] for v in spec.get("volumes", [])}
            assert {m["name"] for m in c.get("volumeMounts", [])} <= declared, where
    service = one(objects, "Service")
    deployment = one(objects, "Deployment")
    template = deployment["spec"]["template"]
    selector = service["spec"]["selector"]
    assert selector.items() <= template["metadata"]["labels"].items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= selector.items()
    port_names = {p["name"] for c in template["spec"]["containers"] for p in c["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names


def test_job_and_cronjob_run_the_same_pod():
    objects = rendered("kind")
    job = one(objects, "Job")["spec"]
    cron = one(objects, "CronJob")["spec"]
    assert cron["concurrencyPolicy"] == "Forbid"
    assert cron["jobTemplate"]["spec"] == job
    assert job["template"]["spec"]["restartPolicy"] == "Never"


def _serving_args(objects: list[dict[str, Any]]) -> dict[str, str]:
    spec = one(objects, "Deployment")["spec"]["template"]["spec"]
    [server] = spec["containers"]
    return dict(a.removeprefix("--").split("=", 1) for a in server["args"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_serving_probes_and_ports(overlay):
    spec = one(rendered(overlay), "Deployment")["spec"]["template"]["spec"]
    [server] = spec["containers"]
    args = _serving_args(rendered(overlay))
    assert server["image"] == "tensorflow/serving:2.16.1"
    ports = {p["name"]: p["containerPort"] for p in server["ports"]}
    assert ports == {"http": int(args["rest_api_port"]), "grpc": int(args["port"])}
    readiness = server["readinessProbe"]["httpGet"]
    assert readiness["path"] == f"/v1/models/{args['model_name']}"
    assert readiness["port"] in ("http", ports["http"])
    assert "livenessProbe" in server
    data_mounts = [m for m in server["volumeMounts"] if m["name"] == "data"]
    assert data_mounts and all(m.get("readOnly") for m in data_mounts)
    assert args["model_base_path"].startswith(data_mounts[0]["mountPath"] + "/")
    # The init container waits for exactly the directory TF Serving serves.
    [wait] = spec["initContainers"]
    assert f"{args['model_base_path']}/*/saved_model.pb" in " ".join(wait["command"])


def test_kubeflow_overlay_shares_the_volume_across_nodes():
    claim = one(rendered("kubeflow"), "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert one(rendered("kind"), "PersistentVolumeClaim")["spec"]["accessModes"] == [
        "ReadWriteOnce"
    ]


# --- the in-cluster config ------------------------------------------------------------------


def _config_text() -> str:
    config_map = one(rendered("kind"), "ConfigMap", "sentiment-pipeline-config")
    return config_map["data"]["config.yaml"]


def test_configmap_holds_configs_cluster_yaml_and_it_validates(tmp_path):
    text = _config_text()
    assert text == (REPO / "configs" / "cluster.yaml").read_text(encoding="utf-8")
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    config = load_config(path)
    assert config.pipeline.runner == "beam"
    assert config.data.source == "embedded"
    assert "--direct_running_mode=multi_processing" in config.pipeline.beam_pipeline_args


def test_config_paths_agree_with_the_manifests(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(_config_text(), encoding="utf-8")
    p = load_config(path).pipeline
    data_schema = load_config(path).data.schema_path
    objects = rendered("kind")
    job_spec = one(objects, "Job")["spec"]["template"]["spec"]
    [container] = job_spec["containers"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in job_spec["volumes"]}
    data_mount = next(
        m["mountPath"] for n, m in mounts.items() if "persistentVolumeClaim" in volumes[n]
    )
    for value in (
        p.work_dir,
        p.resolved_pipeline_root,
        p.resolved_metadata_path,
        p.resolved_serving_dir,
    ):
        assert value.startswith(data_mount + "/"), f"{value} is not on the volume {data_mount}"
    assert p.resolved_serving_dir == _serving_args(objects)["model_base_path"]
    # `run --config` reads the file the ConfigMap volume provides.
    config_mount = next(m["mountPath"] for n, m in mounts.items() if "configMap" in volumes[n])
    config_arg = container["args"][container["args"].index("--config") + 1]
    assert config_arg == f"{config_mount}/config.yaml"
    # The schema ships in the image: WORKDIR /app holds a copy of configs/.
    assert data_schema is not None and data_schema.startswith("/app/configs/")
    assert (REPO / data_schema.removeprefix("/app/")).is_file()
    assert _dockerfile_workdir() == "/app"
    assert "configs/" in _dockerfile_copy_sources()


def kubeflow_volume_mismatches(config_path: Path) -> list[str] | None:
    """Where a Kubeflow config that pushes to a shared volume disagrees with the kubeflow
    overlay; None when the config pushes elsewhere (an object store)."""
    kubeflow = load_config(config_path).kubeflow
    volume = kubeflow.shared_volume if kubeflow else None
    if volume is None or not kubeflow.serving_dir.startswith(volume.mount_path.rstrip("/") + "/"):
        return None
    objects = rendered("kubeflow")
    claim = one(objects, "PersistentVolumeClaim")["metadata"]["name"]
    base_path = _serving_args(objects)["model_base_path"]
    bad = []
    if volume.claim_name != claim:
        bad.append(f"shared_volume.claim_name {volume.claim_name} != claim {claim}")
    if kubeflow.serving_dir != base_path:
        bad.append(f"serving_dir {kubeflow.serving_dir} != --model_base_path {base_path}")
    return bad


def test_kubeflow_config_uses_the_overlays_volume():
    kubeflow = load_config(REPO / "configs" / "kubeflow.yaml").kubeflow
    assert kubeflow_volume_mismatches(REPO / "configs" / "kubeflow.yaml") == []
    job = one(rendered("kubeflow"), "Job")
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:3] == ["data", "prepare", kubeflow.data_root]  # the input the steps read


@pytest.mark.parametrize(
    ("claim", "serving_dir", "expected"),
    [
        ("sentiment-data", "/var/lib/sentiment/models/sentiment", []),
        (
            "other-claim",
            "/var/lib/sentiment/models/sentiment",
            ["shared_volume.claim_name other-claim"],
        ),
        ("sentiment-data", "/var/lib/sentiment/serving", ["serving_dir /var/lib/sentiment/serv"]),
    ],
)
def test_kubeflow_volume_check(tmp_path, claim, serving_dir, expected):
    """The documented shared-volume variant agrees with the overlay; a different claim or
    serving directory is reported."""
    config = tmp_path / "kubeflow.yaml"
    config.write_text(
        "kubeflow:\n"
        "  pipeline_root: gs://bucket/sentiment/pipeline-root\n"
        "  data_root: /var/lib/sentiment/kfp/inputs\n"
        f"  serving_dir: {serving_dir}\n"
        f"  shared_volume: {{claim_name: {claim}, mount_path: /var/lib/sentiment}}\n"
        "evaluation: {baseline: last_pushed}\n",
        encoding="utf-8",
    )
    mismatches = kubeflow_volume_mismatches(config)
    assert mismatches is not None and len(mismatches) == len(expected)
    for problem, start in zip(mismatches, expected, strict=True):
        assert problem.startswith(start), mismatches


# --- the image ------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, args = line.partition(" ")
            found.append((instruction.upper(), args.strip()))
    return found


def _dockerfile_workdir() -> str:
    return [a for i, a in dockerfile_instructions() if i == "WORKDIR"][-1]


def _dockerfile_copy_sources() -> list[str]:
    sources = []
    for instruction, args in dockerfile_instructions():
        if instruction == "COPY":
            sources += args.split()[:-1]
    return sources


def locked_version(package: str) -> str:
    lock = (REPO / "requirements" / "lock.txt").read_text(encoding="utf-8")
    match = re.search(rf"^{re.escape(package)}==(\S+)$", lock, re.MULTILINE | re.IGNORECASE)
    assert match, f"{package} is not pinned in requirements/lock.txt"
    return match.group(1)


def test_dockerfile_base_image_is_the_locked_tfx():
    [base] = [args for instruction, args in dockerfile_instructions() if instruction == "FROM"]
    assert base == f"tensorflow/tfx:{locked_version('tfx')}"


def test_manifest_images_name_the_locked_tfx():
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    version = re.search(r'^version = "([^"]+)"$', pyproject, re.MULTILINE).group(1)
    expected = f"{IMAGE_REPO}:{version}-tfx{locked_version('tfx')}"
    images = [
        c["image"]
        for _, spec in pod_specs(rendered("kind"))
        for c in containers(spec)
        if c["image"].startswith(IMAGE_REPO)
    ]
    assert images and set(images) == {expected}
    assert f"-t {expected} ." in DOCKERFILE.read_text(encoding="utf-8")  # the build comment


def test_dockerfile_installs_from_the_lock_as_non_root():
    instructions = dockerfile_instructions()
    runs = " ".join(a for i, a in instructions if i == "RUN")
    assert "pip install --no-cache-dir -c requirements/lock.txt '.[kubeflow]'" in runs
    installs = [shlex.split(cmd) for cmd in runs.split("&&") if "pip install" in cmd]
    assert len(installs) == 1  # one install, from the lock, of this package only
    [install] = installs
    assert "-e" not in install and "--editable" not in install
    assert [t for t in install if t.startswith(".")] == [".[kubeflow]"]  # no dev extra
    [user] = [a for i, a in instructions if i == "USER"]
    assert user.split(":")[0].isdigit() and int(user.split(":")[0]) != 0
    assert [a for i, a in instructions if i == "ENTRYPOINT"] == ['["sentiment-pipeline"]']
    assert _dockerfile_env()["HOME"].startswith("/")
    for source in _dockerfile_copy_sources():
        assert (REPO / source).exists(), source


def dockerignored(path: str) -> bool:
    """Whether Docker leaves ``path`` out of the build context (the last matching pattern wins;
    a pattern also matches everything below a directory it matches). Enough for an allow-list."""
    patterns = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for raw in patterns:
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes):
            excluded = not negate
    return excluded


def test_dockerignore_sends_only_what_the_image_copies():
    for source in _dockerfile_copy_sources():
        assert not dockerignored(source.rstrip("/")), source
    for kept in ("pipeline/cli.py", "components/signatures.py", "configs/schema/sentiment.pbtxt"):
        assert not dockerignored(kept), kept
    for left_out in (
        ".venv/bin/python",
        ".git/HEAD",
        "runs/sample/metadata.sqlite",
        "bench/results/sample-latest.json",
        "data/imdb/train.csv",
        "tests/test_e2e.py",
        "pipeline/__pycache__/cli.cpython-310.pyc",
    ):
        assert dockerignored(left_out), left_out
