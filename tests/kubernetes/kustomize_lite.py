"""Render this repo's kustomizations: with kustomize when it is installed, else a small fallback.

``render(directory)`` uses ``kustomize build`` or ``kubectl kustomize`` when either is on PATH,
and ``render_fallback`` otherwise. The fallback implements exactly the kustomize features that
``kubernetes/`` and ``configs/kustomization.yaml`` use, with kustomize's semantics for them:

* ``resources``: YAML files (one or more documents) and directories holding a kustomization
* ``namespace``: set on every namespaced object (a Namespace object must already carry that name)
* ``labels``: ``pairs`` added to ``metadata.labels`` (no selectors, no templates)
* ``configMapGenerator``: ``files`` (``key=path`` or ``path``) below the kustomization's own
  directory (kustomize's default load restrictor), with ``disableNameSuffixHash: true``
* ``patches``: ``path`` to a strategic merge patch whose lists are plain values (replaced whole)
* ``images``: ``name`` with ``newName`` and/or ``newTag``

Anything else is refused with ``Unsupported`` rather than skipped, and ``unsupported_fields``
lists what a kustomization uses beyond this, so a test can fail before the fallback renders
something kustomize would render differently. When kustomize is available the tests also
compare both renderings object by object.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")

# Supported keys, per level. A key not listed is unsupported.
TOP_LEVEL = {"apiVersion", "kind", "namespace", "labels", "resources", "configMapGenerator"}
TOP_LEVEL |= {"patches", "images"}
LABEL_ENTRY = {"pairs", "includeSelectors", "includeTemplates"}
GENERATOR_ENTRY = {"name", "files", "options"}
GENERATOR_OPTIONS = {"disableNameSuffixHash"}
PATCH_ENTRY = {"path"}
IMAGE_ENTRY = {"name", "newName", "newTag"}

# Kinds without a namespace (those that could appear here).
CLUSTER_SCOPED = {
    "Namespace",
    "PersistentVolume",
    "StorageClass",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PriorityClass",
}
# Kinds whose namespace handling in kustomize goes beyond metadata.namespace.
NAMESPACE_SPECIAL = {
    "RoleBinding",
    "ClusterRoleBinding",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "APIService",
}


class Unsupported(ValueError):
    """The kustomization uses something the fallback does not implement."""


def kustomization_file(directory: Path) -> Path:
    for name in KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(f"{directory}: no kustomization.yaml")


def load_kustomization(directory: Path) -> dict[str, Any]:
    data = yaml.safe_load(kustomization_file(directory).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise Unsupported(f"{directory}: kustomization is not a mapping")
    return data


def unsupported_fields(kustomization: dict[str, Any]) -> list[str]:
    """Dotted names of every field (or value) the fallback does not implement; [] if none."""
    found = [key for key in kustomization if key not in TOP_LEVEL]
    if kustomization.get("kind", "Kustomization") != "Kustomization":
        found.append(f"kind={kustomization['kind']}")
    for i, resource in enumerate(kustomization.get("resources") or []):
        if not isinstance(resource, str) or "://" in resource or resource.startswith("git@"):
            found.append(f"resources[{i}] (remote)")
    for i, entry in enumerate(kustomization.get("labels") or []):
        found += [f"labels[{i}].{k}" for k in entry if k not in LABEL_ENTRY]
        for flag in ("includeSelectors", "includeTemplates"):
            if entry.get(flag):
                found.append(f"labels[{i}].{flag}=true")
    for i, entry in enumerate(kustomization.get("configMapGenerator") or []):
        found += [f"configMapGenerator[{i}].{k}" for k in entry if k not in GENERATOR_ENTRY]
        options = entry.get("options") or {}
        found += [
            f"configMapGenerator[{i}].options.{k}" for k in options if k not in GENERATOR_OPTIONS
        ]
        if options.get("disableNameSuffixHash") is not True:
            found.append(f"configMapGenerator[{i}] with a name hash suffix")
    for i, entry in enumerate(kustomization.get("patches") or []):
        found += [f"patches[{i}].{k}" for k in entry if k not in PATCH_ENTRY]
    for i, entry in enumerate(kustomization.get("images") or []):
        found += [f"images[{i}].{k}" for k in entry if k not in IMAGE_ENTRY]
    return found


# --- the real tool --------------------------------------------------------------------------


def kustomize_command() -> list[str] | None:
    """``kustomize build`` or ``kubectl kustomize``, whichever is on PATH (None: neither)."""
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def render_with_tool(directory: Path, command: list[str]) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [*command, str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} {directory} failed:\n{proc.stderr}")
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc is not None]


def render(directory: Path) -> tuple[list[dict[str, Any]], str]:
    """The rendered objects and the name of what rendered them."""
    command = kustomize_command()
    if command is None:
        return render_fallback(directory), "fallback"
    return render_with_tool(directory, command), " ".join(command)


# --- the fallback ---------------------------------------------------------------------------


def render_fallback(directory: Path) -> list[dict[str, Any]]:
    directory = directory.resolve()
    kustomization = load_kustomization(directory)
    problems = unsupported_fields(kustomization)
    if problems:
        raise Unsupported(f"{kustomization_file(directory)}: {', '.join(problems)}")

    objects: list[dict[str, Any]] = []
    for entry in kustomization.get("resources") or []:
        path = (directory / entry).resolve()
        if path.is_dir():
            objects += render_fallback(path)
        else:
            _inside(directory, path, "resource file")
            docs = yaml.safe_load_all(path.read_text(encoding="utf-8"))
            objects += [doc for doc in docs if doc is not None]
    for entry in kustomization.get("configMapGenerator") or []:
        objects.append(_config_map(directory, entry))

    for entry in kustomization.get("patches") or []:
        _apply_patch(objects, directory, entry["path"])
    namespace = kustomization.get("namespace")
    if namespace:
        for obj in objects:
            _set_namespace(obj, namespace)
    for entry in kustomization.get("labels") or []:
        for obj in objects:
            obj.setdefault("metadata", {}).setdefault("labels", {}).update(entry["pairs"])
    for entry in kustomization.get("images") or []:
        for obj in objects:
            _set_images(obj, entry)
    _check_unique(objects, directory)
    return objects


def _inside(root: Path, path: Path, what: str) -> None:
    """kustomize's default load restrictor: files only from the kustomization's directory."""
    if not path.is_relative_to(root):
        raise Unsupported(
            f"{what} {path} is outside {root} (kustomize's LoadRestrictionsRootOnly refuses it)"
        )


def _config_map(directory: Path, entry: dict[str, Any]) -> dict[str, Any]:
    data = {}
    for item in entry.get("files") or []:
        key, _, rel = item.rpartition("=")
        path = (directory / rel).resolve()
        _inside(directory, path, "configMapGenerator file")
        data[key or path.name] = path.read_text(encoding="utf-8")
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": entry["name"]},
        "data": data,
    }


def _apply_patch(objects: list[dict[str, Any]], directory: Path, rel: str) -> None:
    path = (directory / rel).resolve()
    _inside(directory, path, "patch")
    patch = yaml.safe_load(path.read_text(encoding="utf-8"))
    meta = patch.get("metadata", {})
    targets = [
        obj
        for obj in objects
        if obj.get("apiVersion") == patch.get("apiVersion")
        and obj.get("kind") == patch.get("kind")
        and obj["metadata"].get("name") == meta.get("name")
        and ("namespace" not in meta or obj["metadata"].get("namespace") == meta["namespace"])
    ]
    if len(targets) != 1:
        raise Unsupported(f"{path}: matches {len(targets)} objects, expected exactly 1")
    body = {k: v for k, v in patch.items() if k not in ("apiVersion", "kind")}
    _merge(targets[0], body, str(path))


def _merge(target: dict[str, Any], patch: dict[str, Any], where: str) -> None:
    for key, value in patch.items():
        if key.startswith("$"):
            raise Unsupported(f"{where}: patch directive {key}")
        if value is None:
            raise Unsupported(f"{where}: null (delete) in a patch at {key}")
        if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
            # Strategic merge merges such lists by a per-field key (containers by name ...).
            raise Unsupported(f"{where}: a list of objects in a patch at {key}")
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value, where)
        else:
            target[key] = copy.deepcopy(value)


def _set_namespace(obj: dict[str, Any], namespace: str) -> None:
    kind, meta = obj.get("kind"), obj.setdefault("metadata", {})
    if kind in NAMESPACE_SPECIAL:
        raise Unsupported(f"namespace transformer on a {kind}")
    if kind == "Namespace":
        if meta.get("name") != namespace:
            raise Unsupported(f"Namespace {meta.get('name')} under namespace: {namespace}")
        return
    if kind not in CLUSTER_SCOPED:
        meta["namespace"] = namespace


def _set_images(node: Any, entry: dict[str, Any]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                for container in value:
                    container["image"] = _new_image(container["image"], entry)
            else:
                _set_images(value, entry)
    elif isinstance(node, list):
        for item in node:
            _set_images(item, entry)


def _new_image(image: str, entry: dict[str, Any]) -> str:
    name = entry["name"]
    if image == name:
        tag = ""
    elif image.startswith(name + ":"):
        tag = image[len(name) + 1 :]
    elif image.startswith(name + "@"):
        raise Unsupported(f"image {image} with a digest")
    else:
        return image
    tag = entry.get("newTag", tag)
    return entry.get("newName", name) + (f":{tag}" if tag else "")


def _check_unique(objects: list[dict[str, Any]], directory: Path) -> None:
    seen = set()
    for obj in objects:
        meta = obj.get("metadata", {})
        key = (obj.get("apiVersion"), obj.get("kind"), meta.get("namespace"), meta.get("name"))
        if key in seen:
            raise Unsupported(f"{directory}: {key} defined twice (kustomize refuses it)")
        seen.add(key)
