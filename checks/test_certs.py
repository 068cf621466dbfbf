"""Every certificate groundwork manages, on every host that holds one: the CA and what it issued on the ops host,
etcd's copies on each member, Kubernetes' on each master and node. Each is listed with subject, SANs, issuer
fingerprint, not-after and days left; it fails under FAIL_DAYS, when the CA does not verify it, or when it
differs from the CA host's copy of the same name, and warns under WARN_DAYS (the run still exits 0). During a
CA roll, a certificate of a CA still trusted (ca.extra_trusted_cas) warns where it would fail: the next run
moves it.

Only certificate blocks are read (sed between the PEM markers), never a key file, so no key enters the evidence."""

from datetime import datetime, timezone
from shlex import quote

from cryptography import x509

from groundwork.pki import certificates_in, fingerprint, issued_by_one_of
from groundwork.verify import reads

GROUPS = None
FAIL_DAYS = 7
WARN_DAYS = 30
MARK = "@@cert "
TRUSTED_MARK = "@@trusted "


def cert_dirs(host, inventory) -> list[str]:
    """The folders of this host whose certificates groundwork manages."""
    dirs = []
    if host.name == inventory.ops_host.name:
        dirs.append(host.settings.ca.dir)
    if "etcd" in host.groups:
        dirs.append(host.settings.etcd.cert_dir)
    if "master_compute" in host.groups and inventory.defaults.kubernetes.enabled:
        dirs.append(host.settings.kubernetes.cert_dir)
    return dirs


def applies_to(host, inventory) -> bool:
    """A host that holds no certificate of groundwork's has nothing to check (not a skip: nothing is missing)."""
    return bool(cert_dirs(host, inventory))


def certificate_files(host, session) -> str | None:
    """Each *.pem of those folders but the keys, as `@@cert PATH` and its certificate blocks alone."""
    dirs = cert_dirs(host, session.inventory)
    if not dirs:
        return None
    globs = " ".join(f"{quote(d)}/*.pem" for d in dirs)
    blocks = "sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p'"
    # On the CA's host, the CAs trusted beside it during a roll too (ca.extra_trusted_cas), marked apart.
    extra = "".join(f"; echo {quote(TRUSTED_MARK + path)}; {blocks} {quote(path)} 2>/dev/null"
                    for path in (host.settings.ca.extra_trusted_cas if host.name == session.inventory.ops_host.name
                                 else []))
    return (f"for f in {globs}; do case \"$f\" in *-key.pem) continue;; esac; [ -f \"$f\" ] || continue; "
            f"echo \"{MARK}$f\"; {blocks} \"$f\"; done{extra}")


def parse_files(text: str, mark: str = MARK) -> dict[str, bytes]:
    """path -> its certificate blocks, from certificate_files' output (mark: TRUSTED_MARK for the CAs trusted
    during a roll)."""
    files: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("@@"):
            current = line[len(mark):] if line.startswith(mark) else None
            if current is not None:
                files[current] = []
        elif current is not None:
            files[current].append(line)
    return {path: ("\n".join(lines) + "\n").encode() for path, lines in files.items()}


def sans(cert: x509.Certificate) -> list[str]:
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(n.value) for n in names]


def describe(path: str, cert: x509.Certificate, now: datetime) -> dict:
    return {"path": path, "subject": cert.subject.rfc4514_string(), "sans": sans(cert),
            "issuer": cert.issuer.rfc4514_string(), "not_after": cert.not_valid_after_utc.strftime("%Y-%m-%d %H:%MZ"),
            "days_left": (cert.not_valid_after_utc - now).days}


def table(rows: list[dict], issuers: dict[str, str]) -> str:
    """The certificates as the operator reads them, one line each, the soonest to expire first."""
    lines = [f"{'days left':>9}  {'not after':<17}  {'path':<48}  subject; SANs; issuer fingerprint"]
    for r in sorted(rows, key=lambda r: r["days_left"]):
        lines.append(f"{r['days_left']:>9}  {r['not_after']:<17}  {r['path']:<48}  {r['subject']}; "
                     f"{', '.join(r['sans']) or '-'}; {issuers.get(r['path'], 'not issued by the CA')}")
    return "\n".join(lines)


