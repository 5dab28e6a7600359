"""
=====================================
Searching rho with subject-wise folds
=====================================

The weight :math:`\\rho` of the correlation term is the one hyper-parameter CorrLoss adds.
The paper grid-searches it per training set with subject-wise 5-fold cross-validation
(Fig. 3; best values between 0.3 and 0.8) and compares the training and validation loss
curves (Fig. 4). :func:`~sklearn_corrloss.experiments.search_rho` does both through
:class:`~sklearn.model_selection.GridSearchCV` and
:class:`~sklearn.model_selection.GroupKFold`.
"""

# %%
# Features of synthetic faces
# ---------------------------
# To keep the example fast, a frozen feature extractor stands in for the paper's frozen
# VGG16 trunk: HOG descriptors of the face crops
# (:func:`~sklearn_corrloss.report.face_features`, what ``corrloss demo`` uses), standardised
# with the statistics of other synthetic subjects, as a pretrained network's normalisation
# comes from other data. A :class:`~sklearn_corrloss.classifier.CorrLossClassifier` (the
# paper's head: a dense layer, ReLU, dropout, one sigmoid per AU) is trained on them.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.preprocessing import StandardScaler

from sklearn_corrloss.datasets.synthetic import make_au_faces
from sklearn_corrloss.report import face_features

reference = make_au_faces(n_subjects=10, n_frames=24, image_size=96, random_state=100)
scaler = StandardScaler().fit(face_features(reference.images, reference.boxes))

faces = make_au_faces(n_subjects=15, n_frames=32, image_size=96, random_state=0)
X = scaler.transform(face_features(faces.images, faces.boxes)).astype(np.float32)
Y, subjects = faces.labels, faces.subjects
print(X.shape, Y.shape, "AUs:", list(Y.columns))

# %%
# The search
# ----------
# Every (rho, fold) pair is one fit; ``n_jobs`` runs them in parallel. The estimator's own
# validation split (used to keep the epoch with the lowest validation loss) receives the
# training fold's subject IDs, so no subject is on both sides of any split. With
# ``scheduler=`` the fits run on a Dask cluster, and with ``results_dir=`` a rerun after
# a kill fits only what is missing (see the "Scaling out" page).
from sklearn.model_selection import GroupKFold

from sklearn_corrloss.classifier import CorrLossClassifier
from sklearn_corrloss.experiments import search_rho

estimator = CorrLossClassifier(lr=1e-3, max_epochs=20, hidden_units=128)
result = search_rho(
    estimator, X, Y, subjects, rhos=[0.0, 0.3, 0.6], cv=GroupKFold(3), random_state=0
)
result.summary.round(3)

# %%
# ``result.scores`` has one row per fold, ``result.per_au`` the F1 of every AU,
# ``result.curves`` the loss of every epoch. The best mean macro F1:
print("best rho:", result.best_rho)

# %%
# Fig. 3 of the paper: mean macro F1 per rho with the standard deviation over folds.
from sklearn_corrloss.plotting import plot_loss_curves, plot_rho_curve

fig, ax = plt.subplots(figsize=(5, 3.5), layout="constrained")
plot_rho_curve(result.scores, ax=ax)

# %%
# Fig. 4 of the paper: training and validation loss per epoch (mean over folds) for each
# rho. The loss itself changes with rho, since the CorrLoss term replaces part of the BCE,
# so compare the gap between the curves, which measures overfitting, not their levels.
fig, axes = plt.subplots(1, 3, figsize=(10, 3.2), sharey=True, layout="constrained")
plot_loss_curves(result.curves, axes=axes)

# %%
# The same with GridSearchCV
# --------------------------
# ``search_rho`` runs its (rho, fold) fits itself so that each can be stored and reused;
# the search it runs is the same as this ``GridSearchCV``, with metadata routing so that
# the inner validation split sees the subject IDs as well::
#
#     import sklearn
#     from sklearn.model_selection import GridSearchCV
#     from sklearn_corrloss.metrics import macro_f1_scorer
#
#     sklearn.set_config(enable_metadata_routing=True)
#     estimator = CorrLossClassifier(lr=1e-3, max_epochs=20).set_fit_request(groups=True)
#     search = GridSearchCV(estimator, {"rho": [0.0, 0.3, 0.6]}, cv=GroupKFold(3),
#                           scoring=macro_f1_scorer)
#     search.fit(X, Y, groups=subjects)
#
# On the tiny data above, differences between rho values are often within the spread
# over folds; the paper's 5 folds on tens of thousands of frames are what tell them
# apart. ``corrloss search`` runs the same search from the command line.
