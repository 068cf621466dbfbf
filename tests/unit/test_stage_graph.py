"""Stages as a graph (--order graph): a stage never starts on a host before what it needs has ended on every
host, work that needs nothing of each other overlaps, and failures, serial stages, Ctrl-C, the workers setting
and the record's order keep their meaning. The hosts are the seeds' five; the stages are stand-ins that note
when they start and end (no SSH)."""

import io
import threading
import time
from types import SimpleNamespace

import pytest

from groundwork import runner
from groundwork.changes import StageError
from groundwork.cli import _nornir
from groundwork.context import RunContext
from groundwork.inventory import load_inventory
from groundwork.progress import Progress
from groundwork.record import RunRecord
from groundwork.remote import Masker
from groundwork.runner import order_hosts, run_stages
from groundwork.schedule import StageGraph
from groundwork.stages import Stage
from groundwork.tasks.pipeline import PIPELINE
from tests.conftest import copy_seed_inventory

STEP = 0.15  # seconds each stand-in stage takes on a host


@pytest.fixture
def lab(tmp_path, monkeypatch):
    inventory = load_inventory(copy_seed_inventory(tmp_path))
    monkeypatch.setattr(runner.Remote, "for_task",
                        classmethod(lambda cls, task, masker=None: SimpleNamespace(log=[], masker=Masker())))
    return inventory


class Timeline:
    """When each (stage, host) started and ended, by the stand-ins' own clocks."""

    def __init__(self):
        self.started, self.ended, self.lock = {}, {}, threading.Lock()
        self.busy, self.most_busy = 0, 0

    def stage(self, name, groups, needs=None, fail_on=(), serial=False, stop=None, **kw):
        def decide(host, facts, ctx, notes):
            with self.lock:
                self.started[(name, host.name)] = time.monotonic()
                self.busy += 1
                self.most_busy = max(self.most_busy, self.busy)
            if stop is not None and host.name == stop[1]:
                stop[0].set()
            time.sleep(STEP)
            with self.lock:
                self.ended[(name, host.name)] = time.monotonic()
                self.busy -= 1
            if host.name in fail_on:
                raise StageError(f"{name} broke on {host.name}")
            return []
        return Stage(name, name, groups, probes=lambda host, ctx: [], decide=decide, needs=needs, serial=serial, **kw)


def run(inventory, stages, graph=True, workers=20, stop=None):
    nr = _nornir({"runner": {"plugin": "threaded", "options": {"num_workers": workers}}}, None, inventory)
    hosts = order_hosts(list(inventory.hosts.values()))
    record = RunRecord("r", "full", False, [h.name for h in hosts], "now")
    ctx = RunContext(inventory=inventory, dry_run=False, masker=Masker(), stop=stop or threading.Event())
    out = io.StringIO()
    run_stages(nr, stages, ctx, hosts, record, Progress(record, False, out=out), graph=graph)
    return record, out.getvalue()


def seeds_like(t, **kw):
    """prep everywhere; DNS on the proxy hosts; docker on the others; a resolver everywhere after DNS."""
    return [t.stage("prep", None, needs=()),
            t.stage("dns", ("proxy",), needs=("prep",), **kw.get("dns", {})),
            t.stage("docker", ("ops", "master_compute"), needs=("prep",)),
            t.stage("resolver", None, needs=("prep", "dns"))]


def test_a_stage_starts_only_after_what_it_needs_ended_on_every_host(lab):
    t = Timeline()
    stages = seeds_like(t)
    record, _ = run(lab, stages)
    assert {e.status for e in record.entries} == {"ok"} and len(record.entries) == 5 + 2 + 3 + 5
    graph = StageGraph.of(stages, order_hosts(list(lab.hosts.values())), lab)
    for (stage, host), started in t.started.items():
        for need in graph.needs(next(s for s in stages if s.name == stage)):
            for other in graph.hosts_of[need]:
                assert t.ended[(need, other)] <= started, (stage, host, need, other)


def test_work_that_needs_nothing_of_each_other_overlaps_and_pipeline_order_does_not(lab):
    t = Timeline()
    run(lab, seeds_like(t))
    # docker on the compute hosts runs while the proxy hosts serve DNS: it needs only prep.
    assert t.started[("docker", "hdss7-21")] < t.ended[("dns", "hdss7-11")]
    strict = Timeline()
    run(lab, seeds_like(strict), graph=False)
    assert strict.started[("docker", "hdss7-21")] >= max(v for (s, _), v in strict.ended.items() if s == "dns")


