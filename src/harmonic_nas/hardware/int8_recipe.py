"""What an ``onnxruntime-int8`` LUT entry means, torch-free: the quantization recipe and how each layer is
run. The LUT header stores it (``LutHeader.layer_recipe``), so that a table made with another recipe (an
earlier release timed each layer with float boundaries and with the exporter's shared zero biases, which
left a convolution per layer in float) is never resumed, merged or searched with as if it meant the same
thing."""

from __future__ import annotations

from harmonic_nas.config.schema import INT8_RUNTIME

RECIPE = ("static post-training INT8 quantization (onnxruntime.quantization, QDQ, per-channel int8 weights, "
          "uint8 activations, MinMax calibration, every weight and bias its own tensor)")
LAYER_CALIBRATION_INPUTS = 8  # seeded random inputs of a single layer's shape
CALIBRATION_SEED = 0
LAYER_RECIPE = (f"{RECIPE} calibrated on {LAYER_CALIBRATION_INPUTS} seeded standard-normal inputs per layer; "
                "each layer cut to uint8 inputs and outputs, as it runs inside a whole INT8 model")


def layer_recipe(runtime: str) -> str | None:
    """The recipe a LUT of ``runtime`` is profiled with (None: the layer runs as the runtime runs a model)."""
    return LAYER_RECIPE if runtime == INT8_RUNTIME else None
