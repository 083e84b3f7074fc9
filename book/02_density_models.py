# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Density models: Gaussians and mixtures
#
# Chapter 1 asked for three things of a generative model: we should be able to **fit** it to data,
# **score** new data with it, and **sample** from it. This chapter builds the oldest models that do
# all three exactly. A single Gaussian is fitted in one line of closed-form algebra; a mixture of
# Gaussians is fitted by an iterative algorithm, expectation–maximisation (EM), whose derivation
# introduces the central trick of the rest of the book: a *lower bound* on the log-likelihood that
# is tight when we know the posterior over a latent variable.
#
# Along the way we meet three practical problems that every later chapter inherits:
#
# * computing $\log \sum_k \exp(\cdot)$ without underflow,
# * choosing a model's size on held-out data rather than training data, and
# * scoring discrete images (17 grey levels) with a *continuous* density — dequantisation, nats per
#   image and bits per dimension.
#
# The chapter ends by reading a mixture as a latent-variable model, "pick a component, then draw
# from it", and letting the number of components go to infinity. That infinite mixture is the
# variational autoencoder of Chapter 4.

# %% [markdown]
# ## Parameters
#
# `dataset` is the 2-D toy used for the pictures and for the EM and model-size experiments;
# `image_dataset` is the image data set of the second half (`"mnist"` downloads MNIST and is only
# practical on a GPU, because a full covariance over 784 pixels is large). `epochs` is the number
# of passes over the training set that each fit may make: EM iterations, or full-batch gradient
# steps. `n_components` is the number of mixture components $K$ used in the pictures and the
# digit samples; the model-size experiments always include it.

# %% tags=["parameters"]
device = "cpu"  # "auto", "cpu", "cuda" or "mps"
dataset = "8gaussians"  # 2-D toy: moons, rings, 8gaussians, spiral, swissroll
image_dataset = "digits"  # digits or mnist
epochs = 100  # passes over the training set: EM iterations or gradient-ascent steps
n_components = 8  # K, the number of mixture components
seed = 0

# %% tags=["hide-input"]
import inspect
import math

import ipywidgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Ellipse
from matplotlib.ticker import MaxNLocator
from myst_nb import glue

import genlib
from genlib import data, diagrams, metrics, plot, widgets
from genlib.density import Gaussian, GaussianMixture, evaluate_nll, fit_em_restarts, mean_log_prob
from genlib.train import check_epochs

dev = genlib.device(device)
gen = genlib.seed_everything(seed)
data.check_dataset(dataset, data.TOYS)
data.check_dataset(image_dataset, ("digits", "mnist"))
check_epochs(epochs)
if isinstance(n_components, bool) or not isinstance(n_components, int) or n_components < 1:
    raise ValueError(f"n_components must be a positive integer, got {n_components!r}")

n_points = 1000  # training and validation points of the 2-D toy
n_restarts = 4  # EM runs from different initialisations; the best on the training set is kept
x_train = data.toy(dataset, n_points, seed=seed).double().to(dev)  # (N, 2)
x_val = data.toy(dataset, n_points, seed=seed + 1000).double().to(dev)  # (N, 2), a fresh draw
bounds = (-4, 4, -4, 4)

# %% [markdown]
# ## The Gaussian and its maximum-likelihood estimate
#
# A $D$-dimensional Gaussian with mean $\mu$ and covariance $\Sigma$ has the density
#
# $$
# \mathcal N(x \mid \mu, \Sigma) = (2\pi)^{-D/2}\,|\Sigma|^{-1/2}
# \exp\!\Big(-\tfrac12 (x-\mu)^\top \Sigma^{-1} (x-\mu)\Big).
# $$
#
# Given training points $x^{(1)}, \dots, x^{(N)}$, maximum likelihood (Chapter 1) asks for the parameters
# that maximise
#
# $$
# \ell(\mu, \Sigma) = \sum_{n=1}^N \log \mathcal N(x^{(n)} \mid \mu, \Sigma)
# = -\frac{N}{2}\log|\Sigma| - \frac12 \sum_{n=1}^N (x^{(n)}-\mu)^\top \Sigma^{-1}(x^{(n)}-\mu) - \frac{ND}{2}\log 2\pi .
# $$
#
# **The mean.** Only the quadratic term depends on $\mu$, and its gradient is
# $\nabla_\mu \ell = \Sigma^{-1}\sum_n (x^{(n)} - \mu)$. Setting it to zero (and using that
# $\Sigma^{-1}$ is invertible) gives $\hat\mu = \frac1N\sum_n x^{(n)}$: the sample mean.
#
# **The covariance.** It is easiest to differentiate with respect to the precision
# $\Lambda = \Sigma^{-1}$. Write the quadratic term as a trace,
# $(x^{(n)}-\mu)^\top\Lambda(x^{(n)}-\mu) = \operatorname{tr}\big(\Lambda (x^{(n)}-\mu)(x^{(n)}-\mu)^\top\big)$, so
# that with $\bar\Sigma = \frac1N\sum_n (x^{(n)}-\hat\mu)(x^{(n)}-\hat\mu)^\top$
#
# $$
# \ell = \frac N2 \log|\Lambda| - \frac N2 \operatorname{tr}(\Lambda \bar\Sigma) + \text{const}.
# $$
#
# The matrix identities $\nabla_\Lambda \log|\Lambda| = \Lambda^{-1}$ and
# $\nabla_\Lambda \operatorname{tr}(\Lambda \bar\Sigma) = \bar\Sigma$ (for symmetric matrices) give
# $\nabla_\Lambda \ell = \frac N2(\Lambda^{-1} - \bar\Sigma)$, which vanishes at $\hat\Sigma = \Lambda^{-1} = \bar\Sigma$:
# the sample covariance with $1/N$, not the unbiased $1/(N-1)$ {cite:p}`bishop2006prml`. In code:

# %%
print(inspect.getsource(Gaussian.fit))

# %% [markdown]
# We fit it to the 2-D toy and check the two formulas against NumPy.

# %% tags=["nbval-check-output"]
gaussian = Gaussian().fit(x_train)
x_np = x_train.cpu().numpy()
print("mu    =", np.round(gaussian.mu.cpu().numpy(), 2))
print("Sigma =", np.round(gaussian.cov.cpu().numpy(), 2).tolist())
print("mu is the sample mean:", np.allclose(gaussian.mu.cpu().numpy(), x_np.mean(0)))
print("Sigma is the biased sample covariance:", np.allclose(gaussian.cov.cpu().numpy(), np.cov(x_np.T, bias=True)))
print(f"train log-likelihood: {mean_log_prob(gaussian, x_train):.2f} nats per point")
print(f"validation log-likelihood: {mean_log_prob(gaussian, x_val):.2f} nats per point")

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(8, 4))
plot.scatter(x_train, ax=axes[0], bounds=bounds, title=f"training data ({dataset})")
plot.density(gaussian.log_prob, ax=axes[1], bounds=bounds, title="maximum-likelihood Gaussian")
axes[1].scatter(*x_np[::4].T, s=1, c="white", alpha=0.4)
plt.tight_layout()
plt.show()

