-- jobdock: background jobs, their state machine and audit trail.
--
-- Every job transition is one guarded SQL function; a trigger rejects illegal transitions
-- (so a Supabase Studio edit cannot corrupt the state machine) and writes the audit trail.
-- Applies unchanged on hosted Supabase (`supabase db push`).

create type public.job_status as enum ('pending', 'processing', 'completed', 'failed', 'cancelled');

comment on type public.job_status is
  'pending → processing → completed | failed | cancelled; failed with next_retry_at is awaiting a retry.';

-- Jobs ------------------------------------------------------------------------------------------
create table public.background_jobs (
    id uuid primary key default gen_random_uuid(),
    user_id uuid default auth.uid(),
    job_type text not null check (length(job_type) between 1 and 200),
    status public.job_status not null default 'pending',
    input_data jsonb not null default '{}'::jsonb,
    output_data jsonb,
    progress jsonb not null default '{}'::jsonb,
    last_error text,
    retry_count integer not null default 0 check (retry_count >= 0),
    max_retries integer not null default 3 check (max_retries between 0 and 100),
    retry_backoff_seconds real not null default 2 check (retry_backoff_seconds >= 0),
    next_retry_at timestamptz,
    worker_id text,
    lease_id uuid,
    heartbeat_at timestamptz,
    cancel_requested_at timestamptz,
    created_at timestamptz not null default now(),
    started_at timestamptz,
    completed_at timestamptz,
    updated_at timestamptz not null default now()
);

comment on table public.background_jobs is
  'Background jobs. Change status only through the jobdock functions; illegal transitions are rejected.';
comment on column public.background_jobs.user_id is 'Owner (auth.uid() of the creator); RLS scopes users to their own jobs.';
comment on column public.background_jobs.job_type is 'Handler name, e.g. process_document.';
comment on column public.background_jobs.status is 'pending | processing | completed | failed | cancelled.';
comment on column public.background_jobs.input_data is 'Handler input (for process_document: bucket, path, filename).';
comment on column public.background_jobs.output_data is 'Handler result, written atomically with completion.';
comment on column public.background_jobs.progress is 'Latest progress report: {"percent": 0-100, "stage": "...", "message": "..."}.';
comment on column public.background_jobs.last_error is 'Why the job last failed or was stopped.';
comment on column public.background_jobs.retry_count is 'Retries used so far (failures and lost leases count; shutdown hand-backs do not).';
comment on column public.background_jobs.max_retries is 'Retries allowed after a failure before the job fails for good.';
comment on column public.background_jobs.retry_backoff_seconds is 'Base delay of the exponential retry backoff (doubles per retry, with jitter).';
comment on column public.background_jobs.next_retry_at is 'Set while a failed job awaits its retry; null once the failure is final.';
comment on column public.background_jobs.worker_id is 'Worker holding (or last holding) the job. Kept after a stop so the worker hears it.';
comment on column public.background_jobs.lease_id is 'Fencing token, new at every claim; worker writes must present it.';
comment on column public.background_jobs.heartbeat_at is 'Last sign of life of the job''s worker on this job (claim or progress).';
comment on column public.background_jobs.cancel_requested_at is 'When a user (or Studio edit) cancelled the job.';
comment on column public.background_jobs.started_at is 'When the current attempt was claimed.';
comment on column public.background_jobs.completed_at is 'When the job reached completed, failed or cancelled.';

create index background_jobs_claimable_idx on public.background_jobs (coalesce(next_retry_at, created_at))
  where status in ('pending', 'failed');
create index background_jobs_processing_idx on public.background_jobs (worker_id)
  where status = 'processing';
create index background_jobs_user_created_idx on public.background_jobs (user_id, created_at desc);
create index background_jobs_created_idx on public.background_jobs (created_at desc);

alter table public.background_jobs replica identity full;

