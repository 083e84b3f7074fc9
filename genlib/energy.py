r"""Energy-based models beyond persistent CD (Chapter 3, second part): other estimators, an exact
sampler fix, normalisers, Boltzmann machines and a classifier read as an energy model.

All of them avoid the Langevin-sampled likelihood gradient of :mod:`genlib.ebm` in some way:

* **Score matching** (Hyvärinen 2005) fits the model's score s_θ(x) = −∇_x E_θ(x) to the data's by
  minimising  J(θ) = E_data[ ½‖∇_x E_θ(x)‖² − Δ_x E_θ(x) ]  (equal, up to a constant, to the Fisher
  divergence ½ E_data‖s_θ − ∇ log p_data‖²): no Z, no samples, but a Laplacian (D backward passes).
* **Denoising score matching** (Vincent 2011) replaces the Laplacian by a regression: with
  x̃ = x + σ ε,  J_σ(θ) = ½ E ‖σ s_θ(x̃) + ε‖², minimised by the score of the *noised* data
  (the objective of Chapter 8's diffusion models, at one noise level).
* **Noise-contrastive estimation** (Gutmann & Hyvärinen 2010) learns log Z as one more parameter c by
  logistic regression of data against ν times as many samples of a known noise density q: the logit is
  log p_θ(x) − log(ν q(x)) with log p_θ = −E_θ − c. A GAN's discriminator is the same classifier with a
  learned "noise" (Chapter 5): at the optimum both read off the density ratio p_data / q.
* **MALA**: a Langevin proposal y = x − (η/2)∇E(x) + √η ε accepted with the Metropolis–Hastings
  probability, so the chain's stationary law is exactly exp(−E)/Z for any step η.
* **Annealed importance sampling** (Neal 2001) estimates log Z by moving chains from a Gaussian
  (known Z₀) to exp(−E) through the geometric path f_β = f₀^{1−β} f^β with MALA at each β.
* **Restricted Boltzmann machines**: binary v ∈ {0,1}^D, h ∈ {0,1}^H, E(v, h) = −bᵀv − cᵀh − vᵀW h;
  free energy F(v) = −bᵀv − Σ_j softplus(c_j + (vᵀW)_j); block Gibbs sampling; CD-k (chains start at
  the data, Hinton 2002) and PCD (persistent chains, Tieleman 2008); and the exact log Z by
  enumerating the 2^H hidden states when H is small.
* **JEM** (Grathwohl et al. 2020): a classifier's logits f_θ(x)[y] define p_θ(x, y) ∝ exp(f_θ(x)[y]),
  so E_θ(x) = −logsumexp_y f_θ(x)[y]; trained on cross-entropy plus the persistent-CD term.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from genlib import checks
from genlib._core import randn as _randn
from genlib.ebm import Energy, ReplayBuffer, cd_loss, energy_grad, langevin

# ----------------------------------------------------------------------------- score matching


def score_matching_loss(energy: Energy, x: torch.Tensor) -> torch.Tensor:
    """Hyvärinen's score matching, exact: mean over ``x`` (B, D) of ½‖∇_x E(x)‖² − Δ_x E(x).

    The Laplacian Δ_x E = Σ_d ∂²E/∂x_d² costs one extra backward pass per dimension (fine in 2-D, the
    reason for denoising score matching in images). Differentiable in the energy's parameters."""
    x = checks.support("x", checks.images("x", x), "real").detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(energy(x).sum(), x, create_graph=True)  # (B, D)
    laplacian = sum(torch.autograd.grad(grad[:, d].sum(), x, create_graph=True)[0][:, d]
                    for d in range(x.shape[1]))  # (B,)
    return (0.5 * (grad ** 2).sum(1) - laplacian).mean()


