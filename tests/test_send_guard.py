"""The sender's guards at the socket (sync.sending): the address vetted is the address
connected to (DNS rebinding), one deadline per POST (a CRM that drips its answer), no
redirect, no proxy from the environment. Real loopback servers; only DNS is faked, since
that is the edge we do not own."""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
import time
import tracemalloc
from collections.abc import Iterator

import httpcore
import pytest
from django.utils import timezone

from sync import sending
from webhooks.models import Endpoint

HOST = "crm.rebinding.test"
PUBLIC = "93.184.216.34"


def read_request(conn: socket.socket) -> None:
    """Read one whole request: closing with unread bytes would make the kernel reset the
    connection, and the client could lose our answer (over TLS the body comes apart)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536) or b"\r\n\r\n"
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length and (chunk := conn.recv(65536)):
        body += chunk


class Listener:
    """A loopback TCP server that records every connection and answers with `script`."""

    def __init__(self, script, tls=None) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.script = script
        self.tls = tls  # an ssl.SSLContext: HTTPS
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        # OSError: the client gave up or refused our certificate, the point of some tests.
        with conn, contextlib.suppress(OSError):
            if self.tls:
                conn = self.tls.wrap_socket(conn, server_side=True)
            read_request(conn)
            self.script(conn)

    def close(self) -> None:
        self.sock.close()


def ok(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")


@pytest.fixture
def listener() -> Iterator:
    made: list[Listener] = []

    def make(script=ok, tls=None) -> Listener:
        made.append(Listener(script, tls))
        return made[-1]

    yield make
    for each in made:
        each.close()


def post(url: str):
    endpoint = Endpoint(name="CRM", url=url)
    endpoint.signing_secret = "whsec_" + "A" * 44
    with sending.new_client() as client:
        return sending.post_payload(
            client=client, endpoint=endpoint, payload_id="msg_x", body="{}", at=timezone.now()
        )


@pytest.fixture
def rebinding_dns(monkeypatch):
    """HOST resolves to a public address the first time, to loopback afterwards: the
    attacker's DNS with a zero TTL. Other names (and IP literals) resolve for real."""
    real = socket.getaddrinfo
    answers = iter([PUBLIC])

    def getaddrinfo(host, port, *args, **kwargs):
        if host != HOST:
            return real(host, port, *args, **kwargs)
        address = next(answers, "127.0.0.1")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_dns_rebinding_after_the_check_is_refused(settings, listener, rebinding_dns):
    """The endpoint was checked while its name pointed at a public address; now it points
    at loopback. The sender vets the address it connects to, so the loopback service never
    hears a thing."""
    from webhooks.url_safety import check_url

    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    internal = listener()
    url = f"http://{HOST}:{internal.port}/hook"
    check_url(url)  # on save: the public answer
    result = post(url)
    assert result.ok is False
    assert result.error.startswith("Refused:"), result.error
    assert "127.0.0.1" in result.error
    assert internal.connections == 0


def test_dns_rebinding_between_the_check_and_the_connection_is_refused(
    settings, listener, monkeypatch
):
    """The name answers public to the send-time check and loopback to anyone who asks again
    (zero TTL). The sender resolves once and connects to the very address it vetted, so the
    loopback service never hears a thing. (Resolving again where the socket connects, as a
    plain client does, would reach it.)"""
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    internal = listener()
    real_getaddrinfo, lookups = socket.getaddrinfo, []

    def getaddrinfo(host, port, *args, **kwargs):
        if host != HOST:
            return real_getaddrinfo(host, port, *args, **kwargs)
        lookups.append(host)
        address = PUBLIC if len(lookups) == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))]

    real_connect, connected = httpcore.SyncBackend.connect_tcp, []

    def connect_tcp(self, host, port, *args, **kwargs):
        connected.append(host)
        if host == PUBLIC:  # no internet here: the public CRM does not answer
            raise httpcore.ConnectError("unreachable in the test")
        return real_connect(self, host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", connect_tcp)
    result = post(f"http://{HOST}:{internal.port}/hook")
    assert result.ok is False
    assert lookups == [HOST]  # one resolution per send
    assert connected == [PUBLIC]  # the vetted address, never the name
    assert internal.connections == 0


def test_a_name_with_one_private_address_among_public_ones_is_refused(
    settings, listener, monkeypatch
):
    """Every address is vetted, not only the first: the socket library would try the next
    one when the first fails."""
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    internal = listener()
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host != HOST:
            return real(host, port, *args, **kwargs)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC, int(port))),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", int(port))),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    result = post(f"http://{HOST}:{internal.port}/hook")
    assert result.error.startswith("Refused:"), result.error
    assert internal.connections == 0


