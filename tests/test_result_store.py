"""Experiment results kept per fit: a rerun loads finished fits instead of repeating them."""

import json
import os
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from sklearn_corrloss.classifier import CorrLossClassifier
from sklearn_corrloss.experiments import calibrate, cross_dataset, search_rho, within_dataset_cv
from sklearn_corrloss.parallel import ResultStore, run_jobs

AUS = ["AU01", "AU02", "AU06", "AU12"]


def make_data(seed=0, n_subjects=6, per_subject=8):
    rng = np.random.RandomState(seed)
    n = n_subjects * per_subject
    X = rng.normal(size=(n, 5)).astype(np.float32)
    Y = pd.DataFrame(
        {
            "AU01": X[:, 0] > 0,
            "AU02": (X[:, 0] > 0) & (X[:, 2] > -1),
            "AU06": (X[:, 1] > 0) & (X[:, 3] > -1),
            "AU12": X[:, 1] > 0,
        }
    ).astype(int)
    subjects = np.repeat([f"s{seed}-{i}" for i in range(n_subjects)], per_subject)
    tasks = np.tile(np.repeat(["T1", "T2"], per_subject // 2), n_subjects)
    return X, Y, subjects, tasks


class CountingNet(CorrLossClassifier):
    """Counts its fits (the experiments run sequentially here, in this process)."""

    fits: ClassVar[list] = []

    def fit(self, X, y, groups=None):
        CountingNet.fits.append(self.rho)
        return super().fit(X, y, groups=groups)


def counting_net(**params):
    settings = dict(hidden_units=4, lr=1e-2, batch_size=16, max_epochs=2, random_state=0)
    return CountingNet(**{**settings, **params})


@pytest.fixture(autouse=True)
def reset_counter():
    CountingNet.fits.clear()


@pytest.fixture(scope="module")
def data():
    return make_data()


def assert_same_tables(first, second, names):
    for name in names:
        pd.testing.assert_frame_equal(first[name], second[name], check_exact=True)


def test_rerun_loads_every_fit_and_gives_identical_tables(data, tmp_path, capsys):
    X, Y, subjects, _ = data
    run = dict(rhos=[0.0, 0.5], cv=2, random_state=0)
    plain = search_rho(counting_net(), X, Y, subjects, **run)
    assert len(CountingNet.fits) == 4
    first = search_rho(counting_net(), X, Y, subjects, results_dir=tmp_path, **run)
    assert len(CountingNet.fits) == 8
    assert len(list(tmp_path.glob("*.json"))) == 4
    capsys.readouterr()
    second = search_rho(counting_net(), X, Y, subjects, results_dir=tmp_path, verbose=1, **run)
    assert len(CountingNet.fits) == 8, "a stored fit was repeated"
    assert "Reusing 4 of 4 fits stored in" in capsys.readouterr().out
    names = ["scores", "summary", "per_au", "curves"]
    assert_same_tables(plain, first, names)  # storing changes nothing
    assert_same_tables(first, second, names)
    assert second.best_rho == plain.best_rho
    assert second.search.cv_results_["rank_test_score"].tolist() == (
        plain.search.cv_results_["rank_test_score"].tolist()
    )


def test_a_partly_filled_folder_refits_only_the_missing_fits(data, tmp_path):
    X, Y, subjects, _ = data
    run = dict(rhos=[0.0, 0.5, 0.9], cv=2, random_state=0, results_dir=tmp_path)
    first = search_rho(counting_net(), X, Y, subjects, **run)
    files = sorted(tmp_path.glob("*.json"))
    assert len(files) == 6 and len(CountingNet.fits) == 6
    # A run killed after some fits: only those files exist.
    removed = [json.loads(path.read_text())["condition"] for path in files[::2]]
    for path in files[::2]:
        path.unlink()
    CountingNet.fits.clear()
    second = search_rho(counting_net(), X, Y, subjects, **run)
    assert sorted(CountingNet.fits) == sorted(condition["rho"] for condition in removed)
    assert_same_tables(first, second, ["scores", "per_au", "curves"])
    assert len(list(tmp_path.glob("*.json"))) == 6
    assert not [path for path in tmp_path.iterdir() if path.suffix != ".json"]  # no temp files


def test_changed_settings_are_not_taken_from_the_store(data, tmp_path):
    X, Y, subjects, _ = data
    search_rho(counting_net(), X, Y, subjects, rhos=[0.0, 0.5], cv=2, results_dir=tmp_path)
    CountingNet.fits.clear()
    # A new rho: only its two folds run. Other epochs or another seed: everything runs.
    search_rho(counting_net(), X, Y, subjects, rhos=[0.0, 0.5, 0.9], cv=2, results_dir=tmp_path)
    assert CountingNet.fits == [0.9, 0.9]
    CountingNet.fits.clear()
    search_rho(counting_net(max_epochs=1), X, Y, subjects, rhos=[0.0], cv=2, results_dir=tmp_path)
    search_rho(
        counting_net(), X, Y, subjects, rhos=[0.0], cv=2, random_state=1, results_dir=tmp_path
    )
    assert len(CountingNet.fits) == 4
    # Other labels: everything runs.
    CountingNet.fits.clear()
    flipped = Y.assign(AU01=1 - Y["AU01"])
    search_rho(counting_net(), X, flipped, subjects, rhos=[0.0], cv=2, results_dir=tmp_path)
    assert len(CountingNet.fits) == 2


def test_within_dataset_cv_reuses_the_fits_of_search_rho(data, tmp_path):
    X, Y, subjects, _ = data
    search = search_rho(
        counting_net(), X, Y, subjects, rhos=[0.0, 0.5], cv=2, random_state=0, results_dir=tmp_path
    )
    CountingNet.fits.clear()
    within = within_dataset_cv(
        counting_net(), X, Y, subjects, rho=0.5, cv=2, random_state=0, results_dir=tmp_path
    )
    assert CountingNet.fits == []
    columns = ["rho", "fold", "macro_f1", "correlation_distance"]
    pd.testing.assert_frame_equal(within.scores[columns], search.scores[columns])


def test_cross_dataset_and_calibrate_resume(tmp_path):
    sets = {"A": make_data(0)[:3], "B": make_data(1)[:3]}
    run = dict(rho=0.5, cv=2, random_state=0, results_dir=tmp_path / "cross")
    first = cross_dataset(counting_net(), sets, **run)
    assert len(CountingNet.fits) == 2 * 2 * 2  # train sets x folds x rhos
    files = sorted((tmp_path / "cross").glob("*.json"))
    files[0].unlink()
    CountingNet.fits.clear()
    second = cross_dataset(counting_net(), sets, **run)
    assert len(CountingNet.fits) == 1
    assert_same_tables(first, second, ["scores", "summary", "per_au"])

    X, Y, subjects, tasks = make_data(0)
    CountingNet.fits.clear()
    run = dict(rhos=[0.0, 0.5], epochs=1, random_state=0, results_dir=tmp_path / "calibrate")
    first = calibrate(counting_net(), X, Y, subjects, tasks, **run)
    assert len(CountingNet.fits) == 2 * 2  # tasks x rhos
    CountingNet.fits.clear()
    second = calibrate(counting_net(), X, Y, subjects, tasks, **run)
    assert CountingNet.fits == []
    assert_same_tables(first, second, ["scores", "summary", "per_au"])
    assert first.halves == second.halves


def test_an_unreadable_result_file_is_refit_with_a_warning(data, tmp_path):
    X, Y, subjects, _ = data
    run = dict(rhos=[0.0], cv=2, random_state=0, results_dir=tmp_path)
    first = search_rho(counting_net(), X, Y, subjects, **run)
    broken = sorted(tmp_path.glob("*.json"))[0]
    broken.write_text('{"key": "cv-')  # e.g. edited by hand
    CountingNet.fits.clear()
    with pytest.warns(UserWarning, match="unreadable result file"):
        second = search_rho(counting_net(), X, Y, subjects, **run)
    assert len(CountingNet.fits) == 1
    assert json.loads(broken.read_text())["key"] == broken.stem  # rewritten whole
    assert_same_tables(first, second, ["scores"])


def test_result_store_keys_and_round_trip(tmp_path):
    store = ResultStore(tmp_path / "fits")
    key = store.key("cv", rows=np.arange(5), params={"a": 1, "b": 2.5})
    assert key == store.key("cv", params={"b": 2.5, "a": 1}, rows=np.arange(5))
    assert key != store.key("cv", rows=np.arange(6), params={"a": 1, "b": 2.5})
    assert key.startswith("cv-") and store.load(key) is None and len(store) == 0
    result = {"f1": np.float32(0.25), "curve": np.array([1.0, np.nan]), "n": np.int64(3)}
    saved = store.save(key, result, condition={"rho": 0.5})
    assert saved["f1"] == 0.25 and saved["n"] == 3 and np.isnan(saved["curve"][1])
    loaded = store.load(key)
    assert loaded["curve"][0] == 1.0 and np.isnan(loaded["curve"][1])
    assert json.loads(store.file(key).read_text())["condition"] == {"rho": 0.5}
    with pytest.raises(TypeError, match="Cannot store a object"):
        store.save(key, {"x": object()})
    assert store.load(key)["n"] == 3  # the failed write left the stored result intact
    assert os.listdir(store.path) == [store.file(key).name]


def test_run_jobs_stores_each_result_as_it_finishes(tmp_path):
    store = ResultStore(tmp_path)

    jobs = [(store.key("div", x=x), divmod, (x, 2), {"x": x}) for x in (7, 8)]
    assert run_jobs(jobs, store=store) == [[3, 1], [4, 0]]  # as read back from JSON
    failing = [*jobs, (store.key("div", x=0), divmod, (1, 0), {"x": 0})]
    with pytest.raises(ZeroDivisionError):
        run_jobs(failing, store=store)
    assert len(store) == 2  # the finished fits stay stored; the failed one is absent
