"""The local lab: the inventory's hosts as systemd-nspawn machines on this machine.

Each host boots real systemd and sshd from an overlay on one cached Debian 12 base, in a network namespace
of its own, wired by a veth into a bridge on this machine with its inventory address and no default route.
A local package repository with everything the stages install is bind-mounted read-only at /srv/repo,
and /data is a directory of a real filesystem (docker's overlay2 does not work on an overlay root).

Everything lives under LAB_DIR; `up` copes with what an earlier lab left behind (namespaces, mounts,
hosts whose container died), `down` removes what it made and keeps the base image and repository caches.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

from groundwork.inventory import Inventory
from groundwork.settings import SEED_BASE_PACKAGES
from lab import kubelet_host

LAB_DIR = Path(os.environ.get("GROUNDWORK_LAB_DIR", "/var/lib/groundwork-lab"))
BRIDGE = "gwlab0"
SUITE = "bookworm"
BASE_PACKAGES = ["systemd", "systemd-sysv", "dbus", "openssh-server", "iproute2", "iputils-ping",
                 "ca-certificates", "sudo", "procps", "kmod"]
# What the stages install on Debian hosts, served offline from the lab's repository.
REPO_PACKAGES = sorted({*SEED_BASE_PACKAGES["debian"], "bind9", "bind9-utils", "bind9-dnsutils", "dnsmasq",
                        "docker.io", "nginx", "docker-registry", "apache2-utils", "curl", "openssl",
                        "etcd-server", "etcd-client", "libnginx-mod-stream", "keepalived",
                        "kubernetes-client", "busybox-static", "conntrack", "chrony",
                        "socat"})  # socat: the L4 proxy test's stand-in apiserver (a test fixture)
SUDO_USER = "gwadmin"  # a lab user with passwordless sudo, for running groundwork as a non-root user
# A lab user whose sudo asks for its password (sudo_password()), as on hosts where operators log in with
# a key and sudo wants the password: the password reaches sudo only when sudo asks for it.
PASSWORD_SUDO_USER = "gwsudo"
SSH_WAIT = 90.0


class LabError(Exception):
    pass


def sh(*args: str, check: bool = True, quiet: bool = False, **kw) -> subprocess.CompletedProcess:
    result = subprocess.run(args, text=True, capture_output=True, **kw)
    if check and result.returncode != 0:
        raise LabError(f"{' '.join(args)} failed (exit {result.returncode}): {(result.stderr or result.stdout).strip()}")
    return result


def _digest(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def _log(message: str) -> None:
    print(f"lab: {message}", flush=True)


# -- caches: base image, package repository, SSH key ---------------------------------------------------

def base_dir() -> Path:
    return LAB_DIR / "base"


def build_base() -> Path:
    """Debootstrap the Debian 12 base once; later calls find it by its marker and return at once."""
    base = base_dir()
    spec = _digest(SUITE, BASE_PACKAGES, 2)
    marker = base / ".groundwork-base"
    if marker.exists() and marker.read_text() == spec:
        return base
    build = LAB_DIR / "base.build"
    done = build / ".debootstrap-complete"
    if not (done.exists() and done.read_text() == spec):
        shutil.rmtree(build, ignore_errors=True)
        _log(f"building the Debian {SUITE} base image with debootstrap (about a minute, once)")
        started = time.monotonic()
        sh("debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", SUITE, str(build),
           _debian_mirror())
        done.write_text(spec)
        _log(f"base image built in {time.monotonic() - started:.0f}s")
    # Per-host identity comes later: no shared host keys or machine-id in the base.
    for key in (build / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (build / "etc/machine-id").write_text("")
    # Offline hosts: the only package sources are the ones host preparation writes.
    (build / "etc/apt/sources.list").write_text("")
    (build / "etc/ssh/sshd_config.d").mkdir(exist_ok=True)
    (build / "etc/ssh/sshd_config.d/lab.conf").write_text("UseDNS no\nPermitRootLogin prohibit-password\n")
    if sh("chroot", str(build), "id", SUDO_USER, check=False).returncode != 0:
        sh("chroot", str(build), "useradd", "--create-home", "--shell", "/bin/bash", SUDO_USER)
    (build / f"etc/sudoers.d/{SUDO_USER}").write_text(f"{SUDO_USER} ALL=(ALL) NOPASSWD:ALL\n")
    os.chmod(build / f"etc/sudoers.d/{SUDO_USER}", 0o440)
    shutil.rmtree(base, ignore_errors=True)
    done.unlink()
    build.rename(base)
    marker.write_text(spec)
    return base


def _debian_mirror() -> str:
    """The machine's own Debian mirror, from its apt sources."""
    for path in [Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")]:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            words = line.split()
            if words[:1] == ["URIs:"] and len(words) > 1 and not words[1].endswith("-security"):
                return words[1]
            if words[:1] == ["deb"]:
                url = next((w for w in words[1:] if "://" in w), None)
                if url and "security" not in url:
                    return url
    raise LabError("no Debian mirror found in /etc/apt/sources.list(.d)")


def repo_dir() -> Path:
    return LAB_DIR / "repo"


def build_repo() -> Path:
    """Download every package the stages install (with what the base lacks of their dependencies) and index them."""
    base, repo = base_dir(), repo_dir()
    spec = _digest(REPO_PACKAGES, (base / ".groundwork-base").read_text())
    marker = repo / ".groundwork-repo"
    if marker.exists() and marker.read_text() == spec:
        return repo
    _log(f"downloading {len(REPO_PACKAGES)} packages and their dependencies into the lab repository")
    build = LAB_DIR / "repo.build"
    shutil.rmtree(build, ignore_errors=True)
    (build / "partial").mkdir(parents=True)
    sh("apt-get", "update", "-qq")
    # The base's dpkg status makes apt fetch exactly what a fresh lab host is missing.
    sh("apt-get", "install", "--download-only", "-y", "-qq", "--no-install-recommends",
       "-o", f"Dir::State::status={base}/var/lib/dpkg/status", "-o", f"Dir::Cache::archives={build}",
       *REPO_PACKAGES)
    shutil.rmtree(build / "partial")
    (build / "lock").unlink(missing_ok=True)
    packages = sh("dpkg-scanpackages", "--multiversion", ".", "/dev/null", cwd=build).stdout
    (build / "Packages").write_text(packages)
    shutil.rmtree(repo, ignore_errors=True)
    build.rename(repo)
    marker.write_text(spec)
    _log(f"repository ready: {len(list(repo.glob('*.deb')))} packages")
    return repo


def ssh_key() -> Path:
    key = LAB_DIR / "ssh/id_ed25519"
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "groundwork-lab", "-f", str(key))
    return key


