"""Signed CDN links, as Discord gives them: ``?ex=&is=&hm=``, valid for about 24 hours.

``is`` is when the link was issued and ``ex`` when it expires (both Unix seconds, in
hex), ``hm`` a signature over the path and both times. The CDN answers 404 ("This
content is no longer available.") for an expired, unsigned or tampered link, measured
on the fake's clock; ``POST /attachments/refresh-urls`` gives fresh links.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from urllib.parse import urlsplit

from tests.fakes.discord.clock import FakeClock

LINK_LIFETIME = 24 * 3600.0
REFRESH_MAX = 50  # attachment_urls per refresh request


class CdnSigner:
    """Signs and checks the fake CDN's links."""

    def __init__(self, clock: FakeClock, lifetime: float = LINK_LIFETIME) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self._secret = secrets.token_bytes(16)

    def sign(self, url: str) -> str:
        """``url`` (without a query) signed as of now."""
        base = url.split("?", 1)[0]
        issued = int(self.clock.now())
        expires = int(issued + self.lifetime)
        mac = self._mac(urlsplit(base).path, expires, issued)
        return f"{base}?ex={expires:x}&is={issued:x}&hm={mac}&"

    def problem(self, path: str, query: Mapping[str, str]) -> str | None:
        """Why a link to ``path`` with ``query`` is refused, or None if it is valid now."""
        try:
            expires, issued = int(query["ex"], 16), int(query["is"], 16)
        except (KeyError, ValueError):
            return "unsigned"
        if not hmac.compare_digest(self._mac(path, expires, issued), query.get("hm", "")):
            return "bad signature"
        if self.clock.now() >= expires:
            return "expired"
        return None

    def _mac(self, path: str, expires: int, issued: int) -> str:
        message = f"{path}|{expires:x}|{issued:x}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()
