"""Hardware awareness: layer specs and their LUT keys, lookup tables, energy meters."""

from harmonic_nas.hardware.lut import LookupTable, LutEntry, LutHeader, MissingLutEntryError, import_lut
from harmonic_nas.hardware.lut_writer import LutWriter
from harmonic_nas.hardware.meters import EnergyMeter, EstimatedEnergy, detect_meter
from harmonic_nas.hardware.specs import LayerSpec, lut_key

__all__ = [
    "EnergyMeter",
    "EstimatedEnergy",
    "LayerSpec",
    "LookupTable",
    "LutEntry",
    "LutHeader",
    "LutWriter",
    "MissingLutEntryError",
    "detect_meter",
    "import_lut",
    "lut_key",
]
