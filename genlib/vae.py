r"""Latent-variable models and variational autoencoders (Chapter 4).

The model draws a latent code and then an image:

    z ~ p(z) = N(0, I_L),    x | z ~ p_θ(x | z),    so    p_θ(x) = ∫ p_θ(x | z) p(z) dz,

an infinite mixture: one component p_θ(x | z) for every z. The integral is estimated by sampling:

* trick 1, Monte Carlo from the prior:  p_θ(x) ≈ (1/k) Σ_i p_θ(x | z_i),  z_i ~ p(z);
* trick 2, importance sampling:  p_θ(x) ≈ (1/k) Σ_i w_i,  w_i = p_θ(x | z_i) p(z_i) / q(z_i),
  z_i ~ q; with q = p_θ(z | x) every weight equals p_θ(x) exactly;
* trick 3, amortised inference: an encoder predicts the proposal q_φ(z | x) = N(mu_φ(x),
  diag exp(log_var_φ(x))) for each x.

Jensen's inequality on trick 2 gives the evidence lower bound (ELBO) that encoder and decoder
maximise together (Kingma & Welling 2014; Rezende et al. 2014):

    log p_θ(x) ≥ E_q[log p_θ(x | z)] − KL(q_φ(z | x) ‖ p(z)) = ELBO,
    log p_θ(x) − ELBO = KL(q_φ(z | x) ‖ p_θ(z | x)),

and, with k importance samples, the tighter IWAE bound (Burda et al. 2016)

    L_k = E[log (1/k) Σ_i w_i],   ELBO = L_1 ≤ L_k ≤ L_{k+1} ≤ log p_θ(x).

The β-VAE loss is −E_q[log p_θ(x | z)] + β KL(q_φ(z | x) ‖ p(z)).

Contents: the estimators (:func:`log_p_prior_mc`, :func:`log_p_importance`, :func:`elbo_estimate`),
a tractable linear-Gaussian model to check them against (:class:`LinearGaussian`), the decoder
likelihoods, :func:`reparameterize`, :func:`kl_normal_std`, and the models :class:`VAE` (plain,
β-, conv and class-conditional, chosen by :class:`VAEConfig`) and :class:`Autoencoder`.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Distribution, Independent, MultivariateNormal, Normal

from genlib import checks, data, metrics, nets
from genlib._core import LOG_2PI, randn
from genlib.family import NLL, Family

LIKELIHOODS = ("categorical", "bernoulli", "gaussian")
ARCHS = ("mlp", "conv")


# ----------------------------------------------------------------------------- Gaussian basics


def reparameterize(mu: torch.Tensor, log_var: torch.Tensor, eps: torch.Tensor | None = None,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """z = mu + σ ⊙ eps with σ = exp(log_var / 2) and eps ~ N(0, I): a draw from N(mu, diag σ²)
    that is a differentiable function of mu and log_var. Shapes: all (..., L)."""
    if eps is None:
        eps = randn(mu.shape, mu, generator)
    return mu + torch.exp(0.5 * log_var) * eps


def kl_normal_std(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag σ²) ‖ N(0, I)) = ½ Σ_j (mu_j² + σ_j² − 1 − log σ_j²) per data point.
    Shapes: (..., L) -> (...)."""
    return 0.5 * (mu.pow(2) + log_var.exp() - 1.0 - log_var).sum(-1)


