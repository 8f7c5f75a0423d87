-- Checkpoints so far, timed and requested (PostgreSQL 17+: pg_stat_checkpointer;
-- the wait sampler counts those during each build).
SELECT num_timed + num_requested FROM pg_stat_checkpointer;
