"""Elastic supernets: shapes over whole spaces, exact extraction, memory formats, channel sorting with
optimizer state, and the elastic-kernel gradient paths."""

from __future__ import annotations

import copy
import itertools
import random

import pytest
import torch
from torch import nn

from harmonic_nas.backbones import (
    BackboneOutput,
    ElasticMaxout,
    ElasticMBV3,
    build_supernet,
    make_divisible,
)
from harmonic_nas.backbones.common import fused_for_inference
from harmonic_nas.backbones.elastic import ElasticBatchNorm2d
from harmonic_nas.config.schema import MaxoutSpace, MBV3Space, MBV3Stage
from harmonic_nas.errors import UserError
from harmonic_nas.space import BackboneArch, InvalidArchError, MaxoutArch, MBV3Arch

PLAIN = (
    nn.Conv2d, nn.BatchNorm2d, nn.BatchNorm1d, nn.Linear, nn.ReLU, nn.Hardswish, nn.Dropout,
    nn.Sequential, nn.ModuleList,
)


def tiny_space(**kw) -> MBV3Space:
    """2 stages: a stride-1 stage whose first block is residual, a stride-2 SE/hswish stage."""
    return MBV3Space(
        stem_width=8,
        stages=[MBV3Stage(width=8, stride=1), MBV3Stage(width=16, stride=2, se=True, act="hswish")],
        depths=[1, 2], expands=[3, 4], kernels=[3, 5], head_width=16, **kw,
    )


def small_space(**kw) -> MBV3Space:
    """3 stages, default depths/expands/kernels, small widths."""
    stages = [MBV3Stage(width=8), MBV3Stage(width=16, se=True, act="hswish"), MBV3Stage(width=24, act="hswish")]
    return MBV3Space(stem_width=8, stages=stages, head_width=32, **kw)


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN statistics, affine parameters, biases and kernel transforms, so equalities mean something."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
        for name, p in model.named_parameters():
            if "transforms" in name:
                p.add_(torch.randn(p.shape, generator=g) * 0.05)
            elif name.endswith("bias") and p.dim() == 1:
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return model


def close(a: BackboneOutput, b: BackboneOutput, atol: float = 1e-5) -> bool:
    pairs = list(zip(a.taps, b.taps)) + [(a.logits, b.logits)]
    return len(a.taps) == len(b.taps) and all(torch.allclose(x, y, atol=atol, rtol=1e-4) for x, y in pairs)


def all_mbv3_archs(model: ElasticMBV3) -> list[MBV3Arch]:
    """Every distinct network of the (tiny) space."""
    space = model.space
    per_stage = []
    for _ in range(space.num_stages):
        options = []
        for d in space.depths:
            for genes in itertools.product(itertools.product(space.kernels, space.expands), repeat=d):
                pad = [(space.kernels[0], space.expands[0])] * (space.max_depth - d)
                options.append((d, list(genes) + pad))
        per_stage.append(options)
    archs = []
    for combo in itertools.product(*per_stage):
        slots = [g for _, genes in combo for g in genes]
        archs.append(MBV3Arch(ks=[k for k, _ in slots], e=[e for _, e in slots], d=[d for d, _ in combo]))
    return archs


def test_make_divisible() -> None:
    assert [make_divisible(v) for v in (1, 8, 12, 13, 20, 24 * 0.75, 100)] == [8, 8, 16, 16, 24, 24, 104]
    assert make_divisible(11) == 16  # 8 would drop more than 10 %


def test_elastic_batchnorm_matches_plain_bn_on_the_slice() -> None:
    torch.manual_seed(0)
    bn = randomize(ElasticBatchNorm2d(8))
    plain = nn.BatchNorm2d(3)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(plain, name).copy_(getattr(bn, name)[:3])
    before = bn.running_mean.clone()
    x = torch.randn(4, 3, 5, 5) * 2 + 1
    assert torch.allclose(bn(x), plain(x), atol=1e-6)
    assert torch.allclose(bn.running_mean[:3], plain.running_mean, atol=1e-6)
    assert torch.allclose(bn.running_var[:3], plain.running_var, atol=1e-6)
    assert not torch.allclose(bn.running_mean[:3], before[:3])
    assert torch.equal(bn.running_mean[3:], before[3:])  # channels outside the slice untouched
    bn.eval(), plain.eval()
    assert torch.allclose(bn(x), plain(x), atol=1e-6)
    # cumulative average (momentum None, as BN recalibration uses it) on a slice
    bn.train()
    bn.reset_running_stats()
    bn.momentum = None
    batches = [torch.randn(4, 3, 5, 5) + i for i in range(3)]
    for b in batches:
        bn(b)
    mean = torch.stack([b.mean(dim=(0, 2, 3)) for b in batches]).mean(0)
    assert torch.allclose(bn.running_mean[:3], mean, atol=1e-5)


