-- After a VACUUM: did it mark every page of the table all-visible (pg_class's
-- counts, which VACUUM updates), so that index-only scans fetch nothing?
SELECT relallvisible >= relpages AS all_visible, relallvisible, relpages
FROM pg_class
WHERE oid = to_regclass(%(table)s);
