"""etcd end to end on hdss7-12, hdss7-21 and hdss7-22: a TLS cluster with certificates from the CA, its faults,
and backup and restore."""

import subprocess
import threading
import time

from tests.e2e.conftest import HOSTS, kubernetes_stopped, lab_command

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
    local = f"ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 {CERTS} get --print-value-only /before-wipe"
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
    # the newest: a restore from an archive (test_backup_lab.py) may have put an older one beside it
    kept = lab.ssh("hdss7-200", "cd /data/backup/etcd && ls snapshot-*.db | sort | tail -n 1 && sha256sum -c *.sha256")
    snapshot = kept.split()[0].removesuffix(".db")
    assert snapshot in "\n".join(backup.entry("hdss7-200", "etcd_backup_store")["notes"])
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


def test_restoring_twice_keeps_every_earlier_copy_and_a_failed_member_joins_on_the_rerun(converged, runbook):
    """Restoring the same snapshot twice keeps the data from before the first restore; a member whose restore
    failed is left without data, and the next etcd run starts it into the restored cluster."""
    lab = converged
    kubernetes_stopped(lab)
    lab.ssh("hdss7-21", f"{ETCDCTL} put /restore/key snapshot-value >/dev/null")
    backup = runbook(name="etcd_backup")
    assert backup.rc == 0, backup
    snapshot = lab.ssh("hdss7-200", "cd /data/backup/etcd && ls snapshot-*.db | sort | tail -n 1").strip()[:-3]
    lab.ssh("hdss7-21", f"{ETCDCTL} put /restore/after written-after-the-snapshot >/dev/null")
    first = runbook("--snapshot", snapshot, "--confirm", "--no-verify", name="etcd_restore")
    assert first.rc == 0, first
    second = runbook("--snapshot", snapshot, "--confirm", "--no-verify", name="etcd_restore")
    assert second.rc == 0, second
    asides = lab.ssh("hdss7-12", f"ls -d /data/etcd/etcd-server.before-{snapshot}*").split()
    assert asides == [f"/data/etcd/etcd-server.before-{snapshot}", f"/data/etcd/etcd-server.before-{snapshot}.2"]
    # what was written after the snapshot is still in the copy from before the first restore
    assert lab.ssh("hdss7-12", f"grep -c written-after-the-snapshot -r /data/etcd/etcd-server.before-{snapshot}/ "
                               "| awk -F: '{s+=$2} END {print s}'").strip() != "0"

    # etcdctl fails on hdss7-22 when it restores: that member's restore fails
    lab.ssh("hdss7-22", "printf '%s\\n' '#!/bin/sh' 'case \"$*\" in *\"snapshot restore\"*) exit 1;; esac' "
                        "'exec /usr/bin/etcdctl \"$@\"' > /usr/local/bin/etcdctl && chmod 755 /usr/local/bin/etcdctl")
    try:
        failed = runbook("--snapshot", snapshot, "--confirm", "--no-verify", name="etcd_restore")
    finally:
        lab.ssh("hdss7-22", "rm -f /usr/local/bin/etcdctl")
    assert failed.rc == 4 and failed.statuses("etcd_restore")["hdss7-22"] == "failed", failed
    rejoined = runbook(name="etcd")
    assert rejoined.rc == 0, rejoined
    assert set(etcd_checks(rejoined).values()) == {"passed"}
    local = f"ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 {CERTS} get --print-value-only /restore/key"
    assert lab.ssh("hdss7-22", local).strip() == "snapshot-value"


def test_backup_and_restore_use_the_inventorys_client_port(converged, runbook, tmp_path):
    """etcd.client_port 2479: the stage's health probe, the backup and the restore reach each member on it."""
    from tests.e2e.conftest import inventory_copy

    lab = converged
    kubernetes_stopped(lab)

    def port_2479(name: str, data: dict) -> None:
        if name == "defaults.yaml":
            data["data"].setdefault("etcd", {})["client_port"] = 2479
            data["data"].pop("kubernetes", None)
    inventory = inventory_copy(tmp_path, port_2479)
    try:
        for member in MEMBERS:  # a new client port for every member at once: the cluster starts on it anew
            lab.ssh(member, "systemctl stop etcd")
        moved = runbook("-i", inventory, name="etcd")
        assert moved.rc == 0, moved
        assert set(etcd_checks(moved).values()) == {"passed"}
        again = runbook("-i", inventory, "--no-verify", name="etcd")
        assert again.rc == 0 and set(again.statuses("etcd").values()) == {"ok"}, again
        backup = runbook("-i", inventory, name="etcd_backup")
        assert backup.rc == 0, backup
        snapshot = lab.ssh("hdss7-200", "cd /data/backup/etcd && ls snapshot-*.db | sort | tail -n 1").strip()[:-3]
        restored = runbook("-i", inventory, "--snapshot", snapshot, "--confirm", name="etcd_restore")
        assert restored.rc == 0, restored
    finally:
        for member in MEMBERS:
            lab.ssh(member, "systemctl stop etcd")
        back = runbook(name="etcd")
        assert back.rc == 0, back


def test_certs_renew_issues_a_named_certificate_again_and_rolls_it_through_every_consumer(converged, runbook):
    """`certs renew --name client`: the dry run shows the plan and changes nothing; the run issues client.pem
    again on the ops host, delivers it to every etcd member and every master (the apiservers present it to
    etcd), restarting them one at a time, and the verification passes; a plain `certs renew` then finds nothing
    due and changes nothing."""
    lab = converged
    copies = {"hdss7-200": "/opt/certs/client.pem", **{m: "/opt/etcd/certs/client.pem" for m in MEMBERS}}
    masters = {m: "/opt/kubernetes/server/bin/cert/client.pem" for m in ("hdss7-21", "hdss7-22")}

    def digests() -> dict[str, str]:
        found = {f"{h}:{p}": lab.ssh(h, f"sha256sum < {p}").split()[0] for h, p in copies.items()}
        return {**found, **{f"{h}:{p}": lab.ssh(h, f"sha256sum < {p}").split()[0] for h, p in masters.items()}}
    before = digests()
    assert len(set(before.values())) == 1, before  # one certificate, copied everywhere it is used

    plan = runbook("renew", "--name", "client", "--dry-run", name="certs")
    assert plan.rc == 0, plan
    assert "issue client.pem (client)" in plan.stdout and digests() == before

    renewed = runbook("renew", "--name", "client", name="certs")
    assert renewed.rc == 0, renewed
    assert renewed.record["runbook"] == "certs_renew"
    assert "renewed, as asked" in " ".join(renewed.entry("hdss7-200", "etcd_certs")["notes"])
    assert set(renewed.statuses("etcd").values()) == {"changed"}, renewed
    assert set(renewed.statuses("k8s_control_plane").values()) == {"changed"}, renewed
    after = digests()
    assert len(set(after.values())) == 1 and set(after.values()) != set(before.values()), after
    assert lab.ssh("hdss7-21", f"{ETCDCTL} endpoint health 2>&1").count("is healthy") == 3
    assert {c["outcome"] for c in renewed.record["checks"]} <= {"passed", "skipped"}, renewed

    nothing_due = runbook("renew", name="certs")
    assert nothing_due.rc == 0, nothing_due
    assert {s for stage in ("etcd_certs", "etcd", "k8s_certs", "k8s_control_plane", "k8s_node")
            for s in nothing_due.statuses(stage).values()} == {"ok"}, nothing_due