# %% [markdown]
# The Gaussian is the best *single* Gaussian there is, yet it is a poor model of this data: it has
# one bump, so it puts its highest density where the data's mean is — for a ring of clusters or a
# spiral, a place with hardly any data at all — and spreads the rest in an ellipse that covers the
# empty space between the clusters. Its log-likelihood is the number to beat.
#
# ## Mixtures of Gaussians
#
# A **mixture of $K$ Gaussians** adds up $K$ bumps, each with its own weight, mean and covariance:
#
# $$
# p_\theta(x) = \sum_{k=1}^K \pi_k\, \mathcal N(x \mid \mu_k, \Sigma_k), \qquad
# \pi_k \ge 0,\ \ \sum_k \pi_k = 1, \qquad \theta = \{\pi_k, \mu_k, \Sigma_k\}_{k=1}^K .
# $$
#
# With enough components a mixture can approximate any smooth density as closely as we like, and
# it is still easy to sample: choose a component $k$ with probability $\pi_k$, then draw from that
# Gaussian. We return to that two-step recipe at the end of the chapter, where it becomes a
# latent-variable model.
#
# ### Computing the log-likelihood: log-sum-exp
#
# The log-likelihood of one point is the log of a sum of exponentials,
# $\log p(x) = \log \sum_k \exp(a_k)$ with $a_k = \log \pi_k + \log \mathcal N(x \mid \mu_k, \Sigma_k)$.
# Evaluated literally, this is fragile. In 64 dimensions, or far from every component, the $a_k$ are
# easily $-1000$, and $\exp(-1000)$ is smaller than the smallest positive double-precision number
# (about $10^{-308}$): the sum underflows to $0$ and its log to $-\infty$, although the true answer
# is an ordinary number. The cure is to factor out the largest term, $a^* = \max_k a_k$:
#
# $$
# \log \sum_k e^{a_k} = a^* + \log \sum_k e^{a_k - a^*} ,
# $$
#
# where now every exponent is $\le 0$ and at least one equals $0$, so the sum lies between 1 and $K$.
# Here is one point far from a two-component mixture whose components have standard deviation
# $\sigma = 0.1$; the cell prints how far, in standard deviations of the nearest component:

# %% tags=["nbval-check-output"]
tiny = GaussianMixture.from_params(pi=[0.5, 0.5], mu=[[0.0], [1.0]], cov=[[[0.01]], [[0.01]]])
far = torch.tensor([[60.0]], dtype=torch.float64)
a = tiny.log_joint(far)  # (1, K): log pi_k + log N(x | mu_k, Sigma_k)
distance = float(((far - tiny.mu).abs()[:, 0] / tiny.cov[:, 0, 0].sqrt()).min())
print(f"x = {float(far)}: {distance:.0f} standard deviations from the nearest component")
print("a_k =", np.round(a.numpy()[0], 2).tolist())
print("naive log sum exp:", float(torch.log(torch.exp(a).sum())))
print(f"log-sum-exp      : {float(torch.logsumexp(a, dim=1)):.2f}")
print(f"GaussianMixture.log_prob: {float(tiny.log_prob(far)):.2f}")

# %% [markdown]
# `GaussianMixture.log_prob` is exactly this: the log-joint $a_{nk} = \log p(x^{(n)}, z{=}k)$ for every
# point and component, then `torch.logsumexp` over components.

# %%
print(inspect.getsource(GaussianMixture.log_prob))

# %% [markdown]
# ### Fitting a mixture: expectation–maximisation
#
# Setting the gradient of the mixture's log-likelihood to zero no longer gives a closed form: the
# log of a sum does not split into one term per component. But suppose someone told us, for every
# training point, which component $z^{(n)} \in \{1, \dots, K\}$ produced it. Then the problem would fall
# apart into $K$ separate Gaussian fits — each component would be the maximum-likelihood Gaussian of
# its own points, and $\pi_k$ the fraction of points it owns. EM {cite:p}`dempster1977em` makes this
# idea work when the labels are unknown, by replacing the hard labels with *probabilities* of the
# labels and alternating two steps.
#
# **A lower bound.** For each point take any distribution $q^{(n)}(k)$ over the components.
# Multiplying and dividing by it inside the sum and applying Jensen's inequality to the concave
# $\log$ (the log of an average is at least the average of the logs) gives
#
# $$
# \log p_\theta(x^{(n)}) = \log \sum_k q^{(n)}(k) \frac{p_\theta(x^{(n)}, k)}{q^{(n)}(k)}
# \;\ge\; \sum_k q^{(n)}(k) \log \frac{p_\theta(x^{(n)}, k)}{q^{(n)}(k)} =: \mathcal B_n(q^{(n)}, \theta),
# \qquad p_\theta(x^{(n)}, k) = \pi_k \mathcal N(x^{(n)} \mid \mu_k, \Sigma_k).
# $$
#
# The gap is a KL divergence: using $p_\theta(x^{(n)}, k) = p_\theta(k \mid x^{(n)})\, p_\theta(x^{(n)})$,
#
# $$
# \log p_\theta(x^{(n)}) - \mathcal B_n(q^{(n)}, \theta) = \sum_k q^{(n)}(k) \log \frac{q^{(n)}(k)}{p_\theta(k \mid x^{(n)})}
# = \mathrm{KL}\big(q^{(n)} \,\|\, p_\theta(z \mid x^{(n)})\big) \;\ge 0,
# $$
#
# so the bound is **tight exactly when $q^{(n)}$ is the posterior** over the component.
#
# **E-step** (expectation): with the current parameters $\theta^{\text{old}}$, set $q^{(n)}$ to the
# posterior, the *responsibility* of component $k$ for point $n$ (Bayes' rule):
#
# $$
# r_{nk} = p_{\theta^\text{old}}(z{=}k \mid x^{(n)})
# = \frac{\pi_k \mathcal N(x^{(n)} \mid \mu_k, \Sigma_k)}{\sum_j \pi_j \mathcal N(x^{(n)} \mid \mu_j, \Sigma_j)}
# = \operatorname{softmax}_k(a_{nk}).
# $$
#
# **M-step** (maximisation): with the $r_{nk}$ frozen, maximise the bound over $\theta$. Its
# $-\sum_k r_{nk}\log r_{nk}$ part does not depend on $\theta$, so we maximise
# $\sum_n\sum_k r_{nk}\big[\log\pi_k + \log \mathcal N(x^{(n)} \mid \mu_k, \Sigma_k)\big]$: a
# *weighted* version of the single-Gaussian problem, one per component, in which point $n$ counts
# for a fraction $r_{nk}$. Repeating the derivation above with weights (and a Lagrange multiplier for
# $\sum_k \pi_k = 1$, Exercise 1) gives, with $N_k = \sum_n r_{nk}$ the effective number of points
# of component $k$,
#
# $$
# \pi_k = \frac{N_k}{N}, \qquad
# \mu_k = \frac1{N_k}\sum_n r_{nk}\, x^{(n)}, \qquad
# \Sigma_k = \frac1{N_k}\sum_n r_{nk}\, (x^{(n)}-\mu_k)(x^{(n)}-\mu_k)^\top .
# $$
#
# **Why the likelihood never decreases.** Write $\ell(\theta) = \sum_n \log p_\theta(x^{(n)})$ and
# $\mathcal B(q, \theta) = \sum_n \mathcal B_n(q^{(n)}, \theta)$. After an E-step at
# $\theta^\text{old}$ and an M-step to $\theta^\text{new}$,
#
# $$
# \ell(\theta^\text{new}) \;\ge\; \mathcal B(q, \theta^\text{new}) \;\ge\; \mathcal B(q, \theta^\text{old})
# \;=\; \ell(\theta^\text{old}) :
# $$
#
# the first inequality is Jensen, the second holds because the M-step maximised the bound, and the
# equality because the E-step made the bound tight. EM therefore climbs the likelihood monotonically
# until it reaches a stationary point — a *local* maximum in general {cite:p}`bishop2006prml`.
#
# One caution: the mixture likelihood is unbounded. A component whose mean sits on a training point
# can shrink its covariance towards zero and send the density at that point, and so
# $\ell$, to infinity (Exercise 2). `genlib` adds a small floor, $\Sigma_k + \rho I$ with
# $\rho = 10^{-6}$ (`reg`), to every covariance to keep components from collapsing. The E-step, the
# M-step and the loop that alternates them, in code:

