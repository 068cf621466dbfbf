"""A check on a host must fail when the thing it checks is absent. Each check here is handed a host that lacks
it (a stand-in probe answering as such a host would) and must fail; the lab tests run them on real hosts."""

import pytest

from groundwork.inventory import load_inventory
from groundwork.remote import CommandResult
from tests.conftest import copy_seed_inventory


class HostThatLacks:
    """Answers commands from a table of (part of the command -> rc, stdout); probes by their key."""

    def __init__(self, commands: dict[str, tuple[int, str]], facts: dict[str, str] | None = None):
        self.commands, self.facts = commands, facts or {}
        self.evidence: list = []

    def run(self, command: str, stdin: bytes = b"") -> CommandResult:
        rc, out = next((v for k, v in self.commands.items() if k in command), (1, ""))
        return CommandResult(command, rc, out, "" if rc == 0 else "No such file or directory", 0.0)

    def fact(self, probe):
        return probe.parse(self.facts.get(probe.key, ""))


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    return load_inventory(copy_seed_inventory(tmp_path_factory.mktemp("inv")))


def test_the_ca_key_check_fails_when_key_and_certificate_are_both_missing(inventory):
    from groundwork.checks.test_ca import test_ca_key_belongs_to_the_certificate as check
    with pytest.raises(AssertionError, match="ca.pem has no readable public key"):
        check(inventory.ops_host, HostThatLacks({}))


def test_the_ca_key_check_passes_when_they_belong_together(inventory):
    from groundwork.checks.test_ca import test_ca_key_belongs_to_the_certificate as check
    key = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
    check(inventory.ops_host, HostThatLacks({"openssl x509": (0, key), "openssl pkey": (0, key)}))


@pytest.mark.parametrize("resolv_conf", [
    "nameserver 10.4.7.110\nnameserver 10.4.7.120\nsearch host.com\n",  # 10.4.7.11 and .12 only as substrings
    "nameserver 10.4.7.11\nnameserver 10.4.7.12\nsearch host.com.cn\n",
    "# nameserver 10.4.7.11 nameserver 10.4.7.12 search host.com\n",
])
def test_the_resolver_check_fails_unless_both_servers_and_the_domain_are_there(inventory, resolv_conf):
    from groundwork.checks.test_dns import test_resolver_points_at_the_dns_servers as check
    with pytest.raises(AssertionError):
        check(inventory.hosts["hdss7-21"], HostThatLacks({"resolv.conf": (0, resolv_conf)}), inventory)


def test_the_resolver_check_reads_systemd_resolved(inventory):
    from groundwork.checks.test_dns import test_resolver_points_at_the_dns_servers as check
    text = "nameserver 127.0.0.53\nGlobal:\nLink 2 (eth0): 10.4.7.11 10.4.7.12\nLink 2 (eth0): host.com\n"
    check(inventory.hosts["hdss7-21"], HostThatLacks({"resolv.conf": (0, text)}), inventory)


def test_the_kernel_settings_check_fails_without_br_netfilter(inventory):
    from groundwork.checks.test_host_prep import test_kernel_settings_for_docker as check
    host = inventory.hosts["hdss7-21"]
    sysctl = "".join(f"{k}={v}\n" for k, v in host.settings.host_prep.sysctl.items())
    with pytest.raises(AssertionError, match="kernel modules not loaded: br_netfilter"):
        check(host, HostThatLacks({}, {"sysctl": sysctl, "paths": ""}))
    check(host, HostThatLacks({}, {"sysctl": sysctl, "paths": "/proc/sys/net/bridge\n"}))


@pytest.mark.parametrize("facts, wanted", [
    ({"services": "LoadState=loaded\nActiveState=inactive\nUnitFileState=enabled\n"},
     "firewalld is inactive and enabled"),
    ({"selinux": "running=permissive\nconfig=enforcing\n"}, "/etc/selinux/config has SELINUX=enforcing"),
    ({"selinux": "running=enforcing\nconfig=disabled\n"}, "SELinux is enforcing"),
])
def test_selinux_and_firewalld_check_fails_when_either_comes_back_at_boot(inventory, facts, wanted):
    from groundwork.checks.test_host_prep import test_selinux_and_firewalld_are_off as check
    with pytest.raises(AssertionError, match=wanted):
        check(inventory.hosts["hdss7-21"], HostThatLacks({}, facts))
    off = "LoadState=loaded\nActiveState=inactive\nUnitFileState=disabled\n"
    check(inventory.hosts["hdss7-21"], HostThatLacks({}, {"services": off,
                                                          "selinux": "running=disabled\nconfig=disabled\n"}))


