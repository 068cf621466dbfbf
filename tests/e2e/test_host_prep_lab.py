"""host_prep and the runbook CLI end to end: real hosts over SSH, checked with the plain ssh client."""

from tests.e2e.conftest import HOSTS, inventory_copy


def test_full_run_prepares_every_host_then_a_second_run_changes_nothing(lab, runbook):
    first = runbook()
    assert first.rc == 0, first
    assert set(first.statuses()) == set(HOSTS)
    assert all(status in ("changed", "ok") for status in first.statuses().values()), first

    for host in HOSTS:
        out = lab.ssh(host, "hostname; cat /etc/hostname; "
                            "dpkg-query -W -f='${Package} ${db:Status-Abbrev}\\n' wget nmap dos2unix bind9-dnsutils; "
                            "sysctl -n net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables net.ipv4.conf.all.rp_filter; "
                            "cat /etc/sysctl.d/docker.conf /etc/apt/sources.list.d/groundwork-local.list")
        lines = out.splitlines()
        assert lines[0] == lines[1] == f"{host}.host.com"
        assert sorted(lines[2:6]) == ["bind9-dnsutils ii ", "dos2unix ii ", "nmap ii ", "wget ii "]
        assert lines[6:9] == ["1", "1", "0"]
        assert "net.bridge.bridge-nf-call-ip6tables = 1" in out
        assert "deb [trusted=yes] file:/srv/repo ./" in out

    second = runbook()
    assert second.rc == 0, second
    assert set(second.statuses().values()) == {"ok"}, second
    assert "0 host(s) changed, 0 failed" in second.stdout
    assert all(not e["changes"] for e in second.record["entries"])


def test_dry_run_shows_the_one_hand_change_and_changes_nothing(converged, runbook):
    lab = converged
    lab.ssh("hdss7-21", "hostnamectl set-hostname by-hand")

    plan = runbook("--dry-run")
    assert plan.rc == 0, plan
    assert plan.statuses() == {"hdss7-11": "ok", "hdss7-12": "ok", "hdss7-200": "ok", "hdss7-21": "changed",
                               "hdss7-22": "ok"}
    diff = plan.entry("hdss7-21")["changes"][0]["diff"]
    assert "-by-hand\n+hdss7-21.host.com" in diff
    assert "-by-hand" in plan.stdout and "1 host(s) would change" in plan.stdout
    assert lab.ssh("hdss7-21", "hostname").strip() == "by-hand"

    applied = runbook()
    assert applied.rc == 0, applied
    assert applied.statuses()["hdss7-21"] == "changed"
    assert [h for h, s in applied.statuses().items() if s == "changed"] == ["hdss7-21"]
    assert lab.ssh("hdss7-21", "hostname").strip() == "hdss7-21.host.com"


def test_group_and_host_targeting_touch_only_those_hosts(converged, runbook):
    lab = converged
    for host in HOSTS:
        lab.ssh(host, "sysctl -q -w net.ipv4.ip_forward=0")

    by_group = runbook("--group", "master_compute")
    assert by_group.rc == 0, by_group
    assert by_group.record["targets"] == ["hdss7-21", "hdss7-22"]
    assert by_group.statuses() == {"hdss7-21": "changed", "hdss7-22": "changed"}
    forward = {h: lab.ssh(h, "sysctl -n net.ipv4.ip_forward").strip() for h in HOSTS}
    assert forward == {"hdss7-11": "0", "hdss7-12": "0", "hdss7-21": "1", "hdss7-22": "1", "hdss7-200": "0"}

    by_host = runbook("--host", "hdss7-200")
    assert by_host.statuses() == {"hdss7-200": "changed"}
    assert lab.ssh("hdss7-11", "sysctl -n net.ipv4.ip_forward").strip() == "0"
    assert lab.ssh("hdss7-200", "sysctl -n net.ipv4.ip_forward").strip() == "1"


def test_a_host_that_is_down_fails_alone(converged, runbook):
    lab = converged
    lab.ssh("hdss7-11", "hostnamectl set-hostname by-hand")
    lab.kill("hdss7-22")
    try:
        run = runbook()
        assert run.rc == 4, run
        assert run.statuses() == {"hdss7-11": "changed", "hdss7-12": "ok", "hdss7-200": "ok", "hdss7-21": "ok",
                                  "hdss7-22": "failed"}
        assert "cannot connect over SSH to 10.4.7.22" in run.entry("hdss7-22")["error"]
        assert "1 failed: hdss7-22" in run.stdout
        assert lab.ssh("hdss7-11", "hostname").strip() == "hdss7-11.host.com"
    finally:
        lab.start("hdss7-22")
    assert runbook().rc == 0  # back up, a plain rerun brings it in with a green verification pass


def test_hand_edited_file_is_put_back_as_a_sudo_user_with_a_backup(converged, runbook, tmp_path):
    lab = converged
    inventory = inventory_copy(tmp_path, lambda name, data: data.update(username="gwadmin")
                               if name == "defaults.yaml" else None)
    wanted = lab.ssh("hdss7-200", "cat /etc/sysctl.d/docker.conf")
    lab.ssh("hdss7-200", "echo 'vm.swappiness = 1' >> /etc/sysctl.d/docker.conf; chmod 600 /etc/sysctl.d/docker.conf")

    run = runbook("-i", inventory, "--host", "hdss7-200")
    assert run.rc == 0, run
    change = run.entry("hdss7-200")["changes"][0]
    assert change["summary"] == "update /etc/sysctl.d/docker.conf"
    assert "-vm.swappiness = 1" in change["diff"] and "-mode 600 owner root:root" in change["diff"]
    assert lab.ssh("hdss7-200", "cat /etc/sysctl.d/docker.conf") == wanted
    assert lab.ssh("hdss7-200", "stat -c '%a %U' /etc/sysctl.d/docker.conf").strip() == "644 root"
    backups = lab.ssh("hdss7-200", "tail -n 1 $(ls -1t /var/backups/groundwork/etc/sysctl.d/docker.conf.* | head -1)")
    assert backups.strip() == "vm.swappiness = 1"
    log = lab.ssh("hdss7-200", "journalctl -q _COMM=sshd _COMM=sudo | grep gwadmin")
    assert "Accepted publickey for gwadmin" in log and "USER=root ; COMMAND=/usr/bin/sh -c" in log
