"""CorrLoss against a plain NumPy reference, gradients, and invariants."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sklearn_corrloss import CorrBCELoss, CorrLoss, corr_loss, pearson_corr_matrix
from sklearn_corrloss.losses import pair_mask

EPS = 1e-8


# --- NumPy reference: one pair at a time, straight from the paper's Eq. 1 and 2 -------------
def reference_pearson(a, b):
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    if len(a) == 0:
        return 0.0
    da, db = a - a.mean(), b - b.mean()
    ssa, ssb = (da**2).sum(), (db**2).sum()
    if ssa <= EPS or ssb <= EPS:
        return 0.0
    return float(np.clip((da * db).sum() / np.sqrt(ssa * ssb), -1, 1))


def reference_corr_loss(y_prob, y_true, pairs=None):
    n_labels = y_true.shape[1]
    if pairs is None:
        pairs = [(a, b) for a in range(n_labels) for b in range(a + 1, n_labels)]
    total = 0.0
    for a, b in pairs:
        known = ~(np.isnan(y_true[:, a]) | np.isnan(y_true[:, b]))
        p_y = reference_pearson(y_true[known, a], y_true[known, b])
        p_hat = reference_pearson(y_prob[known, a], y_prob[known, b])
        total += abs(abs(p_y + 1) - abs(p_hat + 1))
    return total / len(pairs)


def random_batch(rng, degenerate):
    n = int(rng.integers(1, 40))
    u = int(rng.integers(2, 9))
    y_true = (rng.random((n, u)) < rng.uniform(0.05, 0.6)).astype(np.float64)
    y_prob = rng.random((n, u))
    if degenerate == "constant":
        y_true[:, rng.integers(u)] = rng.integers(0, 2)
        y_prob[:, rng.integers(u)] = 0.5
    elif degenerate == "zeros":
        y_true[:] = 0
    elif degenerate == "extreme":
        y_prob = np.round(y_prob)
    elif degenerate == "missing":
        y_true[rng.random((n, u)) < 0.3] = np.nan
    return y_prob, y_true


@pytest.mark.parametrize("seed", range(250))
def test_matches_numpy_reference(seed):
    rng = np.random.default_rng(seed)
    kind = ["none", "constant", "zeros", "extreme", "missing"][seed % 5]
    y_prob, y_true = random_batch(rng, kind)
    expected = reference_corr_loss(y_prob, y_true)
    got = corr_loss(torch.tensor(y_prob), torch.tensor(y_true)).item()
    assert got == pytest.approx(expected, abs=1e-6)


def test_paper_worked_example():
    # Fig. 2: two labels with r_true = 0.4 and predictions with r_pred = 0.5 give c = 0.1.
    # phi of the 2x2 table n11 = n00 = 7, n10 = n01 = 3 is (7 - 3) / 10 = 0.4.
    y_true = torch.tensor([[1, 1]] * 7 + [[1, 0]] * 3 + [[0, 1]] * 3 + [[0, 0]] * 7).double()
    # x and z are centred, orthogonal and of equal norm, so corr(x, 0.5 x + sqrt(.75) z) = 0.5.
    x = torch.tensor([1.0, -1.0, 1.0, -1.0, 0.0], dtype=torch.float64).repeat(4)
    z = torch.tensor([1.0, 1.0, -1.0, -1.0, 0.0], dtype=torch.float64).repeat(4)
    y_prob = 0.5 + 0.2 * torch.stack([x, 0.5 * x + 0.75**0.5 * z], dim=1)
    assert pearson_corr_matrix(y_true)[0, 1].item() == pytest.approx(0.4, abs=1e-12)
    assert pearson_corr_matrix(y_prob)[0, 1].item() == pytest.approx(0.5, abs=1e-12)
    assert corr_loss(y_prob, y_true).item() == pytest.approx(0.1, abs=1e-6)
    assert reference_corr_loss(y_prob.numpy(), y_true.numpy()) == pytest.approx(0.1, abs=1e-9)


def test_pair_masks_select_pairs():
    rng = np.random.default_rng(0)
    y_prob, y_true = random_batch(rng, "none")
    u = y_true.shape[1]
    pairs = [(0, 1), (u - 1, 0)]
    expected = reference_corr_loss(y_prob, y_true, pairs=[(0, 1), (0, u - 1)])
    got_list = corr_loss(torch.tensor(y_prob), torch.tensor(y_true), mask=pairs).item()
    matrix = np.zeros((u, u), dtype=bool)
    matrix[0, 1] = matrix[u - 1, 0] = True
    got_matrix = corr_loss(torch.tensor(y_prob), torch.tensor(y_true), mask=matrix).item()
    assert got_list == pytest.approx(expected, abs=1e-9)
    assert got_matrix == pytest.approx(expected, abs=1e-9)


def test_bad_masks_and_shapes_are_refused():
    with pytest.raises(ValueError, match="no label pair"):
        pair_mask(3, [(1, 1)])
    with pytest.raises(ValueError, match="out of range"):
        pair_mask(3, [(0, 3)])
    with pytest.raises(ValueError, match=r"shape \(3, 3\)"):
        pair_mask(3, np.ones((2, 2), dtype=bool))
    with pytest.raises(ValueError, match="same shape"):
        corr_loss(torch.rand(4, 3), torch.rand(4, 2))
    with pytest.raises(ValueError, match="shape \\(N, U\\)"):
        corr_loss(torch.rand(4), torch.rand(4))
    with pytest.raises(TypeError, match="floating point"):
        corr_loss(torch.ones(4, 3, dtype=torch.long), torch.ones(4, 3))
    with pytest.raises(ValueError, match="at least 2 labels"):
        corr_loss(torch.rand(4, 1), torch.rand(4, 1))
    with pytest.raises(ValueError, match="rho must lie"):
        CorrBCELoss(rho=1.5)


def test_gradcheck_double_precision():
    torch.manual_seed(0)
    y_true = (torch.rand(12, 4, dtype=torch.float64) < 0.5).double()
    y_true[:, 3] = 1.0  # a constant column too
    logits = torch.randn(12, 4, dtype=torch.float64, requires_grad=True)

    def fn(z):
        return corr_loss(torch.sigmoid(z), y_true)

    assert torch.autograd.gradcheck(fn, (logits,), eps=1e-6, atol=1e-5)

    y_missing = y_true.clone()
    y_missing[::3, 0] = float("nan")

    def fn_missing(z):
        return corr_loss(torch.sigmoid(z), y_missing)

    assert torch.autograd.gradcheck(fn_missing, (logits,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize(
    "y_true",
    [
        torch.ones(1, 4),  # batch size 1
        torch.zeros(8, 4),  # all-zero labels
        torch.tensor([[1.0, 0.0, 1.0, 1.0]] * 8),  # constant columns
    ],
)
@pytest.mark.parametrize("logit_value", [0.0, 100.0, -100.0])
def test_degenerate_batches_have_finite_loss_and_gradient(y_true, logit_value):
    logits = torch.full(y_true.shape, logit_value, requires_grad=True)
    criterion = CorrBCELoss(rho=0.5)
    loss = criterion(logits, y_true)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(logits.grad).all()
    # probabilities exactly 0 or 1 straight into the correlation term
    probs = torch.full(y_true.shape, float(logit_value > 0), requires_grad=True)
    c = corr_loss(probs, y_true)
    c.backward()
    assert torch.isfinite(c) and torch.isfinite(probs.grad).all()


def test_corr_bce_blends_as_equation_4():
    torch.manual_seed(1)
    logits = torch.randn(16, 5)
    y = (torch.rand(16, 5) < 0.4).float()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
    c = corr_loss(torch.sigmoid(logits), y)
    for rho in (0.0, 0.3, 1.0):
        criterion = CorrBCELoss(rho=rho)
        expected = (1 - rho) * bce + rho * c / 2
        assert criterion(logits, y).item() == pytest.approx(expected.item(), abs=1e-6)
        assert criterion.last_bce.item() == pytest.approx(bce.item(), abs=1e-6)
        assert criterion.last_corr.item() == pytest.approx(c.item(), abs=1e-6)


def test_corr_bce_ignores_unknown_labels_and_uses_pos_weight():
    torch.manual_seed(2)
    logits = torch.randn(10, 3)
    y = (torch.rand(10, 3) < 0.5).float()
    y_missing = y.clone()
    y_missing[:4, 1] = float("nan")
    known = ~torch.isnan(y_missing)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits[known], y[known])
    criterion = CorrBCELoss(rho=0.0)
    assert criterion(logits, y_missing).item() == pytest.approx(expected.item(), abs=1e-6)
    weighted = CorrBCELoss(pos_weight=[2.0, 1.0, 1.0])
    assert weighted(logits, y).item() > CorrBCELoss()(logits, y).item() - 1e-9


def test_float32_under_autocast():
    logits = torch.randn(8, 4, dtype=torch.bfloat16, requires_grad=True)
    y = (torch.rand(8, 4) < 0.5).float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = CorrBCELoss(rho=0.5)(logits, y)
    assert loss.dtype == torch.float32
    loss.backward()
    assert torch.isfinite(logits.grad.float()).all()


def test_module_with_fixed_target_and_buffers():
    target = np.array([[1.0, 0.6], [0.6, 1.0]])
    module = CorrLoss(target=target)
    assert "target" in dict(module.named_buffers())
    y_prob = torch.tensor([[0.9, 0.8], [0.1, 0.3], [0.7, 0.2], [0.2, 0.6]])
    r = pearson_corr_matrix(y_prob)[0, 1].item()
    assert module(y_prob, torch.zeros(4, 2)).item() == pytest.approx(abs(0.6 - r), abs=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda():
    criterion = CorrBCELoss(rho=0.5, target=np.eye(3)).cuda()
    logits = torch.randn(8, 3, device="cuda", requires_grad=True)
    y = (torch.rand(8, 3, device="cuda") < 0.5).float()
    criterion(logits, y).backward()
    assert torch.isfinite(logits.grad).all()


# --- Property-based invariants --------------------------------------------------------------
label_batches = st.integers(2, 6).flatmap(
    lambda u: st.tuples(
        arrays(
            np.float64,
            st.tuples(st.integers(1, 24), st.just(u)),
            elements=st.sampled_from([0.0, 1.0]),
        ),
        st.integers(0, 2**31 - 1),
    )
)


@settings(max_examples=60, deadline=None)
@given(label_batches)
def test_range_and_finiteness(batch):
    y_true, seed = batch
    y_prob = np.random.default_rng(seed).random(y_true.shape)
    value = corr_loss(torch.tensor(y_prob), torch.tensor(y_true)).item()
    assert np.isfinite(value) and 0.0 <= value <= 2.0


@settings(max_examples=60, deadline=None)
@given(label_batches)
def test_invariant_to_consistent_label_permutation(batch):
    y_true, seed = batch
    rng = np.random.default_rng(seed)
    y_prob = rng.random(y_true.shape)
    order = rng.permutation(y_true.shape[1])
    original = corr_loss(torch.tensor(y_prob), torch.tensor(y_true)).item()
    permuted = corr_loss(torch.tensor(y_prob[:, order]), torch.tensor(y_true[:, order])).item()
    assert permuted == pytest.approx(original, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(label_batches)
def test_zero_when_predictions_equal_labels(batch):
    y_true, _ = batch
    assert corr_loss(torch.tensor(y_true), torch.tensor(y_true)).item() == pytest.approx(
        0, abs=1e-9
    )


@settings(max_examples=40, deadline=None)
@given(label_batches)
def test_pearson_matrix_symmetric_and_bounded(batch):
    y_true, seed = batch
    x = torch.tensor(np.random.default_rng(seed).random(y_true.shape) * y_true)
    r = pearson_corr_matrix(x)
    assert torch.allclose(r, r.T)
    assert torch.isfinite(r).all() and r.abs().max() <= 1.0
