"""Data sets: synthetic AU faces and loaders for BP4D, DISFA, CK+, Aff-Wild2 and manifest CSVs."""

from ._base import AUDataset, DatasetLayoutError
from .affwild2 import AFFWILD2_AUS, load_affwild2
from .au_names import align_datasets, normalize_au_name, shared_aus
from .bp4d import BP4D_TASKS, load_bp4d
from .ckplus import CKPLUS_EMOTIONS, load_ckplus
from .disfa import DISFA_AUS, extract_disfa_frames, load_disfa
from .frames import extract_frames
from .manifest import LOADERS, load_dataset, load_manifest, write_manifest

__all__ = [
    "AFFWILD2_AUS",
    "BP4D_TASKS",
    "CKPLUS_EMOTIONS",
    "DISFA_AUS",
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
    "normalize_au_name",
    "shared_aus",
    "write_manifest",
]
