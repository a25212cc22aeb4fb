"""`fetch`: the text of a web page, for members on servers without web tools of their own.

What a model may reach is the public internet and nothing else, unless the user allows more:

- http and https only; at most `max_redirects` redirects, each one checked like the first URL;
- the host is resolved here and EVERY address it resolves to must be public: loopback, private
  (10/8, 172.16/12, 192.168/16, fc00::/7), link-local (169.254/16 with the cloud metadata address,
  fe80::/10), multicast, reserved and unspecified addresses are refused, and so are IPv6 forms that
  embed one (::ffff:127.0.0.1, 6to4, NAT64). Spellings such as 2130706433 or 0177.0.0.1 resolve to
  127.0.0.1 and are refused as that;
- the connection goes to the address that was checked (a network backend under httpcore does the
  resolving), so a name that resolves differently a moment later (DNS rebinding) cannot slip through;
- no proxy from the environment is used (it would connect on the model's behalf, unchecked);
- the body is read up to `max_bytes` and the whole fetch is bounded by `timeout_s`.

`allow_private=True` lifts the address rule (a user who wants an intranet page); `allow_networks`
allows just the networks named. HTML becomes text with the standard library's HTML parser (scripts,
styles and markup dropped; blocks on their own lines); text, JSON, XML and CSV are passed on as they are.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import zlib
from collections.abc import Iterable
from typing import Any

import httpcore

from .base import Tool, ToolError
from .html_text import html_to_text
from .output import clip, one_line

__all__ = ["AddressRefused", "check_address", "fetch_tool"]

_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/xhtml+xml", "application/ld+json")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(ToolError):
    "The URL's host is (or resolves to) an address the tool may not reach."


def check_address(address: str, allowed: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network] = ()) -> None:
    """Raise `AddressRefused` unless ``address`` (an IP literal) is a public internet address or allowed."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0) names a link: local
    allowed = list(allowed)
    if any(ip.version == net.version and ip in net for net in allowed):
        return
    for inner in _embedded(ip):
        if any(inner.version == net.version and inner in net for net in allowed):
            continue
        if not inner.is_global or inner.is_multicast or inner.is_reserved or inner.is_unspecified:
            raise AddressRefused(
                f"refused: {address} is a private, loopback, link-local or reserved address"
                " (only public internet addresses may be fetched)"
            )


def _embedded(ip: _Address) -> list[_Address]:
    "The address and every IPv4 address an IPv6 address carries (mapped, 6to4, Teredo, NAT64)."
    found: list[_Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        for inner in (ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None):
            if inner is not None:
                found.append(inner)
        if ip in _NAT64:
            found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def fetch_tool(
    *,
    allow_private: bool = False,
    allow_networks: Iterable[str] = (),
    max_bytes: int = 2_000_000,
    max_chars: int = 8_000,
    timeout_s: float = 15.0,
    max_redirects: int = 5,
    user_agent: str = "fusion-magic-fetch/1 (+a panel member reading a page)",
) -> Tool:
    """A `fetch` tool: GET a URL, return its text. See the module docstring for what it refuses."""
    networks = [ipaddress.ip_network(n, strict=False) for n in allow_networks]
    limits = {"max_bytes": max_bytes, "timeout_s": timeout_s, "max_redirects": max_redirects}

    async def run(arguments: dict[str, Any]) -> str:
        url = arguments.get("url") if isinstance(arguments, dict) else None
        if not isinstance(url, str) or not url.strip():
            raise ToolError("fetch needs a `url` (an http or https address)")
        try:
            return await asyncio.wait_for(
                _fetch(
                    url.strip(), None if allow_private else networks, user_agent, max_bytes, max_chars, max_redirects
                ),
                timeout_s,
            )
        except asyncio.TimeoutError:
            raise ToolError(f"fetch of {url} took longer than {timeout_s:g} s (time limit)") from None

    description = (
        "Fetch a public web page (http or https) and return its text (markup removed), cut to "
        f"{max_chars:,} characters. Private, local and intranet addresses are refused."
        if not allow_private
        else f"Fetch a web page (http or https) and return its text (markup removed), cut to {max_chars:,} characters."
    )
    parameters = {
        "type": "object",
        "properties": {"url": {"type": "string", "description": "The address to fetch, starting with http(s)://"}},
        "required": ["url"],
    }
    identity = f"fetch:v1:private={allow_private}:{sorted(map(str, networks))}:{sorted(limits.items())}"
    return Tool("fetch", description, parameters, run, identity=identity)


async def _fetch(
    url: str, networks: list[Any] | None, user_agent: str, max_bytes: int, max_chars: int, max_redirects: int
) -> str:
    pool = httpcore.AsyncConnectionPool(
        ssl_context=_ssl_context(), network_backend=_CheckedBackend(networks), retries=0
    )
    async with pool:
        for _ in range(max_redirects + 1):
            target = _parse(url)
            headers = [
                (b"Host", target.netloc),
                (b"User-Agent", user_agent.encode()),
                (b"Accept", b"text/html, text/plain;q=0.9, application/json;q=0.8, */*;q=0.5"),
                (b"Accept-Encoding", b"identity"),
            ]
            request_url = httpcore.URL(
                scheme=target.raw_scheme, host=target.raw_host, port=target.port, target=target.raw_path
            )
            try:
                async with pool.stream("GET", request_url, headers=headers) as response:
                    status = response.status
                    head = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers}
                    if status in (301, 302, 303, 307, 308) and "location" in head:
                        url = str(target.join(head["location"]))
                        continue
                    body, cut = await _read(response.aiter_stream(), max_bytes, head.get("content-encoding", ""))
            except ToolError:
                raise
            except (httpcore.ConnectError, httpcore.ConnectTimeout, OSError) as exc:
                raise ToolError(f"could not connect to {target.host}: {one_line(exc)}") from None
            except httpcore.TimeoutException as exc:
                raise ToolError(f"fetch of {url} timed out: {one_line(exc)}") from None
            except (httpcore.ProtocolError, httpcore.NetworkError) as exc:
                raise ToolError(f"fetch of {url} failed: {one_line(exc)}") from None
            return _page_text(url, status, head, body, cut, max_bytes, max_chars)
        raise ToolError(f"fetch of {url} was redirected more than {max_redirects} times")


