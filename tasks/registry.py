"""The image registry on the ops host behind nginx at harbor.od.com, the seeds' "部署harbor仓库".

nginx serves harbor.od.com on port 80 and proxies to the registry on 127.0.0.1:180 (client_max_body_size
1000m, the Host header passed through), its configuration checked with `nginx -t` before a reload.

Backend `harbor` (real deployments): Harbor's offline installer, copied to the ops host by the operator, is
unpacked to /opt/harbor-vX.Y.Z with /opt/harbor linked to it (as the seeds do), harbor.yml is made from the
installer's template with the seeds' settings, install.sh is run when harbor.yml changed or Harbor is not
healthy, and the project `public` is created through Harbor's REST API.

Backend `distribution` (the registry component Harbor itself embeds, Debian's docker-registry): htpasswd
(bcrypt) auth with the admin credentials from the secret source, storage under /data, listening on
127.0.0.1:180. It is what the lab runs: Harbor's own images cannot be fetched without internet.
"""

from __future__ import annotations

import hashlib
import hmac
import shlex
from dataclasses import dataclass

from groundwork import facts as probes
from groundwork import harbor
from groundwork.changes import (ActionChange, Change, CommandChange, DesiredFile, StageError,
                                activate_service, create_directories, file_changes, journal_tail,
                                value_diff, wait_until, wanted_digests)
from groundwork.context import RunContext
from groundwork.facts import Facts
from groundwork.inventory import HostModel
from groundwork.platforms import install_missing, platform_for
from groundwork.render import render
from groundwork.settings import Registry
from groundwork.stages import Stage

ADMIN = "admin"  # Harbor's admin user, as in the seeds
# An unprivileged registry listening below 1024 needs this capability.
DROPIN = b"# Managed by groundwork (registry)\n[Service]\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n"


@dataclass(frozen=True)
class RegistryLayout:
    """The registry component Harbor embeds (distribution), and what the harbor backend needs of the OS."""
    packages: tuple[str, ...]  # the registry, and htpasswd to make its bcrypt entries
    service: str
    config: str
    htpasswd: str
    group: str  # the registry's group, which must read htpasswd
    compose_packages: tuple[str, ...]  # for Harbor's install.sh
    front_packages: tuple[str, ...] = ("nginx", "curl")


REGISTRY = {
    "debian": RegistryLayout(("docker-registry", "apache2-utils"), "docker-registry", "/etc/docker/registry/config.yml",
                             "/etc/docker/registry/htpasswd", "docker-registry", ("docker-compose",)),
    # EL's distribution package (not exercised in the lab, which is Debian)
    "el": RegistryLayout(("docker-distribution", "httpd-tools"), "docker-distribution",
                         "/etc/docker-distribution/registry/config.yml", "/etc/docker-distribution/registry/htpasswd",
                         "root", ("docker-compose-plugin",)),
}
INSTALL_TIMEOUT = 1800.0  # install.sh loads about 2 GB of images before starting them


def unit_dropin(layout: RegistryLayout) -> str:
    return f"/etc/systemd/system/{layout.service}.service.d/groundwork.conf"


def vhost_path(name: str) -> str:
    return f"/etc/nginx/conf.d/{name}.conf"


def harbor_home(reg: Registry) -> tuple[str, str]:
    """(/opt/harbor-vX.Y.Z, /opt/harbor): where the installer is unpacked and the seeds' link to it."""
    return (f"{reg.harbor.install_root}/harbor-{harbor.installer_version(reg.harbor.installer)}",
            f"{reg.harbor.install_root}/harbor")


def desired_files(reg: Registry, layout: RegistryLayout) -> list[DesiredFile]:
    """nginx's virtual host, and for the distribution backend the registry's configuration and unit drop-in."""
    vhost = DesiredFile(vhost_path(reg.name), render("registry/nginx-vhost.conf.j2", name=reg.name, port=reg.http_port))
    if reg.backend == "harbor":
        return [vhost]
    return [vhost, DesiredFile(layout.config, render("registry/distribution.yml.j2", name=reg.name, port=reg.http_port,
                                                     data_dir=reg.data_dir, htpasswd=layout.htpasswd)),
            DesiredFile(unit_dropin(layout), DROPIN)]