def known_hosts() -> Path:
    return LAB_DIR / "ssh/known_hosts"


def sudo_password() -> str:
    """The password of PASSWORD_SUDO_USER on every lab host: random, made once, readable by root only. It has
    a space and shell characters, as real passwords do."""
    path = LAB_DIR / "ssh/sudo_password"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(f"gw {secrets.token_urlsafe(12)} $'\";|&")
    return path.read_text()


# -- hosts --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LabHost:
    name: str
    address: IPv4Address
    prefixlen: int

    @property
    def state(self) -> Path:
        return LAB_DIR / "hosts" / self.name

    @property
    def root(self) -> Path:
        return self.state / "root"

    @property
    def netns(self) -> str:
        return f"gw-{self.name}"

    @property
    def veth(self) -> str:
        return "gwv" + hashlib.sha1(self.name.encode()).hexdigest()[:8]

    @property
    def mac(self) -> str:
        """Stable across restarts, so that neighbours' ARP caches stay right when a host comes back."""
        digest = hashlib.sha1(self.name.encode()).digest()
        return "02:67:77:" + ":".join(f"{b:02x}" for b in digest[:3])

    @property
    def pidfile(self) -> Path:
        return self.state / "nspawn.pid"


def lab_hosts(inventory: Inventory) -> list[LabHost]:
    return [LabHost(h.name, h.address, h.settings.network.prefixlen) for h in inventory.hosts.values()]