def _parse(url: str) -> Any:
    import httpx  # its URL parser: IDNA, percent-encoding, relative redirects

    try:
        target = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise ToolError(f"not a valid URL: {url!r} ({one_line(exc)})") from None
    if target.scheme not in ("http", "https"):
        raise ToolError(f"refused: only http and https URLs may be fetched, not {target.scheme or 'this'}: {url!r}")
    if not target.host:
        raise ToolError(f"not a valid URL (no host): {url!r}")
    return target


async def _read(chunks: Any, max_bytes: int, encoding: str) -> tuple[bytes, bool]:
    "The body, decompressed (gzip, deflate) and cut at ``max_bytes`` AFTER decompression (no zip bomb)."
    encoding = encoding.strip().lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        inflate = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, detected
    elif encoding not in ("", "identity"):
        raise ToolError(f"the page is compressed as {encoding!r}, which this tool cannot read")
    else:
        inflate = None
    body = bytearray()
    async for chunk in chunks:
        if inflate is not None:
            try:
                chunk = inflate.decompress(chunk, max_bytes + 1 - len(body))
            except zlib.error as exc:
                raise ToolError(f"the page's {encoding} data is damaged ({exc})") from None
        body += chunk
        if len(body) > max_bytes:
            return bytes(body[:max_bytes]), True
    return bytes(body), False


def _ssl_context() -> ssl.SSLContext:
    "Certificates checked against certifi's bundle (as httpx does), else the system's."
    try:
        import certifi

        return ssl.create_default_context(cafile=certifi.where())
    except ImportError:  # pragma: no cover - certifi comes with httpx
        return ssl.create_default_context()


def _page_text(
    url: str, status: int, head: dict[str, str], body: bytes, cut: bool, max_bytes: int, max_chars: int
) -> str:
    kind, _, params = head.get("content-type", "text/html").partition(";")
    kind = kind.strip().lower()
    if status >= 400:
        raise ToolError(f"fetch of {url} failed: HTTP {status}")
    if not (kind.startswith(_TEXT_TYPES) or kind.endswith(("+json", "+xml"))):
        raise ToolError(f"{url} is {kind or 'binary content'}, not a page this tool can read as text")
    charset = "utf-8"
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip("\"'")
    try:
        text = body.decode(charset, errors="replace")
    except LookupError:
        text = body.decode("utf-8", errors="replace")
    if kind in ("text/html", "application/xhtml+xml"):
        text = html_to_text(text)
    note = f"\n[page cut at {max_bytes:,} bytes]" if cut else ""
    return clip(f"URL: {url}\n\n{text.strip()}{note}", max_chars)


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, resolving names itself and connecting only to checked addresses."""

    def __init__(self, networks: list[Any] | None) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._networks = networks  # None: every address is allowed

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> Any:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise ToolError(f"could not resolve {host}: {exc.strerror or exc}") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses:
            raise ToolError(f"could not resolve {host}")
        if self._networks is not None:
            for address in addresses:  # every address: a name may hide a private one among public ones
                try:
                    check_address(address, self._networks)
                except AddressRefused as exc:
                    if host.strip("[]") == address:
                        raise
                    raise AddressRefused(f"refused: {host} resolves to {str(exc).removeprefix('refused: ')}") from None
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except Exception as exc:  # noqa: BLE001 - try the next address; the last failure is reported
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> Any:
        raise ToolError("refused: unix sockets cannot be fetched")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
