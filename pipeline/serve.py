"""A local stand-in for TensorFlow Serving's REST API, for this model, without Docker.

    GET  /v1/models/<name>                         version status (as TF Serving)
    POST /v1/models/<name>:predict                 {"instances": ["raw text", ...]}
    POST /v1/models/<name>:predict                 {"signature_name": "serving_tf_example",
                                                    "instances": [{"b64": "<tf.Example>"}]}
    POST /v1/models/<name>/versions/<v>:predict    a given version

The newest version in the serving directory is served; a newly pushed version is picked up
without a restart (the directory is checked at most once a second). Binds 127.0.0.1 by
default, limits the request body, and answers bad requests with a JSON error and the right
status code.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from components import features
from components.versioned_pusher import pushed_versions

MAX_BODY_BYTES = 10 * 1024 * 1024
_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?(?P<verb>:predict)?$"
)


class ApiError(Exception):
    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


class ModelStore:
    """Loads versions lazily and follows the newest one in ``serving_dir``."""

    def __init__(self, serving_dir: Path, poll_seconds: float = 1.0):
        self.serving_dir = serving_dir
        self.poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._loaded: dict[str, Any] = {}
        self._versions: list[str] = []
        self._checked = 0.0

    def versions(self) -> list[str]:
        with self._lock:
            if time.monotonic() - self._checked >= self.poll_seconds:
                self._versions = sorted(pushed_versions(str(self.serving_dir)), key=int)
                self._checked = time.monotonic()
            return list(self._versions)

    def get(self, version: str | None) -> tuple[str, Any]:
        available = self.versions()
        if not available:
            raise ApiError(HTTPStatus.NOT_FOUND, f"no model version in {self.serving_dir} yet")
        version = version or available[-1]
        if version not in available:
            raise ApiError(HTTPStatus.NOT_FOUND, f"version {version} not found")
        with self._lock:
            if version not in self._loaded:
                import tensorflow as tf

                self._loaded[version] = tf.saved_model.load(str(self.serving_dir / version))
            return version, self._loaded[version]


def _predict(model: Any, body: dict[str, Any]) -> list[dict[str, Any]]:
    import tensorflow as tf

    instances = body.get("instances")
    if not isinstance(instances, list) or not instances:
        raise ApiError(HTTPStatus.BAD_REQUEST, '"instances" must be a non-empty list')
    signature_name = body.get("signature_name", features.SERVING_RAW)
    signature = model.signatures.get(signature_name)
    if signature is None:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"unknown signature_name {signature_name!r}")
    if signature_name == features.SERVING_TF_EXAMPLE:
        try:
            blobs = [base64.b64decode(item["b64"], validate=True) for item in instances]
        except (TypeError, KeyError, binascii.Error):
            raise ApiError(
                HTTPStatus.BAD_REQUEST, 'serving_tf_example instances are {"b64": "..."} objects'
            ) from None
        out = signature(examples=tf.constant(blobs))
    else:
        if not all(isinstance(item, str) for item in instances):
            raise ApiError(HTTPStatus.BAD_REQUEST, "serving_default instances are strings")
        out = signature(text=tf.constant(instances))
    columns = {k: v.numpy().tolist() for k, v in out.items()}
    rows = []
    for i in range(len(instances)):
        row = {k: v[i] for k, v in columns.items()}
        if isinstance(row.get(features.OUTPUT_CLASS_NAME), bytes):
            row[features.OUTPUT_CLASS_NAME] = row[features.OUTPUT_CLASS_NAME].decode("utf-8")
        rows.append(row)
    return rows


def make_server(
    serving_dir: Path, model_name: str, host: str = "127.0.0.1", port: int = 8501,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> ThreadingHTTPServer:  # fmt: skip
    store = ModelStore(Path(serving_dir))

    class Handler(BaseHTTPRequestHandler):
        server_version = "sentiment-pipeline-serve"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            return  # quiet; the CLI prints where it listens

        def _send(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self) -> re.Match[str]:
            match = _PATH.match(self.path)
            if match is None:
                raise ApiError(HTTPStatus.NOT_FOUND, f"no such endpoint {self.path}")
            if match["name"] != model_name:
                raise ApiError(HTTPStatus.NOT_FOUND, f"servable not found: {match['name']}")
            return match

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            try:
                match = self._route()
                if match["verb"]:
                    raise ApiError(HTTPStatus.METHOD_NOT_ALLOWED, "predict needs POST")
                versions = store.versions()
                if match["version"] and match["version"] not in versions:
                    raise ApiError(HTTPStatus.NOT_FOUND, f"version {match['version']} not found")
                shown = [match["version"]] if match["version"] else versions[::-1]
                self._send(
                    HTTPStatus.OK,
                    {
                        "model_version_status": [
                            {
                                "version": v,
                                "state": "AVAILABLE",
                                "status": {"error_code": "OK", "error_message": ""},
                            }
                            for v in shown
                        ]
                    },
                )
            except ApiError as exc:
                self._send(exc.status, {"error": str(exc)})

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            try:
                match = self._route()
                if not match["verb"]:
                    raise ApiError(HTTPStatus.METHOD_NOT_ALLOWED, "POST goes to :predict")
                length = int(self.headers.get("Content-Length") or 0)
                if length > max_body_bytes:
                    raise ApiError(
                        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                        f"request body of {length} bytes exceeds {max_body_bytes}",
                    )
                try:
                    body = json.loads(self.rfile.read(length) or b"null")
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise ApiError(HTTPStatus.BAD_REQUEST, f"malformed JSON: {exc}") from None
                if not isinstance(body, dict):
                    raise ApiError(HTTPStatus.BAD_REQUEST, "the body must be a JSON object")
                version, model = store.get(match["version"])
                self._send(
                    HTTPStatus.OK, {"predictions": _predict(model, body), "version": version}
                )
            except ApiError as exc:
                if exc.status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE:
                    self.close_connection = True
                self._send(exc.status, {"error": str(exc)})

    return ThreadingHTTPServer((host, port), Handler)
