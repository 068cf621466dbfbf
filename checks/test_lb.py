"""The apiservers' L4 proxy and its VIP, checked on every proxy host."""

from shlex import quote

import pytest

from groundwork.facts import KEEPALIVED_STATE, keyvalues
from groundwork.tasks.lb import vip_pings
from groundwork.verify import reads

GROUPS = ("proxy",)
LOG = "log| "  # keepalived's last words in vip_state's output, not a key of it
REQUEST = "GET /healthz HTTP/1.0\\r\\n\\r\\n"  # an apiserver answers even plain HTTP on its TLS port (400)


def nginx_listens(host, session) -> str:
    return f"ss -Hlntp 'sport = :{host.settings.lb.port}'"


def vip_state(host, session) -> str | None:
    """keepalived's running state, the state it last entered since it started, and whether the VIP is here
    (None without VRRP: nothing to read)."""
    if not host.settings.lb.vrrp:
        return None
    vip = session.inventory.lb_vip
    return (f"echo \"active=$(systemctl is-active keepalived)\"; echo \"state=$({KEEPALIVED_STATE})\"; "
            f"ip -o -4 addr show | grep -q ' {vip}/' && echo holds=yes || echo holds=no; "
            f"{vip_pings(vip)} && echo answers=yes || echo answers=no; "
            # keepalived's last words, for whoever reads the evidence of a failure
            f"journalctl -u keepalived -n 4 --no-pager -q -o short-precise | sed 's/^/{LOG}/'")


def entry_point(host, session) -> str:
    """Where clients connect: the VIP, or this host's own address without VRRP (lb.vrrp false)."""
    return str(session.inventory.lb_vip if host.settings.lb.vrrp else host.address)


def through_the_proxy(host, session) -> str:
    """Whether each backend accepts a connection (all at once), then one request through the entry point and the
    first line of what comes back (nothing: the proxy closed the connection without reaching a backend)."""
    lb = host.settings.lb
    # One bash and a fork per backend (no program started per backend: at 50 hosts every process counts); a
    # backend that neither accepts nor refuses within 3 s prints nothing.
    each = " ".join(str(b) for b in session.inventory.lb_backends)
    connect = (f"for b in {each}; do ( exec 3<>/dev/tcp/$b/{lb.backend_port} ) 2>/dev/null && echo \"backend "
               f"$b:{lb.backend_port} listening\" || echo \"backend $b:{lb.backend_port} closed\" & done; wait")
    backends = f"timeout 3 bash -c {quote(connect)}"
    target = f"/dev/tcp/{entry_point(host, session)}/{lb.port}"
    ask = f"exec 3<>{target} || exit 7; printf '{REQUEST}' >&3; timeout 3 head -c 200 <&3"
    # No connection through the proxy while no backend listens: each would count as a failure of every backend
    # (max_fails=3 in 30 s), and keep nginx from trying an apiserver that has just come up.
    return (f"found=$({backends}); echo \"$found\"; case \"$found\" in *listening*) ;; *) exit 0;; esac; "
            f"reply=$(timeout 5 bash -c {quote(ask)} 2>/dev/null); rc=$?; "
            "printf 'through-rc=%s\\nthrough-reply=%s\\n' \"$rc\" \"$(printf %s \"$reply\" | head -n 1 "
            "| tr -dc '[:print:]')\"")


@reads(nginx_listens)
def test_nginx_listens_on_the_proxy_port(host, probe, session):
    """nginx listens on the L4 proxy's port (7443)"""
    result = probe.run(nginx_listens(host, session))
    assert result.stdout.strip(), f"nothing listens on port {host.settings.lb.port}"
    assert '"nginx"' in result.stdout, f"another program listens on the port, not nginx: {result.stdout.strip()}"


@reads(vip_state)  # and, as gathered there, every other targeted proxy host's
def test_keepalived_is_master_exactly_where_the_vip_is_and_one_proxy_host_holds_it(host, probe, inventory, session):
    """keepalived runs, is MASTER here exactly when this host holds the VIP, and exactly one proxy host holds it"""
    if not host.settings.lb.vrrp:
        pytest.skip("no VIP: lb.vrrp is false (the cloud's own load balancer is in front of the proxy hosts)")
    mine = keyvalues(probe.run(vip_state(host, session)).stdout, skip=LOG)
    assert mine.get("active") == "active", f"keepalived is {mine.get('active') or 'not installed'}"
    assert mine.get("state") != "FAULT", (f"keepalived is in FAULT: its check finds nothing listening on port "
                                          f"{host.settings.lb.port}, so this host cannot hold the VIP")
    holds = mine.get("holds") == "yes"
    assert holds == (mine.get("state") == "MASTER"), (f"keepalived says {mine.get('state')} but the VIP is "
                                                      f"{'here' if holds else 'not here'}")
    # Every targeted proxy host's state, as gathered there (a proxy host outside the run is not looked at).
    proxies = inventory.group_members("proxy")
    looked = [h for h in proxies if h in session.targets and h.settings.lb.vrrp]
    holders = [h.name for h in looked if keyvalues(session.probe_for(h, probe.evidence).run(
        vip_state(h, session)).stdout, skip=LOG).get("holds") == "yes"]
    split = f": {', '.join(holders)} (split brain: they do not hear each other's VRRP)" if holders else ""
    if len(looked) == len(proxies):
        assert len(holders) == 1, f"{inventory.lb_vip} is held by {len(holders)} proxy hosts{split}"
    else:  # the others are not in this run: the VIP must at least answer, and not twice among these
        assert len(holders) <= 1, f"{inventory.lb_vip} is held by {len(holders)} proxy hosts{split}"
        assert holds or mine.get("answers") == "yes", (f"{inventory.lb_vip} does not answer from here, and no "
                                                       "proxy host of this run holds it")


@reads(through_the_proxy)
def test_a_connection_to_the_vip_reaches_an_apiserver(host, probe, session):
    """a TCP connection to VIP:7443 from here reaches an apiserver (without Kubernetes in the inventory: skipped
    while no backend listens yet)"""
    lb = host.settings.lb
    result = probe.run(through_the_proxy(host, session))
    backends = [f"{b}:{lb.backend_port}" for b in session.inventory.lb_backends]
    listening = any(line.endswith(" listening") for line in result.stdout.splitlines() if line.startswith("backend "))
    if not listening and session.inventory.defaults.kubernetes.enabled:
        pytest.fail(f"no apiserver listening: none of {', '.join(backends)} accepts a connection", pytrace=False)
    if not listening:
        pytest.skip(f"no backend listening yet: none of {', '.join(backends)} accepts a connection (the "
                    "apiservers are not installed yet); the proxy itself is checked above")
    found = keyvalues(result.stdout, skip=LOG)
    target = f"{entry_point(host, session)}:{lb.port}"
    assert found.get("through-rc") != "7", f"{target} refuses connections"
    assert found.get("through-reply"), (f"{target} accepted the connection but no backend answered "
                                        f"(exit {found.get('through-rc')}): the proxy did not reach a backend")
