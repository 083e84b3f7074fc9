"""genlib.ebm against independent references: Gaussian moments, exact grid likelihood gradients,
analytic normalisers, and the replay buffer's bookkeeping."""
import math

import numpy as np
import pytest
import torch

from genlib import data, ebm
from genlib.train import fit


def quadratic_energy(mu: torch.Tensor, precision: torch.Tensor):
    """E(x) = ½ (x − μ)ᵀ Λ (x − μ): the energy of N(μ, Λ⁻¹)."""
    return lambda x: 0.5 * torch.einsum("bi,ij,bj->b", x - mu, precision, x - mu)


def mixture_energy(weights, means, std):
    """E(x) = −log Σ_k π_k N(x; μ_k, std² I) for a 2-D isotropic mixture."""
    weights, means = torch.as_tensor(weights), torch.as_tensor(means)

    def energy(x):
        sq = ((x[:, None, :] - means[None]) ** 2).sum(-1)  # (B, K)
        log_n = -0.5 * sq / std**2 - math.log(2 * math.pi * std**2)
        return -torch.logsumexp(torch.log(weights) + log_n, 1)

    return energy


def check_moments(x: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor, z: float = 4.0):
    """Sample mean and covariance of independent draws ``x`` (n, D) within z Monte Carlo standard errors."""
    n = len(x)
    se_mean = torch.sqrt(torch.diag(cov) / n)
    assert ((x.mean(0) - mean).abs() < z * se_mean).all(), (x.mean(0), mean)
    se_cov = torch.sqrt((torch.outer(torch.diag(cov), torch.diag(cov)) + cov**2) / n)  # Var of a covariance entry
    assert ((torch.cov(x.T) - cov).abs() < z * se_cov).all(), (torch.cov(x.T), cov)


def test_langevin_recovers_a_gaussian():
    gen = torch.Generator().manual_seed(0)
    mu = torch.tensor([1.0, -0.5])
    cov = torch.tensor([[1.0, 0.6], [0.6, 0.8]])
    energy = quadratic_energy(mu, torch.linalg.inv(cov))
    x0 = torch.randn(4000, 2, generator=gen) * 2
    # η = 0.02 (drift η/2 = 0.01): the discretisation bias of the variance (about η·λ_max/4 ≈ 1%) is
    # below the Monte Carlo error of 4000 independent chains (about 2.2%); 1500 steps forget the start.
    x = ebm.langevin(energy, x0, n_steps=1500, step_size=0.02, generator=gen)
    check_moments(x, mu, cov)


def test_langevin_recovers_a_two_component_mixture():
    gen = torch.Generator().manual_seed(1)
    weights, means, std = [0.3, 0.7], [[-1.0, 0.0], [1.0, 0.5]], 0.6
    w, m = torch.tensor(weights), torch.tensor(means)
    mean = (w[:, None] * m).sum(0)
    cov = std**2 * torch.eye(2) + (w[:, None, None] * m[:, :, None] * m[:, None, :]).sum(0) - torch.outer(mean, mean)
    x0 = torch.rand(4000, 2, generator=gen) * 6 - 3
    x = ebm.langevin(mixture_energy(weights, means, std), x0, n_steps=2000, step_size=0.02, generator=gen)
    check_moments(x, mean, cov)


def test_langevin_with_the_wrong_noise_scale_fails_the_same_check():
    """The moment check has power: a 'cold' chain (σ = √(η/2) instead of √η) halves the variance."""
    gen = torch.Generator().manual_seed(0)
    mu, cov = torch.zeros(2), torch.eye(2)
    x = ebm.langevin(quadratic_energy(mu, cov), torch.randn(4000, 2, generator=gen), n_steps=800,
                     step_size=0.02, noise_scale=0.1, generator=gen)
    with pytest.raises(AssertionError):
        check_moments(x, mu, cov)


