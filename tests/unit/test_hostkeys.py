"""Host key messages: the fingerprints ssh-keygen would print, and trust commands that work as given."""

import subprocess

import paramiko

from groundwork import hostkeys


def make_key(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return paramiko.Ed25519Key.from_private_key_file(str(path))


def test_fingerprint_is_the_one_ssh_keygen_prints(tmp_path):
    key = make_key(tmp_path / "k")
    printed = subprocess.run(["ssh-keygen", "-lf", str(tmp_path / "k.pub")], capture_output=True, text=True,
                             check=True).stdout.split()[1]
    assert hostkeys.key_fingerprint(key) == printed


def test_a_changed_key_names_both_fingerprints_and_the_commands_that_replace_the_entry(tmp_path):
    old, new = make_key(tmp_path / "old"), make_key(tmp_path / "new")
    known = tmp_path / "known hosts"  # a path with a space: the commands must quote it
    known.write_text(f"10.0.0.9 {old.get_name()} {old.get_base64()}\n10.0.0.8 {old.get_name()} {old.get_base64()}\n")
    text = hostkeys.changed_key_message(paramiko.BadHostKeyException("10.0.0.9", new, old), "10.0.0.9", 22,
                                        str(known))
    assert f"has ssh-ed25519 {hostkeys.key_fingerprint(old)}, the host presents ssh-ed25519 " \
           f"{hostkeys.key_fingerprint(new)}" in text
    command = text.split("trust it: ", 1)[1]
    assert command == (f"ssh-keygen -R 10.0.0.9 -f '{known}' && ssh-keyscan -t ed25519 -p 22 10.0.0.9 >> '{known}'")
    removal = command.split(" && ")[0]
    subprocess.run(removal, shell=True, check=True, capture_output=True)
    assert known.read_text().splitlines() == [f"10.0.0.8 {old.get_name()} {old.get_base64()}"]


def test_a_host_on_another_port_is_named_as_known_hosts_names_it():
    assert hostkeys.trust_commands("10.0.0.9", 2222, "/k", "ssh-rsa", True) == (
        "ssh-keygen -R '[10.0.0.9]:2222' -f /k && ssh-keyscan -t rsa -p 2222 10.0.0.9 >> /k")


def test_an_unknown_key_says_how_to_check_and_trust_it_without_a_connection():
    text = hostkeys.unknown_key_message("10.0.0.9", 2222, "/k")
    assert text == ("host key of 10.0.0.9 is unknown: /k has no entry for it, so groundwork did not connect. "
                    "Compare the fingerprints it presents (ssh-keyscan -p 2222 10.0.0.9 | ssh-keygen -lf -) with its "
                    "console's (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then trust it: "
                    "ssh-keyscan -p 2222 10.0.0.9 >> /k")
