"""The experiments on a Dask cluster: same results as sequential, also when a worker dies."""

import os
import socket
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")

import dask.config  # noqa: E402
from sklearn.utils.parallel import Parallel, delayed  # noqa: E402

from sklearn_corrloss import cli, parallel  # noqa: E402
from sklearn_corrloss.classifier import CorrLossClassifier  # noqa: E402
from sklearn_corrloss.experiments import (  # noqa: E402
    calibrate,
    cross_dataset,
    search_rho,
    within_dataset_cv,
)

#: Set on the workers (with ``client.run``) to the path of a marker file: the first fit
#: that creates the file kills its worker process.
KILL_MARKER = "CORRLOSS_TEST_KILL_MARKER"
SEARCH = dict(rhos=[0.0, 0.5], cv=3, random_state=0)
TINY_MODEL = [
    "--backbone", "small_cnn", "--weights", "none", "--image-size", "16", "--hidden-units", "4",
    "--epochs", "1", "--batch-size", "16", "--no-face-crop",
]  # fmt: skip
SYNTHETIC = ["--synthetic-subjects", "4", "--synthetic-frames", "8", "--synthetic-size", "32"]


class DyingNet(CorrLossClassifier):
    """A CorrLossClassifier whose first fit on an armed worker kills that worker's process."""

    def fit(self, X, y, groups=None):
        marker = os.environ.get(KILL_MARKER)
        if marker:
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                pass  # another fit died already
            else:
                os._exit(1)  # as if the machine went away mid-fit
        return super().fit(X, y, groups=groups)


def set_environ(name, value):
    """Set (or with None, remove) an environment variable; run on the workers."""
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def tiny_net():
    return DyingNet(hidden_units=4, lr=1e-2, batch_size=16, max_epochs=2)


def make_data(n_subjects=6, per_subject=10):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(n_subjects * per_subject, 5)).astype(np.float32)
    Y = pd.DataFrame(
        {"AU01": X[:, 0] > 0, "AU02": X[:, 0] + X[:, 1] > 0, "AU12": X[:, 2] > 0}
    ).astype(int)
    return X, Y, np.repeat(np.arange(n_subjects), per_subject)


@pytest.fixture(scope="module")
def data():
    return make_data()


@pytest.fixture(scope="module")
def cluster():
    """Two single-threaded worker processes, each declaring one (pretend) GPU."""
    with dask.config.set(parallel.DASK_WORKER_CONFIG):
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            resources={"GPU": 1},
        )
    # With the variable unset the nanny did not copy it into this process's environment,
    # where every later subprocess of the test session would inherit it.
    assert "MALLOC_TRIM_THRESHOLD_" not in os.environ
    client = distributed.Client(cluster, timeout=60)
    yield cluster, client
    client.close(timeout=30)
    cluster.close(timeout=30)


@pytest.fixture(scope="module")
def sequential(data):
    return search_rho(tiny_net(), *data, **SEARCH)


def assert_same_search(first, second):
    for name in ("scores", "summary", "per_au", "curves"):
        pd.testing.assert_frame_equal(first[name], second[name], check_exact=True)
    assert first.best_rho == second.best_rho


def test_search_on_dask_equals_the_sequential_search(cluster, data, sequential):
    _, client = cluster
    on_dask = search_rho(tiny_net(), *data, scheduler=client, **SEARCH)
    assert_same_search(sequential, on_dask)
    assert client.status == "running"  # a client passed in is left open


def test_other_experiments_on_dask_equal_the_sequential_runs(cluster, data):
    _, client = cluster
    X, Y, groups = data
    other = make_data(n_subjects=4, per_subject=10)
    tasks = np.tile(np.repeat(["T1", "T2"], 5), 6)
    runs = {
        "within": lambda **kw: within_dataset_cv(tiny_net(), X, Y, groups, rho=0.5, cv=2, **kw),
        "cross": lambda **kw: cross_dataset(
            tiny_net(), {"a": (X, Y, groups), "b": other}, rho=0.5, cv=2, **kw
        ),
        "calibrate": lambda **kw: calibrate(
            tiny_net(), X, Y, groups, tasks, rhos=(0.0, 0.5), epochs=1, **kw
        ),
    }
    for name, run in runs.items():
        sequential, on_dask = run(random_state=0), run(random_state=0, scheduler=client)
        for table in ("scores", "per_au"):
            assert len(sequential[table]) > 0, f"{name}.{table} is empty"
            pd.testing.assert_frame_equal(
                sequential[table], on_dask[table], check_exact=True, obj=f"{name}.{table}"
            )


