"""The client-side `fetch` tool: pages as text, capped; the user's intranet out of reach.

A local server (127.0.0.1 / 127.0.0.2) stands in for the web: reached with ``allow_private=True``
or with its one address allowed, and refused otherwise, however the address is spelled.
"""

from __future__ import annotations

import asyncio
import gzip
import http.server
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from fusion_magic._tools.base import ToolError
from fusion_magic._tools.fetch import AddressRefused, _CheckedBackend, check_address, fetch_tool
from fusion_magic._tools.html_text import html_to_text

PAGE = b"""<!DOCTYPE html>
<html><head><title>Quarterly  report</title><style>p { color: red }</style>
<script>var secret = "do not show";</script></head>
<body><!-- a comment --><nav><a href="/">Home</a></nav>
<h1>Revenue &amp; costs</h1><p>Revenue grew <b>12&nbsp;%</b> in Q3.</p>
<ul><li>EMEA: 4.1 M</li><li>APAC: 2.0 M</li></ul>
<table><tr><th>Region</th><th>Q3</th></tr><tr><td>EMEA</td><td>4.1</td></tr></table>
<noscript>enable javascript</noscript><svg><text>chart label</text></svg>
<p>Unclosed paragraph<div>and a div</body></html>"""


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {}

    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(3)
        if self.path == "/huge":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            try:
                for _ in range(2000):
                    self.wfile.write(b"x" * 10_000)
            except OSError:
                pass
            return
        status, headers, body = self.routes.get(self.path, (404, {"Content-Type": "text/plain"}, b"missing"))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value.replace("{port}", str(self.server.server_port)))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    yield from _serve("127.0.0.1")


@pytest.fixture
def server2() -> Iterator[str]:
    yield from _serve("127.0.0.2")


def _serve(host: str) -> Iterator[str]:
    _Handler.routes = {
        "/page": (200, {"Content-Type": "text/html; charset=utf-8"}, PAGE),
        "/plain": (200, {"Content-Type": "text/plain; charset=latin-1"}, "caf\xe9 ok".encode("latin-1")),
        "/json": (200, {"Content-Type": "application/json"}, b'{"answer": 42}'),
        "/image": (200, {"Content-Type": "image/png"}, b"\x89PNG...."),
        "/redirect": (302, {"Location": "/page"}, b""),
        "/loop": (302, {"Location": "/loop"}, b""),
        "/to-loopback": (302, {"Location": "http://127.0.0.1:{port}/page"}, b""),
        "/to-file": (302, {"Location": "file:///etc/passwd"}, b""),
        "/error": (500, {"Content-Type": "text/plain"}, b"boom"),
        "/gzip": (200, {"Content-Type": "text/plain", "Content-Encoding": "gzip"}, gzip.compress(b"zipped text")),
        "/bomb": (200, {"Content-Type": "text/plain", "Content-Encoding": "gzip"}, gzip.compress(b"z" * 50_000_000)),
        "/brotli": (200, {"Content-Type": "text/plain", "Content-Encoding": "br"}, b"\x0b\x02\x80hi\x03"),
    }
    srv = http.server.ThreadingHTTPServer((host, 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{srv.server_port}"
    finally:
        srv.shutdown()
        srv.server_close()


def fetch(tool, url: str) -> str:
    return asyncio.run(tool.run({"url": url}))


def test_a_page_becomes_its_text(server):
    out = fetch(fetch_tool(allow_private=True), server + "/page")
    assert out.startswith(f"URL: {server}/page\n\nQuarterly report\n")
    assert "# Revenue & costs" in out and "Revenue grew 12 % in Q3." in out
    assert "- EMEA: 4.1 M" in out and "Region | Q3" in out and "EMEA | 4.1" in out
    assert "Unclosed paragraph" in out and "and a div" in out
    for hidden in ("secret", "color: red", "a comment", "enable javascript", "chart label", "<"):
        assert hidden not in out


def test_text_json_and_charsets(server):
    tool = fetch_tool(allow_private=True)
    assert fetch(tool, server + "/plain").endswith("café ok")
    assert fetch(tool, server + "/json").endswith('{"answer": 42}')


@pytest.mark.parametrize(("path", "words"), [("/image", "image/png"), ("/error", "HTTP 500"), ("/nope", "HTTP 404")])
def test_what_cannot_be_read_is_a_tool_error(server, path, words):
    with pytest.raises(ToolError, match=words):
        fetch(fetch_tool(allow_private=True), server + path)


def test_size_and_time_are_capped(server):
    out = fetch(fetch_tool(allow_private=True, max_bytes=50_000, max_chars=100_000), server + "/huge")
    assert "page cut at 50,000 bytes" in out and out.count("x") <= 50_000
    assert len(fetch(fetch_tool(allow_private=True), server + "/huge")) < 8_200  # the default character cap
    started = time.monotonic()
    with pytest.raises(ToolError, match="time limit"):
        fetch(fetch_tool(allow_private=True, timeout_s=0.5), server + "/slow")
    assert time.monotonic() - started < 3


def test_compressed_pages_are_read_and_capped_after_decompression(server):
    tool = fetch_tool(allow_private=True, max_bytes=100_000, max_chars=200_000)
    assert fetch(tool, server + "/gzip").endswith("zipped text")
    out = fetch(tool, server + "/bomb")  # 50 MB of text in a 50 KB body
    assert "page cut at 100,000 bytes" in out and out.count("z") == 100_000
    with pytest.raises(ToolError, match="compressed as 'br'"):
        fetch(tool, server + "/brotli")


def test_redirects_are_followed_and_bounded(server):
    tool = fetch_tool(allow_private=True)
    assert "Quarterly report" in fetch(tool, server + "/redirect")
    with pytest.raises(ToolError, match="redirected more than"):
        fetch(tool, server + "/loop")
    with pytest.raises(ToolError, match="only http and https"):
        fetch(tool, server + "/to-file")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://127.1.2.3:8080/x",
        "http://localhost/",
        "http://LocalHost/",
        "http://10.0.0.5/",
        "http://172.16.3.4/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://0/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://255.255.255.255/",
        "http://[::1]/",
        "http://[::]/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://[ff02::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://[2002:7f00:1::]/",  # 6to4 around 127.0.0.1
        "http://[64:ff9b::a00:1]/",  # NAT64 around 10.0.0.1
        "http://2130706433/",  # 127.0.0.1 as one decimal number
        "http://0x7f000001/",  # ... as hex
        "http://0x7f.1/",
        "http://017700000001/",  # ... as octal
        "http://0177.0.0.1/",
        "http://127.1/",
        "https://127.0.0.1/",
    ],
)
def test_private_addresses_are_refused_however_spelled(url):
    with pytest.raises(ToolError) as caught:
        fetch(fetch_tool(), url)
    message = str(caught.value)
    assert message.startswith(("refused", "not a valid URL")), message


