"""CorrLossClassifier: training logic, sklearn integration and input checks."""

import copy
import pickle
from typing import ClassVar

import joblib
import numpy as np
import pandas as pd
import pytest
import sklearn
import torch
from conftest import fast_classifier
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from skorch.callbacks import Callback
from skorch.dataset import Dataset as SkorchDataset
from skorch.helper import predefined_split

from sklearn_corrloss.classifier import CorrLossClassifier, GroupValidSplit, RestoreBestWeights
from sklearn_corrloss.losses import CorrBCELoss
from sklearn_corrloss.metrics import macro_f1

HISTORY_KEYS = ["train_loss", "valid_loss", "train_bce", "train_corr", "valid_bce", "valid_corr"]


class RecordSplit(Callback):
    """Remember the datasets the net trains and validates on."""

    def on_train_begin(self, net, **kwargs):
        self.seen_ = []

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        self.seen_.append((dataset_train, dataset_valid))


class RecordTrainingStart(Callback):
    def on_train_begin(self, net, **kwargs):
        raise AssertionError("training started although the input is invalid")


class RecordGradients(Callback):
    def initialize(self):
        self.max_abs_ = 0.0
        return self

    def on_grad_computed(self, net, named_parameters, **kwargs):
        for _, param in named_parameters:
            if param.grad is not None:
                self.max_abs_ = max(self.max_abs_, float(param.grad.abs().max()))


# --- training ---------------------------------------------------------------------------
def test_learns_and_history_has_loss_parts(fitted_classifier, tabular):
    X, Y, _ = tabular
    constant_f1 = macro_f1(Y, np.ones_like(Y))
    assert fitted_classifier.score(X, Y) > constant_f1 + 0.2
    history = fitted_classifier.history_
    assert len(history) == fitted_classifier.max_epochs
    for key in HISTORY_KEYS:
        values = history[:, key]
        assert len(values) == len(history) and np.all(np.isfinite(values)), key


@pytest.mark.parametrize("part", ["train", "valid"])
def test_epoch_loss_is_the_papers_blend_of_its_parts(fitted_classifier, part):
    rho = fitted_classifier.rho
    history = fitted_classifier.history_
    loss = np.array(history[:, f"{part}_loss"])
    bce = np.array(history[:, f"{part}_bce"])
    corr = np.array(history[:, f"{part}_corr"])
    np.testing.assert_allclose(loss, (1 - rho) * bce + rho * corr / 2, rtol=1e-5)
    assert np.all((corr >= 0) & (corr <= 2))


def test_predict_uses_threshold(fitted_classifier, tabular):
    X, _, _ = tabular
    proba = fitted_classifier.predict_proba(X)
    assert proba.shape == (len(X), 4)
    assert proba.min() >= 0 and proba.max() <= 1
    np.testing.assert_array_equal(fitted_classifier.predict(X), (proba > 0.5).astype(int))
    per_label = copy.deepcopy(fitted_classifier).set_params(threshold=[0.1, 0.3, 0.6, 0.9])
    np.testing.assert_array_equal(
        per_label.predict(X), (proba > np.array([0.1, 0.3, 0.6, 0.9])).astype(int)
    )


def test_score_is_macro_f1(fitted_classifier, tabular):
    X, Y, _ = tabular
    assert fitted_classifier.score(X, Y) == macro_f1(Y, fitted_classifier.predict(X))


def test_dataframes_name_classes_and_features(tabular_frame):
    X, Y, groups = tabular_frame
    clf = fast_classifier(max_epochs=2).fit(X, Y, groups=groups)
    assert list(clf.classes_) == ["AU01", "AU02", "AU06", "AU12"]
    assert clf.predict(X.iloc[:3]).dtype == Y.to_numpy().dtype  # int labels, int predictions
    assert list(clf.feature_names_in_) == list(X.columns)
    assert clf.n_features_in_ == X.shape[1]
    with pytest.raises(ValueError, match="differ from the fitted labels"):
        clf.partial_fit(X, Y.rename(columns={"AU12": "AU15"}))