def controller_address(inventory: Inventory) -> IPv4Interface:
    """The bridge's address on this machine: the network's last usable address, never a host's."""
    net = inventory.defaults.network
    taken = {h.address for h in inventory.hosts.values()}
    for candidate in reversed(list(net.hosts())[-16:]):
        if candidate not in taken:
            return IPv4Interface(f"{candidate}/{net.prefixlen}")
    raise LabError(f"no free address for this machine in {net}")


def nspawn_pid(host: LabHost) -> int | None:
    """The host's running systemd-nspawn, or None (no pid file, or a stale one from an earlier session)."""
    try:
        pid = int(host.pidfile.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if cmdline and cmdline[0].endswith(b"systemd-nspawn") and str(host.root).encode() in cmdline else None


def ssh_open(host: LabHost, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((str(host.address), 22), timeout=timeout) as conn:
            conn.settimeout(timeout)
            return conn.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def _mounted(path: Path) -> bool:
    target = str(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == target for line in f)


def _host_pids(host: LabHost) -> set[int]:
    """Every process of the host: nspawn and, in their own PID namespace, the container's processes,
    which outlive a killed nspawn. The host's cgroup tree holds them all."""
    pids: set[int] = set()
    for hierarchy in _cgroup_hierarchies():
        group = hierarchy / "groundwork-lab" / host.name
        for procs in group.rglob("cgroup.procs") if group.exists() else []:
            try:
                pids.update(int(p) for p in procs.read_text().split())
            except OSError:
                pass
    return pids


def _kill_all(host: LabHost) -> None:
    deadline = time.monotonic() + 10
    while (pids := _host_pids(host)) and time.monotonic() < deadline:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)


def stop_host(host: LabHost, timeout: float = 20.0) -> None:
    """Stop the host's container (orderly, then killed), unmount its root and remove its namespace."""
    pid = nspawn_pid(host)
    if pid:
        os.kill(pid, signal.SIGTERM)  # nspawn asks the container's systemd to power off
        deadline = time.monotonic() + timeout
        while nspawn_pid(host) and time.monotonic() < deadline:
            time.sleep(0.2)
    _kill_all(host)  # what is left, including a container whose nspawn died in an earlier session
    host.pidfile.unlink(missing_ok=True)
    if _mounted(host.root):
        if sh("umount", str(host.root), check=False).returncode != 0:
            sh("umount", "-l", str(host.root), check=False)
    if host.netns in sh("ip", "netns", "list").stdout.split():
        sh("ip", "netns", "delete", host.netns, check=False)
    sh("ip", "link", "delete", host.veth, check=False)
    for hierarchy in _cgroup_hierarchies():
        group = hierarchy / "groundwork-lab" / host.name
        for sub in sorted(group.rglob("*/"), key=lambda p: len(p.parts), reverse=True) if group.exists() else []:
            if sub.is_dir():
                try:
                    sub.rmdir()
                except OSError:
                    pass
        try:
            group.rmdir()
        except OSError:
            pass


def kill_host(host: LabHost) -> None:
    """Pull the plug: kill every process of the host at once, leaving its namespace and files (a crash). The
    namespace's kernel lives on and answers for the host's own address (a refused connection, so that clients
    fail fast); the addresses its daemons added (keepalived's VIP) go with them, as they do from a crashed
    machine."""
    _kill_all(host)
    for line in sh("ip", "-n", host.netns, "-o", "-4", "addr", "show", "dev", "eth0", check=False).stdout.splitlines():
        address = line.split()[3]
        if address.split("/")[0] != str(host.address):
            sh("ip", "-n", host.netns, "addr", "del", address, "dev", "eth0", check=False)


def _cgroup_hierarchies() -> list[Path]:
    seen, out = set(), []
    for path in sorted(Path("/sys/fs/cgroup").glob("*/")):
        real = path.resolve()
        if real not in seen and (real / "cgroup.procs").exists():
            seen.add(real)
            out.append(real)
    return out


def _join_own_cgroup(name: str) -> None:
    """Runs in the child before exec: one cgroup per host in every hierarchy, so that services started on
    several hosts at once do not collide (status 219/CGROUP without it, on this cgroup v1 machine)."""
    for hierarchy in _cgroup_hierarchies():
        group = hierarchy / "groundwork-lab" / name
        group.mkdir(parents=True, exist_ok=True)
        for knob in ("cpuset.cpus", "cpuset.mems"):
            for level in (group.parent, group):
                if (level / knob).exists() and not (level / knob).read_text().strip():
                    (level / knob).write_text((level.parent / knob).read_text())
        (group / "cgroup.procs").write_text(str(os.getpid()))


def _first_boot_files(host: LabHost, authorized_key: str) -> None:
    """Identity a real server has and the shared base must not: machine-id, hostname, host keys, /etc/hosts."""
    root = host.root
    (root / "etc/machine-id").write_text(uuid.uuid4().hex + "\n")
    (root / "etc/hostname").write_text(host.name + "\n")
    (root / "etc/hosts").write_text("127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n")
    (root / "etc/resolv.conf").unlink(missing_ok=True)
    (root / "etc/resolv.conf").write_text("# no resolver until the DNS stage writes one\n")
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{host.name}",
       "-f", str(root / "etc/ssh/ssh_host_ed25519_key"))
    sh("chroot", str(root), "useradd", "--create-home", "--shell", "/bin/bash", PASSWORD_SUDO_USER)
    sh("chroot", str(root), "chpasswd", input=f"{PASSWORD_SUDO_USER}:{sudo_password()}\n")
    (root / f"etc/sudoers.d/{PASSWORD_SUDO_USER}").write_text(f"{PASSWORD_SUDO_USER} ALL=(ALL) ALL\n")
    os.chmod(root / f"etc/sudoers.d/{PASSWORD_SUDO_USER}", 0o440)
    kubelet_host.install(root)  # lab only: what a kubelet needs that nspawn does not give
    for user in ("root", SUDO_USER, PASSWORD_SUDO_USER):
        home = root / ("root" if user == "root" else f"home/{user}")
        ssh_dir = home / ".ssh"
        ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text(authorized_key)
        os.chmod(ssh_dir / "authorized_keys", 0o600)
        uid = int(sh("chroot", str(root), "id", "-u", user).stdout)  # the user's uid inside the host
        for path in (ssh_dir, ssh_dir / "authorized_keys"):
            os.chown(path, uid, uid)


