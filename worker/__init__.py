"""jobdock worker: claims jobs, runs their handlers, and stops a job the moment it is
cancelled, force-failed or deleted (pushed by Supabase Realtime, with a polling fallback)."""