def test_a_crm_that_drips_its_answer_is_cut_at_the_deadline(settings, listener):
    """httpx's timeouts are per read: a byte every 0.1 s would hold an execution for ever
    (and past its lease). One deadline covers the whole POST."""
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5

    def drip(conn: socket.socket) -> None:
        for byte in b"HTTP/1.1 200 OK\r\n" + b"x-padding: " + b"." * 200:
            conn.sendall(bytes([byte]))
            time.sleep(0.1)

    slow = listener(drip)
    started = time.monotonic()
    result = post(f"http://127.0.0.1:{slow.port}/hook")
    assert result.ok is False
    assert result.error.startswith("Timeout"), result.error
    assert time.monotonic() - started < 2


@pytest.fixture
def stalled_dns(monkeypatch) -> Iterator[None]:
    """HOST's DNS server never answers (until the test ends); other names resolve for real."""
    real = socket.getaddrinfo
    released = threading.Event()

    def getaddrinfo(host, port, *args, **kwargs):
        if host != HOST:
            return real(host, port, *args, **kwargs)
        released.wait(10)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC, int(port)))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield
    released.set()


def test_a_resolver_that_stalls_is_cut_at_the_deadline(settings, stalled_dns):
    """getaddrinfo cannot be interrupted, and resolv.conf's timeouts and retries can add up
    to more than the lease: the sender waits for DNS only as long as the POST has left."""
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    settings.WEBHOOK_CONNECT_TIMEOUT_SECONDS = 0.5
    started = time.monotonic()
    result = post(f"http://{HOST}/hook")
    assert result.ok is False
    assert result.error.startswith("Timeout"), result.error
    assert time.monotonic() - started < 1.5


def test_the_deadline_is_per_post_not_per_client(settings, listener):
    """Several POSTs on one client (one execution) each get the full budget."""
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.4

    def slowish(conn: socket.socket) -> None:
        time.sleep(0.25)
        ok(conn)

    crm = listener(slowish)
    endpoint = Endpoint(name="CRM", url=f"http://127.0.0.1:{crm.port}/hook")
    endpoint.signing_secret = "whsec_" + "A" * 44
    with sending.new_client() as client:
        results = [
            sending.post_payload(
                client=client, endpoint=endpoint, payload_id="m", body="{}", at=timezone.now()
            )
            for _ in range(3)
        ]
    assert [r.ok for r in results] == [True, True, True]


def test_a_redirect_to_an_internal_address_is_not_followed(settings, listener):
    """A 3xx is a failure that names the Location; the internal target is never contacted."""
    internal = listener()

    def redirect(conn: socket.socket) -> None:
        conn.sendall(
            b"HTTP/1.1 307 Temporary Redirect\r\n"
            + f"location: http://127.0.0.1:{internal.port}/admin\r\n".encode()
            + b"content-length: 0\r\nconnection: close\r\n\r\n"
        )

    crm = listener(redirect)
    result = post(f"http://127.0.0.1:{crm.port}/hook")
    assert (result.ok, result.status_code) == (False, 307)
    assert "redirects are not followed" in result.error
    assert internal.connections == 0


def test_a_proxy_from_the_environment_is_not_used(settings, listener, monkeypatch):
    """HTTP_PROXY would send the POST to an address we did not vet: it is ignored."""
    proxy = listener()
    crm = listener()
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.setenv("ALL_PROXY", f"http://127.0.0.1:{proxy.port}")
    result = post(f"http://127.0.0.1:{crm.port}/hook")
    assert result.ok, result.error
    assert (crm.connections, proxy.connections) == (1, 0)


def test_every_address_of_a_host_is_tried_in_turn(settings, listener, monkeypatch):
    """A host with a dead address first still gets its POST through the next one."""
    crm = listener()  # on 127.0.0.1 only: 127.0.0.2 refuses the connection
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "crm.two-addresses.test":
            return real(host, port, *args, **kwargs)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", int(port))),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", int(port))),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    result = post(f"http://crm.two-addresses.test:{crm.port}/hook")
    assert result.ok, result.error
    assert crm.connections == 1


# --- HTTPS through the guarded backend ------------------------------------------------------


