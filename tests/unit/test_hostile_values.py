"""No shell injection from settings or secrets (README: How a run behaves).

Every stage's plan and every check's commands, made for an inventory of hostile but accepted values, run
through the real remote layer's scripts on this machine, in a sandbox: as nobody, with a PATH in which every
program name is a stub that records its arguments and does nothing. Shell built-ins run for real, so a value
that escaped its quoting would either create the file PWNED (`$(echo x > PWNED)`) or call the stub `touch`
with PWNED (`; touch PWNED`). Neither may happen; and every file a stage writes or a program is pointed at
must be one the stage means to write.
"""

import base64
import os
import re
import shlex
from types import SimpleNamespace
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from groundwork.changes import ActionChange, CommandChange, FileChange, FileEdit, StageReport
from groundwork.context import RunContext
from groundwork.facts import Facts
from groundwork.inventory import load_inventory
from groundwork.remote import Masker, Remote
from tests.conftest import copy_seed_inventory

# Each breaks out of one kind of quoting (none, single, double) and must still run nothing: a payload with a
# lone quote alone would only make a broken command a syntax error, and prove nothing.
BARE = "$(echo x>PWNED);touch PWNED"
OUT_OF_SINGLE = "a';touch PWNED;'b"
OUT_OF_DOUBLE = 'b";touch PWNED;"c'
HOSTILE = {
    "cn": OUT_OF_SINGLE,
    "names": {"ST": OUT_OF_DOUBLE, "L": "`touch PWNED`", "O": "o && touch PWNED", "OU": BARE},
    "role": f"{BARE} {OUT_OF_SINGLE} {OUT_OF_DOUBLE}",
    "password": f"pw {BARE}",
}
# One write per call, so that the stubs of a pipeline do not interleave their lines.
STUB = """#!/bin/sh
line=${0##*/}; for a in "$@"; do line="$line$(printf '\\037')$a"; done; printf '%s\\n' "$line" >> "$GW_STUB_LOG"
case "${0##*/}" in mktemp) t="$GW_SANDBOX/tmp.$$"; : > "$t"; echo "$t"; exit 0;; esac
exit "$GW_STUB_RC"
"""
SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"  # found before PATH points at the stubs
OS_RELEASE = "ID=debian\nVERSION_ID=12\nPRETTY_NAME=Debian 12\nGW_KERNEL=6.1.0-13-amd64\n"


class SandboxRemote(Remote):
    """The real remote layer; its commands run in the sandbox, and its facts are those of an empty host."""

    sandbox: Path
    stub_rc: int  # what every program answers: 0 takes the paths where checks pass, 1 where they fail

    def _exec(self, command, stdin, timeout, handshake=None):
        as_nobody = [SETPRIV, "--reuid=nobody", "--regid=nogroup", "--clear-groups"] if os.geteuid() == 0 else []
        env = {"PATH": str(self.sandbox / "bin"), "GW_STUB_LOG": str(self.sandbox / "stub.log"),
               "GW_STUB_RC": str(self.stub_rc),
               "GW_SANDBOX": str(self.sandbox), "HOME": str(self.sandbox)}
        done = subprocess.run([*as_nobody, "/bin/sh", "-c", command], input=stdin, capture_output=True,
                              env=env, cwd=self.sandbox, timeout=60)
        return done.returncode, done.stdout, done.stderr

    ca_files = None  # the CA a host holds: its files read back as they are (etcd's certificates are issued)

    def gather(self, probes, sensitive=False):
        self.run(" ; ".join(p.script for p in probes), check=False)  # the probes' own scripts, for the record
        return Facts({p.key: p.parse(self._answer(p)) for p in probes})

    address = ""  # the host's own address, on eth0

    def _answer(self, probe) -> str:
        if probe.key == "os":
            return OS_RELEASE
        if probe.key == "interfaces":
            return f"2: eth0    inet {self.address}/24 brd 10.4.7.255 scope global eth0"
        if probe.key == "contents" and self.ca_files:
            held = {"ca.pem": self.ca_files.cert_pem, "ca-key.pem": self.ca_files.key_pem}
            paths = [shlex.split(p)[0] for p in re.findall(r"if \[ -f (\S+) \]", probe.script)]
            return "".join(f"@@gw-file 1\n{base64.b64encode(held[p.rsplit('/', 1)[1]]).decode()}\n"
                           if p.rsplit("/", 1)[1] in held else "@@gw-file 0\n" for p in paths)
        return ""


