"""What a single-row product's weight loads cost on this adapter, by the word they come in.

A standalone WGSL kernel (no wgnn) computes y = a B for one row a of K values and constant weights B
(K x N) laid out as wgnn's panels (eight vec4 columns, all K rows of them, together: ``nn._panels``),
an invocation per vec4 of columns walking all of K, as the register-tiled kernel at tile 1 does.
Only the word B's values come in differs:

- ``f32``: a vec4<f32> a row (four columns), 16 bytes a load;
- ``i8``: a u32 of four int8s a row (``unpack4xI8``), 4 bytes a load;
- ``i8x4``: a vec4<u32> of four rows' int8s, 16 bytes a load (a panel layout wgnn does not use);
- ``f16``: a vec2<u32> of four f16s a row (``unpack2x16float``), 8 bytes a load;
- ``f16x2``: a vec4<u32> of two rows' f16s, 16 bytes a load (nor this one);
- ``i8_uniform_k``: ``i8`` with K's trip count read at run time instead of a constant.

Each is timed by timestamp queries around one compute pass, least of ``--repeats``, every variant
in turn for ``--rounds`` rounds; the sums are checked against numpy. On lavapipe (Mesa 22, 2 cores,
K 1024, N 8192) the loads, not the bytes, set the time: f32 4.27 ms, i8 1.37, i8x4 1.29, f16 2.2,
f16x2 1.89 (bench/results/2026-12-06-lavapipe-tiled-kernel-words.txt).

    python bench/single_row_loads.py [--k 1024] [--n 8192] [--rounds 2] [--repeats 10]
"""

from __future__ import annotations

import argparse

import numpy as np

# name -> (B's WGSL word, its bytes, K rows a word holds, the loop's body on word index i and a's vec4 av)
WORDS = {
    "f32": ("vec4<f32>", 16, 1, "let i = base + k4 * 32u;\n"
            "        acc = fma(b[i], vec4<f32>(av.x), acc); acc = fma(b[i + 8u], vec4<f32>(av.y), acc);\n"
            "        acc = fma(b[i + 16u], vec4<f32>(av.z), acc); acc = fma(b[i + 24u], vec4<f32>(av.w), acc);"),
    "i8": ("u32", 4, 1, "let i = base + k4 * 32u;\n"
           "        acc = fma(vec4<f32>(unpack4xI8(b[i])), vec4<f32>(av.x), acc);\n"
           "        acc = fma(vec4<f32>(unpack4xI8(b[i + 8u])), vec4<f32>(av.y), acc);\n"
           "        acc = fma(vec4<f32>(unpack4xI8(b[i + 16u])), vec4<f32>(av.z), acc);\n"
           "        acc = fma(vec4<f32>(unpack4xI8(b[i + 24u])), vec4<f32>(av.w), acc);"),
    "i8x4": ("vec4<u32>", 16, 4, "let w = b[base + k4 * 8u];\n"
             "        acc = fma(vec4<f32>(unpack4xI8(w.x)), vec4<f32>(av.x), acc);\n"
             "        acc = fma(vec4<f32>(unpack4xI8(w.y)), vec4<f32>(av.y), acc);\n"
             "        acc = fma(vec4<f32>(unpack4xI8(w.z)), vec4<f32>(av.z), acc);\n"
             "        acc = fma(vec4<f32>(unpack4xI8(w.w)), vec4<f32>(av.w), acc);"),
    "f16": ("vec2<u32>", 8, 1, "let i = base + k4 * 32u;\n"
            "        let w0 = b[i]; let w1 = b[i + 8u]; let w2 = b[i + 16u]; let w3 = b[i + 24u];\n"
            "        acc = fma(vec4<f32>(unpack2x16float(w0.x), unpack2x16float(w0.y)), vec4<f32>(av.x), acc);\n"
            "        acc = fma(vec4<f32>(unpack2x16float(w1.x), unpack2x16float(w1.y)), vec4<f32>(av.y), acc);\n"
            "        acc = fma(vec4<f32>(unpack2x16float(w2.x), unpack2x16float(w2.y)), vec4<f32>(av.z), acc);\n"
            "        acc = fma(vec4<f32>(unpack2x16float(w3.x), unpack2x16float(w3.y)), vec4<f32>(av.w), acc);"),
    "f16x2": ("vec4<u32>", 16, 2, "let i = base + k4 * 16u;\n"
              "        let w0 = b[i]; let w1 = b[i + 8u];\n"
              "        acc = fma(vec4<f32>(unpack2x16float(w0.x), unpack2x16float(w0.y)), vec4<f32>(av.x), acc);\n"
              "        acc = fma(vec4<f32>(unpack2x16float(w0.z), unpack2x16float(w0.w)), vec4<f32>(av.y), acc);\n"
              "        acc = fma(vec4<f32>(unpack2x16float(w1.x), unpack2x16float(w1.y)), vec4<f32>(av.z), acc);\n"
              "        acc = fma(vec4<f32>(unpack2x16float(w1.z), unpack2x16float(w1.w)), vec4<f32>(av.w), acc);"),
}
WORDS["i8_uniform_k"] = WORDS["i8"]


