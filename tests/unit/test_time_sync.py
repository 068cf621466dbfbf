"""The time stages' chrony configuration and decisions as data, and their checks on hosts that lack sync."""

import tempfile
from pathlib import Path

import pytest

from groundwork.facts import Facts, ServiceInfo, Services
from groundwork.inventory import load_inventory
from groundwork.tasks.time_sync import CHRONY, STAGES, decide, desired_files, dropin_path
from tests.conftest import copy_seed_inventory
from tests.unit.host_facts import DEBIAN, on_host
from tests.unit.test_checks_fail_when_absent import HostThatLacks

INVENTORY = load_inventory(copy_seed_inventory(Path(tempfile.mkdtemp(prefix="gw-test-"))))
OPS, NODE = INVENTORY.hosts["hdss7-200"], INVENTORY.hosts["hdss7-21"]
CHRONY_CONF = CHRONY["debian"].conf


def with_time_sync(host, **update):
    sync = host.settings.time_sync.model_copy(update=update)
    return host.__class__(**{**host.__dict__, "settings": host.settings.model_copy(update={"time_sync": sync})})


def conf(host) -> str:
    return next(f.content for f in desired_files(host, INVENTORY, "debian") if f.path == CHRONY_CONF).decode()


def facts(host, files=None, installed=True, active=True) -> Facts:
    on = {f.path: on_host(f.content) for f in desired_files(host, INVENTORY, "debian")}
    return Facts(os=DEBIAN, packages={"chrony": "4.3" if installed else None},
                 services=Services({"chrony": ServiceInfo(installed, "active" if active else "inactive", "enabled")}),
                 files={CHRONY_CONF: None, dropin_path(CHRONY["debian"]): None, **on, **(files or {})})


def test_the_ops_host_serves_its_own_clock_to_the_network_without_upstream_and_follows_upstream_with():
    text = conf(OPS)
    assert "local stratum 10" in text and "allow 10.4.7.0/24" in text and "\nserver " not in text
    text = conf(with_time_sync(OPS, upstream=["ntp1.example.net", "192.0.2.123"]))
    assert "server ntp1.example.net iburst\nserver 192.0.2.123 iburst\n" in text and "local stratum 10" in text


def test_every_other_host_follows_the_ops_host_and_serves_no_one():
    text = conf(NODE)
    assert "server 10.4.7.200 iburst" in text and "allow" not in text and "local stratum" not in text


def test_the_lab_setting_never_sets_the_clock_and_the_default_does():
    lab = with_time_sync(NODE, set_clock=False)
    dropin = next(f.content for f in desired_files(lab, INVENTORY, "debian") if f.path.endswith(".conf")
                  and f.path != CHRONY_CONF).decode()
    assert "ConditionCapability=\n" in dropin and "ExecStart=!/usr/sbin/chronyd $DAEMON_OPTS -x" in dropin
    assert "makestep" not in conf(lab)
    real = with_time_sync(NODE, set_clock=True)
    assert [f.path for f in desired_files(real, INVENTORY, "debian")] == [CHRONY_CONF]
    assert "makestep 1.0 3" in conf(real)
    # A drop-in left from set_clock: false goes, and chronyd is restarted to set the clock again.
    plan = decide(real, INVENTORY, facts(real, files={dropin_path(CHRONY["debian"]): on_host(b"x")}))
    assert [c.summary for c in plan][0].startswith(f"remove {dropin_path(CHRONY['debian'])}")
    assert plan[-1].summary.startswith("restart chrony")


def test_a_host_as_wanted_is_left_alone():
    for host in (OPS, NODE):
        assert decide(host, INVENTORY, facts(host)) == []


