"""Operators whose output shape depends on input values (NonZero, Compress, Unique,
NonMaxSuppression): folded when compiling where their inputs are known, else the model runs in
stages (``wgnn.stages``), each against ONNX Runtime CPU on the same model."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper

import wgnn
from wgnn import profiler
from wgnn.errors import ConfigError, UnsupportedOperatorError

ort = pytest.importorskip("onnxruntime")


def _model(nodes, inputs, outputs, inits=(), opset=17):
    graph = h.make_graph(nodes, "g", [h.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                         [h.make_tensor_value_info(n, t, None) for n, t in outputs],
                         [numpy_helper.from_array(np.asarray(v), n) for n, v in inits])
    return h.make_model(graph, opset_imports=[h.make_opsetid("", opset)])


def _same_as_ort(model, feeds_list, **options):
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    session = wgnn.InferenceSession(model, **options)
    for feeds in feeds_list:
        want, got = ref.run(None, feeds), session.run(None, feeds)
        for name, w, g in zip(session.output_names, want, got):
            assert g.dtype == w.dtype and g.shape == w.shape, (name, g.dtype, g.shape, w.dtype, w.shape)
            np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6, err_msg=name)
    return session


NONZERO_NODES = [h.make_node("Relu", ["x"], ["y"]),
                 h.make_node("Greater", ["y", "t"], ["m"]),
                 h.make_node("NonZero", ["m"], ["idx"]),
                 h.make_node("Transpose", ["idx"], ["idx_t"], perm=[1, 0]),
                 h.make_node("GatherND", ["y", "idx_t"], ["vals"]),
                 h.make_node("Mul", ["vals", "vals"], ["sq"]),
                 h.make_node("ReduceSum", ["sq"], ["total"], keepdims=0)]


def test_nonzero_between_gpu_stages(device, rng):
    """A mask computed on the GPU, NonZero on the host, the gathered values summed on the GPU again:
    a tail plan per count (an empty one too), the model's outputs from every stage."""
    model = _model(NONZERO_NODES, [("x", T.FLOAT, [3, 5])],
                   [("sq", T.FLOAT), ("idx", T.INT64), ("total", T.FLOAT), ("y", T.FLOAT)], [("t", np.float32(0.5))])
    feeds = [{"x": rng.standard_normal((3, 5)).astype(np.float32)} for _ in range(3)]
    feeds.append({"x": -np.ones((3, 5), np.float32)})  # nothing selected: empty tensors through the tail
    session = _same_as_ort(model, feeds)
    assert session.kernel_choices()["NonZero_2"] == "host"
    assert session.dispatch_count > 0 and session.plans_compiled >= 3
    ref = session.run_reference(feeds[0])
    np.testing.assert_allclose(ref["total"], session.run(["total"], feeds[0])[0], rtol=1e-6)
    with pytest.raises(ConfigError, match="NonZero_2.*on the host"):
        session.run_on_gpu(feeds[0])  # idx is made on the host
    with pytest.raises(ConfigError, match="NonZero_2"):
        profiler.profile(session, feeds[0])
    with pytest.raises(wgnn.InputError, match="input names"):
        session.run(None, {"z": feeds[0]["x"]})


def test_nonzero_of_values_known_when_compiling_is_folded(device, rng):
    """NonZero of a shape (known at compile time) is computed when compiling: one plan, no stage."""
    nodes = [h.make_node("Shape", ["x"], ["s"]), h.make_node("NonZero", ["s"], ["nz"]),
             h.make_node("Cast", ["nz"], ["f"], to=T.FLOAT), h.make_node("ReduceSum", ["f"], ["r"], keepdims=1),
             h.make_node("Add", ["x", "r"], ["y"])]
    model = _model(nodes, [("x", T.FLOAT, [2, 1, 3])], [("y", T.FLOAT)])
    session = _same_as_ort(model, [{"x": rng.standard_normal((2, 1, 3)).astype(np.float32)}])
    assert "host" not in session.kernel_choices().values() and session.plans_compiled == 1


