"""Autoregressive models (Chapter 6): causality by gradients, the blind spot, exact normalisation by
enumeration, samplers against each other and against log_prob, and one-step training dry runs."""
import itertools
import math

import pytest
import torch

from genlib import autoregressive as ar
from genlib import data
from genlib.train import fit

SMALL = dict(channels=8, head=16)


def model(arch="gated", shape=(5, 4), levels=3, seed=0, **kw):
    torch.manual_seed(seed)
    net = ar.PixelCNN(ar.PixelCNNConfig(shape=shape, levels=levels, arch=arch, **{**SMALL, **kw}))
    with torch.no_grad():  # random biases too, so that no zero-initialised path hides a dependency
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return net.double()


def test_masks_are_the_ones_drawn_in_the_chapter():
    assert ar.mask_a(3).tolist() == [[1, 1, 1], [1, 0, 0], [0, 0, 0]]
    assert ar.mask_b(3).tolist() == [[1, 1, 1], [1, 1, 0], [0, 0, 0]]
    assert ar.mask_vertical(3, first=True).tolist() == [[1, 1, 1], [0, 0, 0], [0, 0, 0]]
    assert ar.mask_vertical(3, first=False).tolist() == [[1, 1, 1], [1, 1, 1], [0, 0, 0]]
    assert ar.mask_horizontal(5, first=True).tolist() == [[1, 1, 0, 0, 0]]
    assert ar.mask_horizontal(5, first=False).tolist() == [[1, 1, 1, 0, 0]]


@pytest.mark.parametrize("arch", ar.ARCHS)
@pytest.mark.parametrize("n_classes", [0, 3])
def test_output_never_depends_on_the_current_or_later_pixels(arch, n_classes):
    net = model(arch, shape=(5, 4), n_layers=3, n_classes=n_classes)
    gen = torch.Generator().manual_seed(0)
    for i, j in itertools.product(range(5), range(4)):
        dep = ar.dependency(net, i, j, n=4, generator=gen)
        later = ~ar.raster_before((5, 4), i, j)
        assert float(dep[later].abs().max()) == 0.0, f"{arch}: output ({i}, {j}) sees a later pixel"
        if (i, j) != (0, 0):
            assert dep.sum() > 0  # and it does depend on something earlier


def test_plain_pixelcnn_has_its_blind_spot_exactly_in_the_cone_complement():
    layers = 4  # mask A + 3 mask-B layers, all 3x3
    net = model("pixelcnn", shape=(7, 8), n_layers=layers - 1, kernel=3, kernel_a=3)
    gen = torch.Generator().manual_seed(1)
    for i, j in [(6, 3), (4, 6), (3, 0), (6, 7), (1, 5)]:
        seen = ar.dependency(net, i, j, n=6, generator=gen) > 0
        assert torch.equal(seen, ar.cone((7, 8), i, j, layers)), (i, j)
    blind = ar.raster_before((7, 8), 6, 3) & ~ar.cone((7, 8), 6, 3, layers=99)
    assert blind[5, 5] and blind[4, 6] and not blind[5, 4]  # above-right wedge: j' > j + d


def test_gated_pixelcnn_has_no_blind_spot():
    net = model("gated", shape=(6, 6), n_layers=5)  # reach 5 rows up, 5 columns each side
    seen = ar.dependency(net, 5, 5, n=6, generator=torch.Generator().manual_seed(2)) > 0
    assert torch.equal(seen, ar.raster_before((6, 6), 5, 5))  # every earlier pixel of the last one
    seen = ar.dependency(net, 3, 1, n=6, generator=torch.Generator().manual_seed(3)) > 0
    assert torch.equal(seen, ar.raster_before((6, 6), 3, 1))


@pytest.mark.parametrize("arch", ar.ARCHS)
def test_dependency_stays_inside_reach(arch):
    net = model(arch, shape=(9, 9), n_layers=2, kernel_a=5)
    up, left, right = net.reach()
    seen = ar.dependency(net, 8, 4, n=4, generator=torch.Generator().manual_seed(4)) > 0
    rows, cols = torch.nonzero(seen, as_tuple=True)
    assert rows.min() >= 8 - up and cols.min() >= 4 - left and cols.max() <= 4 + right
    assert rows.min() == 8 - up  # the bound is reached: reach() is not loose