def stage_probes(host: HostModel, password: str) -> list[probes.Probe]:
    reg = host.settings.registry
    layouts = list(REGISTRY.values())
    candidates = [desired_files(reg, layout) for layout in layouts]
    found = [probes.os_info(),
             probes.packages(sorted({p for r in layouts
                                     for p in (*r.packages, *r.compose_packages, *r.front_packages)})),
             probes.services(sorted({"nginx", *(r.service for r in layouts)})),
             probes.files(sorted({w.path for files in candidates for w in files}),
                          read_unless=wanted_digests(*candidates))]
    if reg.backend == "harbor":
        return found + harbor_probes(reg, password)
    # bcrypt salts every hash anew: the file is kept while it still verifies the password.
    return found + [probes.paths_exist([f"{reg.data_dir}/registry"]),
                    probes.password_checks(sorted({r.htpasswd for r in layouts}), ADMIN, password)]


def installs(reg) -> dict[str, list[str]]:
    """By OS family: the backend's packages (Harbor's installer's, or the registry's) and nginx in front."""
    return {family: [*(layout.compose_packages if reg.backend == "harbor" else layout.packages),
                     *layout.front_packages] for family, layout in REGISTRY.items()}


def decide(host: HostModel, facts: Facts, password: str) -> list[Change]:
    """Install what is missing, the backend, then nginx in front of it, reloaded only when it changed."""
    reg = host.settings.registry
    platform = platform_for(facts["os"])
    layout = REGISTRY[platform.family]
    wanted = installs(reg)[platform.family]
    missing = [p for p in wanted if facts["packages"].get(p) is None]
    plan: list[Change] = install_missing(platform, missing, facts["packages"])
    vhost, *backend_files = desired_files(reg, layout)
    if reg.backend == "harbor":
        plan += harbor_plan(host, reg, facts, password)
    else:
        plan += _distribution_plan(reg, layout, facts, backend_files, password, missing)
    vhost_changes = file_changes([vhost], facts["files"])
    plan += vhost_changes
    running = facts["services"].running("nginx")
    if vhost_changes or "nginx" in missing or not facts["services"].settled("nginx"):
        plan.append(activate_service("nginx", "check nginx's configuration and reload it",
                                     value_diff("nginx", "previous configuration", f"serving {reg.name} on port 80"),
                                     check="nginx -t -q", reload=running and "nginx" not in missing))
    return plan


def notes(host: HostModel, ctx: RunContext) -> list[str]:
    reg = host.settings.registry
    backend = (f"Harbor {harbor.installer_version(reg.harbor.installer)}, data {reg.data_dir}"
               if reg.backend == "harbor" else f"distribution, storage {reg.data_dir}/registry")
    return [f"{reg.name} on port 80 -> registry on 127.0.0.1:{reg.http_port} ({backend})"]


def derived_secrets(host: HostModel, facts: Facts, ctx: RunContext) -> list[str]:
    """Harbor's database password, derived from the registry's or read from harbor.yml."""
    if host.settings.registry.backend != "harbor":
        return []
    return [harbor_db_password(host, facts, ctx.secrets["registry_password"])]


def _distribution_plan(reg: Registry, layout: RegistryLayout, facts: Facts, files: list[DesiredFile], password: str,
                       missing: list[str]) -> list[Change]:
    plan: list[Change] = create_directories([f"{reg.data_dir}/registry"], facts["paths"], owner=layout.group)
    registry_changes: list[Change] = list(file_changes(files, facts["files"]))
    verified = facts["password_checks"].get(layout.htpasswd)  # None: there is no such file
    if not verified:
        registry_changes.append(_htpasswd_change(layout, password, exists=verified is not None))
    plan += registry_changes
    if registry_changes or missing or not facts["services"].settled(layout.service):
        unit = shlex.quote(layout.service)
        answers = wait_until(f"curl -s -o /dev/null http://127.0.0.1:{reg.http_port}/v2/", 10,
                             f"the registry does not answer on 127.0.0.1:{reg.http_port}",
                             diagnose=journal_tail(layout.service))
        plan.append(activate_service(layout.service, "restart the registry and wait until it answers",
                                     value_diff("registry", "previous configuration",
                                                f"serving on 127.0.0.1:{reg.http_port}"),
                                     check="systemctl daemon-reload", waits=[answers],
                                     recover=["systemctl daemon-reload", f"systemctl restart {unit}"]))
    return plan