def rate_per_latent(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """Each latent coordinate's share of the rate, averaged over the batch: :func:`kl_normal_std`
    applied to every coordinate on its own. (B, L) -> (L,). A coordinate whose share is near 0 is
    *inactive*: the encoder returns the prior for it whatever x is."""
    return kl_normal_std(mu.unsqueeze(-1), log_var.unsqueeze(-1)).mean(0)


def reinforce_surrogate(f_z: torch.Tensor, log_q: torch.Tensor, baseline: float | torch.Tensor = 0.0) -> torch.Tensor:
    """The score-function (REINFORCE) estimator of ∇_φ E_{q_φ}[f(z)], as a surrogate to backpropagate.

    ∇_φ E_q[f(z)] = E_q[f(z) ∇_φ log q_φ(z)] needs no gradient of f and no reparameterisation, only
    log q_φ(z) of draws z that are *not* differentiated; a baseline b that does not depend on z
    leaves it unbiased (E_q[∇_φ log q_φ] = 0) and can shrink its variance (NVIL, Mnih & Gregor
    2014). ``f_z`` (k, ...) is detached; the gradient of the returned (k, ...) tensor's mean is the
    k-sample estimate."""
    return (f_z.detach() - baseline) * log_q


def diag_normal(mu: torch.Tensor, log_var: torch.Tensor) -> Independent:
    """N(mu, diag exp(log_var)) as a torch distribution over vectors (event shape (L,))."""
    return Independent(Normal(mu, torch.exp(0.5 * log_var)), 1)


def std_normal(latent_dim: int, dtype=torch.float32, device="cpu") -> Independent:
    """The prior p(z) = N(0, I_L)."""
    zeros = torch.zeros(latent_dim, dtype=dtype, device=device)
    return diag_normal(zeros, zeros)


def draw(dist: Distribution, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """k reparameterised draws from a Gaussian ``dist`` (diagonal ``Independent(Normal)`` or
    ``MultivariateNormal``): z = loc + scale · eps. Shape (k, *batch_shape, L)."""
    eps = randn((k, *dist.batch_shape, *dist.event_shape), dist.mean, generator)
    if isinstance(dist, MultivariateNormal):
        return dist.loc + (dist.scale_tril @ eps.unsqueeze(-1)).squeeze(-1)
    base = dist.base_dist if isinstance(dist, Independent) else dist
    if not isinstance(base, Normal):
        raise TypeError(f"draw needs a Gaussian distribution, got {type(dist).__name__}")
    return base.loc + base.scale * eps


# ----------------------------------------------------------------------------- the three tricks

LogLik = Callable[[torch.Tensor], torch.Tensor]  # z (k, ..., L) -> log p(x | z) (k, ...)


def log_mean_exp(log_w: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """log (1/k) Σ_i exp(log_w_i) along ``dim``, computed stably with logsumexp."""
    return torch.logsumexp(log_w, dim) - math.log(log_w.shape[dim])


def _chunks(k: int, chunk: int | None) -> list[int]:
    chunk = k if chunk is None else max(1, chunk)
    return [min(chunk, k - start) for start in range(0, k, chunk)]


def log_p_prior_mc(log_lik: LogLik, prior: Distribution, k: int,
                   generator: torch.Generator | None = None, chunk: int | None = None) -> torch.Tensor:
    """Trick 1: log p(x) ≈ log (1/k) Σ_i p(x | z_i) with z_i ~ p(z).

    The average of p(x | z_i) is unbiased for p(x); its log is biased low and very noisy when
    p(x | z) is large only on a small part of the prior. ``log_lik(z)`` maps (k, *batch, L) draws
    to log p(x | z) of shape (k, *batch); ``prior.batch_shape`` sets *batch. Returns (*batch).
    """
    log_w = torch.cat([log_lik(draw(prior, c, generator)) for c in _chunks(k, chunk)])  # (k, ...)
    return log_mean_exp(log_w, 0)


def importance_log_weights(log_lik: LogLik, prior: Distribution, proposal: Distribution, k: int,
                           generator: torch.Generator | None = None, chunk: int | None = None) -> torch.Tensor:
    """log w_i = log p(x | z_i) + log p(z_i) − log q(z_i) with z_i ~ q, drawn ``chunk`` at a time
    so that k can be large. Shape (k, *batch)."""

    def log_w(c):
        z = draw(proposal, c, generator)  # (c, *batch, L)
        return log_lik(z) + prior.log_prob(z) - proposal.log_prob(z)

    return torch.cat([log_w(c) for c in _chunks(k, chunk)])


def log_p_importance(log_lik: LogLik, prior: Distribution, proposal: Distribution, k: int,
                     generator: torch.Generator | None = None, chunk: int | None = None) -> torch.Tensor:
    """Trick 2: log p(x) ≈ log (1/k) Σ_i w_i, w_i = p(x | z_i) p(z_i) / q(z_i), z_i ~ q.

    The average weight is unbiased for p(x) under any q that covers the posterior; with
    q = p(z | x) every weight equals p(x), so one sample gives it exactly. Its expected log is the
    IWAE bound L_k. Returns (*batch).
    """
    return log_mean_exp(importance_log_weights(log_lik, prior, proposal, k, generator, chunk), 0)


def elbo_estimate(log_lik: LogLik, prior: Distribution, proposal: Distribution, k: int = 1,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Monte Carlo ELBO: (1/k) Σ_i log w_i, z_i ~ q, the mean of the *log* weights (Jensen's side
    of trick 2). Differentiable in the proposal's parameters (reparameterised). Returns (*batch)."""
    return importance_log_weights(log_lik, prior, proposal, k, generator).mean(0)


# ----------------------------------------------------------------------------- a tractable model


class LinearGaussian:
    """z ~ N(0, I_L), x | z ~ N(W z + b, σ² I_D): probabilistic PCA, where everything is exact.

    Marginal:  p(x) = N(x; b, W Wᵀ + σ² I).
    Posterior: p(z | x) = N(M⁻¹ Wᵀ (x − b), σ² M⁻¹) with M = Wᵀ W + σ² I.
    """

    def __init__(self, W: torch.Tensor, b: torch.Tensor, sigma: float):
        self.W, self.b, self.sigma = W, b, float(sigma)  # (D, L), (D,), scalar

    @classmethod
    def random(cls, dims: int = 8, latent_dim: int = 2, sigma: float = 0.3,
               generator: torch.Generator | None = None) -> "LinearGaussian":
        """A model with W, b ~ N(0, 1) entries, in float64 so that exact values are exact."""
        W = torch.randn(dims, latent_dim, generator=generator, dtype=torch.float64)
        b = torch.randn(dims, generator=generator, dtype=torch.float64)
        return cls(W, b, sigma)

    @property
    def latent_dim(self) -> int:
        return self.W.shape[1]

    def prior(self) -> Independent:
        return std_normal(self.latent_dim, dtype=self.W.dtype)

    def log_lik(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log N(x; W z + b, σ² I), summed over D. x (..., D), z (..., L) broadcast -> (...)."""
        mean = z @ self.W.T + self.b  # (..., D)
        return (-0.5 * ((x - mean) / self.sigma) ** 2 - math.log(self.sigma) - 0.5 * LOG_2PI).sum(-1)

    def marginal(self) -> MultivariateNormal:
        cov = self.W @ self.W.T + self.sigma**2 * torch.eye(len(self.b), dtype=self.W.dtype)
        return MultivariateNormal(self.b, covariance_matrix=cov)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x): (..., D) -> (...)."""
        return self.marginal().log_prob(x)

    def posterior(self, x: torch.Tensor) -> MultivariateNormal:
        """Exact p(z | x) for x (B, D): a batch of B Gaussians over z."""
        L = self.latent_dim
        M = self.W.T @ self.W + self.sigma**2 * torch.eye(L, dtype=self.W.dtype)  # (L, L)
        M_inv = torch.linalg.inv(M)
        mean = (x - self.b) @ self.W @ M_inv.T  # (B, L): rows M⁻¹ Wᵀ (x − b)
        return MultivariateNormal(mean, covariance_matrix=self.sigma**2 * M_inv)

    def elbo(self, x: torch.Tensor, q: Distribution) -> torch.Tensor:
        """Exact ELBO of a Gaussian q(z) = N(m, S) (batched like x):
        E_q[log p(x|z)] − KL(q ‖ p(z)), with
        E_q[log p(x|z)] = −D/2 log(2πσ²) − (‖x − W m − b‖² + tr(W S Wᵀ)) / (2σ²)."""
        m, S = q.mean, _covariance(q)  # (B, L), (B, L, L)
        D = len(self.b)
        resid = x - (m @ self.W.T + self.b)  # (B, D)
        trace = torch.einsum("dl,...lm,dm->...", self.W, S, self.W)  # tr(W S Wᵀ)
        expected = -0.5 * D * (LOG_2PI + 2 * math.log(self.sigma)) \
            - (resid.pow(2).sum(-1) + trace) / (2 * self.sigma**2)
        prior = MultivariateNormal(torch.zeros_like(m), covariance_matrix=torch.eye(
            self.latent_dim, dtype=m.dtype).expand_as(S))
        return expected - torch.distributions.kl_divergence(_as_mvn(q), prior)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(n, self.latent_dim, generator=generator, dtype=self.W.dtype)
        eps = torch.randn(n, len(self.b), generator=generator, dtype=self.W.dtype)
        return z @ self.W.T + self.b + self.sigma * eps  # (n, D)


def _covariance(q: Distribution) -> torch.Tensor:
    if isinstance(q, MultivariateNormal):
        return q.covariance_matrix
    return torch.diag_embed(q.variance)


def _as_mvn(q: Distribution) -> MultivariateNormal:
    return q if isinstance(q, MultivariateNormal) else MultivariateNormal(
        q.mean, covariance_matrix=_covariance(q))


# ----------------------------------------------------------------------------- decoder likelihoods


def _on(t: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """``t`` on the generator's device, where torch draws the random numbers."""
    return t if generator is None else t.to(generator.device)


class Categorical:
    """p(x | z) = Π_d Cat(x_d; softmax(logits_d)), x_d in {0, …, levels − 1}. logits (..., D, levels)."""

    def __init__(self, logits: torch.Tensor):
        self.logits = logits

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x | z) summed over the D pixels: x (..., D) integer levels -> (...)."""
        log_p = torch.log_softmax(self.logits, -1)  # (..., D, levels)
        index = x.long().expand(log_p.shape[:-1]).unsqueeze(-1)  # (..., D, 1)
        return log_p.gather(-1, index).squeeze(-1).sum(-1)

    @property
    def mean(self) -> torch.Tensor:
        """Expected level of each pixel, (..., D)."""
        levels = torch.arange(self.logits.shape[-1], dtype=self.logits.dtype, device=self.logits.device)
        return torch.softmax(self.logits, -1) @ levels

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        probs = _on(torch.softmax(self.logits, -1), generator)  # (..., D, levels)
        x = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=generator)
        return x.reshape(probs.shape[:-1]).to(self.logits.device)


class Bernoulli:
    """p(x | z) = Π_d Bern(x_d; sigmoid(logits_d)), x_d in {0, 1}. logits (..., D)."""

    def __init__(self, logits: torch.Tensor):
        self.logits = logits

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Σ_d x_d log p_d + (1 − x_d) log(1 − p_d) = Σ_d x_d ℓ_d − softplus(ℓ_d): (..., D) -> (...)."""
        return (x.float() * self.logits - F.softplus(self.logits)).sum(-1)

    @property
    def mean(self) -> torch.Tensor:
        return torch.sigmoid(self.logits)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.bernoulli(_on(self.mean, generator), generator=generator).to(self.logits.device)


class Gaussian:
    """p(x | z) = Π_d N(x_d; mu_d, exp(log_var_d)); log_var learned per pixel or fixed. (..., D)."""

    def __init__(self, mu: torch.Tensor, log_var: torch.Tensor):
        self.mu, self.log_var = mu, log_var

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """−½ Σ_d [log 2π + log σ_d² + (x_d − mu_d)² / σ_d²]: (..., D) -> (...)."""
        return -0.5 * (LOG_2PI + self.log_var + (x - self.mu) ** 2 / self.log_var.exp()).sum(-1)

    @property
    def mean(self) -> torch.Tensor:
        return self.mu

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        return reparameterize(self.mu, self.log_var.expand_as(self.mu), generator=generator)


# ----------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class VAEConfig:
    """A VAE's shape and objective. Defaults are the book profile: digits, categorical decoder."""

    dims: int = 64                       # D pixels
    shape: tuple[int, int] = (8, 8)      # how the D pixels fold into an image
    levels: int = 17                     # grey levels of the data (categorical decoder: one logit each)
    likelihood: str = "categorical"      # "categorical" | "bernoulli" | "gaussian"
    latent_dim: int = 32                 # L
    hidden: int = 512                    # width of the MLP (or of the conv head)
    layers: int = 1                      # hidden layers of each MLP
    dropout: float = 0.5                 # dropout after each hidden layer of the MLPs (1000 images overfit)
    arch: str = "mlp"                    # "mlp" | "conv"
    n_classes: int = 0                   # > 0: class-conditional VAE (labels to encoder and decoder)
    beta: float = 1.0                    # weight of KL(q ‖ p(z)) in the loss (β-VAE)
    fixed_log_var: float | None = None   # Gaussian decoder: a fixed log σ² (None: learned per pixel)

    def __post_init__(self):
        checks.choice("likelihood", self.likelihood, LIKELIHOODS)
        checks.choice("arch", self.arch, ARCHS)
        for name in ("dims", "latent_dim", "hidden", "layers"):
            checks.positive_int(name, getattr(self, name))
        checks.non_negative_int("n_classes", self.n_classes)
        checks.in_unit_interval("dropout", self.dropout)
        checks.non_negative("beta", self.beta)
        if isinstance(self.levels, bool) or not isinstance(self.levels, int) or self.levels < 2:
            raise ValueError(f"levels must be an integer >= 2 (grey levels of the data), got {checks.short(self.levels)}")
        if self.fixed_log_var is not None:
            checks.finite_number("fixed_log_var", self.fixed_log_var)
        shape = tuple(self.shape)
        if len(shape) != 2 or not all(isinstance(s, int) and s > 0 for s in shape) or math.prod(shape) != self.dims:
            raise ValueError(f"shape {checks.short(self.shape)} does not fold dims={self.dims} pixels into an "
                             f"image (H, W) with H * W = dims")
        if self.arch == "conv" and any(side % 4 for side in shape):
            raise ValueError(f"the conv arch halves the image twice, so both sides must be multiples of 4; "
                             f"got shape {shape} (use arch='mlp')")

    @classmethod
    def for_dataset(cls, name: str, **overrides) -> "VAEConfig":
        """The decoder likelihood that fits each data set: categorical over the 17 levels of
        digits, Bernoulli for binarised MNIST, and for 256-level MNIST (and mnist5k) a Gaussian with learned
        variance on dequantised pixels (its log-density is turned into a bound on the discrete
        log-likelihood by :func:`genlib.metrics.discrete_log_prob`)."""
        base = {
            "digits": dict(dims=64, shape=(8, 8), levels=17, likelihood="categorical"),
            "binarized_mnist": dict(dims=784, shape=(28, 28), levels=2, likelihood="bernoulli"),
            "mnist": dict(dims=784, shape=(28, 28), levels=256, likelihood="gaussian"),
            "mnist5k": dict(dims=784, shape=(28, 28), levels=256, likelihood="gaussian"),
        }
        if name not in base:
            raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(base)}")
        return cls(**{**base[name], **overrides})

    @property
    def params_per_pixel(self) -> int:
        """Decoder outputs per pixel: levels logits, one Bernoulli logit, or (mu, log_var)."""
        if self.likelihood == "categorical":
            return self.levels
        if self.likelihood == "gaussian" and self.fixed_log_var is None:
            return 2
        return 1


@dataclass(frozen=True)
class TrainConfig:
    """How the book profile trains a VAE with :func:`genlib.train.fit` (Adam, early stopping on
    the validation loss, best weights kept)."""

    epochs: int = 300        # at most; early stopping usually ends sooner
    batch_size: int = 64
    lr: float = 2e-3
    patience: int = 20       # epochs without a better validation loss before stopping


def model_inputs(x: torch.Tensor, config: VAEConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """Integer images (N, D) -> what the decoder likelihood scores: the levels themselves
    (categorical), 0/1 floats (Bernoulli), or dequantised floats in [0, 1) (Gaussian)."""
    if config.likelihood == "categorical":
        return x.long()
    if config.likelihood == "bernoulli":
        return x.float()
    return data.dequantize(x, config.levels, generator)


def _discrete(log_p: torch.Tensor, config: VAEConfig) -> torch.Tensor:
    """log P(x) of the integer image: unchanged for discrete decoders; for the Gaussian decoder on
    dequantised pixels the bound of :func:`genlib.metrics.discrete_log_prob`."""
    return metrics.discrete_log_prob(log_p, config.dims, config.levels) if config.likelihood == "gaussian" else log_p


def make_likelihood(params: torch.Tensor, config: VAEConfig):
    """Decoder output (..., D, P) -> the distribution p(x | z) it parameterises."""
    if config.likelihood == "categorical":
        return Categorical(params)  # (..., D, levels)
    if config.likelihood == "bernoulli":
        return Bernoulli(params[..., 0])
    mu = params[..., 0]
    if config.fixed_log_var is None:
        return Gaussian(mu, params[..., 1])
    return Gaussian(mu, torch.full_like(mu, config.fixed_log_var))


# ----------------------------------------------------------------------------- networks


mlp = nets.mlp  # Linear -> GELU (-> dropout), ``layers`` times, then a linear output layer


class MLPEncoder(nn.Module):
    """x (B, D) [and one-hot label (B, C)] -> (mu, log_var), each (B, L)."""

    def __init__(self, dims: int, latent_dim: int, hidden: int = 512, layers: int = 2, n_classes: int = 0,
                 dropout: float = 0.0):
        super().__init__()
        self.net = mlp(dims + n_classes, 2 * latent_dim, hidden, layers, dropout)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None):
        h = x if c is None else torch.cat([x, c], -1)  # (B, D + C)
        mu, log_var = self.net(h).chunk(2, -1)
        return mu, log_var


class MLPDecoder(nn.Module):
    """z (..., L) [and one-hot label (..., C)] -> likelihood parameters (..., D, P)."""

    def __init__(self, dims: int, latent_dim: int, params_per_pixel: int, hidden: int = 512,
                 layers: int = 2, n_classes: int = 0, dropout: float = 0.0):
        super().__init__()
        self.dims, self.P = dims, params_per_pixel
        self.net = mlp(latent_dim + n_classes, dims * params_per_pixel, hidden, layers, dropout)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        h = z if c is None else torch.cat([z, c], -1)  # (..., L + C)
        return self.net(h).unflatten(-1, (self.dims, self.P))  # (..., D, P)


class ConvEncoder(nn.Module):
    """Image (B, H*W) -> two stride-2 convolutions -> flatten [+ one-hot] -> (mu, log_var)."""

    def __init__(self, shape: tuple[int, int], latent_dim: int, hidden: int = 512, n_classes: int = 0,
                 channels: int = 32):
        super().__init__()
        self.shape = shape
        h, w = shape[0] // 4, shape[1] // 4
        self.conv = nn.Sequential(
            nn.Conv2d(1, channels, 4, 2, 1), nn.GELU(),             # (B, c, H/2, W/2)
            nn.Conv2d(channels, 2 * channels, 4, 2, 1), nn.GELU(),  # (B, 2c, H/4, W/4)
            nn.Flatten())
        self.head = mlp(2 * channels * h * w + n_classes, 2 * latent_dim, hidden, 1)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None):
        h = self.conv(x.reshape(-1, 1, *self.shape))  # (B, 2c h w)
        if c is not None:
            h = torch.cat([h, c], -1)
        mu, log_var = self.head(h).chunk(2, -1)
        return mu, log_var


class ConvDecoder(nn.Module):
    """z (..., L) [+ one-hot] -> linear -> two stride-2 transposed convolutions -> (..., D, P)."""

    def __init__(self, shape: tuple[int, int], latent_dim: int, params_per_pixel: int, hidden: int = 512,
                 n_classes: int = 0, channels: int = 32):
        super().__init__()
        self.shape, self.P, self.channels = shape, params_per_pixel, channels
        self.h, self.w = shape[0] // 4, shape[1] // 4
        self.head = nn.Sequential(mlp(latent_dim + n_classes, 2 * channels * self.h * self.w, hidden, 1),
                                  nn.GELU())
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(2 * channels, channels, 4, 2, 1), nn.GELU(),  # (N, c, H/2, W/2)
            nn.ConvTranspose2d(channels, params_per_pixel, 4, 2, 1))       # (N, P, H, W)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        h = z if c is None else torch.cat([z, c], -1)
        lead = h.shape[:-1]
        h = self.head(h.reshape(-1, h.shape[-1])).reshape(-1, 2 * self.channels, self.h, self.w)
        out = self.deconv(h)  # (N, P, H, W)
        return out.flatten(2).transpose(1, 2).reshape(*lead, -1, self.P)  # (..., D, P)


def make_networks(config: VAEConfig) -> tuple[nn.Module, nn.Module]:
    """Encoder and decoder for ``config``."""
    L, C, P = config.latent_dim, config.n_classes, config.params_per_pixel
    if config.arch == "conv":
        return (ConvEncoder(config.shape, L, config.hidden, C),
                ConvDecoder(config.shape, L, P, config.hidden, C))
    return (MLPEncoder(config.dims, L, config.hidden, config.layers, C, config.dropout),
            MLPDecoder(config.dims, L, P, config.hidden, config.layers, C, config.dropout))


# ----------------------------------------------------------------------------- models


class _LatentModel(nn.Module):
    """What a VAE and an autoencoder share: the decoder likelihood and input scaling."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config
        self.encoder, self.decoder = make_networks(config)

    def check(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` if it is a batch (B, D) in the support of the decoder likelihood, else a one-line
        error: levels 0..levels-1 (categorical), 0/1 (Bernoulli), finite values (Gaussian)."""
        checks.images("x", x, dims=self.config.dims)
        kind = {"categorical": "categorical", "bernoulli": "binary", "gaussian": "real"}[self.config.likelihood]
        return checks.support("x", x, kind, self.config.levels)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder input: pixels scaled to [0, 1] (every path into the model checks ``x`` here)."""
        self.check(x)
        if self.config.likelihood == "gaussian":
            return x.float()
        return x.float() / (self.config.levels - 1)

    def one_hot(self, y: torch.Tensor | None) -> torch.Tensor | None:
        if self.config.n_classes == 0:
            checks.no_labels(y, f"this {type(self).__name__} (n_classes=0)")
            return None
        if y is None:
            raise ValueError("a class-conditional model needs labels y")
        return F.one_hot(y.long(), self.config.n_classes).float()

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None):
        """p_θ(x | z [, y]) for codes z (..., L): a likelihood with log_prob, mean and sample."""
        c = self.one_hot(y)
        if c is not None:
            c = c.expand(*z.shape[:-1], c.shape[-1])  # labels broadcast over leading sample dims
        return make_likelihood(self.decoder(z, c), self.config)


class VAE(_LatentModel):
    """Variational autoencoder: encoder q_φ(z | x) = N(mu, diag exp(log_var)), prior N(0, I),
    decoder p_θ(x | z) (categorical, Bernoulli or Gaussian). With ``config.n_classes > 0`` both
    networks also see the one-hot label y (class-conditional VAE); ``config.beta`` weights the KL."""

    @property
    def prior(self) -> Independent:
        p = next(self.parameters())
        return std_normal(self.config.latent_dim, dtype=p.dtype, device=p.device)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, D) -> mu, log_var, each (B, L): the parameters of q_φ(z | x)."""
        return self.encoder(self.features(x), self.one_hot(y))

    def terms(self, x: torch.Tensor, y: torch.Tensor | None = None,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The ELBO's two terms per data point, from one reparameterised z ~ q_φ(z | x):
        reconstruction log p_θ(x | z) (B,) and rate KL(q_φ(z | x) ‖ p(z)) (B,)."""
        mu, log_var = self.encode(x, y)                        # (B, L) each
        z = reparameterize(mu, log_var, generator=generator)   # z = mu + σ ⊙ eps
        reconstruction = self.decode(z, y).log_prob(x)         # (B,)
        kl = kl_normal_std(mu, log_var)                        # (B,)
        return reconstruction, kl

    def elbo(self, x: torch.Tensor, y: torch.Tensor | None = None,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """One-sample estimate of E_q[log p_θ(x | z)] − KL(q_φ(z | x) ‖ p(z)), per data point (B,)."""
        reconstruction, kl = self.terms(x, y, generator)
        return reconstruction - kl

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None, *, beta: float | None = None,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean over the batch of −log p_θ(x | z) + β KL(q_φ(z | x) ‖ p(z)); β = 1 is −ELBO."""
        beta = self.config.beta if beta is None else beta
        reconstruction, kl = self.terms(x, y, generator)
        return (-reconstruction + beta * kl).mean()

    def log_weights(self, x: torch.Tensor, k: int, y: torch.Tensor | None = None,
                    generator: torch.Generator | None = None, chunk: int | None = None) -> torch.Tensor:
        """log w_i = log p_θ(x | z_i) + log p(z_i) − log q_φ(z_i | x), z_i ~ q_φ(z | x): (k, B).

        Samples are drawn ``chunk`` at a time (default: about 16k decoder rows per chunk)."""
        checks.positive_int("k", k)
        mu, log_var = self.encode(x, y)
        chunk = chunk or max(1, 16384 // len(x))

        def log_lik(z):  # z (c, B, L) -> log p_θ(x | z) (c, B)
            return self.decode(z, y).log_prob(x)

        return importance_log_weights(log_lik, self.prior, diag_normal(mu, log_var), k, generator, chunk)

    def iwae_bound(self, x: torch.Tensor, k: int = 1000, y: torch.Tensor | None = None,
                   generator: torch.Generator | None = None, chunk: int | None = None) -> torch.Tensor:
        """log (1/k) Σ_i w_i with the encoder as proposal (trick 2 with trick 3), per data point (B,).

        Its expectation L_k is the IWAE bound; L_1 = ELBO and L_k → log p_θ(x) as k grows."""
        return log_mean_exp(self.log_weights(x, k, y, generator, chunk), 0)

    def log_prob(self, x: torch.Tensor, k: int = 1000, y: torch.Tensor | None = None,
                 generator: torch.Generator | None = None, chunk: int | None = None) -> torch.Tensor:
        """An *estimate* of log p_θ(x), not the exact value: log (1/k) Σ_i w_i with the encoder as
        proposal (= :meth:`iwae_bound`). Its expectation is the IWAE bound L_k ≤ log p_θ(x), so it is a
        lower bound in expectation (a single call can land above log p_θ(x)); it tightens as k grows."""
        return self.iwae_bound(x, k, y, generator, chunk)

    def sample(self, n: int, *, y: torch.Tensor | None = None, generator: torch.Generator | None = None,
               mean: bool = False) -> torch.Tensor:
        """z ~ N(0, I), then x ~ p_θ(x | z) (or its mean with ``mean=True``). Shape (n, D)."""
        checks.positive_int("n", n)
        p = next(self.parameters())
        z = randn((n, self.config.latent_dim), p, generator)
        px = self.decode(z, y)
        return px.mean if mean else px.sample(generator)

    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Mean of p_θ(x | z = mu_φ(x)): the deterministic reconstruction, (B, D)."""
        mu, _ = self.encode(x, y)
        return self.decode(mu, y).mean


class Autoencoder(_LatentModel):
    """Deterministic autoencoder: z = f_φ(x), loss −log p_θ(x | z) (squared error for a Gaussian
    decoder with fixed variance). No prior, so no log_prob and no sample."""

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, D) -> code z (B, L): the encoder's mean head (its log_var head is unused)."""
        mu, _ = self.encoder(self.features(x), self.one_hot(y))
        return mu

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Mean reconstruction loss −log p_θ(x | z = f_φ(x))."""
        return -self.decode(self.encode(x, y), y).log_prob(x).mean()

    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.encode(x, y), y).mean


def batch_loss(model: nn.Module, batch) -> torch.Tensor:
    """``model.loss`` on a batch tuple ``(x,)`` or ``(x, y)``: the loss that :func:`genlib.train.fit` takes."""
    return model.loss(*batch)


@torch.no_grad()
def evaluate_nll(model: VAE, x: torch.Tensor, y: torch.Tensor | None = None, k: int | tuple[int, ...] = 1000,
                 batch_size: int = 256, generator: torch.Generator | None = None):
    """Test −IWAE_k of the integer images, in nats per image: an :class:`~genlib.family.NLL` of kind
    ``"estimate"`` (a bound on −log p_θ(x) only in expectation).

    ``k`` may be a tuple of sample sizes that divide the largest: then one pass draws max(k) log-weights per
    image and returns ``{k: NLL}``; the bound for a smaller k averages the max(k)/k disjoint groups of k
    weights, each group one draw of L_k's estimator (the same expectation, less noise, no extra draws)."""
    ks = (k,) if isinstance(k, int) else tuple(sorted(set(k)))
    for each in ks:
        checks.positive_int("k", each)
        if ks[-1] % each:
            raise ValueError(f"every k must divide the largest, {ks[-1]}; got {each}")
    model.eval()
    sums = dict.fromkeys(ks, 0.0)
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size]
        yb = None if y is None else y[start:start + batch_size]
        log_w = model.log_weights(xb, ks[-1], yb, generator)  # (max k, B)
        for each in ks:
            groups = log_mean_exp(log_w.reshape(ks[-1] // each, each, -1), 1).mean(0)  # (B,)
            sums[each] += float(_discrete(groups, model.config).sum())
    nll = {each: NLL(-sums[each] / len(x), "estimate", f"-IWAE bound with k = {each}, mean of "
                     f"{ks[-1] // each} group(s) per image") for each in ks}
    return nll[k] if isinstance(k, int) else nll


@torch.no_grad()
def evaluate_elbo(model: VAE, x: torch.Tensor, y: torch.Tensor | None = None, batch_size: int = 256,
                  generator: torch.Generator | None = None, samples: int = 1) -> NLL:
    """Test −ELBO of the integer images (analytic KL; each image's reconstruction term averaged over
    ``samples`` draws of z), in nats per image: an :class:`~genlib.family.NLL` of kind ``"bound"``."""
    model.eval()
    total = 0.0
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size]
        yb = None if y is None else y[start:start + batch_size]
        draws = torch.stack([model.elbo(xb, yb, generator) for _ in range(samples)])  # (S, B)
        total += float(_discrete(draws.mean(0), model.config).sum())
    return NLL(-total / len(x), "bound", f"-ELBO, {samples} draw(s) of z per image")


# ----------------------------------------------------------------------------- the family's declaration


def _build(params) -> VAE:
    """Chapter 4, section 7: the chapter's main VAE."""
    return VAE(VAEConfig.for_dataset(params.dataset, latent_dim=params.latent_dim, arch=params.model))


def _train(model: VAE, params, generator: torch.Generator, options: dict):
    from genlib.train import fit

    settings = TrainConfig()
    train, val = (model_inputs(data.images(params.dataset, s).x, model.config, generator) for s in ("train", "val"))
    return fit(model, batch_loss, train, val, epochs=params.epochs, batch_size=settings.batch_size,
               lr=settings.lr, patience=settings.patience, generator=generator, **options)


def _nll(model: VAE, x: torch.Tensor, generator: torch.Generator) -> NLL:
    # batch by batch, the ELBO's draw before the IWAE's (the order the scoreboard's numbers were drawn in)
    batches = [x[start:start + 64] for start in range(0, len(x), 64)]
    elbo, iwae = zip(*[(evaluate_elbo(model, xb, generator=generator).nats * len(xb),
                        evaluate_nll(model, xb, k=1000, generator=generator).nats * len(xb)) for xb in batches])
    return NLL(sum(iwae) / len(x), "estimate",
               f"NLL: -IWAE with k = 1000 (a bound in expectation); -ELBO = {sum(elbo) / len(x):.1f}")


def _samples(model: VAE, n: int, generator: torch.Generator) -> torch.Tensor:
    x = model.sample(n, generator=generator).float()
    return x.clamp(0, 1) if model.config.likelihood == "gaussian" else x / (model.config.levels - 1)


FAMILY = Family(
    name="vae", chapter="04_vae", model=VAE, build=_build, train=_train, samples=_samples, nll=_nll, density="estimate",
    features=lambda model, x: model.encode(x)[0],
    inputs=lambda model, x, levels, generator: model_inputs(x, model.config, generator),
    smoke={"epochs": 1, "latent_dim": 4},
    describe=lambda model, params: (f"VAE ({model.config.arch.upper()}, L = {model.config.latent_dim}, "
                                    f"{model.config.likelihood} decoder)"))
