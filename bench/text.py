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
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from wgnn import bert, zoo

sys.path.insert(0, str(Path(__file__).parent))
from peers import compare  # noqa: E402  (bench/peers.py: wgnn against ONNX Runtime CPU and WebGPU)

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
    results = {"adapter": None, "date": time.strftime("%Y-%m-%d"), "synthetic": args.synthetic, "cases": {}}
    for case, feeds in cases.items():
        measured = compare(path, feeds, args.runs, output="sentence_embedding")
        results["adapter"] = measured.pop("adapter")
        print(f"{case} {list(feeds['input_ids'].shape)}: {measured.pop('line')} (sentence embeddings)", flush=True)
        results["cases"][case] = dict(measured, shape=list(feeds["input_ids"].shape))
    print(f"adapter: {results['adapter']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    sys.exit(main())
