"""The CA on hdss7-200 end to end: made once, adopted after, issuing certificates, its key kept out of sight."""


def key_body(lab) -> str:
    pem = lab.ssh("hdss7-200", "cat /opt/certs/ca-key.pem")
    return "".join(line for line in pem.splitlines() if "-----" not in line)


def test_ca_has_the_configured_subject_about_200_years_and_a_private_key(converged):
    lab = converged
    out = lab.ssh("hdss7-200", "openssl x509 -in /opt/certs/ca.pem -noout -subject -enddate; "
                               "stat -c '%a %U' /opt/certs/ca-key.pem; ls /opt/certs")
    assert "subject=C = CN, ST = beijing, L = beijing, O = od, OU = ops, CN = OldboyEdu" in out
    end_year = int(out.split("notAfter=")[1].split("\n")[0].split()[3])
    assert 2225 <= end_year <= 2227, out  # 1752000 h from now
    assert "600 root" in out
    assert {"ca.pem", "ca-key.pem", "ca.csr", "ca-config.json"} <= set(out.split())


def test_second_run_keeps_the_ca_and_reports_no_change(converged, runbook):
    lab = converged
    before = lab.ssh("hdss7-200", "openssl x509 -in /opt/certs/ca.pem -noout -fingerprint -sha256")
    run = runbook()
    assert run.rc == 0, run
    assert run.statuses("ca") == {"hdss7-200": "ok"}
    assert "adopted the existing CA" in run.entry("hdss7-200", "ca")["notes"][0]
    assert lab.ssh("hdss7-200", "openssl x509 -in /opt/certs/ca.pem -noout -fingerprint -sha256") == before


def test_a_peer_certificate_verifies_against_the_ca(converged, runbook):
    lab = converged
    run = runbook("web-peer", "--profile", "peer", "--san", "10.4.7.12", "--san", "hdss7-12.host.com",
                  name="issue_cert")
    assert run.rc == 0, run
    out = lab.ssh("hdss7-200", "cd /opt/certs && openssl verify -CAfile ca.pem web-peer.pem && "
                               "openssl x509 -in web-peer.pem -noout -ext subjectAltName,extendedKeyUsage")
    assert "web-peer.pem: OK" in out and "IP Address:10.4.7.12" in out and "TLS Web Client Authentication" in out
    again = runbook("web-peer", "--profile", "peer", "--san", "10.4.7.12", "--san", "hdss7-12.host.com",
                    name="issue_cert")
    assert again.statuses("issue_cert") == {"hdss7-200": "ok"}, again


def test_the_key_appears_in_no_report_and_no_output(converged, runbook):
    lab = converged
    runs = [runbook(), runbook("--dry-run"), runbook("cert-x", "--profile", "server", name="issue_cert")]
    body = key_body(lab)
    assert len(body) > 1000
    chunks = [body[i:i + 64] for i in range(0, len(body), 64)]
    for run in runs:
        assert not any(c in run.stdout + run.stderr for c in chunks)
    files = [p for p in runs[0].reports.rglob("*") if p.is_file()]
    assert files
    for path in files:
        text = path.read_text(errors="replace")
        assert not any(c in text for c in chunks), path


CA_FILES = "/opt/certs/ca.pem /opt/certs/ca-key.pem /opt/certs/ca.csr /opt/certs/ca-config.json"


