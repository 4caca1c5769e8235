"""Web origins as a browser writes them in its ``Origin`` header, for the CORS list of settings."""

from __future__ import annotations

import re

_HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_ORIGIN = re.compile(
    rf"(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<host>{_HOST_LABEL}(?:\.{_HOST_LABEL})*|\[[0-9a-f:.]+\])"
    r"(?::(?P<port>[0-9]{1,5}))?",
    re.IGNORECASE,
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def browser_origin(text: str) -> str:
    """``text`` as a browser writes it in its ``Origin`` header, which is compared exactly:
    scheme and host in lower case, no default port. Anything else is a ValueError."""
    match = _ORIGIN.fullmatch(text)
    port = int(match["port"]) if match and match["port"] else None
    if match is None or (port is not None and not 0 < port < 65536):
        raise ValueError(
            f"{text!r} is not an origin: write scheme://host[:port] with nothing after "
            "it, not even a trailing /"
        )
    scheme, host = match["scheme"].lower(), match["host"].lower()
    if port is None or port == _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"
