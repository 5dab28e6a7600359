"""Checkpoints and resuming: a killed ``fit`` / ``corrloss train`` continues where it stopped.

The Python API is tested in-process (a callback raising after epoch k stands for the kill:
like a kill, it ends ``fit`` without ``on_train_end``). The command line is tested with real
SIGKILLs of ``corrloss train`` subprocesses: one killed from outside while it waits after
the checkpoint of epoch 2, one that kills itself half-way through writing the checkpoint
of epoch 4.

Tolerance: a resumed run restores the module, the optimizer, the history, the best weights
so far, the training seed and the torch random state, so on the same machine it repeats
the uninterrupted run operation for operation and the probabilities are bit-identical (the
API tests assert exact equality). Across processes the thread count could change float
summation order, so the CLI test allows ``atol=1e-6``: float32 rounding level, a thousand
times below the effect of a single epoch more or less, which the test also measures.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_multilabel, make_square_images
from skorch.callbacks import Callback, EarlyStopping

from sklearn_corrloss import cli
from sklearn_corrloss.checkpoints import (
    CheckpointError,
    clear_checkpoints,
    find_checkpoint,
    read_checkpoint,
)
from sklearn_corrloss.classifier import CorrLossAUClassifier, CorrLossClassifier
from sklearn_corrloss.datasets.synthetic import make_au_faces
from sklearn_corrloss.feature_cache import clear_feature_cache
from sklearn_corrloss.persistence import load_model, model_info, save_model


class Crash(Callback):
    """Ends training with an error after epoch ``at``: what a kill leaves on disk."""

    def __init__(self, at):
        self.at = at

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.at:
            raise RuntimeError("simulated crash")


class CountEpochs(Callback):
    def on_train_begin(self, net, **kwargs):
        self.epochs = 0

    def on_epoch_end(self, net, **kwargs):
        self.epochs += 1


SETTINGS = dict(hidden_units=16, lr=0.5, rho=0.3, max_epochs=6, batch_size=32, random_state=0)


@pytest.fixture(scope="module")
def data():
    return make_multilabel(n_samples=120, n_groups=6)


def crashed_fit(estimator_class, X, Y, groups, folder, at, **settings):
    with pytest.raises(RuntimeError, match="simulated crash"):
        estimator_class(**settings, checkpoint_dir=folder, callbacks=[Crash(at)]).fit(
            X, Y, groups=groups
        )


# --- Python API -----------------------------------------------------------------------------
def test_resumed_fit_equals_uninterrupted_fit(data, tmp_path):
    X, Y, groups = data
    straight = CorrLossClassifier(**SETTINGS).fit(X, Y, groups=groups)
    best = dict(straight.callbacks_)["restore_best"].best_epoch_
    # Crash after the best epoch: its weights then exist only in the checkpoint's state.
    assert best < SETTINGS["max_epochs"] - 1, "precondition: a best epoch before the end"
    crashed_fit(CorrLossClassifier, X, Y, groups, tmp_path, best + 1, **SETTINGS)
    assert find_checkpoint(tmp_path).name == f"epoch-{best + 1:04d}"
    counter = CountEpochs()
    resumed = CorrLossClassifier(
        **SETTINGS, checkpoint_dir=tmp_path, resume=True, callbacks=[counter]
    ).fit(X, Y, groups=groups)
    assert resumed.resumed_epoch_ == best + 1
    assert counter.epochs == SETTINGS["max_epochs"] - best - 1  # only the epochs left
    assert resumed.history_[:, "valid_loss"] == straight.history_[:, "valid_loss"]
    assert dict(resumed.callbacks_)["restore_best"].best_epoch_ == best
    np.testing.assert_array_equal(resumed.predict_proba(X), straight.predict_proba(X))
    # Without the checkpoint's state (a fresh run from the epoch's weights) it would differ.
    assert resumed.history_[-1, "valid_loss"] != resumed.history_[best - 1, "valid_loss"]


def test_two_of_four_epochs_then_resume_to_four(data, tmp_path):
    X, Y, groups = data
    settings = {**SETTINGS, "lr": 0.05, "max_epochs": 4}
    crashed_fit(CorrLossClassifier, X, Y, groups, tmp_path, 2, **settings)
    resumed = CorrLossClassifier(**settings, checkpoint_dir=tmp_path, resume=True)
    resumed.fit(X, Y, groups=groups)
    assert (resumed.resumed_epoch_, len(resumed.history_)) == (2, 4)
    straight = CorrLossClassifier(**settings).fit(X, Y, groups=groups)
    np.testing.assert_array_equal(resumed.predict_proba(X), straight.predict_proba(X))
    assert find_checkpoint(tmp_path).name == "epoch-0004"


def test_resume_reuses_the_training_seed_of_a_run_without_random_state(data, tmp_path):
    X, Y, groups = data
    settings = {**SETTINGS, "random_state": None}
    crashed_fit(CorrLossClassifier, X, Y, groups, tmp_path, 2, **settings)
    checkpoint = read_checkpoint(find_checkpoint(tmp_path))
    resumed = CorrLossClassifier(**settings, checkpoint_dir=tmp_path, resume=True)
    resumed.fit(X, Y, groups=groups)
    assert resumed.resumed_epoch_ == 2
    assert resumed.history_[:2, "valid_loss"] == checkpoint["history"][:, "valid_loss"]
    # Same seed, so the same validation split: the valid batch sizes of every epoch agree.
    sizes = resumed.history_[:, "batches", :, "valid_batch_size"]
    assert all(epoch == sizes[0] for epoch in sizes)
    assert read_checkpoint(find_checkpoint(tmp_path))["train_seed"] == checkpoint["train_seed"]


def test_au_classifier_resumes_and_reuses_the_feature_cache(tmp_path):
    images, Y = make_square_images(n_samples=48, size=16)
    groups = np.repeat(np.arange(6), 8)
    settings = dict(backbone="small_cnn", weights=None, image_size=16, hidden_units=8,
                    lr=1e-2, max_epochs=4, batch_size=16, random_state=0)  # fmt: skip
    cache, checkpoints = tmp_path / "features", tmp_path / "checkpoints"
    straight = CorrLossAUClassifier(**settings).fit(images, Y, groups=groups)
    with pytest.raises(RuntimeError, match="simulated crash"):
        CorrLossAUClassifier(
            **settings, cache_dir=cache, checkpoint_dir=checkpoints, callbacks=[Crash(2)]
        ).fit(images, Y, groups=groups)
    parts = sorted(p.name for p in cache.rglob("part-*"))
    assert parts, "the killed run stored its trunk features"
    resumed = CorrLossAUClassifier(
        **settings, cache_dir=cache, checkpoint_dir=checkpoints, resume=True
    ).fit(images, Y, groups=groups)
    assert resumed.cache_info_["computed"] == 0 and resumed.cache_info_["reused"] == 48
    assert sorted(p.name for p in cache.rglob("part-*")) == parts
    np.testing.assert_array_equal(resumed.predict_proba(images), straight.predict_proba(images))


def test_a_feature_cache_part_cut_short_by_a_kill_is_not_read(tmp_path):
    images, Y = make_square_images(n_samples=24, size=16)
    settings = dict(backbone="small_cnn", weights=None, image_size=16, hidden_units=8,
                    max_epochs=1, train_split=None, random_state=0)  # fmt: skip
    cache = tmp_path / "features"
    CorrLossAUClassifier(**settings, cache_dir=cache).fit(images, Y)
    # A kill inside the fill leaves a temporary file, or a part whose keys file (written
    # last) is missing; a new process must compute those features again.
    (keys,) = cache.rglob("part-*.keys.npy")
    keys.unlink()
    (keys.parent / ".part-0123.npy.tmp").write_bytes(b"\x93NUMPY half")
    clear_feature_cache()  # as in a new process
    again = CorrLossAUClassifier(**settings, cache_dir=cache).fit(images, Y)
    assert again.cache_info_["computed"] == 24
    plain = CorrLossAUClassifier(**settings, feature_cache=False).fit(images, Y)
    np.testing.assert_allclose(again.predict_proba(images), plain.predict_proba(images),
                               rtol=0, atol=1e-6)  # fmt: skip


def test_resume_without_a_checkpoint_trains_from_scratch(data, tmp_path, capsys):
    X, Y, groups = data
    resumed = CorrLossClassifier(
        **SETTINGS, checkpoint_dir=tmp_path / "new", resume=True, verbose=1
    ).fit(X, Y, groups=groups)
    assert "No checkpoint in" in capsys.readouterr().out
    assert resumed.resumed_epoch_ == 0
    straight = CorrLossClassifier(**SETTINGS).fit(X, Y, groups=groups)
    np.testing.assert_array_equal(resumed.predict_proba(X), straight.predict_proba(X))
    assert find_checkpoint(tmp_path / "new").name == "epoch-0006"


def test_a_write_killed_half_way_is_ignored_and_cleaned_up(data, tmp_path):
    X, Y, groups = data
    crashed_fit(CorrLossClassifier, X, Y, groups, tmp_path, 3, **SETTINGS)
    partial = tmp_path / ".tmp-0123456789abcdef"  # what a kill during save_model leaves
    partial.mkdir()
    (partial / "params.pt").write_bytes(b"\x80\x02half a pickle")
    assert find_checkpoint(tmp_path).name == "epoch-0003"
    resumed = CorrLossClassifier(**SETTINGS, checkpoint_dir=tmp_path, resume=True)
    resumed.fit(X, Y, groups=groups)
    assert resumed.resumed_epoch_ == 3
    assert not partial.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-0006", "finished.json"]


@pytest.mark.parametrize("damage", ["truncate", "delete", "garbage_json"])
def test_a_damaged_checkpoint_is_refused_not_loaded(data, tmp_path, damage):
    X, Y, groups = data
    crashed_fit(CorrLossClassifier, X, Y, groups, tmp_path, 2, **SETTINGS)
    folder = find_checkpoint(tmp_path)
    if damage == "truncate":
        params = folder / "params.pt"
        params.write_bytes(params.read_bytes()[:100])
    elif damage == "delete":
        (folder / "optimizer.pt").unlink()
    else:
        (folder / "history.json").write_text("[{")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    estimator = CorrLossClassifier(**SETTINGS, checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(CheckpointError, match=r"epoch-0002 cannot be resumed from") as error:
        estimator.fit(X, Y, groups=groups)
    assert "to start over" in str(error.value)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # left for inspection


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"lr": 0.1}, "lr=0.5 then, 0.1 now"),
        ({"rho": 0.0}, "rho=0.3 then, 0.0 now"),
        ({"data": True}, "other training data"),
    ],
)
def test_resume_refuses_other_settings_or_data(data, tmp_path, change, fragment):
    X, Y, groups = data
    crashed_fit(CorrLossClassifier, X, Y, groups, tmp_path, 2, **SETTINGS)
    settings = {**SETTINGS, **{k: v for k, v in change.items() if k != "data"}}
    X_new = X[::-1].copy() if "data" in change else X
    estimator = CorrLossClassifier(**settings, checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(CheckpointError, match="other settings or data") as error:
        estimator.fit(X_new, Y, groups=groups)
    assert fragment in str(error.value)
    # max_epochs and verbose may change: the run goes on to the new max_epochs.
    longer = CorrLossClassifier(
        **{**SETTINGS, "max_epochs": 8}, checkpoint_dir=tmp_path, resume=True, verbose=0
    ).fit(X, Y, groups=groups)
    assert (longer.resumed_epoch_, len(longer.history_)) == (2, 8)


def test_a_fresh_fit_replaces_old_checkpoints_only(data, tmp_path):
    X, Y, groups = data
    crashed_fit(CorrLossClassifier, X, Y, groups, tmp_path, 5, **SETTINGS)
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    CorrLossClassifier(**{**SETTINGS, "max_epochs": 2}, checkpoint_dir=tmp_path).fit(X, Y)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["epoch-0002", "finished.json", "notes.txt"]
    clear_checkpoints(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_an_early_stopped_run_is_not_trained_further(data, tmp_path):
    X, Y, groups = data
    settings = {**SETTINGS, "max_epochs": 20}
    stopper = EarlyStopping(patience=1, threshold=0.5)  # stops after epoch 2
    first = CorrLossClassifier(**settings, checkpoint_dir=tmp_path, callbacks=[stopper])
    first.fit(X, Y, groups=groups)
    stopped = len(first.history_)
    assert stopped < 20
    assert json.loads((tmp_path / "finished.json").read_text())["epoch"] == stopped
    counter = CountEpochs()
    resumed = CorrLossClassifier(
        **settings, checkpoint_dir=tmp_path, resume=True, callbacks=[counter]
    ).fit(X, Y, groups=groups)
    assert counter.epochs == 0 and len(resumed.history_) == stopped
    np.testing.assert_array_equal(resumed.predict_proba(X), first.predict_proba(X))


def test_new_parameters_validate_clone_and_stay_out_of_model_files(data, tmp_path):
    X, Y, _ = data
    with pytest.raises(ValueError, match="resume=True needs checkpoint_dir"):
        CorrLossClassifier(**SETTINGS, resume=True).fit(X, Y)
    with pytest.raises(ValueError, match="'resume' parameter"):
        CorrLossClassifier(**SETTINGS, resume="yes").fit(X, Y)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file"):
        CorrLossClassifier(**SETTINGS, checkpoint_dir=tmp_path / "file").fit(X, Y)
    from sklearn.base import clone

    estimator = CorrLossClassifier(**SETTINGS, checkpoint_dir=tmp_path / "ck", resume=True)
    assert clone(estimator).get_params()["checkpoint_dir"] == tmp_path / "ck"
    estimator.set_params(resume=False, max_epochs=1).fit(X, Y)
    path = save_model(estimator, tmp_path / "model.zip")
    info = model_info(path)
    assert "checkpoint_dir" not in info["params"] and "resume" not in info["params"]
    assert info["dropped_params"] == []
    assert load_model(path).get_params()["checkpoint_dir"] is None


def test_partial_fit_writes_no_checkpoints(data, tmp_path):
    X, Y, _ = data
    estimator = CorrLossClassifier(**{**SETTINGS, "max_epochs": 2}, checkpoint_dir=tmp_path)
    estimator.fit(X, Y)
    before = sorted(p.name for p in tmp_path.iterdir())
    estimator.partial_fit(X, Y)
    assert sorted(p.name for p in tmp_path.iterdir()) == before == ["epoch-0002", "finished.json"]


# --- command line: real SIGKILLs ------------------------------------------------------------
#: Runs ``corrloss train`` with a hook: ``pause`` sleeps after publishing the checkpoint of
#: epoch N (the test kills it from outside); ``die`` SIGKILLs itself after skorch wrote the
#: files of epoch N into the temporary folder, before the rest and the rename.
WRAPPER = textwrap.dedent(
    """
    import os, signal, sys, time
    from sklearn_corrloss import checkpoints, cli
    from sklearn_corrloss.classifier import CorrLossAUClassifier

    mode, epoch = sys.argv[1], int(sys.argv[2])
    save_model = checkpoints.EpochCheckpoint.save_model
    save_params = CorrLossAUClassifier.save_params

    def pausing_save_model(self, net):
        save_model(self, net)
        if mode == "pause" and len(net.history) == epoch:
            time.sleep(300)

    def dying_save_params(self, **kwargs):
        save_params(self, **kwargs)
        if mode == "die" and len(self.history) == epoch:
            os.kill(os.getpid(), signal.SIGKILL)

    checkpoints.EpochCheckpoint.save_model = pausing_save_model
    CorrLossAUClassifier.save_params = dying_save_params
    sys.exit(cli.main(sys.argv[3:]))
    """
)
TRAIN = ["--backbone", "small_cnn", "--weights", "none", "--image-size", "16",
         "--hidden-units", "8", "--lr", "0.05", "--batch-size", "8", "--rho", "0.3",
         "--detector", "res10", "--seed", "3"]  # fmt: skip
TIMEOUT = 120  # seconds; each subprocess needs about 10 on one loaded core


@pytest.fixture(scope="module")
def face_manifest(tmp_path_factory):
    """36 PNG faces of 6 subjects (48 px) and a manifest CSV with 4 AU columns."""
    folder = tmp_path_factory.mktemp("faces")
    faces = make_au_faces(
        n_subjects=6, n_frames=6, aus=("AU01", "AU02", "AU06", "AU12"), image_size=48,
        random_state=0,
    )  # fmt: skip
    (folder / "img").mkdir()
    paths = []
    for index, image in enumerate(faces.images):
        cv2.imwrite(str(folder / "img" / f"{index:03d}.png"), image[:, :, ::-1])
        paths.append(f"img/{index:03d}.png")
    table = pd.DataFrame({"path": paths, "subject": faces.subjects})
    manifest = folder / "faces.csv"
    pd.concat([table, faces.labels], axis=1).to_csv(manifest, index=False)
    return manifest


def start(tmp_path, mode, epoch, argv):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    threads = str(torch.get_num_threads())  # as in this process: same float summation order
    env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    return subprocess.Popen(
        [sys.executable, "-c", WRAPPER, mode, str(epoch), *map(str, argv)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def snapshot(folder):
    """``{relative path: mtime_ns}`` of the files under ``folder``."""
    return {
        os.fspath(p.relative_to(folder)): p.stat().st_mtime_ns
        for p in folder.rglob("*")
        if p.is_file()
    }


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX only")
def test_cli_train_killed_twice_then_resumed_matches_an_uninterrupted_run(
    face_manifest, tmp_path, capsys
):
    crops, features, checkpoints = tmp_path / "crops", tmp_path / "features", tmp_path / "ck"
    common = [face_manifest, *TRAIN, "--crop-cache", crops, "--feature-cache", features,
              "--epochs", "6"]  # fmt: skip
    argv = ["train", *common, "-o", tmp_path / "model.zip", "--checkpoint-dir", checkpoints]

    # 1. Killed from outside once the checkpoint of epoch 2 exists.
    process = start(tmp_path, "pause", 2, argv)
    deadline = time.monotonic() + TIMEOUT
    try:
        while not (checkpoints / "epoch-0002").is_dir():
            assert process.poll() is None, f"train ended early:\n{process.stdout.read()}"
            assert time.monotonic() < deadline, "no checkpoint of epoch 2 in time"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        output = process.communicate(timeout=TIMEOUT)[0]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    assert "Cropping faces" in output and "36 computed" in output
    assert find_checkpoint(checkpoints).name == "epoch-0002"
    assert not (tmp_path / "model.zip").exists()
    crop_files, feature_files = snapshot(crops), snapshot(features)
    assert len([name for name in crop_files if name.endswith(".png")]) == 36

    # Without --resume the folder is refused, and left as it was.
    status = cli.main([str(a) for a in argv])
    assert status == 1
    err = capsys.readouterr().err
    assert "is not empty: pass --resume" in err and len(err.strip().splitlines()) == 1
    assert find_checkpoint(checkpoints).name == "epoch-0002"

    # 2. Resumed; kills itself half-way through writing the checkpoint of epoch 4.
    process = start(tmp_path, "die", 4, [*argv, "--resume"])
    try:
        output = process.communicate(timeout=TIMEOUT)[0]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL, output
    assert "after epoch 2" in output and "0 computed, 36 reused" in output
    assert find_checkpoint(checkpoints).name == "epoch-0003"
    assert list(checkpoints.glob(".tmp-*")), "the half-written checkpoint is left behind"

    # 3. Resumed again, in this process: finishes; nothing cropped or computed again.
    status = cli.main([str(a) for a in [*argv, "--resume"]])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "after epoch 3: training 3 more epoch(s)" in out and "0 computed, 36 reused" in out
    assert snapshot(crops) == crop_files  # same crop files, not rewritten (same mtimes)
    assert snapshot(features) == feature_files  # no new feature part
    assert not list(checkpoints.glob(".tmp-*"))

    # The uninterrupted run (same seed), and one with an epoch less for scale.
    for name, epochs in (("straight.zip", "6"), ("five.zip", "5")):
        argv_straight = ["train", *common, "-o", tmp_path / name, "--epochs", epochs, "--quiet"]
        assert cli.main([str(a) for a in argv_straight]) == 0
    X = np.asarray(sorted(str(crops / name) for name in crop_files), dtype=object)
    resumed = load_model(tmp_path / "model.zip").predict_proba(X)
    straight = load_model(tmp_path / "straight.zip").predict_proba(X)
    five = load_model(tmp_path / "five.zip").predict_proba(X)
    np.testing.assert_allclose(resumed, straight, rtol=0, atol=1e-6)
    assert np.abs(five - straight).max() > 1e-3  # the tolerance is far below one epoch


def test_cli_resume_with_an_empty_folder_starts_from_scratch(face_manifest, tmp_path, capsys):
    argv = ["train", face_manifest, *TRAIN, "--no-face-crop", "--epochs", "1", "--resume",
            "-o", tmp_path / "model.zip"]  # fmt: skip
    assert cli.main([str(a) for a in argv]) == 0
    out = capsys.readouterr().out
    default = tmp_path / "model.zip.checkpoints"
    assert f"No checkpoint in {default} to resume from; training from scratch" in out
    assert find_checkpoint(default).name == "epoch-0001"
    (tmp_path / "plain").write_text("x")
    argv = [
        "train",
        face_manifest,
        "-o",
        tmp_path / "m.zip",
        "--checkpoint-dir",
        tmp_path / "plain",
    ]
    assert cli.main([str(a) for a in argv]) == 1
    assert "is a file, not a folder" in capsys.readouterr().err
