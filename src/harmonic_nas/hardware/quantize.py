"""INT8 on ONNX Runtime: static post-training quantization of an ONNX model, one recipe shared by the
per-layer runner (``profile --runtime onnxruntime-int8`` and its ``--validate``) and ``export --format
onnx-int8``, so that the LUT prices the layers the way the exported model runs them (a single layer then
cut to uint8 inputs and outputs, as a whole model runs it: ``int8_boundaries``; the recipe's text, which the
LUT header records, is in ``int8_recipe``).

Why this recipe (onnxruntime.quantization.quantize_static): the QDQ format, so that ORT fuses each
Quantize/Dequantize pair into an INT8 kernel where it has one and leaves every other op in float (an op
it fails to quantize is left in float too; ``Quantized.float_ops`` names them); per-channel int8
weights, because the depthwise convolutions of these networks have very different ranges per channel and
one scale per tensor flattens the small ones to zero; uint8 activations with int8 weights (U8S8), ORT's choice for
x86, whose VNNI instructions (AVX512-VNNI here) take exactly that pair; MinMax calibration on a fixed,
seeded set of inputs, so that quantizing the same network twice gives the same model.
"""

from __future__ import annotations

import logging
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import Tensor, nn

from harmonic_nas.errors import UserError
from harmonic_nas.hardware.int8_boundaries import cut_boundaries
from harmonic_nas.hardware.int8_recipe import CALIBRATION_SEED, LAYER_CALIBRATION_INPUTS
from harmonic_nas.hardware.timing import Runner, onnx_bytes, session_runner

# Graph plumbing that carries no arithmetic: never reported as left in float.
_PLUMBING = {"Constant", "Identity", "Shape", "Cast", "QuantizeLinear", "DequantizeLinear"}
# Op types ORT 1.32 is known to fail on here (a LayerNorm over (C, L): per-channel weights of two axes),
# tried first when a graph fails: every fusion network has one, and each try re-runs the calibration.
_FAILS_FIRST = ("LayerNormalization",)

Feed = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class Quantized:
    """An INT8 model (serialised ONNX) and the op types of its float graph that run in float between the
    quantized ops (ORT has no INT8 kernel for them, or failed to quantize them)."""

    model: bytes
    float_ops: tuple[str, ...]


@dataclass(frozen=True)
class Int8Runner:
    """A runner (call it) of a quantized layer or model, with the op types it runs in float (the
    profiler records them in the layer's LUT entry)."""

    run: Runner
    float_ops: tuple[str, ...]

    def __call__(self) -> object:
        return self.run()


class _Feeds:
    """The calibration inputs as onnxruntime's CalibrationDataReader protocol (``get_next`` until None)."""

    def __init__(self, feeds: Sequence[Feed]) -> None:
        self._feeds: Iterator[Feed] = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        feed = next(self._feeds, None)
        return None if feed is None else dict(feed)


def graph_inputs(model: bytes) -> list[str]:
    """The input names of the ONNX ``model`` (the exporter drops an input the network never reads)."""
    import onnx

    graph = onnx.load_from_string(model).graph
    initializers = {i.name for i in graph.initializer}
    return [i.name for i in graph.input if i.name not in initializers]


def _quantizable() -> set[str]:
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    return set(QDQRegistry) | set(QLinearOpsRegistry)


def quantize(model: bytes, calibration: Sequence[Feed], what: str) -> Quantized:
    """``model`` (float ONNX) quantized to INT8 with this module's recipe, calibrated on ``calibration``
    (feeds by input name). When ORT fails on the whole graph, each op type it could quantize is tried
    left in float in turn (ORT 1.32 fails on a LayerNormalization over two axes with per-channel weights);
    the op type that had to stay float is then among ``float_ops``. A model ORT cannot quantize at all is
    one UserError line naming ``what``."""
    import onnx

    if not calibration:
        raise UserError(f"cannot quantize {what} to INT8: no calibration inputs")
    model = own_parameters(model)
    nodes = onnx.load_from_string(model).graph.node
    present = {n.op_type for n in nodes}
    quantizable = _quantizable()
    float_ops = present - quantizable - _PLUMBING
    with tempfile.TemporaryDirectory(prefix="harmonic-nas-int8-") as tmp:
        source = Path(tmp) / "float.onnx"
        source.write_bytes(model)
        try:
            return Quantized(_quantize_static(source, calibration, []), tuple(sorted(float_ops)))
        except Exception as exc:  # ORT raises bare exceptions of many kinds; the user needs which model and why
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            failure = f"{type(exc).__name__}: {first}"
        candidates = sorted(present & quantizable, key=lambda op: (op not in _FAILS_FIRST, op))
        for op in candidates:
            try:
                excluded = [n.name for n in nodes if n.op_type == op]
                return Quantized(_quantize_static(source, calibration, excluded), tuple(sorted(float_ops | {op})))
            except Exception:  # noqa: S112 (the next op type may be the one ORT fails on)
                continue
    raise UserError(f"cannot quantize {what} to INT8 ({failure})")


