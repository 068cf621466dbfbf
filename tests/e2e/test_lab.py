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


def test_the_kubernetes_build_is_laid_out_as_upstreams_tarball_and_reports_v1_20_2(lab, tmp_path):
    """lab/setup's build from Debian's source package: what an operator would get from the official
    kubernetes-server-linux-amd64.tar.gz, checked as they would check it (sha256sum -c, --version)."""
    import subprocess
    import tarfile

    from lab.kubernetes import SERVER_BINARIES, TARBALL, kubernetes_dir

    folder = kubernetes_dir()
    assert subprocess.run(["sha256sum", "-c", f"{TARBALL}.sha256"], cwd=folder, capture_output=True).returncode == 0
    with tarfile.open(folder / TARBALL) as tar:
        assert sorted(tar.getnames()) == sorted(f"kubernetes/server/bin/{b}" for b in SERVER_BINARIES)
        tar.extractall(tmp_path, filter="data")
    for binary in SERVER_BINARIES:
        done = subprocess.run([str(tmp_path / "kubernetes/server/bin" / binary), "--version"], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0 and "v1.20.2" in done.stdout, (binary, done.stdout, done.stderr)
    pause = subprocess.run(["ldd", str(folder / "pause")], capture_output=True, text=True)
    assert "not a dynamic executable" in pause.stdout + pause.stderr, pause  # static: it runs in an empty image
