"""Model files: round trips to identical predictions; crafted files are refused, not run."""

import io
import json
import os
import pickle
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch

from sklearn_corrloss.classifier import CorrLossAUClassifier, CorrLossClassifier
from sklearn_corrloss.persistence import ModelFileError, load_model, model_info, save_model


class Payload:
    """Unpickling this creates a folder: proof that code from the file ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.fixture(scope="module")
def feature_model():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 5)).astype(np.float32)
    Y = pd.DataFrame({"AU06": X[:, 0] > 0, "AU12": X[:, 0] + X[:, 1] > 0, "AU04": X[:, 2] > 0})
    model = CorrLossClassifier(
        rho=0.3, threshold=[0.4, 0.5, 0.6], hidden_units=8, max_epochs=2, random_state=0
    )
    return model.fit(X, Y.astype(int)), X


@pytest.fixture(scope="module")
def image_model():
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, size=(12, 20, 20, 3), dtype=np.uint8)
    Y = pd.DataFrame(rng.randint(0, 2, size=(12, 2)), columns=["AU01", "AU02"])
    model = CorrLossAUClassifier(
        backbone="small_cnn", weights=None, image_size=16, hidden_units=8, max_epochs=1,
        train_split=None, random_state=0,
    )  # fmt: skip
    return model.fit(images, Y), images


def test_feature_model_round_trip(feature_model, tmp_path):
    model, X = feature_model
    path = save_model(model, tmp_path / "sub" / "model.zip", preprocessing={"scale": 1.0})
    loaded = load_model(path)
    assert type(loaded) is CorrLossClassifier
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.classes_.tolist() == ["AU06", "AU12", "AU04"]
    assert loaded.threshold == [0.4, 0.5, 0.6]
    assert loaded.rho == 0.3 and loaded.n_features_in_ == 5
    info = model_info(path)
    assert info["preprocessing"] == {"scale": 1.0}
    assert info["attributes"]["classes_"] == ["AU06", "AU12", "AU04"]


def test_loaded_model_keeps_training(feature_model, tmp_path):
    model, X = feature_model
    loaded = load_model(save_model(model, tmp_path / "model.zip"))
    Y = pd.DataFrame(model.predict(X), columns=model.classes_)
    loaded.set_params(max_epochs=1).partial_fit(X, Y)
    assert loaded.predict_proba(X).shape == (len(X), 3)


def test_image_model_round_trip_never_fetches_pretrained_weights(image_model, tmp_path):
    model, images = image_model
    # As if trained from ImageNet weights: loading must not download them again.
    model.weights = "imagenet"
    try:
        path = save_model(model, tmp_path / "model.zip")
    finally:
        model.weights = None
    loaded = load_model(path)
    assert loaded.weights == "imagenet" and loaded.image_size == 16
    np.testing.assert_array_equal(loaded.predict_proba(images), model.predict_proba(images))


def test_save_refuses_unfitted_and_foreign_estimators(tmp_path):
    with pytest.raises(ValueError, match="not fitted"):
        save_model(CorrLossClassifier(), tmp_path / "m.zip")
    with pytest.raises(TypeError, match="CorrLossClassifier"):
        save_model(object(), tmp_path / "m.zip")


def _rewrite(path, target, *, config=None, weights=None):
    """Copy model file ``path`` to ``target``, replacing its JSON or its weights member."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w") as archive:
        stored = json.loads(source.read("corrloss.json"))
        archive.writestr("corrloss.json", json.dumps(config(stored) if config else stored))
        archive.writestr(
            "weights.pt", weights if weights is not None else source.read("weights.pt")
        )
    return target


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_weights_with_a_code_payload_are_refused_and_not_run(feature_model, tmp_path):
    model, _ = feature_model
    good = save_model(model, tmp_path / "good.zip")
    marker = tmp_path / "payload-ran"
    buffer = io.BytesIO()
    torch.save({"layer.weight": Payload(marker)}, buffer)  # a torch file with a payload
    bad = _rewrite(good, tmp_path / "bad.zip", weights=buffer.getvalue())
    with pytest.raises(ModelFileError, match=r"refused to load weights\.pt"):
        load_model(bad)
    raw = _rewrite(good, tmp_path / "raw.zip", weights=pickle.dumps(Payload(marker)))
    with pytest.raises(ModelFileError, match="refused"):
        load_model(raw)
    assert not marker.exists()


def test_pickles_and_bare_torch_files_are_refused(feature_model, tmp_path):
    model, _ = feature_model
    marker = tmp_path / "payload-ran"
    pickled = tmp_path / "model.pkl"
    pickled.write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(ModelFileError, match="not a sklearn-corrloss model file"):
        load_model(pickled)
    checkpoint = tmp_path / "checkpoint.pt"
    torch.save(model.module_.state_dict(), checkpoint)  # a zip archive, but not ours
    with pytest.raises(ModelFileError, match=r"has no corrloss\.json"):
        load_model(checkpoint)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: {**c, "class": "os.system"}, "is not allowed"),
        (lambda c: {**c, "format_version": 99}, "not supported"),
        (lambda c: {**c, "params": {**c["params"], "module": "x"}}, "unknown CorrLoss"),
        (lambda c: {**c, "attributes": {**c["attributes"], "module_": 1}}, "unexpected fitted"),
        (lambda c: {**c, "attributes": {**c["attributes"], "n_outputs_": 7}}, "do not fit"),
    ],
)
def test_crafted_configurations_are_refused(feature_model, tmp_path, edit, message):
    model, _ = feature_model
    good = save_model(model, tmp_path / "good.zip")
    with pytest.raises(ModelFileError, match=message):
        load_model(_rewrite(good, tmp_path / "edited.zip", config=edit))


def test_missing_model_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.zip"):
        load_model(tmp_path / "missing.zip")