def test_unknown_labels_are_ignored(tabular):
    X, Y, _ = tabular
    Y_missing = Y.astype(float)
    Y_missing[::3, 1] = np.nan
    clf = fast_classifier(max_epochs=3).fit(X, Y_missing)
    assert np.all(np.isfinite(clf.history_[:, "train_loss"]))
    # NaN entries must not act as 0 or 1: a network that only sees NaN for a label
    # keeps an untrained output for it (a constant label would otherwise be learnt).
    Y_unknown = Y.astype(float)
    Y_unknown[:, 1] = np.where(np.arange(len(Y)) < 4, Y[:, 1], np.nan)
    Y_zero = Y.astype(float)
    Y_zero[:, 1] = np.where(np.arange(len(Y)) < 4, Y[:, 1], 0.0)
    p_unknown = fast_classifier(train_split=None).fit(X, Y_unknown).predict_proba(X)[:, 1]
    p_zero = fast_classifier(train_split=None).fit(X, Y_zero).predict_proba(X)[:, 1]
    assert p_zero.mean() < 0.1 < p_unknown.mean()
    # Predictions keep the dtype of the labels (float when labels had NaN).
    assert clf.predict(X[:3]).dtype == np.float64


def test_restores_weights_of_lowest_validation_loss(tabular):
    X, Y, _ = tabular
    X_valid, Y_valid = X[:60], Y[:60].astype(np.float32)
    clf = fast_classifier(
        lr=5e-2,
        max_epochs=12,
        batch_size=512,  # one batch per epoch: the recorded valid loss is exact
        train_split=predefined_split(SkorchDataset(X_valid, Y_valid)),
    ).fit(X[60:], Y[60:])
    valid_losses = clf.history_[:, "valid_loss"]
    restorer = dict(clf.callbacks_)["restore_best"]
    assert isinstance(restorer, RestoreBestWeights)
    assert restorer.best_epoch_ == int(np.argmin(valid_losses)) + 1
    clf.module_.eval()
    with torch.no_grad():
        logits = clf.module_(torch.as_tensor(X_valid))
        loss = CorrBCELoss(rho=clf.rho)(logits, torch.as_tensor(Y_valid))
    assert float(loss) == pytest.approx(min(valid_losses), rel=1e-5)


def test_without_validation_split_keeps_last_weights(tabular):
    X, Y, _ = tabular
    clf = fast_classifier(max_epochs=3, train_split=None).fit(X, Y)
    assert "valid_loss" not in clf.history_[-1]
    assert dict(clf.callbacks_)["restore_best"].best_epoch_ is None


def test_gradients_are_clipped_by_value(tabular):
    X, Y, _ = tabular
    recorder = RecordGradients()
    fast_classifier(max_epochs=1, clip_value=1e-3, callbacks=[recorder]).fit(X, Y)
    assert recorder.max_abs_ == pytest.approx(1e-3)
    unclipped = RecordGradients()
    fast_classifier(max_epochs=1, clip_value=None, callbacks=[unclipped]).fit(X, Y)
    assert unclipped.max_abs_ > 1e-2


def test_training_batches_are_shuffled(tabular):
    X, Y, _ = tabular
    dataset = SkorchDataset(X, Y)
    loader = fast_classifier().get_iterator(dataset, training=True)
    assert isinstance(loader.sampler, torch.utils.data.RandomSampler)
    assert isinstance(
        fast_classifier().get_iterator(dataset, training=False).sampler,
        torch.utils.data.SequentialSampler,
    )
    unshuffled = fast_classifier(iterator_train__shuffle=False)
    assert isinstance(
        unshuffled.get_iterator(dataset, training=True).sampler,
        torch.utils.data.SequentialSampler,
    )


# --- partial_fit and rho ----------------------------------------------------------------
def test_partial_fit_continues_the_same_network(tabular):
    X, Y, _ = tabular
    clf = fast_classifier(max_epochs=4).fit(X, Y)
    module, optimizer = clf.module_, clf.optimizer_
    steps = float(optimizer.state_dict()["state"][0]["step"])
    before = {k: v.clone() for k, v in module.state_dict().items()}
    score = clf.score(X, Y)
    clf.set_params(max_epochs=2, lr=1e-3).partial_fit(X, Y)
    assert clf.module_ is module and clf.optimizer_ is optimizer
    assert float(optimizer.state_dict()["state"][0]["step"]) > steps  # Adam state continues
    assert len(clf.history_) == 6
    changed = [not torch.equal(before[k], v) for k, v in module.state_dict().items()]
    assert any(changed)
    # A re-initialised network would fall back to chance after two small steps.
    assert clf.score(X, Y) > score - 0.1


