"""The Kubernetes stages' decisions and guards as data: the settings, the server tarball checked before it is
delivered (here and on the host), the cluster's certificates, and the pod network's routes and rules."""

import hashlib
import io
import subprocess
import tarfile
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from groundwork import pki
from groundwork.changes import StageError
from groundwork.facts import Facts
from groundwork.inventory import load_inventory
from groundwork.settings import Ca, Kubernetes
from groundwork.tasks import k8s_certs
from groundwork.tasks import k8s_binaries
from groundwork.tasks.k8s_binaries import SERVER_BINARIES, install_script, tarball_digests
from groundwork.registry_client import curl_credentials
from groundwork.tasks.kubernetes import expected_sha256, verified_file
from groundwork.tasks.pod_network import differences, wanted_state
from tests.conftest import copy_seed_inventory

INVENTORY = load_inventory(copy_seed_inventory(Path(tempfile.mkdtemp(prefix="gw-test-"))))
OPS = INVENTORY.ops_host


def server_tarball(folder: Path, binaries=SERVER_BINARIES) -> tuple[Path, str]:
    path = folder / "kubernetes-server-linux-amd64.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name in binaries:
            data = f"#!/bin/sh\necho {name}\n".encode()
            info = tarfile.TarInfo(f"kubernetes/server/bin/{name}")
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


# -- settings ---------------------------------------------------------------------------------------------

def test_a_tarball_comes_with_its_digest_and_a_pause_binary():
    with pytest.raises(ValidationError, match="server_tarball and server_tarball_sha256 go together"):
        Kubernetes(server_tarball="/srv/k.tar.gz")
    with pytest.raises(ValidationError, match="needs pause_binary"):
        Kubernetes(server_tarball="/srv/k.tar.gz", server_tarball_sha256="a" * 64)
    with pytest.raises(ValidationError, match="outside service_cidr"):
        Kubernetes(cluster_dns="10.0.0.2")
    with pytest.raises(ValidationError, match="SHA-256"):
        Kubernetes(server_tarball="/srv/k.tar.gz", server_tarball_sha256="not a digest; rm -rf /",
                   pause_binary="/srv/pause", pause_binary_sha256="b" * 64)
    assert not Kubernetes().enabled and str(Kubernetes().service_ip) == "192.168.0.1"


def test_a_checksum_file_gives_its_first_word(tmp_path):
    (tmp_path / "k.sha256").write_text(f"{'c' * 64}  kubernetes-server-linux-amd64.tar.gz\n")
    assert expected_sha256(str(tmp_path / "k.sha256"), "server_tarball_sha256") == "c" * 64
    (tmp_path / "bad.sha256").write_text("<html>not found</html>\n")
    with pytest.raises(StageError, match="kubernetes.server_tarball_sha256: .* does not start with a SHA-256"):
        expected_sha256(str(tmp_path / "bad.sha256"), "server_tarball_sha256")


def test_a_tarball_whose_digest_differs_is_refused_naming_the_setting(tmp_path):
    path, sha = server_tarball(tmp_path)
    good = Kubernetes(server_tarball=str(path), server_tarball_sha256=sha, pause_binary=str(path),
                      pause_binary_sha256=sha)
    assert verified_file(good, "server_tarball") == (path, sha)
    wrong = good.model_copy(update={"server_tarball_sha256": "0" * 64})
    with pytest.raises(StageError, match=f"kubernetes.server_tarball: {path} has SHA-256 {sha}, but "
                                         "kubernetes.server_tarball_sha256 says 0{64}"):
        verified_file(wrong, "server_tarball")


def test_a_tarball_without_the_server_binaries_is_refused(tmp_path):
    path, sha = server_tarball(tmp_path, binaries=("kubelet",))
    with pytest.raises(StageError, match="lacks kubernetes/server/bin/kube-apiserver"):
        tarball_digests(str(path), sha)


