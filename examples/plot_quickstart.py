"""
=================================
Quick start on synthetic AU faces
=================================

Train an Action Unit detector with CorrLoss on face images, end to end, in a few seconds on
a CPU: generate labelled faces, split them by subject, fit
:class:`~sklearn_corrloss.classifier.CorrLossAUClassifier`, and look at its training
history, per-AU scores and the correlation matrices that CorrLoss compares.
"""

# %%
# Synthetic faces with co-occurring AUs
# -------------------------------------
# No AU data set can be shipped (BP4D, DISFA, CK+ and GFT are licensed), so the package
# renders faces whose AUs co-occur the way FACS descriptions of emotions say they do:
# :func:`~sklearn_corrloss.datasets.synthetic.make_au_faces`. Each subject performs
# BP4D's eight tasks (happiness, sadness, ..., disgust) as short sequences.
import matplotlib.pyplot as plt
import numpy as np

from sklearn_corrloss.datasets.synthetic import make_au_faces

aus = ["AU01", "AU02", "AU04", "AU06", "AU12", "AU15"]
faces = make_au_faces(n_subjects=12, n_frames=24, aus=aus, image_size=96, random_state=0)
X, Y, subjects = faces.images, faces.labels, faces.subjects
print(X.shape, X.dtype, "| subjects:", len(set(subjects)))
Y.head()

# %%
fig, axes = plt.subplots(2, 6, figsize=(10, 4), layout="constrained")
for ax, i in zip(axes.ravel(), [24 * k + 3 * (k % 8) + 1 for k in range(12)]):
    ax.imshow(X[i])
    active = [au for au in aus if Y.iloc[i][au]]
    ax.set_title(f"{faces.tasks[i]}: " + (" ".join(active) or "none"), fontsize=8)
    ax.set_axis_off()

# %%
# Split by subject
# ----------------
# Frames of one person are alike, so a model must be tested on people it has not seen:
# every split in this package is subject-wise (``groups`` are subject IDs).
from sklearn.model_selection import GroupShuffleSplit

train, test = next(GroupShuffleSplit(test_size=0.3, random_state=0).split(X, groups=subjects))
print("train subjects:", sorted(set(subjects[train].tolist())))
print("test subjects: ", sorted(set(subjects[test].tolist())))

# %%
# Train
# -----
# The paper's network is VGG16 pretrained on ImageNet, frozen up to ``block5_conv3``
# (``backbone="vgg16", weights="imagenet"``). Here ``backbone="small_cnn"``, a tiny network
# with random weights, keeps the example fast. ``rho`` weighs the correlation term;
# ``groups`` makes the internal validation split (20 % of the training subjects) subject-wise
# too, and the weights of the epoch with the lowest validation loss are kept.
from sklearn_corrloss.classifier import CorrLossAUClassifier

clf = CorrLossAUClassifier(
    backbone="small_cnn",
    weights=None,
    freeze="none",
    image_size=64,
    rho=0.3,
    lr=3e-3,
    batch_size=32,
    max_epochs=8,
    random_state=0,
)
clf.fit(X[train], Y.iloc[train], groups=subjects[train])
print("classes_:", clf.classes_)

# %%
# ``history_`` records, per epoch, the total loss and its two parts: the BCE and the
# CorrLoss term ``c`` (in [0, 2], the mean absolute difference between the label and the
# prediction correlations over the batch).
history = clf.history_
fig, axes = plt.subplots(1, 3, figsize=(10, 3), layout="constrained")
for ax, part in zip(axes, ["loss", "bce", "corr"]):
    ax.plot(history[:, "epoch"], history[:, f"train_{part}"], marker=".", label="train")
    ax.plot(history[:, "epoch"], history[:, f"valid_{part}"], marker=".", label="valid")
    ax.set(title=part, xlabel="epoch")
axes[0].legend()

# %%
# Predict and evaluate
# --------------------
# ``predict_proba`` gives one probability per AU, ``predict`` thresholds them (0.5 by
# default, or one ``threshold`` per AU), ``score`` is the paper's macro F1.
from sklearn_corrloss import au_f1_report, macro_f1

proba = clf.predict_proba(X[test])
print("probabilities:", proba.shape, "| macro F1:", round(clf.score(X[test], Y.iloc[test]), 3))
print(
    "macro F1 of predicting every AU everywhere:",
    round(macro_f1(Y.iloc[test], np.ones_like(proba)), 3),
)

# %%
# A small network trained from random weights for a few seconds on about 200 frames learns
# next to nothing: these numbers only show the workflow. The paper's network is pretrained
# on ImageNet; without internet access pass a local file, e.g.
# ``weights="/models/vgg16-397923af.pth"`` (see :doc:`/install`).
#
# Useful scores in seconds: a frozen feature extractor
# ----------------------------------------------------
# With a frozen trunk only the head learns, and the trunk's features of each image can be
# computed once (:doc:`/performance`). Here HOG descriptors of the face crops
# (:func:`~sklearn_corrloss.report.face_features`) stand in for the frozen VGG16 trunk,
# standardised with the statistics of other synthetic subjects (as a pretrained network's
# normalisation comes from other data). :class:`~sklearn_corrloss.classifier.CorrLossClassifier`
# is the paper's head alone: a dense layer, ReLU, dropout and one sigmoid per AU.
from sklearn.preprocessing import StandardScaler

from sklearn_corrloss.classifier import CorrLossClassifier
from sklearn_corrloss.report import face_features

reference = make_au_faces(n_subjects=10, n_frames=24, image_size=96, random_state=100)
scaler = StandardScaler().fit(face_features(reference.images, reference.boxes))
F = scaler.transform(face_features(faces.images, faces.boxes)).astype(np.float32)

heads = {}
for rho in (0.0, 0.3):
    heads[rho] = CorrLossClassifier(rho=rho, lr=1e-3, max_epochs=20, random_state=0)
    heads[rho].fit(F[train], Y.iloc[train], groups=subjects[train])
    print(f"rho = {rho}: macro F1 {heads[rho].score(F[test], Y.iloc[test]):.3f}")

au_f1_report(Y.iloc[test], heads[0.3].predict(F[test])).round(3)

# %%
# The correlation matrices of the test labels and of the predicted probabilities, and their
# distance (sum over AU pairs of the absolute difference; lower is better). CorrLoss trains
# the right-hand matrix towards the left-hand one.
from sklearn_corrloss.plotting import plot_correlation_heatmaps

for rho, head in heads.items():
    fig, axes = plt.subplots(1, 2, figsize=(9, 4), layout="constrained")
    plot_correlation_heatmaps(
        Y.iloc[test],
        head.predict_proba(F[test]),
        axes=axes,
        titles=("test labels", f"predictions, rho = {rho}"),
    )

# %%
# Next steps
# ----------
# * :ref:`sphx_glr_auto_examples_plot_rho_search.py`: choose ``rho`` with subject-wise folds.
# * The fitted model is saved without pickle, so loading a file cannot run code::
#
#       from sklearn_corrloss.persistence import load_model, save_model
#
#       save_model(clf, "au_model.zip")
#       clf = load_model("au_model.zip")
#
# * ``corrloss demo --quick`` runs the paper's whole protocol on synthetic faces.
