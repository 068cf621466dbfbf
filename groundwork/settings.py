"""The settings every stage reads, with the seeds' values as defaults.

They live in inventory data (defaults.yaml, a group's or a host's `data`) and are validated here before
any host is contacted. Unknown keys are refused so that a typo never silently falls back to a default.
"""

from __future__ import annotations

import re

from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

def _matching(pattern: str, what: str) -> AfterValidator:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid {what}")
        return value

    return AfterValidator(check)


_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
DnsName = Annotated[str, Field(max_length=253), _matching(rf"{_LABEL}(\.{_LABEL})*", "DNS name")]
PackageName = Annotated[str, _matching(r"[A-Za-z0-9][A-Za-z0-9+._-]*", "package name")]
# Values that reach a shell are quoted everywhere; these patterns keep them plain besides, so that a path or
# a name is never read as two words, a second line of a file, or a command.
AbsPath = Annotated[str, _matching(r"/[A-Za-z0-9._+@:,=/-]*", "absolute path of letters, digits and . _ - + @ : , = / "
                                                            "(no spaces, quotes, newlines or shell characters)")]
OneLine = Annotated[str, _matching(r"[^\x00-\x1f\x7f]*", "single line of text (no newline or control character)")]
RegistryHost = Annotated[str, _matching(r"[A-Za-z0-9.-]+(:\d{1,5})?(/\d{1,2})?",
                                        "registry host[:port] or network/prefix")]