def _htpasswd_change(layout: RegistryLayout, password: str, exists: bool) -> Change:
    """A new bcrypt entry for the admin, made on the host from the password on stdin, written 0640."""
    def write(remote) -> None:
        line = remote.run(f"htpasswd -n -B -i {ADMIN}", stdin=password.encode(), sensitive_output=True).stdout
        remote.write_file(layout.htpasswd, line.strip().encode() + b"\n", mode="0640", group=layout.group,
                          sensitive=True)
    return ActionChange(f"{'replace' if exists else 'create'} {layout.htpasswd}",
                        value_diff(layout.htpasswd, "entry no longer matching the password" if exists else None,
                                   f"bcrypt entry for {ADMIN} (content never shown)"), write)


def database_password(registry_password: str, host: str) -> str:
    """Harbor's database password for a first install: derived from the registry secret, so a plan shows the
    same harbor.yml digest every time and no second secret is needed; never written anywhere but harbor.yml."""
    return hmac.new(registry_password.encode(), f"harbor-database:{host}".encode(), hashlib.sha256).hexdigest()[:32]


def harbor_probes(reg: Registry, password: str) -> list[probes.Probe]:
    home, link = harbor_home(reg)
    return [probes.paths_exist([reg.harbor.installer, f"{home}/install.sh", reg.data_dir, f"{reg.data_dir}/logs"]),
            probes.links([link]), probes.harbor_health(reg.http_port),
            # harbor.yml holds both passwords; the template decides its content: both read whole, never logged
            probes.files([f"{home}/harbor.yml.tmpl", f"{home}/harbor.yml"], read_unless={}, key="harbor_yml",
                         sensitive=True),
            harbor.project_probe(reg.http_port, password, reg.project)]


def harbor_db_password(host: HostModel, facts: Facts, password: str) -> str:
    """The one harbor.yml keeps (Harbor's database keeps its first), else derived for a first install."""
    current = facts["harbor_yml"].get(f"{harbor_home(host.settings.registry)[0]}/harbor.yml")
    return harbor.db_password_of(current and current.content) or database_password(password, host.name)