@pytest.mark.parametrize("arch", ar.ARCHS)
@pytest.mark.parametrize("n_classes", [0, 2])
def test_log_prob_sums_to_one_over_all_3x3_binary_images(arch, n_classes):
    net = model(arch, shape=(3, 3), levels=2, n_layers=2, n_classes=n_classes)
    images = torch.tensor(list(itertools.product([0, 1], repeat=9)))  # (512, 9), every image
    for label in range(max(n_classes, 1)):
        y = torch.full((512,), label) if n_classes else None
        total = torch.logsumexp(net.log_prob(images, y).detach(), 0)
        assert abs(float(total)) < 1e-10


@pytest.mark.parametrize("arch", ar.ARCHS)
def test_log_prob_is_the_chain_rule_one_pixel_at_a_time(arch):
    net = model(arch, shape=(5, 4), levels=3, n_layers=2)
    x = torch.randint(0, 3, (6, 5, 4), generator=torch.Generator().manual_seed(5))
    chain = torch.zeros(6, dtype=torch.float64)
    for i, j in itertools.product(range(5), range(4)):
        masked = x * ar.raster_before((5, 4), i, j)  # later pixels replaced by 0: must not matter
        log_p = torch.log_softmax(net.logits_at(masked, i, j), 1)
        chain += log_p[torch.arange(6), x[:, i, j]]
    assert torch.allclose(net.log_prob(x), chain, atol=1e-10)


@pytest.mark.parametrize("arch", ar.ARCHS)
def test_window_logits_equal_full_logits_everywhere(arch):
    net = model(arch, shape=(9, 10), n_layers=2)
    x = torch.randint(0, 3, (3, 9, 10), generator=torch.Generator().manual_seed(6))
    full = net.logits(x)
    for i, j in itertools.product(range(9), range(10)):
        assert torch.allclose(net.logits_at(x, i, j), full[:, :, i, j], atol=1e-10), (i, j)


@pytest.mark.parametrize("arch", ar.ARCHS)
def test_fast_sampler_gives_the_naive_samples_for_the_same_random_numbers(arch):
    net = model(arch, shape=(9, 10), n_layers=2, n_classes=2)
    u = torch.rand(5, 9, 10, generator=torch.Generator().manual_seed(7))
    y = torch.tensor([0, 1, 0, 1, 1])
    naive, fast = net.sample(5, y=y, u=u), net.sample(5, y=y, u=u, fast=True)
    assert torch.equal(naive, fast)
    other = net.sample(5, y=y, u=torch.rand(5, 9, 10, generator=torch.Generator().manual_seed(8)))
    assert not torch.equal(naive, other)


def test_completion_keeps_the_known_pixels_and_samples_the_rest():
    net = model("gated", shape=(4, 4), n_layers=2)
    observed = torch.randint(0, 3, (50, 16), generator=torch.Generator().manual_seed(9))
    known = torch.zeros(4, 4, dtype=torch.bool)
    known[:2] = True  # the top half is given
    known = known.flatten().expand(50, 16)
    out = net.complete(observed, known, generator=torch.Generator().manual_seed(10))
    assert torch.equal(out[:, :8], observed[:, :8])
    assert not torch.equal(out[:, 8:], observed[:, 8:])
    fast = net.complete(observed, known, generator=torch.Generator().manual_seed(10), fast=True)
    assert torch.equal(out, fast)


def test_samplers_leave_the_train_mode_as_it_was():
    net = model("gated", shape=(3, 3), n_layers=2).train()
    net.sample(2, generator=torch.Generator().manual_seed(0))
    net.complete(torch.zeros(2, 9, dtype=torch.long), torch.zeros(2, 9, dtype=torch.bool))
    ar.evaluate_nll(net, torch.zeros(2, 9, dtype=torch.long))
    assert net.training
    net.eval().sample(1)
    assert not net.training


def test_sample_frequencies_match_exp_log_prob():
    net = model("gated", shape=(2, 2), levels=2, n_layers=2)
    images = torch.tensor(list(itertools.product([0, 1], repeat=4)))  # (16, 4)
    p = net.log_prob(images).exp()
    n = 20_000
    x = net.sample(n, generator=torch.Generator().manual_seed(11), fast=True)
    codes = (x * torch.tensor([8, 4, 2, 1])).sum(1)
    freq = torch.bincount(codes, minlength=16).double() / n
    assert torch.all((freq - p).abs() <= 4 * torch.sqrt(p * (1 - p) / n) + 1e-3)


