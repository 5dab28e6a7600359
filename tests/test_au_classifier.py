"""CorrLossAUClassifier, its networks and image input."""

import pickle
import urllib.error

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import fast_au_classifier
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from skorch.callbacks import Callback
from torchvision.transforms import v2

from sklearn_corrloss.images import (
    ImageDataset,
    TransformedDataset,
    check_image_input,
    read_image,
)
from sklearn_corrloss.metrics import macro_f1
from sklearn_corrloss.networks import (
    BACKBONES,
    PAPER_FREEZE_POINTS,
    VGG16_KERAS_NAMES,
    BackboneNet,
    SmallCNN,
    backbone_stages,
)


class RecordSplit(Callback):
    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        self.datasets_ = (dataset_train, dataset_valid)


class FailOnTraining(Callback):
    def on_train_begin(self, net, **kwargs):
        raise AssertionError("training started although the input is invalid")


def write_images(images, directory):
    paths = []
    for i, image in enumerate(images):
        path = directory / f"img_{i:03d}.png"
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        paths.append(str(path))
    return paths


# --- learning ---------------------------------------------------------------------------
def test_small_cnn_learns_the_square_task(fitted_au_classifier, square_images):
    images, Y = square_images
    Y_test = Y[160:]
    prevalence = Y_test.mean(axis=0)
    constant_f1 = float(np.mean(2 * prevalence / (1 + prevalence)))  # predict all ones
    f1 = macro_f1(Y_test, fitted_au_classifier.predict(images[160:]))
    assert f1 > constant_f1 + 0.2, (f1, constant_f1)
    assert fitted_au_classifier.score(images[160:], Y_test) == pytest.approx(f1)


def test_history_and_predictions(fitted_au_classifier, square_images):
    images, _ = square_images
    for key in ("train_loss", "valid_loss", "train_bce", "train_corr", "valid_bce", "valid_corr"):
        assert np.all(np.isfinite(fitted_au_classifier.history_[:, key]))
    proba = fitted_au_classifier.predict_proba(images[:5])
    assert proba.shape == (5, 4) and proba.dtype.kind == "f"
    np.testing.assert_array_equal(fitted_au_classifier.predict(images[:5]), proba > 0.5)


def test_frozen_trunk_stays_unchanged(square_images):
    images, Y = square_images
    clf = fast_au_classifier(max_epochs=1, freeze="paper").fit(images[:64], Y[:64])
    trunk_before = {k: v.clone() for k, v in clf.module_.trunk.state_dict().items()}
    tail_before = {k: v.clone() for k, v in clf.module_.tail.state_dict().items()}
    clf.partial_fit(images[:64], Y[:64])
    for key, value in clf.module_.trunk.state_dict().items():  # weights and BN statistics
        assert torch.equal(value, trunk_before[key]), key
    assert any(
        not torch.equal(v, tail_before[k]) for k, v in clf.module_.tail.state_dict().items()
    )
    optimised = {id(p) for group in clf.optimizer_.param_groups for p in group["params"]}
    assert not optimised & {id(p) for p in clf.module_.trunk.parameters()}


def test_determinism_and_round_trips(fitted_au_classifier, square_images):
    images, Y = square_images
    again = fast_au_classifier(rho=0.2, max_epochs=10).fit(images[:160], Y[:160])
    expected = fitted_au_classifier.predict_proba(images[160:])
    np.testing.assert_array_equal(again.predict_proba(images[160:]), expected)
    restored = pickle.loads(pickle.dumps(fitted_au_classifier))
    np.testing.assert_array_equal(restored.predict_proba(images[160:]), expected)
    fresh = clone(fitted_au_classifier)
    assert fresh.get_params()["backbone"] == "small_cnn" and not hasattr(fresh, "module_")