-- Workers (one heartbeat row per worker process, not a write per job) ---------------------------
create table public.job_workers (
    id text primary key,
    hostname text,
    pid integer,
    job_types text[],
    lease_seconds real not null default 30 check (lease_seconds > 0),
    started_at timestamptz not null default now(),
    heartbeat_at timestamptz not null default now()
);

comment on table public.job_workers is
  'Live workers. A processing job whose worker stopped heartbeating for lease_seconds may be reclaimed.';

-- Audit trail (survives deletion of the job: no foreign key) ------------------------------------
create table public.job_events (
    id bigint generated always as identity primary key,
    job_id uuid not null,
    user_id uuid,
    event text not null check (event in (
        'enqueued', 'claimed', 'progress', 'cancel_requested', 'force_failed', 'stopped',
        'completed', 'failed', 'retry_scheduled', 'retried', 'released', 'deleted',
        'lease_expired')),
    worker_id text,
    detail jsonb not null default '{}'::jsonb,
    created_at timestamptz not null default clock_timestamp()
);

comment on table public.job_events is 'Append-only audit trail of every job; kept after the job is deleted.';
comment on column public.job_events.detail is 'Event data; for stopped: {"reason": ..., "stopped_at": ...}.';

create index job_events_job_idx on public.job_events (job_id, id);

-- Who may see and manage a job ------------------------------------------------------------------
create function public.job_visible(owner uuid) returns boolean
language sql stable
set search_path = ''
as $$
  -- Trusted callers (service_role, or a direct database session without JWT claims) see all;
  -- a signed-in user sees their own jobs.
  select auth.role() is null or auth.role() = 'service_role' or owner = auth.uid()
$$;

alter table public.background_jobs enable row level security;
alter table public.job_events enable row level security;
alter table public.job_workers enable row level security;

create policy "users see their own jobs" on public.background_jobs
  for select to authenticated using ((select auth.uid()) = user_id);
create policy "users enqueue their own jobs" on public.background_jobs
  for insert to authenticated with check ((select auth.uid()) = user_id);
create policy "users see their own job events" on public.job_events
  for select to authenticated using ((select auth.uid()) = user_id);

-- Older projects grant new tables to the API roles by default: start from nothing.
revoke all on public.background_jobs, public.job_events, public.job_workers from anon, authenticated;
grant select on public.background_jobs, public.job_events to authenticated;
grant insert (job_type, input_data, max_retries, retry_backoff_seconds, user_id)
  on public.background_jobs to authenticated;
grant select, insert, update, delete on public.background_jobs, public.job_events,
  public.job_workers to service_role;

-- State machine guard and audit trail -----------------------------------------------------------
create function public.job_transition_allowed(
    old_status public.job_status, new_status public.job_status, awaiting_retry boolean
) returns boolean
language sql immutable
set search_path = ''
as $$
  select case old_status
    when new_status then true
    when 'pending' then new_status in ('processing', 'cancelled')
    when 'processing' then new_status in ('completed', 'failed', 'cancelled', 'pending')
    when 'failed' then new_status = 'pending'
                       or (awaiting_retry and new_status in ('processing', 'cancelled'))
    else false
  end
$$;

comment on function public.job_transition_allowed is 'The job state machine, in one place.';

create function public.background_jobs_guard() returns trigger
language plpgsql
set search_path = ''
as $$
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
  return new;
end
$$;

create trigger background_jobs_guard
  before insert or update on public.background_jobs
  for each row execute function public.background_jobs_guard();

create function public.log_job_event(
    job public.background_jobs, event text, detail jsonb default '{}'::jsonb
) returns void
language sql
security definer
set search_path = ''
as $$
  insert into public.job_events (job_id, user_id, event, worker_id, detail)
  values (job.id, job.user_id, event, job.worker_id, coalesce(detail, '{}'::jsonb))
$$;

revoke execute on function public.log_job_event from public;

