"""`invoke sql` as a DBA reads it (issue 23): the script leaves out the files' header blocks, so it must
not keep a comment that points at them ("see above"); why there is no IF NOT EXISTS is in its own header."""

from support import invoke


def test_the_script_keeps_no_comment_whose_header_it_dropped():
    result = invoke("sql")
    assert result.returncode == 0, result.stderr
    assert "squawk-ignore" not in result.stdout and "see above" not in result.stdout, result.stdout
    assert result.stdout.count("CREATE INDEX CONCURRENTLY") == 3
    assert "no CREATE INDEX says IF NOT EXISTS, on purpose" in result.stdout
