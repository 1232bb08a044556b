"""wgnn inside someone else's WebGPU program: the model runs on a wgpu device the program opened
itself (here wgpu-py's default device, the one pygfx renders with), and the program's own WGSL
shader reads the model's output buffer directly, with no trip through host memory.

    python demos/interop.py [--image PATH]

It classifies a photo with a zoo CNN (seeded weights: the classes mean nothing, the data path is
the point), then a compute shader written here turns the logits into softmax probabilities and
their arg max, on the GPU; only those four bytes and the probabilities come back, and they are
checked against numpy on the same logits.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import wgpu
import wgpu.utils

import wgnn
from wgnn import zoo
from wgnn.batch import prepare_image

# The program's own shader: one workgroup, softmax of N logits and the index of the largest.
SHADER = """
struct Meta { n: u32 }
@group(0) @binding(0) var<uniform> info: Meta;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> probs: array<f32>;
@group(0) @binding(3) var<storage, read_write> best: array<u32>;

@compute @workgroup_size(1)
fn main() {
    var top = 0u;
    for (var i = 1u; i < info.n; i++) {
        if (logits[i] > logits[top]) { top = i; }
    }
    var total = 0.0;
    for (var i = 0u; i < info.n; i++) {
        probs[i] = exp(logits[i] - logits[top]);
        total += probs[i];
    }
    for (var i = 0u; i < info.n; i++) {
        probs[i] = probs[i] / total;
    }
    best[0] = top;
}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", help="a photo (default: scikit-image's astronaut, shipped with wgnn's demos)")
    args = parser.parse_args(argv)

    gpu = wgpu.utils.get_default_device()  # opened by "the rest of the program", not by wgnn
    session = wgnn.InferenceSession(zoo.build("mobilenet_v2", softmax=False), device=gpu)
    from importlib import resources

    from PIL import Image

    path = args.image or resources.files("wgnn.demo").joinpath("astronaut.jpg")
    image = np.asarray(Image.open(path).convert("RGB"))
    x = prepare_image(image, "imagenet", (224, 224))[0][None]  # ImageNet's normalisation, NCHW

    (logits,) = session.run_on_gpu({"input": x}).values()  # a GPUTensor: stays in wgnn's buffer
    n = logits.shape[-1]
    usage = wgpu.BufferUsage
    meta = gpu.create_buffer_with_data(data=np.array([n, 0, 0, 0], np.uint32).tobytes(), usage=usage.UNIFORM)
    probs = gpu.create_buffer(size=4 * n, usage=usage.STORAGE | usage.COPY_SRC)
    best = gpu.create_buffer(size=16, usage=usage.STORAGE | usage.COPY_SRC)
    pipeline = gpu.create_compute_pipeline(layout="auto", compute={
        "module": gpu.create_shader_module(code=SHADER), "entry_point": "main"})
    bind_group = gpu.create_bind_group(layout=pipeline.get_bind_group_layout(0), entries=[
        {"binding": 0, "resource": {"buffer": meta, "offset": 0, "size": 16}},
        {"binding": 1, "resource": {"buffer": logits.buffer, "offset": logits.offset, "size": 4 * n}},
        {"binding": 2, "resource": {"buffer": probs, "offset": 0, "size": 4 * n}},
        {"binding": 3, "resource": {"buffer": best, "offset": 0, "size": 16}}])
    encoder = gpu.create_command_encoder()
    cpass = encoder.begin_compute_pass()
    cpass.set_pipeline(pipeline)
    cpass.set_bind_group(0, bind_group)
    cpass.dispatch_workgroups(1)
    cpass.end()
    gpu.queue.submit([encoder.finish()])

    top = int(np.frombuffer(gpu.queue.read_buffer(best), np.uint32)[0])
    p = np.frombuffer(gpu.queue.read_buffer(probs), np.float32)
    # The check, on the host: the same logits read back, softmax in numpy.
    host = np.asarray(logits).reshape(-1).astype(np.float64)
    want = np.exp(host - host.max())
    want /= want.sum()
    ok = top == int(host.argmax()) and np.allclose(p, want, rtol=1e-4, atol=1e-7)
    print(f"wgnn ran {session.get_providers()[0]} on {session.device.name} (a device opened by wgpu.utils)")
    print(f"the program's own shader read wgnn's output buffer: class {top}, p = {p[top]:.4f}; "
          f"numpy on the same logits agrees: {ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