create function public.background_jobs_audit() returns trigger
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
        when 'failed' then case when action = 'fail' then 'failed' else 'force_failed' end
      end,
      jsonb_build_object('from', old.status, 'error', new.last_error));
  end if;
  if new.status = 'failed' and new.next_retry_at is not null
     and (old.status <> 'failed' or old.next_retry_at is null) then
    perform public.log_job_event(new, 'retry_scheduled',
      jsonb_build_object('retry', new.retry_count, 'next_retry_at', new.next_retry_at));
  end if;
  return null;
end
$$;

create trigger background_jobs_audit
  after insert or update or delete on public.background_jobs
  for each row execute function public.background_jobs_audit();

-- Retry policy ----------------------------------------------------------------------------------
create function public.job_next_retry_at(job public.background_jobs) returns timestamptz
language sql volatile
set search_path = ''
as $$
  -- Exponential backoff with ±25% jitter, capped at one hour; null when no retry is left.
  select case when job.retry_count < job.max_retries then
    now() + make_interval(secs => least(3600,
      job.retry_backoff_seconds * power(2, job.retry_count) * (0.75 + random() * 0.5)))
  end
$$;

-- User actions (dock, CLI). security definer + job_visible(): users have no UPDATE/DELETE grant.
create type public.job_transition as (job_id uuid, changed boolean, status public.job_status);

comment on type public.job_transition is
  'Outcome of a transition: changed, or the status that prevented it (null: no such job).';

create function public.job_outcome(p_id uuid, p_changed boolean) returns public.job_transition
language sql stable
set search_path = ''
as $$
  select p_id, p_changed,
         (select j.status from public.background_jobs j
          where j.id = p_id and public.job_visible(j.user_id))
$$;

create function public.enqueue_job(
    p_job_type text, p_input jsonb default '{}'::jsonb, p_max_retries integer default 3,
    p_retry_backoff_seconds real default 2
) returns public.background_jobs
language sql volatile
set search_path = ''
as $$
  insert into public.background_jobs (job_type, input_data, max_retries, retry_backoff_seconds, user_id)
  values (p_job_type, coalesce(p_input, '{}'::jsonb), p_max_retries, p_retry_backoff_seconds, auth.uid())
  returning *
$$;

create function public.request_cancel(p_id uuid) returns public.job_transition
language plpgsql volatile
security definer
set search_path = ''
as $$
declare changed boolean;
begin
  perform set_config('jobdock.action', 'cancel', true);
  update public.background_jobs
     set status = 'cancelled', cancel_requested_at = now(), last_error = 'Cancelled by user',
         next_retry_at = null
   where id = p_id and public.job_visible(user_id)
     and (status in ('pending', 'processing') or (status = 'failed' and next_retry_at is not null));
  changed := found;
  perform set_config('jobdock.action', '', true);
  return public.job_outcome(p_id, changed);
end
$$;

create function public.force_fail(p_id uuid) returns public.job_transition
language plpgsql volatile
security definer
set search_path = ''
as $$
declare changed boolean;
begin
  perform set_config('jobdock.action', 'force_fail', true);
  update public.background_jobs j
     set status = 'failed', last_error = 'Force failed by user',
         next_retry_at = public.job_next_retry_at(j),
         retry_count = j.retry_count + case when j.retry_count < j.max_retries then 1 else 0 end
   where j.id = p_id and public.job_visible(j.user_id) and j.status = 'processing';
  changed := found;
  perform set_config('jobdock.action', '', true);
  return public.job_outcome(p_id, changed);
end
$$;

create function public.retry_job(p_id uuid) returns public.job_transition
language plpgsql volatile
security definer
set search_path = ''
as $$
declare changed boolean;
begin
  perform set_config('jobdock.action', 'retry', true);
  update public.background_jobs
     set status = 'pending', last_error = null, next_retry_at = null, retry_count = 0,
         progress = '{}'::jsonb, output_data = null, completed_at = null, started_at = null,
         worker_id = null, lease_id = null, heartbeat_at = null
   where id = p_id and public.job_visible(user_id) and status = 'failed';
  changed := found;
  perform set_config('jobdock.action', '', true);
  return public.job_outcome(p_id, changed);
end
$$;

