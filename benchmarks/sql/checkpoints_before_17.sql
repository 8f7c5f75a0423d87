-- Checkpoints so far, timed and requested (before PostgreSQL 17: pg_stat_bgwriter;
-- the wait sampler counts those during each build).
SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter;