def test_the_mesh_check_names_each_peer_that_does_not_resolve_or_answer(inventory):
    from groundwork.checks.test_dns import mesh_script, test_other_hosts_resolve_by_fqdn_and_short_name_and_answer_ping as check
    host = inventory.hosts["hdss7-21"]
    lines = {h.name: f"peer {h.name} fqdn={h.address} short={h.address} ping=ok"
             for h in inventory.hosts.values() if h.name != host.name}
    answers = {mesh_script(host, inventory): (0, "\n".join(lines.values()))}
    check(host, HostThatLacks(answers), inventory)
    lines["hdss7-22"] = "peer hdss7-22 fqdn=10.4.7.22 short=10.4.7.22 ping=none"
    lines["hdss7-11"] = "peer hdss7-11 fqdn= short=10.4.7.11 ping=ok"
    del lines["hdss7-200"]
    answers = {mesh_script(host, inventory): (0, "\n".join(lines.values()))}
    with pytest.raises(AssertionError) as failed:
        check(host, HostThatLacks(answers), inventory)
    message = str(failed.value)
    assert "3 problem(s) from hdss7-21" in message
    assert "ping hdss7-22 (10.4.7.22) gets no answer" in message
    assert "hdss7-11.host.com resolves to nothing, not 10.4.7.11" in message
    assert "hdss7-200: no result" in message


def lb_session(inventory, states: dict[str, str]):
    """A verification session whose proxy hosts answer the VIP look with the given keyvalues."""
    from types import SimpleNamespace
    targets = list(inventory.hosts.values())
    return SimpleNamespace(inventory=inventory, targets=targets,
                           probe_for=lambda host, evidence: HostThatLacks({"keepalived": (0, states[host.name])}))


def test_the_nginx_check_fails_when_nothing_or_another_program_listens(inventory):
    from groundwork.checks.test_lb import test_nginx_listens_on_the_proxy_port as check
    host = inventory.hosts["hdss7-11"]
    with pytest.raises(AssertionError, match="nothing listens on port 7443"):
        check(host, HostThatLacks({}), lb_session(inventory, {}))
    with pytest.raises(AssertionError, match="not nginx"):
        check(host, HostThatLacks({"ss -Hlntp": (0, 'LISTEN 0 511 0.0.0.0:7443 users:(("haproxy",pid=9))')}),
              lb_session(inventory, {}))


MASTER, BACKUP = ("active=active\nstate=MASTER\nholds=yes\nanswers=yes\n",
                  "active=active\nstate=BACKUP\nholds=no\nanswers=yes\n")


@pytest.mark.parametrize("first,second,message", [
    ("active=inactive\nstate=\nholds=no\n", BACKUP, "keepalived is inactive"),
    ("active=active\nstate=FAULT\nholds=no\n", MASTER, "FAULT"),
    (BACKUP, BACKUP, "held by 0 proxy hosts"),
    (MASTER, MASTER, "split brain"),
    ("active=active\nstate=BACKUP\nholds=yes\n", BACKUP, "says BACKUP but the VIP is here"),
])
def test_the_vip_check_fails_without_exactly_one_consistent_holder(inventory, first, second, message):
    from groundwork.checks.test_lb import test_keepalived_is_master_exactly_where_the_vip_is_and_one_proxy_host_holds_it as check
    states = {"hdss7-11": first, "hdss7-12": second}
    with pytest.raises(AssertionError, match=message):
        check(inventory.hosts["hdss7-11"], HostThatLacks({"keepalived": (0, first)}), inventory,
              lb_session(inventory, states))
    check(inventory.hosts["hdss7-11"], HostThatLacks({"keepalived": (0, MASTER)}), inventory,
          lb_session(inventory, {"hdss7-11": MASTER, "hdss7-12": BACKUP}))


