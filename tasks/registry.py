"""The image registry on the ops host behind nginx at harbor.od.com, the seeds' "部署harbor仓库".

nginx serves harbor.od.com on port 80 and proxies to the registry on 127.0.0.1:180 (client_max_body_size
1000m, the Host header passed through), its configuration checked with `nginx -t` before a reload.

Backend `distribution` (the registry component Harbor itself embeds, Debian's docker-registry): htpasswd
(bcrypt) auth with the admin credentials from the secret source, storage under /data, listening on
127.0.0.1:180. It is what the lab runs: Harbor's own images cannot be fetched without internet. The `harbor`
backend (the offline installer) is not implemented yet; choosing it fails the stage with that message.
"""

from __future__ import annotations

import shlex

from groundwork import facts as probe
from groundwork.changes import (Change, CommandChange, DesiredFile, StageError, StageReport, apply_plan,
                                file_changes, value_diff)
from groundwork.inventory import HostModel
from groundwork.platforms import install_missing, platform_for
from groundwork.render import render
from groundwork.stages import RunContext, Stage

ADMIN = "admin"  # Harbor's admin user, as in the seeds
CONFIG = "/etc/docker/registry/config.yml"
HTPASSWD = "/etc/docker/registry/htpasswd"
UNIT_DROPIN = "/etc/systemd/system/docker-registry.service.d/groundwork.conf"
PACKAGES = {"debian": ["docker-registry", "apache2-utils", "nginx", "curl"], "el": ["docker-distribution", "httpd-tools", "curl",
                                                                            "nginx"]}
SERVICE = "docker-registry"
# An unprivileged registry listening below 1024 needs this capability.
DROPIN = b"# Managed by groundwork (registry)\n[Service]\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n"


def vhost_path(name: str) -> str:
    return f"/etc/nginx/conf.d/{name}.conf"


def run(remote, host: HostModel, ctx: RunContext) -> StageReport:
    reg = host.settings.registry
    if reg.backend == "harbor":
        raise StageError("registry.backend harbor (the offline installer) is not implemented yet; "
                         "use backend distribution")
    password = ctx.secrets["registry_password"]
    facts = remote.gather([probe.os_info(), probe.packages(sorted({p for v in PACKAGES.values() for p in v})),
                           probe.services([SERVICE, "nginx"]),
                           probe.files([CONFIG, HTPASSWD, UNIT_DROPIN, vhost_path(reg.name)]),
                           probe.paths_exist([f"{reg.data_dir}/registry"])])
    platform = platform_for(facts["os"])
    missing = [p for p in PACKAGES[platform.family] if facts["packages"].get(p) is None]
    plan: list[Change] = install_missing(platform, missing, facts["packages"])
    storage = f"{reg.data_dir}/registry"
    if storage not in facts["paths"]:
        plan.append(CommandChange(f"create {storage}", [f"mkdir -p {shlex.quote(storage)} && "
                                                        f"chown docker-registry: {shlex.quote(storage)}"],
                                  value_diff(storage, None, "directory of docker-registry")))

    # bcrypt salts every hash anew: keep the file while it still verifies the password, else make a new one.
    htpasswd_ok = facts["files"].get(HTPASSWD) is not None and remote.run(
        f"htpasswd -v -i {HTPASSWD} {ADMIN}", stdin=password.encode(), check=False).ok
    registry_files = [DesiredFile(CONFIG, render("registry/distribution.yml.j2", name=reg.name, port=reg.http_port,
                                                 data_dir=reg.data_dir, htpasswd=HTPASSWD)),
                      DesiredFile(UNIT_DROPIN, DROPIN)]
    registry_changes = file_changes(remote, registry_files, facts["files"])
    if not htpasswd_ok:
        registry_changes.append(_htpasswd_change(password, exists=facts["files"].get(HTPASSWD) is not None))
    plan += registry_changes
    service = facts["services"].get(SERVICE)
    if registry_changes or missing or not (service and service.active == "active"):
        plan.append(CommandChange("restart the registry and wait until it answers", [
            "systemctl daemon-reload", f"systemctl enable {SERVICE} >/dev/null 2>&1; systemctl restart {SERVICE}",
            f"for i in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:{reg.http_port}/v2/ && exit 0; "
            f"sleep 0.2; done; journalctl -u {SERVICE} -n 5 --no-pager -q -o cat >&2; exit 1"],
            value_diff("registry", "previous configuration", f"serving on 127.0.0.1:{reg.http_port}"),
            undo_files_on_failure=True, recover=["systemctl daemon-reload", f"systemctl restart {SERVICE}"]))

    vhost = file_changes(remote, [DesiredFile(vhost_path(reg.name), render(
        "registry/nginx-vhost.conf.j2", name=reg.name, port=reg.http_port))], facts["files"])
    plan += vhost
    nginx = facts["services"].get("nginx")
    if vhost or "nginx" in missing or not (nginx and nginx.active == "active"):
        reload = "systemctl reload nginx" if nginx and nginx.active == "active" and "nginx" not in missing \
            else "systemctl enable nginx >/dev/null 2>&1; systemctl restart nginx"
        plan.append(CommandChange("check nginx's configuration and reload it", ["nginx -t -q", reload],
                                  value_diff("nginx", "previous configuration", f"serving {reg.name} on port 80"),
                                  undo_files_on_failure=True,
                                  recover=["systemctl is-active --quiet nginx || systemctl restart nginx"]))
    report = StageReport(notes=[f"{reg.name} on port 80 -> registry on 127.0.0.1:{reg.http_port}, "
                                f"storage {storage}"])
    return apply_plan(remote, plan, ctx.dry_run, report)


def _htpasswd_change(password: str, exists: bool) -> Change:
    """A new bcrypt entry for the admin, made on the host from the password on stdin, written 0640."""
    from groundwork.changes import ActionChange

    def write(remote) -> None:
        line = remote.run(f"htpasswd -n -B -i {ADMIN}", stdin=password.encode(), sensitive_output=True).stdout
        remote.write_file(HTPASSWD, line.strip().encode() + b"\n", mode="0640", group="docker-registry",
                          sensitive=True)
    return ActionChange(f"{'replace' if exists else 'create'} {HTPASSWD}",
                        value_diff(HTPASSWD, "entry no longer matching the password" if exists else None,
                                   f"bcrypt entry for {ADMIN} (content never shown)"), write)


STAGE = Stage(name="registry", title="registry behind nginx at harbor.od.com", groups=("ops",), run=run,
              secrets=frozenset({"registry_password"}))
