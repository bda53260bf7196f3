"""Supabase client factories: service role by default, or a user's access token (RLS)."""

from __future__ import annotations

from realtime import AsyncRealtimeClient
from supabase.lib.client_options import AsyncClientOptions

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
) -> AsyncClient:
    """An async client for REST and Storage (Realtime: ``realtime_client``)."""
    settings = settings or get_settings()
    options = AsyncClientOptions(headers=_auth_headers(settings, access_token))
    return await acreate_client(settings.supabase_url, _key(settings, access_token), options)


def realtime_client(
    settings: Settings | None = None,
    *,
    access_token: str | None = None,
    max_retries: int = 5,
    auto_reconnect: bool = True,
) -> AsyncRealtimeClient:
    """A Realtime client of its own (not connected yet) for the configured project."""
    settings = settings or get_settings()
    return realtime_connection(
        settings.supabase_url,
        _key(settings, access_token),
        access_token=access_token or settings.supabase_access_token,
        max_retries=max_retries,
        auto_reconnect=auto_reconnect,
    )


def realtime_connection(
    url: str,
    key: str,
    *,
    access_token: str | None = None,
    max_retries: int = 5,
    auto_reconnect: bool = True,
) -> AsyncRealtimeClient:
    """A Realtime client (not connected yet) as the official client builds it: the key as
    ``apikey``, a user's access token for the channels' authorization. ``url``: the project's,
    or its Realtime endpoint's (a proxy, say)."""
    if not url.rstrip("/").endswith("/realtime/v1"):
        url = url.rstrip("/") + "/realtime/v1"
    client = AsyncRealtimeClient(
        url, key, max_retries=max_retries, initial_backoff=0.5, auto_reconnect=auto_reconnect
    )
    if access_token:
        client.access_token = access_token
    return client
