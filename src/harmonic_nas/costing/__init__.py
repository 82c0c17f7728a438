"""Costing whole networks from the LUT: which layers a space and a candidate run (catalog), the cost model
(cost), profiling a device into a LUT (profiler) and checking the LUT against measured whole models
(validate). It sits above backbones and fusion, whose layer specs it puts together; ``hardware`` below
them keeps the layer specs' keys, the LUT file, timing and energy meters."""
