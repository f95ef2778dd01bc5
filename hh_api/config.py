"""Keys, base URLs and overrides, read from the environment.

For a provider NAME (JOYPIX, WAVESPEED, PIXELDOJO, HIAPI):

- ``NAME_API_KEY``: the key; a provider without one cannot be used.
- ``NAME_BASE_URL``: scheme and host (``https://api.hiapi.ai``); documented paths are
  appended to it. Point it at a proxy or a test server.
- ``NAME_<MODE>_MODEL`` and ``NAME_<MODE>_PATH`` (MODE: TEXT, IMAGE, REFERENCE): replace
  the model name or path of a mode, for when a provider renames an inferred endpoint.
- ``NAME_PRICE_720P`` / ``NAME_PRICE_1080P``: credits per second (see `hh_api.pricing`).
- ``PIXELDOJO_ASPECT_RATIO_FIELD``: the wire name of PixelDojo's aspect ratio
  (``aspectRatio`` by default; its page also shows ``aspect_ratio``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from hh_api.errors import ConfigurationError
from hh_api.models import Mode

PROVIDER_NAMES = ("joypix", "wavespeed", "pixeldojo", "hiapi")
HIDDEN = "***"
# Query parameters whose value is a credential: key, api_key, token, access_token, secret,
# sig, signature, password, auth... (matched on the name, case-insensitively).
_SECRET_PARAMETER = re.compile(r"(key|token|secret|sig|signature|pass|password|auth)$", re.I)


def redact_url(url: str) -> str:
    """`url` fit to print: a password or user in it and the value of every query parameter
    that holds a credential (``key=``, ``token=``, ``api_key=``, ``secret=`` ...) become
    ``***``. Anything that does not parse as a URL is returned as it is."""
    try:
        parts = urlsplit(url)
    except ValueError:  # such as an unclosed [ in the host: show nothing of it
        return HIDDEN
    netloc = parts.netloc
    if "@" in netloc:
        credentials, host = netloc.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        netloc = f"{user}:{HIDDEN}@{host}" if ":" in credentials else f"{HIDDEN}@{host}"
    query = "&".join(
        f"{name}={HIDDEN}" if sep and _SECRET_PARAMETER.search(name) else f"{name}{sep}{value}"
        for name, sep, value in (pair.partition("=") for pair in parts.query.split("&"))
    ) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class Secret:
    """A string that never shows itself in a repr, a log line or an f-string."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class ProviderConfig:
    """How to reach one provider."""

    name: str
    api_key: Secret | None = None
    base_url: str | None = None  # None: the provider's public API
    models: Mapping[Mode, str] = field(default_factory=dict)
    paths: Mapping[Mode, str] = field(default_factory=dict)
    field_names: Mapping[str, str] = field(default_factory=dict)  # our name -> wire name

    def __post_init__(self) -> None:
        if isinstance(self.api_key, str):
            object.__setattr__(self, "api_key", Secret(self.api_key))
        if self.base_url is not None:
            object.__setattr__(self, "base_url", check_base_url(self.base_url, self.name))


def check_base_url(url: str, provider: str) -> str:
    """A base URL is a scheme and a host (and port); the documented paths follow it."""
    setting = f"{provider.upper()}_BASE_URL"
    parts = urlsplit(url.strip())
    try:
        parts.port  # noqa: B018 -- raises ValueError on a port that is not a number
    except ValueError:
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"{setting} must be an http(s) URL such as https://api.example.com, "
            f"not {redact_url(url)!r}",
            provider=provider, setting=setting,
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigurationError(
            f"{setting} must be a scheme and host only, such as https://api.example.com "
            f"(the documented paths are added to it), not {redact_url(url)!r}",
            provider=provider, setting=setting,
        )
    return f"{parts.scheme}://{parts.netloc}"


def load_providers(environ: Mapping[str, str] | None = None) -> dict[str, ProviderConfig]:
    """Every provider's settings from the environment, with or without a key."""
    env = os.environ if environ is None else environ
    configs = {}
    for name in PROVIDER_NAMES:
        prefix = name.upper()
        key = env.get(f"{prefix}_API_KEY", "").strip()
        models = {}
        paths = {}
        for mode in Mode:
            if model := env.get(f"{prefix}_{mode.name}_MODEL", "").strip():
                models[mode] = model
            if path := env.get(f"{prefix}_{mode.name}_PATH", "").strip():
                paths[mode] = path if path.startswith("/") else f"/{path}"
        configs[name] = ProviderConfig(
            name=name,
            api_key=Secret(key) if key else None,
            base_url=env.get(f"{prefix}_BASE_URL", "").strip() or None,
            models=models,
            paths=paths,
            field_names=_field_names(env, prefix),
        )
    return configs


def _field_names(env: Mapping[str, str], prefix: str) -> dict[str, str]:
    if prefix == "PIXELDOJO" and (name := env.get("PIXELDOJO_ASPECT_RATIO_FIELD", "").strip()):
        return {"aspect_ratio": name}
    return {}
