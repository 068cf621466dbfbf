"""A bad inventory stops the run before any connection, with every problem and exit code 3."""

import socket
import subprocess
import threading
from pathlib import Path

import yaml

from tests.conftest import copy_seed_inventory, run_runbook


class Listener:
    """TCP ports standing in for the hosts' sshd on 127.0.0.11, .12, .21, .22, .200: they count who knocks."""

    def __init__(self, last_octets=(11, 12, 21, 22, 200)):
        self.connections = 0
        self.port = 0
        for octet in last_octets:
            sock = socket.socket()
            sock.bind((f"127.0.0.{octet}", self.port))
            sock.listen(16)
            self.port = sock.getsockname()[1]
            threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def _accept(self, sock):
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()


def loopback_inventory(tmp_path: Path, port: int) -> Path:
    """The seed inventory moved onto 127.0.0.0/8, every host's SSH port pointing at the listener."""
    folder = copy_seed_inventory(tmp_path)
    hosts = yaml.safe_load((folder / "hosts.yaml").read_text())
    for entry in hosts.values():
        entry["hostname"] = entry["hostname"].replace("10.4.7.", "127.0.0.")
        entry["port"] = port
    (folder / "hosts.yaml").write_text(yaml.safe_dump(hosts))
    defaults = yaml.safe_load((folder / "defaults.yaml").read_text())
    defaults["data"]["network"] = "127.0.0.0/8"
    extras = defaults["connection_options"]["netmiko"]["extras"]
    extras["conn_timeout"] = 2
    (tmp_path / "key").unlink()  # netmiko reads the key before it connects: a real one
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "key")], check=True)
    # Every host "known" (with this throwaway key), so that groundwork goes as far as connecting.
    public = " ".join((tmp_path / "key.pub").read_text().split()[:2])
    (tmp_path / "known_hosts").write_text("".join(f"[{e['hostname']}]:{port} {public}\n" for e in hosts.values()))
    (folder / "defaults.yaml").write_text(yaml.safe_dump(defaults))
    return folder


def test_bad_inventory_exits_3_with_all_problems_and_no_connection(tmp_path):
    listener = Listener()
    folder = loopback_inventory(tmp_path, listener.port)
    hosts = yaml.safe_load((folder / "hosts.yaml").read_text())
    hosts["hdss7-22"]["hostname"] = "127.0.0.21"
    hosts["hdss7-21"]["groups"] = ["compute"]
    hosts["hdss7-12"]["hostname"] = "127.0.0.300"
    (folder / "hosts.yaml").write_text(yaml.safe_dump(hosts))
    defaults = yaml.safe_load((folder / "defaults.yaml").read_text())
    defaults["data"]["dns"]["records"] = {"bad_name": "127.0.0.50"}
    (folder / "defaults.yaml").write_text(yaml.safe_dump(defaults))

    done = run_runbook("-i", str(folder), "--reports", str(tmp_path / "reports"))

    assert done.returncode == 3, done.stderr
    assert "inventory is invalid (4 problem(s)); no host was contacted" in done.stderr
    assert "data.dns.records.bad_name: 'bad_name' is not a valid DNS name" in done.stderr
    assert "hdss7-22: hostname: 127.0.0.21 is also the address of hdss7-21" in done.stderr
    assert "hdss7-21: groups: unknown group 'compute'" in done.stderr
    assert "hdss7-12: hostname: '127.0.0.300' is not a valid IPv4 address" in done.stderr
    assert listener.connections == 0
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").iterdir())


def test_valid_inventory_does_connect(tmp_path, monkeypatch):
    """The control for the test above: the same setup with a valid inventory reaches the listener."""
    monkeypatch.setenv("GROUNDWORK_REGISTRY_PASSWORD", "unit-test")
    listener = Listener()
    folder = loopback_inventory(tmp_path, listener.port)
    done = run_runbook("-i", str(folder), "-H", "hdss7-11", "--reports", str(tmp_path / "reports"))
    assert done.returncode == 4
    assert listener.connections >= 1
    assert "hdss7-11" in done.stdout and "failed" in done.stdout


def test_unknown_host_on_the_command_line_is_a_usage_error(tmp_path):
    done = run_runbook("-i", str(copy_seed_inventory(tmp_path)), "-H", "hdss7-99",
                       "--reports", str(tmp_path / "reports"))
    assert done.returncode == 2
    assert "unknown host or group: hdss7-99" in done.stderr


def test_a_host_missing_from_known_hosts_is_never_connected_to(tmp_path):
    """groundwork looks the host up in known_hosts before it opens a socket: the listener sees nothing."""
    listener = Listener()
    folder = loopback_inventory(tmp_path, listener.port)
    known = tmp_path / "known_hosts"
    known.write_text("".join(line + "\n" for line in known.read_text().splitlines() if "127.0.0.21" not in line))
    done = run_runbook("-i", str(folder), "--reports", str(tmp_path / "reports"), "--host", "hdss7-21",
                       name="host_prep")
    assert done.returncode == 4, done.stdout + done.stderr
    assert (f"host key of 127.0.0.21 is unknown: {known} has no entry for it, so groundwork did not connect"
            in done.stdout)
    assert listener.connections == 0


def test_issue_cert_refuses_a_name_that_is_a_path_or_a_bad_san(tmp_path):
    for args in (["../../etc/cron.d/x", "--profile", "peer"], ["a/b", "--profile", "peer"],
                 ["etcd-peer", "--profile", "peer", "--san", "10.4.7.12; id"], ["x", "--profile", "nope"]):
        done = run_runbook(*args, "--reports", str(tmp_path / "reports"), name="issue_cert")
        assert done.returncode == 2, (args, done.stderr)
        assert "issue_cert.py: error: argument" in done.stderr
    assert not (tmp_path / "reports").exists()


def test_issue_cert_refuses_a_name_whose_files_land_on_the_cas_own(tmp_path):
    listener = Listener()
    inventory = loopback_inventory(tmp_path, listener.port)
    for name, lands_on in (("ca", "ca.pem"), ("ca-key", "ca-key.pem")):
        done = run_runbook(name, "--profile", "server", "--san", "10.4.7.200", "-i", str(inventory),
                           "--reports", str(tmp_path / "reports"), name="issue_cert")
        assert done.returncode == 2, (name, done.stderr)
        assert f"written over the CA's own {lands_on}" in done.stderr
    assert listener.connections == 0
    assert not (tmp_path / "reports").exists()
