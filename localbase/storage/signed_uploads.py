"""Signed upload URLs: one caller authorizes an upload, another sends the bytes.

* ``POST /object/upload/sign/{bucket}/{key}``: authorized like an upload (the bucket exists, the
  key is valid, and the caller's role may insert the object under RLS, or upsert it with
  ``x-upsert: true``); answers ``{"url": "/object/upload/sign/<bucket>/<key>?token=…",
  "token": …}``. The token is valid for two hours, as on hosted Supabase, and records the
  signer's ``sub`` as the owner and whether the upload may replace an object.
* ``PUT /object/upload/sign/{bucket}/{key}?token=…``: no credentials; the token is the
  permission. The body is stored as Storage stores it (as service_role, owned by the signer),
  and the answer is ``{"Key": "<bucket>/<key>"}``. Whether it may replace an object comes from
  the token, not from this request's ``x-upsert`` (storage3 always sends ``x-upsert: false``
  here). As in Storage the token is not remembered: an upload token without upsert works once
  (reused, the object exists: 409 Duplicate); one with upsert may overwrite until it expires.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.responses import JSONResponse, Response

from localbase.auth import Identity
from localbase.storage import tokens
from localbase.storage.context import Call, Operation, Target
from localbase.storage.errors import invalid_request
from localbase.storage.objects import check_upload, store_upload

EXPIRES_IN_SECONDS = 2 * 60 * 60  # hosted Supabase's signed upload URL lifetime
_URL_SAFE = "/!$&'()*+,;=:@"


def upload_path(bucket: str, key: str, token: str) -> str:
    return f"/object/upload/sign/{quote(f'{bucket}/{key}', safe=_URL_SAFE)}?token={token}"


async def sign_upload(call: Call, target: Target) -> Response:
    upsert = call.request.headers.get("x-upsert") == "true"
    await check_upload(call, target, upsert=upsert, operation=Operation.SIGN_UPLOAD_URL)
    token = tokens.sign_upload(
        target.bucket, target.key, EXPIRES_IN_SECONDS, owner=call.owner_id, upsert=upsert
    )
    return JSONResponse({"url": upload_path(target.bucket, target.key, token), "token": token})


async def upload_signed(call: Call, target: Target) -> Response:
    token = call.request.query_params.get("token")
    if not token:
        raise invalid_request("querystring must have required property 'token'")
    grant = tokens.verify_upload(token, target.bucket, target.key)
    claims = {"role": "service_role"} | ({"sub": grant.owner} if grant.owner else {})
    signer = Call(call.request, Identity("service_role", claims), call.db, call.files)
    await store_upload(
        signer, target, upsert=grant.upsert, operation=Operation.UPLOAD_SIGNED_OBJECT
    )
    return JSONResponse({"Key": f"{target.bucket}/{target.key}"})
