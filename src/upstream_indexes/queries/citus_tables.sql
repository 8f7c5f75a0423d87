-- Citus (only asked when the citus extension is installed): whether this node
-- is the coordinator, how many workers it has, and how each of our tables is
-- distributed. A table Citus does not know is absent here (a plain table).
SELECT citus_is_coordinator() AS is_coordinator,
       (SELECT count(*) FROM pg_dist_node AS n
         WHERE n.noderole = 'primary' AND n.isactive AND n.groupid <> 0) AS workers,
       t.table_name::text AS table_name,
       t.citus_table_type AS table_type,
       t.distribution_column,
       t.shard_count
FROM (SELECT 1) AS one
LEFT JOIN citus_tables AS t ON t.table_name = ANY (%(tables)s::regclass[]);
