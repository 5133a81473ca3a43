"""Who may talk to the server. It binds 127.0.0.1 unless told otherwise; any other address needs a bearer
token (read from an environment variable or a file, never from the command line, where `ps` shows it)
unless the operator says `--insecure-no-auth`. With a token set, every endpoint but `GET /health` wants
`Authorization: Bearer <token>`; tokens are compared in constant time."""

from __future__ import annotations

import hmac
import ipaddress
import os
from pathlib import Path

TOKEN_ENV = "RM_SERVE_TOKEN"
OPEN_PATHS = frozenset({"/health"})  # load balancers probe it without credentials


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and "localhost"; "0.0.0.0", "::" and every other address or name are not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def read_token(env: str = TOKEN_ENV, file: str | None = None) -> str | None:
    """The token from `file` (its first line) or else the environment variable `env`; None when neither."""
    if file is not None:
        token = Path(file).read_text(encoding="utf-8").strip().splitlines()
        if not token or not token[0].strip():
            raise ValueError(f"--token-file {file} is empty")
        return token[0].strip()
    value = os.environ.get(env, "").strip()
    return value or None


def check_bind(host: str, token: str | None, insecure_no_auth: bool) -> None:
    """Refuse to serve a non-loopback address without a token, unless the operator opted out."""
    if is_loopback(host) or token is not None or insecure_no_auth:
        return
    raise ValueError(
        f"--host {host} is reachable from other machines: set a bearer token (environment variable "
        f"{TOKEN_ENV} or --token-file), or pass --insecure-no-auth to serve without one"
    )


def authorized(authorization: str | None, token: str | None) -> bool:
    """Whether an Authorization header carries the token (always, when no token is set)."""
    if token is None:
        return True
    if not authorization:
        return False
    scheme, _, credentials = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), token.encode())


__all__ = ["OPEN_PATHS", "TOKEN_ENV", "authorized", "check_bind", "is_loopback", "read_token"]
