"""groundwork readiness on the lab: kubeadm's preflight checks on hdss7-21 and hdss7-22, a verdict per host, and a
host with swap on or a taken port failing alone with the reason."""

import re

MASTERS = ["hdss7-21", "hdss7-22"]


def verdicts(run) -> dict[str, str]:
    page = (run.reports / run.record["run_id"] / "report.html").read_text()
    return dict(re.findall(r"<b>([\w-]+)</b>: ((?:NOT )?ready for kubeadm)", page[page.index('id="gw-readiness"'):]))


def failed(run) -> list[tuple[str, str]]:
    return [(c["host"], c["message"].removeprefix("AssertionError: ")) for c in run.record["checks"]
            if c["outcome"] in ("failed", "error")]


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