def test_the_vip_check_of_a_run_without_every_proxy_host_fails_only_when_the_vip_does_not_answer(inventory):
    from groundwork.checks.test_lb import test_keepalived_is_master_exactly_where_the_vip_is_and_one_proxy_host_holds_it as check
    session = lb_session(inventory, {"hdss7-11": BACKUP})
    session.targets = [inventory.hosts["hdss7-11"]]  # --host hdss7-11: hdss7-12, holding the VIP, is not in it
    check(inventory.hosts["hdss7-11"], HostThatLacks({"keepalived": (0, BACKUP)}), inventory, session)
    silent = BACKUP.replace("answers=yes", "answers=no")
    session = lb_session(inventory, {"hdss7-11": silent})
    session.targets = [inventory.hosts["hdss7-11"]]
    with pytest.raises(AssertionError, match="does not answer from here, and no proxy host of this run holds it"):
        check(inventory.hosts["hdss7-11"], HostThatLacks({"keepalived": (0, silent)}), inventory, session)


def test_the_vip_reach_check_skips_without_backends_and_fails_when_the_proxy_reaches_none(inventory):
    from groundwork.checks.test_lb import test_a_connection_to_the_vip_reaches_an_apiserver as check
    host, session = inventory.hosts["hdss7-11"], lb_session(inventory, {})
    closed = "backend 10.4.7.22:6443 closed\nbackend 10.4.7.21:6443 closed\n"
    # Kubernetes in the inventory: an apiserver must answer behind the VIP
    with pytest.raises(pytest.fail.Exception, match="no apiserver listening: none of 10.4.7.21:6443, 10.4.7.22"):
        check(host, HostThatLacks({"found=": (0, closed)}), session)
    # without it (the L4 proxy built before the apiservers, as the tutorial does), the check waits for them
    from dataclasses import replace

    from groundwork.settings import Kubernetes
    before_k8s = replace(inventory, defaults=inventory.defaults.model_copy(update={"kubernetes": Kubernetes()}))
    with pytest.raises(pytest.skip.Exception, match="no backend listening yet: none of 10.4.7.21:6443, 10.4.7.22"):
        check(host, HostThatLacks({"found=": (0, closed)}), lb_session(before_k8s, {}))
    listening = "backend 10.4.7.21:6443 listening\nbackend 10.4.7.22:6443 closed\n"
    with pytest.raises(AssertionError, match="no backend answered"):
        check(host, HostThatLacks({"found=": (0, listening + "through-rc=0\nthrough-reply=\n")}), session)
    with pytest.raises(AssertionError, match="10.4.7.10:7443 refuses connections"):
        check(host, HostThatLacks({"found=": (0, listening + "through-rc=7\nthrough-reply=\n")}), session)
    check(host, HostThatLacks({"found=": (0, listening + "through-rc=0\nthrough-reply=HTTP/1.0 400 Bad Request\n")}),
          session)


# -- Kubernetes (checks/test_kubernetes.py) ------------------------------------------------------------------

def test_the_kubernetes_checks_fail_on_a_host_without_kubernetes(inventory):
    """A master with no apiserver, controller-manager, scheduler, kubelet or kube-proxy, no node and no routes."""
    from groundwork.checks import test_kubernetes as k8s
    master = inventory.hosts["hdss7-21"]
    empty = HostThatLacks({})
    with pytest.raises(AssertionError, match="kube-apiserver on 10.4.7.21:6443 does not answer"):
        k8s.test_the_apiserver_answers_with_its_ca_signed_certificate(master, empty)
    for check, name in ((k8s.test_the_controller_manager_is_healthy, "kube-controller-manager"),
                        (k8s.test_the_scheduler_is_healthy, "kube-scheduler"), (k8s.test_the_kubelet_answers, "kubelet"),
                        (k8s.test_kube_proxy_answers, "kube-proxy")):
        with pytest.raises(AssertionError, match=f"{name} does not answer"):
            check(master, empty)
    with pytest.raises(AssertionError, match="the node hdss7-21.host.com cannot be read"):
        k8s.test_the_node_is_ready(master, empty)
    not_ready = HostThatLacks({"get node": (0, "False")})
    with pytest.raises(AssertionError, match="the node hdss7-21.host.com is not Ready"):
        k8s.test_the_node_is_ready(master, not_ready)
    with pytest.raises(AssertionError, match="route 172.7.22.0/24 via 10.4.7.22"):
        k8s.test_the_pod_network_routes_and_rules_are_in_place(master, empty, inventory)


