-- jobdock: jobs that are safe to run.
--
-- * Documents belong to their owner: a process_document job may only name a file in its
--   owner's folder of the `documents` bucket (ownerless jobs: the `service/` folder, which no
--   user can name). Refused where jobs are written; the worker checks again before it reads.
-- * Job types are registered by the workers that handle them; enqueueing a type that no
--   worker ever registered is refused unless forced.
-- * Permanent failures (an unreadable document, an unknown job type) are final: no retry.
-- * Two attempts of one job never run at once: a job taken away from a running worker (cancel,
--   force fail, a Studio edit) is not claimed again until that worker has recorded its stop,
--   or stopped heartbeating.
-- * A document's chunks may be written in parts before the completion, so a completion never
--   has to fit in one request; parts of an attempt that does not complete are removed.
-- Applies unchanged on hosted Supabase (`supabase db push`).

-- Job types ------------------------------------------------------------------------------------
create table public.job_types (
    name text primary key check (length(name) between 1 and 200),
    registered_at timestamptz not null default now(),
    last_seen_at timestamptz not null default now()
);

comment on table public.job_types is
  'Job types some worker has registered (its handlers); jobs of other types are refused unless forced.';

alter table public.job_types enable row level security;
revoke all on public.job_types from anon, authenticated;
grant select, insert, update, delete on public.job_types to service_role;
create policy "signed-in users see the job types" on public.job_types
  for select to authenticated using (true);
grant select on public.job_types to authenticated;

-- The handlers jobdock ships; other types are added by the first worker that handles them.
insert into public.job_types (name)
values ('process_document'), ('demo.sleep'), ('demo.noop'), ('demo.blocking'),
       ('demo.stubborn'), ('demo.fail')
on conflict (name) do nothing;

create function public.worker_heartbeat(
    p_worker_id text, p_lease_seconds real default 30, p_job_types text[] default null,
    p_hostname text default null, p_pid integer default null, p_handlers text[] default null
) returns timestamptz
language plpgsql volatile
set search_path = ''
as $$
declare beat timestamptz;
begin
  -- p_handlers: the job types this worker runs (its registration); p_job_types: kept for
  -- callers of the older signature.
  insert into public.job_workers as w (id, lease_seconds, job_types, hostname, pid)
  values (p_worker_id, p_lease_seconds, coalesce(p_handlers, p_job_types), p_hostname, p_pid)
  on conflict (id) do update
    set heartbeat_at = now(), lease_seconds = excluded.lease_seconds,
        job_types = excluded.job_types, hostname = excluded.hostname, pid = excluded.pid
  returning w.heartbeat_at into beat;
  if p_handlers is not null then
    insert into public.job_types as t (name)
    select distinct h from unnest(p_handlers) as h where h is not null and length(h) between 1 and 200
    on conflict (name) do update set last_seen_at = now()
      where t.last_seen_at < now() - interval '1 minute';
  end if;
  return beat;
end
$$;

drop function public.worker_heartbeat(text, real, text[], text, integer);

revoke execute on function public.worker_heartbeat(text, real, text[], text, integer, text[])
  from public, anon, authenticated;
grant execute on function public.worker_heartbeat(text, real, text[], text, integer, text[])
  to service_role;

comment on column public.job_workers.job_types is 'The job types this worker runs.';

-- Documents belong to their owner -------------------------------------------------------------
create function public.document_job_refusal(p_owner uuid, p_input jsonb) returns text
language plpgsql stable
set search_path = ''
as $$
declare
  bucket text := p_input->>'bucket';
  path text := p_input->>'path';
  folder text := coalesce(p_owner::text, 'service');
begin
  -- Why a process_document job with this owner and input may not run (null: it may).
  -- Mirrors the `documents` bucket's policies: users read only their own folder.
  if jsonb_typeof(p_input->'bucket') is distinct from 'string'
     or jsonb_typeof(p_input->'path') is distinct from 'string' then
    return 'a process_document job needs the document''s Storage "bucket" and "path"';
  end if;
  if bucket <> 'documents' then
    return format('process_document reads only the "documents" bucket, not %s', quote_literal(bucket));
  end if;
  if path like '/%' or path ~ '(^|/)\.\.?(/|$)' or path ~ '[\x00-\x1f]' then
    return format('%s is not a valid document path', quote_literal(path));
  end if;
  if split_part(path, '/', 1) is distinct from folder or path not like '%/%' then
    return format('document %s is not in the job owner''s folder %s of the "documents" bucket',
                  quote_literal(path), quote_literal(folder || '/'));
  end if;
  return null;
