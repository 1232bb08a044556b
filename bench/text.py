"""all-MiniLM-L6-v2 (a 6-layer BERT sentence encoder) on this machine's adapter: wgnn FP32 and FP16
against ONNX Runtime CPU and, where its environment exists (``bench/setup_peers.sh``), ONNX
Runtime's WebGPU provider, on the same ONNX file (``wgnn.zoo.fetch("all_minilm_l6_v2")``) and the
same tokens.

Shapes: a batch of 1 sentence of 128 tokens (the first 128 of a real paragraph) and a batch of 8
sentences padded to their longest. Each column's runs are the median of ``--runs`` after a warm-up;
wgnn's columns and ONNX Runtime CPU's run interleaved in this process, the WebGPU peer in its own
(``wgnn/peer_runner.py``). Also printed: wgnn's sentence embeddings against ONNX Runtime CPU's.

``--synthetic``: the same network with seeded random weights (``wgnn.bert.bert_onnx`` with
MiniLM's configuration) on random tokens of the same shapes, for a machine that cannot fetch the
weights (a lent GPU reaches no registry); its times are the real model's, its outputs are not.

    python bench/text.py [--runs N] [--json FILE] [--synthetic]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import wgnn
from wgnn import bert, zoo
from wgnn.bench import PEER_SCRIPT, peer_python

sys.path.insert(0, str(Path(__file__).parent))
from int8 import interleaved_ms  # noqa: E402  (bench/int8.py: the runs of each column interleaved)

PARAGRAPH = (
    "The WebGPU API exposes the graphics processing unit of a computer to programs that need more than "
    "drawing: physics simulations, image processing and the inference of neural networks. A network runs "
    "as a sequence of compute shaders, each reading tensors from storage buffers and writing its result "
    "to another buffer, so that the whole model can be recorded once and submitted to the device queue in "
    "one go. Compared with the older approach, which stored tensors in textures and computed them with "
    "fragment shaders drawing full-screen rectangles, compute shaders can share data between the threads "
    "of a workgroup, read and write any element of a buffer, and choose how the work is split, and these "
    "freedoms are what make matrix products, reductions and attention layers fast on a real graphics card.")
SENTENCES = ["A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby.",
             "A man is riding a horse.", "A woman is playing violin.", "Two men pushed carts through the woods.",
             "A man is riding a white horse on an enclosed ground.", "A monkey is playing drums."]


def peer_ms(path: Path, feeds: dict, runs: int) -> tuple[float | None, str]:
    python = peer_python("ort-webgpu")
    if python is None:
        return None, "not installed (bench/setup_peers.sh)"
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "feeds.npz"
        np.savez(npz, **feeds)
        done = subprocess.run([python, str(PEER_SCRIPT), "ort-webgpu", str(path), str(runs), "1", str(npz)],
                              capture_output=True, text=True, timeout=1800)
    try:
        result = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return None, f"failed: {done.stderr.strip()[-300:]}"
    if "error" in result:
        return None, result["error"][:300]
    return float(np.median(result["times_ms"])), result["provider"]


MINILM = {"hidden_size": 384, "num_attention_heads": 12, "num_hidden_layers": 6, "intermediate_size": 1536,
          "vocab_size": 30522, "max_position_embeddings": 512, "layer_norm_eps": 1e-12, "hidden_act": "gelu"}


def synthetic(folder: Path) -> tuple[Path, dict]:
    """MiniLM's network with seeded random weights, and random tokens in the two cases' shapes."""
    rng = np.random.default_rng(0)
    h, f = MINILM["hidden_size"], MINILM["intermediate_size"]
    tables = {"word": MINILM["vocab_size"], "position": MINILM["max_position_embeddings"], "token_type": 2}
    w = {f"embeddings.{k}_embeddings.weight": rng.standard_normal((n, h), np.float32) * 0.05 for k, n in tables.items()}
    w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"] = np.ones(h, np.float32), np.zeros(h, np.float32)
    for i in range(MINILM["num_hidden_layers"]):
        p = f"encoder.layer.{i}"
        shapes = {"attention.self.query": (h, h), "attention.self.key": (h, h), "attention.self.value": (h, h),
                  "attention.output.dense": (h, h), "intermediate.dense": (f, h), "output.dense": (h, f)}
        for part, (o, k) in shapes.items():
            w[f"{p}.{part}.weight"] = rng.standard_normal((o, k), np.float32) / np.sqrt(k)
            w[f"{p}.{part}.bias"] = np.zeros(o, np.float32)
        for part in ("attention.output.LayerNorm", "output.LayerNorm"):
            w[f"{p}.{part}.weight"], w[f"{p}.{part}.bias"] = np.ones(h, np.float32), np.zeros(h, np.float32)
    import onnx

    path = folder / "minilm-synthetic.onnx"
    onnx.save(bert.bert_onnx(w, MINILM), str(path))
    cases = {}
    for case, (n, s) in {"1 x 128": (1, 128), "8 x padded": (8, 14)}.items():
        ids = rng.integers(1000, MINILM["vocab_size"], (n, s)).astype(np.int64)
        cases[case] = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    return path, cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--json")
    parser.add_argument("--synthetic", action="store_true")
    args = parser.parse_args()
    import onnxruntime as ort

    tmp = tempfile.TemporaryDirectory()
    if args.synthetic:
        path, cases = synthetic(Path(tmp.name))
    else:
        path = zoo.fetch("all_minilm_l6_v2")
        tokenizer = bert.tokenizer_from_archive(zoo.shipped("all_minilm_l6_v2"))
        long = tokenizer(PARAGRAPH).feeds()
        cases = {"1 x 128": {k: v[:, :128].copy() for k, v in long.items()},
                 "8 x padded": tokenizer(SENTENCES).feeds()}
        cases["1 x 128"]["input_ids"][0, -1] = tokenizer.sep
    reference = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    results = {"adapter": None, "date": time.strftime("%Y-%m-%d"), "synthetic": args.synthetic, "cases": {}}
    for case, feeds in cases.items():
        shapes = {k: v.shape for k, v in feeds.items()}
        sessions = {p: wgnn.InferenceSession(str(path), precision=p, input_shapes=shapes) for p in ("fp32", "fp16")}
        results["adapter"] = sessions["fp32"].adapter_name
        want = reference.run(["sentence_embedding"], feeds)[0]
        agreement = {}
        for p, s in sessions.items():
            got = s.run(["sentence_embedding"], feeds)[0]
            agreement[p] = float(np.linalg.norm(got - want) / np.linalg.norm(want))
        fns = {f"wgnn {p.upper()}": (lambda s=s, feeds=feeds: s.run(None, feeds)) for p, s in sessions.items()}
        fns["ONNX Runtime CPU"] = lambda feeds=feeds: reference.run(None, feeds)
        times = interleaved_ms(fns, args.runs)
        times["ONNX Runtime WebGPU"], status = peer_ms(path, feeds, args.runs)
        results["cases"][case] = {"shape": list(feeds["input_ids"].shape), "median_ms": times, "webgpu": status,
                                  "rel_l2_vs_ort_cpu": agreement,
                                  "dispatches": len(sessions["fp32"]._exe.dispatches)}
        line = ", ".join(f"{k} {v:.1f} ms" if v is not None else f"{k} -" for k, v in times.items())
        print(f"{case} {list(feeds['input_ids'].shape)}: {line} [{status}]; embeddings vs ORT CPU "
              f"{agreement['fp32']:.1e} (fp32), {agreement['fp16']:.1e} (fp16); "
              f"{results['cases'][case]['dispatches']} dispatches", flush=True)
    print(f"adapter: {results['adapter']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    sys.exit(main())