def test_the_tarball_is_read_only_when_a_host_needs_something_of_it(tmp_path, monkeypatch):
    """A no-op does not hash 100 MB: a host whose binaries have the digests noted for the inventory's tarball
    digest needs nothing of the tarball. A host that needs a binary gets nothing of a damaged tarball."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path, sha = server_tarball(tmp_path)
    digests = tarball_digests(str(path), sha)  # noted, as a first run notes them
    k = Kubernetes(server_tarball=str(path), server_tarball_sha256=sha, pause_binary=str(path),
                   pause_binary_sha256=sha)
    ctx = SimpleNamespace(inventory=SimpleNamespace(defaults=SimpleNamespace(kubernetes=k)))
    decided = []
    monkeypatch.setattr(k8s_binaries, "decide", lambda host, facts, wanted, tarball, sha256: decided.append(wanted) or [])
    path.write_bytes(path.read_bytes() + b"damage")
    current = Facts(binaries={b: (d, True) for b, d in digests.items()})
    assert k8s_binaries.decide_step(OPS, current, ctx, []) == [] and decided == [digests]
    stale = Facts(binaries={**current["binaries"], "kubelet": ("0" * 64, True)})
    with pytest.raises(StageError, match=f"kubernetes.server_tarball: {path} has SHA-256"):
        k8s_binaries.decide_step(OPS, stale, ctx, [])
    assert len(decided) == 1


# -- delivery on the host --------------------------------------------------------------------------------

@pytest.mark.parametrize("damage", ["none", "truncated", "other"])
def test_the_host_installs_only_a_tarball_with_the_wanted_digest(tmp_path, damage):
    path, sha = server_tarball(tmp_path)
    data = path.read_bytes()
    sent = {"none": data, "truncated": data[: len(data) // 2], "other": data + b"\0"}[damage]
    bin_dir = tmp_path / "bin dir $(touch pwned)"
    done = subprocess.run(["sh", "-c", install_script(str(bin_dir), sha, ["kubelet", "kube-proxy"])], input=sent,
                          capture_output=True, cwd=tmp_path)
    assert not (tmp_path / "pwned").exists()
    if damage == "none":
        assert done.returncode == 0, done.stderr
        assert sorted(p.name for p in bin_dir.iterdir()) == [".groundwork-sha256", "kube-proxy", "kubelet"]
        assert (bin_dir / "kubelet").stat().st_mode & 0o777 == 0o755
        # the ledger a no-op run reads instead of hashing every binary: digest, path, size, mtime
        ledger = [line.rsplit(" ", 2)[0].split(" ", 1) for line in (bin_dir / ".groundwork-sha256").read_text().splitlines()]
        assert [(digest, Path(path).name) for digest, path in ledger] == [
            (hashlib.sha256((bin_dir / name).read_bytes()).hexdigest(), name) for name in ("kubelet", "kube-proxy")]
    else:
        assert done.returncode != 0 and not bin_dir.exists()


def test_registry_credentials_for_curl_are_quoted_and_refuse_line_breaks():
    assert curl_credentials('p"w\\x') == b'user = "admin:p\\"w\\\\x"\n'
    with pytest.raises(ValueError, match="line break"):
        curl_credentials("pw\n-o /etc/passwd")


# -- the certificates ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ca_files():
    ca = Ca()
    made = pki.make_ca(ca)
    d = OPS.settings.ca.dir
    return {f"{d}/ca.pem": made.cert_pem, f"{d}/ca-key.pem": made.key_pem, f"{d}/ca-config.json": None,
            f"{d}/client.pem": b"etcd client"}


def issued_everything(found: dict) -> dict:
    """The files as the plan's actions write them."""
    class Writer:
        class masker:
            @staticmethod
            def add(_):
                pass

        def write_file(self, path, content, **_):
            found[path] = content
    plan, _ = k8s_certs.decide(OPS, INVENTORY, found, [])
    for change in plan:
        change.action(Writer())
    return found