def test_a_fresh_host_gets_chrony_its_configuration_and_a_restart_that_waits_for_its_source():
    plan = decide(NODE, INVENTORY, facts(NODE, files={CHRONY_CONF: on_host(b"pool 2.debian.pool.ntp.org\n")},
                                         installed=False, active=False))
    summaries = [c.summary for c in plan]
    assert summaries[0] == "install chrony" and summaries[1] == f"update {CHRONY_CONF}"
    # Where the clock may not be set, the -x drop-in is there before the package starts chronyd.
    lab = with_time_sync(NODE, set_clock=False)
    lab_plan = decide(lab, INVENTORY, facts(lab, files={dropin_path(CHRONY["debian"]): None}, installed=False))
    assert [c.summary for c in lab_plan][:2] == [f"create {dropin_path(CHRONY['debian'])}", "install chrony"]
    restart = plan[-1]
    assert restart.summary == "restart chrony and wait until it follows 10.4.7.200"
    assert any("^^,\\*," in command for command in restart.commands) and restart.undo_files_on_failure
    # The ops host without upstream waits for its own clock (chrony's local reference), not for a source.
    ops_restart = decide(OPS, INVENTORY, facts(OPS, active=False))[-1]
    assert any("7F7F0101" in command for command in ops_restart.commands)


def test_the_server_runs_before_the_others_and_each_host_is_in_exactly_one():
    server, client = STAGES
    assert [h for h in INVENTORY.hosts.values() if server.applies_to(h, INVENTORY)] == [OPS]
    assert sorted(h.name for h in INVENTORY.hosts.values() if client.applies_to(h, INVENTORY)) == [
        "hdss7-11", "hdss7-12", "hdss7-21", "hdss7-22"]
    off = with_time_sync(NODE, enabled=False)
    assert not client.applies_to(off, INVENTORY)


TRACKING_LOCAL = "7F7F0101,,10,1764912000.0,0.000000000,0.000000000,0.0,0.0,0.0,0.0,0.0,0.0,0.0,Normal\n"
TRACKING_NODE = "0A0407C8,10.4.7.200,11,1764912000.0,0.000001,-0.000002,0.0,0.0,0.0,0.0,0.0,0.0,2.0,Normal\n"
SOURCES_NODE = "^,*,10.4.7.200,10,6,377,12,-0.000001,-0.000002,0.000100\n"


def test_the_checks_pass_on_hosts_in_sync():
    from groundwork.checks.test_time_sync import (test_chrony_follows_its_time_source as follows,
                                                  test_the_clock_is_within_the_bound_of_its_source as within)
    follows(OPS, HostThatLacks({"tracking": (0, TRACKING_LOCAL)}), INVENTORY)
    node = HostThatLacks({"tracking": (0, TRACKING_NODE), "sources": (0, SOURCES_NODE)})
    follows(NODE, node, INVENTORY)
    within(NODE, node)


@pytest.mark.parametrize("host, commands, says", [
    ("hdss7-21", {}, "chronyd does not answer"),  # chrony absent or stopped
    ("hdss7-21", {"tracking": (0, TRACKING_NODE), "sources": (0, SOURCES_NODE.replace(",*,", ",?,"))},
     "follows no source"),
    ("hdss7-21", {"tracking": (0, TRACKING_NODE), "sources": (0, SOURCES_NODE.replace("10.4.7.200", "10.4.7.11"))},
     "follows 10.4.7.11"),
    ("hdss7-21", {"tracking": (0, TRACKING_NODE.replace("Normal", "Not synchronised"))}, "not synchronised"),
    ("hdss7-200", {"tracking": (0, TRACKING_NODE)}, "wanted its own clock at stratum 10"),
])
def test_the_source_check_fails_without_sync(host, commands, says):
    from groundwork.checks.test_time_sync import test_chrony_follows_its_time_source as follows
    with pytest.raises(AssertionError, match=says):
        follows(INVENTORY.hosts[host], HostThatLacks(commands), INVENTORY)


def test_the_offset_check_fails_over_the_bound():
    from groundwork.checks.test_time_sync import test_the_clock_is_within_the_bound_of_its_source as within
    off = TRACKING_NODE.replace("0.000001,-0.000002", "0.000001,-0.250000")
    with pytest.raises(AssertionError, match=r"last offset': '250.000 ms'.*bound is 100.0 ms"):
        within(NODE, HostThatLacks({"tracking": (0, off)}))
