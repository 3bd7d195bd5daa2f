"""A real S3-compatible server on 127.0.0.1 for the tests: moto's server application in a thread, on a free port.

moto checks If-None-Match and then stores the object in a separate step, so two conditional PUTs racing for one
name could both succeed on moto (never on S3, GCS or Azure). The application is wrapped in a lock that serializes
requests, which makes its conditional PUT atomic as a real object store's is.
"""

from __future__ import annotations

import socket
import threading
import urllib.request
from collections import Counter

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import WSGIRequestHandler, make_server


def _kind(environ) -> str:
    method = environ.get("REQUEST_METHOD", "")
    query = environ.get("QUERY_STRING", "")
    if method == "GET" and ("list-type" in query or environ.get("PATH_INFO", "").count("/") <= 1):
        return "LIST"
    if method == "POST" and "delete" in query:
        return "DELETE"
    return method


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:
        pass


class S3Server:
    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        app = DomainDispatcherApplication(create_backend_app)
        lock = threading.Lock()

        self.requests: Counter = Counter()  # by kind: GET, PUT, LIST, HEAD, DELETE, POST (as the server saw them)

        def serialized(environ, start_response):
            with lock:
                self.requests[_kind(environ)] += 1
                return list(app(environ, start_response))

        self._app = serialized
        self.restart()

    def restart(self) -> None:
        """Serve (again) on the same port, with the objects stored so far."""
        self._server = make_server("127.0.0.1", self.port, self._app, threaded=True, request_handler=_Quiet)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def create_bucket(self, name: str) -> None:
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/{name}", method="PUT"), timeout=10)

    def options(self) -> dict:
        """storage_options for a store on this server."""
        return {"endpoint": self.endpoint, "access_key_id": "test", "secret_access_key": "test", "region": "us-east-1", "allow_http": True}

    def environment(self) -> dict:
        """The standard AWS environment variables for a process that reaches this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true",
        }

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