def test_two_data_dependent_nodes_stage_twice(device, rng):
    """Compress after NonZero: the tail is staged again around the second node."""
    nodes = NONZERO_NODES[:5] + [h.make_node("Greater", ["vals", "u"], ["keep"]),
                                 h.make_node("Compress", ["vals", "keep"], ["big"], axis=0),
                                 h.make_node("Neg", ["big"], ["out"])]
    model = _model(nodes, [("x", T.FLOAT, [4, 6])], [("out", T.FLOAT), ("vals", T.FLOAT)],
                   [("t", np.float32(0.0)), ("u", np.float32(1.0))])
    session = _same_as_ort(model, [{"x": rng.standard_normal((4, 6)).astype(np.float32)} for _ in range(3)])
    choices = session.kernel_choices()
    assert choices["NonZero_2"] == "host" and choices["Compress_6"] == "host"


@pytest.mark.parametrize("axis", [None, 0, 1, -1])
def test_compress_and_unique(device, rng, axis):
    """Compress (with an axis, none, a condition shorter than the axis) and Unique (sorted or in
    order of first occurrence, all four outputs) on GPU-computed inputs."""
    attrs = {} if axis is None else {"axis": axis}
    nodes = [h.make_node("Floor", ["x"], ["f"]),
             h.make_node("Compress", ["f", "c"], ["comp"], **attrs),
             h.make_node("Unique", ["f"], ["u", "first", "inverse", "counts"], sorted=1, **attrs),
             h.make_node("Unique", ["f"], ["v", "vfirst", "vinverse", "vcounts"], sorted=0, **attrs)]
    outputs = [("comp", T.FLOAT), ("u", T.FLOAT), ("first", T.INT64), ("inverse", T.INT64), ("counts", T.INT64),
               ("v", T.FLOAT), ("vfirst", T.INT64), ("vinverse", T.INT64), ("vcounts", T.INT64)]
    model = _model(nodes, [("x", T.FLOAT, [5, 4]), ("c", T.BOOL, [3])], outputs)
    feeds = []
    for _ in range(2):
        x = rng.integers(-2, 2, (5, 4)).astype(np.float32) + 0.5
        x[3] = x[1]  # a repeated row, for Unique along axis 0
        feeds.append({"x": x, "c": rng.integers(0, 2, 3).astype(bool)})
    _same_as_ort(model, feeds)


def _boxes(rng, n, center):
    centre, size = rng.uniform(0, 1, (n, 2)), rng.uniform(0.05, 0.4, (n, 2))
    if center:
        return np.concatenate([centre, size], 1).astype(np.float32)
    corners = np.concatenate([centre - size / 2, centre + size / 2], 1)
    flip = rng.integers(0, 2, n).astype(bool)  # corners in either order
    corners[flip] = corners[flip][:, [2, 3, 0, 1]]
    return corners.astype(np.float32)


@pytest.mark.parametrize("center", [0, 1])
def test_non_max_suppression(device, rng, center):
    """NonMaxSuppression against ONNX Runtime: two batches, three classes, tied scores, boxes given
    by corners in either order or by centre; with and without a score threshold, and no limit."""
    boxes = np.stack([_boxes(rng, 60, center) for _ in range(2)])
    scores = rng.uniform(0, 1, (2, 3, 60)).astype(np.float32)
    scores[:, :, ::7] = 0.5  # ties: the lower index first
    nodes = [h.make_node("Identity", ["s"], ["si"]),
             h.make_node("NonMaxSuppression", ["b", "si", "m", "iou", "st"], ["sel"], center_point_box=center),
             h.make_node("NonMaxSuppression", ["b", "si", "m", "iou"], ["all"], center_point_box=center),
             h.make_node("NonMaxSuppression", ["b", "si"], ["none"], center_point_box=center)]
    model = _model(nodes, [("b", T.FLOAT, [2, 60, 4]), ("s", T.FLOAT, [2, 3, 60]), ("m", T.INT64, [1]),
                           ("iou", T.FLOAT, [1]), ("st", T.FLOAT, [1])], [("sel", T.INT64), ("all", T.INT64),
                                                                          ("none", T.INT64)], opset=11)
    feeds = [{"b": boxes, "s": scores, "m": np.array([m], np.int64), "iou": np.array([t], np.float32),
              "st": np.array([0.3], np.float32)} for m, t in ((10, 0.3), (100, 0.0), (3, 0.7))]
    _same_as_ort(model, feeds)


