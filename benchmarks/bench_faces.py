"""Time FaceCropTransformer.transform against the raw res10 forward pass, and n_jobs=2 vs 1.

Usage: python benchmarks/bench_faces.py [--n-images 48] [--block 16] [--repeats 5]
       [--batch-size 4] [--cv-threads 0] [--no-lfw] [--output benchmarks/results/bench_faces.json]

Inputs are 640x480 RGB frames: a scikit-image photograph as background with the astronaut
pasted at a random place and scale (one face per frame). The baseline is the detector alone
on the same frames with the same network: ``net.setInput(blob); net.forward()`` on blobs
prepared beforehand (strict) and with the blob made from the BGR frame (as a user would).
The frames are timed in blocks of ``--block`` images, every configuration back to back on
each block, ``--repeats`` times; overheads and speed-ups are medians of the paired ratios,
so load from other processes (which comes and goes) hits both sides of each ratio alike.
Rates use each block's best time. ``--lfw`` (default) also reports the detection rate on
all 200 images of skimage's LFW subset (100 faces, 100 non-faces) as the tests prepare them.
Writes benchmarks/results/bench_faces.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import cv2
import numpy as np
import skimage
import skimage.data

from sklearn_corrloss.face_detectors import Res10Detector, resolve_detector
from sklearn_corrloss.faces import FaceCropTransformer


def make_frames(n_images: int, seed: int = 0) -> list[np.ndarray]:
    """640x480 RGB frames, each with the astronaut's face somewhere on a photo background."""
    rng = np.random.default_rng(seed)
    backgrounds = [skimage.data.coffee(), skimage.data.rocket(), skimage.data.hubble_deep_field()]
    astronaut = skimage.data.astronaut()[:300, 80:380]  # head and shoulders, 300 x 300
    frames = []
    for i in range(n_images):
        frame = cv2.resize(backgrounds[i % len(backgrounds)], (640, 480))
        side = int(rng.integers(120, 300))
        x, y = int(rng.integers(0, 640 - side)), int(rng.integers(0, 480 - side))
        frame[y : y + side, x : x + side] = cv2.resize(astronaut, (side, side))
        frames.append(frame)
    return frames


def upscaled_lfw() -> tuple[np.ndarray, int]:
    """The LFW subset as tests/test_faces.py prepares it: 120 px plus 20 px replicated border."""
    lfw = np.load(Path(skimage.data.__file__).parent / "lfw_subset.npy")
    big = [
        cv2.copyMakeBorder(
            cv2.resize(image.astype(np.float32), (120, 120), interpolation=cv2.INTER_CUBIC),
            *(20, 20, 20, 20),
            cv2.BORDER_REPLICATE,
        )
        for image in lfw
    ]
    return np.stack(big).clip(0, 1), 100


