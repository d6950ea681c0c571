"""The certificate nginx serves: what it is, the self-signed stand-in until ACME issues one,
and installing a new pair where nginx reads it (tls.crt, the full chain; tls.key)."""

import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# Short-lived, so a stand-in never outlasts a few retries unnoticed; the job renews it while
# no ACME certificate has arrived (fallback.py) and Prometheus alerts on it (TLSCertificateSelfSigned).
FALLBACK_LIFETIME = timedelta(days=7)
FALLBACK_RENEW_BEFORE = timedelta(days=2)
FALLBACK_ORGANIZATION = "flask-stack self-signed fallback, until ACME issues a certificate"
CERT_FILE = "tls.crt"
KEY_FILE = "tls.key"
# install(): each pair in a folder of its own, `current` the link to the one in service.
CURRENT = "current"
PAIR_PREFIX = "pair-"


@dataclass(frozen=True)
class Facts:
    serial: str
    not_after: datetime
    self_signed: bool
    fingerprint: str
    names: tuple[str, ...]
    issuer: str

    def describe(self):
        return {"serial": self.serial, "not_after": self.not_after.isoformat(), "issuer": self.issuer}


def facts(chain_pem):
    """The facts of a PEM chain's first certificate (the server's own)."""
    certificate = x509.load_pem_x509_certificates(chain_pem)[0]
    return facts_of(certificate)


def facts_of(certificate):
    try:
        names = tuple(
            certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
                x509.DNSName
            )
        )
    except x509.ExtensionNotFound:
        names = ()
    return Facts(
        # The number's bytes in hex, as openssl and the CA's log write it (leading zero kept).
        serial=certificate.serial_number.to_bytes((certificate.serial_number.bit_length() + 7) // 8 or 1, "big").hex(),
        not_after=certificate.not_valid_after_utc,
        self_signed=certificate.issuer == certificate.subject,
        fingerprint=certificate.fingerprint(hashes.SHA256()).hex(),
        names=names,
        issuer=certificate.issuer.rfc4514_string(),
    )


def installed(tls_dir):
    """The facts of the installed certificate, or None when there is none."""
    try:
        return facts((tls_dir / CERT_FILE).read_bytes())
    except FileNotFoundError:
        return None


def key_matches(chain_pem, key_pem):
    certificate = x509.load_pem_x509_certificates(chain_pem)[0]
    key = serialization.load_pem_private_key(key_pem, password=None)
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.DER
    return certificate.public_key().public_bytes(encoding, public) == key.public_key().public_bytes(encoding, public)


def _write(path, data, mode):
    with open(path, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.chmod(path, mode)


def _link(tls_dir, name, target):
    """Point tls_dir/name at target by renaming a new link over it: atomic, never absent."""
    temporary = tls_dir / f".{name}.{uuid.uuid4().hex}"
    os.symlink(target, temporary)
    os.replace(temporary, tls_dir / name)


def install(tls_dir, chain_pem, key_pem):
    """Put a certificate and its key where nginx reads them (tls.crt, tls.key), both at once.

    The pair is written into a new folder, then one rename points the `current` link at it;
    tls.crt and tls.key are links through `current`. Whenever nginx reads them (a reload, a
    restart, even while this job dies half-way), it reads a whole old pair or a whole new
    one, never a new key with an old certificate, which nginx would refuse to start with."""
    if not key_matches(chain_pem, key_pem):
        raise ValueError("the certificate's public key does not match the private key")
    tls_dir = Path(tls_dir)
    pair = tls_dir / f"{PAIR_PREFIX}{uuid.uuid4().hex}"
    pair.mkdir(mode=0o755)
    _write(pair / KEY_FILE, key_pem, 0o600)
    _write(pair / CERT_FILE, chain_pem, 0o644)
    previous = os.readlink(tls_dir / CURRENT) if (tls_dir / CURRENT).is_symlink() else None
    _link(tls_dir, CURRENT, pair.name)
    for name in (CERT_FILE, KEY_FILE):
        link = tls_dir / name
        if not (link.is_symlink() and os.readlink(link) == f"{CURRENT}/{name}"):
            _link(tls_dir, name, f"{CURRENT}/{name}")
    # The pair before this one stays: a reader that followed `current` a moment ago can still
    # open it. Older ones go.
    for old in tls_dir.glob(f"{PAIR_PREFIX}*"):
        if old.name not in (pair.name, previous):
            shutil.rmtree(old, ignore_errors=True)


def fallback_pair(domains, now=None):
    """A self-signed certificate for `domains`, valid for FALLBACK_LIFETIME, and its key."""
    now = now or datetime.now(UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, domains[0]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, FALLBACK_ORGANIZATION),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + FALLBACK_LIFETIME)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain) for domain in domains]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def fallback_due(current, domains, now=None):
    """Whether a self-signed stand-in should be written: none installed, or the installed one
    is a stand-in near its end or for other names. An issued certificate is never replaced by one."""
    now = now or datetime.now(UTC)
    if current is None:
        return True
    if not current.self_signed:
        return False
    return current.not_after - now < FALLBACK_RENEW_BEFORE or set(current.names) != set(domains)
