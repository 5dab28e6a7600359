"""MultiLabelBalancer (exact copies, bounds, types, pipelines) and the imbalance measures."""

import importlib.util
import math
import pickle
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from imblearn.pipeline import Pipeline
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_corrloss.balancing import MultiLabelBalancer, label_groups
from sklearn_corrloss.imbalance import (
    check_label_matrix,
    imbalance_measures,
    irlbl,
    measures_from_groups,
    scumble,
)

OBJECTIVES = ["log_spread", "cv2"]
nan = np.nan


def positive_counts(Y):
    return (np.asarray(Y, dtype=float) == 1).sum(axis=0)


# --- exact copies on hand-solvable label matrices --------------------------------------------
# Label counts can be equal exactly, so both objectives reach zero imbalance and lambda picks
# the smallest such output: the expected copies follow by hand (see each comment).


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_two_groups_exact_copies(objective):
    # c_A = 6 a, c_B = b: equal at b = 6 a; the smallest output has a = 1, b = 6 (= max_copies).
    X = np.arange(14).reshape(7, 2)
    Y = np.array([[1, 0]] * 6 + [[0, 1]])
    balancer = MultiLabelBalancer(objective=objective, random_state=0)
    X_res, Y_res = balancer.fit_resample(X, Y)
    np.testing.assert_array_equal(balancer.sample_indices_, [0, 1, 2, 3, 4, 5] + [6] * 6)
    np.testing.assert_array_equal(X_res, X[balancer.sample_indices_])
    np.testing.assert_array_equal(Y_res, Y[balancer.sample_indices_])
    np.testing.assert_array_equal(positive_counts(Y_res), [6, 6])
    assert balancer.imbalance_before_["MeanIR"] == 3.5
    assert balancer.imbalance_after_["MeanIR"] == 1.0


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_overlapping_groups_exact_copies(objective):
    # c_A = 4 a + e, c_B = 2 b + e: equal iff b = 2 a; size 8 a + e is smallest at a = e = 1.
    Y = np.array([[1, 0]] * 4 + [[0, 1]] * 2 + [[1, 1]])
    balancer = MultiLabelBalancer(objective=objective, random_state=0).fit(np.zeros((7, 1)), Y)
    np.testing.assert_array_equal(balancer.sample_indices_, [0, 1, 2, 3, 4, 4, 5, 5, 6])
    groups = balancer.group_copies_
    assert list(groups.columns) == ["label_0", "label_1", "n_samples", "n_output", "copies"]
    assert groups[["label_0", "label_1"]].to_numpy().tolist() == [[0, 1], [1, 0], [1, 1]]
    assert groups["n_samples"].tolist() == [2, 4, 1]
    assert groups["n_output"].tolist() == [4, 4, 1]
    assert groups["copies"].tolist() == [2.0, 1.0, 1.0]


def test_dataframes_keep_columns_index_and_dtypes():
    index = [f"frame{i}" for i in range(7)]
    X = pd.DataFrame({"path": [f"img{i}.png" for i in range(7)], "x": range(7)}, index=index)
    Y = pd.DataFrame({"AU01": [1] * 4 + [0] * 2 + [1], "AU12": [0] * 4 + [1] * 3}, index=index)
    balancer = MultiLabelBalancer(random_state=0)
    X_res, Y_res = balancer.fit_resample(X, Y)
    expected_index = [index[i] for i in (0, 1, 2, 3, 4, 4, 5, 5, 6)]
    assert list(X_res.index) == expected_index
    assert list(Y_res.index) == expected_index
    pd.testing.assert_frame_equal(X_res, X.iloc[balancer.sample_indices_])
    pd.testing.assert_frame_equal(Y_res, Y.iloc[balancer.sample_indices_])
    assert list(balancer.group_copies_.columns[:2]) == ["AU01", "AU12"]


