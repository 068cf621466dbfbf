"""The apiservers' L4 proxy and VIP end to end on hdss7-11 and hdss7-12: the first election, pass-through to
stand-in apiservers, the VIP moving on faults and never coming back by itself, and nginx's own rollback."""

import socket
import time
import urllib.request

import pytest

from tests.e2e.conftest import HOSTS, inventory_copy, kubernetes_stopped

VIP, PORT = "10.4.7.10", 7443
PROXIES = ("hdss7-11", "hdss7-12")
BACKENDS = ("hdss7-21", "hdss7-22")
# A stand-in apiserver, a test fixture and not product: answers any request with the name of its host. It is
# socat under the apiserver's program name, so the port it holds is held as kubeadm's preflight expects.
STAND_IN = ("apt-get install -y -qq socat >/dev/null && printf '%s\\n' '#!/bin/sh' 'read request; read blank' "
            "'printf \"HTTP/1.0 200 OK\\r\\n\\r\\nstand-in apiserver on %s\\n\" \"$(hostname -s)\"' "
            "> /usr/local/bin/gw-standin && chmod 755 /usr/local/bin/gw-standin && "
            "install -D \"$(command -v socat)\" /usr/local/lib/gw-standin/kube-apiserver && systemd-run --collect "
            "--unit=gw-standin-apiserver /usr/local/lib/gw-standin/kube-apiserver TCP-LISTEN:6443,fork,reuseaddr "
            "EXEC:/usr/local/bin/gw-standin")


def without_kubernetes(name: str, data: dict) -> None:
    if name == "defaults.yaml":
        data["data"].pop("kubernetes", None)


@pytest.fixture
def runbook(runbook, tmp_path):
    """This module's runs leave Kubernetes out: the L4 proxy as the tutorial builds it, before the apiservers."""
    inventory = inventory_copy(tmp_path, without_kubernetes)
    return lambda *args, **kw: runbook("-i", inventory, *args, **kw)


@pytest.fixture
def converged(lab, runbook):
    """Every host as the pipeline wants it without Kubernetes, and no apiserver listening (an earlier test's
    cluster stopped; the next full run starts it again)."""
    result = runbook()
    assert result.rc == 0, result
    kubernetes_stopped(lab)
    return lab


def holders(lab) -> list[str]:
    return [h for h in PROXIES if f" {VIP}/" in lab.ssh(h, "ip -o -4 addr show", check=False)]