def test_set_params_refuses_a_bad_rho_on_a_fitted_model_and_keeps_the_old_one(tabular):
    X, Y, _ = tabular
    clf = fast_classifier(max_epochs=1, rho=0.3).fit(X, Y)
    with pytest.raises(ValueError, match="'rho' parameter"):
        clf.set_params(rho=1.5)
    assert clf.rho == 0.3 and clf.criterion_.rho == 0.3


def test_set_params_rho_reaches_the_criterion_only(tabular):
    X, Y, _ = tabular
    clf = fast_classifier(max_epochs=2).fit(X, Y)
    module, optimizer = clf.module_, clf.optimizer_
    clf.set_params(rho=0.45)
    assert clf.criterion_.rho == 0.45
    assert clf.module_ is module and clf.optimizer_ is optimizer
    clf.partial_fit(X, Y)
    assert clf.module_ is module
    bce = np.array(clf.history_[2:, "train_bce"])
    corr = np.array(clf.history_[2:, "train_corr"])
    np.testing.assert_allclose(
        clf.history_[2:, "train_loss"], 0.55 * bce + 0.225 * corr, rtol=1e-5
    )
    # Setting the attribute directly is picked up by the next training call too.
    clf.rho = 0.9
    clf.partial_fit(X, Y)
    assert clf.criterion_.rho == 0.9


def test_partial_fit_on_unfitted_estimator_fits(tabular):
    X, Y, _ = tabular
    clf = fast_classifier(max_epochs=2).partial_fit(X, Y)
    assert clf.predict(X).shape == Y.shape


def test_warm_start_continues_and_fit_restarts(tabular):
    X, Y, _ = tabular
    clf = fast_classifier(max_epochs=2, warm_start=True).fit(X, Y)
    module = clf.module_
    clf.fit(X, Y)
    assert clf.module_ is module and len(clf.history_) == 4
    clf.set_params(warm_start=False).fit(X, Y)
    assert clf.module_ is not module and len(clf.history_) == 2


# --- validation split and groups --------------------------------------------------------
def test_group_valid_split_leaks_no_group():
    groups = np.repeat(np.arange(10), np.arange(1, 11))
    for seed in range(20):
        train, valid = GroupValidSplit(0.3, random_state=seed)(
            np.arange(len(groups)), groups=groups
        )
        assert not set(groups[train.indices]) & set(groups[valid.indices])
        assert len(train) + len(valid) == len(groups)
        assert len(set(groups[valid.indices])) == 3


def test_group_valid_split_without_groups_is_a_plain_split():
    train, valid = GroupValidSplit(0.25, random_state=0)(np.arange(40))
    assert len(valid) == 10 and len(train) == 30
    assert sorted(train.indices + valid.indices) == list(range(40))


def test_group_valid_split_errors():
    with pytest.raises(ValueError, match="at least 2 distinct groups"):
        GroupValidSplit()(np.arange(6), groups=np.zeros(6))
    with pytest.raises(ValueError, match="groups must have shape"):
        GroupValidSplit()(np.arange(6), groups=np.zeros(5))


def test_fit_with_groups_keeps_subjects_apart(tabular):
    X, Y, groups = tabular
    recorder = RecordSplit()
    fast_classifier(max_epochs=1, callbacks=[("split", recorder)]).fit(X, Y, groups=groups)
    train, valid = recorder.seen_[0]
    train_groups = set(groups[train.indices])
    valid_groups = set(groups[valid.indices])
    assert valid_groups and not train_groups & valid_groups
    # The module never sees the groups: a plain forward signature suffices.
    assert recorder.seen_[0][0].dataset.X.shape == X.shape


def test_groups_wrong_length_is_refused(tabular):
    X, Y, groups = tabular
    with pytest.raises(ValueError, match="groups must be 1-D"):
        fast_classifier(callbacks=[RecordTrainingStart()]).fit(X, Y, groups=groups[:-1])