def _write_known_hosts(hosts: list[LabHost]) -> None:
    """The hosts' keys, in place of any earlier ones for their addresses. Lines for other addresses stay: hosts
    another inventory booted (a test adding a host to a copy of the project's) are still running."""
    ours = {str(h.address) for h in hosts}
    earlier = known_hosts().read_text().splitlines(keepends=True) if known_hosts().exists() else []
    lines = [line for line in earlier if line.split(" ", 1)[0] not in ours]
    for host in hosts:
        pub = host.root / "etc/ssh/ssh_host_ed25519_key.pub"
        if pub.exists():
            keytype, key = pub.read_text().split()[:2]
            lines.append(f"{host.address} {keytype} {key}\n")
    tmp = known_hosts().with_suffix(".tmp")
    tmp.write_text("".join(lines))
    tmp.replace(known_hosts())


def ensure_inotify(hosts: int) -> None:
    """Each host's systemd, journald and logind hold inotify instances counted against root on this machine;
    the kernel's default of 128 stops the 37th host from booting. Raise it (never lower it) for the lab."""
    path = Path("/proc/sys/fs/inotify/max_user_instances")
    wanted = 128 + 8 * hosts
    if int(path.read_text()) < wanted:
        path.write_text(str(wanted))
        _log(f"raised fs.inotify.max_user_instances to {wanted} for {hosts} hosts")


