"""A quantized single layer cut at its boundaries, so that ONNX Runtime runs it the way it runs inside a
whole INT8 model: fed uint8 activations and returning uint8 activations.

Why: quantized alone (QDQ), a layer takes a float input, quantizes it, and dequantizes its output back to
float; a whole INT8 model pays those conversions once, at its own input and output, and keeps the
activations in uint8 between layers, where ORT fuses each DequantizeLinear -> op -> QuantizeLinear into
one INT8 kernel. Timed with its float boundaries, the demo space's layers summed to about 2x the whole
models and ranked them differently (BENCHMARKS.md, "Every runtime and protocol"). So the leading
QuantizeLinear of each input is dropped (its output becomes a uint8 graph input with the same scale and
zero point) and the trailing DequantizeLinear of each output too (its uint8 input becomes the graph
output). Where the layer's first op works in float, mid-model it is fed by a DequantizeLinear of the
previous layer's uint8 output, and where its last op is float, its output is quantized before the next
layer reads it: both conversions are real cost inside a whole model, so the cut adds them (with a fixed
scale: the time of a conversion does not depend on it) rather than dropping them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from onnx import ValueInfoProto

# Scale and zero point of a boundary conversion the quantizer did not calibrate (a float op at the edge).
BOUNDARY_SCALE = 1.0 / 32.0
BOUNDARY_ZERO_POINT = 128


@dataclass(frozen=True)
class CutLayer:
    """The cut ONNX model and its feed (uint8 arrays by input name)."""

    model: bytes
    feed: dict[str, np.ndarray]


def cut_boundaries(model: bytes, feed: Mapping[str, np.ndarray]) -> CutLayer:
    """``model`` (a QDQ-quantized layer with float inputs ``feed`` by name) with uint8 inputs and outputs
    (see the module docstring); the feed is ``feed`` quantized with each input's scale and zero point."""
    import onnx
    from onnx import helper, numpy_helper

    graph_model = onnx.load_from_string(model)
    graph = graph_model.graph
    constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    producers = {out: node for node in graph.node for out in node.output}
    added: list[onnx.NodeProto] = []

    def boundary_constants(tensor: str) -> tuple[str, str]:
        scale, zero_point = f"{tensor}_boundary_scale", f"{tensor}_boundary_zero_point"
        graph.initializer.extend([numpy_helper.from_array(np.array(BOUNDARY_SCALE, np.float32), scale),
                                  numpy_helper.from_array(np.array(BOUNDARY_ZERO_POINT, np.uint8), zero_point)])
        constants[scale], constants[zero_point] = np.float32(BOUNDARY_SCALE), np.uint8(BOUNDARY_ZERO_POINT)
        return scale, zero_point

    inputs, cut_feed = [], {}
    for value in graph.input:
        if value.name in constants:  # an initializer listed as an input by an older exporter
            inputs.append(value)
            continue
        users = consumers.get(value.name, [])
        quantizer = next((n for n in users if n.op_type == "QuantizeLinear" and n.input[0] == value.name), None)
        if quantizer is not None:
            graph.node.remove(quantizer)
            name, (scale, zero_point) = quantizer.output[0], quantizer.input[1:3]
        else:
            name, (scale, zero_point) = f"{value.name}_quantized", boundary_constants(value.name)
        if any(n is not quantizer for n in users):  # float ops read it: mid-model a DequantizeLinear feeds them
            added.append(helper.make_node("DequantizeLinear", [name, scale, zero_point], [value.name]))
        inputs.append(_uint8_like(value, name))
        cut_feed[name] = _quantize(feed[value.name], constants[scale], constants[zero_point])

    outputs = []
    for value in graph.output:
        producer = producers.get(value.name)
        if producer is not None and producer.op_type == "DequantizeLinear" and value.name not in consumers:
            graph.node.remove(producer)
            name = producer.input[0]
        else:  # a float op ends the layer: mid-model its output is quantized for the next layer
            name = f"{value.name}_quantized"
            graph.node.append(helper.make_node("QuantizeLinear", [value.name, *boundary_constants(value.name)], [name]))
        outputs.append(_uint8_like(value, name))

    nodes = added + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.input[:]
    graph.input.extend(inputs)
    del graph.output[:]
    graph.output.extend(outputs)
    onnx.checker.check_model(graph_model)
    return CutLayer(graph_model.SerializeToString(), cut_feed)


def _uint8_like(value: ValueInfoProto, name: str) -> ValueInfoProto:
    """A graph input/output named ``name`` of ``value``'s shape, typed uint8."""
    from onnx import TensorProto, helper

    dims = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in value.type.tensor_type.shape.dim]
    return helper.make_tensor_value_info(name, TensorProto.UINT8, dims)


def _quantize(array: np.ndarray, scale: np.ndarray, zero_point: np.ndarray) -> np.ndarray:
    """``array`` quantized as QuantizeLinear does it (per tensor, round half to even, saturated to uint8)."""
    return np.clip(np.rint(array / scale) + zero_point.astype(np.int32), 0, 255).astype(np.uint8)
