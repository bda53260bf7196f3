-- New-work signals: one Realtime event per enqueue statement, however many jobs it adds.
--
-- Workers wake on new work through Realtime. Subscribed to INSERTs on background_jobs, every
-- worker would receive, and parse, one event per job: a 4,000-row enqueue is 4,000 events for
-- each worker, which crowd out its claiming. A statement-level trigger instead adds one row
-- here per INSERT statement, naming the job types it added; workers subscribe to these.
--
-- Append-only, so concurrent enqueues never wait for each other on a shared row. Every
-- thousandth signal trims the signals before it: nobody reads old signals, only their events.

create table public.job_signals (
    id bigint generated always as identity primary key,
    job_types text[] not null,
    jobs integer not null check (jobs > 0),
    created_at timestamptz not null default now()
);

comment on table public.job_signals is
  'One row per statement that enqueued jobs (written by a trigger): what workers wake on.';
comment on column public.job_signals.job_types is 'The distinct job types the statement added.';
comment on column public.job_signals.jobs is 'How many jobs the statement added.';

-- Workers (service_role) read it; users see nothing of other users' activity.
alter table public.job_signals enable row level security;
revoke all on public.job_signals from anon, authenticated;
grant select on public.job_signals to service_role;

create function public.background_jobs_signal() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  signal bigint;
begin
  insert into public.job_signals (job_types, jobs)
    select array_agg(distinct job_type order by job_type), count(*) from added
    having count(*) > 0
  returning id into signal;
  if signal % 1000 = 0 then
    delete from public.job_signals where id <= signal - 1000;
  end if;
  return null;
end
$$;

revoke execute on function public.background_jobs_signal from public, anon, authenticated;

create trigger background_jobs_signal
  after insert on public.background_jobs
  referencing new table as added
  for each statement execute function public.background_jobs_signal();

alter publication supabase_realtime add table public.job_signals;
