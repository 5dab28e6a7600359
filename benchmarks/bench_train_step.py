"""Cost of the CorrLoss term in a VGG16 training step: rho=0.5 against rho=0 on CPU.

Usage: python benchmarks/bench_train_step.py [--batch-size 16] [--image-size 224] [--repeats 7]
       [--labels 12] [--freeze paper] [--device cpu]
Writes benchmarks/results/bench_train_step.json.

Two CorrLossAUClassifier(backbone="vgg16", weights=None) nets with identical weights, one
with rho=0 and one with rho=0.5, each run full training steps (forward, loss, backward,
gradient clipping, Adam update) on the same batch of 224x224 images. The two settings
alternate (ABBA order) so that machine noise hits both alike; the result is the ratio of
the median step times. As a noise-free cross-check, the loss alone (forward + backward on
the logits) is also timed for both settings, and its difference is expressed as a share
of the median step.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from sklearn_corrloss.classifier import CorrLossAUClassifier
from sklearn_corrloss.losses import CorrBCELoss


def make_batch(batch_size, image_size, n_labels, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(batch_size, image_size, image_size, 3), dtype=np.uint8)
    Y = (rng.random((batch_size, n_labels)) < 0.4).astype(np.float32)
    Y[0], Y[1] = 1, 0  # every label has both values
    return images, Y


def make_net(rho, images, Y, args):
    net = CorrLossAUClassifier(
        backbone="vgg16",
        weights=None,
        freeze=args.freeze,
        rho=rho,
        image_size=args.image_size,
        batch_size=args.batch_size,
        max_epochs=0,  # fit only builds the network, optimizer and criterion
        train_split=None,
        device=args.device,
        random_state=0,
    )
    return net.fit(images, Y)


def time_step(net, batch):
    start = time.perf_counter()
    net.train_step(batch)
    if net.device != "cpu" and torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def time_loss(rho, batch_size, n_labels, repeats):
    criterion = CorrBCELoss(rho=rho)
    logits = torch.randn(batch_size, n_labels)
    y = (torch.rand(batch_size, n_labels) < 0.4).float()
    times = []
    for _ in range(repeats):
        x = logits.clone().requires_grad_(True)
        start = time.perf_counter()
        criterion(x, y).backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--labels", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=7, help="timed steps per setting")
    parser.add_argument("--freeze", default="paper")
    parser.add_argument("--rho", type=float, default=0.5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--output", default=str(Path(__file__).parent / "results" / "bench_train_step.json")
    )
    args = parser.parse_args(argv)

    images, Y = make_batch(args.batch_size, args.image_size, args.labels)
    batch = (torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(Y))
    nets = {0.0: make_net(0.0, images, Y, args), args.rho: make_net(args.rho, images, Y, args)}
    for net in nets.values():  # warm-up
        time_step(net, batch)
    times = {rho: [] for rho in nets}
    for i in range(args.repeats):
        order = list(nets) if i % 2 == 0 else list(nets)[::-1]
        for rho in order:
            times[rho].append(time_step(nets[rho], batch))
        print(f"step {i + 1}: " + ", ".join(f"rho={r}: {times[r][-1]:.3f} s" for r in nets))
    median = {rho: statistics.median(t) for rho, t in times.items()}
    ratio = median[args.rho] / median[0.0]
    paired = statistics.median(b / a for a, b in zip(times[0.0], times[args.rho]))
    loss_times = {rho: time_loss(rho, args.batch_size, args.labels, repeats=2000) for rho in nets}
    loss_extra = loss_times[args.rho] - loss_times[0.0]
    result = {
        "median_step_seconds": {str(r): m for r, m in median.items()},
        "step_seconds": {str(r): t for r, t in times.items()},
        "ratio_of_medians": ratio,
        "median_of_paired_ratios": paired,
        "loss_only_ms": {str(r): t * 1e3 for r, t in loss_times.items()},
        "corrloss_share_of_step_isolated": loss_extra / median[0.0],
        "within_3_percent": ratio <= 1.03,
    }
    print(
        f"VGG16 step (batch {args.batch_size}, {args.image_size}px, freeze={args.freeze}): "
        f"median rho=0 {median[0.0]:.3f} s, rho={args.rho} {median[args.rho]:.3f} s, "
        f"ratio {ratio:.4f} (paired {paired:.4f}); loss alone +{loss_extra * 1e3:.3f} ms "
        f"= {100 * result['corrloss_share_of_step_isolated']:.3f} % of a step"
    )
    meta = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "load_average_1_5_15_min": os.getloadavg(),  # other processes add timing noise
        "device": args.device,
        "batch_size": args.batch_size,
        "image_size": args.image_size,
        "labels": args.labels,
        "freeze": args.freeze,
        "repeats": args.repeats,
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"benchmark": "bench_train_step", "meta": meta, "result": result}, indent=2)
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
