-- jobdock: stops and new work over Broadcast from Database.
--
-- On hosted Supabase, postgres_changes rides a per-project poller (100–500 ms) and a
-- project-wide events-per-second cap: a bulk cancel of 1,000 jobs is 1,000+ Realtime events.
-- Here SQL sends, Python never does: statement-level triggers send ONE message per affected
-- worker per statement to its private topic `jobdock:worker:<worker_id>` (event `stop`,
-- payload `{"jobs": [{id, lease_id, reason}, …]}`), and one message per statement that adds
-- or re-queues work to `jobdock:work` (event `work`, payload `{"job_types": […]}`).
-- realtime.send never fails the caller's transaction; the fences still hold without it.
-- Applies unchanged on hosted Supabase (`supabase db push`).

-- Who may use the jobdock topics: the workers (service_role bypasses RLS) and nobody else,
-- whatever other policies the project has on realtime.messages.
create policy "jobdock topics are for jobdock workers" on realtime.messages
  as restrictive for all to anon, authenticated
  using ((select realtime.topic()) not like 'jobdock:%')
  with check ((select realtime.topic()) not like 'jobdock:%');

create function public.send_job_stops(p_stops jsonb) returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  stop record;
begin
  -- p_stops: [{worker_id, id, lease_id, reason}]: one message per worker.
  for stop in
    select s->>'worker_id' as worker_id,
           jsonb_agg(jsonb_build_object('id', s->'id', 'lease_id', s->'lease_id',
                                        'reason', s->'reason') order by s->>'id') as jobs
      from jsonb_array_elements(p_stops) as s
     group by s->>'worker_id'
  loop
    perform realtime.send(jsonb_build_object('jobs', stop.jobs), 'stop',
                          'jobdock:worker:' || stop.worker_id, true);
  end loop;
end
$$;

create function public.background_jobs_send_stops() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  action text := coalesce(nullif(current_setting('jobdock.action', true), ''), '');
  stops jsonb;
begin
  -- Every processing job the statement took away from its worker: deleted, or moved out of
  -- processing (or to another lease) by anyone but that worker. A worker's own completion,
  -- failure or hand-back needs no message: it ended the attempt.
  if tg_op = 'DELETE' then
    select jsonb_agg(jsonb_build_object(
             'worker_id', o.worker_id, 'id', o.id, 'lease_id', o.lease_id, 'reason', 'deleted'))
      into stops
      from old_rows o
     where o.status = 'processing' and o.worker_id is not null;
  elsif action not in ('complete', 'fail', 'fail_permanent', 'release') then
    select jsonb_agg(jsonb_build_object(
             'worker_id', o.worker_id, 'id', o.id, 'lease_id', o.lease_id,
             'reason', case n.status when 'cancelled' then 'cancelled'
                                     when 'failed' then 'force_failed'
                                     else 'lease_lost' end))
      into stops
      from old_rows o join new_rows n on n.id = o.id
     where o.status = 'processing' and o.worker_id is not null
       and (n.status <> 'processing' or n.lease_id is distinct from o.lease_id);
  end if;
  if stops is not null then
    perform public.send_job_stops(stops);
  end if;
  return null;
end
$$;

create function public.background_jobs_send_work() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  types text[];
begin
  if tg_op = 'INSERT' then
    select array_agg(distinct job_type order by job_type) into types from new_rows;
  else  -- retried or handed back: back to pending
    select array_agg(distinct n.job_type order by n.job_type) into types
      from new_rows n join old_rows o on o.id = n.id
     where n.status = 'pending' and o.status <> 'pending';
  end if;
  if types is not null then
    perform realtime.send(jsonb_build_object('job_types', types), 'work', 'jobdock:work', true);
  end if;
  return null;
end
$$;

revoke execute on function public.send_job_stops(jsonb), public.background_jobs_send_stops(),
  public.background_jobs_send_work()
  from public, anon, authenticated;

-- A trigger with transition tables takes one event; one per statement kind.
create trigger background_jobs_stops_on_update
  after update on public.background_jobs
  referencing old table as old_rows new table as new_rows
  for each statement execute function public.background_jobs_send_stops();

create trigger background_jobs_stops_on_delete
  after delete on public.background_jobs
  referencing old table as old_rows
  for each statement execute function public.background_jobs_send_stops();

create trigger background_jobs_work_on_insert
  after insert on public.background_jobs
  referencing new table as new_rows
  for each statement execute function public.background_jobs_send_work();

create trigger background_jobs_work_on_update
  after update on public.background_jobs
  referencing old table as old_rows new table as new_rows
  for each statement execute function public.background_jobs_send_work();

create function public.jobdock_broadcast_available() returns boolean
language sql stable
set search_path = ''
as $$
  -- Whether this project can send Broadcast from Database (workers' --signals auto).
  select to_regprocedure('realtime.send(jsonb, text, text, boolean)') is not null
$$;

revoke execute on function public.jobdock_broadcast_available() from public, anon, authenticated;
grant execute on function public.jobdock_broadcast_available() to service_role;
