-- Batched worker writes: one round trip for many jobs instead of one per job.
--   * progress: a worker writes the latest progress of all its running jobs together;
--   * stop records: a worker that stops many jobs at once (a bulk cancel, a shutdown)
--     records their `stopped` events together.

create function public.report_progress_many(p_items jsonb)
returns setof uuid
language sql volatile
set search_path = ''
as $$
  -- Fenced like report_progress. Rows locked by a concurrent transition (a cancel, a bulk
  -- cancel, a completion) are skipped rather than waited for: no deadlock with a bulk update,
  -- and the caller re-reads the states of the jobs that were not written.
  with items as (
    select distinct on ((item->>'id')::uuid)
           (item->>'id')::uuid as id, (item->>'lease_id')::uuid as lease_id,
           coalesce(item->'progress', '{}'::jsonb) as progress
    from jsonb_array_elements(p_items) as t(item)
  ), mine as (
    select j.id, items.progress
    from public.background_jobs j
    join items on items.id = j.id and items.lease_id = j.lease_id
    where j.status = 'processing'
    order by j.id
    for update of j skip locked
  )
  update public.background_jobs j
     set progress = mine.progress, heartbeat_at = now()
    from mine
   where j.id = mine.id
  returning j.id
$$;

comment on function public.report_progress_many(jsonb) is
  'Worker: fenced progress of many jobs; items are {id, lease_id, progress}; returns the ids written.';

revoke execute on function public.report_progress_many(jsonb) from public, anon, authenticated;
grant execute on function public.report_progress_many(jsonb) to service_role;

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
