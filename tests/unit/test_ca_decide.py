"""The CA stage's decisions as data: a host with no CA gets one; an existing pair is adopted, never replaced."""

import tempfile
from pathlib import Path

import pytest

from groundwork import pki
from groundwork.changes import ActionChange, StageError
from groundwork.facts import Facts
from groundwork.inventory import load_inventory
from groundwork.tasks.ca import CERT, CONFIG, CSR, KEY, decide, decide_issue, paths
from tests.conftest import copy_seed_inventory
from tests.unit.host_facts import DEBIAN, on_host

INVENTORY = load_inventory(copy_seed_inventory(Path(tempfile.mkdtemp(prefix="gw-test-"))))
OPS = INVENTORY.ops_host
CA = OPS.settings.ca
P = paths(CA)
PAIR = pki.make_ca(CA)


def facts(pair: dict | None = None, config: bool = True, openssl: bool = True) -> Facts:
    """The ops host with these CA files (name -> FileInfo) and ca-config.json as wanted unless config is False."""
    pair = pair or {}
    return Facts(os=DEBIAN, packages={"openssl": "3.0" if openssl else None},
                 files={P[CONFIG]: on_host(pki.ca_config_json(CA)) if config else None},
                 ca_files={P[name]: pair.get(name) for name in (CERT, KEY, CSR)})


def adopted(**modes) -> dict:
    return {CERT: on_host(PAIR.cert_pem, mode=modes.get("cert", "644")),
            KEY: on_host(PAIR.key_pem, mode=modes.get("key", "600")), CSR: on_host(PAIR.csr_pem)}


def test_a_host_without_a_ca_gets_one_made_and_its_signing_profiles():
    plan = decide(OPS, facts(config=False, openssl=False), [])
    assert [c.summary for c in plan] == ["install openssl", f"create the CA {CA.cn} in {CA.dir}", f"create {P[CONFIG]}"]
    assert isinstance(plan[1], ActionChange) and "key, root 0600 (content never shown)" in plan[1].diff
    assert b"BEGIN" not in plan[1].diff.encode()  # a plan describes the key, never shows one


def test_an_existing_ca_as_wanted_is_adopted_with_no_change_and_named():
    notes = []
    assert decide(OPS, facts(adopted()), notes) == []
    assert notes[0].startswith(f"adopted the existing CA CN={CA.cn}")


def test_an_adopted_key_readable_by_others_gets_only_its_mode_put_right():
    plan = decide(OPS, facts(adopted(key="644")), [])
    assert [c.summary for c in plan] == [f"set mode 600 owner root:root on {P[KEY]}"]
    assert plan[0].before == PAIR.key_pem and "BEGIN" not in plan[0].diff


def test_a_missing_csr_is_made_again_from_the_pair():
    pair = adopted()
    del pair[CSR]
    plan = decide(OPS, facts(pair), [])
    assert [c.summary for c in plan] == [f"create {P[CSR]}"]


def test_half_a_ca_or_a_pair_that_does_not_belong_together_is_never_replaced():
    with pytest.raises(StageError, match="is there but .*ca.pem is not; groundwork never replaces a CA"):
        decide(OPS, facts({KEY: on_host(PAIR.key_pem, mode="600")}), [])
    other = pki.make_ca(CA)
    with pytest.raises(StageError, match="groundwork never replaces a CA"):
        decide(OPS, facts({**adopted(), KEY: on_host(other.key_pem, mode="600")}), [])


def test_a_certificate_is_issued_once_then_current():
    found = {P[CERT]: PAIR.cert_pem, P[KEY]: PAIR.key_pem, P[CONFIG]: pki.ca_config_json(CA),
             f"{CA.dir}/etcd-peer.pem": None}
    plan = decide_issue(OPS, found, "etcd-peer", "peer", "k8s-etcd", ["10.4.7.12"], [])
    assert [c.summary for c in plan] == ["issue etcd-peer.pem (peer)"]
    cert, key = pki.load_pair(PAIR.cert_pem, PAIR.key_pem)
    leaf, _ = pki.issue(cert, key, "peer", "k8s-etcd", ["10.4.7.12"], CA, profile_config=pki.ca_config(CA))
    notes = []
    assert decide_issue(OPS, {**found, f"{CA.dir}/etcd-peer.pem": leaf}, "etcd-peer", "peer", "k8s-etcd",
                        ["10.4.7.12"], notes) == []
    assert "is current" in notes[0]
    # Another SAN: issued again by the stage that owns the name.
    assert decide_issue(OPS, {**found, f"{CA.dir}/etcd-peer.pem": leaf}, "etcd-peer", "peer", "k8s-etcd",
                        ["10.4.7.12", "10.4.7.21"], [], owner=True)


