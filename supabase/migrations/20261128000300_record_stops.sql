-- Batched stop records: a worker that stops many jobs at once (a bulk cancel, a shutdown)
-- records their `stopped` events in one call instead of one round trip per job.

create function public.record_stops(p_worker_id text, p_items jsonb)
returns integer
language sql volatile
set search_path = ''
as $$
  with items as (
    select (item->>'id')::uuid as job_id,
           item->>'reason' as reason,
           (item->>'stopped_at')::timestamptz as stopped_at,
           coalesce(item->'detail', '{}'::jsonb) as detail,
           position
    from jsonb_array_elements(p_items) with ordinality as t(item, position)
  ), recorded as (
    insert into public.job_events (job_id, user_id, event, worker_id, detail)
    select items.job_id,
           coalesce(
             (select j.user_id from public.background_jobs j where j.id = items.job_id),
             (select e.user_id from public.job_events e
               where e.job_id = items.job_id order by e.id limit 1)),
           'stopped', p_worker_id,
           items.detail || jsonb_build_object('reason', items.reason,
                                              'stopped_at', items.stopped_at)
    from items
    order by items.position
    returning 1
  )
  select count(*)::integer from recorded
$$;

comment on function public.record_stops(text, jsonb) is
  'Worker: record many `stopped` events at once; items are {id, reason, stopped_at, detail}.';

revoke execute on function public.record_stops(text, jsonb) from public, anon, authenticated;
grant execute on function public.record_stops(text, jsonb) to service_role;
