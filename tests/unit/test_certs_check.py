"""The certificate check (checks/test_certs.py) judges every certificate a host holds against the CA host's
copies: it fails one the CA does not verify, one that differs from the CA host's copy, a trust that lacks the
CA, and one with under 7 days left; it warns under 30 days. Its read never takes a key file's content."""

from datetime import datetime, timezone

import pytest
from cryptography import x509

from groundwork import pki
from groundwork.checks import test_certs as certs
from groundwork.settings import Ca

CA_DIR, ETCD_DIR = "/opt/certs", "/opt/etcd/certs"
NOW = datetime.now(timezone.utc)


@pytest.fixture(scope="module")
def ca():
    settings = Ca(key_algo="ecdsa", key_size=256)
    files = pki.make_ca(settings)
    return settings, files.cert_pem, x509.load_pem_x509_certificate(files.cert_pem), \
        pki.load_ca_pair(files.cert_pem, files.key_pem)[1]


def leaf(ca, days: int, cn: str = "k8s-etcd") -> bytes:
    settings, _, cert, key = ca
    short = settings.model_copy(update={"profile_expiry": f"{days * 24}h"})
    return pki.issue(cert, key, "peer", cn, ["10.4.7.12"], short)[0]


def judge(files: dict[str, bytes], ca_files: dict[str, bytes], rolling=()):
    return certs.certificate_problems(None, files, ca_files, CA_DIR, NOW, rolling)


def test_a_current_copy_of_the_cas_certificate_passes_and_is_listed(ca):
    _, ca_pem, _, _ = ca
    peer = leaf(ca, 365)
    ca_files = {f"{CA_DIR}/ca.pem": ca_pem, f"{CA_DIR}/etcd-peer.pem": peer}
    rows, issuers, failures, warnings = judge({f"{ETCD_DIR}/ca.pem": ca_pem, f"{ETCD_DIR}/etcd-peer.pem": peer},
                                              ca_files)
    assert failures == [] and warnings == []
    assert {r["path"] for r in rows} == {f"{ETCD_DIR}/ca.pem", f"{ETCD_DIR}/etcd-peer.pem"}
    row = next(r for r in rows if r["path"].endswith("etcd-peer.pem"))
    assert row["sans"] == ["10.4.7.12"] and row["days_left"] in (364, 365) and "CN=k8s-etcd" in row["subject"]
    assert issuers[f"{ETCD_DIR}/etcd-peer.pem"] == pki.fingerprint(ca[2])
    assert "k8s-etcd" in certs.table(rows, issuers) and pki.fingerprint(ca[2]) in certs.table(rows, issuers)


@pytest.mark.parametrize("days,outcome", [(20, "warns"), (3, "fails")])
def test_a_certificate_near_its_end_warns_under_30_days_and_fails_under_7(ca, days, outcome):
    _, ca_pem, _, _ = ca
    peer = leaf(ca, days)
    _, _, failures, warnings = judge({f"{CA_DIR}/ca.pem": ca_pem, f"{CA_DIR}/etcd-peer.pem": peer},
                                     {f"{CA_DIR}/ca.pem": ca_pem, f"{CA_DIR}/etcd-peer.pem": peer})
    found = failures if outcome == "fails" else warnings
    # the certificate's times are whole seconds: days or days - 1 left, by a fraction of a second
    assert [m for m in found if any(f"etcd-peer.pem expires in {d} day(s)" in m for d in (days - 1, days))], \
        (failures, warnings)
    assert (warnings if outcome == "fails" else failures) == []


def test_a_certificate_of_another_ca_a_stale_copy_and_a_trust_without_the_ca_fail(ca):
    _, ca_pem, _, _ = ca
    other = Ca(key_algo="ecdsa", key_size=256)
    other_files = pki.make_ca(other)
    stranger = pki.issue(x509.load_pem_x509_certificate(other_files.cert_pem),
                         pki.load_ca_pair(other_files.cert_pem, other_files.key_pem)[1], "peer", "k8s-etcd", [], other)[0]
    current, stale = leaf(ca, 365), leaf(ca, 365)
    ca_files = {f"{CA_DIR}/ca.pem": ca_pem, f"{CA_DIR}/etcd-peer.pem": current}
    _, _, failures, _ = judge({f"{ETCD_DIR}/ca.pem": other_files.cert_pem, f"{ETCD_DIR}/etcd-peer.pem": stale,
                               f"{ETCD_DIR}/client.pem": stranger}, ca_files)
    assert failures == [f"{ETCD_DIR}/ca.pem does not hold the CA host's ca.pem",
                        f"{ETCD_DIR}/client.pem is not verified by the CA ({CA_DIR}/ca.pem)",
                        f"{ETCD_DIR}/etcd-peer.pem differs from the CA host's {CA_DIR}/etcd-peer.pem"]


