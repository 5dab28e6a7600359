"""The paper's protocol functions on tiny data with the real CorrLoss estimator."""

from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator
from sklearn.model_selection import GroupKFold

from sklearn_corrloss.balancing import MultiLabelBalancer
from sklearn_corrloss.classifier import CorrLossClassifier
from sklearn_corrloss.experiments import (
    _fine_tune,
    calibrate,
    cross_dataset,
    evaluate,
    loss_history,
    per_au_f1_table,
    search_rho,
    summarize,
    within_dataset_cv,
)
from sklearn_corrloss.metrics import macro_f1

AUS = ["AU01", "AU02", "AU06", "AU12"]


def make_data(seed=0, n_subjects=6, per_subject=12, aus=AUS):
    """Features that carry two correlated AU pairs (AU01+AU02, AU06+AU12)."""
    rng = np.random.RandomState(seed)
    n = n_subjects * per_subject
    X = rng.normal(size=(n, 6)).astype(np.float32)
    brow, smile = X[:, 0] > 0, X[:, 1] > 0
    labels = {
        "AU01": brow,
        "AU02": brow & (X[:, 2] > -1),
        "AU06": smile & (X[:, 3] > -1),
        "AU12": smile,
    }
    Y = pd.DataFrame({au: labels[au] for au in aus}).astype(int)
    subjects = np.repeat([f"s{seed}-{i}" for i in range(n_subjects)], per_subject)
    tasks = np.tile(np.repeat(["T1", "T2"], per_subject // 2), n_subjects)
    return X, Y, subjects, tasks


def tiny_net(**params):
    defaults = dict(hidden_units=8, lr=1e-2, batch_size=16, max_epochs=2, random_state=0)
    return CorrLossClassifier(**{**defaults, **params})


@pytest.fixture(scope="module")
def data():
    return make_data()


class GroupRecordingNet(CorrLossClassifier):
    """Records the subject IDs every fit receives (for its own validation split)."""

    seen: ClassVar[list] = []

    def fit(self, X, y, groups=None):
        GroupRecordingNet.seen.append(None if groups is None else set(groups))
        return super().fit(X, y, groups=groups)


class RecordingSampler(BaseEstimator):
    """A resampler that duplicates the first row and records the rows it was shown."""

    seen: ClassVar[list] = []

    def __init__(self, random_state=None):
        self.random_state = random_state

    def fit_resample(self, X, y):
        RecordingSampler.seen.append(set(np.asarray(X).ravel().tolist()))
        return np.concatenate([X, X[:1]]), pd.concat([y, y.iloc[:1]])


def test_search_rho_returns_tidy_fold_results_and_curves(data):
    X, Y, subjects, _ = data
    result = search_rho(tiny_net(), X, Y, subjects, rhos=[0.0, 0.5], cv=3, random_state=0)
    assert len(result.scores) == 2 * 3
    assert set(result.scores["rho"]) == {0.0, 0.5}
    assert result.scores["macro_f1"].between(0, 1).all()
    assert (result.scores["correlation_distance"] >= 0).all()
    # The summary is the mean and std of the fold scores.
    for rho, group in result.scores.groupby("rho"):
        row = result.summary[result.summary["rho"] == rho].iloc[0]
        assert row["macro_f1_mean"] == pytest.approx(group["macro_f1"].mean())
        assert row["macro_f1_std"] == pytest.approx(group["macro_f1"].std())
    assert result.best_rho == result.summary.loc[result.summary["score_mean"].idxmax(), "rho"]
    # Fig. 4: one curve per (rho, fold) with every epoch and the loss parts.
    assert len(result.curves) == 2 * 3 * 2
    assert {"train_loss", "valid_loss", "train_corr", "valid_bce"} <= set(result.curves)
    assert result.curves[["train_loss", "valid_loss"]].notna().all().all()
    assert set(result.per_au["au"]) == set(AUS)
    assert len(result.per_au) == 2 * 3 * len(AUS)


def test_search_rho_folds_are_subject_wise_and_reach_the_validation_split(data):
    X, Y, subjects, _ = data
    GroupRecordingNet.seen.clear()
    search_rho(GroupRecordingNet(hidden_units=4, max_epochs=1), X, Y, subjects, rhos=[0.0], cv=3)
    folds = [set(subjects[test]) for _, test in GroupKFold(3).split(X, Y, subjects)]
    assert len(GroupRecordingNet.seen) == 3
    for seen in GroupRecordingNet.seen:
        assert seen is not None, "groups must reach the estimator's own validation split"
        held_out = [fold for fold in folds if not fold & seen]
        assert len(held_out) == 1  # exactly the test fold's subjects are absent


def test_balancer_only_sees_training_rows(data):
    X, Y, subjects, _ = data
    RecordingSampler.seen.clear()
    result = within_dataset_cv(
        tiny_net(max_epochs=1), X, Y, subjects, rho=0.5, balancer=RecordingSampler(), cv=3
    )
    splits = list(GroupKFold(3).split(X, Y, subjects))
    assert len(RecordingSampler.seen) == len(splits)
    for rows, (train, test) in zip(RecordingSampler.seen, splits):
        assert rows == set(train.tolist())
        assert not rows & set(test.tolist())
    assert list(result.summary["balanced"]) == [False, False, True, True]
    assert list(result.summary["rho"]) == [0.0, 0.5, 0.0, 0.5]
    assert (result.summary["n"] == 3).all()


def test_within_dataset_cv_with_the_multilabel_balancer(data):
    X, Y, subjects, _ = data
    result = within_dataset_cv(
        tiny_net(),
        X,
        Y,
        subjects,
        rho=0.3,
        balancer=MultiLabelBalancer(random_state=0),
        cv=2,
        random_state=0,
    )
    assert len(result.scores) == 2 * 2 * 2
    table = per_au_f1_table(result.per_au, ["balanced", "rho"])
    assert list(table.index) == [*AUS, "average"]
    assert table.shape[1] == 4
    expected = result.per_au.query("balanced and rho == 0.3").groupby("au")["f1"].mean()
    assert table[(True, 0.3)].drop("average").to_dict() == pytest.approx(expected.to_dict())


def test_protocol_is_repeatable_with_random_state(data):
    X, Y, subjects, _ = data
    runs = [
        search_rho(
            tiny_net(random_state=None), X, Y, subjects, rhos=[0.2], cv=2, random_state=3
        ).scores
        for _ in range(2)
    ]
    pd.testing.assert_frame_equal(*runs)


def test_search_rho_requires_subject_groups(data):
    X, Y, _, _ = data
    with pytest.raises(ValueError, match="subject ID"):
        search_rho(tiny_net(), X, Y, None, rhos=[0.0])
    with pytest.raises(ValueError, match="groups must have shape"):
        search_rho(tiny_net(), X, Y, np.arange(5), rhos=[0.0])


def test_cross_dataset_tests_on_other_sets_and_shared_aus():
    sets = {
        "A": make_data(0),
        "B": make_data(1, aus=["AU01", "AU02", "AU06"]),  # lacks AU12
    }
    sets = {name: value[:3] for name, value in sets.items()}
    result = cross_dataset(tiny_net(), sets, rho=0.5, cv=2, random_state=0)
    assert set(zip(result.scores["train"], result.scores["test"])) == {("A", "B"), ("B", "A")}
    assert result.selected["A"] == AUS
    a_on_b = result.per_au[result.per_au["train"] == "A"]
    assert set(a_on_b["au"]) == {"AU01", "AU02", "AU06"}  # AU12 is not shared
    assert (result.scores.loc[result.scores["train"] == "A", "n_aus"] == 3).all()
    assert (result.summary["n"] == 2).all()  # one model per fold of the training set
    assert set(result.summary["rho"]) == {0.0, 0.5}


def test_cross_dataset_skips_sets_without_shared_aus_with_a_warning():
    X, Y, subjects, _ = make_data(0)
    other = (X, Y.rename(columns=lambda c: c.replace("AU", "X")), subjects)
    with pytest.warns(UserWarning, match="shares no AU"):
        result = cross_dataset(
            tiny_net(max_epochs=1), {"A": (X, Y, subjects)}, {"B": other}, rho=0.5, cv=2
        )
    assert result.scores.empty


def test_cross_dataset_rejects_label_arrays():
    X, Y, subjects, _ = make_data(0)
    with pytest.raises(TypeError, match="DataFrame"):
        cross_dataset(tiny_net(), {"A": (X, Y.to_numpy(), subjects)}, rho=0.5)


def test_calibrate_fine_tunes_on_one_half_and_tests_on_the_other(data):
    X, Y, subjects, tasks = data
    result = calibrate(
        tiny_net(), X, Y, subjects, tasks, rhos=[0.0, 0.45], epochs=2, random_state=0
    )
    assert list(result.summary["task"]) == ["T1", "T1", "T2", "T2"]
    assert list(result.summary["rho"]) == [0.0, 0.45, 0.0, 0.45]
    assert set(result.scores["stage"]) == {"before", "after"}
    for calibration, test in result.halves.values():
        assert calibration and test and not set(calibration) & set(test)
        assert set(calibration) | set(test) == set(subjects)
    before = result.scores.query("stage == 'before'")["macro_f1"].to_numpy()
    assert result.summary["macro_f1_before"].to_numpy() == pytest.approx(before)


def test_fine_tune_continues_the_same_network(data):
    X, Y, subjects, _ = data
    net = tiny_net().fit(X, Y, groups=subjects)
    first_layer = next(net.module_.parameters()).detach().clone()
    _fine_tune(net, X, Y, subjects, epochs=3)
    assert len(net.history_) == 2 + 3
    assert not np.allclose(next(net.module_.parameters()).detach(), first_layer)


def test_calibrate_rejects_bad_tasks(data):
    X, Y, subjects, tasks = data
    with pytest.raises(ValueError, match="Unknown task"):
        calibrate(tiny_net(), X, Y, subjects, tasks, held_out_tasks=["T9"])
    one_subject = np.where(tasks == "T1", "s0-0", subjects)
    with pytest.raises(ValueError, match="at least 2"):
        calibrate(tiny_net(), X, Y, one_subject, tasks, held_out_tasks=["T1"])


def test_evaluate_reports_per_au_and_refuses_other_au_sets(data):
    X, Y, subjects, _ = data
    net = tiny_net().fit(X, Y, groups=subjects)
    result = evaluate(net, X, Y.assign(AU99=0))  # extra columns are ignored
    assert list(result.report.index) == [*AUS, "macro"]
    assert result.macro_f1 == pytest.approx(macro_f1(Y, net.predict(X)))
    with pytest.raises(ValueError, match=r"lack \['AU12'\]"):
        evaluate(net, X, Y.drop(columns="AU12"))


def test_summarize_and_loss_history(data):
    X, Y, subjects, _ = data
    scores = pd.DataFrame({"rho": [0.0, 0.0, 0.3], "macro_f1": [0.2, 0.4, 0.5]})
    summary = summarize(scores, by=["rho"])
    assert summary["macro_f1_mean"].tolist() == pytest.approx([0.3, 0.5])
    assert summary["n"].tolist() == [2, 1]
    history = loss_history(tiny_net(max_epochs=3).fit(X, Y, groups=subjects))
    assert history["epoch"].tolist() == [1, 2, 3]
    assert {"train_loss", "valid_loss", "train_bce", "train_corr"} <= set(history)