# %%
print(inspect.getsource(GaussianMixture.e_step))
print(inspect.getsource(GaussianMixture.m_step))
print(inspect.getsource(GaussianMixture.fit_em))

# %% [markdown]
# The picture below makes the bound concrete on a 1-D problem. We hold every parameter at its old
# value except the first mean $\mu_1$, and plot, as functions of $\mu_1$, the log-likelihood and the
# bound $\mathcal B(q, \theta)$ with $q$ the responsibilities at the old parameters. The bound
# touches the log-likelihood at the old $\mu_1$ and lies below it everywhere else; the M-step
# jumps to the bound's maximum, where the log-likelihood is higher still.

# %%
truth_1d = GaussianMixture.from_params(pi=[0.35, 0.65], mu=[[-2.0], [1.0]], cov=[[[0.5]], [[0.8]]])
x_1d = truth_1d.sample(400, generator=gen).double()  # (400, 1)
old = GaussianMixture.from_params(pi=[0.5, 0.5], mu=[[-0.5], [0.5]], cov=[[[1.0]], [[1.0]]])
r_old = old.responsibilities(x_1d)  # (N, 2), frozen after the E-step


def with_mu1(value):
    """The old mixture with its first mean replaced by ``value``."""
    model = old.copy()
    model.mu[0, 0] = value
    return model


mu1_grid = np.linspace(-3.5, 1.5, 201)
log_lik_1d = [mean_log_prob(with_mu1(m), x_1d) for m in mu1_grid]
bound_1d = [float((r_old * (with_mu1(m).log_joint(x_1d) - torch.log(r_old))).sum(1).mean()) for m in mu1_grid]
mu1_new = float((r_old[:, 0] * x_1d[:, 0]).sum() / r_old[:, 0].sum())  # the M-step for mu_1

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(mu1_grid, log_lik_1d, label=r"log-likelihood $\ell(\theta)/N$")
ax.plot(mu1_grid, bound_1d, label=r"bound $\mathcal{B}(q, \theta)/N$, $q$ from the E-step")
ax.axvline(-0.5, color="grey", ls=":", lw=1)
ax.axvline(mu1_new, color="grey", ls="--", lw=1)
for position, label, side in ((-0.5, "old $\\mu_1$", 1), (mu1_new, "M-step $\\mu_1$", -1)):
    ax.annotate(label, (position, 0.97), xycoords=("data", "axes fraction"), xytext=(3 * side, 0),
                textcoords="offset points", va="top", ha="left" if side > 0 else "right", fontsize=8)
ax.set_ylim(min(log_lik_1d) - 0.3, max(log_lik_1d) + 0.1)
ax.set_xlabel(r"first component mean $\mu_1$ (all else fixed)")
ax.set_ylabel("nats per point")
ax.set_title("EM maximises a lower bound that touches the log-likelihood", pad=34)
ax.legend(frameon=False, fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2)
plt.show()

# %% [markdown]
# ### EM on the 2-D toy
#
# `GaussianMixture.fit_em` initialises the means at $K$ training points chosen by k-means++
# seeding {cite:p}`arthur2007kmeans` (each next mean is a point drawn with probability proportional
# to its squared distance from the means chosen so far), sets every covariance to the data's
# covariance and every weight to $1/K$, and then alternates E- and M-steps, recording the mean
# training log-likelihood after each iteration (`history`) and, if asked, a copy of the parameters
# (`snapshots`). It stops after `epochs` iterations or when an iteration gains less than $10^{-6}$
# nats per point. Because EM only finds a local maximum, we run it from `n_restarts` initialisations
# and keep the run with the highest training log-likelihood; `genlib.density.fit_em_restarts` does
# exactly that:

# %%
print(inspect.getsource(fit_em_restarts))

# %% tags=["nbval-check-output"]
em, runs = fit_em_restarts(x_train, n_components, restarts=n_restarts, iterations=epochs, generator=gen,
                           keep_snapshots=True)
print("final train log-likelihood of each restart:", [round(run.history[-1], 2) for run in runs])
print(f"kept: {em.history[-1]:.2f} nats per point after {len(em.history) - 1} iterations "
      f"(initialisation: {em.history[0]:.2f})")
print("log-likelihood never decreased:", all(np.diff(em.history) >= -1e-9))
print(f"validation log-likelihood: {mean_log_prob(em, x_val):.2f} (single Gaussian: {mean_log_prob(gaussian, x_val):.2f})")

# %% [markdown]
# Different initialisations can end at different local maxima — the restarts above need not agree.
# The scrubber below replays the kept run: each ellipse is a component's 2-standard-deviation
# contour (thicker for larger $\pi_k$), each point is coloured by its responsibilities (a blend of
# the component colours), and the title gives the training log-likelihood. At iteration 0 every
# component has the data's covariance; within a few iterations the components claim separate
# groups of points and shrink onto them. With a kernel, the live version also lets you change $K$.

# %%
colors = plt.cm.tab10(np.arange(10))[:, :3]  # (10, 3) RGB, reused cyclically for K > 10
em_runs = {n_components: em}


def em_run(K):
    """Best of ``n_restarts`` EM runs with K components (cached; the chapter's run for n_components)."""
    if K not in em_runs:
        em_runs[K], _ = fit_em_restarts(x_train, K, restarts=n_restarts, iterations=epochs,
                                        generator=torch.Generator().manual_seed(seed + K), keep_snapshots=True)
    return em_runs[K]


