"""Signed-URL tokens: HS256 JWTs signed with the project's JWT secret, as Storage signs them.

* download: ``{url: "<bucket>/<key>", iat, exp}``;
* upload: ``{owner, url, upsert, scope: "upload", iat, exp}`` (``owner`` is the signer's
  ``sub``, left out when there is none).

Verifying one checks the signature, that it is a token for that action (a download token never
uploads and an upload token never downloads; Storage tells them apart by ``scope``, or for
tokens without one by the presence of ``upsert``), that it names exactly the requested object,
and that it has not expired (no clock skew allowed). A token carries no ``role``, so presented
as a bearer token elsewhere it only grants ``anon``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt

from localbase import keys
from localbase.storage.errors import expired_token, invalid_jwt, invalid_signature

_ALGORITHM = "HS256"
UPLOAD_SCOPE = "upload"
DOWNLOAD_SCOPE = "download"


@dataclass(frozen=True)
class UploadGrant:
    """What a verified upload token allows: who will own the object, and whether it may
    replace one."""

    owner: str | None
    upsert: bool


def sign(bucket: str, key: str, expires_in: int, *, now: int | None = None) -> str:
    return _encode({"url": f"{bucket}/{key}"}, expires_in, now)


def sign_upload(bucket: str, key: str, expires_in: int, *, owner: str | None, upsert: bool) -> str:
    claims: dict[str, Any] = {"url": f"{bucket}/{key}", "upsert": upsert, "scope": UPLOAD_SCOPE}
    if owner is not None:
        claims["owner"] = owner
    return _encode(claims, expires_in, None)


def _encode(claims: dict[str, Any], expires_in: int, now: int | None) -> str:
    issued = int(time.time()) if now is None else now
    claims = {**claims, "iat": issued, "exp": issued + expires_in}
    return jwt.encode(claims, keys.JWT_SECRET, algorithm=_ALGORITHM)


def verify(token: str, bucket: str, key: str) -> None:
    """Raise the Storage error for a token that does not let ``bucket/key`` be downloaded now."""
    _verify(token, bucket, key, DOWNLOAD_SCOPE)


def verify_upload(token: str, bucket: str, key: str) -> UploadGrant:
    """The grant of a token that lets ``bucket/key`` be uploaded now, or the Storage error."""
    claims = _verify(token, bucket, key, UPLOAD_SCOPE)
    owner = claims.get("owner")
    return UploadGrant(owner if isinstance(owner, str) and owner else None, bool(claims["upsert"]))


def _scope(claims: dict[str, Any]) -> str | None:
    scope = claims.get("scope")
    if scope is None:
        return UPLOAD_SCOPE if "upsert" in claims else DOWNLOAD_SCOPE
    return scope if isinstance(scope, str) else None


def _verify(token: str, bucket: str, key: str, scope: str) -> dict[str, Any]:
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
    if _scope(claims) != scope:
        raise invalid_signature(f"Token is not scoped for {scope}")
    if claims.get("url") != f"{bucket}/{key}":
        raise invalid_signature()
    expires = claims["exp"]
    if isinstance(expires, bool) or not isinstance(expires, int | float) or expires < time.time():
        raise expired_token()
    return claims
