"""Time in sync, from chronyc on each host: it follows the source the inventory gives it, within the bound."""

from groundwork.verify import reads

GROUPS = None
SOURCES = "chronyc -n -c sources"
TRACKING = "chronyc -n -c tracking"
LOCAL_CLOCK = "7F7F0101"  # chrony's reference id for `local stratum`: the host serves its own clock


def applies_to(host, inventory) -> bool:
    return host.settings.time_sync.enabled


def chronyc(probe, command: str) -> list[list[str]]:
    result = probe.run(command)
    assert result.rc == 0, f"chronyd does not answer: {(result.stderr or result.stdout).strip() or 'no output'}"
    return [line.split(",") for line in result.stdout.splitlines() if line]


def serves_its_own_clock(host) -> bool:
    return "ops" in host.groups and not host.settings.time_sync.upstream


@reads(SOURCES, TRACKING)
def test_chrony_follows_its_time_source(host, probe, inventory):
    """chronyd follows its source: the ops host on every other host; on the ops host its upstream servers, or
    its own clock at the local stratum where there are none"""
    tracking = chronyc(probe, TRACKING)[0]
    ref_id, stratum, leap = tracking[0], tracking[2], tracking[-1]
    assert leap != "Not synchronised", f"chronyd is not synchronised (reference {ref_id}, stratum {stratum})"
    if serves_its_own_clock(host):
        wanted = host.settings.time_sync.local_stratum
        assert ref_id == LOCAL_CLOCK and stratum == str(wanted), (
            f"the ops host follows {tracking[1] or ref_id} at stratum {stratum}; wanted its own clock at stratum "
            f"{wanted} (no upstream in time_sync)")
        return
    selected = [s[2] for s in chronyc(probe, SOURCES) if s[0] == "^" and s[1] == "*"]
    if "ops" in host.groups:
        assert selected, f"chronyd follows none of its upstream servers {host.settings.time_sync.upstream}"
    else:
        ops = inventory.ops_host
        assert selected == [str(ops.address)], (f"chronyd follows {selected[0] if selected else 'no source'}; "
                                           f"wanted {ops.name} ({ops.address})")


@reads(TRACKING)
def test_the_clock_is_within_the_bound_of_its_source(host, probe):
    """the clock is within time_sync.max_offset_ms of its source (chronyc tracking: system time and last
    offset)"""
    tracking = chronyc(probe, TRACKING)[0]
    offsets_ms = {"system time": abs(float(tracking[4])) * 1000, "last offset": abs(float(tracking[5])) * 1000}
    bound = host.settings.time_sync.max_offset_ms
    over = {what: f"{ms:.3f} ms" for what, ms in offsets_ms.items() if ms > bound}
    assert not over, f"off its source by {over}; the bound is {bound} ms (time_sync.max_offset_ms)"