def test_dataframe_labels_grayscale_and_groups(square_images):
    images, Y = square_images
    gray = images[:64].mean(axis=-1).astype(np.uint8)
    labels = pd.DataFrame(Y[:64], columns=["AU01", "AU02", "AU06", "AU12"])
    groups = np.repeat(np.arange(8), 8)
    recorder = RecordSplit()
    clf = fast_au_classifier(max_epochs=1, callbacks=[recorder]).fit(gray, labels, groups=groups)
    assert list(clf.classes_) == ["AU01", "AU02", "AU06", "AU12"]
    train, valid = recorder.datasets_
    assert not set(groups[train.indices]) & set(groups[valid.indices])
    assert clf.predict(gray[:3]).shape == (3, 4)


def test_set_params_rho_then_partial_fit_calibrates(fitted_au_classifier, square_images):
    images, Y = square_images
    clf = pickle.loads(pickle.dumps(fitted_au_classifier))
    module = clf.module_
    clf.set_params(rho=0.45, max_epochs=1).partial_fit(images[160:200], Y[160:200])
    assert clf.module_ is module and clf.criterion_.rho == 0.45
    row = clf.history_[-1]
    assert row["train_loss"] == pytest.approx(0.55 * row["train_bce"] + 0.225 * row["train_corr"])


def test_pipeline_with_a_preprocessing_step(square_images):
    images, Y = square_images
    crop = FunctionTransformer(lambda batch: np.ascontiguousarray(batch[:, 2:30, 2:30]))
    pipe = make_pipeline(crop, fast_au_classifier(max_epochs=1)).fit(images[:64], Y[:64])
    assert pipe.predict(images[:4]).shape == (4, 4)


# --- image paths --------------------------------------------------------------------------
def test_paths_train_like_arrays(square_images, tmp_path):
    images, Y = square_images
    paths = write_images(images[:48], tmp_path)
    from_arrays = fast_au_classifier(max_epochs=2).fit(images[:48], Y[:48])
    from_paths = fast_au_classifier(max_epochs=2).fit(paths, Y[:48])
    np.testing.assert_allclose(
        from_paths.predict_proba(paths[:8]), from_arrays.predict_proba(images[:8]), atol=1e-6
    )


def test_paths_with_dataloader_workers(square_images, tmp_path):
    images, Y = square_images
    paths = np.asarray(write_images(images[:32], tmp_path))
    clf = fast_au_classifier(
        max_epochs=1, iterator_train__num_workers=2, iterator_valid__num_workers=2
    ).fit(paths, Y[:32])
    assert clf.predict(paths[:4]).shape == (4, 4)


def test_unreadable_paths_are_refused_before_training(square_images, tmp_path):
    images, Y = square_images
    paths = write_images(images[:4], tmp_path)
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    clf = fast_au_classifier(callbacks=[FailOnTraining()])
    with pytest.raises(ValueError, match=r"broken\.png"):
        clf.fit([*paths, str(broken)], Y[:5])
    with pytest.raises(ValueError, match=r"missing\.png"):
        clf.fit([*paths, str(tmp_path / "missing.png")], Y[:5])
    with pytest.raises(ValueError, match=r"Cannot decode image file .*broken.png"):
        read_image(broken)
    with pytest.raises(FileNotFoundError, match=r"missing\.png"):
        read_image(tmp_path / "missing.png")


@pytest.mark.parametrize(
    ("X", "message"),
    [
        (np.zeros((4, 32), dtype=np.uint8), "rank 2"),
        (np.zeros((4, 32, 32, 3, 1), dtype=np.uint8), "rank 5"),
        (np.zeros((4, 32, 32, 4), dtype=np.uint8), "3 channels"),
        (np.zeros((4, 32, 32, 3), dtype=np.float32), "uint8"),
        (np.zeros((0, 32, 32, 3), dtype=np.uint8), "no image pixels"),
        (np.zeros((3, 32, 32, 3), dtype=np.uint8), "inconsistent numbers of samples"),
    ],
)
def test_bad_images_are_refused_before_training(X, message):
    Y = np.tile([[1, 0, 1, 0], [0, 1, 0, 1]], (2, 1))
    clf = fast_au_classifier(callbacks=[FailOnTraining()])
    with pytest.raises(ValueError, match=message):
        clf.fit(X, Y)


