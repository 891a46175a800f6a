"""Where a request comes from: whether the browser says it was sent from this site (the
check every form's POST makes besides its HMAC), and the client address that the
per-address limits count (behind web.trusted_proxies)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.requests import Request


def same_site(request: Request, base_url: str) -> bool:
    """False when the browser says the post comes from another site (Sec-Fetch-Site,
    else Origin). ``Origin: null`` (a sandboxed frame, a data: or file: page, a redirect
    from elsewhere) is not this site. Clients that send neither are let through."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return True
    allowed = {base_url, f"{request.url.scheme}://{request.url.netloc}"}
    return origin.rstrip("/") in allowed


def client_address(request: Request, trusted_proxies: Sequence[str]) -> str:
    """The address the per-address limits count. A request from one of web.trusted_proxies
    counts against the rightmost X-Forwarded-For entry that is not itself a trusted proxy
    (the one our proxy wrote; entries left of it come from the client and prove nothing).
    From anyone else the header is ignored: any client can write one."""
    nets = [ipaddress.ip_network(p.strip(), strict=False) for p in trusted_proxies]

    def trusted(host: str) -> bool:
        address = _address(host)
        return address is not None and any(address in net for net in nets)

    peer = request.client.host if request.client else ""
    if not trusted(peer):
        return peer
    hops = [h.strip() for v in request.headers.getlist("x-forwarded-for") for h in v.split(",")]
    for hop in reversed(hops):
        if not trusted(hop):
            return hop if _address(hop) is not None else peer
    return peer


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
