-- What each bench writer's backend and the checkpointer wait on right now, for
-- the wait sampler (benchmarks/waits.py): a write slower than 20 ms is
-- attributed to the wait events sampled while it ran, a build to the
-- checkpoints during it. "CPU": active, no wait event; an idle writer waits on
-- Client:ClientRead (its time is spent outside the server); an idle
-- checkpointer on Activity:CheckpointerMain.
SELECT pid,
       backend_type = 'checkpointer' AS checkpointer,
       coalesce(wait_event_type || ':' || wait_event, 'CPU') AS wait
FROM pg_stat_activity
WHERE application_name = %(writer)s OR backend_type = 'checkpointer';