def dsm_loss(energy: Energy, x: torch.Tensor, sigma: float, generator: torch.Generator | None = None,
             eps: torch.Tensor | None = None) -> torch.Tensor:
    """Denoising score matching at noise level σ: mean of ½‖σ s(x̃) + ε‖², x̃ = x + σ ε, s = −∇_x E.

    ``eps`` (B, D) may be given (tests); otherwise it is drawn from ``generator``."""
    x = checks.support("x", checks.images("x", x), "real")
    sigma = checks.positive("sigma", sigma)
    eps = _randn(x.shape, x, generator) if eps is None else eps
    x_noisy = (x + sigma * eps).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(energy(x_noisy).sum(), x_noisy, create_graph=True)  # ∇_x E, (B, D)
    return 0.5 * ((eps - sigma * grad) ** 2).sum(1).mean()


class ScoreMatchingLoss:
    """``loss(model, batch)`` for :func:`genlib.train.fit`: :func:`score_matching_loss` of ``model.energy``."""

    def __call__(self, model: nn.Module, batch) -> torch.Tensor:
        return score_matching_loss(model.energy, batch[0])


class DenoisingScoreMatchingLoss:
    """``loss(model, batch)`` for :func:`genlib.train.fit`: :func:`dsm_loss` of ``model.energy`` at σ."""

    def __init__(self, sigma: float, generator: torch.Generator | None = None):
        self.sigma, self.generator = checks.positive("sigma", sigma), generator

    def __call__(self, model: nn.Module, batch) -> torch.Tensor:
        return dsm_loss(model.energy, batch[0], self.sigma, self.generator)


# ----------------------------------------------------------------------------- noise-contrastive estimation


class GaussianNoise:
    """NCE's noise density q = N(mean, cov), with seeded sampling. :meth:`fit` takes the data's mean and
    covariance, widened by ``scale`` so that q covers the data's tails."""

    def __init__(self, mean: torch.Tensor, cov: torch.Tensor):
        self.mean, self.chol = mean, torch.linalg.cholesky(cov)  # (D,), (D, D)
        self.dist = torch.distributions.MultivariateNormal(mean, scale_tril=self.chol)

    @classmethod
    def fit(cls, x: torch.Tensor, scale: float = 1.5) -> "GaussianNoise":
        x = checks.support("x", checks.images("x", x), "real")
        return cls(x.mean(0), checks.positive("scale", scale) ** 2 * torch.cov(x.T).reshape(x.shape[1], x.shape[1]))

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws (n, D)."""
        return self.mean + _randn((checks.positive_int("n", n), len(self.mean)), self.mean, generator) @ self.chol.T

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.dist.log_prob(x.to(self.mean.device))




class SelfNormalised(nn.Module):
    """An energy network with one more parameter, c ≈ log Z: ``log_prob(x) = −E_θ(x) − c``.

    NCE learns c with θ; nothing forces ∫exp(−E − c) = 1 except the classification task."""

    def __init__(self, net: nn.Module, log_z: float = 0.0):
        super().__init__()
        self.net = net
        self.log_z = nn.Parameter(torch.tensor(float(log_z)))

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """−E_θ(x) − c for ``x`` (B, D) -> (B,)."""
        return -self.net(x) - self.log_z


def nce_logit(log_p: torch.Tensor, log_q: torch.Tensor, nu: float = 1.0) -> torch.Tensor:
    """The classifier's logit, log p_θ(x) − log(ν q(x)): positive where x looks like data."""
    return log_p - log_q - math.log(nu)


def nce_loss(log_prob: Callable, log_q: Callable, x: torch.Tensor, x_noise: torch.Tensor) -> torch.Tensor:
    """Noise-contrastive estimation: the logistic loss of telling data ``x`` (B, D) from noise
    ``x_noise`` (νB, D), ν = len(x_noise)/len(x), with logit ``nce_logit``; averaged per data point:
    −mean log σ(logit(x)) − ν mean log(1 − σ(logit(x_noise)))."""
    x = checks.support("x", checks.images("x", x), "real")
    x_noise = checks.images("x_noise", x_noise, dims=x.shape[1])
    nu = len(x_noise) / len(x)
    logit_data = nce_logit(log_prob(x), log_q(x), nu)  # (B,)
    logit_noise = nce_logit(log_prob(x_noise), log_q(x_noise), nu)  # (νB,)
    return -F.logsigmoid(logit_data).mean() - nu * F.logsigmoid(-logit_noise).mean()


