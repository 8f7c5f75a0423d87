-- What-if: one index created hypothetically by HypoPG from its CREATE INDEX
-- statement (the migration file's): only in this session's memory, no
-- catalog row, no build, no lock but ACCESS SHARE on its table for the call.
-- Its name in plans (HypoPG's own, e.g. <13543>btree_upstream_claimrecord_...)
-- and HypoPG's estimate of its size. {schema}: the extension's schema.
SELECT h.indexname AS plan_name, {schema}.hypopg_relation_size(h.indexrelid) AS size_bytes
FROM {schema}.hypopg_create_index(%(definition)s) AS h;
