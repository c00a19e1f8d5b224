"""Real loopback servers for channel tests: an HTTP sink and an SMTP server (aiosmtpd)."""

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class HttpSink:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0
    raw_reply: bytes | None = None  # answer with these bytes instead of HTTP (then close)
    location: str | None = None  # with a 3xx status, the Location header

    def bodies(self) -> list[Any]:
        return [json.loads(r["body"]) for r in self.requests]


@contextmanager
def http_sink() -> Iterator[HttpSink]:
    sink = HttpSink(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self._answer("POST")

        def do_GET(self) -> None:
            self._answer("GET")

        def _answer(self, method: str) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if sink.delay:
                time.sleep(sink.delay)
            headers = {k.lower(): v for k, v in self.headers.items()}
            sink.requests.append({"method": method, "path": self.path, "headers": headers, "body": body})
            if sink.raw_reply is not None:
                self.wfile.write(sink.raw_reply)
                self.wfile.flush()
                self.close_connection = True
                return
            self.send_response(sink.status)
            if sink.location:
                self.send_header("Location", sink.location)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    sink.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class SmtpSink:
    host: str
    port: int
    messages: list[Any] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed_cert(directory: Any) -> tuple[str, str]:
    """A certificate for 127.0.0.1 made here (file paths of cert and key)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = f"{directory}/cert.pem", f"{directory}/key.pem"
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return cert_path, key_path


@contextmanager
def smtp_server(
    user: str | None = None, password: str | None = None, tls: tuple[str, str] | None = None
) -> Iterator[SmtpSink]:
    """A real SMTP server (aiosmtpd) on loopback; with credentials it requires AUTH."""
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    sink = SmtpSink("127.0.0.1", free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            from email import message_from_bytes

            sink.messages.append(message_from_bytes(envelope.content))
            return "250 OK"

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == user
            and data.password.decode() == password
        )
        if ok:
            sink.logins.append(user or "")
        return AuthResult(success=ok, handled=False)

    kwargs: dict[str, Any] = {}
    if user is not None:
        kwargs.update(authenticator=authenticator, auth_require_tls=tls is not None)
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*tls)
        kwargs.update(tls_context=context, require_starttls=True)
    controller = Controller(Handler(), hostname=sink.host, port=sink.port, **kwargs)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()