class NCELoss:
    """``loss(model, batch)`` for :func:`genlib.train.fit`: :func:`nce_loss` of a :class:`SelfNormalised`
    model against ``nu`` × the batch size of fresh draws from ``noise`` (a :class:`GaussianNoise`)."""

    def __init__(self, noise: GaussianNoise, nu: int = 1, generator: torch.Generator | None = None):
        self.noise, self.nu, self.generator = noise, checks.positive_int("nu", nu), generator

    def __call__(self, model: SelfNormalised, batch) -> torch.Tensor:
        x = batch[0]
        x_noise = self.noise.sample(self.nu * len(x), self.generator).to(x.device)
        return nce_loss(model.log_prob, self.noise.log_prob, x, x_noise)


# ----------------------------------------------------------------------------- MALA


def mala(energy: Energy, x0: torch.Tensor, n_steps: int, step_size: float,
         generator: torch.Generator | None = None) -> tuple[torch.Tensor, float]:
    """Metropolis-adjusted Langevin: ``n_steps`` of the proposal y = x − (η/2)∇E(x) + √η ε (the
    book's Langevin step, η = ``step_size``), each accepted with probability
    min(1, exp(E(x) − E(y) + log q(x|y) − log q(y|x))), q(y|x) = N(y; x − (η/2)∇E(x), η I).
    Returns the final states (B, D) and the mean acceptance rate."""
    checks.non_negative_int("n_steps", n_steps)
    eta = checks.positive("step_size", step_size)

    def log_q(to, frm, grad_frm):  # log N(to; frm − (η/2)∇E(frm), η I), up to a constant. (B,)
        return -((to - frm + 0.5 * eta * grad_frm) ** 2).sum(1) / (2 * eta)

    x = x0.detach().clone()
    with torch.no_grad():
        e_x = energy(x)
    g_x = energy_grad(energy, x)
    accepted = 0.0
    for _ in range(n_steps):
        y = x - 0.5 * eta * g_x + math.sqrt(eta) * _randn(x.shape, x, generator)
        with torch.no_grad():
            e_y = energy(y)
        g_y = energy_grad(energy, y)
        log_alpha = e_x - e_y + log_q(x, y, g_y) - log_q(y, x, g_x)  # (B,)
        u = torch.rand(len(x), generator=generator, device=generator.device if generator else x.device).to(x.device)
        accept = torch.log(u) < log_alpha  # (B,)
        x = torch.where(accept[:, None], y, x)
        e_x, g_x = torch.where(accept, e_y, e_x), torch.where(accept[:, None], g_y, g_x)
        accepted += float(accept.float().mean())
    return x, accepted / max(n_steps, 1)


# ----------------------------------------------------------------------------- annealed importance sampling


@dataclass
class AISResult:
    log_z: float               # log of the mean importance weight, + log Z₀: the estimate of log Z
    log_w: torch.Tensor        # (chains,) each chain's log weight
    acceptance: float          # MALA's mean acceptance over the path

    @property
    def ess(self) -> float:
        """Effective sample size of the weights, (Σw)²/Σw²: near the number of chains when AIS is reliable."""
        w = torch.softmax(self.log_w.double(), 0)
        return float(1 / (w ** 2).sum())

    @property
    def se(self) -> float:
        """Delta-method standard error of ``log_z``: std(w) / (mean(w) √n) = √((n/ESS − 1)/n)."""
        n = len(self.log_w)
        return math.sqrt(max(n / self.ess - 1, 0.0) / n)


