"""The CA in place of cfssl: what cfssl users check with openssl, checked with openssl."""

import json
import subprocess
from datetime import datetime, timezone

import pytest
from cryptography import x509

from groundwork.pki import PkiError, ca_config, issue, is_ca, load_pair, make_ca, settings_from_cfssl
from groundwork.settings import Ca

SEED_CA_CSR = """{
    "CN": "ben123123",
    "hosts": [
    ],
    "key": {
        "algo": "rsa",
        "size": 2048
    },
    "names": [
        {
            "C": "CN",
            "ST": "beijing",
            "L": "beijing",
            "O": "od",
            "OU": "ops"
        }
    ],
    "ca": {
        "expiry": "1752000h"
    }
}"""


def openssl(*args, input=None) -> str:
    done = subprocess.run(["openssl", *args], input=input, capture_output=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.decode()


def test_ca_has_the_configured_subject_and_about_200_years(tmp_path):
    now = datetime(2026, 11, 23, tzinfo=timezone.utc)
    ca = make_ca(Ca(), now=now)
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem)
    out = openssl("x509", "-in", str(tmp_path / "ca.pem"), "-noout", "-subject", "-enddate", "-ext",
                  "basicConstraints,keyUsage")
    assert "subject=C = CN, ST = beijing, L = beijing, O = od, OU = ops, CN = OldboyEdu" in out
    assert "notAfter=" in out and "2226 GMT" in out  # 1752000 h = 199.9 years
    assert "CA:TRUE" in out and "Certificate Sign" in out
    cert, key = load_pair(ca.cert_pem, ca.key_pem)
    assert is_ca(cert) and key.key_size == 2048
    assert x509.load_pem_x509_csr(ca.csr_pem).subject == cert.subject


def test_ecdsa_is_an_option():
    ca = make_ca(Ca(key_algo="ecdsa", key_size=256))
    cert, _ = load_pair(ca.cert_pem, ca.key_pem)
    assert cert.public_key().curve.name == "secp256r1"


def test_a_key_of_another_ca_is_refused():
    a, b = make_ca(Ca()), make_ca(Ca())
    with pytest.raises(PkiError, match="do not belong together"):
        load_pair(a.cert_pem, b.key_pem)


@pytest.mark.parametrize("profile, purposes", [("peer", ("sslserver", "sslclient")), ("server", ("sslserver",)),
                                               ("client", ("sslclient",))])
def test_issued_certificate_verifies_against_the_ca_with_its_profile(tmp_path, profile, purposes):
    ca = make_ca(Ca())
    cert, key = load_pair(ca.cert_pem, ca.key_pem)
    leaf_pem, leaf_key = issue(cert, key, profile, "etcd-peer", ["10.4.7.12", "hdss7-12.host.com"], Ca())
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem)
    (tmp_path / "leaf.pem").write_bytes(leaf_pem)
    for purpose in purposes:
        assert "leaf.pem: OK" in openssl("verify", "-CAfile", str(tmp_path / "ca.pem"), "-purpose", purpose,
                                         str(tmp_path / "leaf.pem"))
    text = openssl("x509", "-in", str(tmp_path / "leaf.pem"), "-noout", "-text")
    assert "IP Address:10.4.7.12" in text and "DNS:hdss7-12.host.com" in text
    leaf = x509.load_pem_x509_certificate(leaf_pem)
    assert (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days in (7300, 7301)  # 175200 h
    load_pair(leaf_pem, leaf_key)


def test_unknown_profile_is_refused():
    ca = make_ca(Ca())
    cert, key = load_pair(ca.cert_pem, ca.key_pem)
    with pytest.raises(PkiError, match="no signing profile 'kubelet'"):
        issue(cert, key, "kubelet", "x", [], Ca())


def test_cfssl_files_are_read_as_they_are():
    config = json.dumps({"signing": {"default": {"expiry": "87600h"}, "profiles": {}}})
    settings = Ca.model_validate(settings_from_cfssl(SEED_CA_CSR, config))
    assert settings.cn == "ben123123" and settings.names.ST == "beijing" and settings.names.OU == "ops"
    assert (settings.key_algo, settings.key_size, settings.expiry, settings.profile_expiry) == (
        "rsa", 2048, "1752000h", "87600h")


def test_ca_config_has_the_three_profiles():
    profiles = ca_config(Ca())["signing"]["profiles"]
    assert profiles["peer"] == {"expiry": "175200h", "usages": ["signing", "key encipherment", "server auth",
                                                                "client auth"]}
    assert set(profiles) == {"server", "client", "peer"}
