"""Which multimodal candidates stage 1 sends to stage 2, given the backbones that survived the unimodal cut.

The population's candidates are the genomes crossover and mutation act on, so a candidate whose every
backbone survives goes to stage 2 as itself, with its own macro gene (C, D); the best-ranked such
candidates (lowest sum of their backbones' survival ranks) come first. Pairing the i-th survivor of each
modality instead, as stage 1 once did, evaluated genomes the search never made: inside one front the order
is arbitrary (the most accurate image backbone could meet the least accurate audio one), an elite pair was
split apart again in the next generation, and (C, D) followed the first modality alone.

Only the slots the population's own candidates leave free are filled by pairing survivors, rank by rank
among the survivors no chosen candidate uses (so every surviving backbone is tried in stage 2 when there
are slots for it), each pair with the macro of the population candidate that holds its best-ranked
backbone. Candidates already evaluated (the elites kept from earlier generations, which keep their pairing)
take no slot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from harmonic_nas.space.candidate import Candidate
from harmonic_nas.space.fusion import Macro
from harmonic_nas.space.values import BackboneArch

BackboneKey = Callable[[str, BackboneArch], str]


def stage2_candidates(
    population: Sequence[Candidate],
    survivors: Mapping[str, Sequence[str]],
    backbone_key: BackboneKey,
    candidate_key: Callable[[Candidate], str],
    slots: int,
    evaluated: set[str],
) -> list[Candidate]:
    """Up to ``slots`` new candidates for stage 2 (see the module docstring).

    ``survivors``: per modality, the surviving backbones' keys best first; ``backbone_key(modality, arch)``
    and ``candidate_key(candidate)`` give the store keys; ``evaluated``: candidate keys stored by earlier generations.
    """
    rank = {m: {key: r for r, key in enumerate(keys)} for m, keys in survivors.items()}

    def ranks(candidate: Candidate) -> list[int] | None:
        found = [rank[m].get(backbone_key(m, arch)) for m, arch in candidate.backbones.items()]
        return None if any(r is None for r in found) else found  # type: ignore[return-value]

    chosen: list[Candidate] = []
    taken = set(evaluated)
    own = [(r, i, c) for i, c in enumerate(population) if (r := ranks(c)) is not None]
    for _, _, candidate in sorted(own, key=lambda item: (sum(item[0]), max(item[0]), item[1])):
        key = candidate_key(candidate)
        if len(chosen) < slots and key not in taken:
            taken.add(key)
            chosen.append(candidate)
    return chosen + _fill(population, rank, backbone_key, candidate_key, slots - len(chosen), chosen, taken)


def _fill(
    population: Sequence[Candidate],
    rank: Mapping[str, Mapping[str, int]],
    backbone_key: BackboneKey,
    candidate_key: Callable[[Candidate], str],
    slots: int,
    chosen: Sequence[Candidate],
    taken: set[str],
) -> list[Candidate]:
    """Pairs of the survivors no chosen candidate uses, rank by rank."""
    if slots <= 0:
        return []
    archs: dict[str, BackboneArch] = {}  # backbone key -> arch
    owner: dict[str, Macro] = {}  # backbone key -> macro of the first candidate holding it
    for candidate in population:
        for m, arch in candidate.backbones.items():
            key = backbone_key(m, arch)
            archs.setdefault(key, arch)
            owner.setdefault(key, candidate.macro)
    used = {backbone_key(m, arch) for c in chosen for m, arch in c.backbones.items()}
    free = {m: [key for key in ranked if key not in used] for m, ranked in rank.items()}  # best first
    filled: list[Candidate] = []
    for i in range(min((len(keys) for keys in free.values()), default=0)):
        if len(filled) >= slots:
            break
        keys = {m: free[m][i] for m in free}
        best = min(keys, key=lambda m: rank[m][keys[m]])  # ties: the first modality
        candidate = Candidate(backbones={m: archs[key] for m, key in keys.items()}, macro=owner[keys[best]])
        key = candidate_key(candidate)
        if key not in taken:
            taken.add(key)
            filled.append(candidate)
    return filled