def test_a_current_certificate_is_renewed_when_named_or_within_the_days_asked():
    """`certs renew`: a named certificate is issued again though current, and so is one with fewer days left than
    --within; without either it stays (every run renews under 30 days)."""
    from groundwork.context import Renewal

    found = {P[CERT]: PAIR.cert_pem, P[KEY]: PAIR.key_pem, P[CONFIG]: pki.ca_config_json(CA)}
    cert, key = pki.load_pair(PAIR.cert_pem, PAIR.key_pem)
    year = CA.model_copy(update={"profile_expiry": f"{365 * 24}h"})
    found[f"{CA.dir}/etcd-peer.pem"] = pki.issue(cert, key, "peer", "k8s-etcd", ["10.4.7.12"], year,
                                                 profile_config={"signing": {"profiles": {"peer": {
                                                     "usages": pki.PROFILE_USAGES["peer"]}}}})[0]

    def plan(renewal: Renewal, notes=None) -> list[str]:
        return [c.summary for c in decide_issue(OPS, found, "etcd-peer", "peer", "k8s-etcd", ["10.4.7.12"],
                                                notes if notes is not None else [], owner=True, renewal=renewal)]
    assert plan(Renewal()) == []
    assert plan(Renewal(names=frozenset({"client"}))) == []
    notes: list[str] = []
    assert plan(Renewal(names=frozenset({"etcd-peer"})), notes) == ["issue etcd-peer.pem (peer)"]
    assert "renewed, as asked" in notes[0]
    assert plan(Renewal(within_days=400)) == ["issue etcd-peer.pem (peer)"]
    assert plan(Renewal(within_days=300)) == []


def leaf_pair(cn: str = "ca", sans=("10.4.7.200",), profile: str = "server") -> tuple[bytes, bytes]:
    cert, key = pki.load_pair(PAIR.cert_pem, PAIR.key_pem)
    return pki.issue(cert, key, profile, cn, list(sans), CA, profile_config=pki.ca_config(CA))


def test_a_leaf_pair_written_over_the_ca_is_not_adopted_and_nothing_is_written():
    leaf, leaf_key = leaf_pair()
    with pytest.raises(StageError, match="ca.pem is not a CA certificate .*CA:TRUE with key usage keyCertSign"):
        decide(OPS, facts({CERT: on_host(leaf), KEY: on_host(leaf_key, mode="600")}), [])


def test_nothing_is_signed_with_a_pair_that_is_not_a_ca():
    leaf, leaf_key = leaf_pair()
    found = {P[CERT]: leaf, P[KEY]: leaf_key, P[CONFIG]: pki.ca_config_json(CA), f"{CA.dir}/web.pem": None}
    with pytest.raises(StageError, match="is not a CA certificate"):
        decide_issue(OPS, found, "web", "server", "web", [], [])


@pytest.mark.parametrize("name", ["ca", "ca-key"])
def test_a_name_landing_on_the_cas_files_is_refused_by_the_decision_too(name):
    found = {P[CERT]: PAIR.cert_pem, P[KEY]: PAIR.key_pem, P[CONFIG]: pki.ca_config_json(CA),
             f"{CA.dir}/{name}.pem": PAIR.cert_pem}
    with pytest.raises(StageError, match="would write over the CA's own"):
        decide_issue(OPS, found, name, "server", name, ["10.4.7.200"], [])


def test_a_certificate_issued_with_other_settings_is_never_written_over_by_a_caller_that_does_not_own_it():
    etcd_leaf, _ = leaf_pair("k8s-etcd", ["10.4.7.12", "10.4.7.21"], "peer")
    found = {P[CERT]: PAIR.cert_pem, P[KEY]: PAIR.key_pem, P[CONFIG]: pki.ca_config_json(CA),
             f"{CA.dir}/etcd-peer.pem": etcd_leaf}
    for cn, sans, profile in (("k8s-etcd", ["10.4.7.200"], "peer"), ("other", ["10.4.7.12", "10.4.7.21"], "peer"),
                              ("k8s-etcd", ["10.4.7.12", "10.4.7.21"], "server")):
        with pytest.raises(StageError, match="was issued with other settings .*nothing was written"):
            decide_issue(OPS, found, "etcd-peer", profile, cn, sans, [])
    # The same settings: current, nothing to do; its owner (the etcd stage) issues it again for new SANs.
    assert decide_issue(OPS, found, "etcd-peer", "peer", "k8s-etcd", ["10.4.7.21", "10.4.7.12"], []) == []
    assert decide_issue(OPS, found, "etcd-peer", "peer", "k8s-etcd", ["10.4.7.12"], [], owner=True)
