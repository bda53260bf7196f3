"""Where Supabase is and which keys to use: environment, then ``.env``, then localbase's demo
values (so a fresh clone talks to ``make up`` with no configuration)."""

from __future__ import annotations

from functools import lru_cache

import httpx
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from jobdock.errors import InvalidSettings
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

    @field_validator("supabase_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        """An http(s) URL with a host, as httpx (REST, Storage) and websockets will read it."""
        try:
            url = httpx.URL(value)
        except (httpx.InvalidURL, ValueError) as exc:
            raise ValueError(f"{value!r} is not a URL ({exc})") from None
        if not value.startswith(("http://", "https://")) or not url.host:
            raise ValueError(f"{value!r} is not an http(s) URL; expected e.g. {LOCALBASE_URL}")
        if url.port is not None and not 0 < url.port < 65536:
            raise ValueError(f"{value!r} has no valid port (1 to 65535)")
        return value

    @field_validator("supabase_anon_key", "supabase_service_role_key")
    @classmethod
    def _key(cls, value: str) -> str:
        """Keys travel in HTTP headers: a JWT, printable ASCII with no spaces."""
        if value.isascii() and value.isprintable() and value.split() == [value]:
            return value
        raise ValueError("expected a JWT (printable ASCII, no spaces)")

    @field_validator("supabase_access_token")
    @classmethod
    def _access_token(cls, value: str | None) -> str | None:
        """An empty token is no token: act with the service role."""
        return cls._key(value) if value else None


def _describe(exc: ValidationError) -> str:
    """Each invalid setting as ``NAME: reason`` (the environment variable's name)."""
    problems = []
    for error in exc.errors():
        name = "_".join(str(part) for part in error["loc"]).upper()
        reason = error.get("ctx", {}).get("error") or error["msg"]
        problems.append(f"{name}: {reason}")
    return "; ".join(problems)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise InvalidSettings(_describe(exc)) from exc
