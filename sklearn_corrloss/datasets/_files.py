"""File-system helpers of the loaders: find folders, index frame images, describe folders."""

from __future__ import annotations

import csv
import io
import re
import warnings
from pathlib import Path

import pandas as pd

from ._base import DatasetLayoutError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
_TRAILING_NUMBER = re.compile(r"(\d+)$")


def describe(path: Path, limit: int = 8) -> str:
    """A short listing of a folder for error messages: ``'a/, b/, c.txt (+5 more)'``."""
    path = Path(path)
    if not path.exists():
        return f"{path} does not exist"
    if not path.is_dir():
        return f"{path} is a file, not a folder"
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())
    entries = [e for e in entries if not e.startswith(".")]
    if not entries:
        return f"{path} is empty"
    shown = ", ".join(entries[:limit])
    more = f" (+{len(entries) - limit} more)" if len(entries) > limit else ""
    return f"{path} holds {shown}{more}"


def resolve_root(root, dataset: str) -> Path:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetLayoutError(f"{dataset} root {root} is not a folder ({describe(root)}).")
    return root.resolve()


def find_dir(root: Path, candidates, *, dataset: str, what: str, example: str) -> Path:
    """The first of ``candidates`` (paths relative to ``root``) that is a folder.

    Matching is case-insensitive per path component, because copies of the data sets
    differ in capitalisation (``Annotations`` / ``annotations``).
    """
    for candidate in candidates:
        found = _find_case_insensitive(root, Path(candidate).parts)
        if found is not None:
            return found
    tried = ", ".join(str(c) for c in candidates)
    raise DatasetLayoutError(
        f"{dataset}: no {what} folder under {root}; expected one of [{tried}] "
        f"(e.g. {example}). Found: {describe(root)}. "
        f"Pass the folder explicitly if your copy uses another layout."
    )


def _find_case_insensitive(root: Path, parts) -> Path | None:
    current = root
    for part in parts:
        if not current.is_dir():
            return None
        exact = current / part
        if exact.is_dir():
            current = exact
            continue
        matches = [p for p in current.iterdir() if p.is_dir() and p.name.lower() == part.lower()]
        if not matches:
            return None
        current = sorted(matches)[0]
    return current if current.is_dir() else None


def source_name(source) -> str:
    """File name of a path or open file, for error messages."""
    if isinstance(source, (str, Path)):
        return Path(source).name
    return Path(str(getattr(source, "name", "<buffer>"))).name


def read_label_csv(source, *, dataset: str):
    """Header and body of a comma-separated label file, parsed by pandas' C reader.

    Returns ``(name, header, table)``: ``header`` is the stripped first line's cells,
    ``table`` has positional columns 0..len(header)-1; blank lines are skipped, a short row
    is padded with NaN (callers decide whether that is allowed). A row with more cells than
    the header is an error naming the file and line.
    """
    name = source_name(source)
    if isinstance(source, (str, Path)):
        with open(source, encoding="utf-8", newline="") as handle:
            text = handle.read()
    else:
        text = source.read()
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        raise ValueError(f"{dataset} label file {name} is empty.")
    header = [cell.strip() for cell in next(csv.reader([first]))]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            table = pd.read_csv(
                io.StringIO(text),
                header=0,
                names=range(len(header)),
                index_col=False,
                skipinitialspace=True,
            )
    except (pd.errors.ParserWarning, pd.errors.ParserError):
        number, line = _first_long_line(lines, len(header))
        raise ValueError(
            f"{dataset} label file {name}, line {number}: more values than the "
            f"{len(header)} columns of the header ({line.strip()[:60]!r})."
        ) from None
    return name, header, table


def _first_long_line(lines, width: int):
    rows = csv.reader(lines)
    next(rows, None)
    for number, cells in enumerate(rows, start=2):
        while len(cells) > width and not cells[-1].strip():
            cells.pop()
        if len(cells) > width:
            return number, lines[number - 1]
    return 0, ""


def frame_number(path: Path) -> int | None:
    """The trailing integer of a file stem: ``0012.jpg`` -> 12, ``S005_001_00000011`` -> 11."""
    match = _TRAILING_NUMBER.search(Path(path).stem)
    return None if match is None else int(match.group(1))


def index_images(directory: Path, extensions=IMAGE_EXTENSIONS) -> dict[int, Path]:
    """Map frame number -> image file for the images in one folder (any zero padding).

    Two files for the same frame number (``12.jpg`` and ``0012.jpg``) are an error,
    since either could be the labelled frame.
    """
    directory = Path(directory)
    lookup: dict[int, Path] = {}
    if not directory.is_dir():
        return lookup
    allowed = {e.lower() for e in extensions}
    for path in sorted(directory.iterdir(), key=lambda p: p.name):
        if path.name.startswith(".") or path.suffix.lower() not in allowed:
            continue
        number = frame_number(path)
        if number is None:
            continue
        if number in lookup:
            raise ValueError(
                f"Two images for frame {number} in {directory}: "
                f"{lookup[number].name} and {path.name}."
            )
        lookup[number] = path
    return lookup


def select_ids(available, requested, *, dataset: str, what: str) -> list[str]:
    """Restrict sorted IDs to ``requested`` (None: all), naming unknown IDs in the error."""
    available = sorted(available)
    if requested is None:
        return available
    if isinstance(requested, str):
        requested = [requested]
    requested = [str(r) for r in requested]
    unknown = [r for r in requested if r not in available]
    if unknown:
        raise ValueError(
            f"{dataset}: unknown {what} {unknown}; available: {', '.join(available)}."
        )
    return [a for a in available if a in set(requested)]