def wait_for_holder(lab, wanted: str, seconds: float = 10.0) -> float:
    """Seconds until the VIP is on `wanted` (and only there); fails after `seconds`."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if holders(lab) == [wanted]:
            return time.monotonic() - started
        time.sleep(0.25)
    pytest.fail(f"the VIP is on {holders(lab)} after {seconds} s, not on {wanted}")


def keepalived_up(lab, host: str) -> None:
    lab.ssh(host, "for i in $(seq 100); do systemctl is-active -q keepalived && exit 0; sleep 0.2; done; exit 1")


def lb_checks(run) -> dict[tuple[str, str], str]:
    return {(c["host"], c["check"].split("::")[1]): c["outcome"] for c in run.record["checks"]
            if c["check"].startswith("test_lb.py")}


def through_the_vip() -> bytes:
    """What comes back through VIP:7443 until the other end closes; nothing when the proxy reached no backend."""
    with socket.create_connection((VIP, PORT), timeout=5) as conn:
        conn.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        conn.settimeout(5)
        reply = b""
        try:
            while chunk := conn.recv(200):
                reply += chunk
        except ConnectionResetError:  # nginx closing on a request it did not read
            pass
        return reply


def answer_through_the_vip() -> str:
    """The name of the stand-in apiserver that answered, or "" for none."""
    reply = through_the_vip().decode()
    return reply.rsplit(" ", 1)[-1].strip() if "stand-in apiserver on" in reply else ""


@pytest.fixture
def first_election(converged, runbook):
    """keepalived stopped on both proxy hosts, then the pipeline: the first proxy host must win."""
    lab = converged
    for host in PROXIES:
        lab.ssh(host, "systemctl stop keepalived")
    run = runbook()
    assert run.rc == 0, run
    assert run.statuses("vip") == {"hdss7-11": "changed", "hdss7-12": "changed"}
    assert holders(lab) == ["hdss7-11"]
    return lab


def test_the_first_proxy_host_takes_the_vip_and_a_rerun_changes_nothing(first_election, runbook):
    lab = first_election
    assert "MASTER" in lab.ssh("hdss7-11", "journalctl -u keepalived -q -o cat | grep Entering | tail -n 1")
    for host in PROXIES:
        assert "nginx" in lab.ssh(host, f"ss -Hlntp 'sport = :{PORT}'")
    assert lab.ssh("hdss7-11", "stat -c '%a %U' /etc/keepalived/keepalived.conf").split() == ["600", "root"]
    again = runbook()
    assert again.rc == 0, again
    assert set(again.statuses("l4proxy").values()) == set(again.statuses("vip").values()) == {"ok"}
    checks = lb_checks(again)
    reach = "test_a_connection_to_the_vip_reaches_an_apiserver"
    assert {o for (h, c), o in checks.items() if c != reach} == {"passed"} and len(checks) == 3 * len(PROXIES)
    skipped = [c for c in again.record["checks"] if c["check"].endswith(reach)]
    assert {c["outcome"] for c in skipped} == {"skipped"}
    assert all(c["message"].startswith("no backend listening yet") for c in skipped)
    # Before any apiserver, the proxy takes the connection and closes it: nothing comes back.
    assert through_the_vip() == b""


def test_a_connection_to_the_vip_reaches_the_stand_in_apiservers(converged, runbook):
    lab = converged
    try:
        for host in BACKENDS:
            lab.ssh(host, STAND_IN)
        # nginx counted the connections tried before the stand-ins listened (max_fails=3 fail_timeout=30s): a
        # backend is tried again within 30 s, and until then a connection may find no backend at all ("")
        answers: set[str] = set()
        deadline = time.monotonic() + 40
        while answers != set(BACKENDS) and time.monotonic() < deadline:
            answers.add(answer_through_the_vip())
            answers.discard("")
            time.sleep(0.5)
        assert answers == set(BACKENDS)  # round robin over both backends
        checked = runbook(name="verify")
        assert checked.rc == 0, checked
        assert set(lb_checks(checked).values()) == {"passed"}
        # One backend gone: the proxy passes connections to the other.
        lab.ssh("hdss7-21", "systemctl stop gw-standin-apiserver")
        assert {answer_through_the_vip() for _ in range(4)} == {"hdss7-22"}
    finally:
        for host in BACKENDS:
            lab.ssh(host, "systemctl stop gw-standin-apiserver", check=False)


def test_the_vip_moves_on_faults_never_comes_back_by_itself_and_a_rerun_leaves_it(first_election, runbook):
    lab = first_election
    moves = {}
    lab.ssh("hdss7-11", "systemctl stop nginx")  # nginx stopped on the holder
    moves["nginx stopped on hdss7-11"] = wait_for_holder(lab, "hdss7-12")

    fixed = runbook()  # restores nginx on the first host without moving the VIP back
    assert fixed.rc == 0, fixed
    assert fixed.statuses("l4proxy") == {"hdss7-11": "changed", "hdss7-12": "ok"}
    assert set(fixed.statuses("vip").values()) == {"ok"}
    time.sleep(5)
    assert holders(lab) == ["hdss7-12"]

    lab.kill("hdss7-12")  # the holder killed
    moves["hdss7-12 killed"] = wait_for_holder(lab, "hdss7-11")
    lab.start("hdss7-12")
    keepalived_up(lab, "hdss7-12")
    lab.kill("hdss7-11")  # the first host killed, then back: priority 100, and still no preemption
    moves["hdss7-11 killed"] = wait_for_holder(lab, "hdss7-12")
    lab.start("hdss7-11")
    keepalived_up(lab, "hdss7-11")
    time.sleep(6)  # longer than keepalived's election takes
    assert holders(lab) == ["hdss7-12"]
    assert "BACKUP" in lab.ssh("hdss7-11", "journalctl -u keepalived -b -q -o cat | grep Entering | tail -n 1")
    assert all(seconds < 10 for seconds in moves.values()), moves
    print(f"VIP moves: {moves}")

    checked = runbook(name="verify")
    assert checked.rc == 0, checked
    assert {o for (h, c), o in lb_checks(checked).items() if "reaches" not in c} == {"passed"}


def test_a_failing_nginx_check_puts_the_previous_files_back_and_the_http_site_keeps_serving(converged, runbook):
    lab = converged
    stream = "/etc/nginx/stream.d/kube-apiserver.conf"
    # The tutorial's own stream block, appended by hand earlier: ours would make a second one.
    lab.ssh("hdss7-12", f"rm {stream} && printf 'stream {{\\n}}\\n' >> /etc/nginx/nginx.conf")
    before = lab.ssh("hdss7-12", "sha256sum /etc/nginx/nginx.conf")
    try:
        run = runbook()
        assert run.rc == 4, run
        assert run.statuses("l4proxy") == {"hdss7-11": "ok", "hdss7-12": "failed"}
        error = run.entry("hdss7-12", "l4proxy")["error"]
        assert '"stream" directive is duplicate' in error and "previous files restored" in error
        assert lab.ssh("hdss7-12", f"test -e {stream} || echo absent").strip() == "absent"
        assert lab.ssh("hdss7-12", "sha256sum /etc/nginx/nginx.conf") == before
        assert lab.ssh("hdss7-12", "systemctl is-active nginx").strip() == "active"
        # the distribution's http site beside the stream proxy, on both hosts
        for host in PROXIES:
            direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy of this machine's
            with direct.open(f"http://{HOSTS[host]}/", timeout=5) as page:
                assert page.status == 200 and b"nginx" in page.read()
    finally:
        lab.ssh("hdss7-12", "sed -i '/^stream {$/,/^}$/d' /etc/nginx/nginx.conf")
    again = runbook()
    assert again.rc == 0, again
    assert again.statuses("l4proxy")["hdss7-12"] == "changed"


def test_a_run_killed_between_writing_keepalived_conf_and_reloading_it_is_finished_by_the_next(
        converged, runbook, tmp_path):
    """The issue's example: a new VRRP password written on hdss7-11, the run killed (SIGKILL) before the
    reload. The rerun reloads keepalived although the file is as wanted; the killed run's folder is sealed as
    cut short, and the reports audit cleanly."""
    import json
    import subprocess
    import sys

    from tests.conftest import PROJECT

    lab = converged
    new = "Cut4" + str(int(time.time()) % 10000)
    # keepalived's reload held up on hdss7-11 (a wrapper before systemctl on PATH), so the kill lands between
    # the file's write and its activation
    lab.ssh("hdss7-11", "printf '%s\\n' '#!/bin/sh' 'case \"$*\" in *\"reload keepalived\"*) sleep 300;; esac' "
                        "'exec /usr/bin/systemctl \"$@\"' > /usr/local/bin/systemctl && chmod 755 /usr/local/bin/systemctl")
    reports = tmp_path / "reports"
    command = [sys.executable, str(PROJECT / "runbooks" / "lb.py"), "-i", str(tmp_path / "inventory"), "--host",
               "hdss7-11", "--no-verify", "--reports", str(reports)]
    env = {**__import__("os").environ, "GROUNDWORK_VRRP_PASSWORD": new}
    before = {p.name for p in reports.iterdir()}
    killed = subprocess.Popen(command, env=env, cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while "sleep 300" not in lab.ssh("hdss7-11", "pgrep -af 'slee[p] 300'; true"):
            assert time.monotonic() < deadline and killed.poll() is None, "the run never reached the reload"
            time.sleep(0.3)
        killed.kill()
        killed.wait(timeout=30)
    finally:
        lab.ssh("hdss7-11", "rm -f /usr/local/bin/systemctl; pkill -f 'slee[p] 300'; true")
    [killed_run] = {p.name for p in reports.iterdir()} - before
    assert (reports / killed_run / "started.json").exists() and not (reports / killed_run / "run.json").exists()
    audit = [sys.executable, str(PROJECT / "runbooks" / "audit.py"), "--reports", str(reports)]
    unsealed = subprocess.run(audit, capture_output=True, text=True, cwd=PROJECT)
    assert unsealed.returncode == 0 and f"{killed_run}" in unsealed.stdout and "OPEN" in unsealed.stdout, unsealed
    assert f"auth_pass {new}" in lab.ssh("hdss7-11", "cat /etc/keepalived/keepalived.conf")
    assert lab.ssh("hdss7-11", "ls /var/lib/groundwork/pending").split() == ["keepalived"]

    again = runbook("--host", "hdss7-11", "--no-verify", name="lb", env={"GROUNDWORK_VRRP_PASSWORD": new})
    assert again.rc == 0, again
    assert again.statuses("vip") == {"hdss7-11": "changed"}
    assert [c["summary"] for c in again.entry("hdss7-11", "vip")["changes"]] == [
        "reload keepalived (the VIP stays where it is) and check that it answers"]
    assert lab.ssh("hdss7-11", "ls -A /var/lib/groundwork/pending").strip() == ""
    third = runbook("--host", "hdss7-11", "--no-verify", name="lb", env={"GROUNDWORK_VRRP_PASSWORD": new})
    assert third.rc == 0 and third.statuses("vip") == {"hdss7-11": "ok"}, third

    sealed = json.loads((reports / killed_run / "run.json").read_text())
    assert sealed["outcome"] == "cut-short" and sealed["interrupted"] is True
    assert [(e["host"], e["stage"]) for e in sealed["entries"]] == [("hdss7-11", "l4proxy")]  # what had ended
    audited = subprocess.run(audit, capture_output=True, text=True, cwd=PROJECT)
    assert audited.returncode == 0 and "OPEN" not in audited.stdout, audited.stdout + audited.stderr
    # both proxy hosts back on the lab's own password
    restored = runbook("--group", "proxy", "--no-verify", name="lb")
    assert restored.rc == 0, restored