def test_check_image_input_variants(tmp_path):
    images = np.zeros((2, 8, 8, 1), dtype=np.uint8)
    checked, is_paths = check_image_input(images)
    assert checked.shape == (2, 8, 8) and not is_paths
    paths = write_images(np.zeros((2, 8, 8, 3), dtype=np.uint8), tmp_path)
    checked, is_paths = check_image_input(pd.Series(paths))
    assert is_paths and list(checked) == paths
    stacked, _ = check_image_input([np.zeros((8, 8, 3), dtype=np.uint8)] * 3)
    assert stacked.shape == (3, 8, 8, 3)
    with pytest.raises(ValueError, match="share one shape"):
        check_image_input([np.zeros((8, 8, 3), np.uint8), np.zeros((9, 8, 3), np.uint8)])
    with pytest.raises(ValueError, match="got int"):
        check_image_input(3)


# --- datasets and augmentation ----------------------------------------------------------
def test_image_dataset_resizes_and_keeps_uint8():
    images = np.arange(2 * 10 * 20 * 3, dtype=np.uint8).reshape(2, 10, 20, 3)
    item, label = ImageDataset(images, np.ones((2, 3)), image_size=16)[1]
    assert item.shape == (3, 16, 16) and item.dtype == torch.uint8
    assert label.tolist() == [1.0, 1.0, 1.0]
    same_size, _ = ImageDataset(images[:, :, :10], image_size=10)[0]
    np.testing.assert_array_equal(same_size.permute(1, 2, 0).numpy(), images[0, :, :10])


def test_augmentation_only_on_the_training_part(square_images):
    images, Y = square_images
    recorder = RecordSplit()
    clf = fast_au_classifier(max_epochs=1, augment=True, callbacks=[recorder])
    clf.fit(images[:40], Y[:40])
    train, valid = recorder.datasets_
    assert isinstance(train, TransformedDataset)
    assert not isinstance(valid, TransformedDataset)
    assert not isinstance(clf.get_dataset(images[:4]), TransformedDataset)
    np.testing.assert_array_equal(clf.predict_proba(images[:8]), clf.predict_proba(images[:8]))
    # The augmentation changes what the network is trained on.
    first, second = train[0][0], train.dataset[0][0]
    assert first.shape == second.shape and not torch.equal(first, second)


def test_custom_augmentation_transform(square_images):
    images, Y = square_images
    flip = v2.RandomVerticalFlip(p=1.0)  # an nn.Module as a parameter value
    recorder = RecordSplit()
    clf = fast_au_classifier(max_epochs=1, augment=flip, callbacks=[recorder])
    assert clone(clf).get_params()["augment"] is not None
    clf.fit(images[:40], Y[:40])
    train, _ = recorder.datasets_
    np.testing.assert_array_equal(train[0][0].numpy(), train.dataset[0][0].flip(1).numpy())
    assert clf.augment is flip


# --- networks ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vgg16_net():
    """VGG16 frozen at the paper's layer, named as in Keras (built once: it is large)."""
    return BackboneNet(backbone="vgg16", n_outputs=3, hidden_units=8, freeze="block5_conv3")