create function public.dismiss_job(p_id uuid) returns public.job_transition
language plpgsql volatile
security definer
set search_path = ''
as $$
declare changed boolean;
begin
  delete from public.background_jobs
   where id = p_id and public.job_visible(user_id)
     and status in ('completed', 'failed', 'cancelled');
  changed := found;
  return public.job_outcome(p_id, changed);
end
$$;

create function public.cancel_all_processing() returns setof uuid
language plpgsql volatile
security definer
set search_path = ''
as $$
begin
  perform set_config('jobdock.action', 'cancel', true);
  return query
    update public.background_jobs
       set status = 'cancelled', cancel_requested_at = now(), last_error = 'Cancelled by user',
           next_retry_at = null
     where status in ('pending', 'processing') and public.job_visible(user_id)
    returning id;
  perform set_config('jobdock.action', '', true);
end
$$;

create function public.delete_cancelled_jobs(p_ids uuid[]) returns setof uuid
language sql volatile
security definer
set search_path = ''
as $$
  delete from public.background_jobs
   where id = any(p_ids) and status = 'cancelled' and public.job_visible(user_id)
  returning id
$$;

-- Worker functions (service_role only). Writes are fenced by id + lease_id + processing. -------
create function public.worker_heartbeat(
    p_worker_id text, p_lease_seconds real default 30, p_job_types text[] default null,
    p_hostname text default null, p_pid integer default null
) returns timestamptz
language sql volatile
set search_path = ''
as $$
  insert into public.job_workers as w (id, lease_seconds, job_types, hostname, pid)
  values (p_worker_id, p_lease_seconds, p_job_types, p_hostname, p_pid)
  on conflict (id) do update
    set heartbeat_at = now(), lease_seconds = excluded.lease_seconds,
        job_types = excluded.job_types, hostname = excluded.hostname, pid = excluded.pid
  returning w.heartbeat_at
$$;

create function public.worker_retire(p_worker_id text) returns void
language sql volatile
set search_path = ''
as $$
  delete from public.job_workers where id = p_worker_id
$$;

create function public.claim_jobs(
    p_worker_id text, p_job_types text[] default null, p_limit integer default 1
) returns setof public.background_jobs
language plpgsql volatile
set search_path = ''
as $$
begin
  perform set_config('jobdock.action', 'claim', true);
  -- A job whose worker vanished and has no retry left fails for good instead of being reclaimed.
  update public.background_jobs j
     set status = 'failed', next_retry_at = null,
         last_error = 'Worker ' || coalesce(j.worker_id, '?') || ' stopped responding; no retries left'
   where j.status = 'processing' and j.retry_count >= j.max_retries
     and j.worker_id is distinct from p_worker_id
     and (p_job_types is null or j.job_type = any(p_job_types))
     and not exists (
       select 1 from public.job_workers w
        where w.id = j.worker_id
          and w.heartbeat_at > now() - make_interval(secs => w.lease_seconds))
     and coalesce(j.heartbeat_at, j.started_at, j.updated_at) < now() - interval '1 second';

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
       order by coalesce(j.next_retry_at, j.created_at)
       limit greatest(p_limit, 0)
       for update of j skip locked
    )
    update public.background_jobs j
       set status = 'processing', worker_id = p_worker_id, lease_id = gen_random_uuid(),
           started_at = now(), heartbeat_at = now(), next_retry_at = null,
           progress = '{}'::jsonb, completed_at = null,
           retry_count = j.retry_count + case when c.expired then 1 else 0 end
      from candidates c
     where j.id = c.id
    returning j.*;
  perform set_config('jobdock.action', '', true);
end
$$;

create function public.report_progress(p_id uuid, p_lease_id uuid, p_progress jsonb)
returns boolean
language plpgsql volatile
set search_path = ''
as $$
begin
  update public.background_jobs
     set progress = coalesce(p_progress, '{}'::jsonb), heartbeat_at = now()
   where id = p_id and lease_id = p_lease_id and status = 'processing';
  return found;