def draw_components(ax, model, n_std=2.0):
    """Each component as its n_std-standard-deviation ellipse, line width growing with pi_k."""
    for k in range(model.K):
        values, vectors = np.linalg.eigh(model.cov[k].cpu().numpy())  # ascending eigenvalues
        angle = np.degrees(np.arctan2(vectors[1, 1], vectors[0, 1]))
        width, height = 2 * n_std * np.sqrt(values[1]), 2 * n_std * np.sqrt(values[0])
        ax.add_patch(Ellipse(model.mu[k].cpu().numpy(), width, height, angle=angle, fill=False,
                             ec=colors[k % 10], lw=0.8 + 5 * float(model.pi[k])))
        ax.plot(*model.mu[k].cpu().numpy(), "k+", ms=6)


def draw_em(fig, iteration, K=n_components):
    run = em_run(K)
    t = min(iteration, len(run.snapshots) - 1)  # runs that converged early stay at their last step
    snapshot = run.snapshots[t]
    r = snapshot.responsibilities(x_train).cpu().numpy()  # (N, K)
    ax = fig.add_subplot()
    plot.scatter(x_np, ax=ax, bounds=bounds, s=3, alpha=0.6, c=r @ colors[np.arange(K) % 10],
                 title=f"K = {K}, EM iteration {t}: log-lik {run.history[t]:.3f}")
    draw_components(ax, snapshot)


widgets.live(draw_em, figsize=(4.5, 4.5),
             iteration=ipywidgets.IntSlider(value=0, min=0, max=epochs, description="iteration"),
             K=ipywidgets.IntSlider(value=n_components, min=1, max=max(10, n_components), description="K"))

# %%
frames = sorted({t for t in (0, 1, 2, 3, 4, 5, 7, 10, 14, 20, 30, 45, 70, 100) if t < len(em.history)}
                | {len(em.history) - 1})
widgets.animate(draw_em, frames, figsize=(4.5, 4.5), interval=700)

# %% [markdown]
# ## Gradient ascent on the log-likelihood
#
# EM is special to models whose M-step has a closed form. The method that carries over to every
# later chapter — where $p_\theta$ is a neural network — is plain gradient ascent on
# $\frac1N\ell(\theta)$. Two things need care.
#
# **Constraints.** The weights must lie on the simplex and the covariances must be symmetric
# positive definite; gradient steps know nothing of either. So we optimise *unconstrained*
# parameters and map them onto the constraints: logits $a_k$ with $\pi = \operatorname{softmax}(a)$,
# and a lower-triangular $C_k$ whose diagonal is $\exp(s_k)$ (positive by construction) with
# $\Sigma_k = C_k C_k^\top + \rho I$ — a Cholesky factorisation (`L` in the code below), which every
# symmetric positive definite matrix has. Every choice of the unconstrained numbers is a valid mixture.
#
# **The gradient has EM inside it.** Differentiating the log-sum-exp gives, for the means,
#
# $$
# \nabla_{\mu_k} \ell = \sum_n \frac{\pi_k \mathcal N(x^{(n)} \mid \mu_k, \Sigma_k)}{p_\theta(x^{(n)})}
# \, \Sigma_k^{-1}(x^{(n)} - \mu_k) = \sum_n r_{nk}\, \Sigma_k^{-1}(x^{(n)} - \mu_k) .
# $$
#
# The responsibilities appear again: each point pulls each mean towards itself in proportion to
# how much that component is responsible for it. Setting this gradient to zero gives
# $\mu_k = \sum_n r_{nk} x^{(n)} / N_k$ — the M-step — except that $r_{nk}$ itself depends on $\mu_k$,
# which is why there is no closed form and why EM, by freezing $r$, gets one. Autograd agrees:

# %% tags=["nbval-check-output"]
probe = em.copy()
probe.mu = probe.mu.clone().requires_grad_(True)
probe.log_prob(x_train).sum().backward()  # autograd: d/dmu_k sum_n log p(x_n)
r = em.responsibilities(x_train)  # (N, K)
precision = torch.linalg.inv(em.cov)  # (K, D, D)
formula = torch.einsum("nk,kde,nke->kd", r, precision, x_train[:, None, :] - em.mu[None])  # (K, D)
print("autograd gradient equals sum_n r_nk Sigma_k^-1 (x_n - mu_k):", torch.allclose(probe.mu.grad, formula))

# %% [markdown]
# `GaussianMixture.fit_gradient` runs Adam {cite:p}`kingma2015adam` on the full training set, one
# step per pass, from the same kind of initialisation as EM:

# %%
print(inspect.getsource(GaussianMixture._constrain))

# %% tags=["nbval-check-output"]
init_seed = int(torch.randint(2**31, (1,), generator=gen))  # the same initialisation for both
em_curve = GaussianMixture(n_components).fit_em(x_train, iterations=epochs, tol=None,
                                                generator=torch.Generator().manual_seed(init_seed))
adam_curves = {lr: GaussianMixture(n_components).fit_gradient(x_train, steps=epochs, lr=lr,
                                                             generator=torch.Generator().manual_seed(init_seed))
               for lr in (0.01, 0.05, 0.2)}
print(f"after {epochs} passes: EM {em_curve.history[-1]:.2f}", end="")
for lr, run in adam_curves.items():
    print(f", Adam lr={lr}: {run.history[-1]:.2f}", end="")
print(" nats per point")

# %%
ys = {"EM": em_curve.history} | {f"gradient ascent (Adam, lr={lr})": run.history for lr, run in adam_curves.items()}
ax = plot.curves(np.arange(epochs + 1), ys, xlabel="pass over the training set (EM iteration / Adam step)",
                 ylabel="train log-likelihood (nats/point)", marker="",
                 title=f"{dataset}, K = {n_components}: same initialisation")
ax.legend(frameon=False, fontsize=8, loc="lower right")
ax.set_ylim(em_curve.history[0] - 0.2, max(em_curve.history[-1], max(run.history[-1] for run in adam_curves.values())) + 0.2)
ax.figure.set_size_inches(7, 3.5)
plt.show()

# %% [markdown]
# EM reaches its plateau within a few dozen iterations, with no step size to choose: every
# iteration jumps to the maximum of a bound, and the first few gain most of the likelihood.
# Gradient ascent depends on its learning rate — too small and it crawls; larger rates climb
# faster but less steadily — and usually needs many more passes. Neither method finds more than a
# local maximum: from the same initialisation they need not end in the same one, and a lucky
# gradient run can even finish above EM's plateau. EM's guarantee is steady progress, not the
# best answer (hence the restarts above). The advantage of gradient ascent is generality: nothing in it used the structure of the
# model except the ability to evaluate $\log p_\theta(x)$ and differentiate it, which is all that
# the autoregressive models of Chapter 6 will offer.
#
# ## Choosing $K$ by held-out likelihood
#
# More components can only help on the training set: a mixture with $K+1$ components contains every
# mixture with $K$ (give the extra one zero weight). The training log-likelihood therefore keeps
# rising with $K$ — up to overfitting, when components start wrapping individual training points.
# What we want is the density of *new* data from the same source, so we choose $K$ by the
# log-likelihood of a held-out **validation** set (Chapter 1's lesson from the filing cabinet).