def ais_log_z(energy: Energy, dims: int, n_chains: int = 500, n_temps: int = 200, mcmc_steps: int = 2,
              step_size: float = 0.2, base_std: float = 2.0,
              generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> AISResult:
    """Estimate log Z = log ∫exp(−E(x))dx by annealed importance sampling from N(0, base_std² I).

    Temperatures β_k = k/n_temps on the geometric path −E_β = (1−β)(−E₀) + β(−E), E₀ = ‖x‖²/(2 s²)
    with Z₀ = (2π s²)^{D/2}; each chain adds (β_k − β_{k−1})(E₀(x) − E(x)) to its log weight, then
    takes ``mcmc_steps`` MALA steps that leave the β_k distribution invariant. E[w] = Z/Z₀, so the
    estimate of log Z is biased low in expectation (Jensen), and unbiased as the weights concentrate."""
    dims, n_chains = checks.positive_int("dims", dims), checks.positive_int("n_chains", n_chains)
    n_temps = checks.positive_int("n_temps", n_temps)
    s = checks.positive("base_std", base_std)
    log_z0 = 0.5 * dims * math.log(2 * math.pi * s ** 2)
    e0 = lambda x: (x ** 2).sum(1) / (2 * s ** 2)  # noqa: E731
    like = torch.empty(0, device=device)
    x = s * _randn((n_chains, dims), like, generator)  # exact draws from the base, (chains, D)
    log_w = torch.zeros(n_chains, dtype=torch.float64, device=device)
    betas = torch.linspace(0, 1, n_temps + 1).tolist()
    acceptance = 0.0
    for b_prev, b in zip(betas[:-1], betas[1:]):
        with torch.no_grad():
            log_w += (b - b_prev) * (e0(x) - energy(x)).double()
        e_beta = lambda z, b=b: (1 - b) * e0(z) + b * energy(z)  # noqa: E731
        x, acc = mala(e_beta, x, mcmc_steps, step_size, generator)
        acceptance += acc / n_temps
    log_z = float(torch.logsumexp(log_w, 0) - math.log(n_chains)) + log_z0
    return AISResult(log_z=log_z, log_w=log_w.cpu(), acceptance=acceptance)


# ----------------------------------------------------------------------------- products of experts


def product_of_experts(*energies: Energy) -> Energy:
    """The energy of p(x) ∝ Π_k exp(−E_k(x)): the sum Σ_k E_k(x). A point is likely only where every
    expert finds it likely (an intersection, unlike a mixture's union)."""
    if not energies:
        raise ValueError("product_of_experts needs at least one energy")
    return lambda x: sum(e(x) for e in energies)


# ----------------------------------------------------------------------------- restricted Boltzmann machines


class RBM(nn.Module):
    """A binary restricted Boltzmann machine with D visible and H hidden units.

    E(v, h) = −bᵀv − cᵀh − vᵀW h;  p(h_j = 1 | v) = σ(c_j + (vᵀW)_j),  p(v_i = 1 | h) = σ(b_i + (W h)_i);
    the free energy F(v) = −log Σ_h exp(−E(v, h)) = −bᵀv − Σ_j softplus(c_j + (vᵀW)_j), so that
    p(v) = exp(−F(v)) / Z."""

    def __init__(self, visible: int, hidden: int, generator: torch.Generator | None = None):
        super().__init__()
        self.visible, self.hidden = checks.positive_int("visible", visible), checks.positive_int("hidden", hidden)
        self.W = nn.Parameter(0.01 * torch.randn(visible, hidden, generator=generator))  # (D, H)
        self.b = nn.Parameter(torch.zeros(visible))  # visible biases (D,)
        self.c = nn.Parameter(torch.zeros(hidden))  # hidden biases (H,)

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) for ``v`` (B, D) -> (B,)."""
        checks.images("v", v, dims=self.visible)
        return -v @ self.b - F.softplus(self.c + v @ self.W).sum(1)

    def energy(self, v: torch.Tensor) -> torch.Tensor:
        return self.free_energy(v)

    def p_h(self, v: torch.Tensor) -> torch.Tensor:
        """p(h = 1 | v), (B, D) -> (B, H)."""
        return torch.sigmoid(self.c + v @ self.W)

    def p_v(self, h: torch.Tensor) -> torch.Tensor:
        """p(v = 1 | h), (B, H) -> (B, D)."""
        return torch.sigmoid(self.b + h @ self.W.T)

    @torch.no_grad()
    def gibbs(self, v: torch.Tensor, k: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        """``k`` sweeps of block Gibbs sampling v → h → v from ``v`` (B, D); returns binary v (B, D)."""
        for _ in range(checks.non_negative_int("k", k)):
            h = torch.bernoulli(self.p_h(v), generator=generator)
            v = torch.bernoulli(self.p_v(h), generator=generator)
        return v

    def log_z(self) -> torch.Tensor:
        """Exact log Z by enumerating the 2^H hidden states: Σ_h exp(cᵀh) Π_i (1 + exp(b_i + (W h)_i)).
        Only for small H (refuses H > 20)."""
        if self.hidden > 20:
            raise ValueError(f"exact log Z enumerates 2^H hidden states; H = {self.hidden} is too many (at most 20)")
        codes = torch.arange(2 ** self.hidden, device=self.W.device)
        h = ((codes[:, None] >> torch.arange(self.hidden, device=self.W.device)) & 1).to(self.W.dtype)  # (2^H, H)
        return torch.logsumexp(h @ self.c + F.softplus(self.b + h @ self.W.T).sum(1), 0)

    def log_prob(self, v: torch.Tensor) -> torch.Tensor:
        """Exact log p(v) = −F(v) − log Z (small H only). (B, D) -> (B,)"""
        return -self.free_energy(v) - self.log_z()

    @torch.no_grad()
    def sample(self, n: int, k: int = 1000, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples (n, D): ``k`` Gibbs sweeps from uniform random binary vectors."""
        v = torch.bernoulli(torch.full((checks.positive_int("n", n), self.visible), 0.5, device=self.W.device),
                            generator=generator)
        return self.gibbs(v, k, generator)


