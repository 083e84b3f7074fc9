r"""Classical density models fitted by maximum likelihood: a Gaussian, a mixture of Gaussians, a KDE.

Every model here is an explicit density :math:`p_\theta(x)` over :math:`x \in \mathbb{R}^D` and is
fitted by maximising the mean log-likelihood of the training points,

.. math::  \hat\theta = \arg\max_\theta \frac1N \sum_{n=1}^N \log p_\theta(x_n),

which is the same as minimising :math:`\mathrm{KL}(p_\text{data} \,\|\, p_\theta)` (Chapter 1).

* :class:`Gaussian` -- :math:`\mathcal N(x \mid \mu, \Sigma)`. The maximum-likelihood estimate is in
  closed form: :math:`\mu = \frac1N\sum_n x_n`, :math:`\Sigma = \frac1N\sum_n (x_n-\mu)(x_n-\mu)^\top`.
* :class:`GaussianMixture` -- :math:`p(x) = \sum_{k=1}^K \pi_k \mathcal N(x \mid \mu_k, \Sigma_k)`,
  a latent-variable model with :math:`z \sim \mathrm{Cat}(\pi)`, :math:`x \mid z=k \sim
  \mathcal N(\mu_k, \Sigma_k)`. :math:`\log p(x)` is computed with log-sum-exp. Fitted either by EM
  (:meth:`GaussianMixture.fit_em`: E-step responsibilities
  :math:`r_{nk} = p(z=k \mid x_n)`, M-step weighted maximum likelihood) or by gradient ascent on
  the log-likelihood (:meth:`GaussianMixture.fit_gradient`: Adam on unconstrained parameters).
* :class:`FilingCabinet` -- the empirical distribution of the training set, a pmf with mass
  :math:`1/N` on each stored point (Chapter 1): perfect on the training set, :math:`-\infty` off it.
* :class:`KDE` -- the kernel density estimate
  :math:`p(x) = \frac1N\sum_n \mathcal N(x \mid x_n, H)`, a smoothed copy of the training set
  (Chapter 1's "filing cabinet"); its bandwidth is chosen by held-out likelihood.

Chapter 2, "Density models: Gaussians and mixtures", derives and uses the first two; Chapter 1
uses the KDE. All arithmetic is done in float64; inputs may be float32 (or any real dtype), and
:meth:`log_prob` answers in the input's floating dtype. Samples come back as float32, like
:mod:`genlib.data`.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch

from genlib import checks, data, metrics
from genlib._core import LOG_2PI
from genlib.family import NLL, Family

COVARIANCES = ("full", "diag")
INITS = ("kmeans++", "random")


# ----------------------------------------------------------------------------- shared pieces


def _as64(x: torch.Tensor) -> torch.Tensor:
    """``x`` as a float64 tensor of shape (N, D) (a copy if the dtype changes; never edited)."""
    x = torch.as_tensor(x)
    if x.ndim != 2:
        raise ValueError(f"expected points of shape (N, D), got shape {tuple(x.shape)}")
    return x.to(torch.float64)


def _training_points(x: torch.Tensor, at_least: int = 1) -> torch.Tensor:
    """``x`` as float64 (N, D) with at least ``at_least`` finite points, or a one-line ValueError."""
    x = _as64(x)
    if len(x) < at_least:
        raise ValueError(f"fitting needs at least {at_least} point{'s' * (at_least > 1)}, got {len(x)}")
    checks.support("x", x, "real")
    return x


def _fitted(model, attribute: str, x: torch.Tensor | None = None) -> None:
    """A one-line error for a model used before it has parameters, or on points of another D."""
    value = getattr(model, attribute)
    if value is None:
        raise RuntimeError(f"this {type(model).__name__} has no parameters yet: call fit(x) first")
    if x is not None:
        D = value.shape[-1]
        shape = tuple(torch.as_tensor(x).shape)
        if len(shape) != 2 or shape[1] != D:
            raise ValueError(f"expected points of shape (N, {D}), got shape {shape}")


def _param(t) -> torch.Tensor:
    """A parameter as a float64 tensor: tensors keep their device, anything else goes through NumPy."""
    if isinstance(t, torch.Tensor):
        return t.detach().to(torch.float64).clone()
    return torch.as_tensor(np.asarray(t, dtype=np.float64))


def _out_dtype(x: torch.Tensor) -> torch.dtype:
    x = torch.as_tensor(x)
    return x.dtype if x.is_floating_point() else torch.get_default_dtype()


def gaussian_log_prob(x: torch.Tensor, mu: torch.Tensor, L: torch.Tensor) -> torch.Tensor:
    r"""Log-density of :math:`\mathcal N(\mu, LL^\top)` at ``x`` for a batch of Gaussians.

    ``x`` (N, D), ``mu`` (K, D), ``L`` (K, D, D) lower-triangular Cholesky factors -> (N, K):

    .. math:: \log\mathcal N(x\mid\mu,\Sigma) = -\tfrac12\big(D\log 2\pi + \log|\Sigma|
              + \|L^{-1}(x-\mu)\|^2\big), \qquad \log|\Sigma| = 2\sum_d \log L_{dd}.
    """
    D = x.shape[1]
    maha = torch.stack([  # one component at a time keeps memory at (D, N), not (K, D, N)
        torch.linalg.solve_triangular(L_k, (x - mu_k).T, upper=False).square().sum(0)
        for mu_k, L_k in zip(mu, L)])  # (K, N): ||L_k^-1 (x_n - mu_k)||^2
    log_det = 2 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)  # (K,)
    return (-0.5 * (D * LOG_2PI + log_det[:, None] + maha)).T  # (N, K)


def _draw_normal(n: int, D: int, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(n, D, generator=generator, dtype=torch.float64)  # (n, D), on the CPU


def mean_log_prob(model, x: torch.Tensor) -> float:
    """Mean log-likelihood ``(1/N) sum_n log p(x_n)`` in nats per point: the held-out score."""
    with torch.no_grad():
        return float(model.log_prob(_as64(x)).mean())


# ----------------------------------------------------------------------------- Gaussian


class Gaussian:
    r"""A full-covariance Gaussian :math:`\mathcal N(\mu, \Sigma)`; :meth:`fit` is the closed-form MLE.

    Build it from parameters, ``Gaussian(mu, cov)``, or from data, ``Gaussian().fit(x)``.
    ``reg`` is added to the diagonal of the fitted covariance (0 gives the exact MLE).
    """

    def __init__(self, mu: torch.Tensor | None = None, cov: torch.Tensor | None = None, reg: float = 0.0):
        self.mu = None if mu is None else torch.as_tensor(mu, dtype=torch.float64)  # (D,)
        self.cov = None if cov is None else torch.as_tensor(cov, dtype=torch.float64)  # (D, D)
        self.reg = reg

    def fit(self, x: torch.Tensor) -> "Gaussian":
        """Maximum likelihood: the sample mean and the biased (1/N) sample covariance."""
        x = _training_points(x)  # (N, D)
        self.mu = x.mean(0)  # (D,)
        diff = x - self.mu  # (N, D)
        self.cov = diff.T @ diff / len(x) + self.reg * torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
        return self

    @property
    def L(self) -> torch.Tensor:
        """Cholesky factor of the covariance, (D, D)."""
        return torch.linalg.cholesky(self.cov)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log N(x | mu, cov)`` for each row of ``x`` (N, D) -> (N,)."""
        _fitted(self, "mu", x)
        x64 = _as64(x).to(self.mu.device)
        return gaussian_log_prob(x64, self.mu[None], self.L[None])[:, 0].to(_out_dtype(x))

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Negative mean log-likelihood (nats per point)."""
        return -self.log_prob(x).mean()

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws ``x = mu + L eps`` with ``eps ~ N(0, I)``: shape (n, D), float32."""
        _fitted(self, "mu")
        checks.positive_int("n", n)
        eps = _draw_normal(n, len(self.mu), generator).to(self.mu.device)  # (n, D)
        return (self.mu + eps @ self.L.T).float()


