-- What-if: drop every hypothetical index of this session, before and after
-- (they live in the session's memory past any transaction: a pooler would
-- hand them, in EXPLAIN only, to its next client). {schema}: HypoPG's.
SELECT {schema}.hypopg_reset();
