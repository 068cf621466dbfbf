"""The sudo password goes to sudo alone, and only when sudo asks for it (remote.py's handshake).

The channel here plays sudo's part as sudo 1.9 does over an SSH exec channel: with a password required it
prints the prompt it was given on stderr and reads one line; with NOPASSWD or a cached timestamp it starts the
command at once. The command is `cat`, so whatever reaches the command's stdin comes back on stdout. The lab
tests (tests/e2e/test_sudo_lab.py) prove the same with the real sudo on real hosts.
"""

import re
import shlex

import pytest

from groundwork.remote import Remote, RemoteError

PASSWORD = "pa ss'$(id)\"word"


class SudoChannel:
    def __init__(self, asks: bool, password: str = PASSWORD):
        self.asks, self.password = asks, password
        self.stdout, self.stderr, self.command_stdin = bytearray(), bytearray(), bytearray()
        self.sent_to_sudo: list[bytes] = []
        self.state = "new"
        self.rc = None

    # paramiko.Channel's surface that Remote._exec uses
    def exec_command(self, command: str) -> None:
        words = shlex.split(command)
        assert words[:2] == ["sudo", "-S"] and words[2] == "-p"
        self.prompt = words[3].encode()
        self.ready = re.search(r"printf %s '?(\[gw-command-started-[0-9a-f]+\])", words[-1]).group(1).encode()
        if self.asks:
            self.stderr += self.prompt
            self.state = "asking"
        else:
            self._start()

    def _start(self):
        self.stderr += self.ready
        self.state = "command"

    def sendall(self, data: bytes) -> None:
        if self.state == "asking":
            line, _, rest = bytes(data).partition(b"\n")
            self.sent_to_sudo.append(line)
            assert not rest, "the command's input was sent before the command started"
            if line == self.password.encode():
                self._start()
            else:
                self.stderr += b"Sorry, try again.\n" + self.prompt
        elif self.state == "command":
            self.command_stdin += data
        else:
            raise AssertionError("input after the process ended")

    def shutdown_write(self) -> None:
        if self.state == "command":
            self.stdout += self.command_stdin  # the command (cat) copies its input
            self.rc = 0
        else:
            self.stderr += b"sudo: no password was provided\n"
            self.rc = 1
        self.state = "done"

    def recv_ready(self):
        return bool(self.stdout)

    def recv_stderr_ready(self):
        return bool(self.stderr)

    def recv(self, n):
        data, self.stdout[:] = bytes(self.stdout[:n]), self.stdout[n:]
        return data

    def recv_stderr(self, n):
        data, self.stderr[:] = bytes(self.stderr[:n]), self.stderr[n:]
        return data

    def exit_status_ready(self):
        return self.rc is not None

    eof_received = property(lambda self: self.rc is not None)
    closed = False

    def recv_exit_status(self):
        return self.rc

    def fileno(self):  # select() on it: always ready, the fake never blocks
        import os
        r, w = os.pipe()
        os.write(w, b"x")
        return r

    def close(self):
        pass


def remote_over(channel: SudoChannel, password: str = PASSWORD) -> Remote:
    class Transport:
        def open_session(self, timeout=None):
            return channel
    return Remote(transport_factory=Transport, username="operator", sudo_password=password)


def test_no_prompt_no_password_sent_and_stdin_reaches_the_command_whole():
    channel = SudoChannel(asks=False)
    result = remote_over(channel).run("cat > /etc/resolv.conf", stdin=b"nameserver 10.4.7.11\n")
    assert result.ok and channel.sent_to_sudo == []
    assert bytes(channel.command_stdin) == b"nameserver 10.4.7.11\n"
    assert result.stderr == ""  # the markers are not output


def test_a_prompt_is_answered_once_and_the_password_never_reaches_the_command():
    channel = SudoChannel(asks=True)
    result = remote_over(channel).run("cat > /etc/resolv.conf", stdin=b"nameserver 10.4.7.11\n")
    assert result.ok and channel.sent_to_sudo == [PASSWORD.encode()]
    assert bytes(channel.command_stdin) == b"nameserver 10.4.7.11\n"
    assert PASSWORD not in result.stdout + result.stderr


def test_a_wrong_password_is_given_once_and_the_failure_says_so():
    channel = SudoChannel(asks=True, password="the right one")
    with pytest.raises(RemoteError, match=r"^sudo failed \(exit 1\): sudo refused the password of operator "
                                          r"\(GROUNDWORK_SSH_PASSWORD\)$"):
        remote_over(channel).run("cat > /etc/resolv.conf", stdin=b"data\n", check=False)
    assert channel.sent_to_sudo == [PASSWORD.encode()] and channel.command_stdin == b""


@pytest.mark.parametrize("user, password, starts", [("root", PASSWORD, "sh -c"), ("operator", None, "sudo -n")])
def test_root_and_passwordless_sudo_need_no_handshake(user, password, starts):
    wrapped, handshake = Remote(transport_factory=None, username=user, sudo_password=password)._wrap("true")
    assert wrapped.startswith(starts) and handshake is None
