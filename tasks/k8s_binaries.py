"""The Kubernetes server binaries (and the packages the nodes need) on every master_compute host, from the server tarball the inventory names.

The tarball is upstream's kubernetes-server-linux-amd64.tar.gz (or one laid out like it) on this machine; it is
checked against its SHA-256 before anything is sent. A host whose binaries (the tutorial's
/opt/kubernetes/server/bin) already have the tarball's digests gets nothing; else the tarball travels once over
the SSH session's stdin, is checked again on the host, and each binary replaces the old one atomically. kubectl
comes from the distribution's kubernetes-client of the same release.
"""

from __future__ import annotations

import hashlib
import shlex
import tarfile
from functools import lru_cache

from groundwork import facts as probes
from groundwork.changes import ActionChange, Change, StageError, StageReport, apply_plan, value_diff
from groundwork.facts import Facts
from groundwork.inventory import HostModel
from groundwork.platforms import install_missing, platform_for
from groundwork.remote import Remote
from groundwork.stages import RunContext, Stage
from tasks.kubernetes import k8s_stage_applies, verified_file

SERVER_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy")
MEMBER = "kubernetes/server/bin/{}"
UPLOAD_SECONDS = 300


@lru_cache(maxsize=4)
def tarball_digests(path: str, sha256: str) -> dict[str, str]:
    """Binary -> the SHA-256 of its member in the tarball (cached by the tarball's own digest)."""
    found = {}
    with tarfile.open(path, "r:gz") as tar:
        for member in tar:
            name = member.name.removeprefix("./")
            binary = next((b for b in SERVER_BINARIES if name == MEMBER.format(b)), None)
            if binary and member.isfile():
                digest = hashlib.sha256()
                with tar.extractfile(member) as f:
                    while chunk := f.read(1 << 20):
                        digest.update(chunk)
                found[binary] = digest.hexdigest()
    missing = [b for b in SERVER_BINARIES if b not in found]
    if missing:
        raise StageError(f"kubernetes.server_tarball: {path} lacks {', '.join(MEMBER.format(b) for b in missing)} "
                         "(upstream's kubernetes-server-linux-amd64.tar.gz has them)")
    return found


def stage_probes(host: HostModel) -> list[probes.Probe]:
    k = host.settings.kubernetes
    paths = [f"{k.bin_dir}/{b}" for b in SERVER_BINARIES]

    def parse(text: str) -> dict[str, str]:
        return {line.split()[1].rsplit("/", 1)[-1]: line.split()[0] for line in text.splitlines() if len(line.split()) == 2}
    packages = {p for lists in (k.kubectl_packages, k.node_packages) for v in lists.values() for p in v}
    return [probes.os_info(), probes.packages(sorted(packages)),
            probes.Probe("binaries", f"sha256sum {' '.join(shlex.quote(p) for p in paths)} 2>/dev/null; true", parse)]


def install_script(bin_dir: str, sha256: str, binaries: list[str]) -> str:
    """Read the tarball from stdin into a private folder, check it, put each binary in place atomically."""
    d = shlex.quote(bin_dir)
    moves = " && ".join(f"install -m 0755 \"$t/{MEMBER.format(b)}\" {d}/.{b}.new && mv -f {d}/.{b}.new {d}/{b}"
                        for b in binaries)
    return (f"t=$(mktemp -d) && trap 'rm -rf \"$t\"' EXIT && cat > \"$t/server.tar.gz\" && "
            f"echo {sha256}' '\"$t/server.tar.gz\" | sha256sum -c --quiet - && "
            f"tar -xzf \"$t/server.tar.gz\" -C \"$t\" {' '.join(MEMBER.format(b) for b in binaries)} && "
            f"mkdir -p {d} && {moves}")


def decide(host: HostModel, facts: Facts, wanted: dict[str, str], tarball: str, sha256: str) -> list[Change]:
    k = host.settings.kubernetes
    family = platform_for(facts["os"]).family
    plan: list[Change] = list(install_missing(platform_for(facts["os"]), [
        *k.kubectl_packages.get(family, []), *k.node_packages.get(family, [])], facts["packages"]))
    stale = [b for b in SERVER_BINARIES if facts["binaries"].get(b) != wanted[b]]
    if stale:
        def deliver(r: Remote) -> None:
            with open(tarball, "rb") as f:
                r.run(install_script(k.bin_dir, sha256, stale), stdin=f.read(), timeout=UPLOAD_SECONDS,
                      what=f"delivering {', '.join(stale)}")
        plan.append(ActionChange(f"install {', '.join(stale)} from the server tarball", "".join(
            value_diff(f"{k.bin_dir}/{b}", f"sha256:{facts['binaries'][b]}" if facts["binaries"].get(b) else None,
                       f"sha256:{wanted[b]}") for b in stale), deliver))
    return plan


def run(remote: Remote, host: HostModel, ctx: RunContext) -> StageReport:
    k = ctx.inventory.defaults.kubernetes
    tarball, sha256 = verified_file(k, "server_tarball")
    wanted = tarball_digests(str(tarball), sha256)
    facts = remote.gather(stage_probes(host))
    report = StageReport(notes=[f"server binaries from {tarball} (sha256:{sha256[:16]}...)"])
    return apply_plan(remote, decide(host, facts, wanted, str(tarball), sha256), ctx, report)


STAGE = Stage(name="k8s_binaries", title="Kubernetes server binaries and kubectl", groups=("master_compute",),
              run=run, select=k8s_stage_applies, checks="test_kubernetes.py")
