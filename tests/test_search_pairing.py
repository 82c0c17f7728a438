"""Which candidates stage 1 sends to stage 2: the population's own genomes first (with their own macro),
survivor pairs only for the free slots, nothing evaluated twice."""

from __future__ import annotations

from harmonic_nas.search.pairing import stage2_candidates
from harmonic_nas.space import BackboneArch, Candidate, Macro
from harmonic_nas.space.encoding import stable_hash


class Named(BackboneArch):
    """A backbone arch known by a name alone: pairing only reads the backbones' keys."""

    id: str


def cand(image: str, audio: str, cells: int, nodes: int = 1) -> Candidate:
    return Candidate(backbones={"image": Named(id=image), "audio": Named(id=audio)}, macro=Macro(cells=cells, nodes=nodes))


def bkey(modality: str, arch: Named) -> str:
    return f"{modality}:{arch.id}"


def key(candidate: Candidate) -> str:
    return stable_hash(candidate.to_json())


def choose(population: list[Candidate], survivors: dict[str, list[str]], slots: int,
           evaluated: set[str] = frozenset()) -> list[Candidate]:  # type: ignore[assignment]
    return stage2_candidates(population, survivors, bkey, key, slots, set(evaluated))


SURVIVORS = {"image": ["image:i0", "image:i1", "image:i2"], "audio": ["audio:a0", "audio:a1", "audio:a2"]}


def test_a_candidate_whose_backbones_survive_goes_as_itself_with_its_own_macro() -> None:
    population = [cand("i0", "a9", 1), cand("i2", "a0", 4), cand("i0", "a2", 2), cand("i7", "a1", 3)]
    chosen = choose(population, SURVIVORS, 2)
    # own genomes: (i2, a0) rank sum 2 and (i0, a2) rank sum 2; (i0, a9) and (i7, a1) lost a backbone
    assert chosen == [cand("i2", "a0", 4), cand("i0", "a2", 2)]
    # rank position alone would have paired i0 with a0, a genome no one evolved, with i0's owner's macro


def test_free_slots_pair_the_unused_survivors_rank_by_rank() -> None:
    population = [cand("i0", "a9", 1), cand("i1", "a1", 2), cand("i9", "a0", 3), cand("i2", "a2", 4)]
    chosen = choose(population, SURVIVORS, 3)
    assert chosen[:2] == [cand("i1", "a1", 2), cand("i2", "a2", 4)]  # own genomes, best rank sum first
    # i0 and a0 are the survivors left: paired, with the macro of the candidate holding the best-ranked one
    # (a tie at rank 0: the first modality, image, whose owner is the first candidate)
    assert chosen[2] == cand("i0", "a0", 1)


def test_evaluated_candidates_take_no_slot_and_nothing_repeats() -> None:
    population = [cand("i0", "a0", 1), cand("i1", "a1", 2), cand("i1", "a1", 2)]
    elite = key(cand("i0", "a0", 1))
    survivors = {"image": ["image:i0", "image:i1"], "audio": ["audio:a0", "audio:a1"]}
    # (i1, a1) once; the pair of the unused survivors (i0, a0) with i0's macro is the elite itself: skipped
    assert choose(population, survivors, 3, {elite}) == [cand("i1", "a1", 2)]


def test_fewer_survivors_than_slots_gives_fewer_candidates() -> None:
    survivors = {"image": ["image:i0"], "audio": ["audio:a0"]}
    assert choose([cand("i0", "a1", 1), cand("i1", "a0", 2)], survivors, 2) == [cand("i0", "a0", 1)]