def neighbour_limits(hosts: int) -> dict[str, int]:
    """The ARP table sizes n lab hosts need. Every network namespace's ARP entries count against one table of
    this machine's kernel, whose limits only the first namespace sets (gc_thresh3, the hard limit, is 1024 by
    default): n hosts that each reach every other, and this machine that reaches them all, need about n² + n
    entries. Past the limit the kernel drops new neighbours ("neighbor table overflow" in dmesg), and pings and
    SSH sessions fail at random: at 50 hosts, that was the pings hdss7-28 lost."""
    need = hosts * hosts + hosts
    return {"gc_thresh1": need, "gc_thresh2": 2 * need, "gc_thresh3": 4 * need}


def ensure_neighbour_room(hosts: int) -> None:
    """Raise the kernel's ARP table limits (never lower them) to fit the lab's hosts."""
    for name, wanted in neighbour_limits(hosts).items():
        path = Path(f"/proc/sys/net/ipv4/neigh/default/{name}")
        if int(path.read_text()) < wanted:
            path.write_text(str(wanted))
            _log(f"raised net.ipv4.neigh.default.{name} to {wanted} for {hosts} hosts")


def ensure_bridge(inventory: Inventory) -> None:
    address = controller_address(inventory)
    if sh("ip", "link", "show", BRIDGE, check=False).returncode != 0:
        sh("ip", "link", "add", BRIDGE, "type", "bridge")
    if str(address) not in sh("ip", "-4", "addr", "show", BRIDGE).stdout:
        sh("ip", "addr", "flush", "dev", BRIDGE)
        sh("ip", "addr", "add", str(address), "dev", BRIDGE)
    sh("ip", "link", "set", BRIDGE, "up")
    # Bridged traffic between hosts crosses this machine's FORWARD chain (bridge netfilter is on), whose
    # policy may be DROP where a dockerd once ran.
    rule = ["FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT"]
    if shutil.which("iptables") and sh("iptables", "-C", *rule, check=False).returncode != 0:
        sh("iptables", "-I", *rule, check=False)