def test_grid_search_over_rho_with_group_kfold(tabular):
    X, Y, groups = tabular
    search = GridSearchCV(
        fast_classifier(max_epochs=3), {"rho": [0.0, 0.5]}, cv=GroupKFold(n_splits=3)
    ).fit(X, Y, groups=groups)
    assert search.best_params_["rho"] in (0.0, 0.5)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert search.best_estimator_.criterion_.rho == search.best_params_["rho"]


class GroupSpy(CorrLossClassifier):
    received: ClassVar[list] = []

    def fit(self, X, y, groups=None):
        GroupSpy.received.append(None if groups is None else np.asarray(groups))
        return super().fit(X, y, groups=groups)


def test_metadata_routing_sends_groups_to_fit(tabular):
    X, Y, groups = tabular
    GroupSpy.received.clear()
    with sklearn.config_context(enable_metadata_routing=True):
        spy = GroupSpy(hidden_units=8, lr=1e-2, max_epochs=1, random_state=0)
        spy.set_fit_request(groups=True)
        GridSearchCV(spy, {"rho": [0.0, 0.3]}, cv=GroupKFold(n_splits=3)).fit(X, Y, groups=groups)
    # 2 rho values x 3 folds, plus the refit on everything.
    assert len(GroupSpy.received) == 7
    fold_groups = GroupSpy.received[0]
    assert fold_groups is not None and len(np.unique(fold_groups)) == 8  # 12 subjects * 2/3
    assert len(np.unique(GroupSpy.received[-1])) == 12


def test_without_routing_groups_only_reach_the_cv(tabular):
    X, Y, groups = tabular
    GroupSpy.received.clear()
    spy = GroupSpy(hidden_units=8, lr=1e-2, max_epochs=1, random_state=0)
    GridSearchCV(spy, {"rho": [0.0]}, cv=GroupKFold(n_splits=3)).fit(X, Y, groups=groups)
    assert GroupSpy.received and all(g is None for g in GroupSpy.received)


def test_cross_validate_with_groups(tabular):
    X, Y, groups = tabular
    result = cross_validate(fast_classifier(max_epochs=3), X, Y, groups=groups, cv=GroupKFold(3))
    assert result["test_score"].shape == (3,)
    assert np.all((result["test_score"] > 0) & (result["test_score"] <= 1))


def test_pipeline(tabular):
    X, Y, _ = tabular
    pipe = make_pipeline(StandardScaler(), fast_classifier(max_epochs=3)).fit(X * 10 + 3, Y)
    assert pipe.predict(X * 10 + 3).shape == Y.shape
    assert 0 < pipe.score(X * 10 + 3, Y) <= 1


# --- determinism and persistence --------------------------------------------------------
def test_same_random_state_gives_identical_predictions(tabular):
    X, Y, groups = tabular
    first = fast_classifier(max_epochs=3, random_state=7).fit(X, Y, groups=groups)
    second = fast_classifier(max_epochs=3, random_state=7).fit(X, Y, groups=groups)
    other = fast_classifier(max_epochs=3, random_state=8).fit(X, Y, groups=groups)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    assert not np.array_equal(first.predict_proba(X), other.predict_proba(X))


def test_training_does_not_touch_global_random_state(tabular):
    X, Y, _ = tabular
    torch_state = torch.random.get_rng_state()
    numpy_state = np.random.get_state()[1].copy()  # noqa: NPY002 (the global state)
    fast_classifier(max_epochs=1, random_state=0).fit(X, Y)
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    np.testing.assert_array_equal(np.random.get_state()[1], numpy_state)  # noqa: NPY002