def test_langevin_is_reproducible_clips_and_clamps():
    energy = quadratic_energy(torch.zeros(3), 100 * torch.eye(3))
    x0 = torch.full((5, 3), 0.9)
    a = ebm.langevin(energy, x0, 3, 0.1, generator=torch.Generator().manual_seed(3))
    b = ebm.langevin(energy, x0, 3, 0.1, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and torch.equal(x0, torch.full((5, 3), 0.9))  # input untouched
    one = ebm.langevin(energy, x0, 1, 0.1, noise_scale=0.0, clip_grad=0.5)
    assert torch.allclose(one, x0 - 0.1 / 2 * 0.5)  # drift η/2 · (gradient 90 clipped to 0.5)
    boxed = ebm.langevin(energy, x0, 1, 0.1, noise_scale=0.0, bounds=(0.0, 1.0))
    assert boxed.min() >= 0 and boxed.max() <= 1
    chain = ebm.langevin(energy, x0, 4, 0.001, return_chain=True)
    assert chain.shape == (5, 5, 3)


def test_grid_density_matches_an_analytic_normaliser_and_integrates_to_one():
    mu, cov = torch.tensor([0.3, -0.2]), torch.tensor([[0.5, 0.2], [0.2, 0.4]])
    energy = quadratic_energy(mu, torch.linalg.inv(cov))
    grid = ebm.GridDensity(energy, bounds=(-5, 5, -5, 5), steps=200)
    log_z_exact = math.log(2 * math.pi) + 0.5 * math.log(float(torch.linalg.det(cov)))  # ∫ exp(−E) = 2π |Σ|^½
    assert abs(float(grid.log_z()) - log_z_exact) < 1e-4
    # integrate the normalised density with an independent (finer, offset) rule
    xs = torch.linspace(-5, 5, 701)
    gx, gy = torch.meshgrid(xs, xs, indexing="ij")
    p = grid.log_prob(torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)).exp().reshape(701, 701).double()
    total = torch.trapezoid(torch.trapezoid(p, xs.double(), dim=1), xs.double(), dim=0)
    assert abs(float(total) - 1) < 1e-3
    assert grid.log_prob(torch.tensor([[6.0, 0.0]])).item() == -math.inf


def test_grid_samples_are_exact():
    mu, cov = torch.tensor([0.5, 0.0]), torch.tensor([[0.3, 0.1], [0.1, 0.6]])
    grid = ebm.GridDensity(quadratic_energy(mu, torch.linalg.inv(cov)), bounds=(-5, 5, -5, 5), steps=300)
    x = grid.sample(20000, generator=torch.Generator().manual_seed(0))
    # jitter adds the uniform cell variance h²/12 (h = 1/30) to each axis: negligible here
    check_moments(x, mu, cov + torch.eye(2) * (10 / 300) ** 2 / 12)


def _mc_gradients(model, x_data, x_hat, chunks=40):
    """CD gradient from all samples, and its Monte Carlo standard error from ``chunks`` sub-batches."""
    def grad(x_model):
        model.zero_grad()
        ebm.cd_loss(model, x_data, x_model).backward()
        return torch.cat([p.grad.reshape(-1).clone() for p in model.parameters()])

    per_chunk = torch.stack([grad(c) for c in x_hat.chunk(chunks)])  # (chunks, P)
    return grad(x_hat), per_chunk.std(0) / math.sqrt(chunks)


def test_cd_gradient_equals_the_exact_likelihood_gradient_on_a_grid():
    torch.manual_seed(0)
    model = ebm.EBM(ebm.EBMConfig(hidden=16, layers=2, buffer_size=0))
    grid = ebm.GridDensity(model.energy, bounds=(-4, 4, -4, 4), steps=60)
    x_data = data.toy("moons", n=256, seed=0)
    model.zero_grad()
    (-grid.log_prob(x_data).mean()).backward()  # exact: ∇ [mean E(x) + log Z]
    exact = torch.cat([p.grad.reshape(-1).clone() for p in model.parameters()])
    gen = torch.Generator().manual_seed(0)
    x_hat = grid.sample(40000, generator=gen, jitter=False)  # exact draws from the grid model
    cd, se = _mc_gradients(model, x_data, x_hat)
    noisy = se > 1e-9  # the output bias has gradient 1 − 1 = 0 from every sample: no noise, exact zero
    assert (cd - exact)[~noisy].abs().max() < 1e-5
    z = (cd - exact)[noisy] / se[noisy]
    assert exact.norm() > 10 * se.norm()  # the gradient is far above the noise: the check has power
    assert z.abs().max() < 5 and float((z**2).mean()) < 2, z  # CD = exact within Monte Carlo error
    # the same check rejects samples from the wrong distribution (uniform on the box)
    wrong, se_wrong = _mc_gradients(model, x_data, torch.rand(40000, 2, generator=gen) * 8 - 4)
    assert ((wrong - exact)[noisy] / se_wrong[noisy]).abs().max() > 5


