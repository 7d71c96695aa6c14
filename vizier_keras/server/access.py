"""Who may reach a server of this package (``vizier-keras serve`` and the dashboard): the
loopback check that decides whether a token is needed, and reading a token from a file.

Light on purpose (standard library only): the dashboard and the CLI use it without ``[local]``.
"""

from __future__ import annotations

import ipaddress

from vizier_keras.errors import StartupError

__all__ = ["is_loopback", "read_token_file"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address to bind) reaches this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_token_file(path: str) -> str:
    """The bearer token in the file at ``path`` (``--token-file`` of serve and the CLI).

    Raises:
        StartupError: The file cannot be read or does not hold one token.
    """
    try:
        with open(path, encoding="utf-8") as f:
            token = f.read().strip()
    except OSError as e:
        raise StartupError(f"the token file {path} cannot be read ({e.strerror})") from None
    if not token or any(c.isspace() for c in token):
        raise StartupError(f"the token file {path} must hold one token, without spaces")
    return token
