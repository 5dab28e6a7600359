"""The bad-input catalogue: every mistake gets a specific, clear error and damages nothing.

Each case runs against one shared workspace folder that holds what a user has already
computed (a feature model file, an image model file, an earlier search's tables, a report,
a face-crop cache) next to the good and bad inputs. After every refused call the whole
folder must be byte-for-byte and mtime-for-mtime what it was (no partial file, no temporary
file, no new folder), and models already in memory must predict exactly as before.
"""

import errno
import hashlib
import io
import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pandas as pd
import pytest
import skimage.data
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_corrloss import cli
from sklearn_corrloss.classifier import CorrLossAUClassifier, CorrLossClassifier
from sklearn_corrloss.datasets.manifest import load_manifest
from sklearn_corrloss.datasets.synthetic import make_au_faces
from sklearn_corrloss.experiments import evaluate, search_rho
from sklearn_corrloss.faces import FaceCropTransformer, NoFaceError
from sklearn_corrloss.persistence import ModelFileError, load_model, save_model

AUS = ["AU01", "AU02", "AU12"]
#: A small_cnn image model trained for one epoch on 16x16 images, without face cropping.
TINY = [
    "--backbone", "small_cnn", "--weights", "none", "--image-size", "16", "--hidden-units", "4",
    "--epochs", "1", "--batch-size", "8", "--no-face-crop", "--quiet",
]  # fmt: skip
#: Settings of the face crops cached in the workspace (the no-face case reads that cache).
CROP = dict(detector="res10", on_missing="error", output="path", output_size=16)


# --- workspace ----------------------------------------------------------------------------------
def snapshot(folder: Path) -> dict:
    """Every file (hidden ones too) -> (sha256, mtime_ns, size); every folder -> None."""
    state = {}
    for path in sorted(folder.rglob("*")):
        key = path.relative_to(folder).as_posix()
        if path.is_dir():
            state[key] = None
        else:
            stat = path.stat()
            state[key] = (
                hashlib.sha256(path.read_bytes()).hexdigest(),
                stat.st_mtime_ns,
                stat.st_size,
            )
    return state


