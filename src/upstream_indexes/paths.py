"""Where the project's files live. The package runs from its checkout
(`pip install -e .`): migrations/, verify/ and demo/ are read, not packaged."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS_DIR = ROOT / "migrations"
VERIFY_DIR = ROOT / "verify"
DEMO_DIR = ROOT / "demo"
PGDATA = ROOT / ".pgdata"
