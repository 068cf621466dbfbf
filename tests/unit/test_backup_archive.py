"""Backup archives: what goes in comes out whole, only with the passphrase, and an altered archive is refused;
restore's decision puts back what differs and never a zone serial lower than the host's."""

import tempfile
from pathlib import Path

import pyrage
import pytest

from groundwork.backup_archive import ArchiveError, Member, seal, unseal, write_new
from groundwork.context import RunContext
from groundwork.facts import Facts
from groundwork.inventory import load_inventory
from groundwork.remote import Masker
from groundwork.tasks import backup, dns
from tests.conftest import copy_seed_inventory
from tests.unit.host_facts import on_host

PASSPHRASE = "correct horse battery staple"
KEY = b"-----BEGIN RSA PRIVATE KEY-----\nMIIEsecret\n-----END RSA PRIVATE KEY-----\n"
MEMBERS = [Member("hdss7-200", "/opt/certs/ca-key.pem", "ca", "600", "root", "root", KEY),
           Member("hdss7-200", "/opt/certs/ca.pem", "ca", "644", "root", "root", b"cert"),
           Member("hdss7-11", "/var/lib/bind/od.com.zone", "zone", "644", "root", "bind",
                  b"$TTL 600\n@ IN SOA dns.od.com. dnsadmin.od.com. (\n    2026120402 ; serial\n)\n")]


@pytest.fixture(scope="module")
def sealed() -> bytes:
    """One archive for the module: each sealing or opening costs age's scrypt about a second and a half."""
    return seal(MEMBERS, PASSPHRASE, {"run_id": "R1"})


def test_members_come_back_whole_with_their_attributes_and_the_manifest(sealed):
    manifest, members = unseal(sealed, PASSPHRASE)
    assert members == MEMBERS and manifest["run_id"] == "R1"
    assert [m["sha256"] for m in manifest["members"]] == [m.sha256 for m in MEMBERS]


def test_the_archive_shows_no_key_and_age_opens_it(sealed):
    assert sealed.startswith(b"age-encryption.org/v1\n") and b"PRIVATE KEY" not in sealed and b"MIIEsecret" not in sealed
    assert b"MIIEsecret" in pyrage.passphrase.decrypt(sealed, PASSPHRASE)  # the standard format, no groundwork needed


def test_a_wrong_passphrase_or_a_changed_byte_is_refused(sealed):
    with pytest.raises(ArchiveError, match="wrong passphrase"):
        unseal(sealed, PASSPHRASE + "x")
    altered = bytearray(sealed)
    altered[-40] ^= 1
    with pytest.raises(ArchiveError, match="altered"):
        unseal(bytes(altered), PASSPHRASE)


def test_a_member_that_differs_from_its_manifest_is_refused(sealed):
    """Re-encrypted by someone with the passphrase, a member swapped: the manifest's SHA-256 catches it."""
    import io
    import tarfile

    plain = pyrage.passphrase.decrypt(sealed, PASSPHRASE)
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar, tarfile.open(fileobj=out, mode="w") as new:
        for info in tar.getmembers():
            data = tar.extractfile(info).read()
            if info.name.endswith("ca.pem"):
                data, info.size = b"evil", 4
            new.addfile(info, io.BytesIO(data))
    with pytest.raises(ArchiveError, match="differs from its SHA-256"):
        unseal(pyrage.passphrase.encrypt(out.getvalue(), PASSPHRASE), PASSPHRASE)


def test_a_member_outside_a_normal_absolute_path_is_refused():
    with pytest.raises(ArchiveError, match="not an absolute, normal path"):
        seal([Member("h", "/opt/../etc/shadow", "ca", "600", "root", "root", b"")], PASSPHRASE, {})


def test_an_archive_is_written_whole_at_0600_and_never_over_another(tmp_path):
    target = tmp_path / "backups" / "R1.age"
    write_new(target, b"sealed")
    assert target.read_bytes() == b"sealed" and oct(target.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(FileExistsError):
        write_new(target, b"other")
    assert target.read_bytes() == b"sealed" and [p.name for p in target.parent.iterdir()] == ["R1.age"]


# -- restore's decision ----------------------------------------------------------------------------------------

INVENTORY = load_inventory(copy_seed_inventory(Path(tempfile.mkdtemp(prefix="gw-test-"))))
PRIMARY = INVENTORY.dns_primary
OPS = INVENTORY.ops_host
ZONE = Member(PRIMARY.name, "/var/lib/bind/od.com.zone", "zone", "644", "root", "bind", MEMBERS[2].content)


def decide(host, files: dict, served: dict, members=None):
    stage = backup.restore_stage(lambda: members or [*MEMBERS[:2], ZONE])
    stage_members = [m for m in (members or [*MEMBERS[:2], ZONE]) if m.host == host.name]
    ctx = RunContext(inventory=INVENTORY, dry_run=False, masker=Masker())
    facts = Facts(files={m.path: files.get(m.path) for m in stage_members}, **{f"soa@{host.address}": served})
    notes: list[str] = []
    return stage.decide(host, facts, ctx, notes), notes


def test_restore_writes_back_what_is_missing_with_its_mode_and_leaves_what_is_as_archived():
    members = [Member(OPS.name, m.path, m.kind, m.mode, m.owner, m.group, m.content) for m in MEMBERS[:2]]
    plan, _ = decide(OPS, {members[1].path: on_host(b"cert")}, {}, members)
    assert [c.summary for c in plan] == ["create /opt/certs/ca-key.pem"]
    assert plan[0].want.mode == "600" and plan[0].want.sensitive and b"MIIE" not in plan[0].diff.encode()


def test_a_zone_is_put_back_unless_the_host_has_or_serves_a_newer_serial():
    plan, _ = decide(PRIMARY, {}, {"od.com": None})
    assert [c.summary for c in plan] == [f"create {ZONE.path}"] and plan[0].want.group == "bind"
    plan, notes = decide(PRIMARY, {}, {"od.com": 2026120405})
    assert plan == [] and any("serial 2026120405 on the host is newer than the archive's 2026120402" in n for n in notes)
    newer = on_host(ZONE.content.replace(b"2026120402", b"2026120409"))
    plan, _ = decide(PRIMARY, {ZONE.path: newer}, {"od.com": None})
    assert plan == []
    older = on_host(ZONE.content.replace(b"2026120402", b"2026120401"))
    plan, _ = decide(PRIMARY, {ZONE.path: older}, {"od.com": 2026120401})
    assert [c.summary for c in plan] == [f"update {ZONE.path}"]
    assert dns.zone_serial(plan[0].want.content) == 2026120402


def test_restore_runs_only_on_hosts_the_archive_has_something_to_put_back_on():
    stage = backup.restore_stage(lambda: [ZONE, Member(OPS.name, "/etc/docker/daemon.json", "config", "644", "root",
                                                       "root", b"{}")])
    assert [h.name for h in INVENTORY.hosts.values() if stage.applies_to(h, INVENTORY)] == [PRIMARY.name]
