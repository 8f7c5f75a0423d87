-- Citus: the index of every shard of a distributed table, on every node that
-- holds a placement of the shard (Citus names it <index>_<shardid>). Run on
-- the coordinator; each node answers through run_command_on_all_nodes, with
-- the valid / ready / live flags, definition and size of its shard indexes
-- of that name. A node that cannot answer leaves its shards' columns null and
-- says why in node_error.
WITH node_answers AS (
    SELECT r.nodeid, r.success, r.result
    FROM run_command_on_all_nodes(format(
        $$SELECT coalesce(json_agg(json_build_object(
                     'index_name', c.relname,
                     'valid', i.indisvalid AND i.indisready AND i.indislive,
                     'definition', pg_get_indexdef(c.oid),
                     'size_bytes', pg_relation_size(c.oid))), '[]')
          FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
          WHERE c.relname LIKE %%L$$,
        replace(%(index)s, '_', '\_') || '\_%%')) AS r
),
found AS (
    SELECT a.nodeid, x.*
    FROM node_answers AS a
    CROSS JOIN LATERAL json_to_recordset(a.result::json)
        AS x (index_name text, valid boolean, definition text, size_bytes bigint)
    WHERE a.success
)
SELECT s.shardid,
       format('%%s_%%s', %(index)s, s.shardid) AS shard_index,
       format('%%s:%%s', n.nodename, n.nodeport) AS node,
       f.valid,
       f.definition,
       f.size_bytes,
       CASE WHEN NOT a.success THEN a.result END AS node_error
FROM pg_dist_shard AS s
JOIN pg_dist_placement AS p ON p.shardid = s.shardid
JOIN pg_dist_node AS n ON n.groupid = p.groupid AND n.noderole = 'primary'
LEFT JOIN node_answers AS a ON a.nodeid = n.nodeid
LEFT JOIN found AS f ON f.nodeid = n.nodeid AND f.index_name = format('%%s_%%s', %(index)s, s.shardid)
WHERE s.logicalrelid = to_regclass(%(table)s)
ORDER BY s.shardid, n.nodeid;