def test_a_redirect_to_loopback_is_refused(server2):
    tool = fetch_tool(allow_networks=["127.0.0.2/32"])  # the one "public" server of this test
    assert "Quarterly report" in fetch(tool, server2 + "/page")
    with pytest.raises(AddressRefused, match="127.0.0.1"):
        fetch(tool, server2 + "/to-loopback")


def test_every_address_of_a_name_is_checked_and_the_checked_one_is_used(monkeypatch):
    calls: list[str] = []

    async def scenario(answers: list[str]) -> list[str]:
        loop = asyncio.get_running_loop()

        async def resolve(host, port, **kwargs):
            calls.append(host)
            return [
                (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers
            ]

        monkeypatch.setattr(loop, "getaddrinfo", resolve)
        backend = _CheckedBackend([])
        connected: list[str] = []

        class Inner:
            async def connect_tcp(self, host, port, *args):
                connected.append(host)
                return object()

        backend._inner = Inner()
        await backend.connect_tcp("rebinding.example", 80)
        return connected

    with pytest.raises(AddressRefused, match="rebinding.example resolves to 10.0.0.7"):
        asyncio.run(scenario(["93.184.216.34", "10.0.0.7"]))  # one private address among public ones
    assert asyncio.run(scenario(["93.184.216.34"])) == ["93.184.216.34"]  # connects to the address it checked
    assert calls == ["rebinding.example", "rebinding.example"]  # one resolution per connection


def test_proxy_variables_are_not_used(server, monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # a closed port: using it would fail
    assert "Quarterly report" in fetch(fetch_tool(allow_private=True), server + "/page")


@pytest.mark.parametrize(
    ("address", "ok"),
    [
        ("93.184.216.34", True),
        ("2606:4700::1111", True),
        ("8.8.8.8", True),
        ("192.0.2.1", False),
        ("fe80::1%eth0", False),
    ],
)
def test_check_address(address, ok):
    if ok:
        check_address(address)
    else:
        with pytest.raises(AddressRefused):
            check_address(address)
    check_address(address, [ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")])  # all allowed


@pytest.mark.parametrize("arguments", [{}, {"url": ""}, {"url": 7}, {"href": "http://x"}])
def test_missing_url_is_a_tool_error(arguments):
    with pytest.raises(ToolError, match="url"):
        asyncio.run(fetch_tool().run(arguments))


def test_unresolvable_host_is_a_tool_error():
    with pytest.raises(ToolError, match="could not resolve|refused"):
        fetch(fetch_tool(), "http://no-such-host.invalid/")


def test_descriptions_and_identity_differ_by_policy():
    strict, loose = fetch_tool(), fetch_tool(allow_private=True)
    assert "refused" in strict.description and "refused" not in loose.description
    assert strict.identity != loose.identity and strict.parameters["required"] == ["url"]


def test_html_to_text_on_broken_markup():
    text = html_to_text("<p>a<p>b</td></tr><script>x<p>y</script>c &lt;tag&gt; &#x263A; &bogus;<br>d")
    assert text.splitlines() == ["a", "b", "c <tag> ☺ &bogus;", "d"]