def test_a_host_that_fails_a_stage_is_skipped_by_its_later_stages_and_the_others_go_on(lab):
    t = Timeline()
    record, out = run(lab, seeds_like(t, dns={"fail_on": ("hdss7-12",)}))
    status = {(e.stage, e.host): (e.status, e.error) for e in record.entries}
    assert status[("dns", "hdss7-12")] == ("failed", "dns broke on hdss7-12")
    assert status[("resolver", "hdss7-12")] == ("skipped", "failed in an earlier stage")
    # What needed the failed stage still runs on the other hosts, as in pipeline order.
    assert {status[("resolver", h)][0] for h in ("hdss7-11", "hdss7-21", "hdss7-22", "hdss7-200")} == {"ok"}
    assert "  hdss7-12     resolver          skipped" in out  # every line names its stage


def test_the_record_keeps_pipeline_order_whatever_order_the_hosts_ended_in(lab):
    t = Timeline()
    stages = seeds_like(t)
    record, _ = run(lab, stages)
    hosts = [h.name for h in order_hosts(list(lab.hosts.values()))]
    assert [(e.stage, e.host) for e in record.entries] == [
        (s.name, h) for s in stages for h in hosts if s.applies_to(lab.hosts[h], lab)]


def test_a_serial_stage_still_does_its_hosts_one_at_a_time_and_stops_at_a_failure(lab):
    t = Timeline()
    stages = [t.stage("prep", None, needs=()),
              t.stage("etcd", ("etcd",), needs=("prep",), serial=True, fail_on=("hdss7-21",))]
    record, _ = run(lab, stages)
    assert t.ended[("etcd", "hdss7-12")] <= t.started[("etcd", "hdss7-21")]
    assert ("etcd", "hdss7-22") not in t.started
    skipped = next(e for e in record.entries if (e.stage, e.host) == ("etcd", "hdss7-22"))
    assert skipped.error == "not run: hdss7-21 failed before it, and etcd does its hosts one at a time"


def test_a_stage_that_names_no_needs_is_a_barrier_both_ways(lab):
    """remove-host's own first steps come before the pipeline: nothing of the pipeline starts before them."""
    t = Timeline()
    stages = [t.stage("prep", None, needs=()), t.stage("member_removal", ("etcd",)),
              t.stage("dns", ("proxy",), needs=("prep",))]
    run(lab, stages)
    assert min(t.started[("dns", h)] for h in ("hdss7-11", "hdss7-12")) >= max(
        v for (s, _), v in t.ended.items() if s in ("prep", "member_removal"))


def test_after_ctrl_c_nothing_further_starts_and_the_record_says_so(lab):
    t, stop = Timeline(), threading.Event()
    record, _ = run(lab, seeds_like(t, dns={"stop": (stop, "hdss7-11")}), stop=stop)
    assert all(("resolver", h) not in t.started for h in lab.hosts)
    assert {e.error for e in record.entries if e.stage == "resolver"} == {"not run: the run was interrupted"}


def test_the_workers_setting_bounds_the_hosts_at_work_and_never_deadlocks(lab):
    t = Timeline()
    record, _ = run(lab, seeds_like(t), workers=1)
    assert t.most_busy == 1 and {e.status for e in record.entries} == {"ok"}


def test_every_stage_of_the_pipeline_names_only_stages_before_it_and_what_hands_it_its_inputs():
    names = [s.name for s in PIPELINE]
    for i, stage in enumerate(PIPELINE):
        assert stage.needs is not None, f"{stage.name} declares no needs: it would wait for every stage before it"
        assert set(stage.needs) <= set(names[:i]), (stage.name, set(stage.needs) - set(names[:i]))
    needs = {s.name: set(s.needs) for s in PIPELINE}
    # What a stage is handed in memory comes from the stage that reads it (ctx.handoff).
    assert "etcd_certs" in needs["etcd"]
    assert {"k8s_certs"} <= needs["k8s_control_plane"] and {"k8s_certs", "k8s_images"} <= needs["k8s_node"]
    assert "k8s_certs" in needs["k8s_admin"]
    # The resolvers point at the DNS servers; the others follow the ops host's clock; the VIP checks the proxy.
    assert {"dns_primary", "dns_secondary", "dnsmasq"} <= needs["resolver"]
    assert "time_server" in needs["time_sync"] and "l4proxy" in needs["vip"]
