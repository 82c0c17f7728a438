"""Hardware awareness: layer specs and their LUT keys, lookup tables, energy meters."""