def panel_words(name: str, weights: np.ndarray) -> np.ndarray:
    """B (K x N) as the kernel ``name`` reads it: [N / 32][K rows / rows a word][8 lanes] words."""
    k, n = weights.shape
    lanes = weights.reshape(k, n // 32, 8, 4).transpose(1, 0, 2, 3)  # [panel][k][lane][4 columns]
    if name in ("f32",):
        return np.ascontiguousarray(lanes.astype(np.float32)).view(np.uint32)
    if name in ("i8", "i8_uniform_k"):
        return np.ascontiguousarray(lanes.astype(np.int8)).view(np.uint32)
    if name == "i8x4":  # four rows of a lane's four columns: [panel][k / 4][lane][4 rows][4 columns]
        rows = lanes.reshape(n // 32, k // 4, 4, 8, 4).transpose(0, 1, 3, 2, 4)
        return np.ascontiguousarray(rows.astype(np.int8)).view(np.uint32)
    if name == "f16":
        return np.ascontiguousarray(lanes.astype(np.float16)).view(np.uint32)
    rows = lanes.reshape(n // 32, k // 2, 2, 8, 4).transpose(0, 1, 3, 2, 4)  # f16x2
    return np.ascontiguousarray(rows.astype(np.float16)).view(np.uint32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=int, default=1024)
    parser.add_argument("--n", type=int, default=8192)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    if args.k % 4 or args.n % 32:
        parser.error("K must be a multiple of 4 and N of 32")
    import wgpu

    adapter = wgpu.gpu.request_adapter_sync(power_preference="high-performance")
    device = adapter.request_device_sync(required_features=["timestamp-query"])
    print(f"{adapter.info['device']} ({adapter.info['description']}); K {args.k}, N {args.n}")
    rng = np.random.default_rng(0)
    weights = rng.integers(-8, 8, (args.k, args.n)).astype(np.float32)  # (exact in every word)
    a = rng.integers(-4, 4, args.k).astype(np.float32)
    want = a @ weights
    usage = wgpu.BufferUsage
    a_buf = device.create_buffer_with_data(data=a.tobytes(), usage=usage.STORAGE)
    y_buf = device.create_buffer(size=args.n * 4, usage=usage.STORAGE | usage.COPY_SRC)
    k_buf = device.create_buffer_with_data(data=np.array([args.k // 4, 0], np.uint32).tobytes(), usage=usage.STORAGE)
    queries = device.create_query_set(type="timestamp", count=2)
    resolved = device.create_buffer(size=16, usage=usage.QUERY_RESOLVE | usage.COPY_SRC)
    kernels = {}
    for name, (word, _, rows, body) in WORDS.items():
        trips = "k_trips[0]" if name == "i8_uniform_k" else f"{args.k // 4}u"
        panel = args.k // rows * 8  # words a panel
        code = f"""
@group(0) @binding(0) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> b: array<{word}>;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> k_trips: array<u32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {{
    let col = gid.x;
    if (col >= {args.n // 4}u) {{ return; }}
    let base = (col / 8u) * {panel}u + col % 8u;
    var acc = vec4<f32>(0.0);
    for (var k4 = 0u; k4 < {trips}; k4++) {{
        let av = a[k4];
        {body}
    }}
    y[col] = acc + f32(k_trips[1]);  // (k_trips[1] is 0: the binding is used by every variant)
}}"""
        b_buf = device.create_buffer_with_data(data=panel_words(name, weights).tobytes(), usage=usage.STORAGE)
        pipeline = device.create_compute_pipeline(layout="auto", compute={
            "module": device.create_shader_module(code=code), "entry_point": "main"})
        group = device.create_bind_group(layout=pipeline.get_bind_group_layout(0), entries=[
            {"binding": i, "resource": {"buffer": buf, "offset": 0, "size": buf.size}}
            for i, buf in enumerate((a_buf, b_buf, y_buf, k_buf))])
        kernels[name] = (pipeline, group)
    best = {name: float("inf") for name in kernels}
    for _ in range(args.rounds):
        for name, (pipeline, group) in kernels.items():
            for _ in range(args.repeats):
                encoder = device.create_command_encoder()
                cpass = encoder.begin_compute_pass(timestamp_writes={
                    "query_set": queries, "beginning_of_pass_write_index": 0, "end_of_pass_write_index": 1})
                cpass.set_pipeline(pipeline)
                cpass.set_bind_group(0, group)
                cpass.dispatch_workgroups(-(-args.n // 4 // 64))
                cpass.end()
                encoder.resolve_query_set(queries, 0, 2, resolved, 0)
                device.queue.submit([encoder.finish()])
                stamps = np.frombuffer(device.queue.read_buffer(resolved), np.uint64)
                best[name] = min(best[name], (int(stamps[1]) - int(stamps[0])) / 1e6)
            got = np.frombuffer(device.queue.read_buffer(y_buf), np.float32)
            if not np.array_equal(got, want):
                raise SystemExit(f"{name}: wrong sums (largest error {np.abs(got - want).max()})")
    for name, ms in best.items():
        word, nbytes, rows, _ = WORDS[name]
        print(f"{name:<13} {word:<10} {nbytes / rows / 4:4.2f} bytes a weight  {ms:7.3f} ms")


if __name__ == "__main__":
    main()
