"""JWT checks exactly as Supabase Realtime does them (spec ``realtime.md`` §1.4, §2.5(a), §7.1).

Realtime is stricter than PostgREST: no clock skew, ``role`` and ``exp`` are required, and
every failure has its own text. :class:`TokenError` carries both forms used on the wire: the
HTTP body of a refused upgrade and the ``Code: text`` reason of a refused join.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote

import jwt

from localbase import keys, strict_json
from localbase.auth import MAX_TOKEN_BYTES

_HS_ALGORITHMS: Final = ("HS256", "HS384", "HS512")
_WHITESPACE: Final = re.compile(r"\s")


class TokenError(Exception):
    """A token was refused. ``reason`` is the join-error text, ``http_error`` the upgrade body."""

    def __init__(
        self,
        code: str,
        message: str,
        http_error: str,
        *,
        http_status: int = 401,
        shutdown_message: str | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}" if code else message)
        self.code = code
        self.message = message
        self.http_error = http_error
        self.http_status = http_status
        self.shutdown_message = shutdown_message if shutdown_message is not None else message

    @property
    def reason(self) -> str:
        """What a refused ``phx_join`` carries in ``response.reason``."""
        return f"{self.code}: {self.message}" if self.code else self.message


def _malformed() -> TokenError:
    return TokenError(
        "MalformedJWT",
        "The token provided is not a valid JWT",
        "The token provided is not a valid JWT",
    )


def _unknown(shutdown_message: str) -> TokenError:
    return TokenError(
        "",
        "Unknown Error on Channel",
        "Error connecting to Realtime",
        http_status=500,
        shutdown_message=shutdown_message,
    )


def missing_api_key() -> TokenError:
    return TokenError("", "API key is missing", "API key is missing")


@dataclass(frozen=True)
class Claims:
    """Verified claims of a token that has ``role`` and an integer ``exp``."""

    token: str
    values: Mapping[str, Any]

    @functools.cached_property
    def role(self) -> str:
        return str(self.values["role"])

    @property
    def exp(self) -> int:
        return int(self.values["exp"])

    @functools.cached_property
    def json(self) -> str:
        """The claims as ``request.jwt.claims`` gets them."""
        return json.dumps(dict(self.values), separators=(",", ":"))


def clean(token: str) -> str:
    """URL-decode and strip all whitespace, as the server does before verifying."""
    return _WHITESPACE.sub("", unquote(token))


def socket_token(raw: str | None) -> str:
    """The JWT a socket authenticates with; opaque ``sb_`` keys become their demo JWTs."""
    if raw is None:
        raise missing_api_key()
    return keys.OPAQUE_KEYS.get(raw, raw)


def verify(token: str, secret: str = keys.JWT_SECRET, *, now: float | None = None) -> Claims:
    """Signature, ``exp``/``iat`` validity, then the required ``role`` and ``exp`` claims."""
    if len(token) > MAX_TOKEN_BYTES:
        text = f"The token is longer than {MAX_TOKEN_BYTES} bytes"
        raise TokenError("MalformedJWT", text, text)
    token = clean(token)
    header = _segment(token, 0)
    _segment(token, 1)
    algorithm = header.get("alg")
    if algorithm not in _HS_ALGORITHMS:
        raise TokenError(
            "JwtSignerError",
            "Failed to generate JWT signer, check your JWT secret or JWKS configuration",
            "Failed to generate JWT signer, check your JWT secret or JWKS configuration",
        )
    claims = _signed_claims(token, secret, str(algorithm))
    _check_times(claims, int(now if now is not None else time.time()))
    if "role" not in claims or "exp" not in claims:
        text = "Fields `role` and `exp` are required in JWT"
        raise TokenError("InvalidJWTToken", text, text)
    if not isinstance(claims["exp"], int):
        raise _unknown(repr(claims["exp"]))
    try:
        strict_json.check_strings(claims)
    except strict_json.JsonInputError:
        raise _malformed() from None
    return Claims(token, claims)


def _segment(token: str, index: int) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        raise _malformed()
    try:
        padded = parts[index] + "=" * (-len(parts[index]) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise _malformed() from None
    if not isinstance(value, dict):
        raise _unknown(":expected_claims_map")
    return value


def _signed_claims(token: str, secret: str, algorithm: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[algorithm],
            options={
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "verify_iss": False,
                "verify_sub": False,
                "verify_jti": False,
            },
        )
    except jwt.InvalidSignatureError:
        raise TokenError(
            "JwtSignatureError",
            "Failed to validate JWT signature",
            "Failed to validate JWT signature",
            shutdown_message=":signature_error",
        ) from None
    except jwt.PyJWTError:
        raise _malformed() from None
    for name in ("exp", "iat"):
        if isinstance(claims.get(name), float):
            claims[name] = round(claims[name])
    return claims


def _check_times(claims: Mapping[str, Any], now: int) -> None:
    exp = claims.get("exp")
    if exp is not None and not (
        isinstance(exp, int | float) and not isinstance(exp, bool) and exp > now
    ):
        if isinstance(exp, int) and not isinstance(exp, bool):
            text = f"Token has expired {now - exp} seconds ago"
            raise TokenError("InvalidJWTToken", text, "Token has expired")
        raise _unknown("invalid exp claim")
    iat = claims.get("iat")
    if iat is not None and not (isinstance(iat, int | float) and not isinstance(iat, bool)):
        raise _unknown("invalid iat claim")
