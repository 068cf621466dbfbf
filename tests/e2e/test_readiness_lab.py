"""kubeadm's preflight on the lab: a verdict per host in the full run's report and in groundwork readiness's, and
a host with swap on, a taken port or a cloned MAC failing alone (with its clone) with the reason."""

import re

from tests.e2e.conftest import HOSTS

MASTERS = ["hdss7-21", "hdss7-22"]


def verdicts(run) -> dict[str, str]:
    page = (run.reports / run.record["run_id"] / "report.html").read_text()
    return dict(re.findall(r"<b>([\w-]+)</b>: ((?:NOT )?ready for kubeadm)", page[page.index('id="gw-readiness"'):]))


def failed(run) -> list[tuple[str, str]]:
    return [(c["host"], c["message"].removeprefix("AssertionError: ")) for c in run.record["checks"]
            if c["outcome"] in ("failed", "error")]


def test_a_full_run_shows_time_in_sync_everywhere_and_a_readiness_verdict_per_master(converged, runbook):
    run = runbook()
    assert run.rc == 0, run
    assert verdicts(run) == {h: "ready for kubeadm" for h in MASTERS}
    time_checks = {(c["host"], c["outcome"]) for c in run.record["checks"] if c["check"].startswith("test_time_sync.py")}
    assert time_checks == {(h, "passed") for h in HOSTS}, time_checks
    readiness = [c for c in run.record["checks"] if c["check"].startswith("test_readiness.py")]
    assert {c["host"] for c in readiness} == set(MASTERS) and len(readiness) == 2 * 9, readiness


def test_the_masters_are_ready_for_kubeadm_and_what_the_lab_cannot_decide_is_said(converged, runbook):
    run = runbook(name="readiness")
    assert run.rc == 0, run
    assert verdicts(run) == {h: "ready for kubeadm" for h in MASTERS}
    checks = run.record["checks"]
    assert {c["host"] for c in checks} == set(MASTERS) and len(checks) == 2 * 9
    undecided = {(c["host"], c["message"]) for c in checks if c["outcome"] == "skipped"}
    # Containers on a machine without DMI have no product_uuid: undecided, not passed.
    assert undecided == {(h, "cannot decide: no product_uuid to read here (a container, or a machine without DMI)")
                         for h in MASTERS}
    assert {c["outcome"] for c in checks} <= {"passed", "warned", "skipped"}
    index = (run.reports / "index.html").read_text()
    assert '<td class="num" title="ready: hdss7-21, hdss7-22">2/2</td>' in index


def test_swap_on_or_a_taken_port_fails_that_host_alone_with_the_reason(converged, runbook, tmp_path):
    lab = converged
    # Swap is the machine's, shared by every lab host: hdss7-21 is made to show some, as a host with swap would.
    lab.ssh("hdss7-21", "printf 'Filename\\tType\\tSize\\tUsed\\tPriority\\n/swapfile file 1048572 0 -2\\n' "
                        "> /run/swaps && mount --bind /run/swaps /proc/swaps")
    lab.ssh("hdss7-22", "systemd-run --quiet --unit gw-squatter systemd-socket-activate -l 8080 /bin/cat")
    try:
        run = runbook(name="readiness")
    finally:
        lab.ssh("hdss7-21", "umount /proc/swaps; rm -f /run/swaps")
        lab.ssh("hdss7-22", "systemctl stop gw-squatter")
    assert run.rc == 5, run
    assert verdicts(run) == {h: "NOT ready for kubeadm" for h in MASTERS}
    assert sorted(failed(run)) == [
        ("hdss7-21", "swap is on: /swapfile (swapoff -a, and take it out of /etc/fstab; or set readiness.allow_swap "
                     "to record --ignore-preflight-errors=Swap)"),
        ("hdss7-22", "in the NodePort range 3000-29999: port 8080 is held by systemd-socket- (a Service's NodePort "
                     "there would not open)")]
    assert lab.ssh("hdss7-21", "cat /proc/swaps").count("\n") == 1  # the header alone: put back as it was

    again = runbook(name="readiness")
    assert again.rc == 0 and verdicts(again) == {h: "ready for kubeadm" for h in MASTERS}, again


def test_a_cloned_mac_address_fails_the_hosts_that_share_it_with_the_reason(converged, runbook):
    lab = converged
    # What the check reads, the MAC of the interface carrying the address, is made on hdss7-22 to show
    # hdss7-21's, as on a cloned machine. The interface itself keeps its own: a real clone on the lab's bridge
    # would cut both hosts off.
    def address_file(address: str) -> str:
        return f"/sys/class/net/$(ip -o -4 addr show to {address} | awk '{{print $2; exit}}')/address"

    mac21 = lab.ssh("hdss7-21", f"cat {address_file('10.4.7.21')}").strip()
    lab.ssh("hdss7-22", f"echo {mac21} > /run/gw-mac && mount --bind /run/gw-mac {address_file('10.4.7.22')}")
    try:
        run = runbook(name="readiness")
    finally:
        lab.ssh("hdss7-22", f"umount {address_file('10.4.7.22')}; rm -f /run/gw-mac")
    assert run.rc == 5, run
    assert verdicts(run) == {h: "NOT ready for kubeadm" for h in MASTERS}
    clone = "(cloned machines: give each its own)"
    assert sorted(failed(run)) == [("hdss7-21", f"MAC address {mac21} is also hdss7-22's {clone}"),
                                   ("hdss7-22", f"MAC address {mac21} is also hdss7-21's {clone}")]
    assert lab.ssh("hdss7-22", f"cat {address_file('10.4.7.22')}").strip() != mac21  # its own again
