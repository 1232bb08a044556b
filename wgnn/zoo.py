"""Standard CNNs as ONNX models with seeded random weights, for tests and benchmarks.

Nothing is downloaded: ``build(name)`` writes the architecture with ``onnx.helper``. Convolutions
are He-initialised; every BatchNormalization gets random statistics so that folding it into the
conv is really exercised. Models take a (batch, 3, 224, 224) float32 input named ``input`` (wgnn
compiles batch 1 unless ``input_shapes`` says otherwise) and return ``output``: class
probabilities, or logits with ``softmax=False``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as exc:  # pragma: no cover
    raise ImportError("wgnn.zoo needs the onnx package: pip install onnx") from exc

OPSET = 13
MODELS = ("mobilenet_v1", "mobilenet_v2", "squeezenet1_1", "resnet50")
ALIASES = {"squeezenet": "squeezenet1_1", "mobilenet": "mobilenet_v2", "resnet": "resnet50"}
INPUT_SHAPE = (1, 3, 224, 224)


class _Net:
    """Accumulates ONNX nodes and initializers; each method returns the new tensor's name."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.inits: list = []
        self.count = 0

    def _name(self, kind: str) -> str:
        self.count += 1
        return f"{kind}_{self.count}"

    def _init(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(value.astype(np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], **attrs) -> str:
        out = self._name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, bias: bool = False) -> str:
        fan_in = cin // groups * k * k
        w = self.rng.normal(0.0, np.sqrt(2.0 / fan_in), (cout, cin // groups, k, k))
        name = self._name("conv")
        inputs = [x, self._init(name + ".w", w)]
        if bias:
            inputs.append(self._init(name + ".b", self.rng.normal(0.0, 0.05, cout)))
        self.nodes.append(helper.make_node("Conv", inputs, [name], name=name, kernel_shape=[k, k],
                                           strides=[stride, stride], pads=[k // 2] * 4, group=groups))
        return name

    def bn(self, x: str, c: int, gamma: tuple[float, float] = (0.5, 1.5)) -> str:
        name = self._name("bn")
        r = self.rng
        params = [r.uniform(*gamma, c), r.normal(0.0, 0.1, c), r.normal(0.0, 0.1, c), r.uniform(0.5, 1.5, c)]
        names = [self._init(f"{name}.{p}", v) for p, v in zip(("scale", "bias", "mean", "var"), params)]
        self.nodes.append(helper.make_node("BatchNormalization", [x] + names, [name], name=name, epsilon=1e-5))
        return name

    def relu6(self, x: str) -> str:
        if "relu6.min" not in {i.name for i in self.inits}:
            self._init("relu6.min", np.array(0.0))
            self._init("relu6.max", np.array(6.0))
        return self.node("Clip", [x, "relu6.min", "relu6.max"])

    def conv_bn(self, x, cin, cout, k, stride=1, groups=1, act="relu", gamma=(0.5, 1.5)):
        y = self.bn(self.conv(x, cin, cout, k, stride, groups), cout, gamma)
        if act == "relu":
            return self.node("Relu", [y])
        if act == "relu6":
            return self.relu6(y)
        return y

    def classifier(self, x: str, cin: int, classes: int, softmax: bool) -> str:
        y = self.node("Flatten", [self.node("GlobalAveragePool", [x])], axis=1)
        w = self._init("fc.w", self.rng.normal(0.0, np.sqrt(1.0 / cin), (classes, cin)))
        b = self._init("fc.b", self.rng.normal(0.0, 0.05, classes))
        y = self.node("Gemm", [y, w, b], transB=1)
        return self.node("Softmax", [y], axis=1) if softmax else y

    def model(self, out: str, name: str, classes: int) -> onnx.ModelProto:
        self.nodes.append(helper.make_node("Identity", [out], ["output"], name="output"))
        graph = helper.make_graph(
            self.nodes, name, [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", *INPUT_SHAPE[1:]])],
            [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", classes])], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="wgnn.zoo")
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model


def _mobilenet_v1(net: _Net, softmax: bool, classes: int) -> str:
    x = net.conv_bn("input", 3, 32, 3, 2)
    cin = 32
    for cout, stride in [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [
            (1024, 2), (1024, 1)]:
        x = net.conv_bn(x, cin, cin, 3, stride, groups=cin)
        x = net.conv_bn(x, cin, cout, 1)
        cin = cout
    return net.classifier(x, cin, classes, softmax)


def _mobilenet_v2(net: _Net, softmax: bool, classes: int) -> str:
    x = net.conv_bn("input", 3, 32, 3, 2, act="relu6")
    cin = 32
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                       (6, 320, 1, 1)]:
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = cin * t
            y = net.conv_bn(x, cin, hidden, 1, act="relu6") if t != 1 else x
            y = net.conv_bn(y, hidden, hidden, 3, stride, groups=hidden, act="relu6")
            residual = stride == 1 and cin == c
            # As in ResNet50 below: a small last gamma in residual branches keeps the deep sum near
            # the identity, as in trained networks, instead of amplifying every perturbation.
            y = net.conv_bn(y, hidden, c, 1, act=None, gamma=(0.05, 0.25) if residual else (0.5, 1.5))
            x = net.node("Add", [x, y]) if residual else y
            cin = c
    x = net.conv_bn(x, cin, 1280, 1, act="relu6")
    return net.classifier(x, 1280, classes, softmax)


def _squeezenet1_1(net: _Net, softmax: bool, classes: int) -> str:
    def fire(x, cin, squeeze, expand):
        s = net.node("Relu", [net.conv(x, cin, squeeze, 1, bias=True)])
        e1 = net.node("Relu", [net.conv(s, squeeze, expand, 1, bias=True)])
        e3 = net.node("Relu", [net.conv(s, squeeze, expand, 3, bias=True)])
        return net.node("Concat", [e1, e3], axis=1)

    def pool(x):
        return net.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)

    x = net.node("Relu", [net.conv("input", 3, 64, 3, 2, bias=True)])
    x = pool(x)
    x = fire(fire(x, 64, 16, 64), 128, 16, 64)
    x = pool(x)
    x = fire(fire(x, 128, 32, 128), 256, 32, 128)
    x = pool(x)
    for cin, sq, ex in [(256, 48, 192), (384, 48, 192), (384, 64, 256), (512, 64, 256)]:
        x = fire(x, cin, sq, ex)
    x = net.node("Dropout", [x])
    x = net.node("Relu", [net.conv(x, 512, classes, 1, bias=True)])
    y = net.node("Flatten", [net.node("GlobalAveragePool", [x])], axis=1)
    return net.node("Softmax", [y], axis=1) if softmax else y


def _resnet50(net: _Net, softmax: bool, classes: int) -> str:
    x = net.conv_bn("input", 3, 64, 7, 2)
    x = net.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for width, blocks, stride in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
        for i in range(blocks):
            s = stride if i == 0 else 1
            y = net.conv_bn(x, cin, width, 1)
            y = net.conv_bn(y, width, width, 3, s)
            # A small last gamma keeps the residual sum bounded over 16 blocks, as trained ResNets do.
            y = net.conv_bn(y, width, width * 4, 1, act=None, gamma=(0.05, 0.25))
            skip = net.conv_bn(x, cin, width * 4, 1, s, act=None) if (s != 1 or cin != width * 4) else x
            x = net.node("Relu", [net.node("Add", [y, skip])])
            cin = width * 4
    return net.classifier(x, cin, classes, softmax)


_BUILDERS = {"mobilenet_v1": _mobilenet_v1, "mobilenet_v2": _mobilenet_v2, "squeezenet1_1": _squeezenet1_1,
             "resnet50": _resnet50}


def canonical(name: str) -> str:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in _BUILDERS:
        raise KeyError(f"unknown zoo model {name!r}; available: {', '.join(MODELS)}")
    return key


@lru_cache(maxsize=8)
def _build_bytes(name: str, softmax: bool, seed: int, classes: int) -> bytes:
    net = _Net(seed)
    out = _BUILDERS[name](net, softmax, classes)
    return net.model(out, name, classes).SerializeToString()


def build(name: str, *, softmax: bool = True, seed: int = 0, classes: int = 1000) -> onnx.ModelProto:
    """The ONNX model ``name`` (see ``MODELS``) with seeded random weights."""
    model = onnx.ModelProto()
    model.ParseFromString(_build_bytes(canonical(name), softmax, seed, classes))
    return model


def random_input(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(INPUT_SHAPE).astype(np.float32)
