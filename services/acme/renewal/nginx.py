"""Reloading nginx, and seeing which certificate it serves.

The acme container shares nginx's process namespace (compose.acme.yaml, `pid:
service:nginx`) and runs as nginx's user, so it can send nginx's master process the SIGHUP
that `nginx -s reload` sends: nginx checks the new configuration and certificate, starts new
workers with them, and lets the old ones finish their requests. No Docker socket is needed."""

import os
import signal
import socket
import ssl
import time
from pathlib import Path

from cryptography import x509

from renewal import certificate

MASTER_TITLE = b"nginx: master process"


class ReloadError(RuntimeError):
    pass


def master_pid(proc=Path("/proc")):
    """The pid of nginx's master process among the processes this container can see."""
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "cmdline").read_bytes().startswith(MASTER_TITLE):
                return int(entry.name)
        except OSError:  # it exited while being looked at
            continue
    raise ReloadError("nginx's master process is not visible here: the acme service must run with pid: service:nginx")


def reload():
    os.kill(master_pid(), signal.SIGHUP)


def served(server_name, address=None, timeout_s=5):
    """The facts of the certificate nginx shows a client asking for `server_name`."""
    host, port = address or ("nginx", 8443)
    context = ssl.create_default_context()
    # Only looking: the chain is judged by whoever connects, not by this check.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((host, port), timeout=timeout_s) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    return certificate.facts_of(x509.load_der_x509_certificate(der))


def reload_until_served(fingerprint, server_name, address, deadline_s=20):
    """Reload nginx, then wait until it serves the certificate with `fingerprint`."""
    reload()
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            if served(server_name, address).fingerprint == fingerprint:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise ReloadError(
                f"nginx was reloaded but does not serve the new certificate after {deadline_s} s; "
                "nginx's error log says why it refused it (docker compose logs nginx)"
            )
        time.sleep(0.5)