def test_a_trust_holding_a_second_ca_during_a_roll_passes(ca):
    _, ca_pem, _, _ = ca
    old = pki.make_ca(Ca(key_algo="ecdsa", key_size=256)).cert_pem
    _, _, failures, _ = judge({f"{ETCD_DIR}/ca.pem": ca_pem + old}, {f"{CA_DIR}/ca.pem": ca_pem})
    assert failures == []


def test_a_certificate_of_a_ca_still_trusted_during_a_roll_warns_and_fails_once_that_ca_is_dropped(ca):
    _, ca_pem, _, _ = ca
    old = pki.make_ca(Ca(key_algo="ecdsa", key_size=256))
    old_cert = x509.load_pem_x509_certificate(old.cert_pem)
    not_moved = pki.issue(old_cert, pki.load_ca_pair(old.cert_pem, old.key_pem)[1], "peer", "k8s-etcd", [], Ca())[0]
    files = {f"{ETCD_DIR}/ca.pem": ca_pem + old.cert_pem, f"{ETCD_DIR}/etcd-peer.pem": not_moved}
    ca_files = {f"{CA_DIR}/ca.pem": ca_pem, f"{CA_DIR}/etcd-peer.pem": leaf(ca, 365)}
    _, issuers, failures, warnings = judge(files, ca_files, rolling=(old_cert,))
    assert failures == [] and issuers[f"{ETCD_DIR}/etcd-peer.pem"] == pki.fingerprint(old_cert)
    assert warnings == [f"{ETCD_DIR}/etcd-peer.pem is from {pki.fingerprint(old_cert)}, a CA still trusted during "
                        "a roll (ca.extra_trusted_cas): the next run moves the stages' certificates; one of your own, "
                        "issue it again (issue-cert)"]
    _, _, failures, _ = judge(files, ca_files)
    assert failures == [f"{ETCD_DIR}/etcd-peer.pem is not verified by the CA ({CA_DIR}/ca.pem)",
                        f"{ETCD_DIR}/etcd-peer.pem differs from the CA host's {CA_DIR}/etcd-peer.pem"]


def test_the_read_lists_certificate_blocks_and_never_a_key(ca, local_remote, tmp_path):
    from types import SimpleNamespace

    _, ca_pem, _, _ = ca
    folder = tmp_path / "c e$rts"
    folder.mkdir()
    (folder / "ca.pem").write_bytes(ca_pem)
    (folder / "ca-key.pem").write_text("-----BEGIN PRIVATE KEY-----\nSECRET\n-----END PRIVATE KEY-----\n")
    # a key kept in a file not named -key.pem: only its certificate blocks are printed
    (folder / "bundle.pem").write_text("-----BEGIN PRIVATE KEY-----\nSECRET\n-----END PRIVATE KEY-----\n"
                                       + ca_pem.decode())
    # the CA replaced before a roll, trusted beside the CA: listed apart, from its own folder
    (folder / "replaced").mkdir()
    (folder / "replaced" / "ca.pem").write_bytes(ca_pem)
    ops = SimpleNamespace(name="ops", groups=("ops",), settings=SimpleNamespace(ca=SimpleNamespace(
        dir=str(folder), extra_trusted_cas=[f"{folder}/replaced/ca.pem"])))
    session = SimpleNamespace(inventory=SimpleNamespace(
        ops_host=ops, defaults=SimpleNamespace(kubernetes=SimpleNamespace(enabled=False))))
    output = local_remote.run(certs.certificate_files(ops, session)).stdout
    assert "SECRET" not in output
    assert certs.parse_files(output) == {f"{folder}/bundle.pem": ca_pem, f"{folder}/ca.pem": ca_pem}
    assert certs.parse_files(output, certs.TRUSTED_MARK) == {f"{folder}/replaced/ca.pem": ca_pem}
    other = SimpleNamespace(name="proxy", groups=("proxy",))
    assert certs.certificate_files(other, session) is None  # nothing managed there: nothing read