def test_every_certificate_is_issued_once_with_its_groups_and_sans(ca_files):
    found = {path: None for path in k8s_certs.files_of(OPS, INVENTORY).values()} | ca_files
    plan, issued = k8s_certs.decide(OPS, INVENTORY, found, [])
    assert issued == {"kube-apiserver", "apiserver-kubelet-client", "kube-controller-manager", "kube-scheduler",
                      "service-account", "kubelet-hdss7-21", "kubelet-hdss7-22", "kube-proxy-client", "admin"}
    found = issued_everything(found)
    d = OPS.settings.ca.dir
    admin = x509.load_pem_x509_certificate(found[f"{d}/admin.pem"])
    assert [a.value for a in admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == ["system:masters"]
    kubelet = pki.leaf_settings(found[f"{d}/kubelet-hdss7-21.pem"])
    assert kubelet["cn"] == "system:node:hdss7-21.host.com" and kubelet["groups"] == ["system:nodes"]
    assert kubelet["usages"] == ["client auth", "server auth"]
    apiserver = pki.leaf_settings(found[f"{d}/kube-apiserver.pem"])["sans"]
    assert {"10.4.7.10", "192.168.0.1", "10.4.7.21", "10.4.7.22", "kubernetes.default.svc.cluster.local"} <= set(apiserver)
    again, issued = k8s_certs.decide(OPS, INVENTORY, found, [])
    assert again == [] and issued == set()


def test_a_certificate_with_other_groups_is_issued_again(ca_files):
    found = issued_everything({path: None for path in k8s_certs.files_of(OPS, INVENTORY).values()} | ca_files)
    d = OPS.settings.ca.dir
    cert, key = pki.load_ca_pair(ca_files[f"{d}/ca.pem"], ca_files[f"{d}/ca-key.pem"])
    # admin without system:masters: same CN and usages, but it would not be an administrator
    found[f"{d}/admin.pem"], _ = pki.issue(cert, key, "client", "admin", [], Ca())
    _, issued = k8s_certs.decide(OPS, INVENTORY, found, [])
    assert issued == {"admin"}


def test_the_service_account_key_is_kept_when_its_certificate_is_issued_again_by_a_new_ca(ca_files):
    """Its key signs the pods' tokens: certified again (a renewal, a CA roll) it stays the same key, so the
    tokens made before stay good; the other certificates get new keys."""
    found = issued_everything({path: None for path in k8s_certs.files_of(OPS, INVENTORY).values()} | ca_files)
    d = OPS.settings.ca.dir
    before = dict(found)
    new_ca = pki.make_ca(Ca())
    found |= {f"{d}/ca.pem": new_ca.cert_pem, f"{d}/ca-key.pem": new_ca.key_pem}
    plan, issued = k8s_certs.decide(OPS, INVENTORY, found, [])
    assert "service-account" in issued and "the same key, kept" in next(
        c.diff for c in plan if "service-account" in c.summary)
    found = issued_everything(found)
    assert found[f"{d}/service-account-key.pem"] == before[f"{d}/service-account-key.pem"]
    assert found[f"{d}/service-account.pem"] != before[f"{d}/service-account.pem"]
    assert found[f"{d}/kube-apiserver-key.pem"] != before[f"{d}/kube-apiserver-key.pem"]
    leaf = x509.load_pem_x509_certificate(found[f"{d}/service-account.pem"])
    leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(new_ca.cert_pem))


def test_no_kubernetes_certificates_without_the_etcd_client(ca_files):
    found = {path: None for path in k8s_certs.files_of(OPS, INVENTORY).values()} | ca_files
    found[f"{OPS.settings.ca.dir}/client.pem"] = None
    with pytest.raises(StageError, match="run the etcd stages first"):
        k8s_certs.decide(OPS, INVENTORY, found, [])


# -- the pod network -------------------------------------------------------------------------------------

