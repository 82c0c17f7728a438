"""Writing an exported model (model.pt, model.onnx, model.ts) and checking each against the network it
came from on real inputs.

``model.pt`` holds the state dict and the recipe that rebuilds the modules (candidate, genotype, the
backbone search spaces, input shapes, class count, fusion settings); load it with
``harmonic_nas.export.load_model(path)`` (needs this package, not the run). ``model.onnx`` and
``model.ts`` need neither: ONNX Runtime or ``torch.jit.load``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import TypeAdapter, ValidationError
from torch import Tensor, nn

from harmonic_nas import __version__
from harmonic_nas.errors import UserError
from harmonic_nas.hardware.timing import ONNX_OPSET
from harmonic_nas.files import write_bytes
from harmonic_nas.torchfile import FileFormat, serialised

MODEL_FILE = FileFormat("harmonic-nas-model/1", "model file")
TOLERANCE = 1e-4
OUTPUT = "logits"


class ParityError(UserError):
    """An exported model does not compute what the network it came from computes."""


# model.pt ---------------------------------------------------------------------------------------------
def save_pt(net: nn.Module, recipe: dict[str, Any], path: Path) -> None:
    """The state dict (on the CPU) plus the recipe, in one file."""
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    MODEL_FILE.save({"harmonic_nas": __version__, "torch": str(torch.__version__), **recipe, "state_dict": state}, path)


def load_model(path: str | Path, device: torch.device | str = "cpu") -> nn.Module:
    """The ``MultimodalNet`` saved in ``path`` (a model.pt written by ``harmonic-nas export``), in eval mode.

    ``model(*inputs)`` takes one float batch per modality in ``model.modalities`` order (arch.json lists
    them with their shapes) and returns the logits. A file that is not such a model is one UserError line.
    """
    from harmonic_nas.backbones import build_supernet
    from harmonic_nas.config.schema import BackboneSpace
    from harmonic_nas.fusion.discrete import FusionNet, MultimodalNet
    from harmonic_nas.space import Genotype, make_space

    path = Path(path)
    data = MODEL_FILE.load(path)
    try:
        backbones = {}
        for m in data["modalities"]:
            space = TypeAdapter(BackboneSpace).validate_python(data["spaces"][m])
            supernet = build_supernet(space, tuple(data["input_shapes"][m]), data["num_classes"])
            backbones[m] = supernet.extract(make_space(space, m).parse(data["candidate"]["backbones"][m]))
        fusion = FusionNet(Genotype.parse(data["genotype"]), **data["fusion"])
        net = MultimodalNet(backbones, fusion)
        net.load_state_dict(data["state_dict"])
    except (KeyError, ValidationError, RuntimeError, ValueError, UserError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path}: cannot rebuild the model ({type(exc).__name__}: {first})") from None
    return net.to(device).eval()


# ONNX ------------------------------------------------------------------------------------------------
def export_onnx(net: nn.Module, inputs: Sequence[Tensor], names: Sequence[str], path: Path) -> list[str]:
    """``net`` as ONNX (TorchScript exporter, opset 17, one input per modality named after it, output
    ``logits``, batch axis dynamic). Returns the graph's input names: the exporter drops the input of a
    modality the fusion never reads."""
    import onnx

    axes = {name: {0: "batch"} for name in [*names, OUTPUT]}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation on every call
        write_bytes(path, serialised(lambda buffer: torch.onnx.export(
            net.eval(), tuple(inputs), buffer, dynamo=False, opset_version=ONNX_OPSET, input_names=list(names),
            output_names=[OUTPUT], dynamic_axes=axes)))
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    return [i.name for i in model.graph.input]


def onnx_session(path: Path, threads: int = 1) -> Any:
    """An ONNX Runtime CPU session of ``path`` set up as the LUT's onnxruntime measurements are
    (``threads`` intra-op threads, sequential, all graph optimisations, denormals as zero)."""
    import onnxruntime as ort

    from harmonic_nas.hardware.timing import ort_options

    return ort.InferenceSession(str(path), ort_options(threads), providers=["CPUExecutionProvider"])


def onnx_feed(session: Any, names: Sequence[str], inputs: Sequence[Tensor]) -> dict[str, np.ndarray]:
    """The inputs the graph takes, by name (a modality the graph dropped is left out)."""
    arrays = {n: t.detach().cpu().contiguous().numpy() for n, t in zip(names, inputs)}
    return {i.name: arrays[i.name] for i in session.get_inputs()}


def onnx_outputs(path: Path, names: Sequence[str], inputs: Sequence[Tensor]) -> Tensor:
    session = onnx_session(path)
    return torch.from_numpy(session.run(None, onnx_feed(session, names, inputs))[0])


# TorchScript -----------------------------------------------------------------------------------------
def export_torchscript(net: nn.Module, inputs: Sequence[Tensor], path: Path) -> None:
    """``net`` traced on ``inputs`` (eval mode, no grad) and saved for ``torch.jit.load``."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # deprecation and tracer warnings about Python control flow
        traced = torch.jit.trace(net.eval(), tuple(inputs), check_trace=False)
        write_bytes(path, serialised(lambda buffer: torch.jit.save(traced, buffer)))


def torchscript_outputs(path: Path, inputs: Sequence[Tensor]) -> Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = torch.jit.load(str(path), map_location="cpu").eval()
        with torch.no_grad():
            return module(*inputs)


# parity ----------------------------------------------------------------------------------------------
def max_abs_diff(a: Tensor, b: Tensor) -> float:
    if a.shape != b.shape:
        return float("inf")
    return float((a.detach().float().cpu() - b.detach().float().cpu()).abs().max())


def require_parity(what: str, diff: float, samples: int, tolerance: float = TOLERANCE) -> None:
    """A ParityError (one line, exit 2) unless ``diff`` is within ``tolerance``."""
    if not diff <= tolerance:  # also NaN
        raise ParityError(f"{what}: max abs difference {diff:.3g} from the PyTorch model on {samples} val "
                          f"samples, over the {tolerance:g} tolerance")