def test_group_rows_spread_over_samples_at_random():
    # c_A = 3 a, c_B = 2 b: b = 1.5, so group B gets 3 rows: one of its 2 samples is copied.
    Y = np.array([[1, 0]] * 3 + [[0, 1]] * 2)
    X = np.arange(5)
    outcomes = set()
    for seed in range(12):
        indices = MultiLabelBalancer(random_state=seed).fit(X, Y).sample_indices_
        np.testing.assert_array_equal(positive_counts(Y[indices]), [3, 3])
        outcomes.add(tuple(indices))
        again = MultiLabelBalancer(random_state=seed).fit(X, Y).sample_indices_
        np.testing.assert_array_equal(indices, again)
    assert outcomes == {(0, 1, 2, 3, 3, 4), (0, 1, 2, 3, 4, 4)}
    seed0 = MultiLabelBalancer(random_state=0).fit(X, Y).sample_indices_
    np.testing.assert_array_equal(seed0, [0, 1, 2, 3, 4, 4])


def test_unknown_labels_are_neither_positive_nor_negative():
    # c_A = 2 a, c_B = b (the NaN is not a positive): b = 2, a = 1.
    Y = np.array([[1, nan], [1, nan], [0, 1]])
    balancer = MultiLabelBalancer(random_state=0)
    _, Y_res = balancer.fit_resample(np.arange(3), Y)
    np.testing.assert_array_equal(balancer.sample_indices_, [0, 1, 2, 2])
    np.testing.assert_array_equal(
        Y_res, Y[[0, 1, 2, 2]]
    )  # NaN kept (assert_array_equal: NaN == NaN)
    groups = balancer.group_copies_
    assert np.isnan(groups.loc[groups["label_0"] == 1, "label_1"]).all()
    # Treated as a positive, the NaN would give c_B = 2 a + b and no copies of row 2.
    Y_filled = np.nan_to_num(Y, nan=1.0)
    filled = MultiLabelBalancer(random_state=0).fit(np.arange(3), Y_filled).sample_indices_
    assert not np.array_equal(filled, [0, 1, 2, 2])


def test_nullable_pandas_labels_with_pd_na():
    Y = pd.DataFrame({"AU01": [True, True, False], "AU02": [pd.NA, pd.NA, True]}, dtype="boolean")
    balancer = MultiLabelBalancer(random_state=0)
    _, Y_res = balancer.fit_resample(np.arange(3), Y)
    np.testing.assert_array_equal(balancer.sample_indices_, [0, 1, 2, 2])
    assert Y_res["AU02"].dtype == "boolean"


# --- invariants on random label matrices ----------------------------------------------------


@st.composite
def label_problems(draw):
    n_samples = draw(st.integers(2, 30))
    n_labels = draw(st.integers(2, 5))
    Y = draw(arrays(np.float64, (n_samples, n_labels), elements=st.sampled_from([0.0, 1.0, nan])))
    low = draw(st.integers(1, 2))
    high = draw(st.integers(low, 7))
    return Y, low, high, draw(st.sampled_from(OBJECTIVES))


@settings(max_examples=40, deadline=None)
@given(label_problems())
def test_bounds_originals_and_exact_row_copies(problem):
    Y, low, high, objective = problem
    present = (Y == 1).any(axis=0)
    X = np.arange(len(Y) * 2).reshape(-1, 2)
    balancer = MultiLabelBalancer(
        min_copies=low, max_copies=high, objective=objective, random_state=0
    )
    if not present.any():
        with pytest.raises(ValueError, match="no positive label"):
            balancer.fit_resample(X, Y)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # labels without positives: tested below
        X_res, Y_res = balancer.fit_resample(X, Y)
    copies = np.bincount(balancer.sample_indices_, minlength=len(Y))
    assert copies.min() >= low and copies.max() <= high
    assert (copies >= 1).all()  # every original sample kept
    np.testing.assert_array_equal(X_res, X[balancer.sample_indices_])
    np.testing.assert_array_equal(Y_res, Y[balancer.sample_indices_])
    assert (positive_counts(Y_res) >= positive_counts(Y)).all()
    groups = balancer.group_copies_
    assert groups["n_output"].sum() == len(balancer.sample_indices_)
    assert groups["n_samples"].sum() == len(Y)
    pd.testing.assert_series_equal(balancer.imbalance_after_, imbalance_measures(Y_res))


