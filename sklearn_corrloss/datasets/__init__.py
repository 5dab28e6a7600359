"""Data sets: synthetic AU faces and loaders for BP4D, DISFA, CK+, Aff-Wild2 and manifest CSVs."""

from ._base import AUDataset, DatasetLayoutError
from .affwild2 import AFFWILD2_AUS, load_affwild2
from .au_names import align_datasets, normalize_au_name, shared_aus
from .bp4d import BP4D_TASKS, load_bp4d
from .ckplus import CKPLUS_EMOTIONS, load_ckplus
from .disfa import DISFA_AUS, extract_disfa_frames, load_disfa
from .frames import extract_frames
from .manifest import LOADERS, load_dataset, load_manifest, write_manifest
from .synthetic import ALL_AUS, DEFAULT_AUS, DOMAINS, make_au_faces, make_au_labels

__all__ = [
    "AFFWILD2_AUS",
    "ALL_AUS",
    "BP4D_TASKS",
    "CKPLUS_EMOTIONS",
    "DEFAULT_AUS",
    "DISFA_AUS",
    "DOMAINS",
    "LOADERS",
    "AUDataset",
    "DatasetLayoutError",
    "align_datasets",
    "extract_disfa_frames",
    "extract_frames",
    "load_affwild2",
    "load_bp4d",
    "load_ckplus",
    "load_dataset",
    "load_disfa",
    "load_manifest",
    "make_au_faces",
    "make_au_labels",
    "normalize_au_name",
    "shared_aus",
    "write_manifest",
]