def test_non_max_suppression_on_blazeface_detections(device):
    """MediaPipe's BlazeFace on the astronaut photo; its raw outputs decoded on the GPU (sigmoid,
    anchors), NonMaxSuppression, the kept boxes and scores gathered on the GPU: the same faces and
    boxes as ONNX Runtime running the same post-processing model."""
    skimage = pytest.importorskip("skimage")
    from helpers import fetch_or_skip

    from wgnn import mediapipe as mp

    spec = mp.FACE_SHORT_RANGE
    detector = wgnn.InferenceSession(fetch_or_skip(spec.model))
    x, _ = mp.letterbox(skimage.data.astronaut(), (128, 128), (0.0, 1.0))
    raw_boxes, raw_scores = detector.run(None, {detector.get_inputs()[0].name: x})
    anchors = mp.ssd_anchors(spec).astype(np.float32)[None]
    nodes = [h.make_node("Sigmoid", ["logits"], ["p"]), h.make_node("Transpose", ["p"], ["scores"], perm=[0, 2, 1]),
             h.make_node("Slice", ["raw", "s0", "s2", "ax"], ["offset"]),
             h.make_node("Slice", ["raw", "s2", "s4", "ax"], ["size_px"]),
             h.make_node("Div", ["offset", "px"], ["shift"]), h.make_node("Add", ["shift", "anchors"], ["centre"]),
             h.make_node("Div", ["size_px", "px"], ["size"]),
             h.make_node("Concat", ["centre", "size"], ["boxes"], axis=2),
             h.make_node("NonMaxSuppression", ["boxes", "scores", "most", "iou", "least"], ["sel"],
                         center_point_box=1),
             h.make_node("Gather", ["sel", "two"], ["which"], axis=1),
             h.make_node("Squeeze", ["boxes", "zero"], ["all_boxes"]),
             h.make_node("Gather", ["all_boxes", "which"], ["faces"], axis=0),
             h.make_node("Flatten", ["scores"], ["flat"], axis=0), h.make_node("Squeeze", ["flat", "zero"], ["s1"]),
             h.make_node("Gather", ["s1", "which"], ["face_scores"], axis=0)]
    consts = [("s0", np.array([0], np.int64)), ("s2", np.array([2], np.int64)), ("s4", np.array([4], np.int64)),
              ("ax", np.array([2], np.int64)), ("px", np.float32(spec.input_size)), ("anchors", anchors),
              ("most", np.array([5], np.int64)), ("iou", np.array([spec.nms_threshold], np.float32)),
              ("two", np.int64(2)), ("zero", np.array([0], np.int64))]
    model = _model(nodes, [("raw", T.FLOAT, list(raw_boxes.shape)), ("logits", T.FLOAT, list(raw_scores.shape)),
                           ("least", T.FLOAT, [1])], [("sel", T.INT64), ("faces", T.FLOAT), ("face_scores", T.FLOAT)],
                   consts, opset=13)
    feeds = [{"raw": raw_boxes, "logits": raw_scores, "least": np.array([t], np.float32)} for t in (0.5, 0.05)]
    session = _same_as_ort(model, feeds)
    sel, faces, face_scores = session.run(None, feeds[0])
    candidates = int((raw_scores > 0).sum())  # sigmoid above 0.5
    assert len(sel) == 1 < candidates and face_scores[0] > 0.8  # the astronaut's one face, its overlaps gone
    assert len(session.run(None, feeds[1])[0]) > 1  # a low threshold keeps boxes that do not overlap it