def time_blocks(functions: dict, blocks: list, repeats: int) -> tuple[dict, dict]:
    """Wall and CPU seconds (all threads) of ``functions[name](block)``, indexed
    ``[name][repeat][block]``. The functions run back to back on each block, so their
    ratios compare like with like even when other processes load the machine."""
    wall = {name: np.zeros((repeats, len(blocks))) for name in functions}
    cpu = {name: np.zeros((repeats, len(blocks))) for name in functions}
    for r in range(repeats):
        for b, block in enumerate(blocks):
            for name, function in functions.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                function(block)
                wall[name][r, b] = time.perf_counter() - start
                cpu[name][r, b] = time.process_time() - start_cpu
    return wall, cpu


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=48)
    parser.add_argument("--block", type=int, default=16, help="images per timed call")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=4, help="transform's batch_size")
    parser.add_argument(
        "--cv-threads", type=int, default=0, help="cv2.setNumThreads (0: OpenCV's default)"
    )
    parser.add_argument("--lfw", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--output", default=str(Path(__file__).parent / "results" / "bench_faces.json")
    )
    args = parser.parse_args(argv)
    if args.cv_threads:
        cv2.setNumThreads(args.cv_threads)

    frames = make_frames(args.n_images)
    spec = resolve_detector("res10")
    raw = Res10Detector(*spec.files)
    blobs = [
        cv2.dnn.blobFromImage(
            cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), 1.0, raw.input_size, raw.mean
        )
        for frame in frames
    ]
    # A block: (blobs, BGR frames, RGB frames) of the same images.
    blocks = [
        (
            blobs[i : i + args.block],
            [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in frames[i : i + args.block]],
            frames[i : i + args.block],
        )
        for i in range(0, args.n_images, args.block)
    ]

    def forward_only(block):
        for blob in block[0]:
            raw.net.setInput(blob)
            raw.net.forward()

    def blob_and_forward(block):
        for image in block[1]:
            raw.forward([image])

    def cropper(n_jobs):
        transformer = FaceCropTransformer(batch_size=args.batch_size, n_jobs=n_jobs)
        return lambda block: transformer.transform(block[2])

    functions = {
        "forward_only": forward_only,
        "blob_and_forward": blob_and_forward,
        "transform_n_jobs_1": cropper(1),
        "transform_n_jobs_2": cropper(2),
    }
    for function in functions.values():  # warm up: networks, first allocations
        function(blocks[0])
    wall, cpu = time_blocks(functions, blocks, args.repeats)
    n = args.n_images

    def overhead(times, name, baseline):
        return float(np.median(times[name] / times[baseline]) - 1)

    best = {name: times.min(axis=0).sum() for name, times in wall.items()}
    found = [len(b) for b in FaceCropTransformer().detect(frames)]
    result = {
        "n_images": n,
        "image_size": [640, 480],
        "block": args.block,
        "repeats": args.repeats,
        "batch_size": args.batch_size,
        "images_per_s": {name: n / seconds for name, seconds in best.items()},
        "cpu_ms_per_image": {
            name: 1e3 * times.min(axis=0).sum() / n for name, times in cpu.items()
        },
        "overhead_vs_forward_only": overhead(wall, "transform_n_jobs_1", "forward_only"),
        "overhead_vs_blob_and_forward": overhead(wall, "transform_n_jobs_1", "blob_and_forward"),
        "cpu_overhead_vs_forward_only": overhead(cpu, "transform_n_jobs_1", "forward_only"),
        "speedup_n_jobs_2": float(
            np.median(wall["transform_n_jobs_1"] / wall["transform_n_jobs_2"])
        ),
        "frames_with_one_face": sum(k == 1 for k in found),
    }
    for name, rate in result["images_per_s"].items():
        cpu_ms = result["cpu_ms_per_image"][name]
        print(f"{name:>20}: {rate:6.1f} images/s, {cpu_ms:6.1f} ms CPU per image")
    print(
        "transform overhead over the raw forward pass (median of paired blocks): "
        f"{result['overhead_vs_forward_only']:.1%} (over blob + forward: "
        f"{result['overhead_vs_blob_and_forward']:.1%}; in CPU time: "
        f"{result['cpu_overhead_vs_forward_only']:.1%}); "
        f"n_jobs=2 speed-up {result['speedup_n_jobs_2']:.2f}x; "
        f"{result['frames_with_one_face']}/{n} frames with exactly one face"
    )
    if args.lfw:
        images, n_faces = upscaled_lfw()
        hits = np.array([len(b) > 0 for b in FaceCropTransformer().detect(images)])
        result["lfw_detection_rate"] = {
            "faces": float(hits[:n_faces].mean()),
            "non_faces": float(hits[n_faces:].mean()),
        }
        print(
            f"LFW subset detection rate: faces {hits[:n_faces].mean():.2f}, "
            f"non-faces {hits[n_faces:].mean():.2f}"
        )
    meta = {
        "opencv": cv2.__version__,
        "python": platform.python_version(),
        "cv2_threads": cv2.getNumThreads(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "detector": spec.describe(),
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "bench_faces", "meta": meta, **result}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
