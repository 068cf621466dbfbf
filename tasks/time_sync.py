"""Time in sync on every host (seed 003: 各个节点时间同步, before kubeadm): chrony, with the ops host serving
the others.

The ops host follows the inventory's upstream servers, or serves its own clock at a local stratum where there
are none (an air-gapped network), and answers the platform's network; every other host follows the ops host.
With `time_sync.set_clock: false` (the lab, whose hosts share the machine's clock) chronyd runs with -x: it
follows its source and measures the offset, and never steps or slews the clock; the unit's condition on
CAP_SYS_TIME is lifted (a container may lack it: chronyd -x does not need it), and that drop-in is in place
before the package installs and starts chronyd. chronyd is restarted only when its files changed, and the
stage waits until it has selected its source.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from groundwork import facts as probes
from groundwork.changes import (Change, CommandChange, DesiredFile, activate_service, file_changes, value_diff,
                                wait_until, wanted_digests)
from groundwork.inventory import HostModel, Inventory
from groundwork.platforms import candidate_packages, candidate_platforms, install_missing, platform_for
from groundwork.render import render
from groundwork.stages import Stage

# A client selects its source within a few of iburst's 2 s polls; the server's local clock at once.
WAIT_SECONDS = 60


@dataclass(frozen=True)
class Chrony:
    """Where chrony lives on a platform family."""
    service: str
    conf: str
    driftfile: str
    exec_start: str  # the unit's own ExecStart, which the lab's drop-in repeats with -x


CHRONY = {"debian": Chrony("chrony", "/etc/chrony/chrony.conf", "/var/lib/chrony/chrony.drift",
                           "!/usr/sbin/chronyd $DAEMON_OPTS"),
          "el": Chrony("chronyd", "/etc/chrony.conf", "/var/lib/chrony/drift", "/usr/sbin/chronyd $OPTIONS")}


def dropin_path(chrony: Chrony) -> str:
    return f"/etc/systemd/system/{chrony.service}.service.d/groundwork-time.conf"


def is_server(host: HostModel) -> bool:
    return "ops" in host.groups


def sources(host: HostModel, inventory: Inventory) -> list[str]:
    """What the host follows: the upstream servers on the ops host, the ops host everywhere else."""
    return [str(s) for s in host.settings.time_sync.upstream] if is_server(host) else [str(inventory.ops_host.address)]


def desired_files(host: HostModel, inventory: Inventory, family: str) -> list[DesiredFile]:
    sync, chrony = host.settings.time_sync, CHRONY[family]
    conf = render("time_sync/chrony.conf.j2", servers=sources(host, inventory), server=is_server(host),
                  local_stratum=sync.local_stratum, network=host.settings.network, set_clock=sync.set_clock,
                  driftfile=chrony.driftfile)
    wanted = [DesiredFile(chrony.conf, conf)]
    if not sync.set_clock:
        wanted.append(DesiredFile(dropin_path(chrony), render("time_sync/no-clock.conf.j2",
                                                              exec_start=chrony.exec_start)))
    return wanted


def stage_probes(host: HostModel, inventory: Inventory, family: str | None) -> list[probes.Probe]:
    families = [p.family for p in candidate_platforms(family)]
    files = sorted({f for fam in families for f in (CHRONY[fam].conf, dropin_path(CHRONY[fam]))})
    wanted = wanted_digests(*(desired_files(host, inventory, fam) for fam in families))
    return [probes.os_info(), probes.packages(candidate_packages(host.settings.time_sync.packages, family)),
            probes.services(sorted({CHRONY[fam].service for fam in families})),
            probes.files(files, read_unless=wanted)]


def selected_source(host: HostModel, inventory: Inventory) -> str:
    """A shell test: chronyd follows its source (the local clock, on a server without upstream)."""
    if is_server(host) and not host.settings.time_sync.upstream:
        return "chronyc -n -c tracking 2>/dev/null | grep -q '^7F7F0101,'"
    return "chronyc -n -c sources 2>/dev/null | grep -q '^^,\\*,'"


def decide(host: HostModel, inventory: Inventory, facts) -> list[Change]:
    platform = platform_for(facts["os"])
    chrony = CHRONY[platform.family]
    install = install_missing(platform, host.settings.time_sync.packages.get(platform.family, []), facts["packages"])
    wanted = desired_files(host, inventory, platform.family)
    # The drop-in comes before the package: the package starts chronyd as it installs, and must already
    # start it with -x where the clock may not be set.
    dropin = file_changes([w for w in wanted if w.path != chrony.conf], facts["files"])
    if host.settings.time_sync.set_clock and facts["files"].get(dropin_path(chrony)) is not None:
        dropin.append(remove_dropin(chrony))
    conf = file_changes([w for w in wanted if w.path == chrony.conf], facts["files"])
    changes = [*dropin, *conf]
    plan: list[Change] = [*dropin, *install, *conf]
    service = facts["services"].get(chrony.service)
    enabled = bool(service and service.enabled == "enabled")
    if changes or install or not facts["services"].settled(chrony.service) or not enabled:
        unit = chrony.service
        before = "running on the previous configuration" if facts["services"].running(unit) else "not running"
        plan.append(activate_service(
            unit, f"restart {unit} and wait until it follows {', '.join(sources(host, inventory)) or 'its own clock'}",
            value_diff(unit, before, "running on the configuration above, following its source"),
            start=f"systemctl daemon-reload; systemctl enable {unit} >/dev/null 2>&1; systemctl restart {unit}",
            waits=[wait_until(selected_source(host, inventory), WAIT_SECONDS,
                              f"{unit} has not selected its time source after {WAIT_SECONDS} s",
                              "chronyc -n sources >&2")],
            recover=[f"systemctl daemon-reload; systemctl is-active --quiet {unit} || systemctl restart {unit}"]))
    return plan


def remove_dropin(chrony: Chrony) -> Change:
    path = dropin_path(chrony)
    return CommandChange(f"remove {path} (time_sync.set_clock is true again)", [f"rm -f {shlex.quote(path)}"],
                         value_diff(path, "chronyd -x: never sets the clock", None))


def notes(host: HostModel, inventory: Inventory) -> list[str]:
    sync = host.settings.time_sync
    if is_server(host):
        said = [f"serves time to {host.settings.network}, following "
                + (", ".join(map(str, sync.upstream)) if sync.upstream else f"its own clock at stratum {sync.local_stratum}")]
    else:
        said = [f"follows {inventory.ops_host.name} ({inventory.ops_host.address})"]
    if not sync.set_clock:
        said.append("time_sync.set_clock is false: chronyd measures the offset and never sets the clock (chronyd -x)")
    return said


def _stage(name: str, title: str, groups: tuple[str, ...] | None, needs: tuple[str, ...], select=None) -> Stage:
    # No installs=: chrony is installed here, after the drop-in, never ahead by host preparation.
    return Stage(name=name, title=title, groups=groups, checks="test_time_sync.py", needs=needs,
                 probes=lambda host, ctx: stage_probes(host, ctx.inventory, ctx.family(host.name)),
                 decide=lambda host, facts, ctx, said: decide(host, ctx.inventory, facts),
                 notes=lambda host, ctx: notes(host, ctx.inventory),
                 select=lambda host, inventory: host.settings.time_sync.enabled and (select is None or select(host)))


# The server first: the others wait for it to answer when they restart.
STAGES = [_stage("time_server", "chrony on the ops host, serving time to the platform", ("ops",), ("host_prep",)),
          _stage("time_sync", "chrony on every other host, following the ops host", None,
                 ("host_prep", "time_server"), select=lambda host: not is_server(host))]
