"""The CA stage run for real against this machine through the local transport, in a folder of the test's own."""

import json
import subprocess

import pytest
import yaml

from groundwork.changes import StageError
from groundwork.context import RunContext
from groundwork.inventory import load_inventory
from groundwork.remote import Masker
from groundwork.tasks import ca
from tests.conftest import copy_seed_inventory


@pytest.fixture
def ops(tmp_path):
    folder = copy_seed_inventory(tmp_path)
    defaults = yaml.safe_load((folder / "defaults.yaml").read_text())
    defaults["data"]["ca"] = {"dir": str(tmp_path / "certs"), "cn": "TestCA"}
    (folder / "defaults.yaml").write_text(yaml.safe_dump(defaults))
    inventory = load_inventory(folder)
    return inventory.ops_host, RunContext(inventory=inventory, dry_run=False, masker=Masker())


def test_first_run_creates_the_ca_second_run_adopts_it_unchanged(local_remote, ops, tmp_path):
    host, ctx = ops
    certs = tmp_path / "certs"
    first = ca.STAGE.execute(local_remote, host, ctx)
    assert [c.summary for c in first.changes] == [f"create the CA TestCA in {certs}", f"create {certs}/ca-config.json"]
    assert oct((certs / "ca-key.pem").stat().st_mode & 0o777) == "0o600"
    key_body = (certs / "ca-key.pem").read_text()
    key_line = key_body.splitlines()[5]  # one line of the key's base64 body
    # The key went to the host on stdin only: in no command line as the shell got it, nothing logged, no report.
    written = json.dumps([local_remote.executed, [(c.command, c.stdout, c.stderr) for c in local_remote.log],
                          [(c.summary, c.diff, c.commands, c.content) for c in first.changes], first.notes])
    assert local_remote.executed and key_line not in written
    print_out = subprocess.run(["openssl", "x509", "-in", str(certs / "ca.pem"), "-noout", "-subject"],
                               capture_output=True, text=True).stdout
    assert "CN = TestCA" in print_out

    before = (certs / "ca.pem").read_bytes()
    local_remote.log.clear()
    local_remote.masker = Masker()  # a later run: it knows the key only from reading it
    second = ca.STAGE.execute(local_remote, host, ctx)
    assert second.changes == [] and second.notes[0].startswith("adopted the existing CA CN=TestCA")
    assert (certs / "ca.pem").read_bytes() == before
    import base64
    encoded = base64.b64encode(key_body.encode()).decode()[:60]
    assert all(key_body not in c.stdout and encoded not in c.stdout.replace("\n", "") for c in local_remote.log)
    assert "(sensitive output not kept)" in [c.stdout for c in local_remote.log]  # the key read back
    # the key the gather read is masked from then on, wherever its text could turn up (an error, a diff)
    assert key_line not in local_remote.masker(f"openssl failed on: {key_body}")


def test_loose_key_mode_is_tightened_without_rewriting(local_remote, ops, tmp_path):
    host, ctx = ops
    ca.STAGE.execute(local_remote, host, ctx)
    key = tmp_path / "certs" / "ca-key.pem"
    key.chmod(0o644)
    report = ca.STAGE.execute(local_remote, host, ctx)
    assert [c.summary for c in report.changes] == [f"set mode 600 owner root:root on {key}"]
    assert oct(key.stat().st_mode & 0o777) == "0o600"


def test_a_pair_that_does_not_belong_together_is_never_replaced(local_remote, ops, tmp_path):
    host, ctx = ops
    ca.STAGE.execute(local_remote, host, ctx)
    certs = tmp_path / "certs"
    good = (certs / "ca.pem").read_bytes()
    (certs / "other").mkdir()
    other = host.settings.ca.model_copy(update={"dir": str(certs / "other")})
    ca.write_ca(local_remote, other, __import__("groundwork.pki", fromlist=["make_ca"]).make_ca(other))
    (certs / "ca-key.pem").write_bytes((certs / "other" / "ca-key.pem").read_bytes())
    with pytest.raises(StageError, match="do not belong together.*never replaces a CA"):
        ca.STAGE.execute(local_remote, host, ctx)
    assert (certs / "ca.pem").read_bytes() == good


def test_issued_peer_certificate_verifies_and_is_kept_when_current(local_remote, ops, tmp_path):
    host, ctx = ops
    ca.STAGE.execute(local_remote, host, ctx)
    stage = ca.issue_stage("etcd-peer", "peer", "etcd-peer", ["10.4.7.12", "hdss7-12.host.com"])
    report = stage.execute(local_remote, host, ctx)
    assert [c.summary for c in report.changes] == ["issue etcd-peer.pem (peer)"]
    certs = tmp_path / "certs"
    done = subprocess.run(["openssl", "verify", "-CAfile", str(certs / "ca.pem"), str(certs / "etcd-peer.pem")],
                          capture_output=True, text=True)
    assert done.stdout.strip().endswith("etcd-peer.pem: OK")
    assert oct((certs / "etcd-peer-key.pem").stat().st_mode & 0o777) == "0o600"
    again = stage.execute(local_remote, host, ctx)
    assert again.changes == [] and "is current" in again.notes[0]
    # Other settings for the same name: refused, the certificate there left as it is.
    issued = (certs / "etcd-peer.pem").read_bytes()
    with pytest.raises(StageError, match="was issued with other settings"):
        ca.issue_stage("etcd-peer", "peer", "etcd-peer", ["10.4.7.21"]).execute(local_remote, host, ctx)
    assert (certs / "etcd-peer.pem").read_bytes() == issued


def test_replace_keeps_the_old_pair(local_remote, ops, tmp_path):
    host, ctx = ops
    ca.STAGE.execute(local_remote, host, ctx)
    old = (tmp_path / "certs" / "ca.pem").read_bytes()
    report = ca.REPLACE.execute(local_remote, host, ctx)
    kept = [p for p in (tmp_path / "certs").iterdir() if p.name.startswith("replaced-")]
    assert len(kept) == 1 and (kept[0] / "ca.pem").read_bytes() == old and (kept[0] / "ca-key.pem").exists()
    assert (tmp_path / "certs" / "ca.pem").read_bytes() != old
    assert report.notes == [f"old CA kept in {kept[0]}"]
