"""Draw docs/images/synthetic_faces.png: generated faces of each domain with their AU labels.

Usage: python docs/make_synthetic_grid.py [--image-size 128] [--seed 0] [--output PATH]

One row per domain (lab, lab_gray, wild), one column per BP4D task; each panel shows the
apex frame of that task's sequence (a different subject per column) with the AUs coded
present in it.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from sklearn_corrloss.datasets.synthetic import BP4D_TASKS, DOMAINS, make_au_faces


def apex_frames(data):
    """Per task, the frame with the largest total intensity, taking subjects in turn."""
    subjects = np.unique(data.subjects)
    picks = []
    for k, task in enumerate(BP4D_TASKS):
        rows = np.nonzero((data.tasks == task) & (data.subjects == subjects[k % len(subjects)]))[0]
        picks.append(rows[np.argmax(data.intensities.iloc[rows].sum(axis=1).to_numpy())])
    return picks


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--output", default=str(Path(__file__).parent / "images" / "synthetic_faces.png")
    )
    args = parser.parse_args(argv)
    n_tasks = len(BP4D_TASKS)
    fig, axes = plt.subplots(len(DOMAINS), n_tasks, figsize=(1.9 * n_tasks, 2.55 * len(DOMAINS)))
    for row, domain in enumerate(DOMAINS):
        data = make_au_faces(
            n_subjects=n_tasks,
            n_frames=48,
            domain=domain,
            image_size=args.image_size,
            random_state=args.seed,
        )
        for col, index in enumerate(apex_frames(data)):
            ax = axes[row, col]
            ax.imshow(data.images[index])
            active = [
                au[2:].lstrip("0") for au in data.labels.columns if data.labels.iloc[index][au]
            ]
            task = data.tasks[index]
            ax.set_title(f"{task} {BP4D_TASKS[task]}", fontsize=8)
            ax.set_xlabel("AU " + " ".join(active) if active else "no AU", fontsize=7.5)
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(domain, fontsize=10)
    fig.suptitle(
        "make_au_faces: apex frames of the eight BP4D tasks, labels coded present",
        fontsize=10,
    )
    fig.tight_layout()
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    # a 256-colour palette keeps the file small enough for the repository
    Image.open(buffer).convert("RGB").quantize(colors=256).save(out, optimize=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
