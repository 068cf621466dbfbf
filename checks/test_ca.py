"""The CA on the ops host, checked with openssl as a cfssl user would, never reading the key's content."""

import json
from datetime import timedelta

from cryptography import x509

from groundwork.pki import PROFILE_USAGES, hours, is_ca, subject

GROUPS = ("ops",)


def test_ca_pem_is_a_ca_with_the_configured_subject_and_validity(host, probe):
    """ca.pem is a CA (basic constraints, key usage) with the configured subject and validity"""
    ca = host.settings.ca
    probe.run(f"openssl x509 -in {ca.dir}/ca.pem -noout -subject -enddate -ext basicConstraints,keyUsage")
    cert = x509.load_pem_x509_certificate(probe.run(f"cat {ca.dir}/ca.pem").stdout.encode())
    assert is_ca(cert), "ca.pem is not marked as a CA (basicConstraints CA:TRUE, keyUsage keyCertSign)"
    assert cert.subject == subject(ca.cn, ca.names), f"subject {cert.subject.rfc4514_string()}"
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert abs(lifetime - hours(ca.expiry)) < timedelta(days=1), f"valid for {lifetime}, wanted {ca.expiry}"


def test_ca_key_belongs_to_the_certificate(host, probe):
    """ca-key.pem belongs to ca.pem (public key digests compared; the key itself is never shown)"""
    d = host.settings.ca.dir
    out = probe.run(f"openssl x509 -in {d}/ca.pem -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum; "
                    f"openssl pkey -in {d}/ca-key.pem -pubout -outform DER | sha256sum").stdout.split()
    assert len(out) == 4 and out[0] == out[2], "the key's public half differs from the certificate's"


def test_ca_files_have_the_right_modes(host, probe):
    """ca-key.pem is root's and 0600; ca.pem, ca.csr and ca-config.json are readable"""
    d = host.settings.ca.dir
    lines = probe.run(f"stat -c '%n %a %U' {d}/ca-key.pem {d}/ca.pem {d}/ca.csr {d}/ca-config.json").stdout
    modes = {line.split()[0].rsplit("/", 1)[1]: tuple(line.split()[1:]) for line in lines.splitlines()}
    assert modes.get("ca-key.pem") == ("600", "root"), modes
    assert all(modes.get(f) == ("644", "root") for f in ("ca.pem", "ca.csr", "ca-config.json")), modes


def test_ca_config_has_the_signing_profiles(host, probe):
    """ca-config.json has the signing profiles server, client and peer"""
    config = json.loads(probe.run(f"cat {host.settings.ca.dir}/ca-config.json").stdout or "{}")
    profiles = config.get("signing", {}).get("profiles", {})
    assert {p: profiles.get(p, {}).get("usages") for p in PROFILE_USAGES} == PROFILE_USAGES
