"""The lab's Kubernetes v1.20 server tarball, built once from Debian's own source package.

No release tarball can be fetched here, but Debian 12's `kubernetes` source package (1.20.5+really1.20.2) carries
the whole tree (cmd/, vendor/), and its own `make WHAT=...` builds the server binaries with Debian's golang-go.
The result is laid out as upstream's kubernetes-server-linux-amd64.tar.gz (kubernetes/server/bin/...), so the
inventory points at it exactly as a real operator points at the official tarball. Beside it: the static pause
binary from the same tree (build/pause/linux/pause.c), for the lab's pause image.

Cached under the lab's folder by a digest of what goes into it; never committed. The source comes through a
private apt configuration (its own sources list and lists folder), so the machine's apt sources stay untouched.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import threading
import time
from pathlib import Path

from lab.lab import LAB_DIR, LabError, _debian_mirror, _digest, _log, sh

SOURCE_PACKAGE = "kubernetes"
VERSION = "1.20.5+really1.20.2"  # bookworm's; the binaries report v1.20.2
SERVER_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy")
TARBALL = "kubernetes-server-linux-amd64.tar.gz"
PAUSE_VERSION = "3.2"  # the pause image version Kubernetes 1.20 uses
RECIPE = 1  # bump when the steps below change what they make


def kubernetes_dir() -> Path:
    return LAB_DIR / "kubernetes"


def _private_apt(work: Path) -> list[str]:
    """apt options that read and write only under work: a deb-src list of the machine's own mirror."""
    (work / "lists/partial").mkdir(parents=True, exist_ok=True)
    (work / "archives/partial").mkdir(parents=True, exist_ok=True)
    (work / "sources.list").write_text(
        f"deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {_debian_mirror()} bookworm main\n")
    return ["-o", f"Dir::Etc::SourceList={work / 'sources.list'}", "-o", "Dir::Etc::SourceParts=/nonexistent",
            "-o", f"Dir::State::Lists={work / 'lists'}", "-o", f"Dir::Cache::Archives={work / 'archives'}",
            "-o", "Dir::Cache::srcpkgcache=", "-o", "Dir::Cache::pkgcache=", "-o", "APT::Sandbox::User=root"]


def _fetch_source(work: Path) -> Path:
    """The unpacked source tree of bookworm's kubernetes source package."""
    options = _private_apt(work)
    sh("apt-get", *options, "update", "-qq")
    download = work / "download"
    download.mkdir(exist_ok=True)
    sh("apt-get", *options, "source", "--download-only", SOURCE_PACKAGE, cwd=download)
    dsc = next(download.glob(f"{SOURCE_PACKAGE}_*.dsc"), None)
    if dsc is None:
        raise LabError("apt-get source kubernetes brought no .dsc")
    tree = work / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    sh("dpkg-source", "-x", str(dsc), str(tree))  # apt checked every file against the signed Sources index
    return tree


def _make(tree: Path) -> None:
    """The tree's own build of the server binaries, at low priority, with a line of progress every 30 s."""
    env = {**os.environ, "GOCACHE": str(tree.parent / "gocache"), "GOPATH": str(tree.parent / "gopath"),
           "GOFLAGS": "-mod=vendor", "GO111MODULE": "on", "GOPROXY": "off", "KUBE_GIT_VERSION": "v1.20.2",
           "KUBE_GIT_TREE_STATE": "clean"}
    log = tree.parent / "make.log"
    started = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.Popen(["nice", "-n", "10", "make", f"WHAT={' '.join('cmd/' + b for b in SERVER_BINARIES)}"],
                                cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT)
        done = threading.Event()

        def progress() -> None:
            while not done.wait(30):
                last = (log.read_text(errors="replace").strip().splitlines() or ["(nothing yet)"])[-1][:100]
                _log(f"building Kubernetes: {time.monotonic() - started:.0f}s so far; {last}")
        threading.Thread(target=progress, daemon=True).start()
        rc = proc.wait()
        done.set()
    if rc != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise LabError(f"make in the Kubernetes tree failed (exit {rc}); the end of {log}:\n{tail}")


def _pause_checksum(folder: Path) -> None:
    """pause.sha256 beside the pause binary, which the inventory names as its checksum file."""
    checksum = folder / "pause.sha256"
    if not checksum.exists():
        checksum.write_text(f"{hashlib.sha256((folder / 'pause').read_bytes()).hexdigest()}  pause\n")


def build_kubernetes() -> Path:
    """The cached folder holding kubernetes-server-linux-amd64.tar.gz, its .sha256 and the static pause binary;
    built when missing (about 20 minutes on two cores, once)."""
    folder = kubernetes_dir()
    spec = _digest(SOURCE_PACKAGE, VERSION, SERVER_BINARIES, PAUSE_VERSION, RECIPE)
    marker = folder / ".groundwork-kubernetes"
    if marker.exists() and marker.read_text() == spec:
        _pause_checksum(folder)
        return folder
    for tool in ("go", "make", "gcc", "rsync", "dpkg-source"):
        if shutil.which(tool) is None:
            raise LabError(f"{tool} is missing: lab/setup installs golang-go, make, gcc, rsync and dpkg-dev")
    _log("building Kubernetes v1.20.2 from Debian's source package (about 20 minutes on two cores, once)")
    started = time.monotonic()
    work = LAB_DIR / "kubernetes.build"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    tree = _fetch_source(work)
    _make(tree)
    built = tree / "_output/local/bin/linux/amd64"
    out = work / "out"
    out.mkdir()
    with tarfile.open(out / TARBALL, "w:gz") as tar:
        for name in SERVER_BINARIES:
            tar.add(built / name, arcname=f"kubernetes/server/bin/{name}")
    digest = hashlib.sha256((out / TARBALL).read_bytes()).hexdigest()
    (out / f"{TARBALL}.sha256").write_text(f"{digest}  {TARBALL}\n")
    sh("gcc", "-Os", "-Wall", "-Werror", "-static", f"-DVERSION=v{PAUSE_VERSION}-groundwork-lab", "-o",
       str(out / "pause"), str(tree / "build/pause/linux/pause.c"))
    _pause_checksum(out)
    shutil.rmtree(folder, ignore_errors=True)
    out.rename(folder)
    shutil.rmtree(work, ignore_errors=True)
    marker.write_text(spec)
    _log(f"Kubernetes built in {time.monotonic() - started:.0f}s: {folder / TARBALL} (sha256 {digest[:16]}...)")
    return folder