Url = Annotated[str, _matching(r"https?://[A-Za-z0-9._~:/?#@!&+,;=%-]+", "http:// or https:// URL")]
Identifier = Annotated[str, _matching(r"[A-Za-z0-9_.-]+", "name (letters, digits, _ . -)")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PackageRepo(Strict):
    """A package repository the hosts install from (seed 004's offline repository)."""

    name: Identifier = "groundwork-local"
    url: Annotated[str, _matching(r"(file:/|https?://)[A-Za-z0-9._~:/?#@!&+,=%-]+",
                                  "repository URL (file:, http:// or https://, no spaces, quotes or ;)")]
    # apt: "./" for a flat repository (dpkg-scanpackages), else a suite such as "bookworm" with components.
    suite: Annotated[str, _matching(r"[A-Za-z0-9./_-]+", "suite")] = "./"
    components: list[Identifier] = Field(default_factory=list)
    # Installed from without a signature check (apt [trusted=yes], yum gpgcheck=0). Default: only a file:
    # repository on the host itself; one reached over the network must be signed (see the README).
    trusted: bool | None = None

    @property
    def unsigned(self) -> bool:
        return self.url.startswith("file:") if self.trusted is None else self.trusted


# Seeds 000/002: `yum install epel-release` then these tools; Debian names the same tools this way.
SEED_BASE_PACKAGES = {
    "el": ["epel-release", "wget", "net-tools", "telnet", "tree", "nmap", "sysstat", "lrzsz", "dos2unix", "bind-utils"],
    "debian": ["wget", "net-tools", "telnet", "tree", "nmap", "sysstat", "lrzsz", "dos2unix", "bind9-dnsutils"],
}
# Seed 001: /etc/sysctl.d/docker.conf.
SEED_SYSCTL = {
    "net.bridge.bridge-nf-call-ip6tables": "1",
    "net.bridge.bridge-nf-call-iptables": "1",
    "net.ipv4.conf.default.rp_filter": "0",
    "net.ipv4.conf.all.rp_filter": "0",
    "net.ipv4.ip_forward": "1",
}


class HostPrep(Strict):
    set_hostname: bool = True
    disable_selinux: bool = True
    disable_firewalld: bool = True
    base_packages: dict[Literal["el", "debian"], list[PackageName]] = Field(
        default_factory=lambda: {k: list(v) for k, v in SEED_BASE_PACKAGES.items()})
    # Docker needs 3.10 or newer (seed 004); the seeds check `uname -a` by eye.
    min_kernel: Annotated[str, _matching(r"\d+(\.\d+){0,2}", "kernel version")] = "3.10"
    kernel_modules: list[Identifier] = Field(default_factory=lambda: ["br_netfilter"])
    # A newline in a value would add a setting of its own to the file read at boot.
    sysctl: dict[Annotated[str, _matching(r"[a-z0-9_.-]+(/[a-z0-9_.-]+)*", "sysctl key")],
                 Annotated[str, _matching(r"[A-Za-z0-9 ._:,/+-]+", "sysctl value (one line: letters, digits, "
                                                                   "spaces and . _ : , / + -)")]] = Field(
        default_factory=lambda: dict(SEED_SYSCTL))
    sysctl_file: AbsPath = "/etc/sysctl.d/docker.conf"
    package_repo: PackageRepo | None = None

    @field_validator("sysctl", mode="before")
    @classmethod
    def _values_as_text(cls, value: Any) -> Any:
        # YAML reads `1` as an int; sysctl values are text on the host.
        if isinstance(value, dict):
            return {k: str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v for k, v in value.items()}
        return value


class Dns(Strict):
    # bind9: a primary and its secondaries (the seeds' chapter 2); dnsmasq: the same names from every proxy
    # host, each on its own (seed 002).
    backend: Literal["bind9", "dnsmasq"] = "bind9"
    forwarders: list[IPv4Address] = Field(default_factory=list)
    # Extra records in the service zone (od.com), name -> address.
    records: dict[DnsName, IPv4Address] = Field(default_factory=dict)
    ttl: Annotated[int, Field(ge=60, le=86400)] = 600  # the zones' $TTL, as in the seeds
    record_ttl: Annotated[int, Field(ge=1, le=86400)] = 60  # the A records' $TTL, as in the seeds


class Docker(Strict):
    # docker-ce on EL (from docker's repository, or the configured one); Debian's own docker.io.
    packages: dict[Literal["el", "debian"], list[PackageName]] = Field(
        default_factory=lambda: {"el": ["docker-ce"], "debian": ["docker.io"]})
    bip_octet: Annotated[int, Field(ge=0, le=255)] = 7
    # docker0's address for one host, where its name carries no number (a host's own data).
    bip: IPv4Interface | None = None
    data_root: AbsPath = "/data/docker"
    storage_driver: Identifier = "overlay2"
    # Registries docker reaches over plain http (no TLS, so anyone on the path can serve it images), besides the
    # platform's own registry, which is always one. The seeds add registry.access.redhat.com and quay.io.
    insecure_registries: list[RegistryHost] = Field(default_factory=list)
    registry_mirrors: list[Url] = Field(default_factory=list)
    cgroup_driver: Literal["systemd", "cgroupfs"] = "systemd"
    live_restore: bool = True
    # More daemon.json keys, merged over the ones above (a key here wins).
    extra_options: dict[str, Any] = Field(default_factory=dict)


class Harbor(Strict):
    """The `harbor` backend: Harbor's offline installer, which the operator copies to the ops host first."""
    installer: Annotated[AbsPath, _matching(r".*/harbor-offline-installer-v?\d+\.\d+\.\d+[\w.-]*\.tgz",
                                            "Harbor offline installer path (.../harbor-offline-installer-vX.Y.Z.tgz)")]
    # The seeds unpack it to /opt/harbor-vX.Y.Z and link /opt/harbor to it.
    install_root: AbsPath = "/opt"


class Registry(Strict):
    name: DnsName = "harbor.od.com"
    backend: Literal["distribution", "harbor"] = "distribution"
    http_port: Annotated[int, Field(ge=1, le=65535)] = 180
    data_dir: AbsPath = "/data/harbor"
    project: DnsName = "public"
    harbor: Harbor | None = None

    @model_validator(mode="after")
    def _harbor_needs_its_installer(self) -> "Registry":
        if self.backend == "harbor" and self.harbor is None:
            raise ValueError("backend harbor needs harbor.installer: the path of Harbor's offline installer "
                             "on the ops host")
        return self


class Etcd(Strict):
    """The etcd cluster on the hosts of group etcd, as the tutorial builds it after the seeds."""
    packages: dict[Literal["el", "debian"], list[PackageName]] = Field(
        default_factory=lambda: {"el": ["etcd"], "debian": ["etcd-server", "etcd-client"]})
    data_dir: AbsPath = "/data/etcd/etcd-server"
    cert_dir: AbsPath = "/opt/etcd/certs"
    client_port: Annotated[int, Field(ge=1, le=65535)] = 2379
    peer_port: Annotated[int, Field(ge=1, le=65535)] = 2380
    quota_backend_bytes: Annotated[int, Field(ge=0)] = 8000000000
    # etcd 3.4 serves only the v3 API unless asked; the tutorial's `etcdctl cluster-health` and flannel 0.11
    # speak v2 (README: why it stays off by default).
    enable_v2: bool = False
    cluster_token: Identifier = "etcd-cluster"
    backup_dir: AbsPath = "/data/backup/etcd"  # on the ops host
    backups_kept: Annotated[int, Field(ge=1, le=1000)] = 7


class Lb(Strict):
    """The apiservers' L4 proxy on the proxy hosts (nginx stream) behind a keepalived VIP, the tutorial's layer
    after etcd. Priorities follow the proxy hosts' order in hosts.yaml: 100, 90, 80..."""
    vip: IPv4Address | None = None  # None: the network's address 10 (10.4.7.10 on 10.4.7.0/24), as the tutorial
    port: Annotated[int, Field(ge=1, le=65535)] = 7443
    backends: list[IPv4Address] = Field(default_factory=list)  # empty: every master_compute host
    backend_port: Annotated[int, Field(ge=1, le=65535)] = 6443
    router_id: Annotated[int, Field(ge=1, le=255)] = 251  # VRRP's virtual_router_id, unique on the network
    # false: nginx only, no keepalived (a cloud where an address cannot move between instances: README)
    vrrp: bool = True
    nginx_packages: dict[Literal["el", "debian"], list[PackageName]] = Field(
        default_factory=lambda: {"el": ["nginx", "nginx-mod-stream"], "debian": ["nginx", "libnginx-mod-stream"]})
    keepalived_packages: dict[Literal["el", "debian"], list[PackageName]] = Field(
        default_factory=lambda: {"el": ["keepalived"], "debian": ["keepalived"]})


# A SHA-256 as 64 hex digits, or the absolute path (on this machine) of a checksum file that holds it first on
# its first line: upstream's .sha256 file, sha256sum's output.
Sha256 = Annotated[str, _matching(r"[0-9a-f]{64}|/[A-Za-z0-9._+@:,=/-]*",
                                  "SHA-256 (64 lowercase hex digits) or the path of a checksum file")]


class Kubernetes(Strict):
    """Kubernetes v1.20 on the master_compute hosts, the tutorial's chapter 3: apiserver, controller-manager and
    scheduler on every master, kubelet and kube-proxy on every node, pods on docker0's 172.7.NN.0/24 with
    host-gw routes between the nodes. Without server_tarball there are no Kubernetes stages."""
    # On this machine (the controller): upstream's kubernetes-server-linux-amd64.tar.gz, or one laid out like it
    # (kubernetes/server/bin/...), and its SHA-256 (or its checksum file); a tarball whose digest differs is
    # never delivered.
    server_tarball: AbsPath | None = None
    server_tarball_sha256: Sha256 | None = None
    # On this machine: a static pause binary (build/pause/linux/pause.c of the same release) for the pause image
    # the kubelets pull from the registry; and its SHA-256.
    pause_binary: AbsPath | None = None
    pause_binary_sha256: Sha256 | None = None
    pause_tag: Identifier = "3.2"  # the pause version Kubernetes 1.20 asks for
    bin_dir: AbsPath = "/opt/kubernetes/server/bin"  # the tutorial's layout
    cert_dir: AbsPath = "/opt/kubernetes/server/bin/cert"
    conf_dir: AbsPath = "/opt/kubernetes/server/bin/conf"
    service_cidr: IPv4Network = IPv4Network("192.168.0.0/16")  # the tutorial's service range
    cluster_dns: IPv4Address = IPv4Address("192.168.0.2")
    cluster_domain: DnsName = "cluster.local"
    node_port_range: Annotated[str, _matching(r"\d{1,5}-\d{1,5}", "port range like 3000-29999")] = "3000-29999"
    # kube-proxy sets nf_conntrack_max from this unless 0 (0: leave the kernel's, as in the lab, whose
    # conntrack table is this machine's).
    conntrack_max_per_core: Annotated[int, Field(ge=0)] = 32768
    kubectl_packages: dict[Literal["el", "debian"], list[PackageName]] = Field(
        default_factory=lambda: {"el": ["kubernetes-client"], "debian": ["kubernetes-client"]})
    node_packages: dict[Literal["el", "debian"], list[PackageName]] = Field(
        default_factory=lambda: {"el": ["conntrack-tools", "socat", "curl"], "debian": ["conntrack", "socat", "curl"]})
    admin_kubeconfig: AbsPath = "/root/.kube/config"  # on the ops host, 0600

    @model_validator(mode="after")
    def _files_come_with_digests(self) -> "Kubernetes":
        for name in ("server_tarball", "pause_binary"):
            if (getattr(self, name) is None) != (getattr(self, f"{name}_sha256") is None):
                raise ValueError(f"{name} and {name}_sha256 go together: give both (or neither)")
        if self.server_tarball and not self.pause_binary:
            raise ValueError("server_tarball needs pause_binary too: the kubelets' pause image is made from it")
        if self.cluster_dns not in self.service_cidr:
            raise ValueError(f"cluster_dns {self.cluster_dns} is outside service_cidr {self.service_cidr}")
        low, high = (int(p) for p in self.node_port_range.split("-"))
        if not 1 <= low < high <= 65535:
            raise ValueError(f"node_port_range {self.node_port_range} is not a range of ports")
        return self

    @property
    def enabled(self) -> bool:
        return self.server_tarball is not None

    @property
    def service_ip(self) -> IPv4Address:
        """The kubernetes Service's ClusterIP: the service range's first address (192.168.0.1)."""
        return self.service_cidr.network_address + 1


# Not empty, one line, and within X.509's upper bound for these names.
CertName = Annotated[str, Field(max_length=64), _matching(r"[^\x00-\x1f\x7f]+", "name (not empty, one line)")]


class CaNames(Strict):
    C: Annotated[str, _matching(r"[A-Z]{2}", "country code (two capital letters, like CN)")] = "CN"
    ST: CertName = "beijing"
    L: CertName = "beijing"
    O: CertName = "od"  # noqa: E741 - cfssl's field name
    OU: CertName = "ops"


KEY_SIZES = {"rsa": (2048, 3072, 4096), "ecdsa": (256,)}


class Ca(Strict):
    cn: CertName = "OldboyEdu"
    key_algo: Literal["rsa", "ecdsa"] = "rsa"
    key_size: int = 2048
    names: CaNames = Field(default_factory=CaNames)
    expiry: Annotated[str, _matching(r"\d+h", "duration in hours (like 175200h)")] = "1752000h"
    profile_expiry: Annotated[str, _matching(r"\d+h", "duration in hours (like 175200h)")] = "175200h"
    dir: AbsPath = "/opt/certs"
    # A folder on this machine with an existing cfssl ca-csr.json (and ca-config.json): read as they are, they
    # replace cn, names, key and expiry settings.
    cfssl_dir: str | None = None
    # During a CA roll: CA certificates on the ops host that etcd and Kubernetes trust besides the CA (the
    # replaced one, /opt/certs/replaced-<time>/ca.pem), so that hosts on the old CA and on the new one talk.
    extra_trusted_cas: list[AbsPath] = Field(default_factory=list)

    @model_validator(mode="after")
    def _key_size_fits_the_algorithm(self) -> "Ca":
        if self.key_size not in KEY_SIZES[self.key_algo]:
            sizes = " or ".join(map(str, KEY_SIZES[self.key_algo]))
            raise ValueError(f"key_size {self.key_size} does not fit key_algo {self.key_algo}: use {sizes}"
                             + (" (RSA keys under 2048 bits are refused)" if self.key_algo == "rsa" else ""))
        return self


class TimeSync(Strict):
    """chrony on every host (seed 003: every node's time in sync): the ops host serves the others."""

    enabled: bool = True
    # The ops host's own sources; none: it serves its own clock at local_stratum (an air-gapped network).
    upstream: list[DnsName | IPv4Address] = Field(default_factory=list)
    local_stratum: Annotated[int, Field(ge=1, le=15)] = 10
    max_offset_ms: Annotated[float, Field(gt=0, le=60000)] = 100.0  # the checks fail above this offset
    # False: chronyd follows its source and measures its offset but never steps or slews the clock (the lab,
    # whose hosts share the machine's clock and may not set it).
    set_clock: bool = True
    packages: dict[Literal["el", "debian"], list[PackageName]] = Field(
        default_factory=lambda: {"el": ["chrony"], "debian": ["chrony"]})


class Readiness(Strict):
    """What kubeadm's preflight asks of a Kubernetes host (seed 003), checked by `groundwork readiness`."""

    # True records kubeadm's --ignore-preflight-errors=Swap (and the kubelet's failSwapOn: false, which the
    # tutorial's kubelet has): swap on then passes, said in the check's message.
    allow_swap: bool = False
    min_cpus: Annotated[int, Field(ge=1, le=1024)] = 2  # kubeadm's control-plane minimum
    min_memory_mb: Annotated[int, Field(ge=128)] = 1700  # kubeadm's control-plane minimum


# Settings the whole platform shares, read from defaults.yaml only: a group's or host's value would have
# one reader (its stage) disagree with another (the zones, the checks, the other hosts). Each is refused
# outside defaults (inventory.load_inventory) with the reason below. Everything else may differ per host.
PLATFORM_WIDE = {
    "network": "every host's address and every docker bridge is checked against the one network",
    "host_domain": "the host zone every DNS server serves and every resolver searches is one zone",
    "service_domain": "the service zone every DNS server serves is one zone",
    "dns": "every DNS server serves the same zones, records and forwarders",
    "registry": "the registry's name is in the zones and in every docker host's insecure registries, and the "
                "checks log in to the one registry",
    "etcd": "every member of the one cluster must agree on its ports, certificates, token and backups",
    "lb": "the proxy hosts share one VIP, port, router id and backend list",
    "kubernetes": "one cluster: every master and node must agree on its release, service range, paths and images",
    "time_sync": "the hosts follow the one time source and are checked against the one bound",
}


class Settings(Strict):
    role: OneLine = ""
    network: IPv4Network = IPv4Network("10.4.7.0/24")
    host_domain: DnsName = "host.com"
    service_domain: DnsName = "od.com"
    dns: Dns = Field(default_factory=Dns)
    docker: Docker = Field(default_factory=Docker)
    registry: Registry = Field(default_factory=Registry)
    etcd: Etcd = Field(default_factory=Etcd)
    lb: Lb = Field(default_factory=Lb)
    kubernetes: Kubernetes = Field(default_factory=Kubernetes)
    ca: Ca = Field(default_factory=Ca)
    host_prep: HostPrep = Field(default_factory=HostPrep)
    time_sync: TimeSync = Field(default_factory=TimeSync)
    readiness: Readiness = Field(default_factory=Readiness)

    @property
    def insecure_registries(self) -> list[str]:
        """The registries docker reaches over plain http: the platform's own, then those the inventory adds."""
        return [self.registry.name, *(r for r in self.docker.insecure_registries if r != self.registry.name)]
