"""Harmonic-NAS: hardware-aware multimodal neural architecture search."""

__version__ = "0.1.0"
