"""Convert musicnn's TensorFlow 1 checkpoints to mer's PyTorch port, and prove they match.

Run once, in a throw-away environment that has TensorFlow (see tools/README.md)::

    python tools/convert_musicnn.py --wheel musicnn-0.1.0-py3-none-any.whl \
        --clips ../shared/data/4q-dev/audio --n-clips 20

It unpacks the ``musicnn`` wheel (ISC licence, Jordi Pons) into a temporary folder, reads
the MSD_musicnn and MTT_musicnn checkpoints, writes ``mer/models/weights/musicnn_{msd,mtt}.safetensors``
(state dicts of ``Musicnn.backbone``), then runs the original TF graph (the package's own
``models.define_model``, in inference mode) and the PyTorch port on the same log-mel patches
of real clips (3 s, 187 frames, as the original tags them) and prints the largest absolute
differences of the tag probabilities and of every embedding the original exposes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

N_FRAMES = 187  # 3 s patches, as musicnn was trained and tags
CONV2D = {"trunk.timbral.0": "conv2d", "trunk.timbral.1": "conv2d_1", "trunk.temporal.0": "conv2d_2",
          "trunk.temporal.1": "conv2d_3", "trunk.temporal.2": "conv2d_4"}
CONV1D = {"trunk.mid.0": "conv2d_5", "trunk.mid.1": "conv2d_6", "trunk.mid.2": "conv2d_7"}
DENSE = {"backend.dense": "dense", "backend.tags": "dense_1"}
BN = {"trunk.input_bn": 0, "trunk.timbral_bn.0": 1, "trunk.timbral_bn.1": 2, "trunk.temporal_bn.0": 3,
      "trunk.temporal_bn.1": 4, "trunk.temporal_bn.2": 5, "trunk.mid_bn.0": 6, "trunk.mid_bn.1": 7,
      "trunk.mid_bn.2": 8, "backend.pool_bn": 9, "backend.dense_bn": 10}


def convert(reader) -> dict[str, np.ndarray]:  # noqa: ANN001  (a TF CheckpointReader)
    """TF variable arrays -> the PyTorch state dict of ``Musicnn.backbone``."""
    get = reader.get_tensor
    state: dict[str, np.ndarray] = {}
    for name, tf_name in CONV2D.items():
        state[f"{name}.weight"] = get(f"{tf_name}/kernel").transpose(3, 2, 0, 1)  # (kh, kw, in, out) -> (out, in, kh, kw)
        state[f"{name}.bias"] = get(f"{tf_name}/bias")
    for name, tf_name in CONV1D.items():
        state[f"{name}.weight"] = get(f"{tf_name}/kernel")[:, :, 0, :].transpose(2, 1, 0)  # -> (out, in, k)
        state[f"{name}.bias"] = get(f"{tf_name}/bias")
    for name, tf_name in DENSE.items():
        state[f"{name}.weight"] = get(f"{tf_name}/kernel").T
        state[f"{name}.bias"] = get(f"{tf_name}/bias")
    for name, i in BN.items():
        tf_name = "batch_normalization" + (f"_{i}" if i else "")
        state[f"{name}.weight"] = get(f"{tf_name}/gamma")
        state[f"{name}.bias"] = get(f"{tf_name}/beta")
        state[f"{name}.running_mean"] = get(f"{tf_name}/moving_mean")
        state[f"{name}.running_var"] = get(f"{tf_name}/moving_variance")
        state[f"{name}.num_batches_tracked"] = np.array(0, dtype=np.int64)
    return {k: np.ascontiguousarray(v) for k, v in state.items()}


def patches(clips: list[Path]) -> np.ndarray:
    """Non-overlapping 187-frame log-mel patches ``(N, 187, 96)`` of ``clips`` (mer's front-end)."""
    from mer.features import features_from_file

    out = []
    for clip in clips:
        x = features_from_file(clip)[0].T  # (T, 96)
        out += [x[s:s + N_FRAMES] for s in range(0, x.shape[0] - N_FRAMES + 1, N_FRAMES)]
    return np.stack(out).astype(np.float32)


def synthetic_patch() -> np.ndarray:
    """One 187-frame patch of mer's synthetic clip: the input of the offline reference test."""
    from mer.features import extract
    from mer.synth import clip

    return extract(clip(0.6, 0.6, seconds=3.2, sr=16000, seed=0))[0].T[None, :N_FRAMES].astype(np.float32)


def run_tensorflow(pkg_parent: Path, name: str, x: np.ndarray) -> dict[str, np.ndarray]:
    """The original graph on ``x``: tag probabilities and embeddings, batch by batch."""
    import tensorflow as tf

    tf.compat.v1.disable_eager_execution()
    sys.path.insert(0, str(pkg_parent))
    from musicnn import models  # the package's own graph definition

    tf.compat.v1.reset_default_graph()
    xin = tf.compat.v1.placeholder(tf.float32, [None, N_FRAMES, 96])
    training = tf.compat.v1.placeholder(tf.bool)
    logits, _, _, _, _, _, mean_pool, max_pool, pen = models.define_model(xin, training, name, 50)
    fetch = {"tags": tf.nn.sigmoid(logits), "mean_pool": mean_pool, "max_pool": max_pool, "penultimate": pen}
    with tf.compat.v1.Session() as sess:
        tf.compat.v1.train.Saver().restore(sess, str(pkg_parent / "musicnn" / name) + "/")
        parts = [sess.run(fetch, {xin: x[i:i + 64], training: False}) for i in range(0, len(x), 64)]
    return {k: np.concatenate([p[k] for p in parts]) for k in fetch}


def run_torch(state: dict[str, np.ndarray], x: np.ndarray) -> dict[str, np.ndarray]:
    import torch
    from torch import nn

    from mer.models.musicnn import MusicnnBackend, MusicnnTrunk

    net = nn.ModuleDict({"trunk": MusicnnTrunk(), "backend": MusicnnBackend()})
    net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    net.eval()
    with torch.inference_mode():
        h = net["trunk"](torch.from_numpy(x).transpose(1, 2).unsqueeze(1))  # (N, 753, 187)
        mx, mean = h.amax(dim=-1), h.mean(dim=-1)
        pen, logits = net["backend"](torch.stack([mx, mean], dim=-1).flatten(1))
    return {"tags": torch.sigmoid(logits).numpy(), "mean_pool": mean.numpy(), "max_pool": mx.numpy(),
            "penultimate": pen.numpy()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel", required=True, help="musicnn-0.1.0-py3-none-any.whl (pip download --no-deps musicnn)")
    ap.add_argument("--clips", required=True, help="folder of real audio for the parity check")
    ap.add_argument("--n-clips", type=int, default=20)
    ap.add_argument("--out", default=str(ROOT / "mer" / "models" / "weights"))
    ap.add_argument("--reference", default=str(ROOT / "tests" / "data" / "musicnn_reference.json"),
                    help="where to write the original's outputs on a synthetic patch (checked by the tests)")
    args = ap.parse_args()

    import tensorflow as tf
    from safetensors.numpy import save_file

    from mer.io import write_json_atomic

    from mer.audio import find_audio

    found = find_audio([args.clips])
    clips = found[:: max(1, len(found) // args.n_clips)][: args.n_clips]  # spread over the folder
    x = patches(clips)
    print(f"parity input: {len(x)} patches of 3 s from {len(clips)} clips in {args.clips}")
    with tempfile.TemporaryDirectory() as tmp:
        zipfile.ZipFile(args.wheel).extractall(tmp)
        pkg_parent = Path(tmp)
        reference: dict[str, dict[str, list[float]]] = {}
        print("| weights | tags | penultimate | mean_pool | max_pool | largest value |")
        print("|---|---|---|---|---|---|")
        for source in ("msd", "mtt"):
            name = f"{source.upper()}_musicnn"
            state = convert(tf.compat.v1.train.NewCheckpointReader(str(pkg_parent / "musicnn" / name) + "/"))
            out = Path(args.out) / f"musicnn_{source}.safetensors"
            out.parent.mkdir(parents=True, exist_ok=True)
            save_file(state, str(out), metadata={"source": f"musicnn 0.1.0 {name} (Pons & Serra 2019), ISC licence"})
            ref, port = run_tensorflow(pkg_parent, name, x), run_torch(state, x)
            diffs = [float(np.abs(ref[k] - port[k]).max()) for k in ("tags", "penultimate", "mean_pool", "max_pool")]
            big = max(float(np.abs(ref[k]).max()) for k in ref)
            print(f"| {name} | " + " | ".join(f"{d:.1e}" for d in diffs) + f" | {big:.1f} |")
            print(f"   wrote {out} ({out.stat().st_size / 1e6:.1f} MB)", file=sys.stderr)
            syn = run_tensorflow(pkg_parent, name, synthetic_patch())
            reference[source] = {k: syn[k][0].round(6).tolist() for k in ("tags", "penultimate")}
        write_json_atomic(args.reference, {"input": "mer.synth.clip(0.6, 0.6, seconds=3.2, sr=16000, seed=0), "
                                           "first 187 log-mel frames", **reference})


if __name__ == "__main__":
    main()