end
$$;

revoke execute on function public.document_job_refusal(uuid, jsonb) from public, anon, authenticated;
grant execute on function public.document_job_refusal(uuid, jsonb) to service_role;

comment on function public.document_job_refusal is
  'Why a process_document job may not read the document it names (null: it may). Users: their own folder; ownerless jobs: service/.';

-- Checks on every job written, from any client (dock, CLI, REST, Studio) -------------------------
create function public.background_jobs_check() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  refusal text;
begin
  if tg_op = 'INSERT'
     and coalesce(current_setting('jobdock.force', true), '') <> 'on'
     and not exists (select 1 from public.job_types t where t.name = new.job_type) then
    raise exception 'no worker handles job type %', quote_literal(new.job_type)
      using errcode = 'check_violation',
            hint = 'Check the name, or start a worker that handles it. To queue it anyway: '
                   || 'jobdock enqueue --force, or enqueue_job(..., p_force => true).';
  end if;
  if new.job_type = 'process_document' and (
       tg_op = 'INSERT' or new.input_data is distinct from old.input_data
       or new.user_id is distinct from old.user_id or new.job_type is distinct from old.job_type) then
    refusal := public.document_job_refusal(new.user_id, new.input_data);
    if refusal is not null then
      raise exception '%', refusal
        using errcode = 'check_violation',
              hint = format('Upload the document into %s of the "documents" bucket.',
                            quote_literal(coalesce(new.user_id::text, 'service') || '/'));
    end if;
  end if;
  return new;
end
$$;

revoke execute on function public.background_jobs_check from public, anon, authenticated;

create trigger background_jobs_check
  before insert or update of job_type, input_data, user_id on public.background_jobs
  for each row execute function public.background_jobs_check();

create function public.enqueue_job(
    p_job_type text, p_input jsonb default '{}'::jsonb, p_max_retries integer default 3,
    p_retry_backoff_seconds real default 2, p_force boolean default false
) returns public.background_jobs
language plpgsql volatile
set search_path = ''
as $$
declare job public.background_jobs;
begin
  if p_force then
    perform set_config('jobdock.force', 'on', true);
  end if;
  insert into public.background_jobs (job_type, input_data, max_retries, retry_backoff_seconds, user_id)
  values (p_job_type, coalesce(p_input, '{}'::jsonb), p_max_retries, p_retry_backoff_seconds, auth.uid())
  returning * into job;
  perform set_config('jobdock.force', '', true);
  return job;
end
$$;

drop function public.enqueue_job(text, jsonb, integer, real);

revoke execute on function public.enqueue_job(text, jsonb, integer, real, boolean)
  from public, anon, authenticated;
grant execute on function public.enqueue_job(text, jsonb, integer, real, boolean)
  to authenticated, service_role;

create function public.check_document_job(p_id uuid, p_lease_id uuid)
returns table (job_id uuid, refusal text)
language sql stable
set search_path = ''
as $$
  -- Worker: checked again before the document is read (rows written before this rule, or with
  -- triggers disabled, are not trusted). One row while the job is still the caller's: its
  -- refusal, null when it may read its document; no row when the lease no longer matches.
  select j.id, public.document_job_refusal(j.user_id, j.input_data)
    from public.background_jobs j
   where j.id = p_id and j.lease_id = p_lease_id and j.status = 'processing'
$$;

revoke execute on function public.check_document_job(uuid, uuid) from public, anon, authenticated;
grant execute on function public.check_document_job(uuid, uuid) to service_role;

-- Two attempts never at once ---------------------------------------------------------------------
alter table public.background_jobs
  add column stop_pending_lease_id uuid,
  add column stop_pending_worker_id text;

comment on column public.background_jobs.stop_pending_lease_id is
  'Lease of an attempt taken away from its worker that has not yet recorded its stop; the job is not claimed again until it has (or the worker stopped heartbeating).';
comment on column public.background_jobs.stop_pending_worker_id is
  'The worker of that attempt.';

