-- The extensions a Supabase project has enabled from the start, in schema `extensions`, and
-- that schema on the search_path of `postgres`, as Supabase sets it (the API roles get theirs
-- per request: the exposed schema, then `[api] extra_search_path`). Other contrib modules
-- (pg_trgm, citext, hstore, ltree, …) are available to `create extension`.
-- pgcrypto and uuid-ossp are localbase's SQL stand-ins (localbase/contrib).
create extension if not exists "uuid-ossp" with schema extensions;
create extension if not exists pgcrypto with schema extensions;
create extension if not exists pg_stat_statements with schema extensions;

alter role postgres set search_path = "$user", public, extensions;
