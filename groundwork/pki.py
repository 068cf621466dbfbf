"""The certificate authority with `cryptography`, in place of cfssl, speaking cfssl's files.

Everything here is pure: keys and certificates in memory, PEM in and out. Where the key lives and how it
travels is the CA stage's business (tasks/ca.py).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from ipaddress import ip_address

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from groundwork.settings import Ca

# cfssl's usages per profile, as the seeds' ca-config.json has them.
PROFILE_USAGES = {
    "server": ["signing", "key encipherment", "server auth"],
    "client": ["signing", "key encipherment", "client auth"],
    "peer": ["signing", "key encipherment", "server auth", "client auth"],
}
_EKU = {"server auth": ExtendedKeyUsageOID.SERVER_AUTH, "client auth": ExtendedKeyUsageOID.CLIENT_AUTH}
_NAME_OIDS = (("C", NameOID.COUNTRY_NAME), ("ST", NameOID.STATE_OR_PROVINCE_NAME), ("L", NameOID.LOCALITY_NAME),
              ("O", NameOID.ORGANIZATION_NAME), ("OU", NameOID.ORGANIZATIONAL_UNIT_NAME))


class PkiError(Exception):
    pass


@dataclass(frozen=True)
class CaFiles:
    cert_pem: bytes
    key_pem: bytes
    csr_pem: bytes


def hours(expiry: str) -> timedelta:
    """cfssl's expiry, like "175200h"."""
    found = re.fullmatch(r"(\d+)h", expiry)
    if not found:
        raise PkiError(f"expiry {expiry!r} is not a number of hours like 175200h")
    return timedelta(hours=int(found.group(1)))


def subject(cn: str, names) -> x509.Name:
    attrs = [x509.NameAttribute(oid, getattr(names, field)) for field, oid in _NAME_OIDS if getattr(names, field)]
    return x509.Name(attrs + [x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def new_key(settings: Ca):
    if settings.key_algo == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=settings.key_size)


def key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def key_texts(pems) -> list[str]:
    """The private keys among PEMs by name or path (NAME-key.pem): the texts to mask wherever they could turn up."""
    return [pem.decode(errors="replace") for name, pem in pems.items() if name.endswith("-key.pem") and pem]


def make_ca(settings: Ca, now: datetime | None = None) -> CaFiles:
    """A self-signed CA as `cfssl gencert -initca ca-csr.json` makes it: ca.pem, ca-key.pem, ca.csr."""
    now = now or datetime.now(timezone.utc)
    key = new_key(settings)
    name = subject(settings.cn, settings.names)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + hours(settings.expiry))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256()))
    return CaFiles(cert.public_bytes(serialization.Encoding.PEM), key_pem(key), csr_pem(name, key))


def csr_pem(name: x509.Name, key) -> bytes:
    """The certificate signing request cfssl keeps beside a CA (ca.csr)."""
    return (x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
            .public_bytes(serialization.Encoding.PEM))


def cert_fingerprint(cert_pem: bytes) -> str:
    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    return "SHA256:" + hashlib.sha256(der).hexdigest()


