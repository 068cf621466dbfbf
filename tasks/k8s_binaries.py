"""The Kubernetes server binaries (and the packages the nodes need) on every master_compute host, from the server tarball the inventory names.

The tarball is upstream's kubernetes-server-linux-amd64.tar.gz (or one laid out like it) on this machine; it is
checked against its SHA-256 before anything is sent. A host whose binaries (the tutorial's
/opt/kubernetes/server/bin) already have the tarball's digests gets nothing; else the tarball travels once over
the SSH session's stdin, is checked again on the host, and each binary replaces the old one atomically. kubectl
comes from the distribution's kubernetes-client of the same release.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import tarfile
import threading
from pathlib import Path

from groundwork import facts as probes
from groundwork.changes import ActionChange, Change, CommandChange, StageError, value_diff
from groundwork.context import RunContext
from groundwork.facts import Facts
from groundwork.inventory import HostModel
from groundwork.platforms import candidate_packages, install_missing, platform_for
from groundwork.remote import Remote
from groundwork.stages import Stage
from groundwork.tasks.kubernetes import expected_sha256, k8s_stage_applies, verified_file

SERVER_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy")
MEMBER = "kubernetes/server/bin/{}"
UPLOAD_SECONDS = 300


_DIGESTS_LOCK = threading.Lock()  # the hosts' threads ask at once: one of them reads the tarball


def _digests_cache(sha256: str) -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "groundwork" / f"server-{sha256}.json"


def known_digests(sha256: str) -> dict[str, str] | None:
    """Binary -> SHA-256 as tarball_digests() noted them for a tarball with this digest; None when not noted."""
    try:
        found = json.loads(_digests_cache(sha256).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) and sorted(found) == sorted(SERVER_BINARIES) else None


def tarball_digests(path: str, sha256: str) -> dict[str, str]:
    """Binary -> the SHA-256 of its member in the tarball whose own SHA-256 is sha256 (checked by the caller).
    Unpacking 100 MB takes seconds, so the answer is kept, by that digest, in this user's cache folder."""
    cache = _digests_cache(sha256)
    with _DIGESTS_LOCK:
        found = known_digests(sha256)
        if found is not None:
            return found
        found = _member_digests(path)
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(found))
            tmp.replace(cache)
        except OSError:
            pass  # no cache: the next run unpacks it again
        return found


def _member_digests(path: str) -> dict[str, str]:
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


def _ledger(bin_dir: str) -> str:
    """Beside the binaries: each one's SHA-256, path, size and mtime as written, so that a no-op run reads them
    instead of hashing 400 MB on every master (a binary whose size or mtime changed is hashed again)."""
    return f"{bin_dir}/.groundwork-sha256"


def stage_probes(host: HostModel, family: str | None = None) -> list[probes.Probe]:
    k = host.settings.kubernetes
    ledger = shlex.quote(_ledger(k.bin_dir))
    each = " ".join(shlex.quote(f"{k.bin_dir}/{b}") for b in SERVER_BINARIES)
    script = (f"for f in {each}; do [ -f \"$f\" ] || continue; known=$(grep -F \" $f $(stat -c '%s %Y' \"$f\")\" "
              f"{ledger} 2>/dev/null | head -n 1); if [ -n \"$known\" ]; then echo \"${{known%% *}} $f known\"; "
              "else echo \"$(sha256sum < \"$f\" | cut -c1-64) $f hashed\"; fi; done; true")

    def parse(text: str) -> dict[str, tuple[str, bool]]:
        """binary -> (its SHA-256, whether the ledger had it)"""
        return {w[1].rsplit("/", 1)[-1]: (w[0], w[2] == "known") for w in map(str.split, text.splitlines())
                if len(w) == 3}
    packages = {p for lists in (k.kubectl_packages, k.node_packages) for p in candidate_packages(lists, family)}
    return [probes.os_info(), probes.packages(sorted(packages)), probes.Probe("binaries", script, parse)]


def note_script(bin_dir: str) -> str:
    """Write the ledger of every binary there: its SHA-256, path, size and mtime."""
    ledger = shlex.quote(_ledger(bin_dir))
    return (f"for f in {' '.join(shlex.quote(f'{bin_dir}/{b}') for b in SERVER_BINARIES)}; do [ -f \"$f\" ] && "
            f"echo \"$(sha256sum < \"$f\" | cut -c1-64) $f $(stat -c '%s %Y' \"$f\")\"; done > {ledger}.new; "
            f"mv -f {ledger}.new {ledger}")