create or replace function public.background_jobs_guard() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  action text := nullif(current_setting('jobdock.action', true), '');
begin
  if tg_op = 'INSERT' then
    if new.status <> 'pending' then
      raise exception 'a new job must start as pending, not %', new.status
        using errcode = 'check_violation',
              hint = 'Insert without a status, or call public.enqueue_job.';
    end if;
  elsif not public.job_transition_allowed(old.status, new.status, old.next_retry_at is not null) then
    raise exception 'illegal job transition: % → % (job %)', old.status, new.status, old.id
      using errcode = 'check_violation',
            hint = case when old.status in ('completed', 'cancelled')
                        then 'The job has finished; it cannot change state any more.'
                        else 'Use the jobdock actions (cancel, force fail, retry, dismiss).' end;
  end if;
  new.updated_at := now();
  if new.status in ('completed', 'failed', 'cancelled')
     and (tg_op = 'INSERT' or old.status is distinct from new.status) then
    new.completed_at := coalesce(new.completed_at, now());
  end if;
  if new.status = 'cancelled' then
    new.cancel_requested_at := coalesce(new.cancel_requested_at, now());
    new.last_error := coalesce(new.last_error, 'Cancelled by user');
    new.next_retry_at := null;
  end if;
  -- An attempt taken away from its worker by anyone but that worker: remember it until the
  -- worker records its stop.
  -- Only where the job can run again (failed awaiting a retry, back to pending): a cancelled
  -- job is final, so nothing waits for its stop.
  if tg_op = 'UPDATE' and old.status = 'processing' and new.status in ('failed', 'pending')
     and coalesce(action, '') not in ('complete', 'fail', 'fail_permanent', 'release') then
    new.stop_pending_lease_id := old.lease_id;
    new.stop_pending_worker_id := old.worker_id;
  end if;
  return new;
end
$$;

