"""CorrLoss: binary cross-entropy plus a label co-occurrence term.

Implements equations 1-4 of Rieger et al., "CorrLoss: Integrating Co-Occurrence Domain
Knowledge for Affect Recognition" (ICPR 2022, arXiv:2210.17233) as plain functions and thin
``torch.nn.Module`` wrappers, in the style of kornia's losses.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["CorrBCELoss", "CorrLoss", "corr_loss", "pair_mask", "pearson_corr_matrix"]

#: Sums of squared deviations at or below this count as zero variance (r is then 0).
DEFAULT_EPS = 1e-8


def _check_matrix(x: Tensor, name: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}.")
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (N, U), got shape {tuple(x.shape)}.")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating point tensor, got dtype {x.dtype}.")


def _safe_inverse_sqrt(sum_squares: Tensor, eps: float) -> Tensor:
    """``1 / sqrt(s)`` where ``s > eps``, else 0, with finite gradients everywhere."""
    valid = sum_squares > eps
    safe = torch.where(valid, sum_squares, torch.ones_like(sum_squares))
    return torch.where(valid, torch.rsqrt(safe), torch.zeros_like(sum_squares))


def _pearson_complete(x: Tensor, eps: float) -> Tensor:
    centred = x - x.mean(dim=0, keepdim=True)
    inv_std = _safe_inverse_sqrt((centred * centred).sum(dim=0), eps)
    scaled = centred * inv_std
    return scaled.T @ scaled


def _pearson_pairwise(x: Tensor, observed: Tensor, eps: float) -> Tensor:
    # weights[i, a, b] = 1 where row i observes both columns a and b.
    weights = observed[:, :, None] * observed[:, None, :]
    x0 = torch.where(observed > 0, x, torch.zeros_like(x))
    counts = weights.sum(dim=0).clamp_min(1.0)
    mean_a = (weights * x0[:, :, None]).sum(dim=0) / counts
    mean_b = (weights * x0[:, None, :]).sum(dim=0) / counts
    dev_a = (x0[:, :, None] - mean_a) * weights
    dev_b = (x0[:, None, :] - mean_b) * weights
    cov = (dev_a * dev_b).sum(dim=0)
    inv_a = _safe_inverse_sqrt((dev_a * dev_a).sum(dim=0), eps)
    inv_b = _safe_inverse_sqrt((dev_b * dev_b).sum(dim=0), eps)
    return cov * inv_a * inv_b


def pearson_corr_matrix(
    x: Tensor, *, observed: Tensor | None = None, eps: float = DEFAULT_EPS
) -> Tensor:
    r"""Pearson correlation matrix of the columns of ``x`` (paper Eq. 1).

    Parameters
    ----------
    x : Tensor of shape (N, U)
        Samples in rows, variables (labels or predicted probabilities) in columns.
        NaN marks a missing value; correlations then use pairwise-complete rows.
    observed : Tensor of shape (N, U), optional
        Boolean mask of the entries to use (True = observed). Combined with the
        NaN mask of ``x``. Use it to compute predicted correlations on exactly the
        rows on which the labels are known.
    eps : float, default=1e-8
        A column whose sum of squared deviations is at or below ``eps`` has zero
        variance; its correlation with every column is defined as 0 (as
        :func:`sklearn.metrics.matthews_corrcoef` does), never NaN.

    Returns
    -------
    Tensor of shape (U, U)
        Symmetric matrix with entries in [-1, 1]. The diagonal is 1 for columns
        with variance and 0 for constant ones.

    Notes
    -----
    .. math::

        r(a, b) = \frac{\sum_i (a_i - \bar a)(b_i - \bar b)}
                       {\sqrt{\sum_i (a_i - \bar a)^2}\sqrt{\sum_i (b_i - \bar b)^2}}

    On binary columns this is the phi coefficient. Gradients are finite for
    constant columns and for a single row.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    >>> pearson_corr_matrix(x).round(decimals=3)
    tensor([[1.0000, 0.5000, 0.0000],
            [0.5000, 1.0000, 0.0000],
            [0.0000, 0.0000, 0.0000]])
    """
    _check_matrix(x, "x")
    missing = torch.isnan(x)
    if observed is not None:
        if observed.shape != x.shape:
            raise ValueError(
                f"observed must have the shape of x {tuple(x.shape)}, got {tuple(observed.shape)}."
            )
        missing = missing | ~observed.bool()
    if missing.any():
        r = _pearson_pairwise(x, (~missing).to(x.dtype), eps)
    else:
        r = _pearson_complete(x, eps)
    return r.clamp(-1.0, 1.0)


def pair_mask(
    n_labels: int,
    mask: Tensor | Sequence[tuple[int, int]] | None = None,
    *,
    device: torch.device | str | None = None,
) -> Tensor:
    """Boolean (U, U) matrix selecting label pairs, strictly above the diagonal.

    Parameters
    ----------
    n_labels : int
        Number of labels U.
    mask : None, bool Tensor/array of shape (U, U), or sequence of (a, b) index pairs
        None selects every pair (the paper's upper-triangular mask). A matrix
        selects pair (a, b) when either ``mask[a, b]`` or ``mask[b, a]`` is set,
        so symmetric and triangular masks mean the same. Pairs ``(a, a)`` are
        ignored.
    device : torch device, optional

    Returns
    -------
    Tensor of shape (U, U), dtype bool

    Examples
    --------
    >>> pair_mask(3, [(0, 2)]).int()
    tensor([[0, 0, 1],
            [0, 0, 0],
            [0, 0, 0]], dtype=torch.int32)
    """
    upper = torch.ones(n_labels, n_labels, dtype=torch.bool, device=device).triu(diagonal=1)
    if mask is None:
        return upper
    if isinstance(mask, Tensor) or hasattr(mask, "shape"):
        matrix = torch.as_tensor(mask, device=device)
        if matrix.shape != (n_labels, n_labels):
            raise ValueError(
                f"mask must have shape ({n_labels}, {n_labels}), got {tuple(matrix.shape)}."
            )
        matrix = matrix.bool()
    else:
        matrix = torch.zeros(n_labels, n_labels, dtype=torch.bool, device=device)
        for pair in mask:
            a, b = (int(i) for i in pair)
            if not (0 <= a < n_labels and 0 <= b < n_labels):
                raise ValueError(f"mask pair {pair!r} is out of range for {n_labels} labels.")
            matrix[a, b] = True
    selected = (matrix | matrix.T) & upper
    if not selected.any():
        raise ValueError("mask selects no label pair (a, b) with a != b.")
    return selected


def corr_loss(
    y_prob: Tensor,
    y_true: Tensor,
    *,
    mask: Tensor | Sequence[tuple[int, int]] | None = None,
    target: Tensor | None = None,
    eps: float = DEFAULT_EPS,
) -> Tensor:
    r"""CorrLoss (paper Eq. 2): mean absolute difference of label correlations.

    Parameters
    ----------
    y_prob : Tensor of shape (N, U)
        Predicted probabilities (after the sigmoid).
    y_true : Tensor of shape (N, U)
        Binary labels; NaN marks an unknown label. Correlations of a pair then use
        the rows where both labels are known, for labels and predictions alike.
    mask : None, bool (U, U) matrix or sequence of (a, b) pairs, optional
        Which label pairs enter the loss (see :func:`pair_mask`). Default: all
        pairs above the diagonal, as in the paper.
    target : Tensor of shape (U, U), optional
        A fixed correlation matrix to match instead of the batch correlation of
        ``y_true`` (for example a data-set-level estimate, which is less noisy for
        rare labels than a batch estimate).
    eps : float, default=1e-8
        Zero-variance threshold, see :func:`pearson_corr_matrix`.

    Returns
    -------
    Tensor
        Scalar in [0, 2].

    Notes
    -----
    With :math:`P` the set of selected pairs,

    .. math::

        c = \frac{1}{|P|} \sum_{(a, b) \in P}
            \bigl|\, |r_y(a, b) + 1| - |r_{\hat y}(a, b) + 1| \,\bigr|
          = \frac{1}{|P|} \sum_{(a, b) \in P} |r_y(a, b) - r_{\hat y}(a, b)|

    since :math:`r + 1 \ge 0`. For the default mask :math:`|P| = (U^2 - U)/2`.
    A pair involving a column without variance in the batch has r = 0.

    References
    ----------
    .. [1] Rieger, Pahl, Finzel, Schmid. "CorrLoss: Integrating Co-Occurrence Domain
       Knowledge for Affect Recognition." ICPR 2022. arXiv:2210.17233.

    Examples
    --------
    >>> import torch
    >>> y = torch.tensor([[1.0, 1.0], [1.0, 0.0], [0.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> float(corr_loss(y, y))
    0.0
    """
    _check_matrix(y_prob, "y_prob")
    _check_matrix(y_true, "y_true")
    if y_prob.shape != y_true.shape:
        raise ValueError(
            f"y_prob and y_true must have the same shape, got {tuple(y_prob.shape)} "
            f"and {tuple(y_true.shape)}."
        )
    n_labels = y_true.shape[1]
    if n_labels < 2:
        raise ValueError(f"CorrLoss needs at least 2 labels, got {n_labels}.")
    pairs = pair_mask(n_labels, mask, device=y_true.device)
    known = ~torch.isnan(y_true)
    if target is None:
        r_true = pearson_corr_matrix(y_true.to(y_prob.dtype), eps=eps)
    else:
        if target.shape != (n_labels, n_labels):
            raise ValueError(
                f"target must have shape ({n_labels}, {n_labels}), got {tuple(target.shape)}."
            )
        r_true = target.to(device=y_prob.device, dtype=y_prob.dtype)
    observed = None if bool(known.all()) else known
    r_pred = pearson_corr_matrix(y_prob, observed=observed, eps=eps)
    return (r_true - r_pred).abs()[pairs].mean()


class CorrLoss(nn.Module):
    """Module form of :func:`corr_loss`.

    Parameters
    ----------
    mask : None, bool (U, U) matrix or sequence of (a, b) pairs, optional
        Label pairs to use; default all pairs above the diagonal.
    target : array-like of shape (U, U), optional
        Fixed correlation matrix to match; default the batch correlation of the labels.
    eps : float, default=1e-8
        Zero-variance threshold.

    Examples
    --------
    >>> import torch
    >>> loss = CorrLoss()
    >>> y = torch.tensor([[1.0, 1.0], [0.0, 0.0], [1.0, 0.0]])
    >>> float(loss(torch.tensor([[0.9, 0.8], [0.1, 0.2], [0.8, 0.7]]), y)) < 1
    True
    """

    def __init__(self, *, mask=None, target=None, eps: float = DEFAULT_EPS):
        super().__init__()
        self.mask = mask
        self.eps = eps
        self.register_buffer(
            "target", None if target is None else torch.as_tensor(target, dtype=torch.float32)
        )

    def forward(self, y_prob: Tensor, y_true: Tensor) -> Tensor:
        """CorrLoss of a batch, with the module's ``mask``, ``target`` and ``eps``.

        Parameters
        ----------
        y_prob : Tensor of shape (N, U)
            Predicted probabilities (after the sigmoid).
        y_true : Tensor of shape (N, U)
            Binary labels; NaN marks an unknown label.

        Returns
        -------
        Tensor
            Scalar in [0, 2], see :func:`corr_loss`.
        """
        return corr_loss(y_prob, y_true, mask=self.mask, target=self.target, eps=self.eps)


class CorrBCELoss(nn.Module):
    r"""Binary cross-entropy on logits blended with CorrLoss (paper Eq. 4).

    Parameters
    ----------
    rho : float in [0, 1], default=0.0
        Weight of the correlation term; 0 is plain BCE, 1 is CorrLoss alone.
    mask : None, bool (U, U) matrix or sequence of (a, b) pairs, optional
        Label pairs for the correlation term (default all pairs).
    target : array-like of shape (U, U), optional
        Fixed correlation matrix to match instead of the batch correlation.
    pos_weight : array-like of shape (U,), optional
        Weight of positive examples per label, as in
        :func:`torch.nn.functional.binary_cross_entropy_with_logits`.
    eps : float, default=1e-8
        Zero-variance threshold of the correlations.

    Attributes
    ----------
    last_bce : Tensor
        Detached BCE part of the most recent call (for logging).
    last_corr : Tensor
        Detached CorrLoss part ``c`` of the most recent call (before the ``/ 2``).

    Notes
    -----
    .. math::

        \ell = (1 - \rho) \frac{1}{N} \sum_n e_n + \rho \frac{c}{2}, \qquad
        e_n = -\frac{1}{U} \sum_i y_{ni} \log \hat y_{ni} + (1 - y_{ni}) \log (1 - \hat y_{ni})

    Labels that are NaN (unknown) are left out of both terms; the BCE is then the
    mean over the known entries. The loss is computed in float32 even under
    autocast. With ``rho == 0`` the correlation term is still computed for logging,
    without gradient.

    References
    ----------
    .. [1] Rieger, Pahl, Finzel, Schmid. "CorrLoss: Integrating Co-Occurrence Domain
       Knowledge for Affect Recognition." ICPR 2022. arXiv:2210.17233.

    Examples
    --------
    >>> import torch
    >>> criterion = CorrBCELoss(rho=0.5)
    >>> logits = torch.zeros(4, 3, requires_grad=True)
    >>> y = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    >>> loss = criterion(logits, y)
    >>> loss.backward()
    >>> round(float(criterion.last_bce), 4)
    0.6931
    """

    def __init__(
        self,
        rho: float = 0.0,
        *,
        mask=None,
        target=None,
        pos_weight=None,
        eps: float = DEFAULT_EPS,
    ):
        super().__init__()
        if not 0.0 <= float(rho) <= 1.0:
            raise ValueError(f"rho must lie in [0, 1], got {rho!r}.")
        self.rho = float(rho)
        self.mask = mask
        self.eps = eps
        self.register_buffer(
            "target", None if target is None else torch.as_tensor(target, dtype=torch.float32)
        )
        self.register_buffer(
            "pos_weight",
            None if pos_weight is None else torch.as_tensor(pos_weight, dtype=torch.float32),
        )
        self.last_bce = torch.tensor(float("nan"))
        self.last_corr = torch.tensor(float("nan"))

    def forward(self, logits: Tensor, y_true: Tensor) -> Tensor:
        r"""Blended loss of a batch, computed in float32; sets ``last_bce`` and ``last_corr``.

        Parameters
        ----------
        logits : Tensor of shape (N, U)
            Raw network outputs (before the sigmoid).
        y_true : Tensor of shape (N, U)
            Binary labels; NaN marks an unknown label, left out of both terms.

        Returns
        -------
        Tensor
            Scalar :math:`(1 - \rho)\,\mathrm{BCE} + \rho\, c / 2`, with the BCE
            averaged over the known labels (plain BCE when ``rho`` is 0; ``c`` is 0
            for a single label).
        """
        _check_matrix(logits, "logits")
        if logits.shape != y_true.shape:
            raise ValueError(
                f"logits and y_true must have the same shape, got {tuple(logits.shape)} "
                f"and {tuple(y_true.shape)}."
            )
        with torch.autocast(device_type=logits.device.type, enabled=False):
            logits = logits.float()
            y_true = y_true.float()
            known = ~torch.isnan(y_true)
            y_filled = torch.where(known, y_true, torch.zeros_like(y_true))
            elementwise = F.binary_cross_entropy_with_logits(
                logits, y_filled, pos_weight=self.pos_weight, reduction="none"
            )
            bce = (elementwise * known).sum() / known.sum().clamp_min(1)
            if y_true.shape[1] < 2:
                corr = torch.zeros((), device=logits.device)
            else:
                with torch.set_grad_enabled(torch.is_grad_enabled() and self.rho > 0):
                    corr = corr_loss(
                        torch.sigmoid(logits),
                        y_true,
                        mask=self.mask,
                        target=self.target,
                        eps=self.eps,
                    )
            self.last_bce = bce.detach()
            self.last_corr = corr.detach()
            if self.rho == 0.0:
                return bce
            return (1.0 - self.rho) * bce + self.rho * corr / 2.0