def test_the_admin_kubeconfig_check_fails_when_it_is_readable_by_others_or_missing(inventory):
    from groundwork.checks.test_kubernetes import test_the_admin_kubeconfig_is_private_and_reaches_the_api_through_the_vip as check
    with pytest.raises(AssertionError, match="is mode 644, not 600"):
        check(inventory.ops_host, HostThatLacks({"stat -c %a": (0, "644\n")}), inventory)
    with pytest.raises(AssertionError, match="is mode missing, not 600"):
        check(inventory.ops_host, HostThatLacks({}), inventory)
    elsewhere = HostThatLacks({"stat -c %a": (0, "600\n"), "config view": (0, "https://10.4.7.21:6443")})
    with pytest.raises(AssertionError, match="points at https://10.4.7.21:6443, not the VIP"):
        check(inventory.ops_host, elsewhere, inventory)
    fine = {"stat -c %a": (0, "600\n"), "config view": (0, "https://10.4.7.10:7443"), "get --raw": (0, "ok")}
    with pytest.raises(AssertionError, match="https://10.4.7.10:7443 does not answer with a CA-signed certificate"):
        check(inventory.ops_host, HostThatLacks(fine), inventory)
    rolling = HostThatLacks({**fine, "for ca in": (0, "ok /opt/certs/replaced-1/ca.pem\n")})
    rolling.warnings = []
    rolling.warn = rolling.warnings.append
    check(inventory.ops_host, rolling, inventory)  # an apiserver not moved yet during a CA roll: a warning
    assert rolling.warnings and "a CA still trusted during a roll" in rolling.warnings[0]
    moved = HostThatLacks({**fine, "for ca in": (0, "ok /opt/certs/ca.pem\n")})
    check(inventory.ops_host, moved, inventory)  # no warn attribute: a warning would fail here


def test_the_every_node_check_fails_when_a_node_is_missing_or_not_ready(inventory):
    import json

    from groundwork.checks.test_kubernetes import test_every_node_is_ready as check

    def nodes(*items):
        return json.dumps({"items": [{"metadata": {"name": n}, "status": {"conditions": [
            {"type": "Ready", "status": s}]}} for n, s in items]})
    with pytest.raises(AssertionError, match="hdss7-22.host.com is not a node of the cluster"):
        check(inventory.ops_host, HostThatLacks({"get nodes": (0, nodes(("hdss7-21.host.com", "True")))}), inventory)
    with pytest.raises(AssertionError, match="hdss7-22.host.com is not Ready"):
        check(inventory.ops_host, HostThatLacks({"get nodes": (0, nodes(("hdss7-21.host.com", "True"),
                                                                         ("hdss7-22.host.com", "Unknown")))}),
              inventory)


def test_the_mesh_script_itself_maps_each_peer_to_its_lookups_and_ping(inventory, tmp_path):
    """The script as a host runs it, with stand-ins for getent (ahostsv4 as glibc prints it: the canonical name
    on each name's first line only) and ping on its PATH: hdss7-22's FQDN is unknown, so every name is looked
    up again on its own, and 10.4.7.200 does not answer."""
    import os
    import subprocess

    from groundwork.checks.test_dns import mesh_problems, mesh_script
    known = {h.fqdn: str(h.address) for h in inventory.hosts.values() if h.name != "hdss7-22"}
    known.update({h.name: str(h.address) for h in inventory.hosts.values()})
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    table = " ".join(f"{name}={address}" for name, address in known.items())
    (bin_dir / "getent").write_text(
        "#!/bin/sh\nshift; rc=0; for n in \"$@\"; do found=; for kv in " + table + "; do "
        "[ \"${kv%%=*}\" = \"$n\" ] && found=${kv#*=}; done; if [ -n \"$found\" ]; then "
        "printf '%s STREAM %s\\n%s DGRAM\\n%s RAW\\n' \"$found\" \"$n\" \"$found\" \"$found\"; else rc=2; fi; done; exit $rc\n")
    (bin_dir / "ping").write_text("#!/bin/sh\nfor a; do :; done; [ \"$a\" != 10.4.7.200 ]\n")
    (bin_dir / "sleep").write_text("#!/bin/sh\n")
    for tool in ("getent", "ping", "sleep"):
        (bin_dir / tool).chmod(0o755)
    host = inventory.hosts["hdss7-21"]
    out = subprocess.run(["sh", "-c", mesh_script(host, inventory)], capture_output=True, text=True,
                         env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}).stdout
    assert "peer hdss7-11 fqdn=10.4.7.11 short=10.4.7.11 ping=ok" in out.splitlines()
    assert mesh_problems(host, inventory, out) == ["hdss7-22.host.com resolves to nothing, not 10.4.7.22",
                                                   "ping hdss7-200 (10.4.7.200) gets no answer"]
