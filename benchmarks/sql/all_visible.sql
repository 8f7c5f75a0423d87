-- After a VACUUM: did it mark every page of the table all-visible (pg_class's
-- counts, which VACUUM updates), so that index-only scans fetch nothing?
-- A partitioned table: summed over its leaf partitions (pg_partition_tree; none for a plain table).
SELECT sum(c.relallvisible) >= sum(c.relpages) AS all_visible, sum(c.relallvisible) AS relallvisible,
       sum(c.relpages) AS relpages
FROM pg_class AS c
LEFT JOIN LATERAL pg_partition_tree(to_regclass(%(table)s)) AS tree ON true
WHERE c.oid = coalesce(tree.relid, to_regclass(%(table)s)) AND tree.isleaf IS NOT FALSE;
