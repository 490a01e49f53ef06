"""A registry front that answers the OCI referrers API in front of a real (open) CNCF registry.

Distribution 2.8 keeps a manifest's ``subject`` but has no referrers API. This front answers
``GET /v2/<name>/referrers/<digest>`` the way a registry with the API does (an OCI index of the descriptors of
every manifest in ``<name>`` whose ``subject`` is ``<digest>``, with ``artifactType``; 200 with an empty index
when there are none), reading the registry's own storage, so deletions show at once. Every other request is
passed through to the registry unchanged. Calls are recorded as (method, path).
"""

from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.services.registry import RegistryService

OCI_INDEX = "application/vnd.oci.image.index.v1+json"


class ReferrersFront:
    """The front: ``host`` is what clients use; ``calls`` what they asked."""

    def __init__(self, registry: RegistryService) -> None:
        self.registry = registry
        self.storage = Path(registry.root) / "data" / "docker" / "registry" / "v2"
        self.calls: list[tuple[str, str]] = []
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _serve(self) -> None:
                front.calls.append((self.command, self.path))
                path = self.path.split("?", 1)[0]
                if self.command == "GET" and "/referrers/" in path and path.startswith("/v2/"):
                    name, _, digest = path[len("/v2/"):].rpartition("/referrers/")
                    body = json.dumps(front.referrers(name, digest)).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", OCI_INDEX)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else None
                upstream = http.client.HTTPConnection(front.registry.host, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                upstream.request(self.command, self.path, body=data, headers=headers)
                answer = upstream.getresponse()
                payload = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
                upstream.close()

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def referrers(self, name: str, digest: str) -> dict[str, Any]:
        """The referrers API's answer for ``digest`` in ``name``, from the registry's storage."""
        revisions = self.storage / "repositories" / name / "_manifests" / "revisions" / "sha256"
        entries = []
        for link in sorted(revisions.glob("*/link")) if revisions.is_dir() else []:
            hexa = link.read_text().strip().partition(":")[2]
            blob = self.storage / "blobs" / "sha256" / hexa[:2] / hexa / "data"
            try:
                body = blob.read_bytes()
                doc = json.loads(body)
            except (OSError, ValueError):
                continue
            subject = doc.get("subject") if isinstance(doc, dict) else None
            if not isinstance(subject, dict) or subject.get("digest") != digest:
                continue
            artifact_type = doc.get("artifactType") or (doc.get("config") or {}).get("mediaType")
            entry: dict[str, Any] = {"mediaType": doc.get("mediaType"), "digest": f"sha256:{hexa}",
                                     "size": len(body), "artifactType": artifact_type}
            if doc.get("annotations"):
                entry["annotations"] = doc["annotations"]
            entries.append(entry)
        return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}

    def referrer_calls(self) -> list[str]:
        """The paths of the referrers API calls made so far."""
        return [p for m, p in self.calls if m == "GET" and "/referrers/" in p]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
