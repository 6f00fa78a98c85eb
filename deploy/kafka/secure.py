"""`valence kafka start --secure`: the local broker with a SASL_SSL listener as well.

The secure listener is on ``kafka_port + 2`` (the controller has ``kafka_port + 1``): TLS
with a certificate made here by `openssl` and signed by a local CA, and SCRAM-SHA-512
users. The PLAINTEXT listener stays for the broker itself and for tools on this machine.
Everything lives under ``<state_dir>/kafka/secure/``:

    ca.pem, ca.key          the local CA (clients trust ca.pem: VALENCE_SSL_CAFILE)
    broker.p12              the broker's key and certificate (SAN 127.0.0.1, localhost)
    password                the keystore's and the SCRAM user's password, unless given
                            as VALENCE_SASL_PASSWORD (mode 0600)
"""

from __future__ import annotations

import secrets
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stream.config import Settings

SCRAM_MECHANISM = "SCRAM-SHA-512"
DEFAULT_USER = "valence"
CERT_DAYS = 825


class SecureSetupError(RuntimeError):
    """Certificates or users could not be made; the message says which step failed."""


def secure_port(settings: Settings) -> int:
    return settings.kafka_port + 2


def secure_dir(settings: Settings) -> Path:
    return (Path(settings.state_dir) / "kafka" / "secure").resolve()


def user(settings: Settings) -> str:
    return settings.sasl_username or DEFAULT_USER


def password(settings: Settings) -> str:
    """The SCRAM user's password: VALENCE_SASL_PASSWORD, else one made once and kept."""
    if settings.sasl_password is not None:
        return settings.sasl_password.get_secret_value()
    path = secure_dir(settings) / "password"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24))
    return path.read_text().strip()


def _keystore_password(settings: Settings) -> str:
    path = secure_dir(settings) / "keystore-password"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24))
    return path.read_text().strip()


def _openssl(*args: str) -> None:
    done = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SecureSetupError(f"openssl {args[0]} failed: {done.stderr.strip()[-300:]}")


def ensure_certificates(settings: Settings) -> Path:
    """A local CA and a broker certificate signed by it, made once; returns the keystore."""
    folder = secure_dir(settings)
    keystore = folder / "broker.p12"
    if keystore.is_file():
        return keystore
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_pem = folder / "ca.key", folder / "ca.pem"
    key, csr, pem = folder / "broker.key", folder / "broker.csr", folder / "broker.pem"
    days = str(CERT_DAYS)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key),
             "-out", str(ca_pem), "-days", days, "-subj", "/CN=valence local CA")  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
             "-subj", "/CN=localhost")  # fmt: skip
    with tempfile.NamedTemporaryFile("w", suffix=".ext") as extensions:
        extensions.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        extensions.flush()
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_pem), "-CAkey", str(ca_key),
                 "-CAcreateserial", "-out", str(pem), "-days", days,
                 "-extfile", extensions.name)  # fmt: skip
    _openssl("pkcs12", "-export", "-in", str(pem), "-inkey", str(key), "-certfile", str(ca_pem),
             "-name", "broker", "-out", str(keystore),
             "-passout", f"pass:{_keystore_password(settings)}")  # fmt: skip
    for private in (ca_key, key):
        private.chmod(0o600)
    return keystore


def config_lines(settings: Settings) -> str:
    """server.properties lines (appended: a later key overrides the template's)."""
    port, controller = settings.kafka_port, settings.kafka_port + 1
    store = ensure_certificates(settings)
    store_password = _keystore_password(settings)
    return "\n".join(
        [
            "",
            "# --- valence kafka start --secure (deploy/kafka/secure.py) ---",
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller},"
            f"SASL_SSL://127.0.0.1:{secure_port(settings)}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port},"
            f"SASL_SSL://127.0.0.1:{secure_port(settings)}",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,"
            "SASL_SSL:SASL_SSL",
            f"sasl.enabled.mechanisms={SCRAM_MECHANISM}",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "ssl.keystore.type=PKCS12",
            f"ssl.keystore.location={store}",
            f"ssl.keystore.password={store_password}",
            f"ssl.key.password={store_password}",
            "",
        ]
    )


def add_user(java: str, libs: Path, settings: Settings) -> None:
    """Create (or update) the SCRAM user through the PLAINTEXT listener."""
    cmd = [
        java, "-Xmx256m", "-XX:TieredStopAtLevel=1", "-cp", f"{libs}/*",
        "kafka.admin.ConfigCommand", "--bootstrap-server", f"127.0.0.1:{settings.kafka_port}",
        "--alter", "--entity-type", "users", "--entity-name", user(settings),
        "--add-config", f"{SCRAM_MECHANISM}=[iterations=8192,password={password(settings)}]",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        lines = (done.stdout + done.stderr).strip().splitlines()
        raise SecureSetupError(f"adding SCRAM user failed: {lines[-1] if lines else ''}")


def client_settings(settings: Settings) -> dict[str, str]:
    """The VALENCE_* variables a client (the worker, valence send) needs for this broker."""
    return {
        "VALENCE_BOOTSTRAP_SERVERS": f"127.0.0.1:{secure_port(settings)}",
        "VALENCE_SECURITY_PROTOCOL": "SASL_SSL",
        "VALENCE_SASL_MECHANISM": SCRAM_MECHANISM,
        "VALENCE_SASL_USERNAME": user(settings),
        "VALENCE_SASL_PASSWORD": f"$(cat {secure_dir(settings) / 'password'})"
        if settings.sasl_password is None
        else "<as given>",
        "VALENCE_SSL_CAFILE": str(secure_dir(settings) / "ca.pem"),
    }