def test_categorical_inverse_cdf_picks_the_interval_u_falls_in():
    probs = torch.tensor([[0.2, 0.5, 0.3]]).expand(5, 3)
    u = torch.tensor([0.0, 0.19, 0.21, 0.69, 0.71])
    assert ar.categorical_inverse_cdf(probs, u).tolist() == [0, 0, 1, 1, 2]


def test_bits_per_dim_is_nats_over_d_log_2():
    net = model("pixelcnn", shape=(3, 3), levels=5, n_layers=1)
    x = torch.randint(0, 5, (4, 9), generator=torch.Generator().manual_seed(12))
    assert torch.allclose(net.bits_per_dim(x), -net.log_prob(x) / (9 * math.log(2)))


def test_bad_inputs_and_configs_raise_one_line_errors():
    net = model("gated", shape=(3, 3), levels=4, n_layers=1)
    with pytest.raises(ValueError, match="integers 0..3"):
        net.log_prob(torch.full((2, 9), 4))
    with pytest.raises(ValueError, match=r"shape \(batch, 9\)"):
        net.log_prob(torch.zeros(2, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="arch"):
        ar.PixelCNNConfig(arch="rnn")
    with pytest.raises(ValueError, match="kernel must be an odd"):
        ar.PixelCNNConfig(kernel=4)
    with pytest.raises(ValueError, match="levels"):
        ar.PixelCNNConfig(levels=1)
    with pytest.raises(ValueError, match="pass labels y"):
        model("gated", shape=(3, 3), n_classes=2, n_layers=1).log_prob(torch.zeros(1, 9, dtype=torch.long))


@pytest.mark.parametrize("arch", ar.ARCHS)
@pytest.mark.parametrize("n_classes", [0, 10])
def test_one_training_step_on_digits(arch, n_classes):
    train = data.digits("train")
    torch.manual_seed(0)
    net = ar.PixelCNN(ar.PixelCNNConfig(arch=arch, n_classes=n_classes, **SMALL, n_layers=2))
    batch = (train.x[:64], train.y[:64]) if n_classes else (train.x[:64],)
    before = float(ar.batch_loss(net, batch))
    history = fit(net, ar.batch_loss, batch, epochs=1, batch_size=64, lr=1e-2, progress=False)
    assert history.epochs == 1 and math.isfinite(history.train[0])
    assert float(ar.batch_loss(net, batch)) < before
    nats, kind = ar.evaluate_nll(net, *batch)
    assert kind == "exact" and 0 < nats < 64 * math.log(17) + 64


def test_char_model_chain_rule_and_one_training_step():
    text = ar.text_corpus(3000)
    vocab = ar.Vocabulary(text)
    assert vocab.decode(vocab.encode("Once upon a time")) == "Once upon a time"
    torch.manual_seed(0)
    net = ar.CharModel(len(vocab), context=8, embed=4, hidden=32)
    contexts, targets = ar.windows(vocab.encode(text), 8)
    assert contexts.shape == (3000, 8) and torch.equal(contexts[1:, -1], targets[:-1])
    history = fit(net, ar.char_loss, (contexts, targets), epochs=1, batch_size=256, progress=False)
    assert math.isfinite(history.train[0])
    codes = vocab.encode("Once upon")
    terms = net.log_prob(codes)  # (T,): log p(c_t | c_<t)
    by_hand = [torch.log_softmax(net(ar.windows(codes[: t + 1], 8)[0][-1:]), 1)[0, codes[t]] for t in range(len(codes))]
    assert torch.allclose(terms, torch.stack(by_hand), atol=1e-6)
    out = net.sample(codes, 5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[: len(codes)], codes) and len(out) == len(codes) + 5
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode("\x01")


# ----------------------------------------------------------------------------- MADE


def _made_jacobian(made, D, seed=0):
    """∂ (every output) / ∂ input of a MADE with random weights: (n_params, D_out, D_in)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in made.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=g))
    x = torch.randn(D, generator=g)
    return torch.autograd.functional.jacobian(lambda v: made(v.unsqueeze(0))[0], x)


@pytest.mark.parametrize("order_kind", ["natural", "random"])
@pytest.mark.parametrize("hidden", [(7,), (11, 9)])
def test_made_output_d_depends_only_on_earlier_inputs_in_its_order(order_kind, hidden):
    D = 6
    order = torch.arange(D) if order_kind == "natural" else torch.randperm(D, generator=torch.Generator().manual_seed(3))
    made = ar.MADE(D, 2, hidden, order)
    J = _made_jacobian(made, D)  # (2, D, D)
    position = torch.empty(D, dtype=torch.long)
    position[order] = torch.arange(D)
    allowed = position[None, :] < position[:, None]  # allowed[d, d']: d' comes before d
    assert torch.all(J.abs().sum(0)[~allowed] == 0)  # never its own or a later coordinate
    # and it is not trivially zero: the last coordinate depends on some earlier ones
    assert J.abs().sum(0)[order[-1]].sum() > 0


def test_made_set_order_resamples_the_connectivity_and_keeps_the_property():
    D = 5
    made = ar.MADE(D, 1, (16,))
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(D, generator=g)
    made.set_order(order, generator=g)
    J = _made_jacobian(made, D)[0]
    position = torch.empty(D, dtype=torch.long)
    position[order] = torch.arange(D)
    assert torch.all(J[~(position[None, :] < position[:, None])] == 0)
    assert torch.equal(made.order, order)
    with pytest.raises(ValueError, match="permutation"):
        made.set_order(torch.tensor([0, 0, 1, 2, 3]))


@pytest.mark.parametrize("order", ["natural", "random"])
def test_categorical_made_sums_to_one_over_every_image(order):
    torch.manual_seed(0)
    model = ar.CategoricalMADE(ar.MADEConfig(dims=4, levels=3, hidden=(12,), order=order, seed=1))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5 * torch.randn(p.shape))
    everything = torch.tensor(list(itertools.product(range(3), repeat=4)))  # (81, 4)
    with torch.no_grad():
        total = torch.logsumexp(model.log_prob(everything).double(), 0).exp()
    assert abs(float(total) - 1) < 1e-5


def test_categorical_made_samples_follow_its_probabilities():
    torch.manual_seed(0)
    model = ar.CategoricalMADE(ar.MADEConfig(dims=2, levels=3, hidden=(8,), order="random", seed=2))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape))
    everything = torch.tensor(list(itertools.product(range(3), repeat=2)))
    with torch.no_grad():
        p_exact = model.log_prob(everything).exp()
    x = model.sample(20000, generator=torch.Generator().manual_seed(0))
    freq = torch.stack([(x == e).all(1).float().mean() for e in everything])
    assert torch.allclose(freq, p_exact, atol=0.015)


def test_categorical_made_one_training_step_and_bad_inputs():
    train = data.images("digits", "train")
    model = ar.CategoricalMADE(ar.MADEConfig(hidden=(32,)))
    history = fit(model, ar.batch_loss, train.x[:64], epochs=1, batch_size=32, progress=False)
    assert math.isfinite(history.train[-1])
    with pytest.raises(ValueError, match="levels"):
        ar.MADEConfig(levels=1)
    with pytest.raises(ValueError, match="order"):
        ar.MADEConfig(order="zigzag")
    with pytest.raises(ValueError, match="integers 0..16"):
        model.log_prob(torch.full((2, 64), 17))


# ----------------------------------------------------------------------------- dilated causal convolutions


@pytest.mark.parametrize("n_layers,kernel", [(3, 2), (4, 3)])
def test_dilated_model_is_causal_and_reaches_exactly_its_receptive_field(n_layers, kernel):
    config = ar.DilatedConfig(dims=40, levels=3, channels=8, n_layers=n_layers, kernel=kernel)
    model = ar.DilatedCausalModel(config)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.5 * torch.randn(p.shape))
    x = torch.randint(0, 3, (1, 40))
    one_hot = torch.nn.functional.one_hot(x, 3).float().transpose(1, 2).requires_grad_(True)  # (1, V, D)
    t = 39
    h = model.first(one_hot)
    for conv, mix in zip(model.layers, model.mix):
        a, b = conv(h).chunk(2, dim=1)
        h = h + mix(torch.tanh(a) * torch.sigmoid(b))
    model.out(h)[0, :, t].sum().backward()
    seen = one_hot.grad.abs().sum(1)[0] > 0  # (D,)
    expected = torch.zeros(40, dtype=torch.bool)
    expected[t - config.receptive_field: t] = True  # the receptive_field positions before t, never t itself
    assert torch.equal(seen, expected)


def test_dilated_model_sums_to_one_and_trains():
    model = ar.DilatedCausalModel(ar.DilatedConfig(dims=4, levels=3, channels=6, n_layers=2))
    everything = torch.tensor(list(itertools.product(range(3), repeat=4)))
    with torch.no_grad():
        assert abs(float(torch.logsumexp(model.log_prob(everything).double(), 0).exp()) - 1) < 1e-5
    train = data.images("digits", "train")
    history = fit(ar.DilatedCausalModel(ar.DilatedConfig(channels=16, n_layers=3)), ar.batch_loss, train.x[:64],
                  epochs=1, batch_size=32, progress=False)
    assert math.isfinite(history.train[-1])


# ----------------------------------------------------------------------------- colour, R then G then B


def colour_model(shape=(4, 4), levels=3, n_layers=2, seed=0):
    torch.manual_seed(seed)
    net = ar.ColourPixelCNN(ar.ColourConfig(shape=shape, levels=levels, channels=12, n_layers=n_layers, head=12))
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return net.double()


def test_colour_masks_order_the_channels_at_the_centre():
    m_a, m_b = ar.colour_mask("A", 3, 3, 6), ar.colour_mask("B", 3, 6, 3)
    assert m_a[:, :, 1, 1].tolist() == [[0, 0, 0]] * 2 + [[1, 0, 0]] * 2 + [[1, 1, 0]] * 2  # G sees R; B sees R, G
    assert m_b[:, :, 1, 1].tolist() == [[1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0], [1] * 6]
    assert torch.equal(m_a[:, :, 0], torch.ones(6, 3, 3)) and not m_a[:, :, 2].any()  # the row above: all; below: none


def test_colour_pixelcnn_has_no_leak_each_channel_sees_exactly_the_allowed_inputs():
    """The leak test: the logits of colour c at (i, j) depend on every colour of the earlier pixels in
    the cone of the stacked 3x3 masks, on the colours before c of the same pixel, and on nothing else."""
    net = colour_model(n_layers=2)
    gen = torch.Generator().manual_seed(0)
    for i, j in itertools.product(range(4), range(4)):
        cone = ar.cone((4, 4), i, j, 3)  # mask A and two mask-B layers
        for c in range(3):
            seen = ar.colour_dependency(net, i, j, c, n=8, generator=gen) > 0  # (3, H, W)
            for c_in in range(3):
                expected = cone.clone()
                expected[i, j] = c_in < c
                assert torch.equal(seen[c_in], expected), (i, j, c, c_in)


def test_colour_pixelcnn_probabilities_sum_to_one_and_samples_follow_them():
    net = colour_model(shape=(1, 2), levels=2, n_layers=1)
    every = torch.tensor(list(itertools.product([0, 1], repeat=6)))  # (64, 6): R plane, G plane, B plane
    with torch.no_grad():
        assert math.isclose(float(torch.logsumexp(net.log_prob(every), 0).exp()), 1.0, abs_tol=1e-10)
    one = colour_model(shape=(1, 1), levels=2, n_layers=1)
    with torch.no_grad():
        p = one.log_prob(torch.tensor(list(itertools.product([0, 1], repeat=3)))).exp()  # (8,)
    x = one.train().sample(20_000, generator=torch.Generator().manual_seed(1))
    assert one.training  # the mode is restored
    freq = torch.bincount((x * torch.tensor([4, 2, 1])).sum(1), minlength=8).double() / len(x)
    assert torch.all((freq - p).abs() <= 4 * torch.sqrt(p * (1 - p) / len(x)) + 1e-3)


def test_coloured_digits_are_the_digits_in_one_colour_per_image():
    grey, colour = data.digits("val"), data.coloured_digits("val", levels=4)
    assert colour.x.shape == (len(grey), 192) and colour.levels == 4 and int(colour.x.max()) == 3
    planes = colour.x.view(-1, 3, 64)
    assert bool(((planes.sum(1) > 0) <= (grey.x > 0)).all())  # ink only where the digit has ink
    full = grey.x == 16  # full-intensity pixels show the image's colour, whose largest channel is 3
    assert bool((planes.amax(1)[full] == 3).all())
    assert torch.equal(data.coloured_digits("val", levels=4).x, colour.x)  # fixed seed per split


# ----------------------------------------------------------------------------- the discretised logistic mixture


def test_logistic_mixture_sums_to_one_and_matches_the_direct_computation():
    gen = torch.Generator().manual_seed(0)
    params = torch.randn(7, 15, 2, 3, generator=gen, dtype=torch.float64)  # M = 5, (B, 3M, H, W)
    params[:, 10:] -= 2.0  # narrow and wide components
    for V in (2, 17, 256):
        log_p = ar.logistic_mixture_log_probs(params, V)  # (B, V, H, W)
        assert log_p.shape == (7, V, 2, 3)
        assert torch.allclose(torch.logsumexp(log_p, 1), torch.zeros(7, 2, 3, dtype=torch.float64), atol=1e-10)
        w, mu, log_s = params[3, :, 1, 2].chunk(3)
        direct = ar.logistic_mixture_direct(torch.softmax(w, 0), mu, log_s.exp(), V)
        assert torch.allclose(log_p[3, :, 1, 2].exp(), direct, atol=1e-12)
    sharp = torch.tensor([[0.0, 0.4, -12.0]], dtype=torch.float64)  # one component, tiny scale: all mass on one level
    assert float(ar.logistic_mixture_log_probs(sharp, 11)[0].exp().max()) > 0.999


@pytest.mark.parametrize("arch", ar.ARCHS)
def test_pixelcnn_with_the_logistic_head_is_causal_and_normalised(arch):
    net = model(arch, shape=(2, 2), levels=3, n_layers=2, output="logistic", mixtures=2)
    every = torch.tensor(list(itertools.product(range(3), repeat=4)))  # (81, 4)
    with torch.no_grad():
        assert math.isclose(float(torch.logsumexp(net.log_prob(every), 0).exp()), 1.0, abs_tol=1e-10)
    big = model(arch, shape=(4, 4), levels=5, n_layers=2, output="logistic", mixtures=3)
    for i, j in ((0, 0), (2, 1), (3, 3)):
        seen = ar.dependency(big, i, j, n=3, generator=torch.Generator().manual_seed(0)) > 0
        assert not bool((seen & ~ar.raster_before((4, 4), i, j)).any())


# ----------------------------------------------------------------------------- the causal transformer


def test_transformer_kv_cache_gives_the_uncached_logits_and_samples():
    torch.manual_seed(0)
    net = ar.CharTransformer(11, max_len=40, width=16, heads=2, n_layers=2).double()
    prompt = torch.tensor([3, 1, 4, 1, 5])
    logged = {True: [], False: []}
    out = {cache: net.sample(prompt, 20, generator=torch.Generator().manual_seed(2), cache=cache,
                             callback=lambda step, logits, c=cache: logged[c].append(logits))
           for cache in (True, False)}
    assert torch.equal(out[True], out[False]) and torch.equal(out[True][:5], prompt) and len(out[True]) == 25
    assert torch.allclose(torch.stack(logged[True]), torch.stack(logged[False]), atol=1e-10, rtol=0)
    # the logits of the last step are those of one parallel pass over the whole sequence
    full = net(torch.cat([torch.zeros(1, dtype=torch.long), out[True][:-1]])[None])[0, -1]
    assert torch.allclose(logged[True][-1], full, atol=1e-10, rtol=0)


def test_transformer_is_causal_and_trains():
    torch.manual_seed(0)
    net = ar.CharTransformer(11, max_len=16, width=16, heads=2, n_layers=1).double()
    codes = torch.randint(0, 11, (1, 12))
    changed = codes.clone()
    changed[0, 7:] = (changed[0, 7:] + 1) % 11
    assert torch.allclose(net(codes)[0, :7], net(changed)[0, :7]) and not torch.allclose(net(codes)[0, 7:], net(changed)[0, 7:])
    text = ar.text_corpus(2000)
    vocab = ar.Vocabulary(text)
    pieces = ar.chunks(vocab.encode(text), 15)
    assert pieces.shape == (2000 // 15, 16) and bool((pieces[:, 0] == 0).all())
    net = ar.CharTransformer(len(vocab), max_len=16, width=16, heads=2, n_layers=1)
    history = fit(net, ar.transformer_loss, pieces, epochs=2, batch_size=32, lr=3e-3, progress=False)
    assert history.train[-1] < history.train[0] < math.log(len(vocab)) + 1
    terms = net.log_prob(vocab.encode("Once upon"))
    assert terms.shape == (9,) and bool((terms < 0).all())
