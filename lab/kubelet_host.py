"""What a kubelet needs of a host that a systemd-nspawn container on this machine does not give: lab only.

Written into each lab host on its first boot, never onto this machine, and never part of what groundwork does
on a real host (README: "What the lab does differently"). A oneshot unit runs the script at every boot of the
host, before docker:

1. /dev/kmsg: nspawn gives none, and the kubelet will not start without one (kind links /dev/console too).
2. kernel.panic=10, kernel.panic_on_oops=1, vm.overcommit_memory=1: the kubelet insists on these and fails on
   nspawn's read-only /proc/sys. They are this machine's global settings, so they are not set: a file holding
   the wanted value is bound over each, inside the host alone.
3. The cgroup v1 controllers, which nspawn mounts read-only: mounted again read-write inside the host's own
   cgroup namespace, so that docker can start containers at all.
4. A negative OOM score: a pod sandbox asks for oom_score_adj -998, and no process on this machine may go below
   0. A wrapper in place of runc (dpkg-divert, set before docker's runc is installed) rewrites a negative
   "oomScoreAdj" in the bundle's config.json to 0, then runs the real runc.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

UNIT = "groundwork-lab-kubelet-host.service"
SCRIPT = "/usr/local/sbin/groundwork-lab-kubelet-host"
RUNC_WRAPPER = "/usr/sbin/runc"
RUNC_REAL = "/usr/sbin/runc.groundwork-lab"
KERNEL_TUNABLES = {"kernel/panic": "10", "kernel/panic_on_oops": "1", "vm/overcommit_memory": "1"}

_SCRIPT = """#!/bin/sh
# Lab only (lab/kubelet_host.py): what a kubelet needs of a host that systemd-nspawn does not give.
set -eu
[ -e /dev/kmsg ] || ln -s /dev/console /dev/kmsg
mkdir -p /run/groundwork-lab/sysctl
for setting in {tunables}; do
    key=${{setting%%=*}}
    file=/run/groundwork-lab/sysctl/$(echo "$key" | tr / .)
    echo "${{setting#*=}}" > "$file"
    grep -q " /proc/sys/$key " /proc/self/mountinfo || mount --bind "$file" "/proc/sys/$key"
done
for dir in /sys/fs/cgroup/*; do
    name=${{dir##*/}}
    case "$name" in systemd|unified) continue;; esac
    [ -L "$dir" ] && continue
    if grep -q " $dir ro," /proc/self/mountinfo; then
        umount -l "$dir"
        mount -t cgroup -o "rw,nosuid,nodev,noexec,relatime,$name" cgroup "$dir"
    fi
done
"""

_UNIT = f"""# Lab only (lab/kubelet_host.py): what a kubelet needs of a host that systemd-nspawn does not give.
[Unit]
Description=groundwork lab: /dev/kmsg, kubelet's kernel tunables and writable cgroups inside this container
DefaultDependencies=no
After=local-fs.target
Before=docker.service kubelet.service sysinit.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart={SCRIPT}

[Install]
WantedBy=sysinit.target
"""

_RUNC = f"""#!/bin/sh
# Lab only (lab/kubelet_host.py): no process on the lab's machine may lower its OOM score below 0, which a pod
# sandbox asks for; the bundle's negative oomScoreAdj becomes 0, then the real runc runs.
bundle=
prev=
for arg in "$@"; do
    case "$prev" in --bundle|-b) bundle=$arg;; esac
    case "$arg" in --bundle=*) bundle=${{arg#--bundle=}};; esac
    prev=$arg
done
if [ -n "$bundle" ] && [ -f "$bundle/config.json" ]; then
    sed -i -E 's/"oomScoreAdj":-[0-9]+/"oomScoreAdj":0/' "$bundle/config.json"
fi
exec {RUNC_REAL} "$@"
"""


def script() -> str:
    return _SCRIPT.format(tunables=" ".join(f"{k}={v}" for k, v in KERNEL_TUNABLES.items()))


def install(root: Path) -> None:
    """Put the adjustments into a host's root (its first boot, before any package is installed there)."""
    # docker's runc, installed later, lands beside the wrapper instead of over it (diverted before the wrapper
    # is written: --rename would move the wrapper itself).
    subprocess.run(["chroot", str(root), "dpkg-divert", "--local", "--rename", "--divert", RUNC_REAL, "--add",
                    RUNC_WRAPPER], check=True, capture_output=True, text=True)
    files = {SCRIPT: (script(), 0o755), f"/etc/systemd/system/{UNIT}": (_UNIT, 0o644),
             RUNC_WRAPPER: (_RUNC, 0o755)}
    for path, (text, mode) in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        os.chmod(target, mode)
    wants = root / "etc/systemd/system/sysinit.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    link = wants / UNIT
    if not link.is_symlink():
        link.symlink_to(f"/etc/systemd/system/{UNIT}")
