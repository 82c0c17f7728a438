"""The fusion operator names a config may list, without importing torch (``config check`` stays fast).

The builtin operators are the paper's Table 2; ``harmonic_nas.fusion.register_operator`` adds the name of
every operator it registers, so a config naming a user's operator is valid once the module defining it
has been imported, and a misspelt name is one error line when the config is read.
"""

from __future__ import annotations

BUILTIN_OPERATORS = ("sum", "attention", "linear_glu", "concat_fc", "squeeze_excitation", "concat_mish")
_names: dict[str, None] = dict.fromkeys(BUILTIN_OPERATORS)


def operator_names() -> tuple[str, ...]:
    """Every known operator name: the builtin ones, then the registered ones in registration order."""
    return tuple(_names)


def add_operator_name(name: str) -> None:
    """Make ``name`` a valid entry of ``fusion.operators`` (``fusion.register_operator`` calls it)."""
    _names[name] = None