def install_script(bin_dir: str, sha256: str, binaries: list[str]) -> str:
    """Read the tarball from stdin into a private folder, check it, put each binary in place atomically, then
    note every binary's digest, size and mtime in the ledger."""
    d = shlex.quote(bin_dir)
    moves = " && ".join(f"install -m 0755 \"$t/{MEMBER.format(b)}\" {d}/.{b}.new && mv -f {d}/.{b}.new {d}/{b}"
                        for b in binaries)
    note = note_script(bin_dir)
    return (f"t=$(mktemp -d) && trap 'rm -rf \"$t\"' EXIT && cat > \"$t/server.tar.gz\" && "
            f"echo {sha256}' '\"$t/server.tar.gz\" | sha256sum -c --quiet - && "
            f"tar -xzf \"$t/server.tar.gz\" -C \"$t\" {' '.join(MEMBER.format(b) for b in binaries)} && "
            f"mkdir -p {d} && {moves} && {{ {note}; }}")


def node_installs(k) -> dict[str, list[str]]:
    """By OS family: kubectl and the packages the nodes need."""
    return {f: [*k.kubectl_packages.get(f, []), *k.node_packages.get(f, [])]
            for f in {*k.kubectl_packages, *k.node_packages}}


def stale_binaries(facts: Facts, wanted: dict[str, str]) -> list[str]:
    """The server binaries whose digest on the host is not the tarball's."""
    return [b for b in SERVER_BINARIES if facts["binaries"].get(b, (None, False))[0] != wanted[b]]


def decide(host: HostModel, facts: Facts, wanted: dict[str, str], tarball: str, sha256: str) -> list[Change]:
    k = host.settings.kubernetes
    platform = platform_for(facts["os"])
    plan: list[Change] = list(install_missing(platform, node_installs(k).get(platform.family, []), facts["packages"]))
    found = {b: facts["binaries"].get(b, (None, False)) for b in SERVER_BINARIES}
    stale = stale_binaries(facts, wanted)
    if not stale and not all(known for _, known in found.values()):
        plan.append(CommandChange(f"note the binaries' digests in {_ledger(k.bin_dir)}", [note_script(k.bin_dir)],
                                  value_diff(_ledger(k.bin_dir), None, "every binary's SHA-256, size and mtime")))
    if stale:
        def deliver(r: Remote) -> None:
            with open(tarball, "rb") as f:
                r.run(install_script(k.bin_dir, sha256, stale), stdin=f.read(), timeout=UPLOAD_SECONDS,
                      what=f"delivering {', '.join(stale)}")
        plan.append(ActionChange(f"install {', '.join(stale)} from the server tarball", "".join(
            value_diff(f"{k.bin_dir}/{b}", f"sha256:{found[b][0]}" if found[b][0] else None,
                       f"sha256:{wanted[b]}") for b in stale), deliver))
    return plan


def decide_step(host: HostModel, facts: Facts, ctx: RunContext, notes: list[str]) -> list[Change]:
    """The tarball is checked on this machine before it is unpacked or anything of it is delivered: nothing of a
    damaged or different one is sent. A host whose binaries have the digests noted for the inventory's tarball
    digest needs nothing of it, and the 100 MB are not read (a no-op run's largest piece of work here)."""
    k = ctx.inventory.defaults.kubernetes
    sha256 = expected_sha256(k.server_tarball_sha256, "server_tarball_sha256")
    wanted = known_digests(sha256)
    if wanted is None or stale_binaries(facts, wanted):
        tarball, sha256 = verified_file(k, "server_tarball")
        wanted = tarball_digests(str(tarball), sha256)
    notes.append(f"server binaries from {k.server_tarball} (sha256:{sha256[:16]}...)")
    return decide(host, facts, wanted, k.server_tarball, sha256)


STAGE = Stage(name="k8s_binaries", title="Kubernetes server binaries and kubectl", groups=("master_compute",),
              needs=("host_prep",), installs=lambda host: node_installs(host.settings.kubernetes),
              select=k8s_stage_applies, checks="test_kubernetes.py",
              probes=lambda host, ctx: stage_probes(host, ctx.family(host.name)), decide=decide_step)
