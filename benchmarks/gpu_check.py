"""GPU check: VGG16 training and prediction speed, fp32 against mixed precision, CPU agreement.

Usage: python benchmarks/gpu_check.py [--device cuda] [--batch-size 64] [--image-size 224]
       [--batches 5] [--precisions fp32 bf16 fp16] [--n-compare 32]
       python benchmarks/gpu_check.py --device cpu   # smoke test with small sizes
Writes benchmarks/results/gpu_check.json (gpu_check_cpu.json with --device cpu).

For each precision, ``CorrLossAUClassifier(backbone="vgg16", weights=None, freeze="paper",
precision=...)`` on ``--device`` trains one untimed epoch (warm-up: cuDNN autotuning,
allocator) and one timed epoch on ``batches x batch_size`` images without the feature cache
(every batch goes through the whole network), then predicts them twice (the second timed).
Reported: images per second of training and of prediction per precision, and the speed-up
of mixed precision over fp32; then, once features are cached, images per second of a
training epoch on the cached features. Finally the fp32 network's weights are copied into
a CPU estimator and both predict the same images: the largest difference of the
probabilities must stay within ``--tolerance`` (TF32 convolutions on Ampere and later GPUs
round to about 1e-3); mixed-precision predictions are compared to the CPU's as well.

On a CUDA machine this takes well under 5 minutes. ``--device cpu`` runs the same code
path on small settings (32 x 32 images, batches of 4) as a smoke test.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from sklearn_corrloss.classifier import CorrLossAUClassifier
from sklearn_corrloss.feature_cache import clear_feature_cache

CPU_SMOKE = {"batch_size": 4, "image_size": 32, "batches": 2, "n_compare": 4}
GPU_DEFAULTS = {"batch_size": 64, "image_size": 224, "batches": 5, "n_compare": 32}


def synchronize(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timed(device, function):
    synchronize(device)
    start = time.perf_counter()
    result = function()
    synchronize(device)
    return time.perf_counter() - start, result


def make_estimator(args, device, precision, **params):
    settings = dict(
        backbone=args.backbone,
        weights=None,
        freeze="paper",
        image_size=args.image_size,
        batch_size=args.batch_size,
        max_epochs=1,
        train_split=None,
        precision=precision,
        device=device,
        random_state=0,
        feature_cache=False,
    )
    return CorrLossAUClassifier(**{**settings, **params})


def measure(args, images, Y, precision) -> tuple[dict, CorrLossAUClassifier]:
    n = len(images)
    clf = make_estimator(args, args.device, precision)
    clf.fit(images, Y)  # warm-up epoch
    train_s, _ = timed(args.device, lambda: clf.partial_fit(images, Y))
    clf.predict_proba(images)  # warm-up
    predict_s, proba = timed(args.device, lambda: clf.predict_proba(images))
    cached = make_estimator(args, args.device, precision, feature_cache=True)
    clear_feature_cache()
    cached.fit(images, Y)  # computes and stores the trunk features
    cached_s, _ = timed(args.device, lambda: cached.partial_fit(images, Y))
    row = {
        "precision": precision,
        "train_images_per_s": n / train_s,
        "predict_images_per_s": n / predict_s,
        "cached_train_images_per_s": n / cached_s,
        "finite": bool(np.isfinite(proba).all()),
    }
    print(
        f"{precision}: train {row['train_images_per_s']:.1f} img/s, predict "
        f"{row['predict_images_per_s']:.1f} img/s, train on cached features "
        f"{row['cached_train_images_per_s']:.1f} img/s"
    )
    return row, clf


def compare_with_cpu(args, clf, images, Y) -> float:
    """Largest |p_device - p_cpu| with the device network's weights copied to a CPU net."""
    cpu = make_estimator(args, "cpu", "fp32", max_epochs=0).fit(images[:2], Y[:2])
    state = {k: v.detach().to("cpu").contiguous() for k, v in clf.module_.state_dict().items()}
    cpu.module_.load_state_dict(state)
    subset = images[: args.n_compare]
    return float(np.max(np.abs(clf.predict_proba(subset) - cpu.predict_proba(subset))))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--backbone", default="vgg16")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--batches", type=int, default=None, help="batches per epoch")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16", "fp16"])
    parser.add_argument("--n-compare", type=int, default=None)
    parser.add_argument("--labels", type=int, default=5)
    parser.add_argument("--tolerance", type=float, default=1e-2, help="fp32 CPU/GPU agreement")
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    device_type = torch.device(args.device).type
    if device_type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            "No CUDA device is available here; run on a GPU machine, or use --device cpu for "
            "a smoke test."
        )
    defaults = CPU_SMOKE if device_type == "cpu" else GPU_DEFAULTS
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if device_type == "cuda":
        torch.backends.cudnn.benchmark = True
    results_dir = Path(__file__).parent / "results"
    suffix = "" if device_type == "cuda" else f"_{device_type}"
    output = Path(args.output or results_dir / f"gpu_check{suffix}.json")

    rng = np.random.default_rng(0)
    n = args.batch_size * args.batches
    size = args.image_size
    images = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    Y = (rng.random((n, args.labels)) < 0.4).astype(np.float32)
    Y[0], Y[1] = 1, 0  # every label has both values

    rows, models = [], {}
    for precision in args.precisions:
        row, models[precision] = measure(args, images, Y, precision)
        rows.append(row)
    base = next((r for r in rows if r["precision"] == "fp32"), None)
    if base is not None:
        for row in rows:
            row["train_speedup_vs_fp32"] = row["train_images_per_s"] / base["train_images_per_s"]
            row["predict_speedup_vs_fp32"] = (
                row["predict_images_per_s"] / base["predict_images_per_s"]
            )
    agreement = {p: compare_with_cpu(args, clf, images, Y) for p, clf in models.items()}
    for precision, diff in agreement.items():
        print(f"max |p_{args.device} - p_cpu| with {precision}: {diff:.2e}")
    fp32_ok = agreement.get("fp32", 0.0) <= args.tolerance
    result = {
        "rows": rows,
        "max_abs_probability_difference_vs_cpu": agreement,
        "fp32_agrees_with_cpu": fp32_ok,
        "all_finite": all(r["finite"] for r in rows),
    }
    meta = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": args.device,
        "device_name": torch.cuda.get_device_name()
        if device_type == "cuda"
        else platform.processor(),
        "backbone": args.backbone,
        "batch_size": args.batch_size,
        "image_size": args.image_size,
        "images_per_epoch": n,
        "tolerance": args.tolerance,
        "cpu_threads": torch.get_num_threads(),
    }
    if device_type == "cuda":
        meta["max_memory_allocated_bytes"] = torch.cuda.max_memory_allocated()
        meta["tf32_convolutions"] = torch.backends.cudnn.allow_tf32
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(
        json.dumps({"benchmark": "gpu_check", "meta": meta, "result": result}, indent=2)
    )
    print(f"wrote {output}")
    if not (fp32_ok and result["all_finite"]):
        raise SystemExit("CPU and device predictions disagree or are not finite.")


if __name__ == "__main__":
    main()
