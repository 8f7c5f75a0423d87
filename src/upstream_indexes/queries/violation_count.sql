-- How many rows one of check_violations.sql / foreign_key_violations.sql
-- finds, once it found some: the same query without its LIMIT, counted.
SELECT count(*) AS violations FROM ({query}) AS violating;
