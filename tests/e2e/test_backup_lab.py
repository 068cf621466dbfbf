"""Backup and restore end to end: one encrypted archive of what cannot be rebuilt, refused whole when it is
altered or opened with another passphrase, and restoring it after the CA's folder, the zones and the kept etcd
snapshots were wiped brings back the same CA and never a lower zone serial."""

import re

from tests.e2e.conftest import HOSTS, decided_outcomes

OPS, PRIMARY, SECONDARY = "hdss7-200", "hdss7-11", "hdss7-12"
ZONES = ("host.com", "od.com", "7.4.10.in-addr.arpa")


def ca_fingerprint(lab) -> str:
    return lab.ssh(OPS, "openssl x509 -noout -fingerprint -sha256 -in /opt/certs/ca.pem").strip()


def served_serials(lab, server: str) -> dict[str, int]:
    return {z: int(lab.ssh(PRIMARY, f"dig +short SOA {z} @{HOSTS[server]}").split()[2]) for z in ZONES}


def archive_of(run) -> str:
    found = re.search(r"backup archive: (\S+) ", "\n".join(run.record["outputs"]))
    assert found, run
    return found.group(1)


def test_backup_then_wipe_the_ca_the_zones_and_the_snapshots_and_restore_them(converged, runbook, tmp_path):
    lab = converged
    fingerprint, serials = ca_fingerprint(lab), served_serials(lab, PRIMARY)
    key = lab.ssh(OPS, "cat /opt/certs/ca-key.pem")
    backup = runbook("--output", str(tmp_path / "backups"), name="backup")
    assert backup.rc == 0, backup
    archive = archive_of(backup)
    sealed = open(archive, "rb").read()
    assert sealed.startswith(b"age-encryption.org/v1\n") and b"PRIVATE KEY" not in sealed
    assert oct(tmp_path.joinpath("backups", archive.rsplit("/", 1)[1]).stat().st_mode & 0o777) == "0o600"
    # The CA key never lies unencrypted on this machine: not in the backups folder, not in the run folder.
    body = key.splitlines()[1]
    for folder in (tmp_path / "backups", backup.reports):
        assert not [p for p in folder.rglob("*") if p.is_file() and body.encode() in p.read_bytes()]

    lab.ssh(OPS, "rm -rf /opt/certs /data/backup/etcd")
    lab.ssh(PRIMARY, "rm -f " + " ".join(f"/var/lib/bind/{zone}.zone" for zone in ZONES))

    altered = tmp_path / "altered.age"
    altered.write_bytes(sealed[:-64] + bytes(b ^ 1 for b in sealed[-64:]))
    refused = runbook("--archive", str(altered), "--confirm", name="restore")
    assert refused.rc == 3 and str(altered) in refused.stderr and "altered" in refused.stderr, refused
    wrong = runbook("--archive", archive, "--confirm", name="restore",
                    env={"GROUNDWORK_BACKUP_PASSPHRASE": "not the passphrase of this archive"})
    assert wrong.rc == 3 and "wrong passphrase" in wrong.stderr, wrong
    unconfirmed = runbook("--archive", archive, name="restore")
    assert unconfirmed.rc == 2 and "--confirm" in unconfirmed.stderr
    assert lab.ssh(OPS, "ls /opt/certs 2>&1 || true").startswith("ls: cannot access")  # nothing written

    restored = runbook("--archive", archive, "--confirm", name="restore")
    assert restored.rc == 0, restored
    assert restored.statuses("restore") == {PRIMARY: "changed", OPS: "changed"}
    assert restored.statuses("ca") == {OPS: "ok"}  # the CA adopted as it was, not made anew
    assert ca_fingerprint(lab) == fingerprint and lab.ssh(OPS, "cat /opt/certs/ca-key.pem") == key
    assert lab.ssh(OPS, "stat -c '%a %U' /opt/certs/ca-key.pem").split() == ["600", "root"]
    assert served_serials(lab, PRIMARY) == serials and served_serials(lab, SECONDARY) == serials
    assert "OK" in lab.ssh(OPS, "cd /data/backup/etcd && sha256sum -c snapshot-*.db.sha256")
    assert decided_outcomes(restored) == {"passed"}

    # A zone whose serial moved on since the backup is kept: a serial never goes back.
    lab.ssh(PRIMARY, "sed -i -E 's/^([[:space:]]*)[0-9]+([[:space:]]*; serial)$/\\1" f"{serials['od.com'] + 5}"
            "\\2/' /var/lib/bind/od.com.zone && rndc reload od.com >/dev/null")
    again = runbook("--archive", archive, "--confirm", name="restore")
    assert again.rc == 0, again
    assert again.statuses("restore") == {PRIMARY: "ok", OPS: "ok"}
    assert any("newer than the archive's" in n for n in again.entry(PRIMARY, "restore")["notes"])
    assert served_serials(lab, PRIMARY)["od.com"] == serials["od.com"] + 5
