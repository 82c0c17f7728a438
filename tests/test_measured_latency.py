"""What export prints about a measured latency: the raw ratio to the prediction, the machine's drift taken
out by the calibration's reference model, and whether the machine had to be waited for."""

from harmonic_nas.model_manifest import MeasuredLatency, agreement


def measured(latency_ms: float, reference_ms: float | None = None, attempts: int = 1) -> MeasuredLatency:
    return MeasuredLatency(runtime="torch", threads=1, batch_size=1, latency_ms=latency_ms, latency_std_ms=0.0,
                           energy_mj=0.0, energy_source="estimated", repeats=50, lut_device="cpu", method="m",
                           reference_ms=reference_ms, reference_calibration_ms=None if reference_ms is None else 2.0,
                           attempts=attempts)


def test_without_a_reference_only_the_raw_ratio_is_said() -> None:
    assert measured(3.0).versus(2.0) == "measured/predicted 1.50"


def test_the_reference_takes_the_machines_slowdown_out() -> None:
    text = measured(3.0, reference_ms=2.4).versus(2.5)  # machine 1.2x slower: 3.0 / 1.2 = 2.5
    assert text.startswith("measured/predicted 1.20; reference model 1.20x its calibration time, so 1.00 ")
    assert "measurements" not in text


def test_a_retried_measurement_says_whether_the_machine_came_back() -> None:
    back = measured(2.0, reference_ms=2.04, attempts=3).versus(2.0)
    assert "(after 2 measurements with the machine slower than then)" in back
    assert "(after 1 measurement with the machine" in measured(2.0, reference_ms=2.0, attempts=2).versus(2.0)
    never = measured(2.6, reference_ms=2.6, attempts=5).versus(2.0)
    assert "(5 measurements, the machine more than 5% slower in all)" in never


def test_the_export_step_counts_models_within_ten_percent_both_ways() -> None:
    pairs = [(measured(2.0, reference_ms=2.0), 2.0), (measured(3.0, reference_ms=2.6), 2.5)]  # 1.20 raw, 1.04 out
    assert agreement(pairs) == ("latency: 1 of 2 measured within +-10% of their prediction, 2 of 2 with the "
                                "machine's drift taken out (reference model 1.00-1.30x its calibration time)")
    assert agreement([(measured(2.0), 2.1)]) == "latency: 1 of 1 measured within +-10% of their prediction"


def test_the_line_says_which_way_the_machine_moved_when_every_reference_did() -> None:
    """A profile step measured in a slow period (the 2026-12-05 07:05 demo: references 0.55-0.64x) reads high
    everywhere; a machine slow at export reads low; a mixed or steady one says neither."""
    slow_then = agreement([(measured(3.0, reference_ms=1.2), 5.0), (measured(2.5, reference_ms=1.1), 4.6)])
    assert slow_then.endswith("; the LUT was measured while this machine ran slower than now, so its predictions "
                              "read high (all alike: the search's ranking holds)")
    slow_now = agreement([(measured(3.0, reference_ms=2.5), 2.5)])
    assert slow_now.endswith("; this machine runs slower now than when the LUT was measured: export again when "
                             "it is steady")
    mixed = agreement([(measured(2.0, reference_ms=1.2), 3.3), (measured(2.0, reference_ms=2.0), 2.0)])
    assert mixed.endswith("its calibration time)")