def certificate_problems(host, files: dict[str, bytes], ca_files: dict[str, bytes], ca_dir: str,
                         now: datetime, rolling: tuple[x509.Certificate, ...] = ()
                         ) -> tuple[list[dict], dict[str, str], list[str], list[str]]:
    """(rows, path -> issuer fingerprint, what fails, what warns) for this host's certificate files, judged
    against the CA host's files (ca_files, under ca_dir). rolling: the CAs still trusted during a roll; a
    certificate of theirs warns (run again to move it) where it would fail."""
    cas = certificates_in(ca_files.get(f"{ca_dir}/ca.pem"))
    rows, issuers, failures, warnings = [], {}, [], []
    for path, pem in sorted(files.items()):
        certs = certificates_in(pem)
        if not certs:
            failures.append(f"{path} holds no certificate")
            continue
        name = path.rsplit("/", 1)[1]
        for cert in certs if name == "ca.pem" else certs[:1]:
            rows.append(describe(path, cert, now))
        leaf = certs[0]
        if name == "ca.pem":
            # a member's trust may hold a second CA during a roll; the CA host's own must be among them
            if cas and cas[0] not in certs:
                failures.append(f"{path} does not hold the CA host's ca.pem")
            issuers[path] = fingerprint(cas[0]) if cas and cas[0] in certs else "not the CA host's"
        else:
            issuer = issued_by_one_of(pem, cas)
            earlier = issued_by_one_of(pem, list(rolling)) if issuer is None else None
            if earlier is not None:
                issuers[path] = fingerprint(earlier)
                warnings.append(f"{path} is from {fingerprint(earlier)}, a CA still trusted during a roll "
                                "(ca.extra_trusted_cas): the next run moves the stages' certificates; one of your own, issue it "
                                "again (issue-cert)")
            elif issuer is None:
                failures.append(f"{path} is not verified by the CA ({ca_dir}/ca.pem)")
            else:
                issuers[path] = fingerprint(issuer)
            copy = certificates_in(ca_files.get(f"{ca_dir}/{name}"))
            if copy and copy[0] != leaf and earlier is None:
                failures.append(f"{path} differs from the CA host's {ca_dir}/{name}")
        days = (leaf.not_valid_after_utc - now).days
        if days < FAIL_DAYS:
            failures.append(f"{path} expires in {days} day(s) ({leaf.not_valid_after_utc:%Y-%m-%d})")
        elif days < WARN_DAYS:
            warnings.append(f"{path} expires in {days} day(s) ({leaf.not_valid_after_utc:%Y-%m-%d})")
    return rows, issuers, failures, warnings


@reads(certificate_files)
def test_every_certificate_here_is_the_cas_and_not_about_to_expire(host, probe, inventory, session):
    """every certificate groundwork manages here is verified by the CA, the same as the CA host's copy, and has
    more than 7 days left (warned under 30)"""
    import pytest

    command = certificate_files(host, session)
    if command is None:
        pytest.skip("no certificate groundwork manages on this host")
    output = probe.run(command).stdout
    files = parse_files(output)
    ops = inventory.ops_host
    ca_dir = ops.settings.ca.dir
    if host.name == ops.name:
        ca_output = output
    elif ops in session.targets:  # gathered there by its own check
        ca_output = session.probe_for(ops, probe.evidence).run(certificate_files(ops, session)).stdout
    else:
        pytest.skip(f"the CA host {ops.name} is not targeted, so nothing here can be compared with its copies")
    rolling = tuple(c for pem in parse_files(ca_output, TRUSTED_MARK).values() for c in certificates_in(pem))
    rows, issuers, failures, warnings = certificate_problems(host, files, parse_files(ca_output), ca_dir,
                                                             datetime.now(timezone.utc), rolling)
    probe.show(f"certificates on {host.name}", table(rows, issuers))
    assert rows or failures, f"no certificate in {', '.join(cert_dirs(host, inventory))}"
    assert not failures, "; ".join(failures)
    for warning in warnings:
        probe.warn(warning)
