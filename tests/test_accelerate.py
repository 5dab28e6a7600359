"""The multi-GPU path of docs/scaling.md: skorch's AccelerateMixin on our estimators.

Only the single-process CPU case can run here; it checks that the documented two-line
subclass keeps every parameter (so ``clone`` and the experiment functions work) and trains
exactly like the plain estimator.
"""

import numpy as np
import pytest
from sklearn.base import clone

from sklearn_corrloss import CorrLossAUClassifier, make_au_faces

accelerate = pytest.importorskip("accelerate", reason="the 'accelerate' extra is not installed")
from skorch.hf import AccelerateMixin  # noqa: E402


class AcceleratedCorrLossAUClassifier(AccelerateMixin, CorrLossAUClassifier):
    """The subclass shown in docs/scaling.md."""


SETTINGS = dict(
    backbone="small_cnn",
    weights=None,
    image_size=32,
    max_epochs=2,
    rho=0.3,
    batch_size=16,
    random_state=0,
)


@pytest.fixture(scope="module")
def faces():
    return make_au_faces(n_subjects=4, n_frames=12, image_size=32, random_state=0)


def test_subclass_keeps_the_estimator_parameters():
    net = AcceleratedCorrLossAUClassifier(accelerator=accelerate.Accelerator(cpu=True), **SETTINGS)
    params = net.get_params(deep=False)
    assert {"accelerator", "rho", "backbone", "image_size", "max_epochs"} <= set(params)
    copy = clone(net)
    assert (copy.rho, copy.backbone, copy.max_epochs) == (0.3, "small_cnn", 2)


def test_accelerated_fit_on_cpu_equals_the_plain_fit(faces):
    net = AcceleratedCorrLossAUClassifier(
        accelerator=accelerate.Accelerator(cpu=True), device=None, **SETTINGS
    )
    net.fit(faces.images, faces.labels, groups=faces.subjects)
    plain = CorrLossAUClassifier(**SETTINGS).fit(faces.images, faces.labels, groups=faces.subjects)
    accelerated = net.predict_proba(faces.images)
    assert accelerated.shape == (len(faces.images), faces.labels.shape[1])
    np.testing.assert_allclose(accelerated, plain.predict_proba(faces.images), atol=1e-6)
    assert list(net.classes_) == list(faces.labels.columns)