create or replace function public.record_stops(p_worker_id text, p_items jsonb)
returns integer
language sql volatile
set search_path = ''
as $$
  with items as (
    select (item->>'id')::uuid as job_id,
           (item->>'lease_id')::uuid as lease_id,
           item->>'reason' as reason,
           (item->>'stopped_at')::timestamptz as stopped_at,
           coalesce(item->'detail', '{}'::jsonb) as detail,
           position
    from jsonb_array_elements(p_items) with ordinality as t(item, position)
  ), released as (
    update public.background_jobs j
       set stop_pending_lease_id = null, stop_pending_worker_id = null
      from items
     where j.id = items.job_id and j.stop_pending_lease_id = items.lease_id
    returning j.id
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
  select (select count(*)::integer from recorded) + 0 * (select count(*) from released)
$$;

comment on function public.record_stops(text, jsonb) is
  'Worker: record many `stopped` events at once; items are {id, lease_id, reason, stopped_at, detail}. A recorded stop lets the job be claimed again.';

create or replace function public.claim_jobs(
    p_worker_id text, p_job_types text[] default null, p_limit integer default 1
) returns setof public.background_jobs
language plpgsql volatile
set search_path = ''
as $$
begin
  perform set_config('jobdock.action', 'claim', true);
  -- A job whose worker vanished and has no retry left fails for good instead of being reclaimed.
  -- Rows another transaction holds are skipped, not waited for: a claim never blocks.
  update public.background_jobs j
     set status = 'failed', next_retry_at = null,
         last_error = 'Worker ' || coalesce(j.worker_id, '?') || ' stopped responding; no retries left'
   where j.id in (
     select d.id from public.background_jobs d
      where d.status = 'processing' and d.retry_count >= d.max_retries
        and d.worker_id is distinct from p_worker_id
        and (p_job_types is null or d.job_type = any(p_job_types))
        and not exists (
          select 1 from public.job_workers w
           where w.id = d.worker_id
             and w.heartbeat_at > now() - make_interval(secs => w.lease_seconds))
        and coalesce(d.heartbeat_at, d.started_at, d.updated_at) < now() - interval '1 second'
      for update of d skip locked);

  return query
    with candidates as (
      select j.id, j.status = 'processing' as expired
        from public.background_jobs j
       where (p_job_types is null or j.job_type = any(p_job_types))
         and (
           j.status = 'pending'
           or (j.status = 'failed' and j.next_retry_at <= now())
           or (j.status = 'processing'
               -- a live worker never reclaims its own job: it is still running it
               and j.worker_id is distinct from p_worker_id
               and coalesce(j.heartbeat_at, j.started_at, j.updated_at) < now() - interval '1 second'
               and not exists (
                 select 1 from public.job_workers w
                  where w.id = j.worker_id
                    and w.heartbeat_at > now() - make_interval(secs => w.lease_seconds)))
         )
         -- the previous attempt has recorded its stop, or its worker is gone
         and (j.stop_pending_lease_id is null or not exists (
               select 1 from public.job_workers w
                where w.id = j.stop_pending_worker_id
                  and w.heartbeat_at > now() - make_interval(secs => w.lease_seconds)))
       order by coalesce(j.next_retry_at, j.created_at)
       limit greatest(p_limit, 0)
       for update of j skip locked
    )
    update public.background_jobs j
       set status = 'processing', worker_id = p_worker_id, lease_id = gen_random_uuid(),
           started_at = now(), heartbeat_at = now(), next_retry_at = null,
           progress = '{}'::jsonb, completed_at = null,
           stop_pending_lease_id = null, stop_pending_worker_id = null,
           retry_count = j.retry_count + case when c.expired then 1 else 0 end
      from candidates c
     where j.id = c.id
    returning j.*;
  perform set_config('jobdock.action', '', true);
end
$$;

-- Permanent failures -------------------------------------------------------------------------
drop function public.fail_job(uuid, uuid, text);

create function public.fail_job(
    p_id uuid, p_lease_id uuid, p_error text, p_retryable boolean default true
) returns public.job_status
language plpgsql volatile
set search_path = ''
as $$
declare result public.job_status;
begin
  perform set_config('jobdock.action', case when p_retryable then 'fail' else 'fail_permanent' end, true);
  update public.background_jobs j
     set status = 'failed', last_error = left(coalesce(p_error, 'failed'), 4000),
         next_retry_at = case when p_retryable then public.job_next_retry_at(j) end,
         retry_count = j.retry_count
                       + case when p_retryable and j.retry_count < j.max_retries then 1 else 0 end
   where j.id = p_id and j.lease_id = p_lease_id and j.status = 'processing'
  returning j.status into result;
  perform set_config('jobdock.action', '', true);
  return result;
end
$$;

comment on function public.fail_job is
  'Fenced failure: returns failed (retry scheduled, or final when p_retryable is false or no retry is left), or null when the lease no longer matches.';

revoke execute on function public.fail_job(uuid, uuid, text, boolean) from public, anon, authenticated;
grant execute on function public.fail_job(uuid, uuid, text, boolean) to service_role;

create or replace function public.background_jobs_audit() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  -- Set by the transition functions so the trail names the action; Studio edits get the default.
  action text := nullif(current_setting('jobdock.action', true), '');
begin
  if tg_op = 'INSERT' then
    perform public.log_job_event(new, 'enqueued', jsonb_build_object('job_type', new.job_type));
    return null;
  end if;
  if tg_op = 'DELETE' then
    perform public.log_job_event(old, 'deleted', jsonb_build_object('status', old.status));
    return null;
  end if;
  if old.status = 'processing' and new.status = 'processing' and old.lease_id is distinct from new.lease_id then
    perform public.log_job_event(old, 'lease_expired',
      jsonb_build_object('lease_id', old.lease_id, 'heartbeat_at', old.heartbeat_at));
  end if;
  if new.status = 'processing' and (old.status <> 'processing' or old.lease_id is distinct from new.lease_id) then
    perform public.log_job_event(new, 'claimed',
      jsonb_build_object('lease_id', new.lease_id, 'attempt', new.retry_count + 1));
  elsif old.status is distinct from new.status then
    perform public.log_job_event(new,
      case new.status
        when 'cancelled' then 'cancel_requested'
        when 'completed' then 'completed'
        when 'pending' then case when old.status = 'processing' then 'released' else 'retried' end
        when 'failed' then case when action in ('fail', 'fail_permanent') then 'failed' else 'force_failed' end
      end,
      jsonb_build_object('from', old.status, 'error', new.last_error)
        || case when new.status = 'failed' and action in ('fail', 'fail_permanent')
                then jsonb_build_object('retryable', action = 'fail') else '{}'::jsonb end);
  end if;
  if new.status = 'failed' and new.next_retry_at is not null
     and (old.status <> 'failed' or old.next_retry_at is null) then
    perform public.log_job_event(new, 'retry_scheduled',
      jsonb_build_object('retry', new.retry_count, 'next_retry_at', new.next_retry_at));
  end if;
  return null;
end
$$;

-- Jobs a worker holds (to reconcile with what it runs) -----------------------------------------
create function public.worker_held_jobs(p_worker_id text)
returns table (id uuid, lease_id uuid)
language sql stable
set search_path = ''
as $$
  select j.id, j.lease_id from public.background_jobs j
   where j.worker_id = p_worker_id and j.status = 'processing'
$$;

revoke execute on function public.worker_held_jobs(text) from public, anon, authenticated;
grant execute on function public.worker_held_jobs(text) to service_role;

-- Chunks written in parts --------------------------------------------------------------------
create table public.document_chunks_staged (
    job_id uuid not null references public.background_jobs (id) on delete cascade,
    lease_id uuid not null,
    chunk_index integer not null check (chunk_index >= 0),
    chapter_index integer not null check (chapter_index >= 0),
    chapter_title text,
    content text not null,
    primary key (job_id, chunk_index)
);

comment on table public.document_chunks_staged is
  'Chunks of a running process_document attempt written ahead of its completion; moved into document_chunks when it completes, removed when it does not.';

alter table public.document_chunks_staged enable row level security;
revoke all on public.document_chunks_staged from anon, authenticated;
grant select, insert, update, delete on public.document_chunks_staged to service_role;

create function public.stage_document_chunks(p_id uuid, p_lease_id uuid, p_chunks jsonb)
returns boolean
language plpgsql volatile
set search_path = ''
as $$
begin
  -- Fenced like every worker write; a part sent twice (a retried request) is written once.
  perform 1 from public.background_jobs
   where id = p_id and lease_id = p_lease_id and status = 'processing'
   for share;
  if not found then
    return false;
  end if;
  insert into public.document_chunks_staged
         (job_id, lease_id, chunk_index, chapter_index, chapter_title, content)
  select p_id, p_lease_id, c.chunk_index, c.chapter_index, c.chapter_title, c.content
    from jsonb_to_recordset(coalesce(p_chunks, '[]'::jsonb))
           as c(chunk_index integer, chapter_index integer, chapter_title text, content text)
  on conflict (job_id, chunk_index) do update
    set lease_id = excluded.lease_id, chapter_index = excluded.chapter_index,
        chapter_title = excluded.chapter_title, content = excluded.content;
  return true;
end
$$;

create or replace function public.complete_document_job(
    p_id uuid, p_lease_id uuid, p_output jsonb, p_chunks jsonb
) returns boolean
language plpgsql volatile
set search_path = ''
as $$
declare
  owner uuid;
begin
  -- The fence first: if the lease no longer matches, nothing is written.
  select user_id into owner from public.background_jobs
   where id = p_id and lease_id = p_lease_id and status = 'processing'
   for update;
  if not found then
    return false;
  end if;
  insert into public.document_chunks (job_id, user_id, chunk_index, chapter_index, chapter_title,
                                      content)
  select p_id, owner, s.chunk_index, s.chapter_index, s.chapter_title, s.content
    from public.document_chunks_staged s
   where s.job_id = p_id and s.lease_id = p_lease_id
  union all
  select p_id, owner, c.chunk_index, c.chapter_index, c.chapter_title, c.content
    from jsonb_to_recordset(coalesce(p_chunks, '[]'::jsonb))
           as c(chunk_index integer, chapter_index integer, chapter_title text, content text);
  delete from public.document_chunks_staged where job_id = p_id;
  perform set_config('jobdock.action', 'complete', true);
  update public.background_jobs
     set status = 'completed', output_data = p_output,
         progress = progress || '{"percent": 100}'::jsonb, last_error = null
   where id = p_id;
  perform set_config('jobdock.action', '', true);
  return true;
end
$$;

create function public.background_jobs_unstage() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- An attempt that ends without completing leaves no staged chunks behind.
  delete from public.document_chunks_staged s
   where s.job_id = old.id and s.lease_id = old.lease_id;
  return null;
end
$$;

revoke execute on function public.background_jobs_unstage from public, anon, authenticated;

create trigger background_jobs_unstage
  after update on public.background_jobs
  for each row
  when (old.job_type = 'process_document' and old.status = 'processing'
        and (new.status <> 'processing' or new.lease_id is distinct from old.lease_id))
  execute function public.background_jobs_unstage();

revoke execute on function public.stage_document_chunks(uuid, uuid, jsonb)
  from public, anon, authenticated;
grant execute on function public.stage_document_chunks(uuid, uuid, jsonb) to service_role;

-- Identity sequences are the tables' business: no API role needs them directly (projects whose
-- default privileges grant new sequences to anon/authenticated get them revoked here).
revoke all on sequence public.job_events_id_seq, public.document_chunks_id_seq,
  public.job_signals_id_seq from anon, authenticated;
