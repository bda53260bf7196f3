"""Which schemas ``/rest/v1`` exposes, read from the project's ``supabase/config.toml``.

``[api] schemas`` lists the exposed schemas (the first is the default; a request picks another
with ``Accept-Profile`` for GET/HEAD and ``Content-Profile`` otherwise, as ``postgrest-py``'s
``.schema()`` does); a schema not listed is PostgREST's **406 PGRST106**. ``[api]
extra_search_path`` is what follows the request's schema on its ``search_path`` (PostgREST's
``db-extra-search-path``; the CLI's default is ``public, extensions``). A missing file or
``[api]`` table gives the CLI's defaults.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.responses import Response

from localbase.db import DEFAULT_EXTRA_SEARCH_PATH
from localbase.errors import LocalbaseError
from localbase.rest.errors import RestError

DEFAULT_CONFIG = Path("supabase/config.toml")  # relative to the project, as the CLI's paths
DEFAULT_SCHEMAS = ("public", "graphql_public")


class ConfigError(LocalbaseError, ValueError):
    """``supabase/config.toml`` cannot be read or its ``[api]`` settings are not valid; the
    CLI prints it and exits with status 1, as for a failed migration."""


@dataclass(frozen=True)
class Exposure:
    schemas: tuple[str, ...] = DEFAULT_SCHEMAS
    extra_search_path: tuple[str, ...] = DEFAULT_EXTRA_SEARCH_PATH

    @classmethod
    def from_config(cls, path: Path = DEFAULT_CONFIG) -> Exposure:
        try:
            with path.open("rb") as handle:
                config = tomllib.load(handle)
        except FileNotFoundError:
            return cls()
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        api = config.get("api", {})
        if not isinstance(api, dict):
            raise ConfigError(f"{path}: [api] must be a table")
        return cls(
            _names(api, "schemas", DEFAULT_SCHEMAS, path),
            _names(api, "extra_search_path", DEFAULT_EXTRA_SEARCH_PATH, path),
        )

    def schema(self, method: str, headers: Any) -> str:
        """The schema a request names in its profile header, or the default one."""
        header = "accept-profile" if method in {"GET", "HEAD"} else "content-profile"
        schema: str = headers.get(header, self.schemas[0])
        if schema not in self.schemas:
            raise RestError(
                406,
                "PGRST106",
                f"Invalid schema: {schema}",
                hint="Only the following schemas are exposed: " + ", ".join(self.schemas),
            )
        return schema

    def label(self, method: str, headers: Any, response: Response) -> Response:
        """``Content-Profile`` on a successful answer to a request that named its schema,
        as PostgREST sends it when more than one schema is exposed."""
        header = "accept-profile" if method in {"GET", "HEAD"} else "content-profile"
        schema = headers.get(header)
        if schema is not None and len(self.schemas) > 1 and response.status_code < 400:
            response.headers["Content-Profile"] = schema
        return response


def _names(api: dict[str, Any], key: str, default: tuple[str, ...], path: Path) -> tuple[str, ...]:
    value = api.get(key)
    if value is None:
        return default
    if (
        not isinstance(value, list)
        or not all(isinstance(v, str) and v and '"' not in v and "\0" not in v for v in value)
        or (key == "schemas" and not value)
    ):
        raise ConfigError(f"{path}: [api] {key} must be a list of schema names")
    return tuple(value)
