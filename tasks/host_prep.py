"""Host preparation on every host, the seeds' "机器前期准备".

Hostname hdss7-NN.host.com, SELinux off and firewalld stopped where they exist (EL), an optional local
package repository (seed 004), the base tools, a kernel new enough for docker, br_netfilter and the sysctl
settings docker needs (seed 001).
"""

from __future__ import annotations

import shlex

from groundwork import facts as probe
from groundwork.changes import (Change, CommandChange, DesiredFile, StageError, StageReport, apply_plan,
                                file_changes, stop_and_disable, value_diff)
from groundwork.facts import Facts
from groundwork.inventory import HostModel
from groundwork.platforms import PLATFORMS, Platform, install_missing, platform_for
from groundwork.render import render
from groundwork.stages import RunContext, Stage

MODULES_LOAD_FILE = "/etc/modules-load.d/groundwork.conf"
# A module built into the kernel has no /sys/module entry of its own; what it provides shows it is there.
MODULE_PRESENT_WHEN = {"br_netfilter": "/proc/sys/net/bridge"}


def module_marker(module: str) -> str:
    return MODULE_PRESENT_WHEN.get(module, f"/sys/module/{module}")


def probes(host: HostModel) -> list[probe.Probe]:
    prep = host.settings.host_prep
    packages = sorted({p for names in prep.base_packages.values() for p in names})
    files = [prep.sysctl_file, MODULES_LOAD_FILE]
    if prep.package_repo:
        files += [p.repo_file.format(name=prep.package_repo.name) for p in PLATFORMS.values()]
    module_markers = [module_marker(m) for m in prep.kernel_modules]
    return [probe.os_info(), probe.hostname(), probe.selinux(), probe.services(["firewalld"]),
            probe.packages(packages), probe.files(files), probe.sysctl(sorted(prep.sysctl)),
            probe.paths_exist(module_markers), probe.commands(["hostnamectl"])]


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


def decide(host: HostModel, facts: Facts, platform: Platform, files: list, notes: list[str]) -> list[Change]:
    """The changes that bring this host to the wanted state, in the order they must happen."""
    prep = host.settings.host_prep
    os = facts["os"]
    if _version_tuple(os.kernel) < _version_tuple(prep.min_kernel):
        raise StageError(f"kernel {os.kernel} is older than {prep.min_kernel}, the oldest docker runs on "
                         f"(data.host_prep.min_kernel)")
    plan: list[Change] = []

    if prep.set_hostname:
        name = facts["hostname"]
        if name.static != host.fqdn or name.running != host.fqdn:
            diff = ""
            if name.static != host.fqdn:
                diff += value_diff("/etc/hostname", name.static, host.fqdn)
            if name.running != host.fqdn:
                diff += value_diff("running hostname", name.running, host.fqdn)
            fqdn = shlex.quote(host.fqdn)
            commands = ([f"hostnamectl set-hostname {fqdn}"] if "hostnamectl" in facts["commands"]
                        else [f"echo {fqdn} > /etc/hostname", f"hostname {fqdn}"])
            plan.append(CommandChange(f"set hostname {host.fqdn}", commands, diff))
        else:
            notes.append(f"hostname is already {host.fqdn}")

    selinux = facts["selinux"]
    if prep.disable_selinux and (selinux.get("running") or selinux.get("config")):
        commands, diff = [], ""
        if selinux.get("running") == "enforcing":
            commands.append("setenforce 0")
            diff += value_diff("SELinux running mode", "enforcing", "permissive")
        if selinux.get("config") not in (None, "disabled"):
            commands.append("sed -i 's/^SELINUX=.*/SELINUX=disabled/' /etc/selinux/config")
            diff += value_diff("/etc/selinux/config", f"SELINUX={selinux['config']}", "SELINUX=disabled")
        if commands:
            plan.append(CommandChange("disable SELinux", commands, diff))

    if prep.disable_firewalld:
        plan += stop_and_disable(facts["services"], "firewalld")

    repo_changes = [c for c in files if prep.package_repo and c.want.path == platform.repo_file.format(
        name=prep.package_repo.name)]
    plan += repo_changes
    install = install_missing(platform, prep.base_packages.get(platform.family, []), facts["packages"])
    plan += install
    if repo_changes and not install:
        plan.append(CommandChange("refresh the package index", [platform.refresh_index],
                                  value_diff("package index", None, "refreshed from the changed repository")))

    plan += [c for c in files if c not in repo_changes]
    absent_modules = [m for m in prep.kernel_modules if module_marker(m) not in facts["paths"]]
    if absent_modules:
        plan.append(CommandChange(f"load {' '.join(absent_modules)}", [f"modprobe {shlex.quote(m)}" for m in absent_modules],
                                  "".join(value_diff(f"kernel module {m}", None, "loaded") for m in absent_modules)))

    running = facts["sysctl"]
    stale = {k: v for k, v in prep.sysctl.items() if running.get(k) != v}
    if stale:
        plan.append(CommandChange("apply kernel settings", [f"sysctl -q -w {shlex.quote(f'{k}={v}')}" for k, v in stale.items()],
                                  "".join(value_diff(k, running.get(k), v) for k, v in stale.items())))
    elif not plan:
        notes.append("kernel settings, packages and files already as wanted")
    return plan


def run(remote, host: HostModel, ctx: RunContext) -> StageReport:
    facts = remote.gather(probes(host))
    platform = platform_for(facts["os"])
    changes = file_changes(remote, desired_files(host, platform), facts["files"])
    report = StageReport()
    plan = decide(host, facts, platform, changes, report.notes)
    return apply_plan(remote, plan, ctx, report)


STAGE = Stage(name="host_prep", title="host preparation", groups=None, run=run)