def harbor_plan(host: HostModel, reg: Registry, facts: Facts, password: str) -> list[Change]:
    installer = reg.harbor.installer
    home, link = harbor_home(reg)
    unpacked = f"{home}/install.sh" in facts["paths"]
    if not unpacked and installer not in facts["paths"]:
        raise StageError(f"Harbor's offline installer {installer} is not on {host.name}: copy it there first "
                         f"(scp {installer.rsplit('/', 1)[-1]} {host.name}:{installer}), then run again")
    plan: list[Change] = []
    if not unpacked:
        root = shlex.quote(reg.harbor.install_root)
        plan.append(CommandChange(f"unpack {installer} to {home}", [
            f"mkdir -p {root} && tmp=$(mktemp -d {root}/.harbor-unpack-XXXXXX) && "
            f"tar xzf {shlex.quote(installer)} -C \"$tmp\" && mv \"$tmp/harbor\" {shlex.quote(home)} && rmdir \"$tmp\""],
            value_diff(home, None, f"Harbor's installer, {harbor.installer_version(installer)}")))
    current_link = facts["links"].get(link)
    if current_link == "":
        raise StageError(f"{link} on {host.name} is a directory or file, not a link to {home}: move it aside "
                         f"(the seeds link {link} to the unpacked version), then run again")
    if current_link != home:
        plan.append(CommandChange(f"link {link} to {home}", [f"ln -sfn {shlex.quote(home)} {shlex.quote(link)}"],
                                  value_diff(link, current_link and f"-> {current_link}", f"-> {home}")))
    for folder in (reg.data_dir, f"{reg.data_dir}/logs"):
        plan += create_directories([folder], facts["paths"])

    yml_changes = _harbor_yml_changes(host, reg, facts, unpacked, password)
    plan += yml_changes
    healthy = facts["harbor_health"] == "healthy"
    if yml_changes or not healthy:
        health = f"curl -s -m 5 http://127.0.0.1:{reg.http_port}/api/v2.0/health"
        install = [f"cd {shlex.quote(link)} && ./install.sh",
                   wait_until(f"{health} | grep -q '\"status\": *\"healthy\"'", 300,
                              "Harbor did not report healthy within 5 minutes:", diagnose=f"{health} >&2", interval=2)]
        plan.append(CommandChange("run Harbor's install.sh and wait until Harbor is healthy", install,
            value_diff("Harbor", facts["harbor_health"] or "not running", f"healthy on 127.0.0.1:{reg.http_port}"),
            # install.sh prepares from harbor.yml and starts the containers: with the previous harbor.yml
            # put back, running it again brings Harbor back as it was.
            undo_files_on_failure=True, recover=install, timeout=INSTALL_TIMEOUT))
    # The project lives in Harbor's database under the data volume: a reinstall keeps it.
    if not (healthy and harbor.project_found(facts["harbor_project"], reg.project, reg.http_port)):
        def create(r) -> None:
            harbor.ensure_project(r, reg.http_port, password, reg.project)
        plan.append(ActionChange(f"create Harbor project {reg.project!r} (public) through the REST API",
                                 value_diff(f"project {reg.project}", None, "public"), create))
    return plan


def _harbor_yml_changes(host: HostModel, reg: Registry, facts: Facts, unpacked: bool, password: str) -> list[Change]:
    """harbor.yml from the installer's template; it holds both passwords, so its content is never shown."""
    yml = f"{harbor_home(reg)[0]}/harbor.yml"

    def desired(template: bytes) -> DesiredFile:
        return DesiredFile(yml, harbor.harbor_yml(template, hostname=reg.name, http_port=reg.http_port,
                                                   data_volume=reg.data_dir, admin_password=password,
                                                   db_password=harbor_db_password(host, facts, password)),
                           mode="600", sensitive=True)

    if not unpacked:  # the template is known once the installer is unpacked: read then, as a step of the plan
        def write(r) -> None:
            found = r.read_files([f"{yml}.tmpl"])[f"{yml}.tmpl"]
            if found is None:
                raise StageError(f"{yml}.tmpl is missing from the unpacked installer")
            want = desired(found)
            r.write_file(want.path, want.content, mode=want.mode, sensitive=True)
        return [ActionChange(f"create {yml} from the installer's harbor.yml.tmpl",
                             value_diff(yml, None, f"hostname {reg.name}, http port {reg.http_port}, no https, "
                                        f"data_volume {reg.data_dir}, logs {reg.data_dir}/logs, passwords from "
                                        "the secret source (content never shown)"), write)]
    template = facts["harbor_yml"].get(f"{yml}.tmpl")
    if template is None:
        raise StageError(f"{yml}.tmpl is missing on {host.name}: the installer under {yml.rsplit('/', 1)[0]} is "
                         "incomplete; remove that folder and run again to unpack it anew")
    return file_changes([desired(template.content)], facts["harbor_yml"])


STAGE = Stage(name="registry", title="registry behind nginx at harbor.od.com", groups=("ops",),
              needs=("host_prep", "docker", "resolver"), installs=lambda host: installs(host.settings.registry),
              secrets=frozenset({"registry_password"}),
              probes=lambda host, ctx: stage_probes(host, ctx.secrets["registry_password"]),
              read_secrets=derived_secrets, notes=notes,
              decide=lambda host, facts, ctx, notes: decide(host, facts, ctx.secrets["registry_password"]))
