"""What this tool knows about PostgreSQL versions, in one place; docs/versions.md
has the same facts as a table, with what the tests found on each major.

Versions are server_version_num values: major * 10000 + minor (10 and later).
"""

MIN_SERVER_VERSION = 120000  # INCLUDE (11) and pg_stat_progress_create_index (12)
DROP_DATABASE_FORCE = 130000  # DROP DATABASE ... WITH (FORCE)
# A CREATE INDEX CONCURRENTLY of an index without expression or WHERE no longer waits for the
# snapshots of another such build (on another table): builds can run side by side (migrate --jobs).
SAFE_CIC_SKIPPED = 140000

# 14.0 to 14.3: CREATE INDEX CONCURRENTLY and REINDEX CONCURRENTLY could miss rows updated
# during the build, leaving a corrupt index (fixed in 14.4; its release notes say to rebuild).
CIC_CORRUPTION_FIRST = 140000
CIC_CORRUPTION_LAST = 140003


def describe(version: int) -> str:
    """server_version_num as people write it: 140003 -> 14.3."""
    return f"{version // 10000}.{version % 10000}"


def unsupported(version: int) -> str | None:
    """Why the tool cannot run on this server at all, or None."""
    if version < MIN_SERVER_VERSION:
        return (f"PostgreSQL {version // 10000} is not supported: need {MIN_SERVER_VERSION // 10000} or newer "
                "(INCLUDE and pg_stat_progress_create_index)")
    return None


def has_cic_corruption_bug(version: int) -> bool:
    return CIC_CORRUPTION_FIRST <= version <= CIC_CORRUPTION_LAST


def _cic_corruption(version: int) -> str:
    fixed_in = describe(CIC_CORRUPTION_LAST + 1)
    return (f"PostgreSQL {describe(version)} can build corrupt indexes with CREATE INDEX CONCURRENTLY "
            f"(bug of {describe(CIC_CORRUPTION_FIRST)} to {describe(CIC_CORRUPTION_LAST)}, fixed in {fixed_in})")


def unsafe_to_build(version: int) -> str | None:
    """Why migrate must not build on this server (rollback may still drop), or None."""
    if not has_cic_corruption_bug(version):
        return None
    return (f"{_cic_corruption(version)}: refusing to build; upgrade to {describe(CIC_CORRUPTION_LAST + 1)} or "
            "later (a minor update), rebuild every index built concurrently before the upgrade "
            "(REINDEX INDEX CONCURRENTLY), then run migrate")


def cic_corruption_warning(version: int) -> str | None:
    """What verify says on a server of the buggy range, or None."""
    if not has_cic_corruption_bug(version):
        return None
    return (f"{_cic_corruption(version)}: indexes built concurrently here (REINDEX CONCURRENTLY too) may miss "
            "rows; check them (`invoke verify --deep`, pg_amcheck --heapallindexed, or amcheck's "
            "bt_index_check(index, heapallindexed => true)) or rebuild them after upgrading to "
            f"{describe(CIC_CORRUPTION_LAST + 1)} or later")
