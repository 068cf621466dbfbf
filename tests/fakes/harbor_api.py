"""A stand-in for Harbor's REST API, for the unit tests only: the few endpoints groundwork calls, with basic
auth as admin, the password and port read from the harbor.yml it is started with (as Harbor's prepare does).

Every request is appended to requests.log next to harbor.yml: METHOD PATH BODY, one per line. Projects are kept
in projects.json there, as Harbor keeps them in its database across reinstalls.
"""

import base64
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import yaml

CONFIG = Path(sys.argv[1])
settings = yaml.safe_load(CONFIG.read_text())
PASSWORD = settings["harbor_admin_password"]
LOG = CONFIG.parent / "requests.log"
STORE = CONFIG.parent / "projects.json"
projects: dict[str, dict] = json.loads(STORE.read_text()) if STORE.exists() else {}


class Api(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _reply(self, status: int, body=None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _authorised(self) -> bool:
        expected = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
        return self.headers.get("Authorization") == expected

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        with LOG.open("a") as log:
            log.write(f"{self.command} {self.path} {body}\n")
        url = urlparse(self.path)
        if url.path == "/api/v2.0/health":
            return self._reply(200, {"status": "healthy", "components": []})
        if not self._authorised():
            return self._reply(401, {"errors": [{"code": "UNAUTHORIZED"}]})
        if url.path == "/api/v2.0/projects" and self.command == "HEAD":
            name = parse_qs(url.query).get("project_name", [""])[0]
            return self._reply(200 if name in projects else 404)
        if url.path == "/api/v2.0/projects" and self.command == "POST":
            wanted = json.loads(body)
            if wanted["project_name"] in projects:
                return self._reply(409, {"errors": [{"code": "CONFLICT"}]})
            projects[wanted["project_name"]] = wanted
            STORE.write_text(json.dumps(projects))
            return self._reply(201)
        return self._reply(404)

    do_GET = do_HEAD = do_POST = _handle


ThreadingHTTPServer(("127.0.0.1", int(settings["http"]["port"])), Api).serve_forever()
