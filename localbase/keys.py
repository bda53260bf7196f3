"""The demo JWT secret and API keys that ``supabase start`` uses, so clients need no changes."""

from typing import Final

JWT_SECRET: Final = "super-secret-jwt-token-with-at-least-32-characters-long"

ANON_KEY: Final = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9."
    "CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0"
)
SERVICE_ROLE_KEY: Final = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9sZSIsImV4cCI6MTk4MzgxMjk5Nn0."
    "EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU"
)
PUBLISHABLE_KEY: Final = "sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH"
SECRET_KEY: Final = "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz"

#: Opaque ``sb_…`` keys are turned into these JWTs by the gateway, as Supabase's Kong does.
OPAQUE_KEYS: Final = {PUBLISHABLE_KEY: ANON_KEY, SECRET_KEY: SERVICE_ROLE_KEY}
