"""mkdocs hook (mkdocs.yml `hooks:`): links from the docs to repository files outside docs/.

The pages link to benchmark runs, demo SQL and code with plain relative links
(`../benchmarks/results/<run>.md`), so that they work on GitHub too. mkdocs resolves links
only inside docs/: this hook adds each such target to the site under repo/<its path> (a
Markdown one as a page outside the nav, whose own links are followed the same way) and
points the link there. A target that does not exist is left alone, and
`mkdocs build --strict` fails on it as on any broken link.
"""

import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File, InclusionLevel

FOLDER = "repo"
_LINK = re.compile(r"\]\(([^)\s#]+)")


def _repository_path(src_uri: str) -> str:
    """Where a page of the site lives in the repository."""
    return src_uri[len(FOLDER) + 1:] if src_uri.startswith(f"{FOLDER}/") else f"docs/{src_uri}"


def _outside_docs(src_uri: str, link: str) -> str | None:
    """The repository path a relative link reaches, when that is outside docs/; else None."""
    if "://" in link or link.startswith(("/", "mailto:")):
        return None
    path = posixpath.normpath(posixpath.join(posixpath.dirname(_repository_path(src_uri)), link))
    return None if path.startswith(("../", "docs/")) else path


def on_files(files, config):
    root = Path(config.docs_dir).parent
    pending = list(files.documentation_pages())
    while pending:
        page = pending.pop()
        for link in _LINK.findall(Path(page.abs_src_path).read_text(encoding="utf-8")):
            path = _outside_docs(page.src_uri, link)
            if path is None or not (root / path).is_file() or files.get_file_from_path(f"{FOLDER}/{path}"):
                continue
            added = File.generated(config, f"{FOLDER}/{path}", abs_src_path=str(root / path),
                                   inclusion=InclusionLevel.NOT_IN_NAV)
            files.append(added)
            if added.is_documentation_page():
                pending.append(added)
    return files


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri.startswith(f"{FOLDER}/"):
        return markdown  # its links are relative to its own folder, which repo/ mirrors

    def to_copy(match):
        path = _outside_docs(page.file.src_uri, match[1])
        if path is None or files.get_file_from_path(f"{FOLDER}/{path}") is None:
            return match[0]
        return "](" + posixpath.relpath(f"{FOLDER}/{path}", posixpath.dirname(page.file.src_uri) or ".")

    return _LINK.sub(to_copy, markdown)