@pytest.mark.parametrize("seed", range(6))
def test_balance_improves_on_skewed_labels(seed):
    rng = np.random.default_rng(seed)
    rates = rng.uniform(0.02, 0.6, size=5)
    Y = (rng.random((300, 5)) < rates).astype(float)
    Y[0] = 1  # every label present
    balancer = MultiLabelBalancer(random_state=seed)
    _, Y_res = balancer.fit_resample(np.arange(300), Y)
    spread = lambda labels: np.var(np.log(positive_counts(labels)))  # noqa: E731
    assert spread(Y_res) < 0.5 * spread(Y)
    assert balancer.imbalance_after_["MeanIR"] < balancer.imbalance_before_["MeanIR"]


def test_lam_trades_balance_for_size():
    rng = np.random.default_rng(0)
    Y = (rng.random((200, 4)) < [0.6, 0.3, 0.1, 0.05]).astype(float)
    fits = [MultiLabelBalancer(lam=lam, random_state=0).fit(np.arange(200), Y) for lam in LAMS]
    sizes = [len(fit.sample_indices_) for fit in fits]
    spreads = [np.var(np.log(positive_counts(Y[fit.sample_indices_]))) for fit in fits]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > sizes[-1]
    assert spreads[0] < spreads[1] < spreads[-1]
    assert sizes[-1] == 200  # a huge lam forbids growth


LAMS = [1e-5, 0.1, 1.0, 1e3]


def test_larger_max_copies_balances_better():
    Y = np.array([[1, 0, 0]] * 40 + [[0, 1, 0]] * 10 + [[0, 0, 1]] * 2 + [[1, 1, 1]])
    meanir = [
        MultiLabelBalancer(max_copies=m, random_state=0)
        .fit(np.arange(53), Y)
        .imbalance_after_["MeanIR"]
        for m in (1, 3, 6, 12)
    ]
    assert meanir[0] == pytest.approx(imbalance_measures(Y)["MeanIR"])  # max_copies=1: no-op
    assert meanir[1] > meanir[2] > meanir[3]


# --- input types ----------------------------------------------------------------------------


def test_list_of_paths_sparse_and_1d_inputs():
    Y = np.array([[1, 0]] * 6 + [[0, 1]])
    paths = [f"faces/{i}.jpg" for i in range(7)]
    expected = [0, 1, 2, 3, 4, 5] + [6] * 6
    X_res, _ = MultiLabelBalancer(random_state=0).fit_resample(paths, Y)
    assert X_res == [paths[i] for i in expected]
    X_res, _ = MultiLabelBalancer(random_state=0).fit_resample(np.array(paths), Y)
    np.testing.assert_array_equal(X_res, np.array(paths)[expected])
    X_sparse = sp.csr_matrix(np.eye(7))
    X_res, _ = MultiLabelBalancer(random_state=0).fit_resample(X_sparse, Y)
    assert sp.issparse(X_res)
    np.testing.assert_array_equal(X_res.toarray(), np.eye(7)[expected])


@pytest.mark.parametrize("n_labels", [3, 12, 39, 40, 80])
def test_label_groups_match_numpy_unique(n_labels):
    rng = np.random.default_rng(n_labels)
    Y = (rng.random((300, n_labels)) < 0.3).astype(float)
    Y[rng.random(Y.shape) < 0.05] = nan
    Y[10:40] = Y[0]  # repeated label vectors
    groups, inverse, counts = label_groups(Y)
    expected, expected_inverse, expected_counts = np.unique(
        np.nan_to_num(Y, nan=2.0), axis=0, return_inverse=True, return_counts=True
    )
    np.testing.assert_array_equal(np.nan_to_num(groups, nan=2.0), expected)
    np.testing.assert_array_equal(inverse, expected_inverse.ravel())
    np.testing.assert_array_equal(counts, expected_counts)
    np.testing.assert_array_equal(groups[inverse], Y)


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("Y", "match"),
    [
        ([[1, 2], [0, 1]], r"binary label matrix .*found values \[2.0\]"),
        ([[1, -1], [0, 1]], r"found values \[-1.0\]"),
        ([[1, np.inf], [0, 1]], r"found values \[inf\]"),
        ([["a", "b"], ["c", "d"]], "numeric binary label matrix"),
        ([1, 0], r"2-D \(n_samples, n_labels\).*shape \(2,\)"),
        ([[1], [0]], "at least 2"),
        ([[0, 0], [0, 0]], "no positive label"),
    ],
)
def test_invalid_labels_raise_clear_errors(Y, match):
    with pytest.raises(ValueError, match=match):
        MultiLabelBalancer().fit_resample(np.arange(len(Y)), Y)


