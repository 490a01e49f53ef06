"""A Kubernetes API server for the tests: the documented read endpoints over HTTPS, recorded.

No kube-apiserver can run on the test machines, so this stands in for one, following the API reference:
``GET /version``, ``/api``, ``/apis`` (discovery) and the list endpoints of the workload kinds, cluster-wide
(``/api/v1/pods``, ``/apis/apps/v1/deployments``, ``/apis/batch/v1/cronjobs``, ...) and namespaced
(``/api/v1/namespaces/NS/pods``, ...). Lists are real-shaped ``<Kind>List`` objects with
``metadata.resourceVersion``, paged by ``limit`` and ``continue`` (``metadata.continue`` and
``remainingItemCount`` while more remain). Requests need ``Authorization: Bearer <token>`` with one of
the server's tokens (else a 401 ``Status``); ``forbidden`` resources answer a 403 ``Status`` worded as the
real server words it. Every request is recorded (path, query, Authorization) so tests assert the exact calls.

It serves TLS with a certificate for ``127.0.0.1`` signed by its own CA (:attr:`KubeApi.ca_pem`, for a
kubeconfig's ``certificate-authority-data``). :func:`write_kubeconfig` writes a kubeconfig with contexts.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import ssl
import tempfile
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

#: resource -> (group, version, kind) of every kind the server lists, as in the API reference.
RESOURCES: dict[str, tuple[str, str, str]] = {
    "pods": ("", "v1", "Pod"),
    "replicationcontrollers": ("", "v1", "ReplicationController"),
    "deployments": ("apps", "v1", "Deployment"),
    "statefulsets": ("apps", "v1", "StatefulSet"),
    "daemonsets": ("apps", "v1", "DaemonSet"),
    "replicasets": ("apps", "v1", "ReplicaSet"),
    "jobs": ("batch", "v1", "Job"),
    "cronjobs": ("batch", "v1", "CronJob"),
}


@dataclass(frozen=True)
class Call:
    """One recorded request: path, query (each name once), the Authorization header."""

    path: str
    query: Mapping[str, str]
    authorization: str | None

    @property
    def token(self) -> str | None:
        return _bearer(self.authorization)


@dataclass
class KubeApi:
    """One API server: its objects, accepted tokens, forbidden resources, and the calls it received."""

    tokens: set[str] = field(default_factory=set)
    objects: list[dict[str, Any]] = field(default_factory=list)
    forbidden: set[str] = field(default_factory=set)
    user: str = "system:serviceaccount:ci:cleanup"
    calls: list[Call] = field(default_factory=list)

    def add(self, *objects: dict[str, Any]) -> None:
        self.objects.extend(objects)

    def list_calls(self) -> list[Call]:
        """The calls to list endpoints (discovery excluded)."""
        return [c for c in self.calls if c.path.rsplit("/", 1)[-1] in RESOURCES]

    # ------------------------------------------------------------ serving

    def start(self, directory: Path) -> KubeApi:
        self.ca_pem, cert_pem, key_pem = _certificates()
        (directory / "kubeapi.crt").write_bytes(cert_pem)
        (directory / "kubeapi.key").write_bytes(key_pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(directory / "kubeapi.crt", directory / "kubeapi.key")
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, path: str, query: Mapping[str, str], authorization: str | None) -> tuple[int, dict[str, Any]]:
        """(status, JSON body) for a GET."""
        self.calls.append(Call(path, dict(query), authorization))
        token = _bearer(authorization)
        if token not in self.tokens:
            return 401, _status(401, "Unauthorized", "Unauthorized")
        if path == "/version":
            return 200, {"major": "1", "minor": "30", "gitVersion": "v1.30.2", "platform": "linux/amd64"}
        if path == "/api":
            return 200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        if path == "/apis":
            groups = sorted({g for g, _v, _k in RESOURCES.values() if g})
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": [{"groupVersion": f"{g}/v1", "version": "v1"}],
                 "preferredVersion": {"groupVersion": f"{g}/v1", "version": "v1"}} for g in groups]}
        route = _route(path)
        if route is None:
            return 404, _status(404, "NotFound", "the server could not find the requested resource")
        resource, namespace = route
        group, version, kind = RESOURCES[resource]
        if resource in self.forbidden:
            scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
            name = f"{resource}.{group}" if group else resource
            return 403, _status(403, "Forbidden", f'{name} is forbidden: User "{self.user}" cannot list resource '
                                f'"{resource}" in API group "{group}" {scope}', {"kind": resource, "group": group})
        items = [o for o in self.objects if o["kind"] == kind
                 and (namespace is None or o["metadata"].get("namespace") == namespace)]
        start = int(base64.b64decode(query["continue"]).decode()) if query.get("continue") else 0
        limit = int(query["limit"]) if query.get("limit") else len(items)
        page = items[start:start + limit]
        metadata: dict[str, Any] = {"resourceVersion": "48213"}
        if start + limit < len(items):
            metadata["continue"] = base64.b64encode(str(start + limit).encode()).decode()
            metadata["remainingItemCount"] = len(items) - start - limit
        api_version = f"{group}/{version}" if group else version
        return 200, {"kind": f"{kind}List", "apiVersion": api_version, "metadata": metadata, "items": page}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                split = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(split.query).items()}
                status, body = api.answer(split.path, query, self.headers.get("Authorization"))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


def _bearer(authorization: str | None) -> str | None:
    """The token of ``Bearer <token>``; the scheme in any case, as the API server's bearer-token authenticator
    reads it (the official client's in-cluster loader sends ``bearer``)."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _route(path: str) -> tuple[str, str | None] | None:
    """(resource, namespace or None) of a list endpoint, or None."""
    parts = path.strip("/").split("/")
    if parts[:2] == ["api", "v1"]:
        rest = parts[2:]
        group = ""
    elif len(parts) >= 3 and parts[0] == "apis" and parts[2] == "v1":
        rest = parts[3:]
        group = parts[1]
    else:
        return None
    if len(rest) == 3 and rest[0] == "namespaces":
        resource, namespace = rest[2], rest[1]
    elif len(rest) == 1:
        resource, namespace = rest[0], None
    else:
        return None
    if resource not in RESOURCES or RESOURCES[resource][0] != group:
        return None
    return resource, namespace


def _status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": message, "reason": reason, "code": code}
    if details:
        body["details"] = details
    return body


def _certificates() -> tuple[bytes, bytes, bytes]:
    """(CA PEM, server certificate PEM for 127.0.0.1, server key PEM)."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ci-env test kubernetes CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
          .not_valid_after(now + dt.timedelta(days=7))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=7))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return (ca.public_bytes(serialization.Encoding.PEM), cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


# ---------------------------------------------------------------- kubeconfig


@dataclass(frozen=True)
class Context:
    """A kubeconfig context: its name, server URL, bearer token, namespace, and the CA to trust."""

    name: str
    server: str
    token: str
    ca_pem: bytes | None = None
    namespace: str | None = None


def write_kubeconfig(path: Path, contexts: Sequence[Context], current: str | None = None) -> Path:
    """A kubeconfig (one cluster and one user per context), 0600, as kubectl writes it."""
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "current-context": current or contexts[0].name,
        "clusters": [{"name": f"{c.name}-cluster", "cluster": {
            "server": c.server,
            **({"certificate-authority-data": base64.b64encode(c.ca_pem).decode()} if c.ca_pem else {}),
        }} for c in contexts],
        "users": [{"name": f"{c.name}-user", "user": {"token": c.token}} for c in contexts],
        "contexts": [{"name": c.name, "context": {
            "cluster": f"{c.name}-cluster", "user": f"{c.name}-user",
            **({"namespace": c.namespace} if c.namespace else {}),
        }} for c in contexts],
    }
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    path.chmod(0o600)
    return path


def refused_url() -> str:
    """An https URL on 127.0.0.1 where nothing listens (connections are refused)."""
    from tests.services import free_port

    return f"https://127.0.0.1:{free_port()}"


# ---------------------------------------------------------------- objects, shaped as the API returns them


def _metadata(name: str, namespace: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()), "resourceVersion": "48000",
            "creationTimestamp": "2024-05-01T10:00:00Z", "labels": {"app": name}, **extra}


def _containers(images: Iterable[str], prefix: str = "c") -> list[dict[str, Any]]:
    return [{"name": f"{prefix}{i}", "image": image, "imagePullPolicy": "IfNotPresent",
             "resources": {}, "terminationMessagePath": "/dev/termination-log"} for i, image in enumerate(images)]


def pod_spec(images: Iterable[str], init: Iterable[str] = (), ephemeral: Iterable[str] = ()) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": _containers(images), "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                            "serviceAccountName": "default", "terminationGracePeriodSeconds": 30}
    if init:
        spec["initContainers"] = _containers(init, "init")
    if ephemeral:
        spec["ephemeralContainers"] = [
            {"name": f"debug{i}", "image": image, "targetContainerName": "c0"} for i, image in enumerate(ephemeral)]
    return spec


def pod(
    name: str, namespace: str, images: Sequence[str], *, init: Sequence[str] = (), ephemeral: Sequence[str] = (),
    image_ids: Sequence[str] = (), status_images: Sequence[str] = (),
) -> dict[str, Any]:
    """A running Pod; ``image_ids[i]``/``status_images[i]`` are what the kubelet reports for container ``c<i>``."""
    statuses = [{"name": f"c{i}", "ready": True, "restartCount": 0, "started": True,
                 "state": {"running": {"startedAt": "2024-05-01T10:00:05Z"}},
                 "image": status_images[i] if i < len(status_images) else image,
                 "imageID": image_ids[i] if i < len(image_ids) else ""}
                for i, image in enumerate(images)]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": _metadata(name, namespace),
            "spec": pod_spec(images, init, ephemeral),
            "status": {"phase": "Running", "podIP": "10.1.2.3", "containerStatuses": statuses}}


def _template(images: Sequence[str], init: Sequence[str]) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": "x"}}, "spec": pod_spec(images, init)}


def controller(kind: str, name: str, namespace: str, images: Sequence[str], *, init: Sequence[str] = (),
               conditions: Sequence[dict[str, str]] = ()) -> dict[str, Any]:
    """A Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController or Job with a pod template."""
    group = {v[2]: v[0] for v in RESOURCES.values()}[kind]
    spec: dict[str, Any] = {"template": _template(images, init)}
    if kind != "DaemonSet" and kind != "Job":
        spec["replicas"] = 2
    if kind != "ReplicationController":
        spec["selector"] = {"matchLabels": {"app": "x"}}
    status: dict[str, Any] = {"observedGeneration": 1}
    if conditions:
        status["conditions"] = [{"lastProbeTime": "2024-05-01T10:05:00Z", **c} for c in conditions]
    return {"apiVersion": f"{group}/v1" if group else "v1", "kind": kind, "metadata": _metadata(name, namespace),
            "spec": spec, "status": status}


def cronjob(name: str, namespace: str, images: Sequence[str], *, init: Sequence[str] = ()) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": _metadata(name, namespace),
            "spec": {"schedule": "0 3 * * *", "concurrencyPolicy": "Forbid",
                     "jobTemplate": {"metadata": {}, "spec": {"template": {
                         "metadata": {}, "spec": {**pod_spec(images, init), "restartPolicy": "OnFailure"}}}}},
            "status": {"lastScheduleTime": "2024-05-01T03:00:00Z"}}


def start_kubeapi(objects: Iterable[dict[str, Any]] = (), tokens: Iterable[str] = (),
                  directory: Path | None = None) -> KubeApi:
    """A started server holding ``objects`` and accepting ``tokens``."""
    api = KubeApi(tokens=set(tokens), objects=list(objects))
    return api.start(directory or Path(tempfile.mkdtemp(prefix="kubeapi-")))
