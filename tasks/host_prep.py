"""Host preparation on every host, the seeds' "机器前期准备".

Hostname hdss7-NN.host.com, SELinux off and firewalld stopped where they exist (EL), an optional local
package repository (seed 004), the base tools, a kernel new enough for docker, br_netfilter and the sysctl
settings docker needs (seed 001).
"""

from __future__ import annotations

import shlex

from groundwork import facts as probes
from groundwork.changes import (Change, CommandChange, DesiredFile, StageError, file_changes, stop_and_disable,
                                value_diff, wanted_digests)
from groundwork.facts import Facts
from groundwork.inventory import HostModel
from groundwork.platforms import Platform, candidate_packages, candidate_platforms, install_missing, platform_for
from groundwork.render import render
from groundwork.stages import Stage

MODULES_LOAD_FILE = "/etc/modules-load.d/groundwork.conf"
# A module built into the kernel has no /sys/module entry of its own; what it provides shows it is there.
MODULE_PRESENT_WHEN = {"br_netfilter": "/proc/sys/net/bridge"}


def module_marker(module: str) -> str:
    return MODULE_PRESENT_WHEN.get(module, f"/sys/module/{module}")


def wanted_packages(host: HostModel, ahead: dict[str, list[str]]) -> dict[str, list[str]]:
    """By OS family: the base tools, then what the run's later stages install (one transaction per host)."""
    base = host.settings.host_prep.base_packages
    return {f: [*base.get(f, []), *(p for p in ahead.get(f, []) if p not in base.get(f, []))]
            for f in {*base, *ahead}}


def stage_probes(host: HostModel, family: str | None = None,
                 ahead: dict[str, list[str]] | None = None) -> list[probes.Probe]:
    prep = host.settings.host_prep
    packages = candidate_packages(wanted_packages(host, ahead or {}), family)
    files = [prep.sysctl_file, MODULES_LOAD_FILE]
    if prep.package_repo:
        files += [p.repo_file.format(name=prep.package_repo.name) for p in candidate_platforms(family)]
    module_markers = [module_marker(m) for m in prep.kernel_modules]
    wanted = wanted_digests(*(desired_files(host, pl) for pl in candidate_platforms(family)))
    return [probes.os_info(), probes.hostname(), probes.selinux(), probes.services(["firewalld"]),
            probes.packages(packages), probes.files(files, read_unless=wanted), probes.sysctl(sorted(prep.sysctl)),
            probes.paths_exist(module_markers), probes.commands(["hostnamectl"])]


def desired_files(host: HostModel, platform: Platform) -> list[DesiredFile]:
    prep = host.settings.host_prep
    wanted = []
    if prep.package_repo:
        wanted.append(DesiredFile(platform.repo_file.format(name=prep.package_repo.name),
                                  render(platform.repo_template, repo=prep.package_repo)))
    if prep.kernel_modules:
        wanted.append(DesiredFile(MODULES_LOAD_FILE, render("host_prep/modules-load.conf.j2",
                                                            modules=prep.kernel_modules)))
    wanted.append(DesiredFile(prep.sysctl_file, render("host_prep/sysctl.conf.j2", sysctl=prep.sysctl)))
    return wanted


def _version_tuple(text: str) -> tuple[int, ...]:
    out = []
    for part in text.split("-")[0].split(".")[:3]:
        digits = "".join(c for c in part if c.isdigit())
        out.append(int(digits) if digits else 0)
    return tuple(out)


def decide(host: HostModel, facts: Facts, notes: list[str], ahead: dict[str, list[str]] | None = None) -> list[Change]:
    """The changes that bring this host to the wanted state, in the order they must happen.

    notes: gets a line for each concern already as wanted.
    ahead: by OS family, the packages the run's later stages install, installed here with the base tools.
    """
    prep = host.settings.host_prep
    platform = platform_for(facts["os"])
    changes = file_changes(desired_files(host, platform), facts["files"])
    kernel = facts["os"].kernel
    if _version_tuple(kernel) < _version_tuple(prep.min_kernel):
        raise StageError(f"kernel {kernel} is older than {prep.min_kernel}, the oldest docker runs on "
                         f"(data.host_prep.min_kernel)")
    plan = hostname_changes(host, facts, notes) if prep.set_hostname else []
    if prep.disable_selinux:
        plan += selinux_changes(facts["selinux"])
    if prep.disable_firewalld:
        plan += stop_and_disable(facts["services"], "firewalld")
    plan += package_changes(host, facts, platform, changes, ahead or {})
    plan += kernel_changes(host, facts)
    if not plan:
        notes.append("kernel settings, packages and files already as wanted")
    return plan


