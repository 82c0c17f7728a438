"""Compact text of ids and numbers for the report's tables (an arch describes itself: ``table_fields``)."""

from __future__ import annotations

from typing import Any

ID_CHARS = 8  # short ids: a prefix of the ids `harmonic-nas status` prints


def short_id(key: str) -> str:
    """Candidate hash prefix; a backbone key "<modality>:<hash>" keeps only the hash."""
    return key.split(":", 1)[-1][:ID_CHARS]


def metric(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def seconds(value: float | None) -> str:
    """1 h 02 min, 3 min 05 s, 12.3 s."""
    if value is None:
        return "–"
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(int(round(value)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def modalities_text(evaluation: Any, sep: str = "+") -> str:
    """The modalities a model reads, e.g. "image+audio" ("-" if unknown); a table cell passes ``sep="\n"``."""
    return sep.join(evaluation.modalities_used) or "-"


def points(a: float | None, b: float | None) -> str:
    """``a - b`` in signed percentage points, e.g. "+24.8"; "-" when either is unknown."""
    return "-" if a is None or b is None else f"{100 * (a - b):+.1f}"


def points_lost(evaluation: Any, modality: str) -> str:
    """Test points a multimodal model loses with ``modality``'s features shuffled across samples, e.g. "-52.1"
    (about 0: wired in but not relied on); "-" before the test metrics."""
    return points(evaluation.test_shuffled.get(modality), evaluation.test_metric)


def shuffled_text(evaluation: Any) -> str:
    """:func:`points_lost` of every modality, e.g. "image -52.1, audio -0.3"; "-" before the test metrics."""
    if evaluation.test_metric is None or not evaluation.test_shuffled:
        return "-"
    return ", ".join(f"{m} {points_lost(evaluation, m)}" for m in evaluation.test_shuffled)


def fusion_gain(front: list[Any], backbones: list[Any]) -> str | None:
    """How far the most accurate model of the front that reads two or more modalities is above the best
    unimodal backbone (both scored on the val score part), val and test."""
    if not front or not backbones:
        return None
    fused_models = [e for e in front if len(e.modalities_used) >= 2]
    if not fused_models:
        return "no Pareto model reads two or more modalities: no fusion gain to report"
    fused, single = max(fused_models, key=lambda e: e.val_metric), max(backbones, key=lambda e: e.val_metric)

    def pair(e: Any) -> str:
        return f"val {e.val_metric:.4f} / test " + ("-" if e.test_metric is None else f"{e.test_metric:.4f}")

    lost = shuffled_text(fused)
    return (f"best multimodal {short_id(fused.key)} [{modalities_text(fused)}] ({pair(fused)}) vs best unimodal {single.modality} "
            f"{short_id(single.key)} ({pair(single)}): "
            f"{points(fused.val_metric, single.val_metric)} points val, "
            f"{points(fused.test_metric, single.test_metric)} points test"
            + ("" if lost == "-" else f"; test points it loses with a modality shuffled: {lost}"))

