-- Before a CHECK constraint is added: rows for which its expression is false
-- (NULL passes a CHECK, as PostgreSQL has it). Added NOT VALID over such
-- rows it would already refuse the app's next update of one, and VALIDATE
-- would fail after its scan. At most five, each as its primary key and the
-- columns the expression names; stops at the fifth. Reads the table once
-- when none violates, under ACCESS SHARE only: with its partitions or
-- inheritance children (a CHECK holds for theirs too).
-- Filled in by datachecks.py (psycopg.sql): {table}, {expression}, {shown},
-- {limit} (5, or ALL for violation_count.sql).
SELECT {shown} AS shown
FROM {table}
WHERE ({expression}) IS FALSE
LIMIT {limit};
