"""Docker on the master_compute and ops hosts, the seeds' "部署docker环境".

/etc/docker/daemon.json is generated as JSON from the inventory (never appended text): data-root /data/docker,
overlay2, the insecure registries, the registry mirrors, the host's own bip 172.7.NN.1/24, the systemd cgroup
driver and live-restore, with extra options from inventory merged over them. docker is restarted only when
that file changed, and the stage waits until docker answers. If docker does not come back with the new file,
the previous file is put back, docker restarted on it, and the stage fails with docker's own error lines.
"""

from __future__ import annotations

import json

from groundwork import facts as probes
from groundwork.changes import (Change, DesiredFile, activate_service, create_directories, file_changes, value_diff,
                                wait_until, wanted_digests)
from groundwork.inventory import HostModel
from groundwork.platforms import candidate_packages, install_missing, platform_for
from groundwork.stages import Stage
from groundwork.tasks.kubernetes import node_name, node_ready, wait_for

DAEMON_JSON = "/etc/docker/daemon.json"
# docker answers within this many seconds of a restart, or the restart counts as failed.
WAIT_SECONDS = 60
WAIT_FOR_DOCKER = wait_until("docker info >/dev/null 2>&1", WAIT_SECONDS, "docker did not answer after the restart")
# docker's own words when it refuses a configuration, from its journal.
# (journald may take a moment to have them; systemd's own "Failed to start" lines say nothing new.)
DOCKER_ERRORS = ("sleep 1; journalctl -u docker -n 60 --no-pager -q -o cat "
                 "| grep -iE 'error|fail|invalid|unable|directive' "
                 "| grep -vE '^(docker.service|Failed to start|Stopp)|level=(info|debug|warning)' "
                 "| awk '!seen[$0]++' | tail -n 3 >&2")


def daemon_config(host: HostModel) -> dict:
    """The seeds' daemon.json for this host, in their order, extra options from inventory merged over it."""
    d = host.settings.docker
    config = {"data-root": d.data_root, "storage-driver": d.storage_driver,
              "insecure-registries": host.settings.insecure_registries, "registry-mirrors": d.registry_mirrors,
              "bip": str(host.docker_bip), "exec-opts": [f"native.cgroupdriver={d.cgroup_driver}"],
              "live-restore": d.live_restore}
    config.update(d.extra_options)
    return config


def render_daemon_json(host: HostModel) -> bytes:
    return (json.dumps(daemon_config(host), indent=2) + "\n").encode()


def desired_files(host: HostModel) -> list[DesiredFile]:
    return [DesiredFile(DAEMON_JSON, render_daemon_json(host))]


def stage_probes(host: HostModel, family: str | None = None) -> list[probes.Probe]:
    packages = candidate_packages(host.settings.docker.packages, family)
    return [probes.os_info(), probes.packages(packages), probes.services(["docker", "kubelet"]),
            probes.files([DAEMON_JSON], read_unless=wanted_digests(desired_files(host))),
            probes.paths_exist([host.settings.docker.data_root, "/etc/docker"])]


def _node_ready_again(host: HostModel, facts) -> list[str]:
    """Where the kubelet runs on docker, a restart of docker makes the node NotReady for a while: the stage
    ends once the kubelet reports it Ready again, so that nothing after it (the verification) finds it not."""
    if not facts["services"].running("kubelet"):
        return []
    return [wait_for("kubelet", node_ready(host, since="docker"),
                     f"the node {node_name(host)} is not Ready again after docker restarted")]


def decide(host: HostModel, facts) -> list[Change]:
    platform = platform_for(facts["os"])
    install = install_missing(platform, host.settings.docker.packages.get(platform.family, []), facts["packages"])
    plan: list[Change] = list(install)
    plan += create_directories([host.settings.docker.data_root, "/etc/docker"], facts["paths"],
                               summary="create docker's folders")
    changes = file_changes(desired_files(host), facts["files"])
    plan += changes
    running = facts["services"].running("docker")
    if changes or not facts["services"].settled("docker") or install:
        plan.append(activate_service(
            "docker", "restart docker and wait until it answers",
            value_diff("docker", "running on the previous configuration" if running else "not running",
                       "running on the configuration above"),
            start=f"systemctl enable docker >/dev/null 2>&1; systemctl restart docker || {{ {DOCKER_ERRORS}; exit 1; }}",
            waits=[WAIT_FOR_DOCKER, *_node_ready_again(host, facts)],
            recover=["systemctl reset-failed docker; systemctl restart docker", WAIT_FOR_DOCKER]))
    return plan


def notes(host: HostModel) -> list[str]:
    said = [f"bip {host.docker_bip}, data-root {host.settings.docker.data_root}"]
    strangers = host.settings.insecure_registries[1:]
    if strangers:
        said.append(f"docker trusts {', '.join(strangers)} over plain http, as the inventory asks: no TLS, "
                    "so anyone on the path to them can serve this host images")
    return said


STAGE = Stage(name="docker", title="docker with the seeds' daemon.json", groups=("master_compute", "ops"),
              needs=("host_prep", "resolver"), installs=lambda host: host.settings.docker.packages,
              probes=lambda host, ctx: stage_probes(host, ctx.family(host.name)),
              decide=lambda host, facts, ctx, said: decide(host, facts), notes=lambda host, ctx: notes(host))
