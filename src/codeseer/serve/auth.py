"""Who may bind where: loopback needs nothing, any other address needs a bearer token."""

from __future__ import annotations

import ipaddress
import os

from codeseer.errors import CodeseerError

TOKEN_ENV = "CODESEER_TOKEN"


def is_loopback(host: str) -> bool:
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_token(token: str | None, host: str) -> str | None:
    """The token to require: ``--token`` or ``$CODESEER_TOKEN``; mandatory off loopback."""
    token = token or os.environ.get(TOKEN_ENV) or None
    if token is not None and not token.strip():
        token = None
    if token is None and not is_loopback(host):
        raise CodeseerError(
            f"refusing to serve on {host} without authentication: pass --token or set {TOKEN_ENV} "
            "(or bind to 127.0.0.1)"
        )
    return token