def test_workers_with_the_slow_malloc_setting_are_pointed_out(cluster):
    _, client = cluster
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the fixture's workers are set up well: no warning
        with parallel.dask_backend(client):
            pass
    client.run(set_environ, "MALLOC_TRIM_THRESHOLD_", "65536")
    try:
        with (
            pytest.warns(RuntimeWarning, match="2 of 2 Dask workers run with MALLOC_TRIM"),
            parallel.dask_backend(client),
        ):
            pass
    finally:
        client.run(set_environ, "MALLOC_TRIM_THRESHOLD_", None)


def _resource_restrictions(_):
    worker = distributed.get_worker()
    return worker.state.tasks[worker.get_current_task()].resource_restrictions


def test_jobs_can_request_worker_resources(cluster):
    _, client = cluster
    with parallel.dask_backend(client, resources={"GPU": 1}):
        restrictions = Parallel()(delayed(_resource_restrictions)(i) for i in range(2))
    assert restrictions == [{"GPU": 1}, {"GPU": 1}]
    with (
        pytest.raises(ValueError, match="need a Dask scheduler"),
        parallel.dask_backend(None, resources={"GPU": 1}),
    ):
        pass


def test_cli_search_on_a_scheduler_address(cluster, tmp_path, capsys):
    local, _ = cluster
    argv = ["search", "synthetic:lab", "--rhos", "0", "0.5", "--folds", "2",
            *SYNTHETIC, *TINY_MODEL]  # fmt: skip
    on_dask = [*argv, "-o", str(tmp_path / "dask"), "--scheduler", local.scheduler_address]
    assert cli.main([*argv, "-o", str(tmp_path / "local"), "--quiet"]) == 0
    assert cli.main([*on_dask, "--quiet"]) == 0
    assert len(list((tmp_path / "dask" / "fits").glob("*.json"))) == 4
    for table in ("rho_search_folds.csv", "per_au.csv", "loss_curves.csv"):
        pd.testing.assert_frame_equal(
            pd.read_csv(tmp_path / "local" / table), pd.read_csv(tmp_path / "dask" / table)
        )
    # A rerun (e.g. after a kill) finds every fit stored and repeats none.
    capsys.readouterr()
    assert cli.main(on_dask) == 0
    assert "Reusing 4 of 4 fits stored in" in capsys.readouterr().out


def test_search_survives_a_worker_killed_mid_fit(cluster, data, sequential, tmp_path):
    _, client = cluster
    marker = tmp_path / "killed"
    before = set(client.run(os.getpid).values())
    client.run(set_environ, KILL_MARKER, str(marker))  # on both workers
    try:
        result = search_rho(tiny_net(), *data, scheduler=client, **SEARCH)
    finally:
        client.run(set_environ, KILL_MARKER, None)
    assert marker.exists(), "no worker was killed"
    assert_same_search(sequential, result)
    client.wait_for_workers(2, timeout=60)
    after = set(client.run(os.getpid).values())
    assert len(before & after) == 1  # one worker process died; its nanny started a new one


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("address", "fragments"),
    [
        (None, ["No Dask scheduler answered at", "within 0.5 s", "dask scheduler"]),
        ("localhost", ["Invalid Dask scheduler address 'localhost'", "tcp://host:8786"]),
        ("bogus://host:8786", ["Invalid Dask scheduler address", "unknown address scheme"]),
    ],
)
def test_cli_bad_scheduler_address_is_a_one_line_error(
    address, fragments, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT", 0.5)
    address = address or f"tcp://127.0.0.1:{closed_port()}"
    output = tmp_path / "out"
    status = cli.main(["search", "synthetic:lab", "--scheduler", address, "-o", str(output)])
    err = capsys.readouterr().err
    assert status == 1 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err
    assert not output.exists()  # refused before anything was written


def test_without_the_dask_extra_the_error_says_what_to_install(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "distributed", None)  # makes `import distributed` fail
    backend = parallel.dask_backend("tcp://127.0.0.1:8786")
    with pytest.raises(ImportError, match=r'pip install "sklearn-corrloss\[dask\]"'):
        backend.__enter__()
    status = cli.main(["search", "synthetic:lab", "--scheduler", "tcp://127.0.0.1:8786",
                       "-o", str(tmp_path / "out")])  # fmt: skip
    assert status == 1
    assert 'pip install "sklearn-corrloss[dask]"' in capsys.readouterr().err
    with parallel.dask_backend(None) as client:  # no scheduler: no dask needed
        assert client is None
