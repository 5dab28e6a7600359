"""Output files that are either complete or absent: never half written.

:func:`atomic_output` hands out a temporary file beside the target and moves it onto the
target with :func:`os.replace` only when writing succeeded, so an error (a full disk, an
interrupted run, a failing writer) leaves an existing file untouched and no partial file
behind. :func:`prepare_parent` creates the target's folders and says clearly when a part of
the path is a file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_output", "check_output_path", "prepare_parent"]


def check_output_path(path, *, folder: bool = False) -> Path:
    """Check, without creating anything, that ``path`` can become a file (or a folder).

    Commands call it before long work, so that a wrong output path fails at once.

    Parameters
    ----------
    path : str or os.PathLike
    folder : bool, default=False
        Whether ``path`` is an output folder rather than a file.

    Raises
    ------
    IsADirectoryError
        If ``path`` is an existing folder but should be a file.
    NotADirectoryError
        If ``path`` (for a folder) or one of its parents is an existing file (the message
        names it).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     _ = (Path(folder) / "notes.txt").write_text("x")
    ...     check_output_path(Path(folder) / "notes.txt" / "model.zip")
    Traceback (most recent call last):
    ...
    NotADirectoryError: Cannot write .../model.zip: .../notes.txt is a file, not a folder.
    """
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise NotADirectoryError(f"Cannot write into {path}: it is a file, not a folder.")
    if not folder and path.is_dir():
        raise IsADirectoryError(f"Cannot write {path}: it is a folder, not a file.")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(f"Cannot write {path}: {parent} is a file, not a folder.")
            break
    return path


def prepare_parent(path) -> Path:
    """Create the folders above ``path`` after :func:`check_output_path`; return ``path``."""
    path = check_output_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_output(path) -> Iterator[Path]:
    """Write to a temporary file beside ``path``; move it onto ``path`` on success.

    Parent folders are created (:func:`prepare_parent`). The temporary file keeps the
    target's suffix, so writers that pick the format from it (``DataFrame.to_csv`` with
    compression, ``Figure.savefig``) behave as for the target. On any exception the
    temporary file is removed and ``path`` keeps its previous content.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.

    Yields
    ------
    Path
        The temporary file to write to.

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "table.csv"
    >>> _ = target.write_text("old")
    >>> try:
    ...     with atomic_output(target) as tmp:
    ...         _ = tmp.write_text("half a tab")
    ...         raise OSError("disk full")
    ... except OSError:
    ...     pass
    >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
    ('old', ['table.csv'])
    """
    path = prepare_parent(path)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp{path.suffix}"
    # Created like a plain open() would (mode 0o666 less the umask), unlike mkstemp's 0o600.
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
