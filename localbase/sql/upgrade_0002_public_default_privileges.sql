-- The default privileges `supabase start` gives the API roles in schema `public`: every table,
-- sequence and function that `postgres` (a migration, Studio, psql) creates there from now on
-- is granted to anon, authenticated and service_role, so a migration written for Supabase
-- (RLS plus policies, or explicit revokes) behaves the same here. Objects that exist already
-- keep the grants they have. Applied once to every cluster, old data dirs too.
alter default privileges for role postgres in schema public
  grant all on tables to anon, authenticated, service_role;
alter default privileges for role postgres in schema public
  grant all on sequences to anon, authenticated, service_role;
alter default privileges for role postgres in schema public
  grant all on functions to anon, authenticated, service_role;
