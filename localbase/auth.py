"""Who is asking: API-key gateway rules and JWT verification, shared by REST, Storage, Realtime.

The gateway part follows hosted Supabase (spec ``postgrest.md`` §1–2): a request needs an API
key (header ``apikey`` or ``?apikey=``); opaque ``sb_…`` keys become the matching demo JWT.
The JWT part follows PostgREST (§5.1): HS256/384/512 with the project secret, 30 s clock skew,
the ``role`` claim picks the database role (``anon`` when absent).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from localbase import keys, strict_json
from localbase.claims_cache import ClaimsCache

CLOCK_SKEW = 30
#: A JWT longer than this is refused unread; gateways refuse such headers too.
MAX_TOKEN_BYTES = 8 * 1024
_ALGORITHMS = ["HS256", "HS384", "HS512"]
_cache = ClaimsCache(max_entries=1024, max_bytes=4 * 1024 * 1024)


@dataclass(frozen=True)
class Identity:
    """The database role a request runs as, and the JWT claims it carries."""

    role: str
    claims: Mapping[str, Any]

    @classmethod
    def anonymous(cls) -> Identity:
        return cls("anon", {"role": "anon"})


class AuthError(Exception):
    """A credential was refused. ``code`` is PostgREST's (PGRST301/PGRST303)."""

    def __init__(self, message: str, code: str = "PGRST301") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class ClaimTextError(Exception):
    """A claim holds text PostgreSQL cannot take (NUL, an unpaired surrogate): a 400, as
    PostgREST answers when PostgreSQL refuses the role or claims it publishes."""

    def __init__(self, sqlstate: str, message: str, detail: str | None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.message = message
        self.detail = detail


class ApiKeyError(Exception):
    """The gateway refused the API key (hosted Supabase's Kong rules)."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def decode(token: str, secret: str = keys.JWT_SECRET) -> dict[str, Any]:
    """Verify a JWT's signature and time claims; return its claims."""
    if len(token) > MAX_TOKEN_BYTES:
        raise AuthError(
            f"JWT is {len(token)} bytes long; tokens of more than {MAX_TOKEN_BYTES} bytes "
            "are refused"
        )
    claims = _cache.get(token, secret)
    if claims is None:
        claims = _verified_claims(token, secret)
        _cache.put(token, secret, claims)
    _check_times(claims)
    return claims


def _verified_claims(token: str, secret: str) -> dict[str, Any]:
    """Signature check (time claims are checked on every use, cached or not)."""
    if token == "":
        raise AuthError("Empty JWT is sent in Authorization header")
    parts = token.split(".")
    if len(parts) != 3:
        raise AuthError(f"Expected 3 parts in JWT; got {len(parts)}")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=_ALGORITHMS,
            options={
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
            },
        )
    except jwt.InvalidSignatureError as exc:
        raise AuthError("No suitable key or wrong key type") from exc
    except jwt.InvalidAlgorithmError as exc:
        raise AuthError("No suitable key or wrong key type") from exc
    except jwt.PyJWTError as exc:
        raise AuthError(f"JWT cryptographic operation failed: {exc}") from exc
    if not isinstance(claims, dict):
        raise AuthError("The JWT payload must be a JSON object")
    try:
        strict_json.check_strings(claims)
    except strict_json.JsonInputError as exc:
        raise ClaimTextError(exc.sqlstate or "22P02", exc.message, exc.detail) from exc
    return claims


def _check_times(claims: Mapping[str, Any]) -> None:
    now = time.time()
    for name in ("exp", "nbf", "iat"):
        if name in claims and not isinstance(claims[name], int | float):
            raise AuthError(f"The JWT '{name}' claim must be a number", "PGRST303")
    if "exp" in claims and now - CLOCK_SKEW >= claims["exp"]:
        raise AuthError("JWT expired", "PGRST303")
    if "nbf" in claims and now + CLOCK_SKEW < claims["nbf"]:
        raise AuthError("JWT not yet valid", "PGRST303")
    if "iat" in claims and now + CLOCK_SKEW < claims["iat"]:
        raise AuthError("JWT issued at future", "PGRST303")


def identity_from_claims(claims: Mapping[str, Any]) -> Identity:
    role = claims.get("role", "anon")
    if not isinstance(role, str):
        raise AuthError("The JWT 'role' claim must be a string", "PGRST303")
    return Identity(role, {**claims, "role": role})


def api_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str:
    """The request's API key, checked as hosted Supabase's gateway does."""
    key = headers.get("apikey") or query.get("apikey")
    if not key:
        raise ApiKeyError(
            "No API key found in request", "No `apikey` request header or url param was found."
        )
    if key in keys.OPAQUE_KEYS:
        return key
    try:
        decode(key)
    except AuthError as exc:
        raise ApiKeyError(
            "Invalid API key", "Double check your Supabase `anon` or `service_role` API key."
        ) from exc
    return key


def bearer_token(headers: Mapping[str, str], key: str) -> str | None:
    """The JWT the request runs with: ``Authorization`` unless it carries an opaque key."""
    header = headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and not token.startswith("sb_"):
            return token.strip()
        if scheme.lower() != "bearer":
            return None
    return keys.OPAQUE_KEYS.get(key, key)


def request_identity(headers: Mapping[str, str], query: Mapping[str, str]) -> Identity:
    """Gateway check, then the PostgREST role resolution."""
    token = bearer_token(headers, api_key(headers, query))
    if token is None:
        return Identity.anonymous()
    return identity_from_claims(decode(token))
