"""Architecture spaces: encoding, hashing, validation and the genetic operators."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from harmonic_nas.config.schema import MaxoutSpace, MBV3Space, MBV3Stage
from harmonic_nas.errors import UserError
from harmonic_nas.space import (
    InvalidArchError,
    MaxoutArchSpace,
    MBV3ArchSpace,
    canonical_json,
    make_space,
    stable_hash,
)


@pytest.fixture
def mbv3() -> MBV3ArchSpace:
    cfg = MBV3Space(stages=[MBV3Stage(width=16), MBV3Stage(width=24), MBV3Stage(width=32)])
    return make_space(cfg, "image")  # type: ignore[return-value]


@pytest.fixture
def maxout() -> MaxoutArchSpace:
    return make_space(MaxoutSpace(), "text")  # type: ignore[return-value]


def test_canonical_json_sorts_keys_and_normalises_numbers() -> None:
    assert canonical_json({"b": 3.0, "a": [1, 2.5, (4,)]}) == '{"a":[1,2.5,[4]],"b":3}'
    assert canonical_json({"x": 3}) == canonical_json({"x": 3.0})
    assert stable_hash({"x": 3, "y": [1.0]}) == stable_hash({"y": [1], "x": 3.0})
    assert stable_hash({"x": 3}) != stable_hash({"x": 3.5})
    assert len(stable_hash({})) == 16 and int(stable_hash({}), 16) >= 0
    with pytest.raises(ValueError):
        canonical_json(float("nan"))
    with pytest.raises(TypeError):
        canonical_json({1: 2})


def test_stable_hash_is_the_same_in_another_process() -> None:
    arch = {"ks": [3, 5], "e": [3.0, 4.5], "d": [2]}
    code = f"from harmonic_nas.space import stable_hash; print(stable_hash({arch!r}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == stable_hash(arch)


def test_json_round_trip(mbv3: MBV3ArchSpace, maxout: MaxoutArchSpace) -> None:
    rng = random.Random(1)
    for space in (mbv3, maxout):
        for _ in range(20):
            arch = space.sample(rng)
            back = space.parse(json.loads(canonical_json(arch.to_json())))
            assert back == arch
            assert space.arch_hash(back) == space.arch_hash(arch)


def test_mbv3_layout_min_max(mbv3: MBV3ArchSpace) -> None:
    assert mbv3.num_slots == 12 and mbv3.max_depth == 4
    assert mbv3.min().to_json() == {"ks": [3] * 12, "e": [3.0] * 12, "d": [2] * 3}
    assert mbv3.max().to_json() == {"ks": [7] * 12, "e": [6.0] * 12, "d": [4] * 3}
    assert mbv3.parse(mbv3.min()) == mbv3.min()
    assert mbv3.parse(mbv3.min().to_json()) == mbv3.min()


def test_mbv3_validate_normalises_types(mbv3: MBV3ArchSpace) -> None:
    arch = {"ks": [7.0] * 12, "e": [6] * 12, "d": (4.0, 4, 4)}
    clean = mbv3.parse(arch)
    assert clean == mbv3.max()
    assert all(type(k) is int for k in clean.ks) and all(type(e) is float for e in clean.e)
    assert all(type(d) is int for d in clean.d)
    assert clean.ks is not arch["ks"]  # a copy, never the caller's lists


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda a: a.__setitem__("ks", a["ks"][:4] + [9] + a["ks"][5:]), "ks[4] = 9 is not one of [3, 5, 7]"),
        (lambda a: a["e"].__setitem__(0, 5.0), "e[0] = 5.0 is not one of [3.0, 4.0, 6.0]"),
        (lambda a: a["d"].__setitem__(2, 1), "d[2] = 1 is not one of [2, 3, 4]"),
        (lambda a: a["d"].__setitem__(1, True), "d[1] = True is not one of [2, 3, 4]"),
        (lambda a: a["ks"].__setitem__(3, "7"), "ks[3] = '7' is not one of [3, 5, 7]"),
        (lambda a: a.__setitem__("ks", a["ks"][:-1]), "ks has 11 values, expected 12"),
        (lambda a: a.__setitem__("d", [2, 2, 2, 2]), "d has 4 values, expected 3 (one per stage)"),
        (lambda a: a.__setitem__("e", 4.0), "e must be a list of 12 values"),
        (lambda a: a.pop("d"), "missing key 'd'"),
        (lambda a: a.__setitem__("w", [1]), "unknown key 'w'"),
    ],
)
def test_mbv3_validate_rejects(mbv3: MBV3ArchSpace, edit, message: str) -> None:
    arch = mbv3.max().to_json()
    edit(arch)
    with pytest.raises(InvalidArchError) as info:
        mbv3.parse(arch)
    assert str(info.value).startswith("arch 'image': ")
    assert message in str(info.value)
    assert isinstance(info.value, UserError)


def test_validate_rejects_non_dict(mbv3: MBV3ArchSpace, maxout: MaxoutArchSpace) -> None:
    with pytest.raises(InvalidArchError, match="expected a dict with keys \\['d', 'e', 'ks'\\], found list"):
        mbv3.parse([1, 2])
    with pytest.raises(InvalidArchError, match="found NoneType"):
        maxout.parse(None)


def test_mbv3_hash_ignores_inactive_slots(mbv3: MBV3ArchSpace) -> None:
    a = mbv3.max().to_json()
    a["d"] = [2, 3, 4]
    b = json.loads(json.dumps(a))
    b["ks"][mbv3.slot(0, 2)] = 3  # stage 0 runs 2 blocks: slots 2, 3 are inactive
    b["e"][mbv3.slot(0, 3)] = 3.0
    b["ks"][mbv3.slot(1, 3)] = 5
    assert a != b
    assert mbv3.arch_hash(mbv3.parse(a)) == mbv3.arch_hash(mbv3.parse(b))
    assert mbv3.normalize(mbv3.parse(a)) == mbv3.normalize(mbv3.parse(b))
    c = json.loads(json.dumps(a))
    c["ks"][mbv3.slot(0, 1)] = 3  # active slot: a different network
    assert mbv3.arch_hash(mbv3.parse(a)) != mbv3.arch_hash(mbv3.parse(c))
    c = json.loads(json.dumps(a))
    c["d"][0] = 3
    assert mbv3.arch_hash(mbv3.parse(a)) != mbv3.arch_hash(mbv3.parse(c))


def test_mbv3_hashes_of_samples_are_distinct(mbv3: MBV3ArchSpace) -> None:
    rng = random.Random(0)
    archs = [mbv3.sample(rng) for _ in range(200)]
    hashes = {mbv3.arch_hash(a) for a in archs}
    networks = {canonical_json(mbv3.normalize(a).to_json()) for a in archs}
    assert len(hashes) == len(networks) > 190


def test_sample_covers_choices(mbv3: MBV3ArchSpace) -> None:
    rng = random.Random(3)
    archs = [mbv3.sample(rng) for _ in range(100)]
    for a in archs:
        assert mbv3.parse(a.to_json()) == a
    assert {k for a in archs for k in a.ks} == {3, 5, 7}
    assert {e for a in archs for e in a.e} == {3.0, 4.0, 6.0}
    assert {d for a in archs for d in a.d} == {2, 3, 4}


def test_mbv3_mutate(mbv3: MBV3ArchSpace) -> None:
    rng = random.Random(5)
    base = mbv3.min()
    assert mbv3.mutate(base, rng, 0.0) == base
    changed = 0
    for _ in range(50):
        child = mbv3.mutate(base, rng, 0.4)
        assert mbv3.parse(child.to_json()) == child
        changed += child != base
    assert changed > 40
    assert base == mbv3.min()  # parent untouched
    # with prob 1 every slot is redrawn: over many draws, every gene position changes at least once
    seen = [set() for _ in range(12)]
    for _ in range(40):
        child = mbv3.mutate(base, rng, 1.0)
        for j, k in enumerate(child.ks):
            seen[j].add(k)
    assert all(len(s) == 3 for s in seen)


def test_mbv3_crossover_swaps_whole_slots(mbv3: MBV3ArchSpace) -> None:
    rng = random.Random(7)
    a, b = mbv3.min(), mbv3.max()
    swapped_any = False
    for _ in range(20):
        x, y = mbv3.crossover(a, b, rng)
        assert mbv3.parse(x.to_json()) == x and mbv3.parse(y.to_json()) == y
        for j in range(mbv3.num_slots):
            # (k, e) travel together and the children are complementary
            assert (x.ks[j], x.e[j]) in {(3, 3.0), (7, 6.0)}
            assert {(x.ks[j], x.e[j]), (y.ks[j], y.e[j])} == {(3, 3.0), (7, 6.0)}
        for s in range(3):
            assert {x.d[s], y.d[s]} == {2, 4}
        swapped_any |= x != a
    assert swapped_any
    assert a == mbv3.min() and b == mbv3.max()


def test_maxout_space(maxout: MaxoutArchSpace) -> None:
    assert maxout.min().to_json() == {"hidden": 64, "blocks": 1, "pieces": 2, "width_mult": 1.0}
    assert maxout.max().to_json() == {"hidden": 256, "blocks": 3, "pieces": 4, "width_mult": 1.0}
    parsed = maxout.parse({"hidden": 128.0, "blocks": 2, "pieces": 2, "width_mult": 1.0})
    assert parsed.to_json() == {"hidden": 128, "blocks": 2, "pieces": 2, "width_mult": 1.0}
    with pytest.raises(InvalidArchError, match=r"arch 'text': pieces = 5 is not one of \[2, 3, 4\]"):
        maxout.parse({"hidden": 128, "blocks": 2, "pieces": 5, "width_mult": 1.0})
    with pytest.raises(InvalidArchError, match="missing key 'blocks'"):
        maxout.parse({"hidden": 128, "pieces": 2, "width_mult": 1.0})
    with pytest.raises(InvalidArchError, match="unknown key 'depth'"):
        maxout.parse({"hidden": 128, "blocks": 2, "pieces": 2, "width_mult": 1.0, "depth": 1})
    rng = random.Random(0)
    archs = [maxout.sample(rng) for _ in range(60)]
    assert len({maxout.arch_hash(a) for a in archs}) == len({canonical_json(a.to_json()) for a in archs}) > 15
    for a in archs[:20]:
        child = maxout.mutate(a, rng, 0.5)
        assert maxout.parse(child.to_json()) == child
        x, y = maxout.crossover(a, maxout.max(), rng)
        for f in ("hidden", "blocks", "pieces"):
            assert {getattr(x, f), getattr(y, f)} == {getattr(a, f), getattr(maxout.max(), f)}
    assert maxout.mutate(archs[0], rng, 0.0) == archs[0]


def test_maxout_width_multiplier_is_the_authors_factor_multiplier() -> None:
    """Each next block's width is multiplied (their best: 128 units, 2 blocks, multiplier 2 -> 128, 256);
    one block never applies it, so those archs are one network with one hash."""
    space = MaxoutArchSpace(MaxoutSpace(hidden=[64, 128], blocks=[1, 2, 3], pieces=[4], width_multipliers=[0.5, 1, 2]))
    assert space.parse({"hidden": 128, "blocks": 2, "pieces": 4, "width_mult": 2}).widths() == [128, 256]
    assert space.parse({"hidden": 64, "blocks": 3, "pieces": 4, "width_mult": 0.5}).widths() == [64, 32, 16]
    assert space.parse({"hidden": 128, "blocks": 2, "pieces": 4, "width_mult": 2}).short_text() == "u128-256p4"
    assert space.parse({"hidden": 64, "blocks": 1, "pieces": 4, "width_mult": 0.5}).short_text() == "u64p4"
    one = {"hidden": 64, "blocks": 1, "pieces": 4}
    assert space.arch_hash(space.parse({**one, "width_mult": 2})) == space.arch_hash(space.parse({**one, "width_mult": 0.5}))
    assert space.normalize(space.parse({**one, "width_mult": 2})).width_mult == 0.5
    two = {"hidden": 64, "blocks": 2, "pieces": 4}
    assert space.arch_hash(space.parse({**two, "width_mult": 2})) != space.arch_hash(space.parse({**two, "width_mult": 1}))


def test_the_renamed_maxout_gene_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="'factors' is now 'pieces'.*'width_multipliers'"):
        MaxoutSpace.model_validate({"type": "maxout", "factors": [2, 3]})


def test_make_space_dispatch() -> None:
    assert isinstance(make_space(MaxoutSpace()), MaxoutArchSpace)
    space = make_space(MBV3Space(stages=[MBV3Stage(width=8)]))
    assert isinstance(space, MBV3ArchSpace) and space.name == "mbv3"
    with pytest.raises(UserError, match="unknown backbone space type"):
        make_space(object())  # type: ignore[arg-type]


def test_space_does_not_import_torch() -> None:
    code = "import sys, harmonic_nas.space; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