# %% tags=["nbval-check-output"]
K_toy = list(range(1, max(12, n_components) + 1))
train_ll, val_ll = [], []
for K in K_toy:
    model = em_run(K)
    train_ll.append(model.history[-1])
    val_ll.append(mean_log_prob(model, x_val))
K_best = K_toy[int(np.argmax(val_ll))]
print(f"chosen K = {K_best}: validation log-likelihood {max(val_ll):.2f} (train {train_ll[K_best - 1]:.2f})")
print(f"K = {n_components}: validation {val_ll[n_components - 1]:.2f}")

# %%
ax = plot.curves(K_toy, {"train": train_ll, "validation": val_ll}, xlabel="number of components K",
                 ylabel="log-likelihood (nats/point)", title=f"choosing K on {dataset}")
ax.axvline(K_best, color="grey", ls=":", lw=1)
ax.xaxis.set_major_locator(MaxNLocator(integer=True))
plt.show()

# %% [markdown]
# The training curve keeps climbing; the validation curve rises while extra components capture real
# structure, then flattens or falls. On the 2-D toys with a thousand points the overfitting is mild
# — two dimensions are easy to fill with data. In 64 dimensions it will not be.
#
# ## Discrete images, continuous densities
#
# We now model images. A digit is a vector $x \in \{0, 1, \dots, 16\}^{64}$: 64 pixels, each one of
# $V = 17$ grey levels. A Gaussian mixture is a density on $\mathbb{R}^{64}$, and plugging integer
# vectors into a density is a mistake, because a density can be made arbitrarily large on a set of
# isolated points. The digits show it directly: some pixels are zero in every training image, so
# the maximum-likelihood variance of those pixels is zero. With the covariance floor $\rho$ their
# log-density is about $\frac12\log\frac1{2\pi\rho}$ each, and the "log-likelihood" grows
# without bound as $\rho \to 0$ — a meaningless number that says nothing about how well the
# model knows digits.

# %% tags=["nbval-check-output"]
images = {split: data.images(image_dataset, split) for split in data.SPLITS}
D, V, shape = images["train"].dims, images["train"].levels, images["train"].shape
scaled_train = images["train"].scaled().double().to(dev)  # (N, D) integers / (V - 1)
print(f"{image_dataset}: D = {D} pixels, V = {V} levels, train/val/test = "
      f"{[len(images[s]) for s in data.SPLITS]} images")
print("pixels constant over the training set:", int((images["train"].x.float().std(0) == 0).sum()))
for eps in (1e-2, 1e-4, 1e-6, 1e-8):
    raw = Gaussian(reg=eps).fit(scaled_train)
    print(f"floor {eps:.0e}: Gaussian 'log-likelihood' of raw training pixels = {mean_log_prob(raw, scaled_train):8.1f}")

# %% [markdown]
# **Dequantisation** fixes this {cite:p}`uria2013rnade,theis2016note`. Add uniform noise to
# each integer level and rescale, $y = (x + u)/V$ with $u \sim \mathcal U[0,1)^D$. Now $y$ fills the
# unit cube: each image $x$ owns the little box $B_x = \{(x+u)/V\}$ of volume $V^{-D}$, and the
# boxes of different images do not overlap. Any density $p(y)$ then defines a *discrete* model,
# the probability that $y$ lands in the box,
#
# $$
# P(x) = \int_{B_x} p(y)\, dy = \int_{[0,1)^D} p\Big(\frac{x+u}{V}\Big) V^{-D}\, du ,
# $$
#
# which is a proper probability mass function over the $V^D$ images (the boxes tile the cube,
# and $p$ integrates to 1 over it — or to less, if it wastes mass outside). By Jensen's inequality,
#
# $$
# \log P(x) \;\ge\; \mathbb E_u\Big[\log p\Big(\frac{x+u}{V}\Big)\Big] - D \log V ,
# $$
#
# and maximising the right-hand side over training images is just fitting $p$ to dequantised
# data. The $-D\log V$ is the Jacobian of the rescaling: it converts a density on the unit cube back
# into probabilities of boxes. Without it, a number computed on $y$ is not comparable with any
# discrete model.
#
# **Units.** The test negative log-likelihood $-\frac1{N}\sum_n \log P(x^{(n)})$ is reported in
# **nats per image**, or divided by $D \log 2$ in **bits per dimension**: the average number of
# bits an ideal compressor built on the model would spend per pixel. The baseline every model must
# beat is the uniform distribution over all $V^D$ images, $\log P(x) = -D \log V$:
# $64 \log 17$ nats, or $\log_2 17$ bits per dimension (printed below). One draw of $u$
# per image gives an unbiased estimate of the bound; we fix the draws so that every model is scored
# on the same $y$.

# %% tags=["nbval-check-output"]
y = {split: data.dequantize(images[split].x, V, generator=gen).double().to(dev) for split in data.SPLITS}


def nats_per_image(model, split):
    """NLL bound -E[log P(x)] in nats per image, from the density of the dequantised images."""
    nats, kind = evaluate_nll(model, y[split], V)  # genlib.density.evaluate_nll; kind: "bound"
    return nats


uniform = metrics.uniform_nats(D, V)
print(f"uniform baseline: {uniform:.2f} nats per image = {metrics.nats_to_bpd(uniform, D):.3f} bits/dim")
print(f"dequantised y in [{float(y['train'].min()):.2f}, {float(y['train'].max()):.2f}), shape {tuple(y['train'].shape)}")
print(f"pixel variances of the dequantised training images: {float(y['train'].var(0).min()):.4f} to "
      f"{float(y['train'].var(0).max()):.3f}")

# %% [markdown]
# ### Mixtures of digits
#
# We fit mixtures with two kinds of covariance: **full**, $\Sigma_k$ any $64\times 64$ covariance
# ($64\cdot 65/2 = 2080$ numbers per component), and **diagonal**, independent pixels within
# each component (64 numbers). A full-covariance component can represent strokes that vary
# together; a diagonal one cannot, but it has thirty times fewer parameters to estimate from the
# same 1000 training images. Held-out likelihood decides, over both types and a range of $K$.
#
# Each fit is the best of `n_restarts` EM runs (best on the *training* set), stopped after `epochs`
# iterations or when an iteration gains less than $10^{-4}$ nats per point. One run is not enough
# here: in 64 dimensions EM's local maxima differ by several nats per image, and with a single run
# per $K$ the training NLL of the full-covariance mixtures can *rise* from one $K$ to the next (a
# $K$-component run can end in a worse local maximum than a $(K-1)$-component one, although the
# larger family contains the smaller). The table also gives the spread of the validation NLL over
# the restarts: how much a number in it moves with the seed of the initialisation.

# %%
K_images = sorted({1, 2, 3, 5, 10, 15, 20, n_components})
fits, restart_val = {}, {}
for covariance in ("diag", "full"):
    for K in K_images:
        fits[covariance, K], runs_K = fit_em_restarts(y["train"], K, restarts=n_restarts, covariance=covariance,
                                                      iterations=epochs, tol=1e-4, generator=gen)
        restart_val[covariance, K] = [nats_per_image(run, "val") for run in runs_K]