def test_inconsistent_lengths_and_bounds():
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        MultiLabelBalancer().fit_resample(np.arange(3), [[1, 0], [0, 1]])
    with pytest.raises(ValueError, match=r"min_copies \(3\) must not exceed max_copies \(2\)"):
        MultiLabelBalancer(min_copies=3, max_copies=2).fit_resample([0, 1], [[1, 0], [0, 1]])


@pytest.mark.parametrize(
    "params",
    [{"lam": -1.0}, {"max_iter": 0}, {"max_copies": 0}, {"min_copies": 0}, {"objective": "x"}],
)
def test_invalid_parameters(params):
    with pytest.raises(InvalidParameterError):
        MultiLabelBalancer(**params).fit_resample([0, 1], [[1, 0], [0, 1]])


def test_label_without_positive_warns_and_is_ignored():
    Y = np.array([[1, 0, 0]] * 4 + [[0, 1, 0]])
    with pytest.warns(UserWarning, match=r"without any positive sample.*\['label_2'\]"):
        balancer = MultiLabelBalancer(random_state=0).fit(np.arange(5), Y)
    np.testing.assert_array_equal(balancer.sample_indices_, [0, 1, 2, 3, 4, 4, 4, 4])


# --- sklearn / imblearn integration ---------------------------------------------------------


def test_clone_params_and_tags():
    balancer = MultiLabelBalancer(lam=0.1, max_copies=3, random_state=1)
    cloned = clone(balancer)
    assert cloned.get_params() == balancer.get_params()
    assert not hasattr(cloned, "sample_indices_")
    tags = balancer.__sklearn_tags__()
    assert tags.estimator_type == "sampler"
    assert tags.target_tags.multi_output and not tags.target_tags.single_output
    assert tags.sampler_tags.sample_indices


def test_pickle_round_trip_and_params_untouched_by_fit():
    Y = np.array([[1, 0]] * 4 + [[0, 1]] * 2 + [[1, 1]])
    balancer = MultiLabelBalancer(max_copies=4, random_state=3)
    params = balancer.get_params()
    assert balancer.fit(np.arange(7), Y) is balancer
    assert balancer.get_params() == params
    restored = pickle.loads(pickle.dumps(balancer))
    np.testing.assert_array_equal(restored.sample_indices_, balancer.sample_indices_)
    pd.testing.assert_frame_equal(restored.group_copies_, balancer.group_copies_)


class RecordingClassifier(ClassifierMixin, BaseEstimator):
    """Predicts the label means seen in fit and records the fit rows."""

    def fit(self, X, Y):
        self.fit_rows_ = np.asarray(X).copy()
        self.means_ = (np.asarray(Y, dtype=float).mean(axis=0) > 0.5).astype(int)
        return self

    def predict(self, X):
        return np.tile(self.means_, (len(X), 1))


def test_pipeline_resamples_only_in_fit():
    X = np.arange(7).reshape(-1, 1)
    Y = np.array([[1, 0]] * 6 + [[0, 1]])
    pipe = Pipeline(
        [("balance", MultiLabelBalancer(random_state=0)), ("clf", RecordingClassifier())]
    )
    pipe.fit(X, Y)
    np.testing.assert_array_equal(pipe["clf"].fit_rows_.ravel(), [0, 1, 2, 3, 4, 5] + [6] * 6)
    assert pipe.predict(X).shape == (7, 2)  # no resampling at predict time


def test_pipeline_with_corrloss_classifier():
    classifier_module = pytest.importorskip(
        "sklearn_corrloss.classifier", reason="CorrLossClassifier not written yet (issue 5)"
    )
    rng = np.random.default_rng(0)
    Y = (rng.random((60, 3)) < [0.5, 0.2, 0.1]).astype(np.float32)
    X = (Y @ rng.normal(size=(3, 5)) + 0.1 * rng.normal(size=(60, 5))).astype(np.float32)
    clf = classifier_module.CorrLossClassifier(
        max_epochs=2, hidden_units=8, train_split=None, random_state=0
    )
    pipe = Pipeline([("balance", MultiLabelBalancer(random_state=0)), ("clf", clf)])
    pipe.fit(X, Y)
    assert pipe.predict(X).shape == (60, 3)
    assert pipe.predict_proba(X).shape == (60, 3)