def _certificate(tmp_path, name: str) -> tuple[str, str, str]:
    """A throwaway CA and a server certificate for `name`: (ca.pem, cert.pem, key.pem)."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def pem(path, data: bytes) -> str:
        (tmp_path / path).write_bytes(data)
        return str(tmp_path / path)

    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return (
        pem("ca.pem", ca.public_bytes(serialization.Encoding.PEM)),
        pem("cert.pem", cert.public_bytes(serialization.Encoding.PEM)),
        pem(
            "key.pem",
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        ),
    )


@pytest.fixture
def tls_crm(tmp_path, monkeypatch, listener):
    """An HTTPS CRM on loopback with a certificate for the given name; `crm.tls.test`
    resolves to 127.0.0.1; the client trusts the test CA (the only change from production:
    the CA bundle)."""
    import ssl

    real_context = ssl.create_default_context
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "crm.tls.test":
            return real_getaddrinfo(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", int(port)))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    def make(certified_name: str) -> Listener:
        ca, cert, key = _certificate(tmp_path, certified_name)
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.load_cert_chain(cert, key)
        monkeypatch.setattr(sending.httpx, "create_ssl_context", lambda: real_context(cafile=ca))
        return listener(ok, tls=server)

    return make


def test_https_goes_through_the_guard_and_checks_the_host_name(tls_crm):
    """Connecting to the vetted IP keeps TLS verifying the URL's host name (SNI and the
    certificate), and the deadline still applies inside TLS."""
    crm = tls_crm("crm.tls.test")
    result = post(f"https://crm.tls.test:{crm.port}/hook")
    assert result.ok, result.error
    assert crm.connections == 1


def test_https_with_a_certificate_for_another_name_is_refused(tls_crm):
    crm = tls_crm("someone-else.test")
    result = post(f"https://crm.tls.test:{crm.port}/hook")
    assert result.ok is False
    assert "CERTIFICATE_VERIFY_FAILED" in result.error or "certificate" in result.error.lower()


def test_a_credential_straddling_the_excerpt_cut_leaves_no_prefix(listener):
    """The excerpt keeps the first 2 KB of the answer; a token echoed across that cut must
    not survive as a prefix (blanked before cutting)."""
    token = "bearer-T0ken-" + "Z" * 40
    padding = sending.EXCERPT_BYTES - 10  # the token starts 10 bytes before the cut

    def echo(conn: socket.socket) -> None:
        body = b"x" * padding + token.encode() + b" and more"
        conn.sendall(
            b"HTTP/1.1 500 Internal Server Error\r\n"
            + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
            + body
        )

    crm = listener(echo)
    endpoint = Endpoint(name="CRM", url=f"http://127.0.0.1:{crm.port}/hook", auth_type="BEARER")
    endpoint.signing_secret = "whsec_" + "A" * 44
    endpoint.auth_secret = token
    with sending.new_client() as client:
        result = sending.post_payload(
            client=client, endpoint=endpoint, payload_id="m", body="{}", at=timezone.now()
        )
    assert result.status_code == 500
    assert len(result.excerpt.encode()) <= sending.EXCERPT_BYTES
    assert "bearer-T" not in result.excerpt  # not even the 10 bytes before the cut
    assert result.excerpt.startswith("x" * padding + "[redac")


@pytest.mark.parametrize("encoding", ["", "gzip"])
def test_a_huge_or_inflating_answer_is_read_only_up_to_a_cap(listener, encoding):
    """A CRM answering 200 with 50 MB (plain, or as a 50 KB gzip of zeros that inflates to
    50 MB) is acknowledged from its status; the sender reads at most ANSWER_READ_BYTES of
    the body and never holds the rest in memory."""
    inflated = 50 * 1024 * 1024
    body = gzip.compress(b"0" * inflated) if encoding else None

    def answer(conn: socket.socket) -> None:
        length = len(body) if body else inflated
        head = f"HTTP/1.1 200 OK\r\ncontent-length: {length}\r\nconnection: close\r\n"
        if encoding:
            head += f"content-encoding: {encoding}\r\n"
        conn.sendall(head.encode() + b"\r\n")
        if body:
            conn.sendall(body)
        else:
            for _ in range(inflated // 65536):
                conn.sendall(b"0" * 65536)

    crm = listener(answer)
    tracemalloc.start()
    try:
        result = post(f"http://127.0.0.1:{crm.port}/hook")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.ok, result.error
    assert result.excerpt == "0" * sending.EXCERPT_BYTES
    assert peak < 4 * 1024 * 1024, peak  # far below the 50 MB answer


def test_we_ask_for_an_uncompressed_answer(httpserver):
    httpserver.expect_request("/hook", headers={"accept-encoding": "identity"}).respond_with_data(
        "{}"
    )
    assert post(httpserver.url_for("/hook")).ok


def test_stalled_lookups_for_one_crm_do_not_hold_up_the_others(settings, stalled_dns, listener):
    """Each send waits for DNS at most until its deadline, but the stalled lookup goes on
    (getaddrinfo cannot be stopped). However many are stalled for one CRM's host, another
    CRM's send still gets its answer."""
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.3
    settings.WEBHOOK_CONNECT_TIMEOUT_SECONDS = 0.3
    crm = listener()
    stalled = [post(f"http://{HOST}/hook") for _ in range(8)]
    assert all(r.error.startswith("Timeout") for r in stalled), stalled
    result = post(f"http://127.0.0.1:{crm.port}/hook")
    assert result.ok, result.error