def hostname_changes(host: HostModel, facts: Facts, notes: list[str]) -> list[Change]:
    """hdss7-NN.host.com, running and in /etc/hostname."""
    name = facts["hostname"]
    if name.static == host.fqdn and name.running == host.fqdn:
        notes.append(f"hostname is already {host.fqdn}")
        return []
    diff = value_diff("/etc/hostname", name.static, host.fqdn) if name.static != host.fqdn else ""
    diff += value_diff("running hostname", name.running, host.fqdn) if name.running != host.fqdn else ""
    fqdn = shlex.quote(host.fqdn)
    commands = ([f"hostnamectl set-hostname {fqdn}"] if "hostnamectl" in facts["commands"]
                else [f"echo {fqdn} > /etc/hostname", f"hostname {fqdn}"])
    return [CommandChange(f"set hostname {host.fqdn}", commands, diff)]


def selinux_changes(selinux: dict) -> list[Change]:
    """Not enforcing now, and disabled at boot (where SELinux exists)."""
    commands, diff = [], ""
    if selinux.get("running") == "enforcing":
        commands.append("setenforce 0")
        diff += value_diff("SELinux running mode", "enforcing", "permissive")
    if selinux.get("config") not in (None, "disabled"):
        commands.append("sed -i 's/^SELINUX=.*/SELINUX=disabled/' /etc/selinux/config")
        diff += value_diff("/etc/selinux/config", f"SELINUX={selinux['config']}", "SELINUX=disabled")
    return [CommandChange("disable SELinux", commands, diff)] if commands else []


def package_changes(host: HostModel, facts: Facts, platform: Platform, changes: list,
                    ahead: dict[str, list[str]]) -> list[Change]:
    """The package repository first (and the index refreshed from it), then in one transaction the base tools
    and what the run's later stages install, then the other files."""
    prep = host.settings.host_prep
    repo_file = platform.repo_file.format(name=prep.package_repo.name) if prep.package_repo else None
    repo = [c for c in changes if c.want.path == repo_file]
    install = install_missing(platform, wanted_packages(host, ahead).get(platform.family, []), facts["packages"])
    refresh = [CommandChange("refresh the package index", [platform.refresh_index],
                             value_diff("package index", None, "refreshed from the changed repository"))] \
        if repo and not install else []
    return [*repo, *install, *refresh, *(c for c in changes if c not in repo)]


def kernel_changes(host: HostModel, facts: Facts) -> list[Change]:
    """The kernel modules docker needs loaded, and the sysctl settings in force."""
    prep = host.settings.host_prep
    plan: list[Change] = []
    absent = [m for m in prep.kernel_modules if module_marker(m) not in facts["paths"]]
    if absent:
        plan.append(CommandChange(f"load {' '.join(absent)}", [f"modprobe {shlex.quote(m)}" for m in absent],
                                  "".join(value_diff(f"kernel module {m}", None, "loaded") for m in absent)))
    running = facts["sysctl"]
    stale = {k: v for k, v in prep.sysctl.items() if running.get(k) != v}
    if stale:
        plan.append(CommandChange("apply kernel settings",
                                  [f"sysctl -q -w {shlex.quote(f'{k}={v}')}" for k, v in stale.items()],
                                  "".join(value_diff(k, running.get(k), v) for k, v in stale.items())))
    return plan


STAGE = Stage(name="host_prep", title="host preparation", groups=None,
              needs=(), installs_for_others=True,
              probes=lambda host, ctx: stage_probes(host, ctx.family(host.name), ctx.packages_ahead.get(host.name)),
              decide=lambda host, facts, ctx, notes: decide(host, facts, notes, ctx.packages_ahead.get(host.name)))
