"""Host preparation, checked on every host as the seeds check it by hand."""

from shlex import quote

from groundwork import facts
from groundwork.tasks.host_prep import module_marker
from groundwork.verify import reads

GROUPS = None
HOSTNAME = "hostname; cat /etc/hostname"
KERNEL = "uname -r"


def base_packages(host) -> facts.Probe:
    """Every family's base tools: which family's the host needs is known only from its os-release."""
    return facts.packages(sorted({p for names in host.settings.host_prep.base_packages.values() for p in names}))


def module_markers(host) -> dict[str, str]:
    return {m: module_marker(m) for m in host.settings.host_prep.kernel_modules}


def loaded_modules(host) -> facts.Probe:
    return facts.paths_exist(list(module_markers(host).values()))


def running_sysctl(host) -> facts.Probe:
    return facts.sysctl(sorted(host.settings.host_prep.sysctl))


def boot_sysctl(host) -> str:
    return f"cat {quote(host.settings.host_prep.sysctl_file)}"


def os_info(host) -> facts.Probe:
    return facts.os_info()


def selinux(host) -> facts.Probe | None:
    return facts.selinux() if host.settings.host_prep.disable_selinux else None


def firewalld(host) -> facts.Probe | None:
    return facts.services(["firewalld"]) if host.settings.host_prep.disable_firewalld else None


@reads(HOSTNAME)
def test_hostname_is_the_fqdn(host, probe):
    """hostname is hdss7-NN.host.com, running and in /etc/hostname"""
    running, static = (probe.run(HOSTNAME).stdout.split() + ["", ""])[:2]
    assert (running, static) == (host.fqdn, host.fqdn), \
        f"running hostname {running!r}, /etc/hostname {static!r}; wanted {host.fqdn!r}"


@reads(KERNEL)
def test_kernel_is_new_enough_for_docker(host, probe):
    """kernel is at least the minimum docker needs"""
    release = probe.run(KERNEL).stdout.strip()
    wanted = tuple(int(p) for p in host.settings.host_prep.min_kernel.split("."))
    found = tuple(int("".join(c for c in p if c.isdigit()) or 0) for p in release.split("-")[0].split(".")[:3])
    assert found >= wanted, f"kernel {release} is older than {host.settings.host_prep.min_kernel}"


@reads(os_info, base_packages)
def test_base_tools_are_installed(host, probe):
    """the base tools are installed"""
    os_family = probe.fact(os_info(host)).family
    installed = probe.fact(base_packages(host))
    missing = [p for p in host.settings.host_prep.base_packages[os_family] if installed.get(p) is None]
    assert not missing, f"not installed: {' '.join(missing)}"


@reads(loaded_modules, running_sysctl)
def test_kernel_settings_for_docker(host, probe):
    """br_netfilter is loaded and the sysctl settings docker needs are in force"""
    prep = host.settings.host_prep
    markers = module_markers(host)
    present = probe.fact(loaded_modules(host))
    absent = [m for m, marker in markers.items() if marker not in present]
    assert not absent, f"kernel modules not loaded: {' '.join(absent)}"
    running = probe.fact(running_sysctl(host))
    wrong = {k: running.get(k) for k, v in prep.sysctl.items() if running.get(k) != v}
    assert not wrong, f"sysctl values differ from {prep.sysctl}: {wrong}"


@reads(boot_sysctl)
def test_kernel_settings_survive_a_reboot(host, probe):
    """the sysctl settings are in the file read at boot"""
    prep = host.settings.host_prep
    text = probe.run(boot_sysctl(host)).stdout
    lines = {tuple(part.strip() for part in line.split("=", 1)) for line in text.splitlines() if "=" in line}
    missing = [f"{k} = {v}" for k, v in prep.sysctl.items() if (k, v) not in lines]
    assert not missing, f"missing from {prep.sysctl_file}: {missing}"


@reads(selinux, firewalld)
def test_selinux_and_firewalld_are_off(host, probe):
    """SELinux is not enforcing and is disabled at boot, firewalld is stopped and disabled (where they exist)"""
    prep = host.settings.host_prep
    problems = []
    if prep.disable_selinux:
        state = probe.fact(selinux(host))
        if state.get("running") not in (None, "disabled", "permissive"):
            problems.append(f"SELinux is {state['running']}")
        if state.get("config") not in (None, "disabled"):
            problems.append(f"/etc/selinux/config has SELINUX={state['config']}, so it is back at boot")
    if prep.disable_firewalld:
        service = probe.fact(firewalld(host)).get("firewalld")
        if service and service.exists and (service.active == "active" or service.enabled == "enabled"):
            problems.append(f"firewalld is {service.active} and {service.enabled}")
    assert not problems, "; ".join(problems)