def test_replay_buffer_keeps_its_size_and_reinitialises_at_its_rate():
    gen = torch.Generator().manual_seed(0)
    buffer = ebm.ReplayBuffer(500, 3, low=-1.0, high=1.0, reinit=0.2, generator=gen)
    assert buffer.x.shape == (500, 3) and buffer.x.min() >= -1 and buffer.x.max() <= 1
    buffer.x[:] = 100.0  # mark every stored chain
    x, slots = buffer.draw(20000, gen)
    fresh = (x[:, 0] != 100.0).float()
    rate_se = math.sqrt(0.2 * 0.8 / 20000)
    assert abs(float(fresh.mean()) - 0.2) < 4 * rate_se
    assert x[fresh.bool()].abs().max() <= 1  # re-initialised from the box
    buffer.put(slots[:10], torch.zeros(10, 3))
    assert buffer.x.shape == (500, 3) and (buffer.x[slots[:10]] == 0).all()


def test_a_slot_drawn_twice_keeps_its_last_state():
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):  # batches like training's: 100 chains of 64 pixels, some slots drawn twice
        buffer = ebm.ReplayBuffer(150, 64, low=0.0, high=1.0, generator=gen)
        slots, x = torch.randint(150, (100,), generator=gen), torch.rand(100, 64, generator=gen)
        expected = buffer.x.clone()
        for slot, state in zip(slots, x):  # one at a time, in order: the last write wins
            expected[slot] = state
        buffer.put(slots, x)
        assert torch.equal(buffer.x, expected)


def test_one_step_dry_runs_train_and_fill_the_buffer():
    for dataset, x in (("moons", data.toy("moons", n=64)), ("digits", data.digits("train").scaled()[:64])):
        gen = torch.Generator().manual_seed(0)
        config = ebm.EBMConfig.for_dataset(dataset, hidden=16, n_steps=3, buffer_size=100)
        model = ebm.EBM(config, gen)
        before = [p.detach().clone() for p in model.parameters()]
        buffer_before = model.buffer.x.clone()
        loss = ebm.ContrastiveDivergence(gen, monitor_every=1, snapshot_every=1)
        history = fit(model, loss, x, epochs=1, batch_size=64, generator=gen, progress=False)
        assert np.isfinite(history.train[0]) and loss.step == 1
        assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
        assert not torch.equal(buffer_before, model.buffer.x) and model.buffer.x.shape == (100, config.dims)
        r = loss.record
        assert len(r.e_data) == len(r.g_diff) == len(r.snapshots) == 1
        assert model.sample(4, n_steps=2, generator=gen).shape == (4, config.dims)


def test_the_replay_buffer_travels_with_the_state_dict(tmp_path):
    gen = torch.Generator().manual_seed(0)
    config = ebm.EBMConfig(hidden=8, buffer_size=50)
    trained = ebm.EBM(config, gen)
    trained.buffer.put(torch.arange(5), torch.zeros(5, 2))  # chains a fresh model would not have
    torch.save(trained.state_dict(), tmp_path / "m.pt")
    loaded = ebm.EBM(config, torch.Generator().manual_seed(1))
    assert not torch.equal(loaded.buffer.x, trained.buffer.x)
    loaded.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    assert torch.equal(loaded.buffer.x, trained.buffer.x)
    assert torch.equal(loaded.sample(3, n_steps=2, generator=torch.Generator().manual_seed(2), from_buffer=True),
                       trained.sample(3, n_steps=2, generator=torch.Generator().manual_seed(2), from_buffer=True))
    ebm.EBM(ebm.EBMConfig(hidden=8, buffer_size=0)).load_state_dict(trained.state_dict())  # weights only
    with pytest.raises(ValueError, match=r"saved replay buffer holds \(50, 2\) chains, this model's holds \(20, 2\)"):
        ebm.EBM(ebm.EBMConfig(hidden=8, buffer_size=20)).load_state_dict(trained.state_dict())
    trained.buffer.reset(gen)
    assert trained.buffer.x.shape == (50, 2) and (trained.buffer.x[:5] != 0).all()


