"""Network policy for redirects and upload Locations, and the always-denied addresses
(issue 16, #1 and #2).

A hostile registry on 127.0.0.1 points Ferry at a listener on another loopback
address (127.0.0.2): the listener must receive nothing.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from common.errors import NetworkPolicyError, UploadError
from common.registry.blob_reader import BlobReader
from common.registry.transport import Transport
from common.registry.upload_session import UploadSession
from common.security.netpolicy import check_address
from common.settings import load_settings

DIGEST = "sha256:" + "a" * 64


class _Listener(BaseHTTPRequestHandler):
    """An internal service: it records every request and answers 200."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _any(self):
        self.server.hits.append((self.command, self.path))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_PUT = do_PATCH = do_DELETE = do_POST = do_HEAD = _any


class _Hostile(BaseHTTPRequestHandler):
    """A registry that sends blob reads and uploads to ``server.elsewhere``."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _answer(self, status, location=None):
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        if self.path == "/v2/":
            self._answer(200)
        else:
            self._answer(307, f"{self.server.elsewhere}/internal{self.path}")

    def do_POST(self):
        self._answer(202, f"{self.server.elsewhere}/upload/1")


def _serve(handler, host):
    server = ThreadingHTTPServer((host, 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def world():
    listener = _serve(_Listener, "127.0.0.2")
    listener.hits = []
    hostile = _serve(_Hostile, "127.0.0.1")
    hostile.elsewhere = f"http://127.0.0.2:{listener.server_port}"
    yield hostile, listener
    for server in (hostile, listener):
        server.shutdown()
        server.server_close()


def _transport(hostile, **settings):
    base = replace(load_settings({}), **settings)
    return Transport(f"http://127.0.0.1:{hostile.server_port}", settings=base)


def test_a_blob_redirect_to_an_internal_host_is_refused(world):
    hostile, listener = world
    with pytest.raises(NetworkPolicyError, match="FERRY_REGISTRY_REDIRECT_HOSTS"):
        _transport(hostile).request("GET", f"/v2/p/app/blobs/{DIGEST}", follow=True)
    assert listener.hits == []


def test_a_host_named_in_the_setting_may_be_redirected_to(world):
    hostile, listener = world
    transport = _transport(hostile, registry_redirect_hosts=("127.0.0.2",))
    reply = transport.request("GET", f"/v2/p/app/blobs/{DIGEST}", follow=True)
    assert reply.status_code == 200
    assert listener.hits == [("GET", f"/internal/v2/p/app/blobs/{DIGEST}")]


def test_an_upload_location_on_another_host_is_refused(world):
    hostile, listener = world
    transport = _transport(hostile, registry_redirect_hosts=("127.0.0.2",))
    with pytest.raises(UploadError, match="upload sessions stay on the registry"):
        UploadSession.start(transport, BlobReader(transport), "p/app")
    assert listener.hits == []


@pytest.mark.parametrize(
    "ip",
    [
        "169.254.169.254",
        "169.254.0.1",
        "100.100.100.200",
        "168.63.129.16",
        "fd00:ec2::254",
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "64:ff9b::6464:64c8",  # NAT64 of 100.100.100.200
        "64:ff9b::a83f:8110",  # NAT64 of 168.63.129.16
    ],
)
def test_metadata_addresses_are_always_denied(ip):
    with pytest.raises(NetworkPolicyError):
        check_address(ip, load_settings({}))


def test_nat64_follows_the_ipv4_rules():
    check_address("64:ff9b::808:808", load_settings({}))  # 8.8.8.8
    denied = load_settings({"FERRY_REGISTRY_DENY_NETWORKS": "10.0.0.0/8"})
    with pytest.raises(NetworkPolicyError, match="DENY"):
        check_address("64:ff9b::a00:1", denied)  # 10.0.0.1


class _Registry(BaseHTTPRequestHandler):
    """A registry root that answers /v2/ (on whichever loopback address it is bound)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_a_name_that_rebinds_after_the_check_reaches_nothing_internal(monkeypatch):
    """DNS rebinding: the name resolves to an allowed address for the check, then to a
    denied one; every new connection is checked on the address it really uses."""
    import socket

    good = _serve(_Registry, "127.0.0.1")
    evil = ThreadingHTTPServer(("127.0.0.2", good.server_port), _Registry)  # same port
    evil.daemon_threads = True
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    good.hits, evil.hits = [], []
    answers = iter(["127.0.0.1"])  # then 127.0.0.2 for ever
    real = socket.getaddrinfo

    def rebinding(host, port, *args, **kwargs):
        if host != "rebind.test":
            return real(host, port, *args, **kwargs)
        ip = next(answers, "127.0.0.2")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    settings = load_settings({"FERRY_REGISTRY_DENY_NETWORKS": "127.0.0.2/32"})
    try:
        transport = Transport(f"http://rebind.test:{good.server_port}", settings=settings)
        with pytest.raises(NetworkPolicyError, match=r"127\.0\.0\.2"):
            transport.request("GET", "/v2/", retry=False)
    finally:
        for server in (good, evil):
            server.shutdown()
            server.server_close()
    assert evil.hits == []
