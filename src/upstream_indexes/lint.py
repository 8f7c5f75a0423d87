"""`invoke lint`: the migration files checked without a database: our header grammar (which
squawk cannot see: `-- transactional: false` is a comment to it), the header's TODO lines that
`invoke new` asks the author to fill in, then squawk (the `lint` extra) with the checkout's
.squawk.toml. Any finding fails."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

from .errors import ToolError
from .migrations import problems as migration_problems
from .paths import CATALOGUE, MIGRATIONS_DIR, SQUAWK_CONFIG

_FINDING = re.compile(r"^.+:\d+:\d+: (warning|error): ", re.MULTILINE)
_TODO = re.compile(r"^\s*--.*\bTODO\b")


def squawk_command() -> str:
    """squawk from this environment's `lint` extra (next to the running Python), else from PATH."""
    beside = Path(sys.executable).parent / "squawk"
    found = str(beside) if beside.exists() else shutil.which("squawk")
    if not found:
        raise ToolError("squawk not found: it is the lint extra, pip install 'upstream-indexes[lint]' "
                        "(or put squawk on PATH)")
    return found


def findings(directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Every problem as one line: each file's header grammar problem, each TODO left in a header, then each
    squawk finding."""
    problems = [f"header grammar: {problem}" for problem in migration_problems(directory)]
    files = sorted(path.name for path in directory.glob("*.sql") if path.name != CATALOGUE.name)
    problems += [problem for name in files for problem in todos(directory, name)]
    if files:
        problems += squawk(directory, files)
    return problems


def todos(directory: Path, name: str) -> list[str]:
    """The comment lines still marked TODO (`invoke new` writes the header's what / why / cost so), each as
    `header TODO: <folder>/<file>:<line>: <text>`."""
    lines = (directory / name).read_text(encoding="utf-8", errors="replace").splitlines()
    return [f"header TODO: {directory.name}/{name}:{number}: {line.strip()}"
            for number, line in enumerate(lines, 1) if _TODO.match(line)]


def squawk(directory: Path, files: list[str]) -> list[str]:
    """squawk's findings, one line each, named `<folder>/<file>:line:column`."""
    result = subprocess.run([squawk_command(), "--config", str(SQUAWK_CONFIG), "--reporter", "gcc",
                             *(f"{directory.name}/{name}" for name in files)],
                            cwd=directory.resolve().parent, capture_output=True, text=True)
    lines = [line for line in result.stdout.splitlines() if _FINDING.match(line)]
    if result.returncode and not lines:
        message = (result.stderr or result.stdout).strip().splitlines()
        raise ToolError(f"squawk failed (exit {result.returncode}): {message[0] if message else 'no output'}")
    return lines