@pytest.mark.parametrize("backbone", BACKBONES)
def test_every_backbone_builds_with_the_paper_freeze_point(backbone, request):
    if backbone == "vgg16":
        net = request.getfixturevalue("vgg16_net")
    else:
        net = BackboneNet(backbone=backbone, n_outputs=3, hidden_units=8)
    first_trainable = next(iter(net.tail.named_children()))[0]
    assert first_trainable == PAPER_FREEZE_POINTS[backbone].replace(".", "_")
    assert all(not p.requires_grad for p in net.trunk.parameters())
    assert all(p.requires_grad for p in net.tail.parameters())
    net.train()
    assert not net.trunk.training and net.tail.training
    with torch.no_grad():
        out = net.eval()(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
    assert out.shape == (2, 3)


def test_vgg16_paper_freeze_is_block5_conv3(vgg16_net):
    # Keras' block5_conv3 is torchvision's features[28]: features[:28] are frozen.
    assert PAPER_FREEZE_POINTS["vgg16"] == "features.28"
    assert [n for n, _ in vgg16_net.trunk.named_children()] == [f"features_{i}" for i in range(28)]
    assert vgg16_net.head.hidden.in_features == 512 * 7 * 7
    stages = {**dict(vgg16_net.trunk.named_children()), **dict(vgg16_net.tail.named_children())}
    for keras_name, stage in VGG16_KERAS_NAMES.items():
        kind = torch.nn.MaxPool2d if keras_name.endswith("pool") else torch.nn.Conv2d
        assert isinstance(stages[stage.replace(".", "_")], kind), keras_name


def test_freeze_options():
    assert len(BackboneNet(backbone="small_cnn", n_outputs=2, freeze="none").trunk) == 0
    frozen_all = BackboneNet(backbone="small_cnn", n_outputs=2, freeze="all")
    assert len(frozen_all.tail) == 0
    assert sum(p.requires_grad for p in frozen_all.parameters()) == 4  # the head only
    by_name = BackboneNet(backbone="small_cnn", n_outputs=2, freeze="block2")
    assert [n for n, _ in by_name.trunk.named_children()] == ["block1"]
    with pytest.raises(ValueError, match=r"layer names are \['block1'"):
        BackboneNet(backbone="small_cnn", n_outputs=2, freeze="conv9")
    with pytest.raises(ValueError, match="Unknown backbone"):
        backbone_stages("alexnet")


def test_trunk_and_tail_compose_to_forward():
    net = BackboneNet(backbone="small_cnn", n_outputs=3, hidden_units=8).eval()
    x = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    with torch.no_grad():
        np.testing.assert_allclose(net.forward_tail(net.forward_trunk(x)), net(x), rtol=1e-6)


def test_local_state_dict_weights(tmp_path):
    reference = SmallCNN()
    path = tmp_path / "small_cnn.pth"
    torch.save(reference.state_dict(), path)
    net = BackboneNet(backbone="small_cnn", n_outputs=2, weights=path, freeze="none")
    assert torch.equal(net.tail.block1[0].weight, reference.block1[0].weight)
    torch.save({"state_dict": reference.state_dict()}, tmp_path / "wrapped.pth")
    wrapped = BackboneNet(backbone="small_cnn", n_outputs=2, weights=str(tmp_path / "wrapped.pth"))
    assert torch.equal(wrapped.trunk.block1[0].weight, reference.block1[0].weight)
    torch.save({"other.weight": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match=r"wrong.pth.*do not fit backbone 'small_cnn'"):
        BackboneNet(backbone="small_cnn", n_outputs=2, weights=tmp_path / "wrong.pth")
    with pytest.raises(FileNotFoundError, match=r"absent\.pth"):
        BackboneNet(backbone="small_cnn", n_outputs=2, weights=tmp_path / "absent.pth")


def test_imagenet_weights_offline_fail_with_a_clear_message(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr("torchvision.models._api.load_state_dict_from_url", offline)
    with pytest.raises(RuntimeError, match=r"pass its local path instead: weights='/path/to/"):
        BackboneNet(backbone="resnet18", n_outputs=2, weights="imagenet")
    with pytest.raises(ValueError, match="small_cnn has no ImageNet weights"):
        BackboneNet(backbone="small_cnn", n_outputs=2, weights="imagenet")


def test_bad_backbone_parameter_is_refused_in_fit(square_images):
    images, Y = square_images
    with pytest.raises(ValueError, match="'backbone' parameter"):
        fast_au_classifier(backbone="alexnet").fit(images[:8], Y[:8])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training(square_images):
    images, Y = square_images
    clf = fast_au_classifier(max_epochs=1, device="cuda").fit(images[:64], Y[:64])
    assert next(clf.module_.parameters()).is_cuda
    assert clf.predict_proba(images[:4]).shape == (4, 4)