nll = {key: {split: nats_per_image(model, split) for split in ("train", "val")} for key, model in fits.items()}

# %% tags=["nbval-check-output"]
print(f"NLL in nats per image: train / validation of the kept run [validation range over {n_restarts} restarts]")
print("   K   diagonal                        full")
for K in K_images:
    cells = [f"{nll[c, K]['train']:6.1f} / {nll[c, K]['val']:5.1f} [{min(restart_val[c, K]):5.1f}-"
             f"{max(restart_val[c, K]):5.1f}]" for c in ("diag", "full")]
    print(f"{K:4d}   " + "   ".join(cells))
for c in ("diag", "full"):
    train_nll = [nll[c, K]["train"] for K in K_images]
    spread = max(max(v) - min(v) for key, v in restart_val.items() if key[0] == c)
    print(f"{c}: training NLL falls as K grows: {all(np.diff(train_nll) < 0)}; "
          f"largest validation spread over restarts: {spread:.1f} nats")
best_key = min(nll, key=lambda key: nll[key]["val"])
best = fits[best_key]
print(f"chosen by validation: {best_key[0]} covariance, K = {best_key[1]} "
      f"({best.n_parameters} parameters for {len(images['train'])} training images)")
print("the chosen K is the largest K tried:", best_key[1] == max(K_images))

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(6.5, 3.8))
for covariance, color in (("diag", "C0"), ("full", "C1")):
    ax.plot(K_images, [nll[covariance, K]["train"] for K in K_images], "--", color=color, marker="o", ms=3,
            label=f"{covariance}: train")
    ax.plot(K_images, [nll[covariance, K]["val"] for K in K_images], "-", color=color, marker="o", ms=3,
            label=f"{covariance}: validation")
ax.axhline(uniform, color="grey", ls=":", lw=1, label="uniform model")
ax.set_xlabel("number of components K")
ax.set_ylabel("NLL (nats per image)")
ax.set_title(f"Gaussian mixtures on dequantised {image_dataset}")
ax.set_xticks(K_images)
ax.legend(frameon=False, fontsize=8, ncol=2)
plt.show()

# %% [markdown]
# With the restarts, the training NLL falls as $K$ grows for both covariance types (the check
# above): more components can only help on the training set, *if* EM finds the better maximum.
# The full-covariance mixtures overfit quickly: their training NLL plunges as $K$ grows while
# their validation NLL is lowest at a small $K$ and then, not steadily but with ups and downs of a
# few nats from one $K$ to the next, ends far higher at the largest $K$ — a hundred images or fewer
# per component cannot pin down two thousand covariance entries. The diagonal mixtures start worse, but their validation NLL keeps
# improving over a much wider range of $K$, since each component is cheap. Read the differences
# between neighbouring rows against the spread over restarts printed above: differences of a nat
# or two between nearby $K$ are within what the initialisation alone changes, so the choice
# between them is not sharp. When the chosen $K$ is the largest one tried (the last check printed
# above), the validation curve has not clearly turned yet, and a larger $K$ might do as well or
# better. (A larger covariance floor is a simple regulariser for the full model — Exercise 3.)
# Finally, the test set, touched once, for the chosen model:

# %% tags=["nbval-check-output"]
rows = {"uniform over all images": uniform,
        "one Gaussian (full covariance)": nats_per_image(fits["full", 1], "test"),
        f"chosen mixture ({best_key[0]}, K = {best_key[1]})": nats_per_image(best, "test")}
# the chosen mixture's test NLL: chapters 7 and 9 quote it (genlib.results.quote) instead of retyping it
glue("gmm_best_nll", rows[f"chosen mixture ({best_key[0]}, K = {best_key[1]})"], display=False)
glue("gmm_best_K", best_key[1], display=False)
print(f"test NLL on {image_dataset} ({len(images['test'])} images):")
for name, nats in rows.items():
    print(f"  {name:34s} {nats:7.1f} nats per image  {metrics.nats_to_bpd(nats, D):.3f} bits/dim")

# %% [markdown]
# ### What the mixture has learned
#
# A Gaussian mixture is a generative model in both senses of Chapter 1: besides scoring images, it
# draws new ones. Sampling follows the model's two-step definition — choose a component $k$ with
# probability $\pi_k$, then draw $y \sim \mathcal N(\mu_k, \Sigma_k)$ — and we turn $y$ back into
# grey levels by $x = \lfloor V y \rfloor$, clipped to $\{0, \dots, V-1\}$. Below: test digits,
# samples from the `n_components`-component mixture of the covariance type chosen above, and that
# mixture's means $\mu_k$ (with their weights $\pi_k$).

# %%
shown = fits[best_key[0], n_components]
y_samples = shown.sample(40, generator=gen)  # (40, D) in dequantised units
x_samples = torch.clamp(torch.floor(y_samples * V), 0, V - 1)  # (40, D) grey levels
print(f"samples: {tuple(x_samples.shape)}; means: {tuple(shown.mu.shape)}")

fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
plot.image_grid(images["test"].x[:40], shape, nrow=8, ax=axes[0], title=f"test images ({image_dataset})")
plot.image_grid(x_samples, shape, nrow=8, ax=axes[1],
                title=f"samples, {best_key[0]} mixture, K = {n_components}")
plt.tight_layout()
plt.show()

order = torch.argsort(shown.pi, descending=True)
fig, ax = plt.subplots(figsize=(min(10, 1.1 * n_components + 1), 1.1 * math.ceil(n_components / 10) + 0.6))
plot.image_grid(shown.mu[order].clamp(0, 1), shape, nrow=min(10, n_components), ax=ax, vmax=1.0,
                title="component means, by weight: " + ", ".join(f"{float(p):.2f}" for p in shown.pi[order][:10])
                + (" ..." if n_components > 10 else ""))
plt.show()

# %% [markdown]
# The means look like blurred prototypes of digits — each component has specialised in a style of
# one or two digit classes, without ever seeing a label. The samples are recognisable at best and
# noisy at worst: within a component, the pixels of a diagonal Gaussian are drawn independently,
# so strokes come out speckled; a full covariance ties pixels together but, as we saw, is hard to
# estimate. This is the ceiling of mixtures of Gaussians on images, and the reason the rest of the
# book replaces the fixed list of prototypes with a neural network.
#
# ## A mixture is a latent-variable model
#
# Sampling from a mixture introduced a variable that the data never show: the component $z$. Write
# the model as a joint distribution over $z$ and $x$,
#
# $$
# p(z = k) = \pi_k, \qquad p(x \mid z = k) = \mathcal N(x \mid \mu_k, \Sigma_k), \qquad
# p(x) = \sum_{k} p(z = k)\, p(x \mid z = k) .
# $$
#
# Then $z$ is a **latent variable** — Chapter 1's "noise", here a single roll of a $K$-sided die —
# and everything in this chapter has a name in that language. Sampling is *ancestral*: first
# $z \sim p(z)$, then $x \sim p(x \mid z)$. The responsibilities are the **posterior**
# $p(z \mid x)$: inference about the hidden cause of an observation. And the marginal likelihood
# $p(x)$ sums the latent variable out.
#
# The diagram is the standard picture of such a model, a *directed graphical model*: one node per
# variable, an arrow for each conditional distribution, the observed variable shaded, and a box (a
# *plate*) around what is repeated independently for each of the $N$ data points; the parameters
# $\theta = \{\pi_k, \mu_k, \Sigma_k\}$ sit outside, shared by all of them, each with an arrow into
# the variable whose distribution it sets: the weights $\pi$ into $z$, the means and covariances into
# $x$. Chapter 4 draws the same graph for the VAE, with one arrow added.