def test_build_supernet_dispatch_and_errors() -> None:
    assert isinstance(build_supernet(tiny_space(), (1, 28, 28), 10), ElasticMBV3)
    net = build_supernet(MaxoutSpace(hidden=[8], blocks=[1], pieces=[2]), (5,), 3)
    assert isinstance(net, ElasticMaxout)
    assert all(callable(getattr(net, name)) for name in ("set_active", "extract", "sort_channels", "tap_channels"))
    with pytest.raises(UserError, match=r"mbv3 backbone takes 2-D inputs shaped \(C, H, W\), found input shape \(300"):
        build_supernet(tiny_space(), (300,), 10)
    with pytest.raises(UserError, match=r"maxout backbone takes vectors shaped \(D,\), found input shape \(1, 28"):
        build_supernet(MaxoutSpace(), (1, 28, 28), 10)
    with pytest.raises(UserError, match="num_classes"):
        build_supernet(MaxoutSpace(), (5,), 0)


def test_an_arch_outside_the_space_never_reaches_the_supernet() -> None:
    """Archs are parsed where they enter (the supernet's space); set_active and extract trust them."""
    net = ElasticMBV3(tiny_space(), 1, 10)
    bad = net.space.max().to_json()
    bad["ks"][1] = 7
    with pytest.raises(InvalidArchError, match=r"ks\[1\] = 7 is not one of \[3, 5\]"):
        net.set_active(net.space.parse(bad))
    with pytest.raises(InvalidArchError, match="pieces"):
        maxout = ElasticMaxout(MaxoutSpace(), 5, 2)
        maxout.set_active(maxout.space.parse({"hidden": 64, "blocks": 1, "pieces": 9, "width_mult": 1.0}))


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_mbv3_shapes_for_every_arch(shape: tuple[int, int, int]) -> None:
    torch.manual_seed(0)
    net = ElasticMBV3(tiny_space(), shape[0], 7).eval()
    archs = all_mbv3_archs(net)
    assert len({net.space.arch_hash(a) for a in archs}) == len(archs) == 400
    x = torch.randn(2, *shape)
    side = shape[1]
    with torch.no_grad():
        for arch in archs:
            net.set_active(arch)
            out = net(x)
            assert [tuple(t.shape) for t in out.taps] == [(2, 8, side, side), (2, 16, side // 2, side // 2)]
            assert out.logits.shape == (2, 7)
            assert net.tap_channels(arch) == [t.shape[1] for t in out.taps]


def test_mbv3_width_mult_and_stride() -> None:
    stages = [MBV3Stage(width=24), MBV3Stage(width=40)]
    cfg = MBV3Space(stem_width=16, stem_stride=2, stages=stages, width_mult=0.5, head_width=64)
    net = ElasticMBV3(cfg, 2, 4)
    out = net(torch.randn(1, 2, 64, 48))
    assert [tuple(t.shape) for t in out.taps] == [(1, 16, 16, 12), (1, 24, 8, 6)]
    assert net.classifier.in_features == 32


def test_maxout_shapes_for_every_arch() -> None:
    net = ElasticMaxout(MaxoutSpace(hidden=[8, 16], blocks=[1, 2, 3], pieces=[2, 3]), 10, 4).eval()
    x = torch.randn(3, 10)
    with torch.no_grad():
        for h, n, k in itertools.product([8, 16], [1, 2, 3], [2, 3]):
            arch = MaxoutArch(hidden=h, blocks=n, pieces=k, width_mult=1.0)
            net.set_active(arch)
            out = net(x)
            assert [tuple(t.shape) for t in out.taps] == [(3, h)] * n
            assert out.logits.shape == (3, 4)
            assert net.tap_channels(arch) == [h] * n


def assert_extraction_equal(net: nn.Module, arch: BackboneArch, x: torch.Tensor) -> None:
    static = net.extract(arch)
    for m in static.modules():  # plain torch layers, or the small static containers of the package
        ours = type(m).__module__.startswith("harmonic_nas.backbones.") and "Elastic" not in type(m).__name__
        assert isinstance(m, PLAIN) or ours, type(m)
    assert not any(isinstance(p, nn.Parameter) and p is q for p in static.parameters() for q in net.parameters())
    static.eval()
    net.set_active(arch)
    with torch.no_grad():
        assert close(static(x), net(x)), arch


def test_mbv3_extraction_equals_active_path() -> None:
    torch.manual_seed(0)
    net = randomize(ElasticMBV3(small_space(), 1, 10)).eval()
    rng = random.Random(0)
    x = torch.randn(4, 1, 28, 28)
    archs = [net.space.min(), net.space.max()] + [net.space.sample(rng) for _ in range(20)]
    for arch in archs:
        assert_extraction_equal(net, arch, x)
    # extraction leaves the active subnet alone
    net.set_active(archs[2])
    net.extract(archs[0])
    assert net.active_arch == net.space.parse(archs[2].to_json()) == archs[2]


def test_extracted_subnet_is_smaller_and_standalone() -> None:
    net = ElasticMBV3(small_space(), 1, 10)
    small, big = net.extract(net.space.min()), net.extract(net.space.max())
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(small) < count(big) < count(net)
    assert count(big) + sum(p.numel() for n, p in net.named_parameters() if "transforms" in n) == count(net)
    convs = [m for m in small.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert convs and all(m.kernel_size == (3, 3) for m in convs)


def test_maxout_extraction_equals_active_path() -> None:
    torch.manual_seed(0)
    net = randomize(ElasticMaxout(MaxoutSpace(hidden=[8, 16, 32], blocks=[1, 2, 3], pieces=[2, 3, 4]), 12, 5)).eval()
    x = torch.randn(6, 12)
    rng = random.Random(0)
    for arch in [net.space.min(), net.space.max()] + [net.space.sample(rng) for _ in range(20)]:
        assert_extraction_equal(net, arch, x)


def test_maxout_width_multipliers_shape_every_block_and_extract_exactly() -> None:
    torch.manual_seed(0)
    space = MaxoutSpace(hidden=[8, 16], blocks=[1, 2, 3], pieces=[2, 3], width_multipliers=[0.5, 2.0])
    net = randomize(ElasticMaxout(space, 12, 5)).eval()
    x = torch.randn(6, 12)
    for arch in itertools.product([8, 16], [1, 2, 3], [2, 3], [0.5, 2.0]):
        arch = net.space.parse(dict(zip(("hidden", "blocks", "pieces", "width_mult"), arch)))
        net.set_active(arch)
        with torch.no_grad():
            taps = net(x).taps
        assert [t.shape[1] for t in taps] == net.tap_channels(arch) == [round(arch.hidden * arch.width_mult**i)
                                                                          for i in range(arch.blocks)]
        assert_extraction_equal(net, arch, x)


def test_extraction_keeps_dtype() -> None:
    net = ElasticMBV3(tiny_space(), 1, 3).double().eval()
    static = net.extract(net.space.min()).eval()
    assert all(p.dtype == torch.float64 for p in static.parameters())
    x = torch.randn(2, 1, 12, 12, dtype=torch.float64)
    net.set_active(net.space.min())
    with torch.no_grad():
        assert close(static(x), net(x), atol=1e-10)


def test_channels_last_gives_the_same_output() -> None:
    torch.manual_seed(0)
    net = randomize(ElasticMBV3(small_space(), 3, 10)).eval()
    fast = copy.deepcopy(net).to(memory_format=torch.channels_last)
    assert fast.stages[0][0].depthwise.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 28, 28)
    xc = x.contiguous(memory_format=torch.channels_last)
    rng = random.Random(1)
    with torch.no_grad():
        for arch in [net.space.min(), net.space.max(), net.space.sample(rng)]:
            net.set_active(arch)
            fast.set_active(arch)
            out = fast(xc)
            assert close(net(x), out)
            assert all(t.is_contiguous(memory_format=torch.channels_last) for t in out.taps)  # no format churn
            static = fast.extract(arch).eval().to(memory_format=torch.channels_last)
            assert close(net(x), static(xc))
    fast.train()
    fast.set_active(net.space.min())
    fast(xc).logits.sum().backward()  # the backward runs in channels_last too
    assert fast.stages[0][0].depthwise.weight.grad is not None


def test_trunks_stop_at_the_last_tap_and_share_weights() -> None:
    torch.manual_seed(0)
    mbv3 = randomize(ElasticMBV3(small_space(), 1, 10)).eval()
    maxout = randomize(ElasticMaxout(MaxoutSpace(hidden=[8, 16], blocks=[1, 2, 3], pieces=[2]), 12, 5)).eval()
    for supernet, x in ((mbv3, torch.randn(3, 1, 28, 28)), (maxout, torch.randn(3, 12))):
        static = supernet.extract(supernet.space.max()).eval()
        with torch.no_grad():
            taps = static(x).taps
            for last in range(len(taps)):
                trunk = static.trunk(last)
                out = trunk(x)
                assert len(out) == last + 1 and all(torch.equal(a, b) for a, b in zip(out, taps))
                kept = {id(p) for p in trunk.parameters()}
                assert kept <= {id(p) for p in static.parameters()}  # shared, not copied
        assert len(static.trunk().stages) == len(taps)
        with pytest.raises(ValueError, match="last_tap"):
            static.trunk(len(taps))


def test_fused_for_inference_folds_batchnorm_and_keeps_the_taps() -> None:
    torch.manual_seed(0)
    net = randomize(ElasticMBV3(small_space(), 3, 10)).eval()
    rng = random.Random(2)
    x = torch.randn(4, 3, 28, 28)
    for arch in [net.space.min(), net.space.max(), net.space.sample(rng)]:
        static = net.extract(arch).eval()
        trunk = static.trunk()
        before = {k: v.clone() for k, v in trunk.state_dict().items()}
        fused = fused_for_inference(trunk)
        assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
        assert all(torch.equal(v, trunk.state_dict()[k]) for k, v in before.items())  # the original is untouched
        with torch.no_grad():
            for a, b in zip(trunk(x), fused(x)):
                assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)
            fast = fused_for_inference(trunk.to(memory_format=torch.channels_last))
            xc = x.contiguous(memory_format=torch.channels_last)
            for a, b in zip(trunk(x), fast(xc)):
                assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)


