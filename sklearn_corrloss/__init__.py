"""sklearn-corrloss: multi-label Action Unit detection with CorrLoss, for scikit-learn.

Implements Rieger, Pahl, Finzel, Schmid, "CorrLoss: Integrating Co-Occurrence Domain
Knowledge for Affect Recognition" (ICPR 2022, arXiv:2210.17233).
"""

from .balancing import MultiLabelBalancer
from .classifier import CorrLossAUClassifier, CorrLossClassifier, GroupValidSplit
from .datasets import make_au_faces
from .experiments import (
    calibrate,
    cross_dataset,
    per_au_f1_table,
    search_rho,
    within_dataset_cv,
)
from .faces import FaceCropTransformer, NoFaceError
from .imbalance import imbalance_measures, irlbl, scumble
from .losses import CorrBCELoss, CorrLoss, corr_loss, pearson_corr_matrix
from .metrics import (
    au_f1_report,
    correlation_distance,
    label_correlation,
    macro_f1,
    macro_f1_scorer,
)
from .persistence import ModelFileError, load_model, save_model
from .plotting import plot_correlation_heatmaps, plot_loss_curves, plot_rho_curve
from .selection import select_correlated_labels

__version__ = "0.1.0"

__all__ = [
    "CorrBCELoss",
    "CorrLoss",
    "CorrLossAUClassifier",
    "CorrLossClassifier",
    "FaceCropTransformer",
    "GroupValidSplit",
    "ModelFileError",
    "MultiLabelBalancer",
    "NoFaceError",
    "__version__",
    "au_f1_report",
    "calibrate",
    "corr_loss",
    "correlation_distance",
    "cross_dataset",
    "imbalance_measures",
    "irlbl",
    "label_correlation",
    "load_model",
    "macro_f1",
    "macro_f1_scorer",
    "make_au_faces",
    "pearson_corr_matrix",
    "per_au_f1_table",
    "plot_correlation_heatmaps",
    "plot_loss_curves",
    "plot_rho_curve",
    "save_model",
    "scumble",
    "search_rho",
    "select_correlated_labels",
    "within_dataset_cv",
]