class RBMContrastiveDivergence:
    """The loss ``loss(rbm, batch)`` for :func:`genlib.train.fit`: mean F(v_data) − mean F(v̂), whose
    gradient estimates minus the log-likelihood gradient. ``persistent=False``: CD-k, v̂ = k Gibbs
    sweeps started *at the batch*; ``persistent=True``: PCD, v̂ continues ``n_chains`` chains kept
    between updates (started at random binary vectors)."""

    def __init__(self, k: int = 1, persistent: bool = False, n_chains: int = 100,
                 generator: torch.Generator | None = None):
        self.k = checks.positive_int("k", k)
        self.persistent, self.generator = persistent, generator
        self.n_chains = checks.positive_int("n_chains", n_chains)
        self.chains: torch.Tensor | None = None

    def __call__(self, rbm: RBM, batch) -> torch.Tensor:
        v = checks.support("v", checks.images("v", batch[0], dims=rbm.visible), "binary")
        if self.persistent:
            if self.chains is None:
                self.chains = torch.bernoulli(torch.full((self.n_chains, rbm.visible), 0.5), generator=self.generator)
            self.chains = rbm.gibbs(self.chains.to(v.device), self.k, self.generator)
            v_hat = self.chains
        else:
            v_hat = rbm.gibbs(v, self.k, self.generator)
        return rbm.free_energy(v).mean() - rbm.free_energy(v_hat).mean()


# ----------------------------------------------------------------------------- JEM