@pytest.fixture
def sandbox():
    # Outside pytest's tmp_path, whose parents nobody cannot enter.
    box = Path(tempfile.mkdtemp(prefix="gw-sandbox-"))
    box.chmod(0o755)
    (box / "bin").mkdir()
    stub = box / "stub"
    stub.write_text(STUB)
    stub.chmod(0o755)
    names = {n for d in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
             if os.path.isdir(d) for n in os.listdir(d)}
    for name in names | {"hostnamectl", "named-checkconf", "named-checkzone", "rndc", "nginx", "htpasswd", "docker",
                         "dig", "openssl", "curl", "systemctl", "journalctl", "apt-get", "yum", "dpkg-query",
                         "sysctl", "modprobe", "setenforce", "getenforce"}:
        if "/" not in name:
            (box / "bin" / name).symlink_to(stub)
    # The shell itself runs for real, and what write_file checks an upload with (what arrived, its size, digest).
    for real in ("sh", "dash", "bash", "cat", "stat", "sha256sum", "cut"):
        (box / "bin" / real).unlink(missing_ok=True)
        (box / "bin" / real).symlink_to(shutil.which(real) or "/bin/sh")
    (box / "stub.log").write_text("")
    for path in (box, box / "stub.log"):
        shutil.chown(path, "nobody", "nogroup") if os.geteuid() == 0 else None
    yield box
    shutil.rmtree(box)


@pytest.fixture
def hostile_inventory(tmp_path):
    folder = copy_seed_inventory(tmp_path)
    defaults = yaml.safe_load((folder / "defaults.yaml").read_text())
    data = defaults["data"]
    data["role"] = HOSTILE["role"]
    data["ca"] = {"cn": HOSTILE["cn"], "names": HOSTILE["names"], "dir": "/opt/c=rts,+@:x"}
    data["docker"].update(data_root="/data/dock,er=+@:x", extra_options={"labels": [BARE, OUT_OF_SINGLE, OUT_OF_DOUBLE]},
                          registry_mirrors=["https://mirror.example/?a=1&b=2"])
    data["host_prep"]["sysctl"] = {"net.ipv4.ip_forward": "1", "net.ipv4.ip_local_port_range": "32768 60999"}
    data["host_prep"]["sysctl_file"] = "/etc/sysctl.d/gw,=+@:x.conf"
    data["registry"] = {"data_dir": "/data/har,bor=+@:x"}
    data["etcd"] = {"data_dir": "/data/et,cd=+@:x/server", "cert_dir": "/opt/et,cd=+@:x", "backup_dir": "/data/b,ak=+@:x"}
    # The Kubernetes stages need the etcd client certificate and the server tarball on disk, which this sandbox
    # has not: their quoting is covered by test_kubernetes_decide (the tarball's install under a hostile path).
    data.pop("kubernetes", None)
    (folder / "defaults.yaml").write_text(yaml.safe_dump(defaults, allow_unicode=True))
    return load_inventory(folder)


def carry_out_everything(remote, plan, *args, **kwargs) -> StageReport:
    """Every change of a plan carried out whatever the one before did (a stand-in for apply_plan, which stops
    at the first failure: in the sandbox every wait for a service fails)."""
    for change in plan:
        try:
            if isinstance(change, FileChange):
                w = change.want
                remote.write_file(w.path, w.content, mode=w.mode, owner=w.owner, group=w.group,
                                  previous=change.before, validate=w.validate, sensitive=w.sensitive)
                remote.restore_file(w.path, f"/var/backups/groundwork{w.path}.20261124T000000Z")
            elif isinstance(change, ActionChange):
                change.action(remote)
            elif isinstance(change, FileEdit):
                remote.write_file(change.path, change.edit(b"events {}\n"), previous=b"events {}\n")
            elif isinstance(change, CommandChange):
                for command in change.commands + change.recover:
                    remote.run(command, check=False)
        except Exception:  # noqa: BLE001 - the sandbox's stubs answer nothing; only the commands matter here
            pass
    return StageReport()