def own_parameters(model: bytes) -> bytes:
    """``model`` with a copy of every initializer that several node inputs read (directly or through an
    Identity of it) for each further reader, and those Identity nodes bypassed.

    Why: the ONNX exporter merges equal initializers, e.g. the zero biases BatchNorm folds into every
    convolution of an untrained layer or random model of one width; the quantizer then gives that shared bias
    one scale, which fits one convolution only, and ORT runs the others in float between a dequantize and a
    quantize (a depthwise convolution in every mbconv layer, 12-14 of 50 convolutions in a random whole
    model). A trained network has no equal biases, so its export fuses every convolution: this makes the
    profiled layers and the validation's random models run as trained ones do, and leaves a trained export as
    it was."""
    import onnx
    from onnx import numpy_helper

    parsed = onnx.load_from_string(model)
    graph = parsed.graph
    constants = {i.name: i for i in graph.initializer}
    aliases = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity" and n.input[0] in constants}
    copies: Counter[str] = Counter()
    for node in graph.node:
        for i, name in enumerate(node.input):
            source = aliases.get(name, name)
            if node.op_type == "Identity" or source not in constants:
                continue
            node.input[i] = source
            if copies[source]:  # the first reader keeps the initializer, each further one gets a copy
                own = numpy_helper.from_array(numpy_helper.to_array(constants[source]), f"{source}_own{copies[source]}")
                graph.initializer.append(own)
                node.input[i] = own.name
            copies[source] += 1
    read = {name for n in graph.node for name in n.input} | {o.name for o in graph.output}
    kept = [n for n in graph.node if not (n.op_type == "Identity" and n.output[0] in aliases and n.output[0] not in read)]
    del graph.node[:]
    graph.node.extend(kept)
    return parsed.SerializeToString()


def _quantize_static(source: Path, calibration: Sequence[Feed], exclude: list[str]) -> bytes:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    target = source.with_name("int8.onnx")
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # it advises pre-processing on the root logger, once per model
    try:
        quantize_static(str(source), str(target), _Feeds(calibration), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        nodes_to_exclude=exclude)
    finally:
        logging.disable(previous)
    return target.read_bytes()


def random_calibration(feed: Feed, n: int = LAYER_CALIBRATION_INPUTS, seed: int = CALIBRATION_SEED) -> list[Feed]:
    """``n`` seeded standard-normal inputs of ``feed``'s shapes: the calibration of a single layer, whose
    real inputs depend on the network around it."""
    rng = np.random.default_rng(seed)
    return [{k: rng.standard_normal(v.shape).astype(v.dtype) for k, v in feed.items()} for _ in range(n)]


def int8_runner(module: nn.Module, batch: Sequence[Tensor], threads: int, inside_model: bool = False) -> Int8Runner:
    """A runner of ``module`` exported to ONNX, quantized (calibrated on seeded random inputs of the
    batch's shapes) and run by ONNX Runtime on the CPU with ``threads`` threads. ``inside_model``: a
    single layer as a whole INT8 model runs it, cut to uint8 inputs and outputs (``int8_boundaries``)."""
    names = [f"input{i}" for i in range(len(batch))]
    model = onnx_bytes(module, batch, names)
    arrays = {n: t.detach().cpu().numpy() for n, t in zip(names, batch)}
    used = {n: arrays[n] for n in graph_inputs(model)}
    quantized = quantize(model, random_calibration(used), type(module).__name__)
    model, feed = quantized.model, used
    if inside_model:
        cut = cut_boundaries(model, used)
        model, feed = cut.model, cut.feed
    return Int8Runner(session_runner(model, feed, threads, ["CPUExecutionProvider"]), quantized.float_ops)