# ----------------------------------------------------------------------------- mixture


class GaussianMixture:
    r"""A mixture of ``K`` Gaussians :math:`\sum_k \pi_k\,\mathcal N(x\mid\mu_k,\Sigma_k)`.

    Parameters (after a fit, or set by hand): ``pi`` (K,), ``mu`` (K, D), ``cov`` (K, D, D); all
    float64. ``covariance="diag"`` keeps every :math:`\Sigma_k` diagonal (still stored as (K, D, D)).
    ``reg`` is a floor added to every covariance's diagonal, so that no component can collapse
    onto a single point (where the likelihood is unbounded).

    After :meth:`fit_em` or :meth:`fit_gradient`, ``history[t]`` is the mean training
    log-likelihood after ``t`` updates (``history[0]`` is the initialisation) and, with
    ``keep_snapshots=True``, ``snapshots[t]`` is a copy of the mixture at that point.
    """

    def __init__(self, K: int = 8, covariance: str = "full", reg: float = 1e-6):
        checks.positive_int("K", K)
        checks.choice("covariance", covariance, COVARIANCES)
        checks.non_negative("reg", reg)
        self.K, self.covariance, self.reg = K, covariance, reg
        self.pi = self.mu = self.cov = None
        self.history: list[float] = []
        self.snapshots: list[GaussianMixture] = []

    # -- the density ----------------------------------------------------------------------

    @property
    def D(self) -> int:
        return self.mu.shape[1]

    @property
    def n_parameters(self) -> int:
        """Free parameters: K-1 weights, K*D means, and K*D or K*D(D+1)/2 covariance entries."""
        per_cov = self.D if self.covariance == "diag" else self.D * (self.D + 1) // 2
        return self.K - 1 + self.K * self.D + self.K * per_cov

    def log_joint(self, x: torch.Tensor) -> torch.Tensor:
        """``log pi_k + log N(x_n | mu_k, cov_k)`` = ``log p(x_n, z=k)`` for ``x`` (N, D) -> (N, K)."""
        return self._log_joint(x).to(_out_dtype(x))

    def _log_joint(self, x: torch.Tensor) -> torch.Tensor:  # float64 (N, K)
        _fitted(self, "mu", x)
        x64 = _as64(x).to(self.mu.device)
        L = torch.linalg.cholesky(self.cov)  # (K, D, D)
        return torch.log(self.pi) + gaussian_log_prob(x64, self.mu, L)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log p(x) = logsumexp_k [log pi_k + log N(x | mu_k, cov_k)]`` for ``x`` (N, D) -> (N,)."""
        return torch.logsumexp(self._log_joint(x), dim=1).to(_out_dtype(x))

    def responsibilities(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior over the component, ``r_nk = p(z=k | x_n)``: (N, K), rows sum to 1."""
        return torch.softmax(self._log_joint(x), dim=1).to(_out_dtype(x))

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None, *,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """Negative mean log-likelihood (nats per point)."""
        checks.no_labels(y, "the mixture")
        return -self.log_prob(x).mean()

    def sample(self, n: int, *, y: torch.Tensor | None = None, generator: torch.Generator | None = None,
               return_z: bool = False):
        """Ancestral sampling: ``z ~ Cat(pi)``, then ``x = mu_z + L_z eps``. Returns (n, D) float32
        (and the components ``z`` (n,) if ``return_z``)."""
        _fitted(self, "mu")
        checks.positive_int("n", n)
        checks.no_labels(y, "the mixture")
        z = torch.multinomial(self.pi.cpu(), n, replacement=True, generator=generator)  # (n,)
        eps = _draw_normal(n, self.D, generator)  # (n, D)
        z, eps = z.to(self.mu.device), eps.to(self.mu.device)
        L = torch.linalg.cholesky(self.cov)  # (K, D, D)
        x = self.mu[z] + (L[z] @ eps[:, :, None])[:, :, 0]  # (n, D)
        return (x.float(), z) if return_z else x.float()

    def copy(self) -> "GaussianMixture":
        """A new mixture with copies of the parameters (no history)."""
        other = GaussianMixture(self.K, self.covariance, self.reg)
        other.pi, other.mu, other.cov = (t.detach().clone() for t in (self.pi, self.mu, self.cov))
        return other

    @classmethod
    def from_params(cls, pi, mu, cov, covariance: str = "full", reg: float = 1e-6) -> "GaussianMixture":
        """A mixture with the given ``pi`` (K,), ``mu`` (K, D), ``cov`` (K, D, D); checked for
        consistent shapes, weights that form a distribution and positive-definite covariances."""
        pi, mu, cov = (_param(t) for t in (pi, mu, cov))
        if pi.ndim != 1 or mu.ndim != 2 or cov.ndim != 3 or not (
                len(pi) == len(mu) == len(cov) and cov.shape[1:] == (mu.shape[1], mu.shape[1])):
            raise ValueError(f"expected pi (K,), mu (K, D) and cov (K, D, D), got shapes "
                             f"{tuple(pi.shape)}, {tuple(mu.shape)} and {tuple(cov.shape)}")
        if (pi < 0).any() or abs(float(pi.sum()) - 1) > 1e-6:
            raise ValueError(f"the weights pi must be >= 0 and sum to 1, got sum {float(pi.sum()):.6g} "
                             f"and minimum {float(pi.min()):.6g}")
        if not torch.allclose(cov, cov.transpose(1, 2)) or torch.linalg.cholesky_ex(cov).info.any():
            raise ValueError("every covariance must be symmetric positive definite")
        model = cls(len(pi), covariance, reg)
        model.pi, model.mu, model.cov = pi, mu, cov
        return model

    # -- initialisation -------------------------------------------------------------------

    def init(self, x: torch.Tensor, init: str = "kmeans++", generator: torch.Generator | None = None):
        """Means at ``K`` data points (k-means++ seeding, or uniformly at random), equal weights,
        every covariance equal to the data's covariance. Returns self."""
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}; choose one of: {', '.join(INITS)}")
        x = _as64(x)
        if len(x) < self.K:
            raise ValueError(f"need at least K={self.K} points to initialise, got {len(x)}")
        rows = _kmeans_pp(x, self.K, generator) if init == "kmeans++" else \
            torch.randperm(len(x), generator=generator)[: self.K]
        self.mu = x[rows.to(x.device)].clone()  # (K, D)
        self.pi = torch.full((self.K,), 1.0 / self.K, dtype=x.dtype, device=x.device)
        data_cov = Gaussian().fit(x).cov  # (D, D)
        if self.covariance == "diag":
            data_cov = torch.diag(torch.diagonal(data_cov))
        eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
        self.cov = (data_cov + self.reg * eye).expand(self.K, -1, -1).clone()  # (K, D, D)
        return self

    # -- EM -------------------------------------------------------------------------------

    def e_step(self, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        """Responsibilities ``r`` (N, K) under the current parameters, and the mean log-likelihood."""
        log_joint = self._log_joint(x)  # (N, K)
        log_px = torch.logsumexp(log_joint, dim=1)  # (N,)
        return torch.exp(log_joint - log_px[:, None]), float(log_px.mean())

    def m_step(self, x: torch.Tensor, r: torch.Tensor) -> "GaussianMixture":
        r"""Weighted maximum likelihood: :math:`N_k=\sum_n r_{nk}`, :math:`\pi_k=N_k/N`,
        :math:`\mu_k=\frac1{N_k}\sum_n r_{nk}x_n`,
        :math:`\Sigma_k=\frac1{N_k}\sum_n r_{nk}(x_n-\mu_k)(x_n-\mu_k)^\top` (+ ``reg`` I)."""
        x, r = _as64(x), r.to(torch.float64)
        N_k = r.sum(0) + 10 * torch.finfo(r.dtype).tiny  # (K,), never exactly 0
        self.pi = N_k / N_k.sum()
        self.mu = (r.T @ x) / N_k[:, None]  # (K, D)
        cov = torch.stack([_weighted_cov(x - mu_k, r_k, self.covariance)  # (K, D, D)
                           for mu_k, r_k in zip(self.mu, r.T)]) / N_k[:, None, None]
        self.cov = cov + self.reg * torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
        return self

    def fit_em(self, x: torch.Tensor, iterations: int = 100, tol: float | None = 1e-6,
               init: str = "kmeans++", generator: torch.Generator | None = None,
               keep_snapshots: bool = False) -> "GaussianMixture":
        """Fit by expectation-maximisation from a fresh ``init``; stop after ``iterations`` updates
        or when the mean log-likelihood gains less than ``tol`` (``None``: never). Returns self."""
        x = _as64(x)
        self.init(x, init, generator)
        self.history, self.snapshots = [], []
        for t in range(iterations + 1):
            r, log_lik = self.e_step(x)  # E-step at the current parameters
            self._record(log_lik, keep_snapshots)
            converged = t > 0 and tol is not None and self.history[-1] - self.history[-2] < tol
            if t == iterations or converged:
                break
            self.m_step(x, r)
        return self

    def _record(self, log_lik: float, keep_snapshots: bool) -> None:
        self.history.append(log_lik)
        if keep_snapshots:
            self.snapshots.append(self.copy())

    # -- gradient ascent ------------------------------------------------------------------

    def fit_gradient(self, x: torch.Tensor, steps: int = 500, lr: float = 0.05,
                     init: str = "kmeans++", generator: torch.Generator | None = None,
                     keep_snapshots: bool = False) -> "GaussianMixture":
        r"""Fit by Adam on the mean log-likelihood (full batch), from a fresh ``init``. Returns self.

        Unconstrained parameters: logits :math:`a` with :math:`\pi = \mathrm{softmax}(a)`; means
        :math:`\mu_k`; Cholesky factors :math:`L_k` = strictly-lower part + :math:`\mathrm{diag}(e^{s_k})`
        with :math:`\Sigma_k = L_kL_k^\top + \mathrm{reg}\,I` (diagonal covariance: :math:`L_k=\mathrm{diag}(e^{s_k})`).
        """
        x = _as64(x)
        self.init(x, init, generator)
        theta = self._unconstrained()
        optimizer = torch.optim.Adam(theta.values(), lr=lr)
        self.history, self.snapshots = [], []
        for step in range(steps + 1):
            self._constrain(theta)
            log_lik = torch.logsumexp(self._log_joint(x), dim=1).mean()
            self._record(float(log_lik.detach()), keep_snapshots)
            if step == steps:
                break
            optimizer.zero_grad(set_to_none=True)
            (-log_lik).backward()
            optimizer.step()
        self.pi, self.mu, self.cov = (t.detach() for t in (self.pi, self.mu, self.cov))
        return self

    def _unconstrained(self) -> dict[str, torch.Tensor]:
        eye = torch.eye(self.D, dtype=self.cov.dtype, device=self.cov.device)
        L = torch.linalg.cholesky(self.cov - self.reg * eye)  # (K, D, D)
        theta = {"logits": torch.log(self.pi), "mu": self.mu,
                 "log_diag": torch.log(torch.diagonal(L, dim1=-2, dim2=-1))}  # (K,), (K, D), (K, D)
        if self.covariance == "full":
            theta["lower"] = torch.tril(L, diagonal=-1)  # (K, D, D)
        return {name: t.detach().clone().requires_grad_(True) for name, t in theta.items()}

    def _constrain(self, theta: dict[str, torch.Tensor]) -> None:
        eye = torch.eye(self.D, dtype=self.mu.dtype, device=self.mu.device)
        L = torch.diag_embed(torch.exp(theta["log_diag"]))  # (K, D, D)
        if "lower" in theta:
            L = L + torch.tril(theta["lower"], diagonal=-1)
        self.pi = torch.softmax(theta["logits"], dim=0)  # (K,)
        self.mu = theta["mu"]  # (K, D)
        self.cov = L @ L.transpose(1, 2) + self.reg * eye  # (K, D, D)


def _weighted_cov(diff: torch.Tensor, r_k: torch.Tensor, covariance: str) -> torch.Tensor:
    """``sum_n r_nk diff_n diff_n^T`` for ``diff`` (N, D), ``r_k`` (N,) -> (D, D) (diagonal only for "diag")."""
    if covariance == "diag":
        return torch.diag(r_k @ diff.square())
    return (r_k[:, None] * diff).T @ diff


def _kmeans_pp(x: torch.Tensor, K: int, generator: torch.Generator | None) -> torch.Tensor:
    """k-means++ seeding: each next centre is a data point drawn with probability proportional to
    its squared distance from the nearest centre so far. Returns K row indices (K,)."""
    first = torch.randint(len(x), (1,), generator=generator)
    rows = [int(first)]
    d2 = ((x - x[rows[0]]) ** 2).sum(1)  # (N,)
    for _ in range(1, K):
        weights = d2.cpu() if d2.sum() > 0 else torch.ones(len(x), dtype=x.dtype)
        rows.append(int(torch.multinomial(weights, 1, generator=generator)))
        d2 = torch.minimum(d2, ((x - x[rows[-1]]) ** 2).sum(1))
    return torch.tensor(rows)


# ----------------------------------------------------------------------------- KDE


class KDE:
    r"""Gaussian kernel density estimate :math:`p(x) = \frac1N\sum_n \mathcal N(x \mid x_n, H)`.

    * ``KDE(bandwidth=h)``: isotropic kernel, :math:`H = h^2 I` (``h`` is a standard deviation).
    * ``KDE(bw_method="scott" | "silverman" | factor)``: scipy's convention
      (:class:`scipy.stats.gaussian_kde`), :math:`H = f^2\,\widehat{\mathrm{Cov}}(x)` with the
      unbiased data covariance and :math:`f = N^{-1/(D+4)}` (Scott),
      :math:`f = (N(D+2)/4)^{-1/(D+4)}` (Silverman), or the given factor. Overrides ``bandwidth``.
    """

    def __init__(self, bandwidth: float = 0.3, bw_method: str | float | None = None, chunk: int = 2048):
        if bw_method is None:
            checks.positive("bandwidth", bandwidth)
        elif isinstance(bw_method, str):
            if bw_method not in ("scott", "silverman"):
                raise ValueError(f"unknown bw_method {checks.short(bw_method)}; choose scott, silverman "
                                 f"or a positive number")
        else:
            checks.positive("bw_method", bw_method)
        checks.positive_int("chunk", chunk)
        self.bandwidth, self.bw_method, self.chunk = bandwidth, bw_method, chunk
        self.x = self.H = None

    def factor(self, N: int, D: int) -> float:
        """scipy's bandwidth factor ``f`` for ``N`` points in ``D`` dimensions."""
        if self.bw_method == "scott":
            return N ** (-1.0 / (D + 4))
        if self.bw_method == "silverman":
            return (N * (D + 2) / 4.0) ** (-1.0 / (D + 4))
        return float(self.bw_method)

    def fit(self, x: torch.Tensor) -> "KDE":
        """Store the training points (the kernel centres) and the kernel covariance ``H``. Returns self."""
        x = _training_points(x, at_least=1 if self.bw_method is None else 2)  # (N, D)
        N, D = x.shape
        if self.bw_method is None:
            self.H = self.bandwidth**2 * torch.eye(D, dtype=x.dtype, device=x.device)
        else:
            diff = x - x.mean(0)
            self.H = self.factor(N, D) ** 2 * (diff.T @ diff) / (N - 1)  # (D, D)
        self.x = x.clone()
        return self

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log p(x) = logsumexp_n log N(x | x_n, H) - log N`` for ``x`` (M, D) -> (M,),
        evaluated ``chunk`` query points at a time so that large (M, N) problems fit in memory."""
        _fitted(self, "x", x)
        query = _as64(x).to(self.x.device)  # (M, D)
        L = torch.linalg.cholesky(self.H)  # (D, D)
        centres = torch.linalg.solve_triangular(L, self.x.T, upper=False).T  # (N, D), whitened
        N, D = self.x.shape
        log_norm = -0.5 * D * LOG_2PI - torch.log(torch.diagonal(L)).sum() - math.log(N)
        out = []
        for part in query.split(self.chunk):
            white = torch.linalg.solve_triangular(L, part.T, upper=False).T  # (m, D)
            d2 = torch.cdist(white, centres).square()  # (m, N)
            out.append(torch.logsumexp(-0.5 * d2, dim=1) + log_norm)  # (m,)
        return torch.cat(out).to(_out_dtype(x))

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Negative mean log-likelihood (nats per point)."""
        return -self.log_prob(x).mean()

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Pick a training point uniformly, add kernel noise ``L eps``: shape (n, D), float32."""
        _fitted(self, "x")
        checks.positive_int("n", n)
        rows = torch.randint(len(self.x), (n,), generator=generator)  # (n,)
        eps = _draw_normal(n, self.x.shape[1], generator).to(self.x.device)  # (n, D)
        L = torch.linalg.cholesky(self.H)
        return (self.x[rows.to(self.x.device)] + eps @ L.T).float()


# ----------------------------------------------------------------------------- filing cabinet


class FilingCabinet:
    r"""The model that memorises its training set (Chapter 1): the empirical distribution.

    .. math:: p_\text{cabinet}(x) = \frac1N \#\{n : x^{(n)} = x\}

    a probability *mass* function with mass :math:`1/N` on each stored point (more on a point
    stored several times) and zero everywhere else. ``log_prob`` returns :math:`\log` of that mass:
    :math:`-\log N` for a point stored once, :math:`-\infty` for anything not in a drawer. It is the
    maximum-likelihood model over *all* pmfs (Chapter 1, Exercise 2) and the :math:`h \to 0` limit of
    the :class:`KDE`. Sampling opens a random drawer. Points are compared exactly, so the model is
    meant for discrete data (integer images); on continuous data every held-out point gets
    :math:`-\infty`.
    """

    def __init__(self):
        self.x = None
        self._drawers: dict[bytes, int] = {}

    def fit(self, x: torch.Tensor) -> "FilingCabinet":
        """Store the training points ``x`` (N, D) and count the copies of each. Returns self."""
        x = torch.as_tensor(x)
        if x.ndim != 2:
            raise ValueError(f"expected points of shape (N, D), got shape {tuple(x.shape)}")
        self.x = x.detach().cpu().clone()
        self._drawers = {}
        for row in self.x.numpy():
            self._drawers[row.tobytes()] = self._drawers.get(row.tobytes(), 0) + 1
        return self

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log (#drawers holding exactly x) / N`` for each row of ``x`` (M, D) -> (M,), float64."""
        query = torch.as_tensor(x).detach().cpu().to(self.x.dtype)
        counts = torch.tensor([self._drawers.get(row.tobytes(), 0) for row in query.numpy()],
                              dtype=torch.float64)  # (M,)
        return torch.log(counts / len(self.x))

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Open ``n`` drawers uniformly at random: (n, D), copies of stored points."""
        rows = torch.randint(len(self.x), (n,), generator=generator)  # (n,)
        return self.x[rows].clone()


# ----------------------------------------------------------------------------- helpers for the chapters


def bandwidth_sweep(x_train: torch.Tensor, splits: dict[str, torch.Tensor], bandwidths,
                    score=None) -> dict[str, list[float]]:
    """Fit ``KDE(bandwidth=h)`` to ``x_train`` for every ``h`` in ``bandwidths`` and score it on each
    named split: ``{split: [mean score at h_1, h_2, ...]}``. ``score`` maps the (N,) log-densities
    to per-point scores (default: the log-densities themselves, nats per point)."""
    curves: dict[str, list[float]] = {name: [] for name in splits}
    for h in bandwidths:
        kde = KDE(bandwidth=h).fit(x_train)
        for name, x in splits.items():
            log_p = kde.log_prob(x)
            curves[name].append(float((log_p if score is None else score(log_p)).mean()))
    return curves


def fit_em_restarts(x: torch.Tensor, K: int, restarts: int = 4, covariance: str = "full",
                    reg: float = 1e-6, iterations: int = 100, tol: float | None = 1e-6,
                    generator: torch.Generator | None = None,
                    keep_snapshots: bool = False) -> tuple[GaussianMixture, list[GaussianMixture]]:
    """EM from ``restarts`` independent k-means++ initialisations (drawn from ``generator`` in turn).

    EM only finds a local maximum; the run with the highest final *training* log-likelihood is kept
    (the held-out data play no part in the choice). Returns ``(best, runs)``.
    """
    if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 1:
        raise ValueError(f"restarts must be a positive integer, got {restarts!r}")
    runs = [GaussianMixture(K, covariance, reg).fit_em(x, iterations=iterations, tol=tol, generator=generator,
                                                       keep_snapshots=keep_snapshots)
            for _ in range(restarts)]
    return max(runs, key=lambda run: run.history[-1]), runs


def kde_cell_density(kde: KDE, bounds: tuple[float, float, float, float], steps: int = 120) -> torch.Tensor:
    r"""The average density of a 2-D isotropic KDE over each cell of a ``steps`` x ``steps`` grid.

    A density sampled at grid points misses kernels narrower than the grid spacing (aliasing). The
    probability mass of an axis-aligned cell is exact instead: the kernel factorises over the two
    coordinates, so with :math:`\Phi` the standard normal CDF,

    .. math:: P(\text{cell}) = \frac1N\sum_n \big[\Phi(\tfrac{u_1 - x^{(n)}_1}{h}) - \Phi(\tfrac{l_1 - x^{(n)}_1}{h})\big]
              \big[\Phi(\tfrac{u_2 - x^{(n)}_2}{h}) - \Phi(\tfrac{l_2 - x^{(n)}_2}{h})\big].

    Returns mass / cell area, shape (steps, steps) with rows along the second coordinate (as
    :func:`genlib.plot.grid_points`' meshes), float64; the cells cover ``bounds``.
    """
    if kde.x is None or kde.x.shape[1] != 2 or kde.bw_method is not None:
        raise ValueError("kde_cell_density needs a fitted 2-D KDE with an isotropic bandwidth")
    x1_lo, x1_hi, x2_lo, x2_hi = bounds
    centres = kde.x.cpu()  # (N, 2)
    h = float(kde.bandwidth)

    def mass_1d(lo, hi, c):  # (N, steps): mass of each kernel in each interval along one axis
        edges = torch.linspace(lo, hi, steps + 1, dtype=torch.float64)
        cdf = torch.special.ndtr((edges[None, :] - c[:, None]) / h)  # (N, steps + 1)
        return cdf[:, 1:] - cdf[:, :-1]

    a, b = mass_1d(x1_lo, x1_hi, centres[:, 0]), mass_1d(x2_lo, x2_hi, centres[:, 1])  # (N, steps) each
    mass = b.T @ a / len(centres)  # (steps, steps): rows along x_2, columns along x_1
    area = (x1_hi - x1_lo) * (x2_hi - x2_lo) / steps**2
    return mass / area


# ----------------------------------------------------------------------------- the family's declaration
#
# The scoreboard's mixture: a search over covariance types and K by EM on the dequantised digits, the
# best on the validation set kept. Fitted in seconds wherever it is used, never saved.

GRID_K = (1, 2, 3, 5, 10, 15, 20)  # chapter 2's K grid (with its n_components added), both covariance types
RESTARTS = 4  # chapter 2's n_restarts: EM runs per mixture, the best on the training set kept


def grid(params) -> tuple[tuple[str, int], ...]:
    """Chapter 2's search: every (covariance, K) of its digits section."""
    return tuple((c, K) for c in ("diag", "full") for K in sorted({*GRID_K, params.n_components}))


GRID = tuple((c, K) for c in ("diag", "full") for K in sorted({*GRID_K, 8}))  # grid() at the book profile


def evaluate_nll(model: GaussianMixture, y: torch.Tensor, levels: int) -> NLL:
    """Test NLL of the integer images behind the dequantised ``y = (x + u) / levels`` in [0, 1)^D, in nats
    per image: −E[log P(x)] ≤ −E_u[log p(y)] + D log levels, estimated with the given draws of u (one per
    image), so an :class:`~genlib.family.NLL` of kind ``"bound"``; unpacks as ``nats, kind``."""
    nats = -float(metrics.discrete_log_prob(model.log_prob(y), y.shape[1], levels).mean())
    return NLL(nats, "bound", f"NLL: the dequantisation bound E_u[log p((x+u)/{levels})] - {y.shape[1]} log {levels}, "
                              "one draw of u per image")


def _build(params) -> GaussianMixture:
    data.check_dataset(params.image_dataset, ("digits",))
    return GaussianMixture(GRID[0][1], GRID[0][0])  # a placeholder: training chooses K and the covariance


def _train(model: GaussianMixture, params, generator: torch.Generator, options: dict):
    """Chapter 2's choice: the best of :data:`RESTARTS` EM runs (at most ``params.epochs`` iterations each,
    :func:`fit_em_restarts`) for every mixture of :func:`grid`; ``model`` becomes the one with the best
    validation NLL. The u of all three splits are drawn first, as the scoreboard always has."""
    from genlib.train import History

    levels = data.LEVELS[params.image_dataset]
    y = {s: data.dequantize(data.images(params.image_dataset, s).x, levels, generator=generator).double()
         for s in data.SPLITS}
    tic = time.perf_counter()
    fits = {key: fit_em_restarts(y["train"], key[1], restarts=RESTARTS, covariance=key[0], iterations=params.epochs,
                                 tol=1e-4, generator=generator)[0] for key in grid(params)}
    val = {key: evaluate_nll(fit, y["val"], levels).nats for key, fit in fits.items()}
    best = min(fits, key=val.__getitem__)
    vars(model).update(vars(fits[best]))
    return History(train=[-fits[best].history[-1]], val=[val[best]], seconds=[time.perf_counter() - tic],
                   best_epoch=0)


def _nll(model: GaussianMixture, x: torch.Tensor, generator: torch.Generator) -> NLL:
    # The test images' u are the seed's third draw, after the training and validation images' (the search
    # dequantised all three splits before fitting): drawn the same way here, the row's number is unchanged.
    for split in ("train", "val"):
        data.dequantize(data.digits(split).x, 17, generator=generator)
    return evaluate_nll(model, data.dequantize(x, 17, generator=generator).double(), 17)


FAMILY = Family(
    name="gmm", chapter="02_density_models", model=GaussianMixture, build=_build, train=_train, nll=_nll,
    density="bound",
    # y = (x + u)/17 -> the grey level x = floor(17 y), on the test images' scale x/16
    samples=lambda model, n, generator: torch.floor(model.sample(n, generator=generator) * 17).clamp(0, 16) / 16,
    features=lambda model, x: model.responsibilities(data.dequantize(x, 17).double()).float(),
    describe=lambda model, params: f"Gaussian mixture ({model.covariance}, K = {model.K})",
    remarks=lambda model, params, seed: [
        f"chapter 2's choice: the best of {RESTARTS} EM restarts for each of {len(grid(params))} mixtures "
        f"(diagonal and full covariance, K in {min(GRID_K)}-{max(GRID_K)}), chosen by validation NLL; the time is the "
        "whole search",
        "samples: y ~ p, then the grey level floor(17 y) (the inverse of the dequantisation)"],
    dataset_key="image_dataset", checkpoint=False, smoke={"epochs": 2},
    inputs=lambda model, x, levels, generator: data.dequantize(x, levels, generator=generator).double())
