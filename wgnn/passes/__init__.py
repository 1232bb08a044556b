"""Graph rewrites. Each rule is ``rule(graph) -> int`` (how many rewrites it made); ``optimize``
repeats the group until no rule fires and returns how often each fired, so a user can see why a
graph has the dispatches it has (``InferenceSession.pass_log``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

from ..graph import Graph
from .chain_spp_pools import chain_spp_pools
from .columns_as_rows import columns_as_rows
from .concat_slices import compose_slices, merge_concat_slices
from .drop_exact_casts import drop_exact_casts, fuse_dequantize_sum
from .eliminate_common import eliminate_common_subexpressions
from .float32_inside import float32_inside
from .fold_batchnorm import decompose_batchnorm, fold_batchnorm
from .fold_channel_scale import fold_channel_scale
from .fold_constants import fold_constants
from .fold_conv_affine import fold_conv_affine
from .fold_head_transposes import fold_head_transposes
from .fold_pad_into_conv import fold_pad_into_conv
from .fold_square_into_reduce import fold_square_into_reduce
from .fuse_activation import fuse_activation
from .fuse_affine import fuse_affine_after_activation
from .fuse_bounds import fuse_bounds
from .fuse_dynamic_quantize import fuse_dynamic_quantize
from .fuse_gelu import fuse_gelu
from .fuse_hard_swish import fuse_hard_swish, fuse_swish
from .fuse_layer_norm import fuse_layer_norm
from .fuse_lstm_cell import fuse_lstm_cell
from .fuse_lstm_step import fuse_lstm_step
from .fuse_matmul_bias import fuse_matmul_bias
from .fuse_muladd import fuse_muladd
from .fuse_product_factor import fuse_dequantize_sum_into_conv, fuse_product_factor
from .fuse_residual import fuse_residual, fuse_residual_after_activation, narrow_padded_residuals
from .fuse_softmax import fuse_softmax, softmax_written_out
from .integer_conv import integer_conv
from .one_hot_gather import one_hot_products_as_gathers
from .pack_block_weights import pack_block_weights
from .pad_conv_channels import pad_conv_channels, pad_matmul_columns, skip_zero_tail_slices
from .quant_roundtrip import drop_quant_roundtrips
from .remove_identity import remove_identity
from .shift_quantized import quantize_in_channel_pad, shift_quantized
from .transposed_as_pixel_shuffle import transposed_as_pixel_shuffle

log = logging.getLogger("wgnn.passes")

Rule = Callable[[Graph], int]

# Order matters within a round: quantized convs become integer ones while their weights' dequantize
# is still in the graph (before constants fold), batch norms fold into convs and biases into matrix
# products before the residual add is fused into them, and the add's activation then lands in the
# same epilogue. Patterns written out op by op (GELU, and a backend's FUSIONS) are recognised
# before ``fuse_activation`` folds their activations into the ops before them, and ``fuse_bounds``
# a Max or Min by one number after those into the same activation.
DEFAULT_RULES: list[Rule] = [pack_block_weights, drop_quant_roundtrips, integer_conv, fold_constants, remove_identity,
                             eliminate_common_subexpressions, drop_exact_casts, shift_quantized, fold_batchnorm,
                             fold_conv_affine, fold_pad_into_conv, chain_spp_pools, merge_concat_slices,
                             one_hot_products_as_gathers,
                             fuse_matmul_bias,
                             fuse_gelu, fuse_hard_swish, fuse_swish, fuse_residual, fuse_activation, fuse_bounds]
# Ops and stores one backend has kernels for: the compute path's layer norm, masked and scaled
# softmax, products that store attention's heads apart, and an LSTM's cell step.
FUSIONS: dict[str, list[Rule]] = {"compute": [fuse_layer_norm, softmax_written_out, fuse_softmax, fold_head_transposes,
                                               fuse_lstm_cell],
                                   "texture": []}
# Rewrites for one backend's kernels, after the fusions above: the compute path's tiled conv runs a
# convolution over one column as one over a row (its tiles lie along rows), a transposed convolution
# whose filter is its stride as a 1x1 convolution and a depth-to-space copy, a slice of a slice as
# one slice (its slices take any steps), takes a scale and shift
# by single numbers after a product's activation into its epilogue (before the channel padding, which
# must know that the padded channels no longer hold zeros), wants channels (and a product's columns)
# in fours (the texture path's texels hold padded channels anyway), an Add after a product's
# activation is its residual (added after the activation), a convolution's residual padded with
# zero channels is read unpadded, a quantized product's int32 bias, cast to float and scale are one
# dequantize_sum, a small tensor's dynamic quantization is one dispatch, a Mul with the Add after
# it (where no product took the Add as its residual) is one muladd, a sum of a tensor times itself
# is one sum of squares, a 1x1 convolution of x times a per-channel gate scales its weights'
# rows instead, and a product's scale computed at run time and its bias after (dynamic
# quantization's) join its epilogue, after the LSTM step has taken its own (a convolution's
# dequantize_sum too), and a network's input quantized only for its channel padding is quantized by
# the pad. (What is left of
# element-wise chains is fused last, after the kernel policy's rewrites: ``fuse_elementwise`` in the
# compute backend's ``prepare``.)
BACKEND_RULES: dict[str, list[Rule]] = {"compute": [columns_as_rows, transposed_as_pixel_shuffle, compose_slices,
                                                     fuse_affine_after_activation,
                                                     pad_conv_channels, pad_matmul_columns, skip_zero_tail_slices,
                                                     fuse_residual_after_activation, narrow_padded_residuals,
                                                     fuse_dequantize_sum, fuse_dynamic_quantize, fuse_muladd,
                                                     fuse_lstm_step, fold_square_into_reduce, fold_channel_scale,
                                                     fuse_product_factor, fuse_dequantize_sum_into_conv,
                                                     quantize_in_channel_pad],
                                        "texture": []}


# Rules one backend runs before all others: the compute path computes a float16 model as float32
# inside (its kernels store and compute alike either way, and the fusions are float32's; the
# texture path has no Cast to put at the edges).
FIRST_RULES: dict[str, list[Rule]] = {"compute": [float32_inside], "texture": []}


def rules_for(backend: str) -> list[Rule]:
    """The rules an optimizing session of ``backend`` runs, in order."""
    fuse = DEFAULT_RULES.index(fuse_residual)
    return (FIRST_RULES[backend] + DEFAULT_RULES[:fuse] + FUSIONS[backend] + DEFAULT_RULES[fuse:]
            + BACKEND_RULES[backend])
# What must run even without optimization: compile-time-only ops have no kernel, nor has batch norm;
# and blocked 4-bit weights stay packed (as a MatMulNBits's do from its import), not 8x the bytes.
REQUIRED_RULES: list[Rule] = [pack_block_weights, fold_constants, decompose_batchnorm]


def optimize(graph: Graph, rules: list[Rule] | None = None, *, max_rounds: int = 20) -> Counter:
    """Apply ``rules`` until none fires; returns {rule name: rewrites}."""
    fired: Counter = Counter()
    for _ in range(max_rounds):
        changed = False
        for rule in rules or DEFAULT_RULES:
            before = len(graph.nodes)
            count = rule(graph)
            if count:
                fired[rule.__name__] += count
                log.debug("%s fired %d times", rule.__name__, count)
                changed = True
            elif len(graph.nodes) != before:  # (nodes a rule added or removed uncounted: integer_conv counts
                # its convolutions, not the shifts and dequantizes it moves)
                changed = True
        if not changed:
            break
    graph.prune()
    return fired


__all__ = ["optimize", "rules_for", "BACKEND_RULES", "DEFAULT_RULES", "FIRST_RULES", "FUSIONS", "REQUIRED_RULES",
           "decompose_batchnorm", "fold_constants", "remove_identity", "fold_batchnorm", "fuse_residual",
           "fuse_activation", "fuse_bounds", "fuse_gelu", "fuse_layer_norm", "fuse_matmul_bias", "fuse_softmax",
           "pad_conv_channels",
           "fold_head_transposes", "eliminate_common_subexpressions", "drop_exact_casts", "shift_quantized",
           "quantize_in_channel_pad",
           "fuse_muladd", "fold_conv_affine", "fuse_hard_swish", "fold_pad_into_conv",
           "skip_zero_tail_slices", "integer_conv", "drop_quant_roundtrips", "narrow_padded_residuals",
           "fuse_affine_after_activation", "transposed_as_pixel_shuffle",
           "compose_slices", "fold_square_into_reduce", "softmax_written_out", "fold_channel_scale",
           "chain_spp_pools", "pack_block_weights", "float32_inside", "fuse_product_factor",
           "fuse_dequantize_sum_into_conv"]
