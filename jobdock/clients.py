"""Supabase client factories: service role by default, or a user's access token (RLS)."""

from __future__ import annotations

from realtime import AsyncRealtimeClient
from supabase.lib.client_options import AsyncClientOptions
from supabase.types import RealtimeClientOptions

from jobdock.settings import Settings, get_settings
from supabase import AsyncClient, Client, ClientOptions, acreate_client, create_client


def _auth_headers(settings: Settings, access_token: str | None) -> dict[str, str]:
    token = access_token or settings.supabase_access_token
    return {"Authorization": f"Bearer {token}"} if token else {}


def _key(settings: Settings, access_token: str | None) -> str:
    if access_token or settings.supabase_access_token:
        return settings.supabase_anon_key
    return settings.supabase_service_role_key


def sync_client(
    settings: Settings | None = None, *, access_token: str | None = None, retry: bool = True
) -> Client:
    """A sync client for REST and Storage (the sync client has no Realtime). ``retry=False``
    turns off postgrest's own retries of failed reads (1 + 2 + 4 s): for one-shot commands,
    where a person would rather hear at once that the backend is unreachable."""
    settings = settings or get_settings()
    options = ClientOptions(
        headers=_auth_headers(settings, access_token), postgrest_client_retry=retry
    )
    return create_client(settings.supabase_url, _key(settings, access_token), options)


async def async_client(
    settings: Settings | None = None,
    *,
    access_token: str | None = None,
    realtime: RealtimeClientOptions | None = None,
) -> AsyncClient:
    """An async client; the only kind with Realtime. ``realtime``: the Realtime client's
    options (``auto_reconnect``, ``max_retries``…), when the defaults do not suit."""
    settings = settings or get_settings()
    options = AsyncClientOptions(headers=_auth_headers(settings, access_token), realtime=realtime)
    return await acreate_client(settings.supabase_url, _key(settings, access_token), options)


def realtime_client(
    settings: Settings | None = None,
    *,
    access_token: str | None = None,
    max_retries: int = 5,
    auto_reconnect: bool = True,
) -> AsyncRealtimeClient:
    """A Realtime client of its own (not connected yet), as the official client builds it:
    the key as ``apikey``, a user's access token for the channels' authorization."""
    settings = settings or get_settings()
    url = settings.supabase_url.rstrip("/") + "/realtime/v1"
    client = AsyncRealtimeClient(
        url,
        _key(settings, access_token),
        max_retries=max_retries,
        initial_backoff=0.5,
        auto_reconnect=auto_reconnect,
    )
    token = access_token or settings.supabase_access_token
    if token:
        client.access_token = token
    return client