@pytest.mark.parametrize("stub_rc", [0, 1], ids=["programs-succeed", "programs-fail"])
def test_no_value_escapes_its_quoting_in_any_stage_or_check(sandbox, hostile_inventory, monkeypatch, stub_rc):
    from groundwork.tasks.pipeline import PIPELINE
    from groundwork import pki, stages

    monkeypatch.setattr(stages, "apply_plan", carry_out_everything)  # the runner's apply, for every stage
    ca_files = pki.make_ca(hostile_inventory.defaults.ca)
    # The VRRP password is refused unless plain (secrets.VRRP_PASSWORD): the most it may hold.
    secrets = {"registry_password": HOSTILE["password"], "vrrp_password": "a.b_+=-9"}
    masker = Masker(secrets.values())

    def remote_for(host):
        remote = SandboxRemote(transport_factory=lambda: None, masker=masker)
        remote.sandbox, remote.stub_rc, remote.ca_files = sandbox, stub_rc, ca_files
        remote.address = str(host.address) if host else ""
        return remote

    inventory = hostile_inventory
    ctx = RunContext(inventory=inventory, dry_run=False, masker=masker, secrets=secrets)
    ran = []
    for stage in PIPELINE:
        for host in inventory.hosts.values():
            if stage.applies_to(host, inventory):
                try:
                    stage.execute(remote_for(host), host, ctx)
                    ran.append((stage.name, host.name))
                except Exception as exc:  # noqa: BLE001 - said below
                    ran.append((stage.name, host.name, repr(exc)))
    # Every stage on every host it is for, and to its end (the plan made whole on the empty host).
    assert [r for r in ran if len(r) > 2] == [] and len(ran) == 5 + 1 + 4 + 1 + 1 + 5 + 1 + 3 + 1 + 1 + 3 + 2 + 2

    stage_calls = stub_calls(sandbox)
    checks_ran = run_every_check(sandbox, inventory, secrets, masker, remote_for, monkeypatch)
    assert checks_ran > 40

    calls = stub_calls(sandbox)
    assert not (sandbox / "PWNED").exists(), "a value escaped its quoting: PWNED was written"
    assert [c for c in calls if c[0] == "touch"] == [], "a value escaped its quoting: touch ran"
    assert len(calls) > len(stage_calls) > 100
    if stub_rc:
        return  # every program failing, write_file stops before its rename: what is written is seen above
    written = {c[-1] for c in calls if c[0] == "mv" and c[1] == "-f"}
    assert "/opt/c=rts,+@:x/ca-key.pem" in written and "/etc/sysctl.d/gw,=+@:x.conf" in written
    wanted_files = {"/etc/hostname", "/etc/resolv.conf", "/etc/docker/daemon.json", "/etc/sysctl.d/gw,=+@:x.conf",
                    "/etc/default/etcd",
                    "/etc/modules-load.d/groundwork.conf", "/etc/apt/sources.list.d/groundwork-local.list"}
    allowed = ("/etc/bind/", "/var/lib/bind/", "/etc/nginx/", "/etc/keepalived/", "/etc/docker/",
               "/etc/systemd/system/", "/etc/chrony/",
               "/opt/c=rts,+@:x/", "/opt/et,cd=+@:x/", "/var/backups/groundwork/", str(sandbox))
    strays = sorted(p for p in written if p not in wanted_files and not p.startswith(allowed))
    assert strays == [], f"files written outside what the stages mean to write: {strays}"
    made = {a for c in calls if c[0] == "mkdir" for a in c[1:] if a.startswith("/")}
    assert {"/data/dock,er=+@:x", "/data/har,bor=+@:x/registry", "/data/et,cd=+@:x"} <= made


def stub_calls(sandbox: Path) -> list[list[str]]:
    return [line.split("\x1f") for line in (sandbox / "stub.log").read_text().splitlines()]


def run_every_check(sandbox, inventory, secrets, masker, remote_for, monkeypatch) -> int:
    """The verification pass itself (pytest and every module under checks/), over sandbox remotes."""
    import dns.query
    from groundwork import verify
    from groundwork.provenance import RunMetadata
    from groundwork.progress import Progress
    from groundwork.record import RunRecord

    def no_network(*args, **kwargs):  # the DNS checks ask from this machine: no query leaves it here
        raise OSError("no network in this test")
    monkeypatch.setattr(dns.query, "udp", no_network)

    class Session(verify.CheckSession):
        def _connect(self, host):
            self._remotes[host.name] = remote_for(host)

    targets = list(inventory.hosts.values())
    record = RunRecord(run_id="hostile", runbook="verify", dry_run=False, targets=[h.name for h in targets],
                       started="2026-11-24T00:00:00+00:00")
    meta = RunMetadata(run_id="hostile", runbook="verify", change_id="", operator="test", started=record.started,
                       ended=None, git_commit="", git_dirty=False, inventory_digest="", groups=[], hosts=record.targets,
                       dry_run=False)
    run = SimpleNamespace(nr=None, inventory=inventory, targets=targets, masker=masker, meta=meta, record=record,
                          progress=Progress(record, False, open(os.devnull, "w")), check_modules=None, secrets=secrets,
                          end=lambda: None)
    session = Session(run)
    results = verify.run_checks(session, sandbox / "report")
    assert not any(r["outcome"] == "error" and "load the checks" in r["title"] for r in results)
    # every command a check ran is one it declared with @reads, so the gather ran it in the batch
    assert {f"{r['check']} on {r['host']}": r["undeclared"] for r in results if r["undeclared"]} == {}
    return len(results)
