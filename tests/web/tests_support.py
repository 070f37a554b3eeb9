"""Small helpers shared by web tests."""

from pathlib import Path


def spool_files(root: Path) -> list[Path]:
    """Every file left under the upload spool."""
    if not root.exists():
        return []
    return [p for p in root.rglob("*") if p.is_file()]