@dataclass(frozen=True)
class JEMConfig:
    """A classifier read as an energy model (book profile: 8x8 digits)."""

    dims: int = 64
    classes: int = 10
    hidden: int = 256
    layers: int = 2
    n_steps: int = 20          # Langevin steps per update (persistent, from the buffer)
    step_size: float = 2.0     # η
    noise_scale: float = 0.01  # σ
    clip_grad: float = 0.03
    buffer_size: int = 2000
    reinit: float = 0.05
    reg: float = 1.0           # λ on E(x)² + E(x̂)²
    gen_weight: float = 0.3    # weight of the generative (CD) term against the cross-entropy (0.3: lower test
                               # error than 1.0 over seeds 0-2, benchmarks/ebm_digits.py --only jem)
    data_noise: float = 0.01   # std of the noise on the data of the CD term
    clf_noise: float = 0.2     # std of the noise on the classifier's inputs (augmentation; lowers test error)

    def __post_init__(self):
        for name in ("dims", "classes", "hidden", "layers", "n_steps", "buffer_size"):
            checks.positive_int(name, getattr(self, name))
        checks.positive("step_size", self.step_size), checks.non_negative("noise_scale", self.noise_scale)
        checks.positive("clip_grad", self.clip_grad), checks.in_unit_interval("reinit", self.reinit, closed_right=True)
        checks.non_negative("reg", self.reg), checks.non_negative("gen_weight", self.gen_weight)
        checks.non_negative("data_noise", self.data_noise), checks.non_negative("clf_noise", self.clf_noise)


class JEM(nn.Module):
    """logits f_θ(x) (B, classes) from an MLP; p(y | x) = softmax f_θ(x), E_θ(x) = −logsumexp_y f_θ(x)[y].
    Chains live in [0, 1]^D, in a replay buffer as in :class:`genlib.ebm.EBM`."""

    def __init__(self, config: JEMConfig = JEMConfig(), generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        sizes = [config.dims] + [config.hidden] * config.layers
        body = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            body += [nn.Linear(n_in, n_out), nn.SiLU()]
        self.net = nn.Sequential(*body, nn.Linear(sizes[-1], config.classes))
        self.buffer = ReplayBuffer(config.buffer_size, config.dims, 0.0, 1.0, config.reinit, generator)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """f_θ(x), (B, D) -> (B, classes)."""
        return self.net(checks.images("x", x, dims=self.config.dims))

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        """E_θ(x) = −logsumexp_y f_θ(x)[y], (B, D) -> (B,)."""
        return -torch.logsumexp(self.logits(x), 1)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """The most probable class, (B, D) -> (B,)."""
        return self.logits(x).argmax(1)

    def langevin(self, x0: torch.Tensor, generator: torch.Generator | None = None, n_steps: int | None = None):
        c = self.config
        return langevin(self.energy, x0, c.n_steps if n_steps is None else n_steps, c.step_size, c.noise_scale,
                        c.clip_grad, bounds=(0.0, 1.0), generator=generator)

    def sample(self, n: int, generator: torch.Generator | None = None, n_steps: int | None = None) -> torch.Tensor:
        """``n`` samples (n, D): chains drawn from the buffer, advanced by the sampler."""
        x0 = self.buffer.draw(checks.positive_int("n", n), generator)[0].to(next(self.parameters()).device)
        return self.langevin(x0, generator, n_steps)


class JEMLoss:
    """``loss(jem, (x, y))`` for :func:`genlib.train.fit`: cross-entropy of p(y | x) on noised inputs
    x + clf_noise·ε, plus ``gen_weight`` × the persistent-CD surrogate of :func:`genlib.ebm.cd_loss` on
    E_θ(x)."""

    def __init__(self, generator: torch.Generator | None = None):
        self.generator = generator
        self.step = 0

    def __call__(self, model: JEM, batch) -> torch.Tensor:
        x, y = batch
        x = checks.support("x", checks.images("x", x, dims=model.config.dims), "real")
        c = model.config
        x_clf = x + c.clf_noise * _randn(x.shape, x, self.generator) if c.clf_noise > 0 else x
        ce = F.cross_entropy(model.logits(x_clf), y)
        if c.gen_weight == 0:
            return ce
        x_noisy = x + c.data_noise * _randn(x.shape, x, self.generator) if c.data_noise > 0 else x
        x0, slots = model.buffer.draw(len(x), self.generator)
        x_hat = model.langevin(x0.to(x.device), self.generator)
        model.buffer.put(slots, x_hat)
        self.step += 1
        return ce + c.gen_weight * cd_loss(model, x_noisy, x_hat, c.reg)