end
$$;

create function public.complete_job(p_id uuid, p_lease_id uuid, p_output jsonb default null)
returns boolean
language plpgsql volatile
set search_path = ''
as $$
declare changed boolean;
begin
  perform set_config('jobdock.action', 'complete', true);
  update public.background_jobs
     set status = 'completed', output_data = p_output,
         progress = progress || '{"percent": 100}'::jsonb, last_error = null
   where id = p_id and lease_id = p_lease_id and status = 'processing';
  changed := found;
  perform set_config('jobdock.action', '', true);
  return changed;
end
$$;

create function public.fail_job(p_id uuid, p_lease_id uuid, p_error text) returns public.job_status
language plpgsql volatile
set search_path = ''
as $$
declare result public.job_status;
begin
  perform set_config('jobdock.action', 'fail', true);
  update public.background_jobs j
     set status = 'failed', last_error = left(coalesce(p_error, 'failed'), 4000),
         next_retry_at = public.job_next_retry_at(j),
         retry_count = j.retry_count + case when j.retry_count < j.max_retries then 1 else 0 end
   where j.id = p_id and j.lease_id = p_lease_id and j.status = 'processing'
  returning j.status into result;
  perform set_config('jobdock.action', '', true);
  return result;
end
$$;

comment on function public.fail_job is
  'Fenced failure: returns failed (retry scheduled or final), or null when the lease no longer matches.';

create function public.release_job(p_id uuid, p_lease_id uuid, p_reason text default 'shutdown')
returns boolean
language plpgsql volatile
set search_path = ''
as $$
declare changed boolean;
begin
  perform set_config('jobdock.action', 'release', true);
  update public.background_jobs
     set status = 'pending', worker_id = null, lease_id = null, heartbeat_at = null,
         started_at = null, progress = '{}'::jsonb, last_error = 'Released: ' || p_reason
   where id = p_id and lease_id = p_lease_id and status = 'processing';
  changed := found;
  perform set_config('jobdock.action', '', true);
  return changed;
end
$$;

create function public.record_stopped(
    p_id uuid, p_worker_id text, p_reason text, p_stopped_at timestamptz,
    p_detail jsonb default '{}'::jsonb
) returns void
language sql volatile
set search_path = ''
as $$
  insert into public.job_events (job_id, user_id, event, worker_id, detail)
  values (
    p_id,
    coalesce((select user_id from public.background_jobs where id = p_id),
             (select user_id from public.job_events where job_id = p_id order by id limit 1)),
    'stopped', p_worker_id,
    coalesce(p_detail, '{}'::jsonb)
      || jsonb_build_object('reason', p_reason, 'stopped_at', p_stopped_at))
$$;

-- Privileges: functions are not executable by PUBLIC on Supabase; grant them explicitly. -------
revoke execute on all functions in schema public from public, anon, authenticated;

grant execute on function
  public.job_visible(uuid), public.job_outcome(uuid, boolean),
  public.enqueue_job(text, jsonb, integer, real), public.request_cancel(uuid),
  public.force_fail(uuid), public.retry_job(uuid), public.dismiss_job(uuid),
  public.cancel_all_processing(), public.delete_cancelled_jobs(uuid[])
  to authenticated, service_role;

grant execute on function
  public.job_transition_allowed(public.job_status, public.job_status, boolean),
  public.job_next_retry_at(public.background_jobs),
  public.worker_heartbeat(text, real, text[], text, integer), public.worker_retire(text),
  public.claim_jobs(text, text[], integer), public.report_progress(uuid, uuid, jsonb),
  public.complete_job(uuid, uuid, jsonb), public.fail_job(uuid, uuid, text),
  public.release_job(uuid, uuid, text),
  public.record_stopped(uuid, text, text, timestamptz, jsonb)
  to service_role;

-- Realtime: the worker and the dock listen to job changes; the dock also hears stop acks. --------
alter publication supabase_realtime add table public.background_jobs, public.job_events;
