"""Docker end to end on hdss7-21, hdss7-22 and hdss7-200: the seeds' daemon.json, restarts only when needed."""

import json

from tests.e2e.conftest import inventory_copy

DOCKER_HOSTS = ["hdss7-200", "hdss7-21", "hdss7-22"]


def started(lab, host: str) -> str:
    return lab.ssh(host, "systemctl show -p ExecMainStartTimestampMonotonic docker").strip()


def test_docker_runs_with_the_seeds_settings_and_the_host_bip(converged):
    lab = converged
    info = json.loads(lab.ssh("hdss7-22", "docker info --format '{{json .}}'"))
    assert info["CgroupDriver"] == "systemd" and info["DockerRootDir"] == "/data/docker"
    assert info["Driver"] == "overlay2" and info["LiveRestoreEnabled"] is True
    assert info["RegistryConfig"]["IndexConfigs"]["harbor.od.com"]["Secure"] is False
    assert "quay.io" not in info["RegistryConfig"]["IndexConfigs"]  # no stranger over plain http by default
    assert "inet 172.7.22.1/24" in lab.ssh("hdss7-22", "ip -4 -o addr show docker0")
    daemon = json.loads(lab.ssh("hdss7-21", "cat /etc/docker/daemon.json"))
    assert daemon == {"data-root": "/data/docker", "storage-driver": "overlay2",
                      "insecure-registries": ["harbor.od.com"],
                      "registry-mirrors": [], "bip": "172.7.21.1/24", "exec-opts": ["native.cgroupdriver=systemd"],
                      "live-restore": True}


def test_second_run_does_not_restart_docker(converged, runbook):
    lab = converged
    before = {h: started(lab, h) for h in DOCKER_HOSTS}
    run = runbook()
    assert run.rc == 0, run
    assert set(run.statuses("docker").values()) == {"ok"}
    assert {h: started(lab, h) for h in DOCKER_HOSTS} == before


def test_hand_edited_bip_is_seen_by_dry_run_on_that_host_only_and_put_back(converged, runbook):
    lab = converged
    lab.ssh("hdss7-21", "sed -i 's#172.7.21.1/24#172.7.99.1/24#' /etc/docker/daemon.json && systemctl restart docker")
    plan = runbook("--dry-run")
    assert plan.rc == 0, plan
    assert [h for h, s in plan.statuses("docker").items() if s == "changed"] == ["hdss7-21"]
    diff = plan.entry("hdss7-21", "docker")["changes"][0]["diff"]
    assert '-  "bip": "172.7.99.1/24",' in diff and '+  "bip": "172.7.21.1/24",' in diff
    assert all(not e["changes"] for e in plan.record["entries"] if e["host"] != "hdss7-21")

    fixed = runbook()
    assert fixed.rc == 0, fixed
    assert "inet 172.7.21.1/24" in lab.ssh("hdss7-21", "ip -4 -o addr show docker0")


def test_an_option_dockerd_refuses_leaves_docker_on_its_previous_configuration(converged, runbook, tmp_path):
    lab = converged
    def bogus_option_on_21(name, data):
        if name == "hosts.yaml":
            data["hdss7-21"]["data"] = {"docker": {"extra_options": {"bogus-option": True}}}
    folder = inventory_copy(tmp_path, bogus_option_on_21)
    before = lab.ssh("hdss7-21", "cat /etc/docker/daemon.json")

    run = runbook("-i", folder, "--group", "master_compute", "--no-verify")
    assert run.rc == 4, run
    assert run.statuses("docker") == {"hdss7-21": "failed", "hdss7-22": "ok"}
    error = run.entry("hdss7-21", "docker")["error"]
    assert "the following directives don't match any configuration option: bogus-option" in error
    assert "previous files restored (/etc/docker/daemon.json)" in error
    assert lab.ssh("hdss7-21", "cat /etc/docker/daemon.json") == before
    assert lab.ssh("hdss7-21", "systemctl is-active docker; docker info --format '{{.DockerRootDir}}'").split() == [
        "active", "/data/docker"]
