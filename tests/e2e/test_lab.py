"""The local lab itself: real hosts, isolated networks, and an `up` that is safe to run again."""


from lab import lab as lab_module
from tests.e2e.conftest import HOSTS, lab_command


def nspawn_pids() -> dict[str, str]:
    return {h: (lab_module.LAB_DIR / "hosts" / h / "nspawn.pid").read_text() for h in HOSTS}


def test_every_host_runs_systemd_and_sshd_on_its_address_without_a_default_route(lab):
    for host, address in HOSTS.items():
        out = lab.ssh(host, "systemctl is-system-running; systemctl --failed --no-legend | wc -l; "
                            "ip -4 -o addr show eth0; ip route; stat -f -c %T /data; test -s /srv/repo/Packages "
                            "&& echo repo; systemctl is-active ssh")
        lines = out.splitlines()
        assert lines[0] == "running" and lines[1] == "0", out
        assert f"inet {address}/24" in lines[2]
        assert "default" not in out
        assert "overlay" not in lines[-3]  # /data is a real filesystem, for docker's overlay2
        assert lines[-2:] == ["repo", "active"]


def test_hosts_have_their_own_identity(lab):
    ids = {h: lab.ssh(h, "cat /etc/machine-id; cat /etc/ssh/ssh_host_ed25519_key.pub") for h in HOSTS}
    assert len(set(ids.values())) == len(HOSTS)
    known = lab_module.known_hosts().read_text()
    for host, address in HOSTS.items():
        assert f"{address} ssh-ed25519 {ids[host].split()[2]}" in known


def test_up_again_leaves_running_hosts_alone_and_revives_a_dead_one(lab):
    before = nspawn_pids()
    lab_command("up")
    assert nspawn_pids() == before

    lab.kill("hdss7-12")
    assert lab.ssh("hdss7-12", "true", check=False) == ""
    lab_command("up")
    after = nspawn_pids()
    assert after["hdss7-12"] != before["hdss7-12"]
    assert {h: p for h, p in after.items() if h != "hdss7-12"} == {h: p for h, p in before.items() if h != "hdss7-12"}
    assert lab.ssh("hdss7-12", "systemctl is-active ssh").strip() == "active"


def test_status_reports_each_host(lab):
    out = lab_command("status").stdout
    for host, address in HOSTS.items():
        line = next(l for l in out.splitlines() if l.startswith(host + " "))
        assert address in line and "running" in line and "ssh open" in line