def importance(block) -> torch.Tensor:
    return block.project.weight.detach().abs().sum(dim=(0, 2, 3))


def test_sort_channels_keeps_max_subnet_and_orders_importance() -> None:
    torch.manual_seed(0)
    net = randomize(ElasticMBV3(small_space(), 1, 10)).eval()
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        before_max = net(x)
        net.set_active(net.space.min())
        before_min = net(x)
        assert not all(torch.all(importance(b)[:-1] >= importance(b)[1:]) for s in net.stages for b in s)
        net.sort_channels()
        net.set_active(net.space.max())
        assert close(net(x), before_max)
        net.set_active(net.space.min())
        assert not close(net(x), before_min)  # the narrow subnet now uses other (more important) channels
    for stage in net.stages:
        for block in stage:
            imp = importance(block)
            assert torch.all(imp[:-1] >= imp[1:])
            if block.se_expand is not None:
                se_imp = block.se_expand.weight.abs().sum(dim=(0, 2, 3))
                assert torch.all(se_imp[:-1] >= se_imp[1:])


def adam_step(net: ElasticMBV3, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    opt.zero_grad()
    nn.functional.cross_entropy(net(x).logits, y).backward()
    opt.step()


def test_sort_channels_permutes_adam_state() -> None:
    torch.manual_seed(0)
    net = ElasticMBV3(small_space(dropout=0.0), 1, 10)
    twin = copy.deepcopy(net)
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, weight_decay=1e-4)
    twin_opt = torch.optim.Adam(twin.parameters(), lr=1e-2, weight_decay=1e-4)
    unsorted = copy.deepcopy(net)  # control: sorted without telling the optimizer
    unsorted_opt = torch.optim.Adam(unsorted.parameters(), lr=1e-2, weight_decay=1e-4)
    for _ in range(3):
        for model, optim in ((net, opt), (twin, twin_opt), (unsorted, unsorted_opt)):
            adam_step(model, optim, x, y)
    block, twin_block = net.stages[1][0], twin.stages[1][0]
    order = torch.argsort(importance(twin_block), descending=True, stable=True)
    assert not torch.equal(order, torch.arange(len(order)))
    se_importance = twin_block.se_expand.weight.detach().abs().sum(dim=(0, 2, 3))
    se_order = torch.argsort(se_importance, descending=True, stable=True)
    net.sort_channels(opt)
    unsorted.sort_channels()
    for model, optim in ((net, opt), (twin, twin_opt), (unsorted, unsorted_opt)):
        adam_step(model, optim, x, y)
    state, twin_state = opt.state[block.expand.weight], twin_opt.state[twin_block.expand.weight]
    assert torch.allclose(state["exp_avg"], twin_state["exp_avg"][order], atol=1e-7)
    assert torch.allclose(state["exp_avg_sq"], twin_state["exp_avg_sq"][order], atol=1e-9)
    assert torch.allclose(block.expand.weight, twin_block.expand.weight[order], atol=1e-5)
    assert torch.allclose(block.project.weight, twin_block.project.weight[:, order], atol=1e-5)
    assert torch.allclose(block.se_expand.bias, twin_block.se_expand.bias[order], atol=1e-5)
    se_state, twin_se_state = opt.state[block.se_reduce.bias], twin_opt.state[twin_block.se_reduce.bias]
    assert torch.allclose(se_state["exp_avg"], twin_se_state["exp_avg"][se_order], atol=1e-7)
    for model in (net, twin, unsorted):
        model.eval()
    with torch.no_grad():
        assert close(net(x), twin(x), atol=1e-4)
        assert not close(unsorted(x), twin(x), atol=1e-4)


