"""Signing in to the console with an API key.

The key is checked like a bearer key (`api.deps.authenticate`) and kept in an HttpOnly,
SameSite=Strict cookie scoped to ``/console``: the browser sends it only to the console,
page scripts cannot read it, and another site cannot make the browser post with it.
"""

from __future__ import annotations

from fastapi import Request

from api.deps import KeyCache, KeyInfo
from api.errors import Unauthenticated
from api.security import key_hash
from api.state import Services

COOKIE = "wzc_console"
LANG_COOKIE = "wzc_lang"
PATH = "/console"


def resolve(request: Request, services: Services, raw: str | None) -> KeyInfo:
    """The key behind ``raw`` (cookie or form); `Unauthenticated` if none or unknown."""
    if not raw:
        raise Unauthenticated("api_key", "signed_in", "sign in with an API key")
    digest = key_hash(raw.strip())
    cache: KeyCache = request.app.state.key_cache
    info = cache.known(services, digest)
    if info is None:
        raise Unauthenticated("api_key", "known_key", "the API key is unknown or revoked")
    request.state.key = info
    return info
