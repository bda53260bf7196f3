-- Chunks of processed documents, written atomically with the job's completion:
-- a cancelled, failed or deleted job leaves none behind.

create table public.document_chunks (
    id bigint generated always as identity primary key,
    job_id uuid not null references public.background_jobs (id) on delete cascade,
    user_id uuid,
    chunk_index integer not null check (chunk_index >= 0),
    chapter_index integer not null check (chapter_index >= 0),
    chapter_title text,
    content text not null,
    created_at timestamptz not null default now(),
    unique (job_id, chunk_index)
);

comment on table public.document_chunks is
  'Text chunks of a processed document, in reading order; deleted with their job.';

alter table public.document_chunks enable row level security;
create policy "users see their own chunks" on public.document_chunks
  for select to authenticated using ((select auth.uid()) = user_id);

revoke all on public.document_chunks from anon, authenticated;
grant select on public.document_chunks to authenticated;
grant select, insert, delete on public.document_chunks to service_role;

create function public.complete_document_job(
    p_id uuid, p_lease_id uuid, p_output jsonb, p_chunks jsonb
) returns boolean
language plpgsql volatile
set search_path = ''
as $$
declare changed boolean;
begin
  -- The fenced completion first: if the lease no longer matches, nothing is written.
  perform set_config('jobdock.action', 'complete', true);
  update public.background_jobs
     set status = 'completed', output_data = p_output,
         progress = progress || '{"percent": 100}'::jsonb, last_error = null
   where id = p_id and lease_id = p_lease_id and status = 'processing';
  changed := found;
  perform set_config('jobdock.action', '', true);
  if changed then
    insert into public.document_chunks (job_id, user_id, chunk_index, chapter_index, chapter_title,
                                        content)
    select p_id, j.user_id, c.chunk_index, c.chapter_index, c.chapter_title, c.content
      from jsonb_to_recordset(coalesce(p_chunks, '[]'::jsonb))
             as c(chunk_index integer, chapter_index integer, chapter_title text, content text)
      cross join (select user_id from public.background_jobs where id = p_id) j;
  end if;
  return changed;
end
$$;

create function public.complete_jobs(p_items jsonb) returns setof uuid
language plpgsql volatile
set search_path = ''
as $$
begin
  -- Batched fenced completion: [{"id", "lease_id", "output"}, ...]; returns the ids completed.
  perform set_config('jobdock.action', 'complete', true);
  return query
    update public.background_jobs j
       set status = 'completed', output_data = i.output,
           progress = j.progress || '{"percent": 100}'::jsonb, last_error = null
      from jsonb_to_recordset(p_items) as i(id uuid, lease_id uuid, output jsonb)
     where j.id = i.id and j.lease_id = i.lease_id and j.status = 'processing'
    returning j.id;
  perform set_config('jobdock.action', '', true);
end
$$;

create function public.job_states(p_ids uuid[])
returns table (id uuid, status public.job_status, lease_id uuid)
language sql stable
set search_path = ''
as $$
  select j.id, j.status, j.lease_id from public.background_jobs j where j.id = any(p_ids)
$$;

revoke execute on function public.complete_document_job(uuid, uuid, jsonb, jsonb),
  public.complete_jobs(jsonb), public.job_states(uuid[]) from public, anon, authenticated;
grant execute on function public.complete_document_job(uuid, uuid, jsonb, jsonb),
  public.complete_jobs(jsonb), public.job_states(uuid[]) to service_role;
