"""all-MiniLM-L6-v2 (a 6-layer BERT sentence encoder) on this machine's adapter: wgnn FP32 and FP16
against ONNX Runtime CPU and, where its environment exists (``bench/setup_peers.sh``), ONNX
Runtime's WebGPU provider, on the same ONNX file (``wgnn.zoo.fetch("all_minilm_l6_v2")``) and the
same tokens.

Shapes: a batch of 1 sentence of 128 tokens (the first 128 of a real paragraph), the same of 127
(a length no multiple of 4, as most are: attention's scores then have ragged columns) and a batch
of 8 sentences padded to their longest. Each column's runs are the median of ``--runs`` after a warm-up;
wgnn's columns run interleaved in this process, then ONNX Runtime CPU's, the WebGPU peer in its own
process (``bench/peers.py``). Also printed: wgnn's sentence embeddings against ONNX Runtime CPU's.

``--synthetic``: the same network with seeded random weights (``wgnn.bert.bert_onnx`` with
MiniLM's configuration) on random tokens of the same shapes, for a machine that cannot fetch the
weights (a lent GPU reaches no registry); its times are the real model's, its outputs are not.

``--nbits``: every linear layer's weights quantized to 4 bits first, in blocks of 32 along K with
a scale and a zero point per block, written as ONNX Runtime's ``MatMulNBits`` (round to nearest,
as ``MatMulNBitsQuantizer``'s default does; ``nbits`` here, so that a machine without the
quantizer's dependencies can make the file). wgnn keeps those weights packed on the GPU
(``matmul_nbits``); the JSON has each session's constant bytes.

    python bench/text.py [--runs N] [--json FILE] [--synthetic] [--nbits]
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
    for case, (n, s) in {"1 x 128": (1, 128), "1 x 127": (1, 127), "8 x padded": (8, 14)}.items():
        ids = rng.integers(1000, MINILM["vocab_size"], (n, s)).astype(np.int64)
        cases[case] = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    return path, cases


def nbits(path: Path, out: Path, block: int = 32) -> Path:
    """``path`` with every MatMul whose B is a 2-D initializer (K a multiple of ``block``) replaced
    by a 4-bit MatMulNBits: per column and block of K, scale = (max - min) / 15 over the block (with
    0 inside the range), zero point = round(-min / scale), q = clip(round(w / scale) + zero, 0, 15),
    packed two to a byte from the low bits up, as ONNX Runtime stores them."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    nodes = []
    for node in graph.node:
        b = inits.get(node.input[1]) if node.op_type == "MatMul" else None
        w = numpy_helper.to_array(b).astype(np.float32) if b is not None else None
        if w is None or w.ndim != 2 or w.shape[0] % block:
            nodes.append(node)
            continue
        k, n = w.shape
        blocks = w.T.reshape(n, k // block, block)
        low, high = np.minimum(blocks.min(axis=2), 0), np.maximum(blocks.max(axis=2), 0)
        scale = np.where(high > low, (high - low) / 15, 1).astype(np.float32)
        zero = np.clip(np.round(-low / scale), 0, 15).astype(np.uint8)
        q = np.clip(np.round(blocks / scale[..., None]) + zero[..., None], 0, 15).astype(np.uint8)
        packed = (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)
        zeros = np.pad(zero, ((0, 0), (0, zero.shape[1] % 2)))
        zeros = (zeros[:, 0::2] | (zeros[:, 1::2] << 4)).astype(np.uint8)
        name = node.input[1]
        graph.initializer.extend([numpy_helper.from_array(packed, f"{name}_q4"),
                                  numpy_helper.from_array(scale, f"{name}_scales"),
                                  numpy_helper.from_array(zeros, f"{name}_zeros")])
        nodes.append(helper.make_node("MatMulNBits", [node.input[0], f"{name}_q4", f"{name}_scales", f"{name}_zeros"],
                                      list(node.output), name=node.name, domain="com.microsoft", K=k, N=n, bits=4,
                                      block_size=block))
    del graph.node[:]
    graph.node.extend(nodes)
    used = {i for node in graph.node for i in node.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save(model, str(out))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--json")
    parser.add_argument("--synthetic", action="store_true")
    parser.add_argument("--nbits", action="store_true", help="4-bit weights (MatMulNBits) first")
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory()
    if args.synthetic:
        path, cases = synthetic(Path(tmp.name))
    else:
        path = zoo.fetch("all_minilm_l6_v2")
        tokenizer = bert.tokenizer_from_archive(zoo.shipped("all_minilm_l6_v2"))
        long = tokenizer(PARAGRAPH).feeds()
        cases = {f"1 x {n}": {k: v[:, :n].copy() for k, v in long.items()} for n in (128, 127)}
        cases["8 x padded"] = tokenizer(SENTENCES).feeds()
        for n in (128, 127):
            cases[f"1 x {n}"]["input_ids"][0, -1] = tokenizer.sep
    if args.nbits:
        path = nbits(Path(path), Path(tmp.name) / "minilm-q4.onnx")
    results = {"adapter": None, "date": time.strftime("%Y-%m-%d"), "synthetic": args.synthetic, "nbits": args.nbits,
               "cases": {}}
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