def tabular_data():
    """20 samples x 5 features, 3 labels, 4 subjects."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 5)).astype(np.float32)
    Y = pd.DataFrame((X[:, :3] > 0).astype(int), columns=AUS)
    return X, Y, np.repeat(["s1", "s2", "s3", "s4"], 5)


def tiny(**params):
    settings = dict(hidden_units=4, max_epochs=1, train_split=None, random_state=0)
    return CorrLossClassifier(**{**settings, **params})


def tiny_au(**params):
    settings = dict(
        backbone="small_cnn", weights=None, image_size=16, hidden_units=4, max_epochs=1,
        train_split=None, random_state=0,
    )  # fmt: skip
    return CorrLossAUClassifier(**{**settings, **params})


class Payload:
    """Unpickling this creates a folder: proof that code from a model file ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _write_bad_models(ws: Path) -> None:
    good = (ws / "model.zip").read_bytes()
    (ws / "random.zip").write_bytes(np.random.default_rng(1).bytes(600))
    (ws / "model.pkl").write_bytes(pickle.dumps({"weights": [1.0, 2.0]}))
    (ws / "truncated_model.zip").write_bytes(good[: len(good) // 2])
    with zipfile.ZipFile(ws / "model.zip") as archive:
        start = archive.getinfo("weights.pt").header_offset + 60
    damaged = bytearray(good)
    damaged[start : start + 40] = bytes(b ^ 0xFF for b in damaged[start : start + 40])
    (ws / "damaged_model.zip").write_bytes(bytes(damaged))
    with (
        zipfile.ZipFile(ws / "model.zip") as source,
        zipfile.ZipFile(ws / "crafted_params.zip", "w") as archive,
    ):
        config = json.loads(source.read("corrloss.json"))
        config["params"].update(optimizer="os.system", callbacks=[["run", "os.system"]])
        archive.writestr("corrloss.json", json.dumps(config))
        archive.writestr("weights.pt", source.read("weights.pt"))
    buffer = io.BytesIO()
    torch.save({"layer.weight": Payload(ws.parent / "payload-ran")}, buffer)
    with (
        zipfile.ZipFile(ws / "model.zip") as source,
        zipfile.ZipFile(ws / "malicious.zip", "w") as archive,
    ):
        archive.writestr("corrloss.json", source.read("corrloss.json"))
        archive.writestr("weights.pt", buffer.getvalue())


def _write_manifests(ws: Path, faces) -> None:
    paths = [f"faces/{i:03d}.png" for i in range(len(faces.images))]
    table = pd.DataFrame({"path": paths, "subject": faces.subjects, "task": faces.tasks})
    table = pd.concat([table, faces.labels], axis=1)
    table.to_csv(ws / "faces.csv", index=False)

    def variant(name, edit):
        edit(table.copy()).to_csv(ws / name, index=False)

    variant("no_subject.csv", lambda t: t.drop(columns=["subject"]))
    variant("missing_image.csv", lambda t: t.assign(path=[*paths[:-1], "faces/gone.png"]))
    variant("corrupt_image.csv", lambda t: t.assign(path=[*paths[:-1], "corrupt.png"]))
    variant("truncated_image.csv", lambda t: t.assign(path=[*paths[:-1], "truncated.png"]))
    variant("one_subject.csv", lambda t: t.assign(subject="S1"))
    variant("two_subjects.csv", lambda t: t.assign(subject=np.repeat(["S1", "S2"], len(t) // 2)))
    variant("other_aus.csv", lambda t: t[["path", "subject", "AU04", "AU06"]])
    variant("non_binary.csv", lambda t: t.assign(AU01=[2, *t["AU01"][1:]]))
    variant("duplicate_au.csv", lambda t: t.assign(AU1=t["AU01"]))
    (ws / "empty.csv").write_text("path,subject,AU01,AU02\n")


@pytest.fixture(scope="module")
def faces():
    """16 synthetic faces (32x32) of 4 subjects with 12 AU columns."""
    return make_au_faces(n_subjects=4, n_frames=4, image_size=32, random_state=0)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, faces):
    """A folder of earlier results and of good and bad inputs (see the module docstring)."""
    ws = tmp_path_factory.mktemp("bad-inputs") / "work"
    ws.mkdir()
    (ws / "faces").mkdir()
    for index, image in enumerate(faces.images):
        cv2.imwrite(str(ws / "faces" / f"{index:03d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    png = (ws / "faces" / "000.png").read_bytes()
    (ws / "truncated.png").write_bytes(png[: len(png) // 2])  # valid header, cut-off data
    (ws / "corrupt.png").write_bytes(np.random.default_rng(2).bytes(300))
    (ws / "a_file").write_text("not a folder\n")
    _write_manifests(ws, faces)

    X, Y, _ = tabular_data()
    save_model(tiny(rho=0.3).fit(X, Y), ws / "model.zip")
    argv = ["train", ws / "faces.csv", "-o", ws / "au_model.zip", "--aus", "AU01", "AU02", *TINY]
    assert cli.main([str(arg) for arg in argv]) == 0
    _write_bad_models(ws)

    results = ws / "results"  # an earlier `corrloss search`
    results.mkdir()
    pd.DataFrame({"rho": [0.0, 0.3], "score_mean": [0.5, 0.6]}).to_csv(
        results / "rho_search.csv", index=False
    )
    pd.DataFrame({"au": ["AU01", "macro"], "f1": [0.7, 0.7]}).to_csv(
        ws / "report.csv", index=False
    )
    pd.DataFrame({"source": ["x.png"], "AU01": [0.5]}).to_csv(ws / "predictions.csv", index=False)
    face = cv2.resize(skimage.data.astronaut(), (160, 160))
    FaceCropTransformer(**CROP, cache_dir=ws / "crops").fit_transform(face[None])
    return ws


@pytest.fixture
def ctx(workspace, faces):
    """Inputs and freshly loaded models; ``ctx.proba`` holds their predictions before."""
    X, Y, groups = tabular_data()
    paths = sorted(str(p) for p in (workspace / "faces").glob("*.png"))
    c = SimpleNamespace(
        ws=workspace, X=X, Y=Y, groups=groups, images=faces.images, labels=faces.labels,
        paths=paths, face=cv2.resize(skimage.data.astronaut(), (160, 160)),
        model=load_model(workspace / "model.zip"),
        au_model=load_model(workspace / "au_model.zip"),
    )  # fmt: skip
    c.proba = {"model": c.model.predict_proba(X), "au_model": c.au_model.predict_proba(c.images)}
    return c


def with_value(X, value):
    X = X.copy()
    X[3, 2] = value
    return X


# --- the Python API -----------------------------------------------------------------------------
API_CASES = [
    pytest.param(lambda c: c.model.partial_fit(with_value(c.X, np.nan), c.Y),
                 ValueError, "Input X contains NaN", id="nan-features"),
    pytest.param(lambda c: c.model.fit(with_value(c.X, np.inf), c.Y),
                 ValueError, "Input X contains infinity", id="inf-features"),
    # fit on a fitted model with new features and bad labels: the old model must survive
    pytest.param(lambda c: c.model.fit(c.X[:, :4], c.Y.replace(1, 2)),
                 ValueError, r"Y must be binary .*found values \[2\.\]", id="non-binary-labels"),
    pytest.param(lambda c: tiny().fit(c.X, c.Y[["AU01"]]),
                 ValueError, r"Y has 1 label column\(s\).*at least 2 labels",
                 id="one-column-labels"),
    pytest.param(lambda c: c.model.fit(c.X, c.Y.iloc[:15]),
                 ValueError, "inconsistent numbers of samples: X has 20, y has 15",
                 id="label-feature-length-mismatch"),
    pytest.param(lambda c: tiny().fit(c.X[:0], c.Y.iloc[:0]),
                 ValueError, r"0 sample\(s\)", id="empty-features"),
    pytest.param(lambda c: tiny_au().fit(c.images[:0], c.labels.iloc[:0]),
                 ValueError, "contains no image pixels", id="empty-images"),
    pytest.param(lambda c: tiny(train_split=0.2).fit(c.X, c.Y, groups=["s1"] * 20),
                 ValueError, "validation split needs at least 2 distinct groups, got 1",
                 id="single-subject-validation-split"),
    pytest.param(lambda c: search_rho(tiny(), c.X, c.Y, ["s1"] * 20, rhos=[0.0], cv=2),
                 ValueError, r"2 subject-wise folds need at least 2 subjects, but the data has 1",
                 id="single-subject-cv-folds"),
    pytest.param(lambda c: tiny(rho=-0.1).fit(c.X, c.Y),
                 InvalidParameterError, r"'rho' parameter .*\[0\.0, 1\.0\]\. Got -0\.1",
                 id="rho-negative"),
    pytest.param(lambda c: tiny(rho=1.5).fit(c.X, c.Y),
                 InvalidParameterError, r"'rho' parameter .*\[0\.0, 1\.0\]\. Got 1\.5",
                 id="rho-above-one"),
    pytest.param(lambda c: search_rho(tiny(train_split=0.2), c.X, c.Y, ["s1"] * 10 + ["s2"] * 10,
                                      rhos=[0.0], cv=2),
                 ValueError, "validation split needs at least 2 distinct groups, got 1",
                 id="training-fold-of-one-subject"),
    pytest.param(lambda c: search_rho(tiny(), c.X, c.Y, c.groups, rhos=[0.0, 1.2], cv=2),
                 InvalidParameterError, r"'rho' parameter .*Got 1\.2", id="search-rho-above-one"),
    pytest.param(lambda c: tiny_au(backbone="alexnet").fit(c.images, c.labels),
                 InvalidParameterError, r"'backbone' parameter .*Got 'alexnet'",
                 id="unknown-backbone"),
    pytest.param(lambda c: tiny_au(freeze="block9").fit(c.images, c.labels),
                 ValueError, r"freeze='block9' is not .* layer names are \['block1'",
                 id="unknown-freeze-layer"),
    pytest.param(lambda c: tiny(max_epochs=0).fit(c.X, c.Y),
                 InvalidParameterError, r"'max_epochs' parameter .*\[1, inf\)\. Got 0",
                 id="zero-max-epochs"),
    pytest.param(lambda c: tiny(max_epochs=-2).fit(c.X, c.Y),
                 InvalidParameterError, r"'max_epochs' parameter .*Got -2",
                 id="negative-max-epochs"),
    pytest.param(lambda c: tiny(batch_size=0).fit(c.X, c.Y),
                 InvalidParameterError, r"'batch_size' parameter .*\[1, inf\)\. Got 0",
                 id="zero-batch-size"),
    pytest.param(lambda c: tiny().predict(c.X),
                 NotFittedError, "not fitted yet", id="predict-before-fit"),
    pytest.param(lambda c: c.model.predict(c.X[:, :4]),
                 ValueError, "X has 4 features, but CorrLossClassifier is expecting 5",
                 id="predict-other-number-of-features"),
    pytest.param(lambda c: c.model.fit(c.X, c.Y.set_axis(["AU01", "AU01", "AU12"], axis=1)),
                 ValueError, r"duplicate label columns \['AU01'\]", id="duplicate-au-columns"),
    pytest.param(lambda c: c.model.fit(c.X, c.Y.replace({0: "no", 1: "yes"})),
                 ValueError, "binary labels .*could not convert string to float: '(yes|no)'",
                 id="string-labels"),
    pytest.param(lambda c: c.au_model.predict(np.zeros((2, 16, 16, 4), np.uint8)),
                 ValueError, r"3 channels last .*got shape \(2, 16, 16, 4\)",
                 id="images-with-4-channels"),
    pytest.param(lambda c: c.au_model.predict(c.images.astype(np.float32)),
                 ValueError, "dtype uint8 .*got float32", id="float-images"),
    pytest.param(lambda c: c.au_model.partial_fit(c.images[..., None, :],
                                                  c.labels[["AU01", "AU02"]]),
                 ValueError, r"got an array of rank 5", id="images-of-rank-5"),
    pytest.param(lambda c: tiny_au().fit([*c.paths[:-1], str(c.ws / "gone.png")], c.labels),
                 ValueError, r"1 image file\(s\) not found, e\.g\. \['.*gone\.png'\]",
                 id="missing-image-file"),
    pytest.param(lambda c: tiny_au().fit([*c.paths[:-1], str(c.ws / "corrupt.png")], c.labels),
                 ValueError, r"not images OpenCV can read, e\.g\. \['.*corrupt\.png'\]",
                 id="corrupt-image-file"),
    pytest.param(lambda c: c.au_model.partial_fit([*c.paths[:-1], str(c.ws / "truncated.png")],
                                                  c.labels[["AU01", "AU02"]]),
                 ValueError, r"Cannot decode image file '.*truncated\.png'",
                 id="truncated-image-file"),
    pytest.param(lambda c: FaceCropTransformer(**CROP, cache_dir=c.ws / "crops").transform(
                     np.stack([c.face, np.zeros_like(c.face)])),
                 NoFaceError, r"No face .* in 1 of 2 images: X\[1\]\.", id="image-without-face"),
    pytest.param(lambda c: FaceCropTransformer(**CROP, cache_dir=c.ws / "crops").transform(
                     [str(c.ws / "gone.png")]),
                 FileNotFoundError, r"gone\.png", id="face-crop-of-missing-file"),
    pytest.param(lambda c: load_manifest(c.ws / "no_subject.csv"),
                 ValueError, r"no_subject\.csv: no 'subject' column",
                 id="manifest-missing-column"),
    pytest.param(lambda c: load_manifest(c.ws / "non_binary.csv"),
                 ValueError, r"column 'AU01': labels must be 1, 0 or empty .*\[2\]",
                 id="manifest-non-binary-label"),
    pytest.param(lambda c: evaluate(c.au_model, c.images, c.labels[["AU04", "AU06"]]),
                 ValueError, r"lack \['AU01', 'AU02'\].*another AU set",
                 id="model-for-another-au-set"),
    pytest.param(lambda c: c.model.partial_fit(c.X, c.Y.set_axis(["AU01", "AU02", "AU04"],
                                                                 axis=1)),
                 ValueError, r"columns \['AU01', 'AU02', 'AU04'\] differ from the fitted labels",
                 id="continue-training-on-another-au-set"),
    pytest.param(lambda c: load_model(c.ws / "random.zip"),
                 ModelFileError, "is not a sklearn-corrloss model file",
                 id="model-file-random-bytes"),
    pytest.param(lambda c: load_model(c.ws / "model.pkl"),
                 ModelFileError, "pickle and joblib files are refused", id="model-file-pickle"),
    pytest.param(lambda c: load_model(c.ws / "truncated_model.zip"),
                 ModelFileError, "truncated or corrupt", id="model-file-truncated"),
    pytest.param(lambda c: load_model(c.ws / "damaged_model.zip"),
                 ModelFileError, r"is corrupt or truncated: cannot read weights\.pt",
                 id="model-file-damaged"),
    pytest.param(lambda c: load_model(c.ws / "crafted_params.zip"),
                 ModelFileError, r"cannot build the estimator its corrloss\.json describes: "
                 r"The 'optimizer' parameter", id="model-file-with-crafted-parameters"),
    pytest.param(lambda c: load_model(c.ws / "malicious.zip"),
                 ModelFileError, r"refused to load weights\.pt", id="model-file-with-code"),
    pytest.param(lambda c: save_model(c.model, c.ws / "a_file" / "model.zip"),
                 NotADirectoryError, r"a_file is a file, not a folder", id="save-under-a-file"),
    pytest.param(lambda c: save_model(c.model, c.ws / "results"),
                 IsADirectoryError, r"results: it is a folder, not a file",
                 id="save-onto-a-folder"),
]  # fmt: skip


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize(("call", "error", "match"), API_CASES)
def test_python_api_refuses_bad_input(ctx, call, error, match):
    before = snapshot(ctx.ws)
    history = len(ctx.model.history_), len(ctx.au_model.history_)
    with pytest.raises(error, match=match):
        call(ctx)
    assert snapshot(ctx.ws) == before
    assert not (ctx.ws.parent / "payload-ran").exists()
    # Nothing computed is lost: the models in memory predict exactly as before.
    assert (len(ctx.model.history_), len(ctx.au_model.history_)) == history
    np.testing.assert_array_equal(ctx.model.predict_proba(ctx.X), ctx.proba["model"])
    np.testing.assert_array_equal(ctx.au_model.predict_proba(ctx.images), ctx.proba["au_model"])
    assert ctx.model.n_features_in_ == 5 and ctx.model.classes_.tolist() == AUS


def test_no_face_error_names_the_images(ctx):
    cropper = FaceCropTransformer(**CROP, cache_dir=ctx.ws / "crops")
    blank = np.zeros_like(ctx.face)
    with pytest.raises(NoFaceError) as info:
        cropper.transform(np.stack([blank, ctx.face, blank]))
    assert info.value.indices == [0, 2] and info.value.names == ["X[0]", "X[2]"]


# --- the command line ---------------------------------------------------------------------------
CLI_CASES = [
    pytest.param(["train", "nonsense", "-o", "{ws}/au_model.zip", *TINY],
                 ["Cannot read data 'nonsense'", "manifest CSV, LOADER:ROOT"],
                 id="unknown-data-spec"),
    pytest.param(["train", "nosuchloader:{ws}", "-o", "{ws}/au_model.zip", *TINY],
                 ["Unknown data set 'nosuchloader'"], id="unknown-loader"),
    pytest.param(["train", "{ws}/no_subject.csv", "-o", "{ws}/au_model.zip", *TINY],
                 ["no_subject.csv: no 'subject' column"], id="manifest-missing-column"),
    pytest.param(["train", "{ws}/empty.csv", "-o", "{ws}/au_model.zip", *TINY],
                 ["has a header but no rows"], id="manifest-without-rows"),
    pytest.param(["train", "{ws}/missing_image.csv", "-o", "{ws}/au_model.zip", *TINY],
                 ["1 image file(s) not found", "gone.png"], id="missing-image-file"),
    pytest.param(["train", "{ws}/corrupt_image.csv", "-o", "{ws}/au_model.zip", *TINY],
                 ["not images OpenCV can read", "corrupt.png"], id="corrupt-image-file"),
    pytest.param(["train", "{ws}/truncated_image.csv", "-o", "{ws}/au_model.zip", *TINY],
                 ["Cannot decode image file", "truncated.png"], id="truncated-image-file"),
    pytest.param(["train", "{ws}/non_binary.csv", "-o", "{ws}/au_model.zip", *TINY],
                 ["column 'AU01': labels must be 1, 0 or empty"], id="non-binary-labels"),
    pytest.param(["train", "{ws}/duplicate_au.csv", "-o", "{ws}/au_model.zip", *TINY],
                 ["several columns for AU01"], id="duplicate-au-columns"),
    pytest.param(["train", "{ws}/faces.csv", "-o", "{ws}/au_model.zip", "--aus", "AU01", *TINY],
                 ["Y has 1 label column(s)"], id="one-label-column"),
    pytest.param(["train", "{ws}/faces.csv", "-o", "{ws}/au_model.zip", "--aus", "AU99", *TINY],
                 ["AU(s) ['AU99'] are not in the data"], id="unknown-au"),
    pytest.param(["train", "{ws}/one_subject.csv", "-o", "{ws}/au_model.zip", *TINY],
                 ["at least 2 distinct groups, got 1", "--valid-size 0"],
                 id="single-subject-validation-split"),
    pytest.param(["train", "{ws}/faces.csv", "-o", "{ws}/au_model.zip", *TINY, "--rho", "-0.2"],
                 ["'rho' parameter", "Got -0.2"], id="rho-negative"),
    pytest.param(["train", "{ws}/faces.csv", "-o", "{ws}/au_model.zip", *TINY, "--rho", "1.2"],
                 ["'rho' parameter", "Got 1.2"], id="rho-above-one"),
    pytest.param(["train", "{ws}/faces.csv", "-o", "{ws}/au_model.zip", *TINY,
                  "--backbone", "alexnet"],
                 ["Unknown backbone 'alexnet'", "small_cnn"], id="unknown-backbone"),
    pytest.param(["train", "{ws}/faces.csv", "-o", "{ws}/au_model.zip", *TINY,
                  "--freeze", "block9"],
                 ["freeze='block9' is not", "layer names are"], id="unknown-freeze-layer"),
    pytest.param(["train", "{ws}/faces.csv", "-o", "{ws}/au_model.zip", *TINY, "--epochs", "0"],
                 ["'max_epochs' parameter", "Got 0"], id="zero-epochs"),
    pytest.param(["train", "{ws}/faces.csv", "-o", "{ws}/au_model.zip", *TINY,
                  "--batch-size", "-1"],
                 ["'batch_size' parameter", "Got -1"], id="negative-batch-size"),
    pytest.param(["train", "{ws}/faces.csv", "-o", "{ws}/a_file/model.zip", *TINY],
                 ["a_file is a file, not a folder"], id="model-output-under-a-file"),
    pytest.param(["search", "{ws}/faces.csv", "--rhos", "0", "1.5", "--folds", "2",
                  "-o", "{ws}/results", *TINY],
                 ["--rhos must lie in [0, 1]", "[1.5]"], id="search-rho-above-one"),
    pytest.param(["search", "{ws}/one_subject.csv", "--rhos", "0", "--folds", "2",
                  "-o", "{ws}/results", *TINY],
                 ["2 subject-wise folds need at least 2 subjects", "has 1 (S1)"],
                 id="search-single-subject"),
    pytest.param(["search", "{ws}/two_subjects.csv", "--rhos", "0", "--folds", "2",
                  "-o", "{ws}/results", *TINY],
                 ["validation split needs at least 2 distinct groups, got 1", "--valid-size 0"],
                 id="search-training-fold-of-one-subject"),
    pytest.param(["search", "{ws}/faces.csv", "--rhos", "0", "-o", "{ws}/a_file", *TINY],
                 ["a_file: it is a file, not a folder"], id="search-output-is-a-file"),
    pytest.param(["evaluate", "{ws}/au_model.zip", "{ws}/other_aus.csv", "-o", "{ws}/report.csv",
                  "--quiet"],
                 ["lack ['AU01', 'AU02']", "another AU set"], id="model-for-another-au-set"),
    pytest.param(["evaluate", "{ws}/random.zip", "{ws}/faces.csv", "--quiet"],
                 ["random.zip is not a sklearn-corrloss model file"],
                 id="model-file-random-bytes"),
    pytest.param(["evaluate", "{ws}/crafted_params.zip", "{ws}/faces.csv", "--quiet"],
                 ["crafted_params.zip: cannot build the estimator"],
                 id="model-file-with-crafted-parameters"),
    pytest.param(["evaluate", "{ws}/malicious.zip", "{ws}/faces.csv", "--quiet"],
                 ["refused to load weights.pt"], id="model-file-with-code"),
    pytest.param(["evaluate", "{ws}/au_model.zip", "{ws}/faces.csv", "-o",
                  "{ws}/a_file/report.csv", "--quiet"],
                 ["a_file is a file, not a folder"], id="report-under-a-file"),
    pytest.param(["predict", "{ws}/truncated_model.zip", "{ws}/faces", "--quiet"],
                 ["truncated or corrupt"], id="model-file-truncated"),
    pytest.param(["predict", "{ws}/damaged_model.zip", "{ws}/faces", "--quiet"],
                 ["corrupt or truncated: cannot read weights.pt"], id="model-file-damaged"),
    pytest.param(["predict", "{ws}/model.zip", "{ws}/faces", "--quiet"],
                 ["holds a CorrLossClassifier on feature vectors"],
                 id="predict-with-feature-model"),
    pytest.param(["predict", "{ws}/au_model.zip", "{ws}/faces.csv", "--quiet"],
                 ["unsupported file type '.csv'"], id="predict-unsupported-input"),
    pytest.param(["predict", "{ws}/au_model.zip", "{ws}/faces", "--every", "0", "--quiet"],
                 ["--every must be at least 1"], id="predict-every-zero"),
    pytest.param(["predict", "{ws}/au_model.zip", "{ws}/faces", "-o", "{ws}/results", "--quiet"],
                 ["results: it is a folder, not a file"], id="predictions-onto-a-folder"),
]  # fmt: skip


def _argv(argv, ws):
    return [arg.replace("{ws}", str(ws)) for arg in argv]


def assert_one_line_error(status, err, fragments):
    assert status == 1, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize(("argv", "fragments"), CLI_CASES)
def test_cli_refuses_bad_input_with_one_line(workspace, capfd, argv, fragments):
    before = snapshot(workspace)
    status = cli.main(_argv(argv, workspace))
    # capfd: what reaches file descriptor 2, OpenCV's own warnings included
    assert_one_line_error(status, capfd.readouterr().err, fragments)
    assert snapshot(workspace) == before


def test_cli_error_in_a_subprocess_is_one_line(workspace):
    before = snapshot(workspace)
    argv = ["train", "{ws}/truncated_image.csv", "-o", "{ws}/au_model.zip", *TINY]
    result = subprocess.run(
        [sys.executable, "-m", "sklearn_corrloss.cli", *_argv(argv, workspace)],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0] == (
        f"corrloss train: error: Cannot decode image file '{workspace / 'truncated.png'}': "
        "not an image OpenCV can read."
    )
    assert snapshot(workspace) == before


# --- failures while writing ---------------------------------------------------------------------
def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_save_model_failure_keeps_the_old_model_file(ctx, monkeypatch):
    before = snapshot(ctx.ws)
    original = zipfile.ZipFile.writestr

    def writestr(archive, name, data, *args, **kwargs):
        if name == "weights.pt":  # after the JSON member was written
            original(archive, name, data[: len(data) // 3], *args, **kwargs)
            _disk_full()
        return original(archive, name, data, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", writestr)
    with pytest.raises(OSError, match="No space left"):
        save_model(ctx.model, ctx.ws / "model.zip")
    monkeypatch.undo()
    assert snapshot(ctx.ws) == before  # the old file intact, no temporary file left
    np.testing.assert_array_equal(
        load_model(ctx.ws / "model.zip").predict_proba(ctx.X), ctx.proba["model"]
    )


@pytest.mark.parametrize(
    ("argv", "target"),
    [
        (["evaluate", "{ws}/au_model.zip", "{ws}/faces.csv", "-o", "{ws}/report.csv"],
         "report.csv"),
        (["predict", "{ws}/au_model.zip", "{ws}/faces", "-o", "{ws}/predictions.csv"],
         "predictions.csv"),
    ],
    ids=["evaluate-report", "predict-csv"],
)  # fmt: skip
def test_cli_csv_written_atomically(workspace, capsys, monkeypatch, argv, target):
    before = snapshot(workspace)

    def half_then_fail(table, path_or_buf=None, *args, **kwargs):
        Path(path_or_buf).write_text(table.head(1).to_string())  # a partial file...
        _disk_full()  # ... then the disk fills up

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_fail)
    status = cli.main([*_argv(argv, workspace), "--quiet"])
    monkeypatch.undo()
    assert_one_line_error(status, capsys.readouterr().err, ["No space left on device"])
    assert snapshot(workspace) == before, f"{target} changed or a partial file was left"