def test_kernel_transforms_get_gradients() -> None:
    torch.manual_seed(0)
    net = ElasticMBV3(small_space(), 1, 10)
    block = net.stages[0][0].depthwise
    assert set(block.transforms.keys()) == {"7to5", "5to3"}
    x = torch.randn(2, 1, 16, 16)
    for ks, expect in ((3, {"7to5", "5to3"}), (5, {"7to5"}), (7, set())):
        net.zero_grad(set_to_none=True)
        arch = net.space.max().model_copy(update={"ks": (ks,) * net.space.num_slots})
        net.set_active(arch)
        net(x).logits.square().sum().backward()
        got = {k for k, p in block.transforms.items() if p.grad is not None and p.grad.abs().sum() > 0}
        assert got == expect


def test_identity_transforms_give_centre_crops() -> None:
    conv = ElasticMBV3(small_space(), 1, 10).stages[0][0].depthwise
    with torch.no_grad():
        assert torch.equal(conv.kernel(8, 5), conv.weight[:8, :, 1:6, 1:6])
        assert torch.equal(conv.kernel(8, 3), conv.weight[:8, :, 2:5, 2:5])
        assert torch.equal(conv.kernel(8, 7), conv.weight[:8])


@pytest.mark.parametrize("ks", [3, 5, 7])
def test_gradient_reaches_stored_kernel_for_every_size(ks: int) -> None:
    torch.manual_seed(0)
    net = ElasticMBV3(small_space(), 1, 10)
    arch = net.space.max().model_copy(update={"ks": (ks,) * net.space.num_slots, "e": (3.0,) * net.space.num_slots})
    net.set_active(arch)
    net(torch.randn(2, 1, 16, 16)).logits.square().sum().backward()
    block = net.stages[0][0]
    grad = block.depthwise.weight.grad
    mid, lo = block.mid, (7 - ks) // 2
    inside = torch.zeros_like(grad, dtype=torch.bool)
    inside[:mid, :, lo : lo + ks, lo : lo + ks] = True
    assert grad[inside].abs().min() > 0  # every weight of the active kernel is trained
    assert grad[~inside].abs().max() == 0  # nothing outside it (crop border, inactive channels)