def test_pickle_joblib_and_clone_round_trips(fitted_classifier, tabular, tmp_path):
    X, _, _ = tabular
    expected = fitted_classifier.predict_proba(X)
    restored = pickle.loads(pickle.dumps(fitted_classifier))
    np.testing.assert_array_equal(restored.predict_proba(X), expected)
    joblib.dump(fitted_classifier, tmp_path / "clf.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "clf.joblib").predict_proba(X), expected)
    fresh = clone(fitted_classifier)
    assert fresh.get_params().keys() >= {"rho", "threshold", "lr", "random_state"}
    assert not hasattr(fresh, "module_") and fresh.rho == fitted_classifier.rho


def test_routing_parameters_survive_clone(tabular):
    X, Y, _ = tabular
    clf = fast_classifier(max_epochs=1, optimizer__weight_decay=0.1)
    assert clone(clf).get_params()["optimizer__weight_decay"] == 0.1
    clf.fit(X, Y)
    assert clf.optimizer_.param_groups[0]["weight_decay"] == 0.1
    with pytest.raises(ValueError, match="unexpected argument"):
        fast_classifier(optimiser__weight_decay=0.1).fit(X, Y)


# --- 1-D targets ------------------------------------------------------------------------
def test_binary_and_multiclass_targets(tabular):
    X, Y, _ = tabular
    y_binary = np.where(Y[:, 0] == 1, "yes", "no")
    clf = fast_classifier().fit(X, y_binary)
    assert list(clf.classes_) == ["no", "yes"]
    assert set(clf.predict(X)) <= {"no", "yes"}
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    assert clf.score(X, y_binary) > 0.7
    y_multi = Y[:, 0] + 2 * Y[:, 2]
    multi = fast_classifier().fit(X, y_multi)
    assert multi.predict_proba(X).shape == (len(X), 4)
    np.testing.assert_array_equal(multi.predict(X), np.argmax(multi.predict_proba(X), axis=1))


# --- bad input is refused before training -----------------------------------------------
@pytest.mark.parametrize(
    ("make_bad", "message"),
    [
        (lambda X, Y: (np.where(np.arange(X.size).reshape(X.shape) == 5, np.nan, X), Y), "NaN"),
        (lambda X, Y: (np.where(np.arange(X.size).reshape(X.shape) == 5, np.inf, X), Y), "inf"),
        (lambda X, Y: (X, Y * 2), "binary"),
        (lambda X, Y: (X, Y - 0.5), "binary"),
        (lambda X, Y: (X, np.where(Y == 1, np.inf, 0.0)), "infinite"),
        (lambda X, Y: (X, Y[:, :1]), "at least 2 labels"),
        (lambda X, Y: (X, pd.DataFrame(Y[:, :1], columns=["AU01"])), "at least 2 labels"),
        (lambda X, Y: (X, Y[:-1]), "inconsistent numbers of samples"),
        (lambda X, Y: (X[:, :, None], Y), "3"),
        (lambda X, Y: (X, np.full(Y.shape, np.nan)), "no known label"),
        (lambda X, Y: (X, np.full(len(Y), 1)), "1 class"),
        (lambda X, Y: (X, None), "requires y"),
    ],
)
def test_bad_input_is_refused_before_training(tabular, make_bad, message):
    X, Y, _ = tabular
    X_bad, Y_bad = make_bad(X, Y)
    clf = fast_classifier(callbacks=[RecordTrainingStart()])
    with pytest.raises(ValueError, match=message):
        clf.fit(X_bad, Y_bad)
    assert not hasattr(clf, "module_")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"rho": 1.5}, "'rho' parameter"),
        ({"lr": 0}, "'lr' parameter"),
        ({"train_split": 1.0}, "'train_split' parameter"),
        ({"threshold": [0.5, 0.5]}, "one value per label"),
        ({"threshold": [0.5, 0.5, 0.5, 1.5]}, r"lie in \(0, 1\)"),
    ],
)
def test_bad_parameters_are_refused_in_fit(tabular, params, message):
    X, Y, _ = tabular
    clf = fast_classifier(**params)  # __init__ never validates
    with pytest.raises((InvalidParameterError, ValueError), match=message):
        clf.fit(X, Y)


def test_predict_checks_input(fitted_classifier, tabular):
    X, _, _ = tabular
    with pytest.raises(ValueError, match="features"):
        fitted_classifier.predict(X[:, :3])
    with pytest.raises(ValueError, match="NaN"):
        fitted_classifier.predict(np.full_like(X, np.nan))
    with pytest.raises(sklearn.exceptions.NotFittedError):
        fast_classifier().predict(X)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_matches_cpu_shapes(tabular):
    X, Y, _ = tabular
    clf = fast_classifier(max_epochs=2, device="cuda").fit(X, Y)
    assert clf.predict_proba(X).shape == Y.shape
    assert next(clf.module_.parameters()).is_cuda