def start_host(host: LabHost, base: Path, repo: Path, authorized_key: str, fresh: bool = False) -> None:
    stop_host(host)
    if fresh:
        shutil.rmtree(host.state, ignore_errors=True)
    for sub in ("upper", "work", "root", "data"):
        (host.state / sub).mkdir(parents=True, exist_ok=True)
    first_boot = not (host.state / "upper/etc/machine-id").exists()
    sh("mount", "-t", "overlay", "overlay", "-o",
       f"lowerdir={base},upperdir={host.state / 'upper'},workdir={host.state / 'work'}", str(host.root))
    if first_boot:
        _first_boot_files(host, authorized_key)

    sh("ip", "netns", "add", host.netns)
    sh("ip", "link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", host.netns,
       "address", host.mac)
    sh("ip", "-n", host.netns, "addr", "add", f"{host.address}/{host.prefixlen}", "dev", "eth0")
    sh("ip", "-n", host.netns, "link", "set", "lo", "up")
    sh("ip", "-n", host.netns, "link", "set", "eth0", "up")
    sh("ip", "link", "set", host.veth, "master", BRIDGE, "up")

    env = {**os.environ, "SYSTEMD_NSPAWN_API_VFS_WRITABLE": "network"}  # per-namespace /proc/sys/net for sysctl
    log = open(host.state / "console.log", "ab")
    proc = subprocess.Popen(
        ["systemd-nspawn", "-D", str(host.root), "--boot", "--register=no", "--keep-unit",
         f"--machine={host.name}", f"--network-namespace-path=/run/netns/{host.netns}", "--capability=all",
         "--system-call-filter=@keyring bpf", "--console=read-only", "--resolv-conf=off", "--timezone=off",
         f"--bind={host.state / 'data'}:/data", f"--bind-ro={repo}:/srv/repo"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        preexec_fn=lambda: _join_own_cgroup(host.name))
    host.pidfile.write_text(str(proc.pid))


def wait_for_ssh(hosts: list[LabHost], timeout: float = SSH_WAIT) -> list[LabHost]:
    """The hosts whose sshd did not answer in time."""
    deadline = time.monotonic() + timeout
    waiting = list(hosts)
    while waiting and time.monotonic() < deadline:
        waiting = [h for h in waiting if not ssh_open(h)]
        if waiting:
            time.sleep(0.3)
    return waiting


def up(inventory: Inventory, fresh: bool = False, only: list[str] | None = None) -> None:
    """Bring the lab to running: every host booted and answering SSH. Running hosts are left alone."""
    LAB_DIR.mkdir(parents=True, exist_ok=True)
    base = build_base()
    marker = repo_dir() / ".groundwork-repo"
    before = marker.read_text() if marker.exists() else None
    repo = build_repo()
    # A rebuilt repository is a new folder: hosts running on the old one see a removed folder at /srv/repo
    # until they start again.
    rebuilt = before is not None and marker.read_text() != before
    authorized_key = ssh_key().with_suffix(".pub").read_text()
    ensure_bridge(inventory)
    ensure_inotify(len(inventory.hosts))
    ensure_neighbour_room(len(inventory.hosts))
    hosts = [h for h in lab_hosts(inventory) if not only or h.name in only]
    started = time.monotonic()
    booted = []
    for host in hosts:
        if not fresh and not rebuilt and nspawn_pid(host) and ssh_open(host):
            continue
        start_host(host, base, repo, authorized_key, fresh=fresh)
        booted.append(host)
    _write_known_hosts(lab_hosts(inventory))
    wait = max(SSH_WAIT, 2.0 * len(booted))  # many hosts booting at once share this machine's cores
    late = wait_for_ssh(booted, wait)
    if late:
        raise LabError(f"no SSH answer within {wait:.0f}s from {', '.join(h.name for h in late)}; "
                       f"see {LAB_DIR}/hosts/NAME/console.log")
    if booted:
        _log(f"booted {', '.join(h.name for h in booted)} in {time.monotonic() - started:.1f}s")
    _log(f"{len(hosts)} host(s) up; ssh -i {ssh_key()} -o UserKnownHostsFile={known_hosts()} root@ADDRESS")


def down(inventory: Inventory, purge: bool = False) -> None:
    """Stop every host and remove what the lab made; the base image and repository stay unless purge."""
    for host in lab_hosts(inventory):
        stop_host(host)
        shutil.rmtree(host.state, ignore_errors=True)
    # Hosts of an earlier inventory that are still around.
    for state in (LAB_DIR / "hosts").glob("*") if (LAB_DIR / "hosts").exists() else []:
        stop_host(LabHost(state.name, IPv4Address("0.0.0.0"), 32))
        shutil.rmtree(state, ignore_errors=True)
    sh("ip", "link", "delete", BRIDGE, check=False)
    if shutil.which("iptables"):
        sh("iptables", "-D", "FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT", check=False)
    for hierarchy in _cgroup_hierarchies():
        try:
            (hierarchy / "groundwork-lab").rmdir()
        except OSError:
            pass
    if purge:
        shutil.rmtree(LAB_DIR, ignore_errors=True)
    _log("down" + (" and purged" if purge else "; base image and repository kept for the next `up`"))


def status(inventory: Inventory) -> list[dict]:
    rows = []
    for host in lab_hosts(inventory):
        pid = nspawn_pid(host)
        rows.append({"host": host.name, "address": str(host.address), "container": f"running (pid {pid})" if pid
                     else "stopped", "ssh": "open" if pid and ssh_open(host) else "closed"})
    return rows