def test_data_dependent_errors(device, rng):
    """Inside a subgraph it is refused by name; so is an unsupported operator after the node (at
    load, as anywhere in a model); a bad value fed to the node names it."""
    branch = h.make_graph([h.make_node("NonZero", ["x"], ["nz"])], "then", [],
                          [h.make_tensor_value_info("nz", T.INT64, None)])
    nodes = [h.make_node("If", ["c"], ["out"], then_branch=branch, else_branch=branch, name="branchy")]
    model = _model(nodes, [("x", T.FLOAT, [3]), ("c", T.BOOL, [])], [("out", T.INT64)])
    feeds = {"x": np.ones(3, np.float32), "c": np.array(True)}
    with pytest.raises(UnsupportedOperatorError, match="NonZero.*only in the main graph"):
        wgnn.InferenceSession(model).run(None, feeds)
    nodes = [h.make_node("NonZero", ["x"], ["nz"]), h.make_node("Bernoulli", ["x"], ["b"], name="coin")]
    with pytest.raises(UnsupportedOperatorError, match="Bernoulli.*coin"):
        wgnn.InferenceSession(_model(nodes, [("x", T.FLOAT, [3])], [("nz", T.INT64), ("b", T.FLOAT)]))
    nodes = [h.make_node("NonMaxSuppression", ["b", "s"], ["sel"], name="nms")]
    model = _model(nodes, [("b", T.FLOAT, [1, 4, 4]), ("s", T.FLOAT, [1, 2, 3])], [("sel", T.INT64)])
    with pytest.raises(wgnn.InputError, match="nms.*scores"):
        wgnn.InferenceSession(model).run(None, {"b": np.zeros((1, 4, 4), np.float32),
                                                "s": np.zeros((1, 2, 3), np.float32)})
    assert onnx  # imported for the TensorProto names above


def test_values_the_plan_needs_computed_on_the_gpu(device, rng):
    """A Reshape's shape, TopK's k and Range's limit computed on the GPU from the data: a stage ends
    before each, and the next compiles per value it is given; a shape that is an input itself is
    compiled per value too. Against ONNX Runtime, at several values."""
    nodes = [h.make_node("Greater", ["flat", "zero"], ["pos"]), h.make_node("Cast", ["pos"], ["posi"], to=T.INT64),
             h.make_node("ReduceSum", ["posi"], ["count"], keepdims=1),  # how many are positive: [1]
             h.make_node("Concat", ["count", "minus_one"], ["shape"], axis=0),
             h.make_node("Reshape", ["all", "shape"], ["folded"]),
             h.make_node("TopK", ["flat", "count"], ["top", "top_i"], axis=0),
             h.make_node("Squeeze", ["count"], ["n"]),
             h.make_node("Range", ["zero_i", "n", "one_i"], ["steps"]),
             h.make_node("Reshape", ["x", "given"], ["reshaped"]),
             h.make_node("Flatten", ["x"], ["flat2"], axis=0), h.make_node("Squeeze", ["flat2", "zero_ax"], ["flat"]),
             h.make_node("Concat", ["flat", "flat"], ["all"], axis=0)]
    nodes = nodes[-3:] + nodes[:-3]  # the flattening first
    consts = [("zero", np.float32(0)), ("minus_one", np.array([-1], np.int64)), ("zero_i", np.int64(0)),
              ("one_i", np.int64(1)), ("zero_ax", np.array([0], np.int64))]
    model = _model(nodes, [("x", T.FLOAT, [3, 4]), ("given", T.INT64, [2])],
                   [("folded", T.FLOAT), ("top", T.FLOAT), ("top_i", T.INT64), ("steps", T.INT64),
                    ("reshaped", T.FLOAT)], consts)
    feeds = []
    for positives, given in ((3, (2, 6)), (6, (6, 2)), (3, (4, 3))):
        x = -rng.uniform(0.1, 1, (3, 4)).astype(np.float32)
        x.reshape(-1)[rng.choice(12, positives, replace=False)] *= -1
        feeds.append({"x": x, "given": np.array(given, np.int64)})
    session = _same_as_ort(model, feeds)
    assert session.plans_compiled >= 4