def test_one_word_never_destroys_the_ca(converged, runbook):
    """issue_cert.py ca, a leaf written over the CA by hand, another stage's certificate: each refused, nothing
    written (on the main before this guard, the first wrote a leaf over ca.pem and the ca stage adopted it)."""
    lab = converged
    digests = lab.ssh("hdss7-200", f"sha256sum {CA_FILES} /opt/certs/etcd-peer.pem")
    for name in ("ca", "ca-key"):
        run = runbook(name, "--profile", "server", "--san", "10.4.7.200", name="issue_cert")
        assert run.rc == 2 and "written over the CA's own" in run.stderr, run
    other = runbook("etcd-peer", "--profile", "server", "--san", "10.4.7.200", name="issue_cert")
    assert other.rc == 4 and "was issued with other settings" in other.stdout, other
    assert lab.ssh("hdss7-200", f"sha256sum {CA_FILES} /opt/certs/etcd-peer.pem") == digests

    # A leaf and its key over the CA's pair (as the old issue_cert.py ca wrote them): never adopted.
    lab.ssh("hdss7-200", "cd /opt/certs && mkdir -p /root/ca-kept && cp -p ca.pem ca-key.pem /root/ca-kept/ && "
                         "cp etcd-peer.pem ca.pem && cp etcd-peer-key.pem ca-key.pem")
    try:
        broken = lab.ssh("hdss7-200", f"sha256sum {CA_FILES}")
        run = runbook("--no-verify", name="ca")
        assert run.rc == 4, run
        assert "ca.pem is not a CA certificate" in run.entry("hdss7-200", "ca")["error"], run
        assert lab.ssh("hdss7-200", f"sha256sum {CA_FILES}") == broken  # nothing written
    finally:
        lab.ssh("hdss7-200", "cp -p /root/ca-kept/ca.pem /root/ca-kept/ca-key.pem /opt/certs/ && rm -r /root/ca-kept")
    run = runbook()
    assert run.rc == 0, run
    assert lab.ssh("hdss7-200", f"sha256sum {CA_FILES} /opt/certs/etcd-peer.pem") == digests


def test_certs_lists_every_certificate_and_warns_then_fails_as_one_nears_its_end(converged, runbook):
    """`certs` lists each certificate on each host that holds one; a certificate of the CA with 20 days left in
    etcd's folder on hdss7-12 warns (exit 0, WARN on the terminal, warned in the index), one with 3 days fails
    that host alone (exit 5)."""
    from shlex import quote

    from groundwork import pki
    from groundwork.settings import Ca

    lab = converged
    run = runbook(name="certs")
    assert run.rc == 0, run
    for host, path in (("hdss7-200", "/opt/certs/ca.pem"), ("hdss7-200", "/opt/certs/etcd-peer.pem"),
                       ("hdss7-12", "/opt/etcd/certs/etcd-peer.pem"), ("hdss7-21", "/opt/etcd/certs/client.pem")):
        table = run.stdout[run.stdout.index(f"{host}: certificates on {host}"):]
        assert path in table.split("\n\n")[0], (host, path, run.stdout)
    outcomes = {c["host"]: c["outcome"] for c in run.record["checks"]}
    assert outcomes == {"hdss7-12": "passed", "hdss7-21": "passed", "hdss7-22": "passed",
                        "hdss7-200": "passed"}, outcomes
    # A certificate of the lab's CA, made here with its key (read for this test only) and put beside etcd's.
    ca_cert, ca_key = pki.load_ca_pair(lab.ssh("hdss7-200", "cat /opt/certs/ca.pem").encode(),
                                       lab.ssh("hdss7-200", "cat /opt/certs/ca-key.pem").encode())
    try:
        for days, rc, outcome in ((20, 0, "warned"), (3, 5, "failed")):
            pem = pki.issue(ca_cert, ca_key, "client", "soon", [], Ca(key_algo="ecdsa", key_size=256,
                                                                    profile_expiry=f"{days * 24}h"))[0]
            lab.ssh("hdss7-12", f"printf %s {quote(pem.decode())} > /opt/etcd/certs/soon.pem")
            near = runbook(name="certs")
            assert near.rc == rc, near
            outcomes = {c["host"]: c for c in near.record["checks"]}
            assert outcomes["hdss7-12"]["outcome"] == outcome, near
            assert "/opt/etcd/certs/soon.pem expires in" in outcomes["hdss7-12"]["message"]
            assert {h: c["outcome"] for h, c in outcomes.items() if h != "hdss7-12"} == {
                "hdss7-21": "passed", "hdss7-22": "passed", "hdss7-200": "passed"}
            if outcome == "warned":
                assert "WARN  hdss7-12" in near.stdout and "1 warned" in near.stdout
                # the index's row of that run: 3 passed, 1 warned, 0 failed, 0 skipped
                assert ('<td class="num">3</td><td class="num">1</td><td class="num">0</td><td class="num">0</td>'
                        in (near.reports / "index.html").read_text())
    finally:
        lab.ssh("hdss7-12", "rm -f /opt/etcd/certs/soon.pem")
