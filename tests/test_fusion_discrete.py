"""Discrete fusion network of a genotype: only live parts built, warm start from the search, end-to-end
equality with the cached-feature path, layer specs that cover every layer, builder, diagram."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from helpers import OPS, image_supernet, thumb_supernet

from harmonic_nas.errors import UserError
from harmonic_nas.fusion.diagram import genotype_dot, write_diagram
from harmonic_nas.fusion.dense import DenseFusionNet
from harmonic_nas.fusion.discrete import FusionNet, MultimodalNet, build_fusion, load_fusion, save_fusion
from harmonic_nas.fusion.features import FeatureCache, FeatureSettings, prepared_backbone
from harmonic_nas.fusion.search_net import FusionSearchNet, pair_distribution
from harmonic_nas.backbones.specs import tap_shapes
from harmonic_nas.fusion.specs import build_layer, fusion_layer_specs
from harmonic_nas.hardware.specs import LayerSpec
from harmonic_nas.space import InvalidArchError
from harmonic_nas.space import Genotype, MaxoutArch

# Taps 0, 1 (image), 2, 3 (thumb). Cell 0 is read by no one: dead. Cell 1 (node 0 dead: node 1 reads
# X and Y directly) and cell 2 form the output; cell 2 reads cell 1 (index 5) and thumb tap 1.
RAW = {
    "taps": [["image", 0], ["image", 1], ["thumb", 0], ["thumb", 1]],
    "cells": [
        {"inputs": [0, 2], "nodes": [{"inputs": [0, 1], "op": "attention"}, {"inputs": [0, 2], "op": "sum"}]},
        {"inputs": [1, 2], "nodes": [{"inputs": [0, 1], "op": "linear_glu"}, {"inputs": [0, 1], "op": "concat_fc"}]},
        {"inputs": [3, 5], "nodes": [{"inputs": [0, 1], "op": "squeeze_excitation"}, {"inputs": [1, 2], "op": "concat_mish"}]},
    ],
}
GENOTYPE = Genotype.parse(RAW)
CHANNELS = [8, 16, 16, 16]
THUMB = MaxoutArch(hidden=16, blocks=2, pieces=2, width_mult=1.0)


def test_live_parts_of_a_genotype() -> None:
    live = GENOTYPE.live
    assert live.cells == (1, 2)
    assert live.nodes == ((), (1,), (0, 1))
    assert live.taps == (1, 2, 3)


def test_genotype_validation_names_the_problem() -> None:
    assert Genotype.parse(RAW, OPS) == GENOTYPE and GENOTYPE.to_json() == RAW
    bad_cell = {**RAW, "cells": [{"inputs": [2, 1], "nodes": [{"inputs": [0, 1], "op": "sum"}]}]}
    with pytest.raises(InvalidArchError, match=r"cells\[0\].inputs = \[2, 1\]"):
        Genotype.parse(bad_cell)
    bad_node = {**RAW, "cells": [{"inputs": [0, 1], "nodes": [{"inputs": [0, 2], "op": "sum"}]}]}
    with pytest.raises(InvalidArchError, match=r"nodes\[0\].inputs = \[0, 2\] must be two indices i < j below 2"):
        Genotype.parse(bad_node)
    with pytest.raises(InvalidArchError, match="op must be one of"):
        Genotype.parse(RAW, ["sum"])
    with pytest.raises(InvalidArchError, match="unknown key 'extra'"):
        Genotype.parse({**RAW, "extra": 1})


def test_only_live_parts_are_built_and_unused_taps_may_be_none() -> None:
    net = FusionNet(GENOTYPE, CHANNELS, channels=8, length=4, num_classes=10, dropout=0.1).eval()
    assert sorted(net.projections) == ["1", "2", "3"] and sorted(net.cells) == ["1", "2"]
    assert sorted(net.cells["1"].nodes) == ["1"]
    taps = [None, torch.randn(3, 16, 4), torch.randn(3, 16), torch.randn(3, 16)]
    assert net(taps).shape == (3, 10)


def test_warm_start_copies_the_searched_weights_of_the_kept_parts() -> None:
    torch.manual_seed(0)
    search = FusionSearchNet(CHANNELS, 3, 2, OPS, 8, 4, 10, 0.1)
    net = FusionNet.from_search(search, GENOTYPE, CHANNELS, 8, 4, 10, 0.1)
    assert torch.equal(net.projections["3"].conv.weight, search.projections[3].conv.weight)
    assert torch.equal(net.cells["2"].nodes["1"].conv.weight, search.cells[2].nodes[1].ops["concat_mish"].conv.weight)
    assert torch.equal(net.head.classifier.weight, search.head.classifier.weight)


def test_multimodal_net_equals_fusion_on_cached_features(mnist_pair: Any) -> None:
    supernets = {"image": image_supernet(), "thumb": thumb_supernet()}
    archs = {"image": supernets["image"].space.max(), "thumb": THUMB}
    settings = FeatureSettings(length=4, calib_samples=256, channels_last=False)
    cache = FeatureCache(settings)
    cached = [t[:40] for m in ("image", "thumb") for t in cache.get(m, supernets[m], archs[m], mnist_pair, ["val"])["val"]]
    torch.manual_seed(1)
    fusion = FusionNet(GENOTYPE, CHANNELS, 8, 4, 10, 0.1).eval()
    backbones = {m: prepared_backbone(supernets[m], archs[m], m, mnist_pair, settings) for m in ("thumb", "image")}
    model = MultimodalNet(backbones, fusion).eval()
    assert model.modalities == ["image", "thumb"]
    val = mnist_pair.split("val").inputs
    with torch.no_grad():
        end_to_end = model(torch.from_numpy(val["image"][:40]), torch.from_numpy(val["thumb"][:40]))
        on_features = fusion(cached)
    assert torch.allclose(end_to_end, on_features, atol=1e-5)


EARLY = Genotype.parse({"taps": RAW["taps"], "cells": [{"inputs": [0, 2], "nodes": [{"inputs": [0, 1], "op": "concat_fc"}]}]})


@pytest.mark.parametrize("genotype", [GENOTYPE, EARLY], ids=["last-taps", "first-taps"])
def test_multimodal_net_runs_backbones_only_up_to_the_last_tap_read(genotype: dict[str, Any]) -> None:
    image, thumb = image_supernet(), thumb_supernet()
    backbones = {"image": image.extract(image.space.max()).eval(),
                 "thumb": thumb.extract(THUMB).eval()}
    torch.manual_seed(2)
    fusion = FusionNet(genotype, CHANNELS, 8, 4, 10, 0.1).eval()
    model = MultimodalNet(backbones, fusion).eval()
    inputs = {"image": torch.randn(5, 1, 28, 28), "thumb": torch.randn(5, 49)}
    with torch.no_grad():
        full = {m: backbones[m](x).taps for m, x in inputs.items()}  # every backbone's whole forward, as before
        before = fusion([full[m][s] for m, s in genotype.taps])
        after = model(inputs["image"], inputs["thumb"])
    assert torch.equal(after, before)
    kept = {id(p) for p in model.parameters()}
    image_net, thumb_net = backbones["image"], backbones["thumb"]
    heads = [*image_net.head.parameters(), *image_net.classifier.parameters(), *thumb_net.classifier.parameters()]
    assert heads and not any(id(p) in kept for p in heads)
    last = 1 if genotype is GENOTYPE else 0
    assert len(model.backbones["image"].stages) == len(model.backbones["thumb"].stages) == last + 1
    later = [*image_net.stages[last + 1:].parameters(), *thumb_net.blocks[last + 1:].parameters()]
    assert not any(id(p) in kept for p in later)
    trunk_params = sum(p.numel() for m in ("image", "thumb") for p in model.backbones[m].parameters())
    assert sum(p.numel() for p in model.parameters()) == trunk_params + sum(p.numel() for p in fusion.parameters())


def test_saved_fusion_rebuilds_alone(tmp_path: Any) -> None:
    torch.manual_seed(0)
    net = FusionNet(GENOTYPE, CHANNELS, 8, 4, 10, 0.1).eval()
    save_fusion(net, tmp_path / "f.pt")
    back = load_fusion(tmp_path / "f.pt")
    taps = [None, torch.randn(3, 16, 4), torch.randn(3, 16), torch.randn(3, 16)]
    assert back.genotype == GENOTYPE and torch.equal(back(taps), net(taps))
    torch.save({"format": "other"}, tmp_path / "g.pt")
    with pytest.raises(UserError, match="not a harmonic-nas fusion file"):
        load_fusion(tmp_path / "g.pt")


def test_layer_specs_cover_every_layer_of_the_derived_network() -> None:
    image, thumb = image_supernet(), thumb_supernet()
    archs = {"image": image.space.min(), "thumb": THUMB}
    shapes = {"image": tap_shapes(image, archs["image"], (1, 28, 28)), "thumb": tap_shapes(thumb, archs["thumb"], (49,))}
    assert shapes == {"image": [(8, 14, 14), (16, 7, 7)], "thumb": [(16,), (16,)]}
    specs = fusion_layer_specs(GENOTYPE, shapes, channels=8, length=4, num_classes=10)
    ops = [s.op for s in specs]
    assert ops == ["fusion_proj"] * 3 + ["fusion_concat_fc", "fusion_cell_norm",
                                         "fusion_squeeze_excitation", "fusion_concat_mish", "fusion_cell_norm",
                                         "fusion_out_norm", "fusion_classifier"]
    assert specs[0].input_shape == (16, 7, 7) and specs[1].input_shape == (16,)
    assert specs[-1] == LayerSpec("fusion_classifier", (2 * 8 * 4,), out=10)
    net = FusionNet(GENOTYPE, CHANNELS, 8, 4, 10, 0.1)
    built = [build_layer(spec, batch_size=2) for spec in specs]
    # Same layers, so the same parameters (counted per layer, as the LUT costs them).
    assert sum(p.numel() for m, _ in built for p in m.parameters()) == sum(p.numel() for p in net.parameters())
    for (module, inputs), spec in zip(built, specs):
        out = module(*inputs)
        assert not module.training and out.shape[0] == 2, spec
    with pytest.raises(ValueError, match="not a fusion layer spec"):
        build_layer(LayerSpec("conv", (3, 8, 8), out=4))


def test_diagram_dot_text(tmp_path: Any) -> None:
    dot = genotype_dot(GENOTYPE, title="demo")
    assert dot.startswith("digraph fusion {") and dot.rstrip().endswith("}")
    assert 't0 [label="image 0", shape=ellipse, style="dashed"' in dot  # unused tap drawn dashed
    assert 'c2n1 [label="concat_mish"];' in dot
    assert "t3 -> c2n0;" in dot and "c1_out -> c2n0;" in dot  # cell 2 fuses thumb tap 1 with cell 1
    assert "c2n0 -> c2n1;" in dot and "c2n1 -> c2_out;" in dot
    assert "c1_out -> head;" in dot and "c2_out -> head;" in dot and "c0_out -> head" not in dot
    assert dot.count("{") == dot.count("}")
    written = write_diagram(GENOTYPE, tmp_path / "fusion.dot")
    assert written[0].read_text() == genotype_dot(GENOTYPE)


# FB+FF's dense fusion ----------------------------------------------------------------------------------------
DENSE = Genotype.dense_over({"image": 2, "thumb": 2}, 2, 2, OPS, 2)


def test_dense_genotype_is_the_whole_hypernet() -> None:
    assert Genotype.parse(DENSE.to_json(), OPS) == DENSE and DENSE.macro == (2, 2)
    live = DENSE.live
    assert live.taps == (0, 1, 2, 3) and live.cells == (0, 1) and live.nodes == ((0, 1), (0, 1))
    with pytest.raises(InvalidArchError, match="dense.operators"):
        Genotype.parse(DENSE.to_json(), ["sum"])


def test_dense_fusion_trains_its_weights_with_every_pair_and_operator_weighted_alike(tmp_path: Any) -> None:
    torch.manual_seed(0)
    net = build_fusion(DENSE, CHANNELS, 8, 4, 10, 0.1)
    assert isinstance(net, DenseFusionNet) and net.genotype == DENSE and net.live == DENSE.live
    assert all(not p.requires_grad and not p.any() for p in net.arch_parameters())
    assert torch.allclose(net.op_probs(), torch.full((2, 2, len(OPS)), 1 / len(OPS)))
    pairs = pair_distribution(net.alpha[0], net.cell_masks[0])  # uniform over the cross-modal pairs
    assert pairs[0, 1] == 0 and pairs[2, 3] == 0 and torch.allclose(pairs[0, 2], pairs[1, 3])
    taps = [torch.randn(6, 8, 4), torch.randn(6, 16, 4), torch.randn(6, 16), torch.randn(6, 16)]
    before = [p.detach().clone() for p in net.weight_parameters()]
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-2)
    torch.nn.functional.cross_entropy(net.train()(taps), torch.arange(6)).backward()
    opt.step()
    assert all(not p.any() for p in net.arch_parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, net.weight_parameters()))
    save_fusion(net.eval(), tmp_path / "dense.pt")
    back = load_fusion(tmp_path / "dense.pt")
    assert isinstance(back, DenseFusionNet) and torch.equal(back(taps), net(taps))


def test_dense_fusion_is_costed_as_all_of_it_runs() -> None:
    shapes = {"image": [(8, 14, 14), (16, 7, 7)], "thumb": [(16,), (16,)]}
    ops = [s.op for s in fusion_layer_specs(DENSE, shapes, channels=8, length=4, num_classes=10)]
    assert ops.count("fusion_proj") == 4 and ops.count("fusion_cell_norm") == 2
    assert all(ops.count(f"fusion_{op}") == 2 * 2 for op in OPS)
    assert ops[-2:] == ["fusion_out_norm", "fusion_classifier"]