def test_two_stage_detection_head(device, rng):
    """The shape of a two-stage detector's second half: a feature map of a real photo (a stride-2
    convolution on the GPU), proposals kept by NonMaxSuppression on the host, their regions pooled by
    RoiAlign and classified on the GPU: against ONNX Runtime at two thresholds (other counts)."""
    skimage = pytest.importorskip("skimage")
    from PIL import Image

    photo = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((64, 64)), np.float32) / 255
    x = photo.transpose(2, 0, 1)[None].copy()
    centre, size = rng.uniform(8, 56, (40, 2)), rng.uniform(8, 32, (40, 2))
    boxes = np.concatenate([centre - size / 2, centre + size / 2], 1).astype(np.float32)[None]  # x1, y1, x2, y2
    nodes = [h.make_node("Conv", ["x", "w"], ["f"], strides=[2, 2], pads=[1, 1, 1, 1]),
             h.make_node("Relu", ["f"], ["feat"]),
             h.make_node("ReduceMean", ["feat"], ["score_map"], axes=[1], keepdims=0),  # (1, 32, 32)
             h.make_node("NonMaxSuppression", ["boxes", "scores", "most", "iou"], ["sel"]),  # (IoU: either axis order)
             h.make_node("Gather", ["sel", "two"], ["which"], axis=1),
             h.make_node("Gather", ["sel", "zero"], ["image"], axis=1),
             h.make_node("Squeeze", ["boxes", "axis0"], ["all"]),
             h.make_node("Gather", ["all", "which"], ["rois"], axis=0),
             h.make_node("RoiAlign", ["feat", "rois", "image"], ["pooled"], output_height=4, output_width=4,
                         spatial_scale=0.5, sampling_ratio=0),
             h.make_node("Flatten", ["pooled"], ["flat"]), h.make_node("MatMul", ["flat", "cls"], ["logits"]),
             h.make_node("Softmax", ["logits"], ["probs"], axis=1)]
    consts = [("w", rng.standard_normal((8, 3, 3, 3)).astype(np.float32) / 3), ("most", np.array([40], np.int64)),
              ("two", np.int64(2)), ("zero", np.int64(0)), ("axis0", np.array([0], np.int64)),
              ("cls", rng.standard_normal((8 * 16, 5)).astype(np.float32) / 8)]
    model = _model(nodes, [("x", T.FLOAT, [1, 3, 64, 64]), ("boxes", T.FLOAT, [1, 40, 4]),
                           ("scores", T.FLOAT, [1, 1, 40]), ("iou", T.FLOAT, [1])],
                   [("sel", T.INT64), ("probs", T.FLOAT), ("score_map", T.FLOAT)], consts, opset=16)
    scores = rng.uniform(0, 1, (1, 1, 40)).astype(np.float32)
    feeds = [{"x": x, "boxes": boxes, "scores": scores, "iou": np.array([t], np.float32)} for t in (0.3, 0.7)]
    session = _same_as_ort(model, feeds)
    kept = [len(session.run(["sel"], f)[0]) for f in feeds]
    assert 0 < kept[0] < kept[1] and session.kernel_choices()["NonMaxSuppression_3"] == "host"


def test_cli_run_of_a_model_in_stages(device, tmp_path, capsys):
    """``wgnn run`` on such a model: random inputs from its declared ones, every output (an empty one
    too) checked against the numpy reference of its stages."""
    from wgnn import cli

    model = _model(NONZERO_NODES, [("x", T.FLOAT, [3, 5])], [("idx", T.INT64), ("total", T.FLOAT)],
                   [("t", np.float32(5.0))])  # the standard normal draws above 5: none
    onnx.save(model, tmp_path / "nz.onnx")
    assert cli.main(["run", str(tmp_path / "nz.onnx"), "--runs", "2"]) == 0
    out = capsys.readouterr().out
    assert "output idx: shape (2, 0), empty" in out and "check total against the numpy reference" in out