# %%
diagrams.draw_latent_variable_model(inference=None, params=("\\mu_k, \\Sigma_k",), prior_params=("\\pi",))
plt.show()

# %% [markdown]
# Below, samples coloured by the component that produced them, next to the posterior's answer for
# the training points.

# %%
x_gen, z_gen = em.sample(1500, generator=gen, return_z=True)  # (1500, 2), (1500,)
fig, axes = plt.subplots(1, 2, figsize=(8, 4))
plot.scatter(x_gen, ax=axes[0], bounds=bounds, s=3, alpha=0.6, c=colors[z_gen.cpu().numpy() % 10],
             title="ancestral samples: $z \\sim \\pi$, then $x \\mid z$")
r_train = em.responsibilities(x_train).cpu().numpy()  # (N, K)
plot.scatter(x_np, ax=axes[1], bounds=bounds, s=3, alpha=0.6, c=r_train @ colors[np.arange(n_components) % 10],
             title="training data coloured by $p(z \\mid x)$")
draw_components(axes[1], em)
plt.tight_layout()
plt.show()

# %% [markdown]
# ### Towards infinitely many components
#
# A mixture has to list its prototypes one by one, and we saw what that costs in 64 dimensions. The
# step that leads to the variational autoencoder is to make $z$ **continuous** and let a function
# compute each component's mean from it {cite:p}`kingma2014vae` — the "infinite mixture of
# Gaussians" of Isola's lecture {cite:p}`isola2024dgm2`:
#
# $$
# p(z) = \mathcal N(z \mid 0, I), \qquad p_\theta(x \mid z) = \mathcal N\big(x \mid g_\theta(z), \sigma^2 I\big),
# \qquad p_\theta(x) = \int p(z)\, p_\theta(x \mid z)\, dz .
# $$
#
# This is a mixture of infinitely many Gaussians, one for every value of $z$, with means lying on the
# surface traced out by $g_\theta$. The integral has no closed form for a neural-network $g_\theta$,
# but drawing $\hat N$ latents $z^{(m)} \sim p(z)$ and averaging gives the Monte Carlo estimate
#
# $$
# p_\theta(x) \approx \frac{1}{\hat N} \sum_{m=1}^{\hat N} \mathcal N\big(x \mid g_\theta(z^{(m)}), \sigma^2 I\big),
# $$
#
# which is an ordinary **finite mixture with equal weights** — exactly the model of this chapter.
# Below, $z$ is one-dimensional and $g$ bends the real line into a circle of radius $2.5$,
# $g(z) = 2.5\,(\cos 2\pi\Phi(z), \sin 2\pi\Phi(z))$ with $\Phi$ the standard normal CDF, so the
# infinite mixture is a ring. With few draws the estimate is a handful of blobs (compare the
# `8gaussians` toy); with many it becomes the ring.

# %%
sigma = 0.15


def g(z):
    """A fixed 'decoder' from a 1-D latent to the plane: (M, 1) -> (M, 2), onto a circle."""
    angle = 2 * math.pi * torch.special.ndtr(z[:, 0])
    return 2.5 * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)


fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
for ax, M in zip(axes, (8, 64, 1024)):
    z = torch.randn(M, 1, generator=gen, dtype=torch.float64)  # z_m ~ N(0, 1)
    estimate = GaussianMixture.from_params(torch.full((M,), 1.0 / M), g(z), sigma**2 * torch.eye(2).expand(M, 2, 2))
    plot.density(estimate.log_prob, ax=ax, bounds=bounds, steps=100, contours=False,
                 title=f"$M = {M}$ draws of $z$")
plt.tight_layout()
plt.show()

