"""Postfix (SMTP in, Maildir out) and Dovecot (IMAP) as private loopback instances.

Each gets its own configuration, queue and mail folders under a temporary
directory; the system instances are never touched. Postfix delivers with its
``virtual`` agent into ``mail/<local part>/`` for the users in ``vmailbox`` (others
are refused with 550 5.1.1); Dovecot serves those folders over plain IMAP.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from .. import free_port

POSTFIX_MASTER = Path("/usr/lib/postfix/sbin/master")
MAIL_UID = 8  # the Debian "mail" user: owns the Maildirs both servers use

MISSING = (
    None
    if POSTFIX_MASTER.exists() and shutil.which("dovecot")
    else "Postfix and Dovecot are not installed (apt-get install postfix dovecot-imapd)"
)

_SERVICES = """\
{listen} inet n - n - - smtpd
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
virtual unix - n n - - virtual
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
showq unix n - n - - showq
"""


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


class Postfix:
    """A private Postfix on ``127.0.0.1:port`` delivering ``domain`` into ``mail/``."""

    def __init__(self, root: Path, users: list[str], domain: str = "example.test") -> None:
        self.root = root
        self.port = free_port()
        self.domain = domain
        self.mail = root / "mail"
        conf, queue = root / "conf", root / "queue"
        for folder in (conf, queue, root / "data", self.mail):
            folder.mkdir(parents=True, exist_ok=True)
        os.chown(self.mail, MAIL_UID, MAIL_UID)
        # The queue layout ``postfix post-install`` would make, without the system config.
        for (
            name
        ) in "active bounce corrupt defer deferred flush hold incoming private saved trace".split():
            (queue / name).mkdir(mode=0o700)
            shutil.chown(queue / name, "postfix")
        (queue / "pid").mkdir()
        for name, mode in (("maildrop", 0o730), ("public", 0o710)):
            (queue / name).mkdir()
            shutil.chown(queue / name, "postfix", "postdrop")
            (queue / name).chmod(mode)
        shutil.chown(root / "data", "postfix")
        (root / "vmailbox").write_text("".join(f"{u}@{domain} {u}/\n" for u in users))
        (conf / "main.cf").write_text(
            f"""\
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {root / "data"}
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mail.digest.test
mydomain = digest.test
myorigin = digest.test
mydestination =
mynetworks = 127.0.0.0/8
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {self.mail}
virtual_mailbox_maps = texthash:{root / "vmailbox"}
virtual_uid_maps = static:{MAIL_UID}
virtual_gid_maps = static:{MAIL_UID}
virtual_minimum_uid = 1
maillog_file = {root / "maillog"}
maillog_file_prefixes = {root}
alias_maps =
alias_database =
smtputf8_enable = no
biff = no
"""
        )
        (conf / "master.cf").write_text(_SERVICES.format(listen=f"127.0.0.1:{self.port}"))
        self.process = subprocess.Popen(
            [str(POSTFIX_MASTER), "-c", str(conf), "-d"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.stop()
            raise

    def log(self) -> str:
        path = self.root / "maillog"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(10)


class Dovecot:
    """A private Dovecot serving ``mail/<user>`` Maildirs over IMAP on ``127.0.0.1:port``."""

    def __init__(self, root: Path, mail: Path, users: dict[str, str]) -> None:
        self.root = root
        self.port = free_port()
        root.mkdir(parents=True, exist_ok=True)
        (root / "users").write_text("".join(f"{u}:{{PLAIN}}{p}\n" for u, p in users.items()))
        conf = root / "dovecot.conf"
        conf.write_text(
            f"""\
base_dir = {root / "run"}
state_dir = {root / "state"}
log_path = {root / "dovecot.log"}
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
passdb {{
  driver = passwd-file
  args = {root / "users"}
}}
userdb {{
  driver = static
  args = uid={MAIL_UID} gid={MAIL_UID} home={mail}/%n
}}
mail_location = maildir:{mail}/%n
first_valid_uid = 1
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
"""
        )
        self.process = subprocess.Popen(
            ["dovecot", "-c", str(conf), "-F"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(10)
