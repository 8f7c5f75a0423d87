-- yoyo's own lock row (pid and time of the yoyo process that holds it). Read
-- while we hold the migrator advisory lock: a row then is stale, left by a
-- run that was killed before it could delete it.
SELECT pid, ctime FROM yoyo_lock;