def _benchmark_module():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_balancer.py"
    spec = importlib.util.spec_from_file_location("bench_balancer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_yeast_meanir_below_0_6_of_unbalanced_and_below_ml_ros():
    pytest.importorskip("river")
    bench = _benchmark_module()
    Y = bench.yeast_labels()
    balancer = MultiLabelBalancer(random_state=0)
    _, Y_res = balancer.fit_resample(np.arange(len(Y)), Y)
    before, after = balancer.imbalance_before_["MeanIR"], balancer.imbalance_after_["MeanIR"]
    assert after <= 0.6 * before
    ml_ros = [
        imbalance_measures(Y[bench.ml_ros_indices(Y, len(Y_res), seed)])["MeanIR"]
        for seed in range(3)
    ]
    assert after < min(ml_ros)


# --- imbalance measures ---------------------------------------------------------------------


def reference_measures(Y):
    """Charte et al.'s definitions, one label and one sample at a time."""
    Y = np.asarray(Y, dtype=float)
    counts = [sum(1 for row in Y if row[k] == 1) for k in range(Y.shape[1])]
    ir = [max(counts) / c if c else math.inf for c in counts]
    finite = [r for r in ir if math.isfinite(r)]
    mean_ir = sum(finite) / len(finite)
    sd = math.sqrt(sum((r - mean_ir) ** 2 for r in finite) / (len(finite) - 1))
    per_sample = []
    for row in Y:
        active = [ir[k] for k in range(len(row)) if row[k] == 1]
        if not active:
            per_sample.append(0.0)
            continue
        geometric = math.prod(active) ** (1 / len(active))
        per_sample.append(1 - geometric / (sum(active) / len(active)))
    return {
        "MeanIR": mean_ir,
        "MaxIR": max(finite),
        "CVIR": sd / mean_ir,
        "SCUMBLE": sum(per_sample) / len(per_sample),
    }


@pytest.mark.parametrize("seed", range(10))
def test_measures_match_reference_and_group_form(seed):
    rng = np.random.default_rng(seed)
    Y = (rng.random((40, 5)) < rng.uniform(0.05, 0.7, size=5)).astype(float)
    Y[0] = 1
    Y[rng.random(Y.shape) < 0.1] = nan
    got = imbalance_measures(Y)
    expected = reference_measures(Y)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key
    groups, _, counts = label_groups(check_label_matrix(Y))
    pd.testing.assert_series_equal(measures_from_groups(groups == 1, counts), got)


def test_yeast_measures_match_published_values():
    # Charte et al. (2015) report for yeast: MeanIR 7.20, MaxIR 53.41, CVIR 1.88, SCUMBLE 0.104.
    pytest.importorskip("river")
    measures = imbalance_measures(_benchmark_module().yeast_labels())
    assert measures["MeanIR"] == pytest.approx(7.20, abs=0.005)
    assert measures["MaxIR"] == pytest.approx(53.41, abs=0.005)
    assert measures["CVIR"] == pytest.approx(1.88, abs=0.005)
    assert measures["SCUMBLE"] == pytest.approx(0.104, abs=0.0005)


def test_irlbl_and_scumble_edge_cases():
    ratios = irlbl(pd.DataFrame({"a": [1, 1, 0], "b": [1, 0, 0], "c": [0, 0, 0]}))
    assert ratios.to_dict() == {"a": 1.0, "b": 2.0, "c": math.inf}
    assert scumble([[1, 0], [0, 1]]) == 0.0  # no sample mixes labels
    assert scumble([[0, 0], [0, 0]]) == 0.0
    assert scumble([[1, 1], [1, 0], [1, 0], [1, 0]]) == pytest.approx(0.05)
    measures = imbalance_measures([[1, 0, 0], [1, 1, 0]])  # label 2 without positives
    assert measures["MaxIR"] == 2.0 and measures["MeanIR"] == 1.5
