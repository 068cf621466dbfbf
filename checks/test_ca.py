"""The CA on the ops host, checked with openssl as a cfssl user would, never reading the key's content."""

import json
from shlex import quote
from datetime import timedelta

from cryptography import x509

from groundwork.pki import PROFILE_USAGES, hours, is_ca, subject
from groundwork.verify import reads

GROUPS = ("ops",)
CA_FILES = ("ca-key.pem", "ca.pem", "ca.csr", "ca-config.json")


def ca_path(host, name: str) -> str:
    return quote(f"{host.settings.ca.dir}/{name}")


def summary(host) -> str:
    return f"openssl x509 -in {ca_path(host, 'ca.pem')} -noout -subject -enddate -ext basicConstraints,keyUsage"


def read_cert(host) -> str:
    return f"cat {ca_path(host, 'ca.pem')}"


def public_key_of_cert(host) -> str:
    return f"openssl x509 -in {ca_path(host, 'ca.pem')} -noout -pubkey"


def public_key_of_key(host) -> str:
    return f"openssl pkey -in {ca_path(host, 'ca-key.pem')} -pubout"


def file_modes(host) -> str:
    return "stat -c '%n %a %U' " + " ".join(ca_path(host, n) for n in CA_FILES)


def read_config(host) -> str:
    return f"cat {ca_path(host, 'ca-config.json')}"


@reads(summary, read_cert)
def test_ca_pem_is_a_ca_with_the_configured_subject_and_validity(host, probe):
    """ca.pem is a CA (basic constraints, key usage) with the configured subject and validity"""
    ca = host.settings.ca
    probe.run(summary(host))
    cert = x509.load_pem_x509_certificate(probe.run(read_cert(host)).stdout.encode())
    assert is_ca(cert), "ca.pem is not marked as a CA (basicConstraints CA:TRUE, keyUsage keyCertSign)"
    assert cert.subject == subject(ca.cn, ca.names), f"subject {cert.subject.rfc4514_string()}"
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert abs(lifetime - hours(ca.expiry)) < timedelta(days=1), f"valid for {lifetime}, wanted {ca.expiry}"


@reads(public_key_of_cert, public_key_of_key)  # the key only through openssl's -pubout
def test_ca_key_belongs_to_the_certificate(host, probe):
    """ca-key.pem belongs to ca.pem (their public keys compared; the private key itself is never shown)"""
    from_cert = probe.run(public_key_of_cert(host))
    from_key = probe.run(public_key_of_key(host))
    assert from_cert.rc == 0 and "PUBLIC KEY" in from_cert.stdout, \
        f"ca.pem has no readable public key: {from_cert.stderr.strip()}"
    assert from_key.rc == 0 and "PUBLIC KEY" in from_key.stdout, \
        f"ca-key.pem is not a readable key: {from_key.stderr.strip()}"
    assert from_cert.stdout == from_key.stdout, "the key's public half differs from the certificate's"


@reads(file_modes)
def test_ca_files_have_the_right_modes(host, probe):
    """ca-key.pem is root's and 0600; ca.pem, ca.csr and ca-config.json are readable"""
    lines = probe.run(file_modes(host)).stdout
    modes = {line.split()[0].rsplit("/", 1)[1]: tuple(line.split()[1:]) for line in lines.splitlines()}
    assert modes.get("ca-key.pem") == ("600", "root"), modes
    assert all(modes.get(f) == ("644", "root") for f in ("ca.pem", "ca.csr", "ca-config.json")), modes


@reads(read_config)
def test_ca_config_has_the_signing_profiles(host, probe):
    """ca-config.json has the signing profiles server, client and peer"""
    config = json.loads(probe.run(read_config(host)).stdout or "{}")
    profiles = config.get("signing", {}).get("profiles", {})
    assert {p: profiles.get(p, {}).get("usages") for p in PROFILE_USAGES} == PROFILE_USAGES
