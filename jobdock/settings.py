"""Where Supabase is and which keys to use: environment, then ``.env``, then localbase's demo
values (so a fresh clone talks to ``make up`` with no configuration)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from localbase import keys

LOCALBASE_URL = "http://127.0.0.1:54321"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    supabase_url: str = Field(default=LOCALBASE_URL)
    supabase_anon_key: str = Field(default=keys.ANON_KEY)
    supabase_service_role_key: str = Field(default=keys.SERVICE_ROLE_KEY, repr=False)
    #: A user's JWT: act as that user (RLS applies) instead of with the service role.
    supabase_access_token: str | None = Field(default=None, repr=False)
    documents_bucket: str = "documents"
    upload_limit_bytes: int = 50 * 1024 * 1024


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
