"""Storage's own routes never fall into the generic object routes (``POST /object/upload/sign/…``
is never an upload into bucket ``upload``); those localbase does not take answer Storage's 404."""

from __future__ import annotations

import httpx

from devstack.localbase import LocalbaseProcess
from supabase import Client


def test_unknown_routes_never_write_into_another_bucket(
    localbase: LocalbaseProcess, service_client: Client
) -> None:
    storage = service_client.storage
    storage.create_bucket("upload")
    try:
        headers = {
            "apikey": localbase.service_key,
            "Authorization": f"Bearer {localbase.service_key}",
        }
        base = f"{localbase.url}/storage/v1"
        signed = httpx.post(f"{base}/object/upload/sign/docs/a.txt", content=b"x", headers=headers)
        assert signed.json()["message"] == "Bucket not found"  # the signing route's own answer
        listed = httpx.post(f"{base}/object/list-v2/docs", json={}, headers=headers)
        assert listed.json() == {"hasNext": False, "folders": [], "objects": []}
        read = httpx.get(f"{base}/object/upload/sign/a.txt", headers=headers)
        listed_by_get = httpx.get(f"{base}/object/list-v2/docs", headers=headers)
        for response in (read, listed_by_get):
            assert response.status_code == 404
            assert response.json()["error"] == "Not Found"
        assert storage.from_("upload").list("sign/docs") == []
    finally:
        storage.empty_bucket("upload")
        storage.delete_bucket("upload")