def test_grad_terms_combine_into_the_cd_gradient():
    torch.manual_seed(0)
    model = ebm.EBM(ebm.EBMConfig(hidden=8, buffer_size=0))
    x, x_hat = torch.randn(32, 2), torch.randn(32, 2)
    g_data, g_model = ebm.grad_terms(model, x, x_hat)
    ebm.cd_loss(model, x, x_hat).backward()
    assert torch.allclose(torch.cat([p.grad.reshape(-1) for p in model.parameters()]), g_data - g_model, atol=1e-6)


@pytest.mark.parametrize("bad, message", [
    (dict(n_steps=0), "n_steps must be a positive integer"),
    (dict(step_size=-1.0), "step_size must be > 0"),
    (dict(reinit=1.5), "reinit must be in"),
    (dict(low=1.0, high=0.0), "high must be > low"),
    (dict(buffer_size=-3), "buffer_size must be a non-negative integer"),
])
def test_config_errors_are_one_line(bad, message):
    with pytest.raises(ValueError, match=message):
        ebm.EBMConfig(**bad)


def test_bad_data_is_refused():
    model = ebm.EBM(ebm.EBMConfig(buffer_size=0))
    loss = ebm.ContrastiveDivergence()
    with pytest.raises(ValueError, match="shape"):
        model.energy(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="NaN"):
        loss(model, (torch.tensor([[0.0, math.nan]]),))
    with pytest.raises(ValueError, match="unknown dataset"):
        ebm.EBMConfig.for_dataset("binarized_mnist")
    with pytest.raises(TypeError, match="unknown sampler setting"):
        model.langevin(torch.zeros(2, 2), steps=3)


def test_train_config_defaults_per_dataset():
    assert ebm.TrainConfig.for_dataset("moons") == ebm.TrainConfig(epochs=100, batch_size=128, lr=2e-3)
    assert ebm.TrainConfig.for_dataset("digits", epochs=5).epochs == 5
    assert ebm.EBMConfig.for_dataset("mnist5k").dims == 784


def test_the_buffer_records_each_chains_age_since_its_last_restart():
    gen = torch.Generator().manual_seed(0)
    never = ebm.ReplayBuffer(10, 2, low=0.0, high=1.0, reinit=0.0, generator=gen)
    always = ebm.ReplayBuffer(10, 2, low=0.0, high=1.0, reinit=1.0, generator=gen)
    for _ in range(3):  # every slot drawn and advanced three times
        for buffer in (never, always):
            x, slots = buffer.draw(10, gen)
            slots = torch.arange(10)  # draw every slot once, in order (the draw's own slots are random)
            buffer._fresh = torch.full((10,), buffer.reinit == 1.0)
            buffer.put(slots, x)
    assert (never.age == 3).all() and (always.age == 1).all()  # restarted every time: age 1
    never.put(torch.arange(2), torch.zeros(2, 2))  # a write that follows no draw: history unknown
    assert never.age.tolist()[:3] == [0, 0, 3]
    # stationary mean age under training's bookkeeping: restarts at rate r per draw, so the age in
    # draws since the last restart is geometric, mean 1/r, once every chain has been drawn many times
    buffer = ebm.ReplayBuffer(200, 1, low=0.0, high=1.0, reinit=0.1, generator=gen)
    for _ in range(3000):
        x, slots = buffer.draw(20, gen)
        buffer.put(slots, x)
    assert abs(float(buffer.age.double().mean()) - 10) < 1.0
