"""Docker, checked from `docker info` as JSON on each docker host, and docker0's address."""

import json

from groundwork.verify import reads

GROUPS = ("master_compute", "ops")
DOCKER_INFO = "docker info --format '{{json .}}'"
DOCKER0 = "ip -4 -o addr show docker0"


def docker_info(probe) -> dict:
    result = probe.run(DOCKER_INFO)
    assert result.rc == 0, f"docker does not answer: {result.stderr.strip()}"
    return json.loads(result.stdout)


@reads(DOCKER_INFO)
def test_docker_runs_with_the_seeds_settings(host, probe):
    """docker is up: cgroup driver systemd, storage driver overlay2, root dir /data/docker, live restore on"""
    info = docker_info(probe)
    d = host.settings.docker
    found = {"cgroup driver": info.get("CgroupDriver"), "storage driver": info.get("Driver"),
             "root dir": info.get("DockerRootDir"), "live restore": info.get("LiveRestoreEnabled")}
    wanted = {"cgroup driver": d.cgroup_driver, "storage driver": d.storage_driver, "root dir": d.data_root,
              "live restore": d.live_restore}
    assert info.get("ServerVersion") and found == wanted, f"found {found}, wanted {wanted}"


@reads(DOCKER_INFO)
def test_plain_http_only_to_the_registry_and_those_the_inventory_lists(host, probe):
    """docker reaches harbor.od.com over plain http, and no other registry unless the inventory lists it"""
    configs = docker_info(probe).get("RegistryConfig", {}).get("IndexConfigs", {})
    insecure = sorted(name for name, config in configs.items() if not config.get("Secure", True))
    wanted = sorted(host.settings.insecure_registries)
    assert insecure == wanted, (f"docker trusts {insecure} over plain http, wanted {wanted} (plain http: anyone "
                                "on the path can serve images)")


@reads(DOCKER0)
def test_docker0_carries_the_host_bip(host, probe):
    """docker0 carries the host's bip 172.7.NN.1/24"""
    out = probe.run(DOCKER0).stdout
    assert f"inet {host.docker_bip}" in out, f"docker0: {out.strip() or 'missing'}; wanted {host.docker_bip}"
