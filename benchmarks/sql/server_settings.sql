-- The server and the settings that shape the numbers, recorded with every
-- benchmark run: memory, parallel workers, durability.
SELECT version() AS version,
       current_setting('server_version_num')::int AS version_num,
       coalesce(jsonb_object_agg(name, current_setting(name)), '{}') AS settings
FROM pg_settings
WHERE name IN ('shared_buffers', 'work_mem', 'maintenance_work_mem', 'max_parallel_maintenance_workers',
               'max_parallel_workers', 'max_worker_processes', 'effective_cache_size', 'random_page_cost',
               'fsync', 'synchronous_commit', 'full_page_writes', 'max_wal_size', 'jit');