def test_each_node_routes_to_the_other_nodes_pod_subnets_and_keeps_pod_addresses():
    state = wanted_state(INVENTORY.hosts["hdss7-21"], INVENTORY)
    assert state["routes"] == [{"subnet": "172.7.22.0/24", "via": "10.4.7.22"},
                               {"subnet": "192.168.0.0/16", "dev": "docker0"}]
    assert state["keep"] == "-s 172.7.21.0/24 ! -d 172.7.0.0/16 ! -o docker0 -j MASQUERADE"
    live = {"routes": {("172.7.22.0/24", "via", "10.4.7.22"), ("192.168.0.0/16", "dev", "docker0")},
            "forward": ["-A FORWARD -s 172.7.0.0/16 -j ACCEPT", "-A FORWARD -d 172.7.0.0/16 -j ACCEPT"],
            "nat": [f"-A POSTROUTING {state['keep']}"]}
    assert differences(state, live) == []
    docker_back = {**live, "nat": [*live["nat"], f"-A POSTROUTING {state['docker_rule']}"]}
    assert differences(state, docker_back) == [f"POSTROUTING {state['docker_rule']} still there"]
    assert differences(state, {**live, "routes": set()}) == ["route 172.7.22.0/24 via 10.4.7.22",
                                                             "route 192.168.0.0/16 dev docker0"]


def test_a_registry_login_leaves_no_credential_on_the_host(tmp_path):
    """The nodes' and the ops host's logins use a throwaway docker configuration, gone when the command ends."""
    from groundwork.registry_client import registry_login

    bin_dir, home = tmp_path / "bin", tmp_path / "home"
    bin_dir.mkdir()
    home.mkdir()
    # A stand-in docker that stores a login where docker does: $DOCKER_CONFIG, else ~/.docker
    (bin_dir / "docker").write_text('#!/bin/sh\nd=${DOCKER_CONFIG:-$HOME/.docker}; mkdir -p "$d"\n'
                                    'if [ "$1" = login ]; then cat > "$d/config.json"; fi\necho "$d" >> "$HOME/used"\n')
    (bin_dir / "docker").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(home)}
    done = subprocess.run(["sh", "-c", registry_login("harbor.od.com", "docker pull harbor.od.com/public/x:1")],
                          input=b"s3cret", env=env, capture_output=True)
    assert done.returncode == 0, done.stderr
    used = set((home / "used").read_text().split())
    assert len(used) == 1 and not Path(used.pop()).exists()  # the login and the pull shared it; it is gone
    assert not (home / ".docker").exists()
    assert b"s3cret" not in subprocess.run(["grep", "-r", "s3cret", str(tmp_path)], capture_output=True).stdout


@pytest.mark.parametrize("status, heartbeat_after_start, ready", [
    ("True", 5, True), ("True", -60, False), ("False", 5, False), ("", 0, False)],
    ids=["reported-since-start", "stale-from-before-the-restart", "not-ready", "node-unreadable"])
def test_the_wait_for_ready_takes_only_what_the_kubelet_reported_since_it_started(tmp_path, status,
                                                                                  heartbeat_after_start, ready):
    """The node's Ready from before a restart (nothing marked it stale while the controller-manager was down
    too) does not end the wait: the verification then found the restarted kubelet's NotReady."""
    import datetime

    from groundwork.tasks.kubernetes import node_ready

    host = load_inventory(copy_seed_inventory(tmp_path)).hosts["hdss7-21"]
    started = datetime.datetime(2026, 12, 3, 21, 5, 54, tzinfo=datetime.timezone.utc)
    beat = (started + datetime.timedelta(seconds=heartbeat_after_start)).strftime("%Y-%m-%dT%H:%M:%SZ")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text("#!/bin/sh\necho 'Thu 2026-12-03 21:05:54 UTC'\n")
    # a stand-in kubectl: the node's Ready condition, with its heartbeat when the jsonpath asks for it
    (bin_dir / "kubectl").write_text(f"#!/bin/sh\n[ -n '{status}' ] || exit 1\ncase \"$*\" in *lastHeartbeatTime*) "
                                     f"echo '{status} {beat}';; *) echo '{status}';; esac\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    done = subprocess.run(["sh", "-c", node_ready(host)], env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
    assert (done.returncode == 0) is ready
