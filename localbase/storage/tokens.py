"""Signed-URL tokens: an HS256 JWT over ``{url: "<bucket>/<key>", iat, exp}``.

Signed with the project's JWT secret, as Storage does; verifying one checks the signature, that
it names exactly the requested object, and that it has not expired (no clock skew allowed).
The token carries no ``role``, so presented as a bearer token elsewhere it only grants ``anon``.
"""

from __future__ import annotations

import time

import jwt

from localbase import keys
from localbase.storage.errors import expired_token, invalid_jwt, invalid_signature

_ALGORITHM = "HS256"


def sign(bucket: str, key: str, expires_in: int, *, now: int | None = None) -> str:
    issued = int(time.time()) if now is None else now
    claims = {"url": f"{bucket}/{key}", "iat": issued, "exp": issued + expires_in}
    return jwt.encode(claims, keys.JWT_SECRET, algorithm=_ALGORITHM)


def verify(token: str, bucket: str, key: str) -> None:
    """Raise the Storage error for a token that does not grant ``bucket/key`` right now."""
    try:
        claims = jwt.decode(
            token,
            keys.JWT_SECRET,
            algorithms=[_ALGORITHM],
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "verify_aud": False,
                "require": ["exp"],
            },
        )
    except jwt.PyJWTError as exc:
        raise invalid_jwt(str(exc)) from exc
    if claims.get("url") != f"{bucket}/{key}":
        raise invalid_signature()
    expires = claims["exp"]
    if isinstance(expires, bool) or not isinstance(expires, int | float) or expires < time.time():
        raise expired_token()
