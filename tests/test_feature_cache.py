"""Frozen-trunk feature cache and precision options: same results as the plain path."""

import os
import time

import cv2
import numpy as np
import pytest
import torch
from conftest import fast_au_classifier
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, GroupKFold

from sklearn_corrloss.feature_cache import (
    FEATURE_CACHE,
    CachedFeatures,
    FeatureCache,
    FeatureCacheFull,
    clear_feature_cache,
    fill,
    image_keys,
    trunk_key,
)
from sklearn_corrloss.images import ImageDataset
from sklearn_corrloss.metrics import macro_f1_scorer
from sklearn_corrloss.networks import BackboneNet, SmallCNN

N_TRAIN = 64


@pytest.fixture(autouse=True)
def empty_cache():
    """Every test starts and ends with an empty process-wide cache."""
    clear_feature_cache()
    yield
    clear_feature_cache()


@pytest.fixture(scope="module")
def data(square_images):
    images, Y = square_images
    groups = np.repeat(np.arange(8), N_TRAIN // 8)
    return images[:N_TRAIN], Y[:N_TRAIN], groups, images[160:176]


def write_images(images, directory):
    paths = []
    for i, image in enumerate(images):
        path = directory / f"face_{i:03d}.png"
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        paths.append(str(path))
    return paths


def stored_images() -> int:
    info = FEATURE_CACHE.info()
    return int(info["n_images"].sum()) if len(info) else 0


# --- correctness: cached == uncached -------------------------------------------------------------
@pytest.mark.parametrize("source", ["arrays", "paths"])
def test_cached_training_equals_uncached(data, source, tmp_path):
    images, Y, groups, test = data
    X = images if source == "arrays" else write_images(images, tmp_path)
    plain = fast_au_classifier(rho=0.3, feature_cache=False).fit(X, Y, groups=groups)
    assert plain.cache_info_ == {"used": False, "reason": "feature_cache=False"}
    assert stored_images() == 0
    cached = fast_au_classifier(rho=0.3).fit(X, Y, groups=groups)
    assert cached.cache_info_["used"] and cached.cache_info_["computed"] == N_TRAIN
    for key in ("train_loss", "valid_loss", "train_corr", "valid_bce"):
        np.testing.assert_allclose(cached.history_[:, key], plain.history_[:, key], rtol=1e-5)
    trunk_calls = []
    cached.module_.trunk.register_forward_hook(lambda *args: trunk_calls.append(1))
    np.testing.assert_allclose(cached.predict_proba(X), plain.predict_proba(X), atol=1e-6)
    assert not trunk_calls  # the training images' features were read, not recomputed
    np.testing.assert_allclose(cached.predict_proba(test), plain.predict_proba(test), atol=1e-6)
    assert trunk_calls
    # Predicting new images streams them; feature_cache=True stores them as well.
    assert stored_images() == N_TRAIN
    cached.set_params(feature_cache=True).predict_proba(test)
    assert stored_images() == N_TRAIN + len(test)


def test_network_runs_the_tail_on_features():
    net = BackboneNet(backbone="small_cnn", n_outputs=3, hidden_units=8).eval()
    x = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    with torch.no_grad():
        torch.testing.assert_close(net(features=net.forward_trunk(x)), net(x))
    with pytest.raises(ValueError, match="either images x or trunk features"):
        net()


def test_grid_search_computes_each_image_once(data):
    images, Y, groups, _ = data
    search = GridSearchCV(
        fast_au_classifier(max_epochs=2),
        {"rho": [0.0, 0.5]},
        cv=GroupKFold(n_splits=2),
        scoring=macro_f1_scorer,
    )
    search.fit(images, Y, groups=groups)
    info = FEATURE_CACHE.info()
    assert len(info) == 1 and info["n_images"].iloc[0] == N_TRAIN  # 5 fits, one trunk pass
    fresh = clone(search.best_estimator_).fit(images, Y)
    assert fresh.cache_info_ == {
        "used": True,
        "location": "memory",
        "n_images": N_TRAIN,
        "computed": 0,
        "reused": N_TRAIN,
    }
    clear_feature_cache()
    plain = GridSearchCV(
        fast_au_classifier(max_epochs=2, feature_cache=False),
        {"rho": [0.0, 0.5]},
        cv=GroupKFold(n_splits=2),
        scoring=macro_f1_scorer,
    ).fit(images, Y, groups=groups)
    assert stored_images() == 0
    np.testing.assert_allclose(
        search.cv_results_["mean_test_score"], plain.cv_results_["mean_test_score"], atol=1e-9
    )


def test_experiment_functions_use_the_cache(data):
    from sklearn_corrloss.experiments import search_rho

    images, Y, groups, _ = data
    result = search_rho(fast_au_classifier(max_epochs=1), images, Y, groups, rhos=[0.0, 0.5], cv=2)
    assert len(result.scores) == 4
    assert stored_images() == N_TRAIN


def test_fill_leaves_the_global_random_state_alone(data):
    images, _, _, _ = data
    net = BackboneNet(backbone="small_cnn", n_outputs=4)
    store = FeatureCache().store("key", {"dtype": "float32"})
    state = torch.get_rng_state()
    dataset = ImageDataset(images[:10], image_size=32)
    keys = image_keys(images[:10])
    assert fill(store, net, dataset, keys, batch_size=4) == 10
    assert fill(store, net, dataset, keys, batch_size=4) == 0
    assert torch.equal(torch.get_rng_state(), state)
    features, _ = CachedFeatures(store, keys)[3]
    with torch.no_grad():
        expected = net.forward_trunk(dataset[3][0][None])[0]
    torch.testing.assert_close(features["features"], expected)


# --- keys and invalidation -----------------------------------------------------------------------
def test_trunk_key_follows_weights_freeze_point_and_settings(tmp_path):
    torch.manual_seed(0)
    paths = []
    for name in ("a", "b"):
        paths.append(tmp_path / f"{name}.pth")
        torch.save(SmallCNN().state_dict(), paths[-1])

    def key(weights=paths[0], freeze="paper", **settings):
        net = BackboneNet(backbone="small_cnn", n_outputs=2, weights=weights, freeze=freeze)
        return trunk_key(net, **{"backbone": "small_cnn", "image_size": 32, **settings})[0]

    reference = key()
    assert key() == reference  # a second network with the same weights
    assert key(weights=paths[1]) != reference
    assert key(freeze="block3") != reference  # one more frozen block
    assert key(image_size=48) != reference
    assert key(precision="bf16") != reference
    assert key(dtype="float16") != reference
    net = BackboneNet(backbone="small_cnn", n_outputs=2, weights=paths[0])
    before = trunk_key(net, backbone="small_cnn", image_size=32)[0]
    with torch.no_grad():
        net.trunk.block1[1].running_mean += 1  # a buffer counts as much as a weight
    assert trunk_key(net, backbone="small_cnn", image_size=32)[0] != before


def test_changed_weights_or_freeze_point_recompute_the_features(data, tmp_path):
    images, Y, _, _ = data
    weights = tmp_path / "small_cnn.pth"
    torch.save(SmallCNN().state_dict(), weights)
    first = fast_au_classifier(weights=weights, max_epochs=1).fit(images, Y)
    assert first.cache_info_["computed"] == N_TRAIN
    torch.save(SmallCNN().state_dict(), tmp_path / "other.pth")
    other = fast_au_classifier(weights=tmp_path / "other.pth", max_epochs=1).fit(images, Y)
    assert other.cache_info_["computed"] == N_TRAIN
    moved = fast_au_classifier(weights=weights, freeze="block2", max_epochs=1).fit(images, Y)
    assert moved.cache_info_["computed"] == N_TRAIN
    again = fast_au_classifier(weights=weights, max_epochs=1, rho=0.7).fit(images, Y)
    assert again.cache_info_["computed"] == 0
    paper_end = list(first.module_.trunk.named_children())[-1][0]
    moved_end = list(moved.module_.trunk.named_children())[-1][0]
    assert moved_end != paper_end  # three stores: two weights files, two freeze points
    assert sorted(FEATURE_CACHE.info()["trunk_end"]) == sorted([paper_end, paper_end, moved_end])


def test_image_keys_follow_pixels_and_files(data, tmp_path):
    images = data[0][:4].copy()
    keys = image_keys(images)
    assert len(set(keys)) == 4
    images[2, 0, 0, 0] ^= 1
    changed = image_keys(images)
    assert [a == b for a, b in zip(keys, changed)] == [True, True, False, True]
    assert image_keys(images[..., 0])[0] != changed[0]  # grayscale is another image
    paths = np.asarray(write_images(data[0][:4], tmp_path), dtype=object)
    file_keys = image_keys(paths)
    cv2.imwrite(paths[1], np.zeros((32, 32, 3), np.uint8))
    stat = os.stat(paths[1])
    os.utime(paths[1], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    rewritten = image_keys(paths)
    assert [a == b for a, b in zip(file_keys, rewritten)] == [True, False, True, True]
    with pytest.raises(FileNotFoundError, match=r"gone\.png"):
        image_keys(np.asarray([str(tmp_path / "gone.png")], dtype=object))


def test_a_changed_image_file_is_recomputed(data, tmp_path):
    images, Y, _, _ = data
    paths = write_images(images, tmp_path)
    fast_au_classifier(max_epochs=1).fit(paths, Y)
    cv2.imwrite(paths[5], np.full((32, 32, 3), 200, np.uint8))
    stat = os.stat(paths[5])
    os.utime(paths[5], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    again = fast_au_classifier(max_epochs=1).fit(paths, Y)
    assert again.cache_info_["computed"] == 1 and again.cache_info_["reused"] == N_TRAIN - 1


# --- refusal -------------------------------------------------------------------------------------
def test_augmentation_is_refused_or_trained_without_the_cache(data):
    images, Y, _, test = data
    with pytest.raises(ValueError, match="feature_cache=True cannot be combined with augment"):
        fast_au_classifier(feature_cache=True, augment=True, max_epochs=1).fit(images, Y)
    assert stored_images() == 0
    auto = fast_au_classifier(augment=True, max_epochs=2).fit(images, Y)
    assert auto.cache_info_["used"] is False and "augmentation" in auto.cache_info_["reason"]
    assert stored_images() == 0
    plain = fast_au_classifier(augment=True, max_epochs=2, feature_cache=False).fit(images, Y)
    np.testing.assert_allclose(auto.predict_proba(test), plain.predict_proba(test), atol=1e-6)


def test_no_frozen_trunk_means_no_cache(data):
    images, Y, _, _ = data
    with pytest.raises(ValueError, match="leaves no frozen trunk"):
        fast_au_classifier(feature_cache=True, freeze="none", max_epochs=1).fit(images, Y)
    auto = fast_au_classifier(freeze="none", max_epochs=1).fit(images, Y)
    assert auto.cache_info_ == {"used": False, "reason": "freeze='none' leaves no frozen trunk"}


def test_memory_budget(data, monkeypatch):
    images, Y, _, test = data
    monkeypatch.setattr(FEATURE_CACHE, "max_memory", 10_000)  # less than 64 rows
    with pytest.warns(UserWarning, match="in-memory cache budget"):
        auto = fast_au_classifier(max_epochs=1).fit(images, Y)
    assert auto.cache_info_["used"] is False and stored_images() == 0
    with pytest.raises(ValueError, match=r"feature_cache=True, but .* cache_dir="):
        fast_au_classifier(feature_cache=True, max_epochs=1).fit(images, Y)
    # Least recently used stores make room for new ones.
    cache = FeatureCache(max_memory=3 * 400)
    old, new = (cache.store(k, {"dtype": "float32"}) for k in ("old", "new"))
    old.add(["a", "b"], np.zeros((2, 100)))  # 800 bytes
    assert cache.reserve(new, 400) and cache.memory_bytes() == 800
    assert cache.reserve(new, 800) and list(cache.info()["n_images"]) == [0]
    with pytest.raises(FeatureCacheFull):
        fill(
            new,
            BackboneNet(backbone="small_cnn", n_outputs=2),
            ImageDataset(test),
            image_keys(test),
            batch_size=4,
            cache=cache,
        )


# --- disk ----------------------------------------------------------------------------------------
def test_disk_cache_in_float16_is_reused_after_the_memory_is_cleared(data, tmp_path):
    images, Y, _, test = data
    in_memory = fast_au_classifier(max_epochs=2).fit(images, Y)
    on_disk = fast_au_classifier(max_epochs=2, cache_dir=tmp_path, cache_dtype="float16")
    on_disk.fit(images, Y)
    assert on_disk.cache_info_["location"].startswith(os.path.realpath(tmp_path))
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    parts = sorted(folder.glob("part-*.npy"))
    assert (folder / "meta.json").exists() and parts
    stored = np.load(next(p for p in parts if not p.name.endswith(".keys.npy")), mmap_mode="r")
    with torch.no_grad():
        trunk_output = on_disk.module_.forward_trunk(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    assert stored.dtype == np.float16 and stored.shape[1:] == trunk_output.shape[1:]
    clear_feature_cache()  # a new process would see only the files
    again = clone(on_disk).fit(images, Y)
    assert again.cache_info_["computed"] == 0 and again.cache_info_["reused"] == N_TRAIN
    np.testing.assert_allclose(again.predict_proba(test), on_disk.predict_proba(test), atol=1e-6)
    # float16 storage rounds the features: close to, not equal to, the float32 results.
    np.testing.assert_allclose(
        on_disk.predict_proba(test), in_memory.predict_proba(test), atol=2e-2
    )


# --- precision and devices -----------------------------------------------------------------------
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_runs_on_cpu(data, precision):
    images, Y, _, test = data
    settings = dict(max_epochs=2, train_split=None, feature_cache=False)
    fp32 = fast_au_classifier(**settings).fit(images, Y)
    reference = fp32.predict_proba(test)
    # The same weights under autocast: nearly, not exactly, the same probabilities.
    mixed = fp32.set_params(precision=precision).predict_proba(test)
    assert mixed.dtype == np.float32 and not np.array_equal(mixed, reference)
    np.testing.assert_allclose(mixed, reference, atol=0.02)
    # Training: finite losses, float32 outputs, a gradient scaler for float16 only.
    clf = fast_au_classifier(**settings, precision=precision).fit(images, Y)
    assert np.isfinite(clf.history_[:, "train_loss"]).all()
    assert np.isfinite(clf.predict_proba(test)).all()
    assert (getattr(clf, "grad_scaler_", None) is not None) == (precision == "fp16")


def test_bad_cache_and_precision_parameters_are_refused(data):
    images, Y, _, _ = data
    for params, name in [
        ({"precision": "fp8"}, "precision"),
        ({"cache_dtype": "int8"}, "cache_dtype"),
        ({"feature_cache": "always"}, "feature_cache"),
    ]:
        with pytest.raises(ValueError, match=f"'{name}' parameter"):
            fast_au_classifier(**params).fit(images[:8], Y[:8])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_cached_training_matches_cpu(data):
    images, Y, _, test = data
    cpu = fast_au_classifier(max_epochs=1).fit(images, Y)
    gpu = fast_au_classifier(max_epochs=1, device="cuda", precision="bf16").fit(images, Y)
    conv_weight = next(p for p in gpu.module_.tail.parameters() if p.ndim == 4)
    assert conv_weight.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_allclose(gpu.predict_proba(test), cpu.predict_proba(test), atol=0.05)


def test_files_left_by_killed_writers_are_removed_once_stale(tmp_path):
    store = FeatureCache().store("k", {"dtype": "float32"}, cache_dir=tmp_path)
    store.add(["a", "b"], np.ones((2, 3)))
    folder = store.directory
    complete = sorted(folder.glob("part-*"))
    old_tmp, new_tmp = folder / ".part-dead.npy.tmp", folder / ".part-alive.npy.tmp"
    orphan = folder / "part-orphan.npy"  # data written, keys never: a kill in between
    for path in (old_tmp, new_tmp, orphan):
        path.write_bytes(b"x")
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(old_tmp, (two_days_ago, two_days_ago))
    os.utime(orphan, (two_days_ago, two_days_ago))
    reopened = FeatureCache().store("k", {"dtype": "float32"}, cache_dir=tmp_path)
    assert not old_tmp.exists() and not orphan.exists()
    assert new_tmp.exists()  # may belong to a writer that is still running
    assert sorted(folder.glob("part-*")) == complete
    assert len(reopened) == 2
