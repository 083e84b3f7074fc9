"""genlib.flows: invertibility, log-determinants against autograd, normalisation, training dry runs."""
import itertools
import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch.autograd.functional import jacobian

from genlib import data, flows, metrics
from genlib.train import fit


def _randomize(module: torch.nn.Module, seed: int = 0, scale: float = 0.3) -> torch.nn.Module:
    """Give every parameter random values (the zero-initialised conditioners start as identities,
    which would make the tests pass trivially)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def _bijections(D: int = 6):
    mask = flows.make_mask("half", D, 0)
    act = flows.ActNorm(D)
    act.initialized.fill_(True)
    return {
        "warp": flows.MonotoneWarp(D, n_bumps=3),
        "affine": flows.AffineCoupling(mask, hidden=16),
        "affine-flipped": flows.AffineCoupling(1 - mask, hidden=16),
        "additive": flows.AffineCoupling(mask, hidden=16, additive=True),
        "actnorm": act,
        "maf": flows.MaskedAutoregressive(D, hidden=(12,)),
        "iaf-random-order": flows.MaskedAutoregressive(
            D, hidden=(12, 10), order=torch.randperm(D, generator=torch.Generator().manual_seed(5)), inverse=True),
    }


BIJECTIONS = list(_bijections())


@pytest.fixture(params=BIJECTIONS)
def bijection(request):
    layer = _randomize(_bijections()[request.param]).double().eval()
    return request.param, layer


def test_inverse_undoes_forward_and_back(bijection):
    name, layer = bijection
    x = torch.randn(32, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    z, _ = layer(x)
    assert not torch.allclose(z, x), f"{name} should not be the identity"
    assert torch.allclose(layer.inverse(z)[0], x, atol=1e-9), name
    assert torch.allclose(layer(layer.inverse(x)[0])[0], x, atol=1e-9), name


def test_log_det_matches_autograd_jacobian(bijection):
    name, layer = bijection
    x = torch.randn(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    _, log_det = layer(x)
    _, inv_log_det = layer.inverse(x)
    for i in range(len(x)):
        J = jacobian(lambda v: layer(v.unsqueeze(0))[0].squeeze(0), x[i])  # (D, D) ∂z/∂x
        J_inv = jacobian(lambda v: layer.inverse(v.unsqueeze(0))[0].squeeze(0), x[i])  # ∂x/∂z at z = x[i]
        assert torch.allclose(log_det[i], torch.linalg.slogdet(J)[1], atol=1e-8), name
        assert torch.allclose(inv_log_det[i], torch.linalg.slogdet(J_inv)[1], atol=1e-6), name


def test_logit_is_a_bijection_with_its_jacobian():
    layer = flows.Logit(0.05)
    y = torch.rand(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    s, log_det = layer(y)
    assert torch.allclose(layer.inverse(s)[0], y, atol=1e-12)
    for i in range(len(y)):
        J = jacobian(lambda v: layer(v.unsqueeze(0))[0].squeeze(0), y[i])
        assert torch.allclose(log_det[i], torch.linalg.slogdet(J)[1], atol=1e-10)
    assert torch.allclose(layer.inverse(s)[1], -log_det, atol=1e-10)


def test_coupling_jacobian_is_triangular_after_reordering():
    D = 6
    mask = flows.make_mask("half", D, 0)
    layer = _randomize(flows.AffineCoupling(mask, hidden=16)).double().eval()
    x = torch.randn(D, dtype=torch.float64)
    J = jacobian(lambda v: layer(v.unsqueeze(0))[0].squeeze(0), x)
    kept, changed = mask.bool(), ~mask.bool()
    assert torch.allclose(J[kept][:, kept], torch.eye(int(kept.sum()), dtype=torch.float64))
    assert torch.all(J[kept][:, changed] == 0)  # kept outputs ignore the changed inputs
    assert torch.allclose(J[changed][:, changed], torch.diag(torch.diagonal(J[changed][:, changed])))
    assert J[changed][:, kept].abs().sum() > 0  # the changed outputs do depend on the kept inputs


def test_whole_flow_log_det_matches_autograd_on_images():
    config = flows.FlowConfig(n_layers=3, hidden=16, dropout=0.0)
    model = flows.Flow(config)
    x = data.digits("train").x[:8].float() / 17 + 0.02
    model.train()
    model(x)  # initialise ActNorm from a batch
    _randomize(model.layers[2:], seed=5, scale=0.05)
    model = model.double().eval()
    y = x.double()
    z, log_det = model(y)
    J = jacobian(lambda v: model(v.unsqueeze(0))[0].squeeze(0), y[0])
    assert torch.allclose(log_det[0], torch.linalg.slogdet(J)[1], atol=1e-7)
    assert torch.allclose(model.inverse(z)[0], y, atol=1e-9)


def test_toy_flow_density_integrates_to_one_on_a_grid():
    torch.manual_seed(0)
    model = _randomize(flows.Flow(flows.FlowConfig.toy(n_layers=4, hidden=16, actnorm=False)), scale=0.2)
    model = model.double().eval()
    n, lim = 400, 9.0
    xs = torch.linspace(-lim, lim, n, dtype=torch.float64)
    gx, gy = torch.meshgrid(xs, xs, indexing="ij")
    points = torch.stack([gx.flatten(), gy.flatten()], 1)
    with torch.no_grad():
        density = model.log_prob(points).exp()
    cell = (xs[1] - xs[0]) ** 2
    assert abs(float(density.sum() * cell) - 1) < 1e-3
    # breaking the log-det (dropping it) breaks normalisation
    with torch.no_grad():
        wrong = flows.std_normal_log_prob(model(points)[0]).exp()
    assert abs(float(wrong.sum() * cell) - 1) > 1e-2


def test_one_dimensional_flow_matches_the_analytic_change_of_variables():
    # z = logit(α + (1 − 2α) y), z ~ N(0, 1): p(y) = N(z) (1 − 2α) / (p (1 − p)), a logit-normal
    alpha = 0.1
    model = flows.Flow(layers=[flows.Logit(alpha)])
    y = torch.linspace(0.01, 0.99, 50, dtype=torch.float64).unsqueeze(1)
    p = alpha + (1 - 2 * alpha) * y.squeeze(1).numpy()
    expected = stats.norm.logpdf(np.log(p / (1 - p))) + np.log(1 - 2 * alpha) - np.log(p * (1 - p))
    assert np.allclose(model.log_prob(y).numpy(), expected, atol=1e-10)
    # a monotone warp with no bumps is affine: x ~ N(−b/a, 1/a²)
    warp = flows.MonotoneWarp(1, n_bumps=1)
    with torch.no_grad():
        warp.log_a.fill_(math.log(2.0)), warp.b.fill_(1.0), warp.raw_gamma.fill_(-50.0)
    x = torch.linspace(-3, 3, 20, dtype=torch.float64).unsqueeze(1)
    got = flows.Flow(layers=[warp.double()]).log_prob(x).detach().numpy()
    assert np.allclose(got, stats.norm(-0.5, 0.5).logpdf(x.squeeze(1).numpy()), atol=1e-8)


def test_monotone_warp_density_integrates_to_one():
    warp = _randomize(flows.MonotoneWarp(1, n_bumps=4), seed=7, scale=1.0).double()
    x = torch.linspace(-40, 40, 200001, dtype=torch.float64).unsqueeze(1)
    with torch.no_grad():
        p = flows.Flow(layers=[warp]).log_prob(x).exp().squeeze()
    assert abs(float(torch.trapezoid(p, x.squeeze())) - 1) < 1e-4


def test_image_log_prob_is_the_dequantisation_bound():
    config = flows.FlowConfig(n_layers=2, hidden=16, dropout=0.0)
    model = _randomize(flows.Flow(config), scale=0.05).eval()
    x = data.digits("test").x[:5]
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    got = model.log_prob(x, generator=g1)
    y = (x.float() + torch.rand(x.shape, generator=g2)) / 17
    assert torch.allclose(got, model.log_density(y) - 64 * math.log(17), atol=1e-5)
    assert torch.allclose(got, metrics.discrete_log_prob(model.log_density(y), 64, 17), atol=1e-5)


def test_bound_is_below_the_exact_discrete_probability_in_one_dimension():
    # D = 1 warp, levels = 4: exact P(x) = F(f((x+1)/L)) - F(f(x/L)), against E_u[log p] - log L
    torch.manual_seed(0)
    warp = _randomize(flows.MonotoneWarp(1, n_bumps=2), seed=3, scale=0.5).double()
    L = 4
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), 1.0)
    for x in range(L):
        lo, hi = torch.tensor([[x / L]], dtype=torch.float64), torch.tensor([[(x + 1) / L]], dtype=torch.float64)
        with torch.no_grad():
            exact = torch.log(normal.cdf(warp(hi)[0]) - normal.cdf(warp(lo)[0])).item()
            u = torch.linspace(0, 1, 20001, dtype=torch.float64)[1:-1].unsqueeze(1)
            bound = (flows.Flow(layers=[warp]).log_prob((x + u) / L).mean() - math.log(L)).item()
        assert bound <= exact + 1e-9


def test_inputs_and_configs_are_validated():
    model = flows.Flow(flows.FlowConfig(n_layers=1, hidden=8))
    with pytest.raises(ValueError, match="integers 0..16"):
        model.log_prob(torch.full((2, 64), 17))
    with pytest.raises(ValueError, match=r"shape \(batch, 64\)"):
        model.log_prob(torch.zeros(2, 63, dtype=torch.long))
    with pytest.raises(ValueError, match="unknown coupling"):
        flows.FlowConfig(coupling="spline")
    with pytest.raises(ValueError, match="checkerboard"):
        flows.FlowConfig(dims=10, shape=None)
    with pytest.raises(ValueError, match="n_layers"):
        flows.FlowConfig(n_layers=0)
    with pytest.raises(ValueError, match="alpha"):
        flows.FlowConfig(alpha=0.5)
    toy = flows.Flow(flows.FlowConfig.toy(n_layers=1, hidden=8))
    with pytest.raises(ValueError, match="NaN"):
        toy.log_prob(torch.tensor([[0.0, float("nan")]]))


def test_masks_alternate_and_keep_half():
    a, b = (flows.make_mask("checkerboard", 64, k, (8, 8)) for k in (0, 1))
    assert a.sum() == 32 and torch.all(a + b == 1) and a[0] == 1 and a[1] == 0 and a[8] == 0
    h0, h1 = (flows.make_mask("half", 2, k) for k in (0, 1))
    assert h0.tolist() == [1.0, 0.0] and h1.tolist() == [0.0, 1.0]
    config = flows.FlowConfig.toy(n_layers=3, alternate=False, actnorm=False)
    masks = [layer.mask for layer in flows.Flow(config).layers]
    assert all(torch.equal(m, masks[0]) for m in masks)


def test_samples_have_the_right_shape_and_support():
    model = flows.Flow(flows.FlowConfig(n_layers=2, hidden=8)).eval()
    g = torch.Generator().manual_seed(0)
    x = model.sample(10, generator=g)
    assert x.shape == (10, 64) and x.dtype == torch.long and x.min() >= 0 and x.max() <= 16
    y = model.sample(10, generator=g, continuous=True)
    assert y.shape == (10, 64) and y.min() >= 0 and y.max() < 1
    toy = flows.Flow(flows.FlowConfig.toy(n_layers=2)).eval()
    z = torch.randn(100, 2, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(toy.sample(100, generator=torch.Generator().manual_seed(1)), toy.inverse(z)[0])
    # the identity flow's samples at temperature T have standard deviation T
    assert abs(float(toy.sample(20000, temperature=0.5).std()) - 0.5) < 0.02


def test_encode_is_the_forward_map_at_pixel_centres_and_inverts():
    model = _randomize(flows.Flow(flows.FlowConfig(n_layers=2, hidden=8, dropout=0.0)), scale=0.05).eval()
    x = data.digits("test").x[:6]
    with torch.no_grad():
        z = model.encode(x)
        y_back = model.inverse(z)[0]
    assert z.shape == (6, 64)
    assert torch.allclose(y_back, (x.float() + 0.5) / 17, atol=1e-4)  # f⁻¹(z) is the pixel centre
    assert torch.equal(torch.floor(y_back * 17).long(), x)
    toy = _randomize(flows.Flow(flows.FlowConfig.toy(n_layers=2, hidden=8)), scale=0.3).eval()
    points = data.toy("moons", 20)
    with torch.no_grad():
        assert torch.allclose(toy.encode(points), toy(points)[0])
    with pytest.raises(ValueError):
        model.encode(x + 17)  # a level outside 0..16


def test_trajectory_ends_at_the_latent_and_inverse_trajectory_returns():
    model = _randomize(flows.Flow(flows.FlowConfig.toy(n_layers=3, hidden=8, actnorm=False)), scale=0.3).eval()
    x = data.toy("moons", 50)
    path = model.trajectory(x)
    assert len(path) == 4 and torch.allclose(path[-1], model(x)[0])
    back = model.inverse_trajectory(path[-1])
    assert torch.allclose(back[-1], x, atol=1e-5)


def test_actnorm_initialises_from_the_first_training_batch():
    layer = flows.ActNorm(3)
    x = torch.randn(500, 3) * torch.tensor([1.0, 5.0, 0.1]) + torch.tensor([2.0, -1.0, 0.0])
    z, _ = layer.train()(x)
    assert torch.allclose(z.mean(0), torch.zeros(3), atol=1e-4)
    assert torch.allclose(z.std(0, unbiased=False), torch.ones(3), atol=1e-2)
    before = layer.loc.detach().clone()
    layer(x + 10)
    assert torch.equal(layer.loc.detach(), before)  # only the first batch initialises


@pytest.mark.parametrize("config", [flows.FlowConfig(n_layers=2, hidden=16),
                                    flows.FlowConfig.toy(n_layers=2, hidden=8),
                                    flows.FlowConfig(n_layers=2, hidden=16, coupling="additive", mask="random")],
                         ids=["digits", "toy", "additive-random"])
def test_one_step_training_dry_run(config):
    torch.manual_seed(0)
    model = flows.Flow(config)
    x = data.digits("train").x[:32] if config.levels else data.toy("moons", 32)
    before = [p.detach().clone() for p in model.parameters()]
    history = fit(model, flows.batch_loss, x, x, epochs=1, batch_size=32, progress=False)
    assert history.epochs == 1 and math.isfinite(history.train[0]) and math.isfinite(history.val[0])
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert math.isfinite(flows.evaluate_nll(model, x, draws=2).nats)


def test_a_trained_toy_flow_beats_the_standard_normal():
    torch.manual_seed(0)
    x = data.toy("moons", 512, seed=0)
    model = flows.Flow(flows.FlowConfig.toy(n_layers=4, hidden=32))
    fit(model, flows.batch_loss, x, epochs=40, batch_size=128, lr=3e-3, progress=False)
    base = -flows.std_normal_log_prob(x).mean().item()
    assert flows.evaluate_nll(model, x).nats < base - 1.0


def test_flow_diagrams_draw():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genlib import diagrams

    for draw in (diagrams.draw_coupling_layer, diagrams.draw_flow_chain):
        ax = draw()
        assert len(ax.patches) >= 6 and any("det" in t.get_text() for t in ax.texts)
        plt.close(ax.figure)


# ----------------------------------------------------------------------------- autoregressive flows


@pytest.mark.parametrize("iaf", [False, True])
def test_autoregressive_flow_jacobian_is_triangular_in_its_order(iaf):
    D = 5
    order = torch.randperm(D, generator=torch.Generator().manual_seed(0))
    layer = _randomize(flows.MaskedAutoregressive(D, hidden=(16,), order=order, inverse=iaf)).double()
    x = torch.randn(D, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    J = jacobian(lambda v: layer(v.unsqueeze(0))[0].squeeze(0), x)  # ∂z/∂x
    P = J[order][:, order]  # rows and columns in generation order
    assert torch.all(P.triu(1).abs() < 1e-12)  # z_d never depends on a later x
    assert P.tril(-1).abs().sum() > 0  # and does depend on earlier ones


@pytest.mark.parametrize("iaf", [False, True])
def test_maf_has_one_pass_density_and_iaf_one_pass_sampling(iaf):
    D = 6
    layer = _randomize(flows.MaskedAutoregressive(D, hidden=(8,), inverse=iaf))
    calls = []
    layer.made.register_forward_hook(lambda *args: calls.append(1))
    x = torch.randn(3, D)
    layer(x)
    density_passes = len(calls)
    calls.clear()
    layer.inverse(x)
    sampling_passes = len(calls)
    if iaf:
        assert (density_passes, sampling_passes) == (D + 1, 1)
    else:
        assert (density_passes, sampling_passes) == (1, D + 1)


def test_autoregressive_flow_starts_as_the_identity_and_rejects_bad_settings():
    layer = flows.MaskedAutoregressive(4, hidden=(8,))
    x = torch.randn(3, 4)
    z, log_det = layer(x)
    assert torch.equal(z, x) and torch.all(log_det == 0)
    with pytest.raises(ValueError, match="s_max"):
        flows.MaskedAutoregressive(4, s_max=0)
    with pytest.raises(ValueError, match="permutation"):
        flows.MaskedAutoregressive(3, order=torch.tensor([0, 1, 1]))


# ----------------------------------------------------------------------------- Glow's pieces


def test_squeeze_moves_each_2x2_block_into_four_channels():
    image = torch.arange(2 * 4 * 6).view(1, 2, 4, 6).float()  # (B, C, H, W)
    squeezed = image.flatten(1)[:, flows.squeeze_permutation((2, 4, 6))].view(1, 8, 2, 3)
    # an independent reference: pixel (2i + a, 2j + b) of channel c lands in channel 4c + 2a + b at (i, j)
    reference = image.view(1, 2, 2, 2, 3, 2).permute(0, 1, 3, 5, 2, 4).reshape(1, 8, 2, 3)
    assert torch.equal(squeezed, reference)
    with pytest.raises(ValueError, match="even"):
        flows.squeeze_permutation((1, 3, 4))


def test_invertible_1x1_conv_is_a_per_pixel_matrix_with_the_lu_log_det():
    shape = (4, 3, 2)
    layer = flows.InvertibleConv1x1(shape, torch.Generator().manual_seed(0)).double()
    with torch.no_grad():  # move away from a rotation, whose log-det is 0
        layer.log_s.add_(torch.tensor([0.3, -0.2, 0.5, 0.1], dtype=torch.float64))
        layer.L.add_(0.2), layer.U.add_(-0.3)
    x = torch.randn(5, 24, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    z, log_det = layer(x)
    W = layer.weight()
    conv = torch.nn.functional.conv2d(x.view(5, 4, 3, 2), W.view(4, 4, 1, 1))  # an independent reference
    assert torch.allclose(z, conv.flatten(1))
    assert torch.allclose(log_det, 3 * 2 * torch.linalg.slogdet(W)[1].expand(5))
    J = jacobian(lambda v: layer(v.unsqueeze(0))[0].squeeze(0), x[0])
    assert torch.allclose(log_det[0], torch.linalg.slogdet(J)[1])
    assert torch.allclose(layer.inverse(z)[0], x) and torch.allclose(layer.inverse(z)[1], -log_det)


@pytest.mark.parametrize("piece", ["conv-coupling", "partial", "glow"])
def test_glow_pieces_invert_and_match_autograd_log_det(piece):
    if piece == "conv-coupling":
        layer = _randomize(flows.ConvCoupling((4, 2, 2), hidden=8)).double()
        x = torch.randn(3, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    elif piece == "partial":
        layer = flows.Partial(_randomize(flows.AffineCoupling(flows.make_mask("half", 4, 0), hidden=8)), 4).double()
        x = torch.randn(3, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    else:
        layer = flows.Flow(layers=flows.glow_layers((1, 4, 4), steps=2, scales=2, hidden=8))
        for m in layer.modules():
            if isinstance(m, flows.ActNorm):
                m.initialized.fill_(True)
        layer = _randomize(layer, scale=0.1).double()
        x = torch.rand(3, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 0.8 + 0.1
    z, log_det = layer(x)
    assert not torch.allclose(z, x)
    assert torch.allclose(layer.inverse(z)[0], x, atol=1e-8)
    for i in range(len(x)):
        J = jacobian(lambda v: layer(v.unsqueeze(0))[0].squeeze(0), x[i])
        assert torch.allclose(log_det[i], torch.linalg.slogdet(J)[1], atol=1e-8)
    if piece == "partial":
        assert torch.equal(z[:, 4:], x[:, 4:])  # the factored-out part is untouched


def test_glow_factors_out_half_of_the_channels_after_the_first_scale():
    layers = flows.glow_layers((1, 8, 8), steps=1, scales=2, hidden=8)
    partial = [layer for layer in layers if isinstance(layer, flows.Partial)]
    assert partial and all(layer.size == 32 for layer in partial)
    with pytest.raises(ValueError, match="channels"):
        flows.ConvCoupling((1, 4, 4))


# ----------------------------------------------------------------------------- variational dequantisation


def test_variational_dequantizer_log_q_is_the_change_of_variables_of_its_noise():
    deq = _randomize(flows.VariationalDequantizer(4, levels=5, hidden=8, n_layers=2)).double()
    x = torch.tensor([[0, 1, 4, 2]])
    eps = torch.randn(1, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    u, log_q = deq(x, eps=eps)
    assert torch.all((u > 0) & (u < 1))
    J = jacobian(lambda e: deq(x, eps=e.unsqueeze(0))[0].squeeze(0), eps[0])  # ∂u/∂ε
    reference = flows.std_normal_log_prob(eps) - torch.linalg.slogdet(J)[1]
    assert torch.allclose(log_q, reference, atol=1e-10)


def test_variational_bound_stays_below_the_exact_discrete_probability():
    """A 2-D flow of two independent monotone warps has P(x) = Π_d [Φ(f_d((x_d+1)/V)) − Φ(f_d(x_d/V))]."""
    V = 4
    warp = _randomize(flows.MonotoneWarp(2, n_bumps=3), seed=1, scale=0.3).double()
    deq = _randomize(flows.VariationalDequantizer(2, levels=V, hidden=8, n_layers=2), seed=2, scale=0.15).double()
    config = flows.FlowConfig(dims=2, shape=None, levels=V, mask="half")
    model = flows.Flow(config, layers=[warp], dequantizer=deq).double()
    x = torch.tensor(list(itertools.product(range(V), repeat=2)))
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), 1.0)
    with torch.no_grad():
        upper, lower = warp((x + 1).double() / V)[0], warp(x.double() / V)[0]
        exact = torch.log(normal.cdf(upper) - normal.cdf(lower)).sum(1)
        g = torch.Generator().manual_seed(0)
        draws = model.log_prob(x.repeat(8000, 1), generator=g).view(8000, len(x))  # (8000, V²), one batch
    assert torch.all(draws.mean(0) <= exact + 0.01)  # Jensen: the bound
    # and exp of one draw is an unbiased importance-sampling estimate of P(x) = E_q[p V^-D / q]
    estimate = torch.logsumexp(draws, 0) - math.log(len(draws))
    assert torch.allclose(estimate, exact, atol=0.2)  # importance weights p/q are heavy-tailed: a loose tolerance


# ----------------------------------------------------------------------------- the NLL record


def test_evaluate_nll_returns_a_bound_for_images_and_an_exact_value_for_continuous_data():
    torch.manual_seed(0)
    images = flows.evaluate_nll(flows.Flow(flows.FlowConfig(n_layers=2, hidden=8)), data.digits("test").x[:8], draws=2)
    toy = flows.evaluate_nll(flows.Flow(flows.FlowConfig.toy(n_layers=2, hidden=8)), data.toy("moons", 16))
    assert images.kind == "bound" and toy.kind == "exact"
    nats, kind = toy  # unpacks as (nats, kind)
    assert kind == "exact" and math.isfinite(nats) and math.isfinite(images.nats)
    assert nats == pytest.approx(-flows.Flow(flows.FlowConfig.toy(n_layers=2, hidden=8)).eval()
                                 .log_prob(data.toy("moons", 16)).mean().item(), rel=1e-6)  # identity at the start


# ----------------------------------------------------------------------------- flows as VAE posteriors


def _posterior_vae(n_flows=2):
    from genlib import vae

    torch.manual_seed(0)
    model = flows.FlowPosteriorVAE(vae.VAEConfig(latent_dim=5, hidden=32, dropout=0.0), n_flows=n_flows,
                                   hidden=16, context=8)
    _randomize(model.posterior, seed=3)  # the flow's last layers start at zero (the identity): randomise them
    return model.eval()  # float32: VAE.features scales the pixels to float32


def test_iaf_posterior_log_q_is_the_change_of_variables_of_its_noise():
    model = _posterior_vae()
    x = data.digits("train").x[:2]
    with torch.no_grad():
        mu, log_var, c = model._q(x, None)
    eps = torch.randn(2, 5, generator=torch.Generator().manual_seed(1))
    z, log_q = model.posterior(mu, log_var, c, eps)
    for i in range(2):
        J = jacobian(lambda e: model.posterior(mu[i:i + 1], log_var[i:i + 1], c[i:i + 1], e[None])[0][0], eps[i])
        expected = stats.norm.logpdf(eps[i].numpy()).sum() - torch.linalg.slogdet(J)[1].item()
        assert log_q[i].item() == pytest.approx(expected, abs=1e-3)


def test_iaf_step_is_autoregressive_in_its_order_and_sees_the_context():
    step = _randomize(flows.ContextIAFStep(5, 3, hidden=16, order=torch.tensor([2, 0, 4, 1, 3]))).double()
    z, c = torch.randn(1, 5, dtype=torch.float64), torch.randn(1, 3, dtype=torch.float64)
    J = jacobian(lambda v: step(v[None], c)[0][0], z[0])  # J[i, j] = ∂out_i / ∂z_j
    position = {d: k for k, d in enumerate([2, 0, 4, 1, 3])}
    for i in range(5):
        for j in range(5):
            if position[j] > position[i]:
                assert J[i, j] == 0  # never a later coordinate
    assert not torch.allclose(step(z, c)[0], step(z, c + 1)[0])


def test_flow_posterior_vae_without_flows_estimates_the_plain_vaes_kl_and_trains():
    from genlib import vae

    plain = _posterior_vae(n_flows=0)  # q = the encoder's Gaussian: the KL estimate's mean is the closed form
    x = data.digits("train").x[:4]
    with torch.no_grad():
        mu, log_var, c = plain._q(x, None)
        eps = torch.randn(4000, *mu.shape, generator=torch.Generator().manual_seed(2))
        z, log_q = plain.posterior(mu, log_var, c, eps)
        kl = (log_q - flows.std_normal_log_prob(z)).mean(0)
    assert torch.allclose(kl, vae.kl_normal_std(mu, log_var), atol=0.15)
    model = flows.FlowPosteriorVAE(vae.VAEConfig(latent_dim=4, hidden=16), n_flows=2, hidden=8, context=4)
    x = data.digits("train").x[:16]
    history = fit(model, vae.batch_loss, x, x, epochs=1, batch_size=8, progress=False)
    assert math.isfinite(history.train[0])
    iwae = vae.evaluate_nll(model, x, k=5, generator=torch.Generator().manual_seed(0))
    elbo = vae.evaluate_elbo(model, x, generator=torch.Generator().manual_seed(0))
    assert math.isfinite(elbo.nats) and math.isfinite(iwae.nats) and (elbo.kind, iwae.kind) == ("bound", "estimate")