def san(host: str) -> x509.GeneralName:
    """A SAN for a host as cfssl's `hosts` takes it: an IP address, else a DNS name."""
    try:
        return x509.IPAddress(ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def leaf_settings(pem: bytes) -> dict | None:
    """What a leaf certificate was issued with: CN, SANs (DNS names then addresses, each sorted) and the
    profile's extended usages; None when it is not a certificate."""
    try:
        leaf = x509.load_pem_x509_certificate(pem)
    except ValueError:
        return None
    try:
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = sorted(str(v) for v in names.get_values_for_type(x509.DNSName)) + sorted(
            str(v) for v in names.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        sans = []
    try:
        eku = sorted("server auth" if o == ExtendedKeyUsageOID.SERVER_AUTH else "client auth"
                     for o in leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        eku = []
    common = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    groups = sorted(a.value for a in leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
    return {"cn": common[0].value if common else "", "sans": sans, "usages": eku, "groups": groups}


def wanted_leaf_settings(cn: str, sans: list[str], usages: list[str], groups: list[str] | None = None) -> dict:
    """leaf_settings() of a certificate issued with this CN, these SANs and a profile of these usages; groups
    (the subject's O, which Kubernetes reads as the user's groups) None: the CA's own O, not compared."""
    wanted = [san(s) for s in sans]
    names = sorted(s.value for s in wanted if isinstance(s, x509.DNSName)) + sorted(
        str(s.value) for s in wanted if isinstance(s, x509.IPAddress))
    return {"cn": cn, "sans": names, "usages": sorted({"server auth", "client auth"} & set(usages)),
            "groups": None if groups is None else sorted(groups)}


def same_leaf_settings(have: dict | None, wanted: dict) -> bool:
    """have (leaf_settings) is what wanted (wanted_leaf_settings) asks for; groups only when it names some."""
    if have is None:
        return False
    return all(have[k] == v for k, v in wanted.items() if not (k == "groups" and v is None))


def certificates_in(bundle: bytes | None) -> list[x509.Certificate]:
    """The certificates of a PEM file or bundle; none when it is absent or unreadable."""
    try:
        return x509.load_pem_x509_certificates(bundle) if bundle else []
    except ValueError:
        return []


def fingerprint(cert: x509.Certificate) -> str:
    return "SHA256:" + cert.fingerprint(hashes.SHA256()).hex()


def issued_by_one_of(pem: bytes | None, cas: list[x509.Certificate]) -> x509.Certificate | None:
    """Which of these CAs signed the certificate pem, if any."""
    try:
        leaf = x509.load_pem_x509_certificate(pem) if pem else None
    except ValueError:
        return None
    for ca_cert in cas if leaf else []:
        try:
            leaf.verify_directly_issued_by(ca_cert)
            return ca_cert
        except (ValueError, TypeError, InvalidSignature):
            continue
    return None


def leaf_is_current(pem: bytes, ca_cert: x509.Certificate, cn: str, sans: list[str], usages: list[str],
                    groups: list[str] | None = None, min_days: int = 30) -> bool:
    """An issued certificate that still does: signed by this CA, same CN and SANs, usages, more than min_days
    left."""
    try:
        leaf = x509.load_pem_x509_certificate(pem)
        leaf.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return (same_leaf_settings(leaf_settings(pem), wanted_leaf_settings(cn, sans, usages, groups))
            and leaf.not_valid_after_utc - datetime.now(timezone.utc) > timedelta(days=min_days))


@lru_cache(maxsize=4)
def _private_key(pem: bytes):
    # Parsing an RSA key checks it, about 35 ms: a run that checks twenty certificates against one CA parses
    # its key once. Keyed on the PEM's bytes, so a key written over is parsed (and checked) afresh.
    return serialization.load_pem_private_key(pem, password=None)


def load_pair(cert_pem: bytes, key_pem_bytes: bytes):
    """The CA certificate and key, after checking that they belong together."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise PkiError(f"ca.pem is not a PEM certificate: {exc}") from None
    try:
        key = _private_key(key_pem_bytes)
    except (ValueError, TypeError) as exc:
        raise PkiError(f"ca-key.pem is not an unencrypted PEM private key: {type(exc).__name__}") from None
    if not pair_matches(cert, key):
        raise PkiError("ca.pem and ca-key.pem do not belong together (their public keys differ)")
    return cert, key


def _readable_key(pem: bytes | None):
    try:
        return serialization.load_pem_private_key(pem, password=None) if pem else None
    except (ValueError, TypeError):
        return None


def pair_matches(cert: x509.Certificate, key) -> bool:
    def spki(public_key) -> bytes:
        return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return spki(cert.public_key()) == spki(key.public_key())


def is_ca(cert: x509.Certificate) -> bool:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return constraints.ca and usage.key_cert_sign


def load_ca_pair(cert_pem: bytes, key_pem_bytes: bytes):
    """load_pair() of a pair that is a CA: basic constraints CA:TRUE and key usage keyCertSign. A leaf written
    over ca.pem (with its key over ca-key.pem) belongs together too, and must never be adopted or sign."""
    cert, key = load_pair(cert_pem, key_pem_bytes)
    if not is_ca(cert):
        raise PkiError(f"ca.pem is not a CA certificate ({cert.subject.rfc4514_string()} lacks basic constraints "
                       "CA:TRUE with key usage keyCertSign): a leaf certificate may have been written over the CA")
    return cert, key


def ca_config(settings: Ca) -> dict:
    """cfssl's ca-config.json with the signing profiles server, client and peer."""
    return {"signing": {"default": {"expiry": settings.profile_expiry},
                        "profiles": {name: {"expiry": settings.profile_expiry, "usages": usages}
                                     for name, usages in PROFILE_USAGES.items()}}}


def ca_config_json(settings: Ca) -> bytes:
    return (json.dumps(ca_config(settings), indent=4) + "\n").encode()


def issue(ca_cert: x509.Certificate, ca_key, profile: str, cn: str, hosts: list[str], settings: Ca,
          profile_config: dict | None = None, now: datetime | None = None,
          groups: list[str] | None = None, keep_key: bytes | None = None) -> tuple[bytes, bytes]:
    """A leaf certificate and its key, signed by the CA with a cfssl profile; hosts become SANs (IP or DNS);
    groups, when given, are the subject's O in place of the CA's (Kubernetes' system:masters, system:nodes);
    keep_key: the PEM of a key to certify again in place of a new one (unreadable: a new one)."""
    config = profile_config or ca_config(settings)
    try:
        profile_spec = config["signing"]["profiles"][profile]
    except KeyError:
        raise PkiError(f"no signing profile {profile!r} (profiles: "
                       f"{', '.join(config['signing']['profiles'])})") from None
    now = now or datetime.now(timezone.utc)
    usages = profile_spec.get("usages", [])
    key = _readable_key(keep_key) or new_key(settings)
    sans = [san(h) for h in hosts]
    name = subject(cn, settings.names)
    if groups is not None:
        name = x509.Name([a for a in name if a.oid != NameOID.ORGANIZATION_NAME]
                         + [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(ca_cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(minutes=5))
               .not_valid_after(min(now + hours(profile_spec.get("expiry", settings.profile_expiry)),
                                    ca_cert.not_valid_after_utc))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature="signing" in usages, content_commitment=False,
                                            key_encipherment="key encipherment" in usages, data_encipherment=False,
                                            key_agreement=False, key_cert_sign=False, crl_sign=False,
                                            encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                              critical=False))
    ekus = [_EKU[u] for u in usages if u in _EKU]
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem(key)


def settings_from_cfssl(csr_json: str, config_json: str | None = None) -> dict:
    """An operator's cfssl ca-csr.json (and ca-config.json) as `ca` settings, read as they are."""
    try:
        csr = json.loads(csr_json)
        config = json.loads(config_json) if config_json else None
    except json.JSONDecodeError as exc:
        raise PkiError(f"not valid JSON: {exc}") from None
    names = (csr.get("names") or [{}])[0]
    key = csr.get("key") or {}
    out: dict = {"cn": csr.get("CN", ""), "names": {k: names[k] for k in ("C", "ST", "L", "O", "OU") if k in names}}
    if key.get("algo"):
        out["key_algo"] = key["algo"]
    if key.get("size"):
        out["key_size"] = key["size"]
    if (csr.get("ca") or {}).get("expiry"):
        out["expiry"] = csr["ca"]["expiry"]
    if config:
        expiry = (config.get("signing") or {}).get("default", {}).get("expiry")
        if expiry:
            out["profile_expiry"] = expiry
    return out