def test_image_decoder_feeds_a_gpu_network(device, rng):
    """A model that takes JPEG and PNG bytes: ImageDecoder on the host (its size is the file's), then
    scaling, resizing and a convolution on the GPU, per decoded size; against ONNX's reference
    evaluator (ONNX Runtime has no ImageDecoder) on the astronaut photo and a crop of it."""
    import io

    skimage = pytest.importorskip("skimage")
    from onnx.reference import ReferenceEvaluator
    from PIL import Image

    photo = Image.fromarray(skimage.data.astronaut())
    files = []
    for image, fmt in ((photo, "JPEG"), (photo.crop((100, 0, 400, 250)), "PNG")):
        buffer = io.BytesIO()
        image.save(buffer, fmt)
        files.append(np.frombuffer(buffer.getvalue(), np.uint8))
    nodes = [h.make_node("ImageDecoder", ["file"], ["hwc"], pixel_format="BGR"),
             h.make_node("Cast", ["hwc"], ["f"], to=T.FLOAT), h.make_node("Div", ["f", "k255"], ["unit"]),
             h.make_node("Transpose", ["unit"], ["chw"], perm=[2, 0, 1]),
             h.make_node("Unsqueeze", ["chw", "axis0"], ["nchw"]),
             h.make_node("Resize", ["nchw", "", "", "size"], ["small"], mode="linear"),
             h.make_node("Conv", ["small", "w"], ["c"], pads=[1, 1, 1, 1]), h.make_node("Relu", ["c"], ["r"]),
             h.make_node("GlobalAveragePool", ["r"], ["out"])]
    consts = [("k255", np.float32(255)), ("axis0", np.array([0], np.int64)),
              ("size", np.array([1, 3, 48, 64], np.int64)), ("w", rng.standard_normal((8, 3, 3, 3)).astype(np.float32))]
    model = _model(nodes, [("file", T.UINT8, ["bytes"])], [("out", T.FLOAT), ("hwc", T.UINT8)], consts, opset=20)
    session = wgnn.InferenceSession(model)
    reference = ReferenceEvaluator(model)
    for data in files:
        got = session.run(None, {"file": data})
        want = reference.run(None, {"file": data})
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-6)
    assert session.kernel_choices()["ImageDecoder_0"] == "host" and got[1].shape == (250, 300, 3)
    with pytest.raises(wgnn.InputError, match="ImageDecoder_0.*cannot be decoded"):
        session.run(None, {"file": files[0][:100]})


def test_outputs_of_the_last_stage_stay_on_the_gpu(device, rng):
    """Where every output comes from after the node, run_on_gpu (and IOBinding) leave them in GPU
    buffers: the same values as run()."""
    model = _model(NONZERO_NODES, [("x", T.FLOAT, [3, 5])], [("total", T.FLOAT), ("vals", T.FLOAT)],
                   [("t", np.float32(0.5))])
    session = wgnn.InferenceSession(model)
    for _ in range(2):
        feeds = {"x": rng.standard_normal((3, 5)).astype(np.float32)}
        want = session.run(None, feeds)
        on_gpu = session.run_on_gpu(feeds)
        assert all(isinstance(t, wgnn.GPUTensor) for t in on_gpu.values())
        np.testing.assert_array_equal(np.asarray(on_gpu["total"]), want[0])
        np.testing.assert_array_equal(np.asarray(on_gpu["vals"]), want[1])
        binding = session.io_binding()
        binding.bind_cpu_input("x", feeds["x"])
        binding.bind_output("total")
        session.run_with_iobinding(binding)
        np.testing.assert_array_equal(binding.copy_outputs_to_cpu()[0], want[0])
