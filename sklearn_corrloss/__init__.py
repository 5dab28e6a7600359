"""sklearn-corrloss: multi-label Action Unit detection with CorrLoss, for scikit-learn.

Implements Rieger, Pahl, Finzel, Schmid, "CorrLoss: Integrating Co-Occurrence Domain
Knowledge for Affect Recognition" (ICPR 2022, arXiv:2210.17233).
"""

from .balancing import MultiLabelBalancer
from .classifier import CorrLossAUClassifier, CorrLossClassifier, GroupValidSplit
from .datasets import make_au_faces
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
from .selection import select_correlated_labels

__version__ = "0.1.0"

__all__ = [
    "CorrBCELoss",
    "CorrLoss",
    "CorrLossAUClassifier",
    "CorrLossClassifier",
    "FaceCropTransformer",
    "GroupValidSplit",
    "MultiLabelBalancer",
    "NoFaceError",
    "__version__",
    "au_f1_report",
    "corr_loss",
    "correlation_distance",
    "imbalance_measures",
    "irlbl",
    "label_correlation",
    "macro_f1",
    "macro_f1_scorer",
    "make_au_faces",
    "pearson_corr_matrix",
    "scumble",
    "select_correlated_labels",
]
