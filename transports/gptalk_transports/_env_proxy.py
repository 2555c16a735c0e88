"""The proxy the environment names: ``HTTP_PROXY``, ``HTTPS_PROXY``,
``ALL_PROXY`` and ``NO_PROXY``, as httpx reads them with ``trust_env=True``.

The standard library does the reading and the matching, as for urllib:

* :func:`urllib.request.getproxies_environment` reads ``*_proxy`` variables in
  either case; when both cases are set, the lower-case one wins (as in
  httpx, which reads them through ``getproxies``).  Under CGI
  (``REQUEST_METHOD`` set) it ignores ``HTTP_PROXY``, which a client's
  ``Proxy:`` header could have set ("httpoxy", CVE-2016-1000110).
* The scheme's own variable comes first, ``ALL_PROXY`` after it.  A value
  without a scheme is an HTTP proxy (``proxy:3128`` is ``http://proxy:3128``).
* ``NO_PROXY`` is a comma-separated list: ``*`` anywhere turns the proxy off
  for every host (as in httpx and curl); otherwise the standard library's
  ``proxy_bypass_environment`` matches an entry to the host or to a domain
  suffix (``example.com`` and ``.example.com`` both cover ``example.com`` and
  ``api.example.com``, not ``badexample.com``), to ``host:port`` when the
  entry has a port, and to IP addresses as written (IPv6 with or without
  brackets; no CIDR ranges).
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from urllib.request import getproxies_environment

from gptalk_proto import LocalProtocolError

from ._config import Origin, ProxyURL

__all__ = ["choose_proxy", "environment_proxy"]


def choose_proxy(origin: Origin, proxy: str | None, trust_env: bool) -> ProxyURL | None:
    """The proxy a client uses: the explicit one, else (with ``trust_env``) the
    environment's for ``origin``, else none."""
    if proxy:
        return ProxyURL.parse(proxy)
    return environment_proxy(origin) if trust_env else None


def environment_proxy(origin: Origin) -> ProxyURL | None:
    """The proxy the environment sets for ``origin``, or None."""
    proxies = getproxies_environment()
    name = origin.scheme if proxies.get(origin.scheme) else "all"
    url = proxies.get(name)
    if not url or _bypassed(proxies.get("no", ""), origin):
        return None
    if "://" not in url:
        url = f"http://{url}"
    try:
        return ProxyURL.parse(url)
    except LocalProtocolError as exc:
        # The message of ProxyURL.parse never quotes the URL (credentials).
        variable = f"{name}_proxy"
        raise LocalProtocolError(
            f"the proxy in the environment ({variable} or {variable.upper()}): {exc}"
        ) from None


def _bypassed(no_proxy: str, origin: Origin) -> bool:
    entries = [entry.strip() for entry in no_proxy.split(",")]
    if "*" in entries:
        return True
    # The standard library compares "host:port" and the bare host; an IPv6
    # entry in brackets ("[::1]", "[::1]:8080") is compared without them.
    names = ",".join(entry.replace("[", "").replace("]", "") for entry in entries if entry)
    if not names:
        return False
    # Long-standing in urllib.request, though typeshed does not list it.
    bypass: Callable[[str, dict[str, str]], bool] = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    return bypass(f"{origin.host}:{origin.port}", {"no": names})