# %% [markdown]
# Chapter 4 learns $g_\theta$ as a neural network from data, with a higher-dimensional $z$. Two
# problems will appear there that this chapter avoided. First, the Monte Carlo estimate needs
# very many draws of $z$ in high dimensions, because almost every $z$ from the prior explains a given
# image badly; the fix is to draw $z$ from (an approximation of) the posterior $p_\theta(z \mid x)$
# — the continuous counterpart of the responsibilities. Second, that posterior has no closed form,
# so EM's exact E-step is out of reach; the VAE learns a network that predicts it, and maximises the
# same Jensen lower bound we used for EM, with the bound no longer tight.
#
# ## Summary
#
# * The maximum-likelihood Gaussian is the sample mean and the (biased) sample covariance; one bump
#   cannot model multimodal data.
# * A mixture of Gaussians is a latent-variable model. Its log-likelihood is a log-sum-exp, to be
#   computed stably; EM maximises it by alternating posterior responsibilities (E) with weighted
#   maximum likelihood (M), and never decreases it. Gradient ascent on unconstrained parameters also
#   works, more slowly, and is what carries over to neural networks.
# * Model size is chosen by held-out likelihood; the training likelihood always favours more.
# * Continuous densities score discrete images through dequantisation, with the $-D\log V$
#   correction; results are given in nats per image or bits per dimension, against the uniform baseline.
# * Letting the number of components become infinite, indexed by a continuous $z$ through a
#   function $g_\theta$, gives the VAE of Chapter 4.
#
# ## Exercises
#
# **Exercise 1 (the M-step for the weights).** Maximise $\sum_n\sum_k r_{nk}\log\pi_k$ subject to
# $\sum_k \pi_k = 1$ with a Lagrange multiplier, and show that $\pi_k = N_k/N$.
#
# ```{admonition} Solution
# :class: dropdown
# The Lagrangian is $\sum_k N_k \log \pi_k + \zeta\,(1 - \sum_k \pi_k)$ with $N_k = \sum_n r_{nk}$.
# Its derivative with respect to $\pi_k$ is $N_k/\pi_k - \zeta$, which vanishes at
# $\pi_k = N_k/\zeta$. The constraint gives $\zeta = \sum_k N_k = \sum_n \sum_k r_{nk} = N$,
# because each row of responsibilities sums to one. Hence $\pi_k = N_k/N$. (The positivity
# constraints $\pi_k \ge 0$ hold automatically.)
# ```
#
# **Exercise 2 (collapse).** Take a mixture of two 1-D Gaussians, put $\mu_1 = x^{(1)}$ (a training
# point) and let $\sigma_1 \to 0$ while the other component keeps covering all the data. Show that
# the log-likelihood goes to $+\infty$. Why can a single Gaussian not do this (for $N \ge 2$ distinct
# points), and what does the floor $\Sigma_k + \rho I$ change?
#
# ```{admonition} Solution
# :class: dropdown
# The term for $x^{(1)}$ is $\log\big(\pi_1 \mathcal N(x^{(1)} \mid x^{(1)}, \sigma_1^2) + \pi_2 \mathcal N(x^{(1)} \mid \mu_2, \sigma_2^2)\big)
# \ge \log \pi_1 - \tfrac12 \log(2\pi\sigma_1^2) \to +\infty$, while every other term stays bounded
# below by $\log\big(\pi_2 \mathcal N(x^{(n)} \mid \mu_2, \sigma_2^2)\big)$, which does not depend on
# $\sigma_1$. So $\ell \to \infty$. A single Gaussian has to explain *all* points with the one
# variance: as $\sigma \to 0$ every point other than the mean gets a log-density of about
# $-(x^{(n)}-\mu)^2/2\sigma^2 \to -\infty$, which beats the $-\log\sigma$ gain. In a mixture, the second
# component "covers" the other points, so nothing punishes the collapse. The floor keeps every
# variance at least $\rho$, which caps each point's log-density at about
# $-\frac12 \log(2\pi\rho)$ per dimension, so the likelihood stays bounded; it is a crude
# regulariser (a proper one is a prior on $\Sigma_k$, giving MAP-EM).
# ```
#
# **Exercise 3 (regularising the full covariance).** Refit the full-covariance mixtures on digits
# with `GaussianMixture(K, "full", reg=rho)` for $\rho \in \{10^{-4}, 10^{-3}, 10^{-2}\}$ and compare their
# validation NLL with the table above. Count the parameters of a full and a diagonal mixture with
# $K = 10$ on $D = 64$ pixels (check with `n_parameters`). What does the floor do to the
# effective number of parameters?
#
# ````{admonition} Solution
# :class: dropdown
# A full mixture has $K-1 + KD + K\,D(D+1)/2 = 9 + 640 + 20800 = 21449$ parameters at $K=10$; a
# diagonal one $9 + 640 + 640 = 1289$. With 1000 training images, the full covariances are estimated
# from a tenth of them each (weighted), in 64 dimensions: their smallest eigenvalues are badly
# underestimated, and validation images that vary along those directions get very low density.
# A larger floor adds $\rho I$ to each covariance, raising exactly those small eigenvalues
# (compare the pixel variances printed above).
# Our run of the code below (a hidden cell runs it: one EM run per entry, so single entries move by
# a nat or two with the seed) gives as the best validation NLL over $K \in \{1, 2, 3, 5, 10, 20\}$:
#
# | floor $\rho$ | best validation NLL (nats) | at $K$ |
# | --- | --- | --- |
# | $10^{-6}$ (the chapter's) | {glue:text}`ex3_nll_6:.1f` | {glue:text}`ex3_K_6` |
# | $10^{-4}$ | {glue:text}`ex3_nll_4:.1f` | {glue:text}`ex3_K_4` |
# | $10^{-3}$ | {glue:text}`ex3_nll_3:.1f` | {glue:text}`ex3_K_3` |
# | $10^{-2}$ | {glue:text}`ex3_nll_2:.1f` | {glue:text}`ex3_K_2` |
#
# Compare the rows with the table above, whose best full-covariance mixture (the best of the
# restarts) scores {glue:text}`ex3_full_best:.1f` nats at $K =$ {glue:text}`ex3_full_best_K`. In this
# run the best floor gives {glue:text}`ex3_floor_best:.1f` nats: a gain of
# {glue:text}`ex3_gain:.1f` nats, modest next to the gap to the diagonal mixtures, while
# a large floor blurs every component towards an isotropic blob — each component is then cheap enough
# that more of them fit, yet the best NLL is worse than with no floor at all. The floor acts like
# shrinkage of the covariance towards a multiple of the identity, reducing the effective number of
# free parameters.
#
# ```python
# for rho in (1e-6, 1e-4, 1e-3, 1e-2):
#     row = [GaussianMixture(K, "full", reg=rho).fit_em(y["train"], iterations=epochs, tol=1e-4, generator=gen)
#            for K in (1, 2, 3, 5, 10, 20)]
#     print(rho, [round(nats_per_image(model, "val"), 1) for model in row])
# ```
# ````

# %% tags=["remove-input"]
# Exercise 3's solution, run: full-covariance mixtures with a larger covariance floor (one EM run each)
for rho, name in ((1e-6, "6"), (1e-4, "4"), (1e-3, "3"), (1e-2, "2")):
    row = {K: nats_per_image(GaussianMixture(K, "full", reg=rho).fit_em(y["train"], iterations=epochs, tol=1e-4,
                                                                        generator=gen), "val")
           for K in (1, 2, 3, 5, 10, 20)}
    best_K = min(row, key=row.get)
    glue(f"ex3_nll_{name}", row[best_K], display=False)
    glue(f"ex3_K_{name}", best_K, display=False)
    floor_best = min(floor_best, row[best_K]) if rho > 1e-6 else float("inf")
full_best_K = min((K for c, K in nll if c == "full"), key=lambda K: nll["full", K]["val"])
glue("ex3_full_best", nll["full", full_best_K]["val"], display=False)
glue("ex3_full_best_K", full_best_K, display=False)
glue("ex3_floor_best", floor_best, display=False)
glue("ex3_gain", nll["full", full_best_K]["val"] - floor_best, display=False)

# %% [markdown]
# **Exercise 4 (the KDE is a mixture).** Write Chapter 1's kernel density estimate with bandwidth $\sigma$
# as a `GaussianMixture` via `GaussianMixture.from_params`, and check that its `log_prob` agrees
# with `genlib.density.KDE`. Which parameters of the mixture are fitted, and why can the bandwidth
# not be chosen by training likelihood?
#
# ````{admonition} Solution
# :class: dropdown
# The KDE is the mixture with $K = N$, $\pi_n = 1/N$, $\mu_n = x^{(n)}$ and $\Sigma_n = \sigma^2 I$:
#
# ```python
# from genlib.density import KDE
# sigma, N = 0.2, len(x_train)
# as_mixture = GaussianMixture.from_params(torch.full((N,), 1 / N), x_train, sigma**2 * torch.eye(2).expand(N, 2, 2))
# print(torch.allclose(as_mixture.log_prob(x_val), KDE(bandwidth=sigma).fit(x_train).log_prob(x_val)))
# ```
#
# Nothing is fitted by likelihood: the means are the training points themselves and the weights are
# fixed. Only $\sigma$ is free, and on the training set the likelihood grows without bound as $\sigma \to 0$
# (each point's own kernel becomes a spike at it) — the collapse of Exercise 2 for every component
# at once. Held-out points are not at any kernel's centre, so their likelihood has an interior
# maximum, which is where Chapter 1 sets $\sigma$.
# ````

# %% tags=["remove-cell", "nbval-check-output"]
widgets.check_live("02_density_models")  # moves every control of every live widget above: see genlib/widgets.py
