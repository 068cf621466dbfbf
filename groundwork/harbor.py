"""Harbor from its offline installer: the harbor.yml it is installed with, and the REST calls made to it.

harbor.yml is made from the installer's own harbor.yml.tmpl with only the seeds' settings changed (hostname,
http port, no https, data volume, log location) plus the two passwords, so every other key keeps the value the
installer's version expects. API calls run curl on the ops host against 127.0.0.1 (Harbor is not reachable from
the control machine until DNS and nginx are up), with the credentials and body passed on curl's stdin.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass

import yaml

from groundwork.facts import Probe

INSTALLER_NAME = re.compile(r"harbor-offline-installer-(v?\d+\.\d+\.\d+[\w.-]*)\.tgz")
HEADER = b"# Managed by groundwork (registry) from the installer's harbor.yml.tmpl; edits are replaced on the next run.\n"


class HarborError(Exception):
    """Harbor answered something the stage cannot go on with; the message says what in the operator's terms."""


def installer_version(installer: str) -> str:
    """v2.10.3 from .../harbor-offline-installer-v2.10.3.tgz (the folder the seeds name harbor-v2.10.3)."""
    found = INSTALLER_NAME.fullmatch(installer.rsplit("/", 1)[-1])
    if not found:
        raise HarborError(f"{installer}: not a Harbor offline installer name (harbor-offline-installer-vX.Y.Z.tgz)")
    version = found.group(1)
    return version if version.startswith("v") else "v" + version


def harbor_yml(template: bytes, *, hostname: str, http_port: int, data_volume: str, admin_password: str,
               db_password: str) -> bytes:
    """The installer's template with the seeds' settings: plain http on the port nginx proxies to (nginx holds
    port 80, so Harbor moves to 180), data and logs under the data volume."""
    try:
        config = yaml.safe_load(template)
    except yaml.YAMLError as exc:
        raise HarborError(f"harbor.yml.tmpl is not valid YAML: {exc}") from None
    if not isinstance(config, dict) or "hostname" not in config or "_version" not in config:
        raise HarborError("harbor.yml.tmpl does not look like Harbor's (no hostname or _version key)")
    config["hostname"] = hostname
    config["http"] = {**(config.get("http") or {}), "port": http_port}
    config.pop("https", None)  # the seeds serve Harbor over http behind nginx
    config["harbor_admin_password"] = admin_password
    config["database"] = {**(config.get("database") or {}), "password": db_password}
    config["data_volume"] = data_volume
    log = config.get("log") or {}
    config["log"] = {**log, "local": {**(log.get("local") or {}), "location": f"{data_volume}/logs"}}
    return HEADER + yaml.safe_dump(config, sort_keys=False, default_flow_style=False).encode()


def db_password_of(current: bytes | None) -> str | None:
    """The database password a harbor.yml already holds, so a rerun keeps it (Harbor's database keeps the first)."""
    try:
        value = (yaml.safe_load(current) or {}).get("database", {}).get("password") if current else None
    except (yaml.YAMLError, AttributeError):
        return None
    return str(value) if value else None


def _curl_quoted(value: str) -> str:
    """A value inside double quotes in a curl config file."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r") + '"'


@dataclass(frozen=True)
class Reply:
    status: int
    body: str

    def json(self):
        return json.loads(self.body) if self.body.strip() else None


def call(remote, port: int, method: str, path: str, password: str, body: dict | None = None) -> Reply:
    """One REST call to Harbor on the ops host, as admin. Nothing secret appears on a command line."""
    config = f"user = {_curl_quoted('admin:' + password)}\n"
    if body is not None:
        config += f"data = {_curl_quoted(json.dumps(body))}\nheader = \"Content-Type: application/json\"\n"
    url = f"http://127.0.0.1:{port}/api/v2.0{path}"
    head = "-I " if method == "HEAD" else f"-X {method} "
    result = remote.run(f"f=$(mktemp) || exit 1; curl -s -m 30 {head}-o \"$f\" -w '%{{http_code}}' -K - {shlex.quote(url)}; "
                        "rc=$?; echo; cat \"$f\"; rm -f \"$f\"; exit $rc", stdin=config.encode(), check=False,
                        what=f"Harbor API {method} {path}")
    status, _, reply = result.stdout.partition("\n")
    if result.rc != 0 or not status.strip().isdigit() or status.strip() == "000":
        raise HarborError(f"Harbor's API on 127.0.0.1:{port} does not answer ({method} {path}: curl exit "
                          f"{result.rc})")
    return Reply(int(status.strip()), reply)


def ensure_project(remote, port: int, password: str, project: str, public: bool = True) -> bool:
    """Create the project unless it exists; True when it was created. A project that exists is no change."""
    if project_exists(remote, port, password, project):
        return False
    made = call(remote, port, "POST", "/projects", password,
                {"project_name": project, "metadata": {"public": "true" if public else "false"}})
    _refuse_credentials(made)
    if made.status == 409:  # made meanwhile by someone else: it exists, which is what was wanted
        return False
    if made.status != 201:
        raise HarborError(f"creating project {project!r}: Harbor answered HTTP {made.status} {made.body.strip()[:200]}")
    return True


def project_exists(remote, port: int, password: str, project: str) -> bool:
    return project_found(call(remote, port, "HEAD", f"/projects?project_name={project}", password).status, project,
                         port)


def project_found(status: int | None, project: str, port: int) -> bool:
    """Harbor's answer to HEAD /projects?project_name=PROJECT: 200 it exists, 404 it does not; a refused
    password, no answer (None) or anything else stops the stage, saying which."""
    if status is None:
        raise HarborError(f"Harbor's API on 127.0.0.1:{port} does not answer (HEAD /projects)")
    _refuse_credentials(Reply(status, ""))
    if status not in (200, 404):
        raise HarborError(f"checking for project {project!r}: Harbor answered HTTP {status}")
    return status == 200


def project_probe(port: int, password: str, project: str) -> Probe:
    """The HTTP status of HEAD /projects?project_name=PROJECT as admin, None when nothing answers. The
    credentials reach curl as the probe's input, on stdin, never on a command line."""
    url = f"http://127.0.0.1:{port}/api/v2.0/projects?project_name={project}"

    def parse(text: str) -> int | None:
        status = text.strip()
        return int(status) if status.isdigit() and status != "000" else None
    return Probe("harbor_project", f"curl -s -m 5 -I -o /dev/null -w '%{{http_code}}' -K - {shlex.quote(url)}", parse,
                 input=f"user = {_curl_quoted('admin:' + password)}\n".encode())


def _refuse_credentials(reply: Reply) -> None:
    if reply.status in (401, 403):
        raise HarborError("Harbor refuses the admin password from the secret source. Harbor keeps the admin "
                          "password it was first installed with: change it in Harbor (Administration > Users) "
                          "or set registry_password to the one Harbor has")
