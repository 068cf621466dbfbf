"""etcd end to end on hdss7-12, hdss7-21 and hdss7-22: a TLS cluster with certificates from the CA, its faults,
and backup and restore."""

import subprocess
import threading
import time

from tests.e2e.conftest import HOSTS, lab_command

MEMBERS = ["hdss7-12", "hdss7-21", "hdss7-22"]
CERTS = "--cacert /opt/etcd/certs/ca.pem --cert /opt/etcd/certs/client.pem --key /opt/etcd/certs/client-key.pem"
EVERYONE = ",".join(f"https://{HOSTS[m]}:2379" for m in MEMBERS)
ETCDCTL = f"ETCDCTL_API=3 etcdctl --endpoints={EVERYONE} {CERTS} --command-timeout=5s"


def etcd_checks(run, host=None) -> dict[tuple[str, str], str]:
    return {(c["host"], c["title"]): c["outcome"] for c in run.record["checks"] or []
            if c["check"].startswith("test_etcd.py") and (host is None or c["host"] == host)}


def test_the_cluster_forms_over_tls_and_a_rerun_changes_nothing(converged, runbook):
    lab = converged
    members = lab.ssh("hdss7-21", f"{ETCDCTL} member list")
    assert sorted(line.split(", ")[2] for line in members.splitlines()) == [
        "etcd-server-7-12", "etcd-server-7-21", "etcd-server-7-22"]
    key_mode = lab.ssh("hdss7-22", "stat -c '%a %U' /opt/etcd/certs/etcd-peer-key.pem").split()
    assert key_mode == ["600", "etcd"]
    assert lab.ssh("hdss7-200", "ls /opt/certs").split().count("etcd-peer-key.pem") == 1
    again = runbook()
    assert again.rc == 0, again
    assert set(again.statuses("etcd").values()) == {"ok"} and set(again.statuses("etcd_certs").values()) == {"ok"}
    assert set(etcd_checks(again).values()) == {"passed"} and len(etcd_checks(again)) == 4 * len(MEMBERS)


def test_a_stopped_member_fails_its_own_checks_only_and_a_rerun_brings_it_back(converged, runbook):
    lab = converged
    lab.ssh("hdss7-22", "systemctl stop etcd")
    checked = runbook(name="verify")
    assert checked.rc == 5, checked
    failed = {host for (host, _), outcome in etcd_checks(checked).items() if outcome != "passed"}
    assert failed == {"hdss7-22"}
    assert "is healthy" in lab.ssh("hdss7-12", f"{ETCDCTL.replace(EVERYONE, 'https://10.4.7.12:2379')} endpoint health 2>&1")
    fixed = runbook()
    assert fixed.rc == 0, fixed
    assert fixed.statuses("etcd")["hdss7-22"] == "changed"
    assert set(etcd_checks(fixed).values()) == {"passed"}


def test_a_member_whose_data_is_wiped_rejoins_on_the_rerun(converged, runbook):
    lab = converged
    lab.ssh("hdss7-21", f"{ETCDCTL} put /before-wipe kept >/dev/null")
    lab.ssh("hdss7-22", "systemctl stop etcd && rm -rf /data/etcd/etcd-server")
    fixed = runbook()
    assert fixed.rc == 0, fixed
    notes = fixed.entry("hdss7-22", "etcd")["notes"]
    assert "etcd-server-7-22 had lost its data: removed from the cluster and added again" in notes
    assert set(etcd_checks(fixed).values()) == {"passed"}
    local = "ETCDCTL_API=3 etcdctl --endpoints=http://127.0.0.1:2379 get --print-value-only /before-wipe"
    assert lab.ssh("hdss7-22", local).strip() == "kept"


def test_a_certificate_change_rolls_one_member_at_a_time_and_the_cluster_answers_throughout(converged, runbook):
    lab = converged
    lab.ssh("hdss7-200", "rm /opt/certs/etcd-peer.pem")  # the CA issues it again: every member gets a new one
    failures, retried, rounds, stop = [], [], [0], threading.Event()

    def write_and_read():
        """A client that writes a value and reads it back, over and over; a round that times out (a member
        restarting under its request) is tried again once, as a client would; it must then succeed."""
        while not stop.is_set():
            n = rounds[0]
            for attempt in (1, 2):
                done = subprocess.run(
                    ["ssh", "-i", "/var/lib/groundwork-lab/ssh/id_ed25519", "-o", "BatchMode=yes",
                     "-o", "UserKnownHostsFile=/var/lib/groundwork-lab/ssh/known_hosts", f"root@{HOSTS['hdss7-12']}",
                     f"{ETCDCTL} put /roll {n} >/dev/null && {ETCDCTL} get --print-value-only /roll"],
                    capture_output=True, text=True, timeout=60)
                if done.returncode == 0 and done.stdout.strip() == str(n):
                    break
                (retried if attempt == 1 else failures).append((n, done.returncode, done.stdout.strip(),
                                                                done.stderr.strip()[-200:]))
                time.sleep(1)
            rounds[0] += 1
            time.sleep(0.2)
    writer = threading.Thread(target=write_and_read)
    writer.start()
    try:
        rolled = runbook("--no-verify")
    finally:
        stop.set()
        writer.join()
    assert rolled.rc == 0, rolled
    assert set(rolled.statuses("etcd").values()) == {"changed"}
    # One at a time: each member's restart ended (its cluster healthy again) before the next began.
    restarts = [(e["host"], e["changes"][-1]["summary"]) for e in rolled.record["entries"] if e["stage"] == "etcd"]
    assert [s for _, s in restarts] == ["restart etcd and wait until the cluster is healthy"] * 3
    assert rounds[0] > 5 and failures == [], failures
    print(f"{rounds[0]} rounds, {len(retried)} tried again: {retried}")


def test_backup_wipe_every_member_restore_and_read_the_keys_back(converged, runbook):
    lab = converged
    for n in range(3):
        lab.ssh("hdss7-21", f"{ETCDCTL} put /backup/key{n} value{n} >/dev/null")
    backup = runbook(name="etcd_backup")
    assert backup.rc == 0, backup
    kept = lab.ssh("hdss7-200", "cd /data/backup/etcd && ls snapshot-*.db && sha256sum -c *.sha256")
    snapshot = kept.split()[0].removesuffix(".db")
    assert f"{snapshot}.db: OK" in kept
    for member in MEMBERS:
        lab.ssh(member, "systemctl stop etcd && rm -rf /data/etcd/etcd-server")
    refused = runbook("--snapshot", snapshot, name="etcd_restore")
    assert refused.rc == 2 and "--confirm" in refused.stderr
    restored = runbook("--snapshot", snapshot, "--confirm", name="etcd_restore")
    assert restored.rc == 0, restored
    assert set(etcd_checks(restored).values()) == {"passed"}
    values = lab.ssh("hdss7-22", f"{ETCDCTL} get --prefix --print-value-only /backup/").split()
    assert values == ["value0", "value1", "value2"]
    lab_command("up")  # nothing of the lab itself changed
