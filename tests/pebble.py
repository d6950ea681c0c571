"""The test-side ACME server: Pebble (Let's Encrypt's test CA) and pebble-challtestsrv, its
mock DNS, as tests/acme/compose.pebble.yaml runs them next to the stack.

    ca = prepare(tmp_path / "pebble")  # PEBBLE_DIR=tmp_path/"pebble", ACME_CA_ROOT=ca
    pebble = Pebble.from_compose(stack.compose, ca)  # or Pebble(management_port, challtestsrv_port, ca)
    pebble.wait_ready(30)
    pebble.resolve("shop.test", stack.address_of(nginx))
    ...  # the acme service obtains a certificate
    assert len(pebble.issued(stack.logs("pebble"))) == 1
"""

import json
import re
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

# Pebble's own wording (ca/ca.go, CompleteOrder): the serial is lowercase hex of its bytes.
ISSUED = re.compile(r"Issued certificate serial ([0-9a-f]+) for order ")


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, text=True, timeout=60)


def prepare(directory: Path) -> Path:
    """Writes Pebble's config.json and the certificate and key of its HTTPS listeners (the
    ACME directory and the management API share them) into `directory`, for the bind mount
    at /pebble. Returns the CA certificate that signed them: what an ACME client must trust
    to talk to Pebble (not what Pebble's issued certificates chain to: see issuing_roots)."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    ca, cert, key = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    with tempfile.TemporaryDirectory() as scratch:
        ca_key, csr, extensions = (Path(scratch, name) for name in ("ca.key", "cert.csr", "ext.cnf"))
        # Extensions as Python 3.13+'s strict verification wants them (key usages, key
        # identifiers), so clients with either default accept the chain.
        _openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-noenc",
            "-keyout", str(ca_key), "-out", str(ca), "-days", "2", "-subj", "/CN=Pebble listener test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-addext", "subjectKeyIdentifier=hash",
        )  # fmt: skip
        _openssl(
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-noenc",
            "-keyout", str(key), "-out", str(csr), "-subj", "/CN=pebble",
        )  # fmt: skip
        extensions.write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth\n"
            "subjectKeyIdentifier=hash\n"
            "authorityKeyIdentifier=keyid:always\n"
            # pebble: from the other containers; localhost and 127.0.0.1: the published ports.
            "subjectAltName=DNS:pebble,DNS:pebble-ca,DNS:localhost,IP:127.0.0.1\n"
        )
        _openssl(
            "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
            "-CAserial", str(Path(scratch, "ca.srl")), "-CAcreateserial",
            "-days", "2", "-extfile", str(extensions), "-out", str(cert),
        )  # fmt: skip
    config = {
        "pebble": {
            "listenAddress": "0.0.0.0:14000",
            "managementListenAddress": "0.0.0.0:15000",
            "certificate": "/pebble/cert.pem",
            "privateKey": "/pebble/key.pem",
            # Where Pebble connects for HTTP-01: the name's address (challtestsrv's answer)
            # on this port, where nginx listens inside its container.
            "httpPort": 8080,
            # Nothing listens there: TLS-ALPN-01 can only fail.
            "tlsPort": 5001,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
    }
    (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    # A throwaway key for a test listener; the container's user (nobody) must read it.
    for path in (ca, cert, key, directory / "config.json"):
        path.chmod(0o644)
    return ca


class Pebble:
    """The two management APIs, on the host ports compose published: Pebble's (HTTPS, with
    prepare()'s certificate) and challtestsrv's (plain HTTP)."""

    def __init__(self, management_port: int, challtestsrv_port: int, ca: Path):
        self.management = f"https://127.0.0.1:{management_port}"
        self.challtestsrv = f"http://127.0.0.1:{challtestsrv_port}"
        # prepare()'s CA: its listener certificate names 127.0.0.1.
        self.verify = str(ca)

    @classmethod
    def from_compose(cls, compose: Callable[..., subprocess.CompletedProcess], ca: Path) -> "Pebble":
        """From a project's `compose(*args)` (composed.Stack.compose): asks it for the ports."""

        def port(service: str, container_port: int) -> int:
            # "127.0.0.1:49153"
            return int(compose("port", service, str(container_port)).stdout.strip().rsplit(":", 1)[1])

        return cls(port("pebble", 15000), port("challtestsrv", 8055), ca)

    def wait_ready(self, deadline_s: float) -> None:
        """Until Pebble has made its CA (its root is served) and challtestsrv answers."""
        deadline = time.monotonic() + deadline_s
        last: object = None
        while time.monotonic() < deadline:
            try:
                root = requests.get(f"{self.management}/roots/0", verify=self.verify, timeout=2)
                # Any answer will do: its mux says 404 to an unknown path.
                requests.get(f"{self.challtestsrv}/", timeout=2)
                if root.status_code == 200:
                    return
                last = root.status_code
            except requests.RequestException as error:
                last = error
            time.sleep(0.3)
        raise TimeoutError(f"Pebble not ready after {deadline_s}s: {last}")

    def _challtestsrv(self, path: str, body: dict) -> None:
        requests.post(f"{self.challtestsrv}{path}", json=body, timeout=5).raise_for_status()

    def resolve(self, host: str, ipv4: str) -> None:
        """Makes `host` resolve to `ipv4` alone for Pebble (the address its HTTP-01 request
        goes to). challtestsrv adds to the addresses a name has, and Pebble dials the first:
        the old ones are cleared first."""
        self._challtestsrv("/clear-a", {"host": host})
        self._challtestsrv("/add-a", {"host": host, "addresses": [ipv4]})

    def unresolve(self, host: str) -> None:
        """Back to the default answer, 127.0.0.1, where nothing serves: challenges fail."""
        self._challtestsrv("/clear-a", {"host": host})

    def issuing_roots(self) -> list[str]:
        """PEM of the root Pebble issues under (a new one at every start), then its
        intermediate: what a client verifying a certificate Pebble issued must trust."""
        pems = []
        for path in ("/roots/0", "/intermediates/0"):
            response = requests.get(f"{self.management}{path}", verify=self.verify, timeout=5)
            if path == "/roots/0" or response.status_code != 404:
                response.raise_for_status()
                pems.append(response.text)
        return pems

    @staticmethod
    def issued(logs: str) -> list[str]:
        """The serials (lowercase hex) of the certificates Pebble issued, in order, from its
        log (`docker compose logs pebble`: the service prefix on each line does not matter)."""
        return ISSUED.findall(logs)

    @staticmethod
    def hex_serial(serial: int) -> str:
        """A certificate's serial number as issued() shows it: the integer's bytes, in hex."""
        return serial.to_bytes((serial.bit_length() + 7) // 8 or 1, "big").hex()
