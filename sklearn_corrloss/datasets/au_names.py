"""Action Unit names: one spelling everywhere (``AU01``) and alignment across data sets.

Every data set writes AUs its own way: BP4D's CSV header holds bare numbers (``1``),
Aff-Wild2's header ``AU1``, CK+'s FACS files floats (``1.2000000e+01``), DISFA's file
names ``au1``. Labels from two data sets only line up after one normalisation.
"""

from __future__ import annotations

import re
from numbers import Integral, Real

__all__ = ["align_datasets", "au_number", "is_au_name", "normalize_au_name", "shared_aus"]

_AU_PATTERN = re.compile(r"^(?:AU)?[\s_\-]*0*(\d{1,3})(?:\.0+)?$", re.IGNORECASE)


def au_number(name) -> int:
    """The FACS number of an Action Unit written in any common spelling.

    Parameters
    ----------
    name : str, int or float
        ``1``, ``1.0``, ``"1"``, ``"AU1"``, ``"au01"``, ``"AU 1"``, ``"AU_1"``, ``"AU01"``.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        If ``name`` is not an AU spelling (e.g. ``"AU1_r"``, ``"1.5"``, ``"smile"``).

    Examples
    --------
    >>> au_number("au 12"), au_number(9.0)
    (12, 9)
    """
    if isinstance(name, bool):
        raise ValueError(f"Not an Action Unit name: {name!r} (a boolean).")
    if isinstance(name, Integral):
        number = int(name)
    elif isinstance(name, Real):
        if not float(name).is_integer():
            raise ValueError(f"Not an Action Unit name: {name!r} (AU numbers are integers).")
        number = int(name)
    elif isinstance(name, str):
        match = _AU_PATTERN.match(name.strip())
        if match is None:
            raise ValueError(
                f"Not an Action Unit name: {name!r}; expected a spelling such as "
                "'1', 'AU1', 'au01', 'AU 1' or 'AU01'."
            )
        number = int(match.group(1))
    else:
        raise ValueError(f"Not an Action Unit name: {name!r} of type {type(name).__name__}.")
    if number < 0:
        raise ValueError(f"Not an Action Unit name: {name!r} (negative number).")
    return number


def normalize_au_name(name) -> str:
    """Canonical Action Unit name: ``AU`` plus at least two digits.

    Parameters
    ----------
    name : str, int or float
        Any spelling accepted by :func:`au_number`.

    Returns
    -------
    str
        ``"AU01"``, ``"AU12"``, ``"AU101"``...

    Examples
    --------
    >>> [normalize_au_name(n) for n in (1, "AU1", "au01", "AU 1", "12", 26.0)]
    ['AU01', 'AU01', 'AU01', 'AU01', 'AU12', 'AU26']
    """
    return f"AU{au_number(name):02d}"


def is_au_name(name) -> bool:
    """Whether :func:`normalize_au_name` accepts ``name``.

    Examples
    --------
    >>> is_au_name("AU6"), is_au_name("subject")
    (True, False)
    """
    try:
        au_number(name)
    except ValueError:
        return False
    return True


def _sorted_aus(names) -> list[str]:
    return sorted({normalize_au_name(n) for n in names}, key=au_number)


def _coded_aus(dataset) -> set[str]:
    """AU columns with at least one known (non-NaN) label."""
    labels = dataset.labels
    return {str(c) for c in labels.columns if labels[c].notna().any()}


def shared_aus(*datasets) -> list[str]:
    """AUs coded (at least one known label) in every data set, in AU order.

    Parameters
    ----------
    *datasets : AUDataset
        One or more loaded data sets (anything with a ``labels`` DataFrame).

    Returns
    -------
    list of str
        AU names, sorted by AU number.

    Raises
    ------
    ValueError
        If no data set is given.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_corrloss.datasets._base import AUDataset
    >>> a = AUDataset(paths=["a.png"], labels=pd.DataFrame({"AU01": [1], "AU02": [0]}),
    ...               subjects=["s1"])
    >>> b = AUDataset(paths=["b.png"], labels=pd.DataFrame({"AU02": [1], "AU04": [1]}),
    ...               subjects=["s2"])
    >>> shared_aus(a, b)
    ['AU02']
    """
    if not datasets:
        raise ValueError("shared_aus needs at least one data set.")
    common = set.intersection(*(_coded_aus(d) for d in datasets))
    return _sorted_aus(common)


def align_datasets(*datasets, aus=None) -> list:
    """Restrict several data sets to the AUs they all code (cross-dataset experiments).

    Parameters
    ----------
    *datasets : AUDataset
        Two or more loaded data sets.
    aus : list of AU names, optional
        Keep exactly these AUs (any spelling); each must be coded in every data set.
        Default: every AU coded in all of them (:func:`shared_aus`).

    Returns
    -------
    list of AUDataset
        Same order as given; label columns identical, in AU order.

    Raises
    ------
    ValueError
        If the data sets share no AU, or a requested AU is missing from one of them;
        the message lists each data set's AUs.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_corrloss.datasets._base import AUDataset
    >>> bp4d = AUDataset(paths=["a.jpg"], subjects=["F001"], name="bp4d",
    ...                  labels=pd.DataFrame({"AU01": [1], "AU12": [0], "AU24": [1]}))
    >>> ck = AUDataset(paths=["b.png"], subjects=["S005"], name="ckplus",
    ...                labels=pd.DataFrame({"AU01": [0], "AU12": [1], "AU27": [1]}))
    >>> [list(d.labels.columns) for d in align_datasets(bp4d, ck)]
    [['AU01', 'AU12'], ['AU01', 'AU12']]
    """
    if len(datasets) < 2:
        raise ValueError(f"align_datasets needs at least two data sets, got {len(datasets)}.")

    def listing() -> str:
        return "; ".join(
            f"{d.name}: {', '.join(_sorted_aus(_coded_aus(d))) or 'none'}" for d in datasets
        )

    if aus is None:
        keep = shared_aus(*datasets)
        if not keep:
            raise ValueError(f"The data sets share no coded AU ({listing()}).")
    else:
        keep = _sorted_aus(aus)
        for dataset in datasets:
            missing = [au for au in keep if au not in _coded_aus(dataset)]
            if missing:
                raise ValueError(
                    f"Data set {dataset.name!r} does not code {', '.join(missing)} ({listing()})."
                )
    return [dataset.select_aus(keep) for dataset in datasets]
