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
# # Generative adversarial networks
#
# The models of Chapter 2 are trained by maximum likelihood, and Chapter 4's VAE by a lower bound
# on it: either way they must say how probable every image is. A generative adversarial network
# (GAN) {cite:p}`goodfellow2014gan` gives that up.
# Its generator is a network $G_\theta$ that turns noise into samples, $x=G_\theta(z)$, and it is
# trained by a second network, a discriminator $D_\phi$, whose only job is to tell its samples
# from real data. The generator wins when the discriminator cannot.
#
# This chapter builds the idea from the ground up and measures where it breaks:
#
# 1. a generator is a *distribution transformer*: it pushes a simple density forward;
# 2. the two-player game, its best discriminator $D^*=p_{\text{data}}/(p_{\text{data}}+p_g)$ and
#    its optimum (the Jensen–Shannon divergence), checked on densities we know;
# 3. the training algorithm, and why the generator's loss is changed in practice (both losses trained);
# 4. **non-convergence**: the Dirac-GAN, whose gradient steps orbit the equilibrium, and a penalty
#    that damps them;
# 5. **mode collapse** on a ring of eight Gaussians, counted over training, and one fix (a
#    minibatch feature for the discriminator);
# 6. **the standard fixes**: the Wasserstein critic and its gradient penalty, R1, spectral
#    normalisation, the hinge loss and two learning rates (TTUR), measured on the ring;
# 7. an unconditional convolutional GAN (DCGAN) on the digits, the chapter's main image model, and
#    a conditional one beside it;
# 8. asking the conditional GAN for a digit;
# 9. latent interpolation and a latent "control";
# 10. no way back from $x$ to $z$: inverting a GAN by optimisation;
# 11. what makes GANs hard to train and evaluate: the losses, the Fréchet distance's dependence on
#    the sample size, seed variance, memorisation, and discrete data.
#
# The framing follows the GAN parts of the lectures of {cite:t}`isola2024dgm1` (generators as direct
# samplers) and {cite:t}`ororbia2025generative` (GANs as distribution transformers, the objective and
# algorithm, conditional GANs, DCGAN, the problems with GANs and their evaluation).

# %% tags=["parameters"]
device = "cpu"          # "auto", "cpu", "cuda" or "mps"
dataset = "digits"      # "digits" (8x8), "mnist5k" (offline 28x28) or "mnist" (download)
epochs = 40             # passes over the training images for the image GAN
steps = 1500            # generator steps on the ring of Gaussians (collapse setting)
stable_steps = 3000     # generator steps of the stabilised ring GAN (R1, balanced learning rates)
r1 = 0.1                # γ of the R1 penalty on the ring
seeds = [0]             # ring runs: every variant on the same seeds (benchmarks/gan_digits.py runs five)
mitigation = "minibatch_std"  # the fix for collapse: "minibatch_std" (a minibatch feature) or "pack" (PacGAN)
pack = 4                # samples the discriminator judges at once when mitigation = "pack"
ring_lr_d = 1e-4        # the ring discriminator's learning rate (the generator's is 1e-3)
latent_dim = 16         # L, the size of z for the image GANs
hidden = 32             # channels of the first conv layer of the image GAN
checkpoint = ""         # a file from genlib.train_family: load the main model, skip its training
seed = 0

# %% tags=["hide-input"]
import json
import math
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy.spatial.distance import jensenshannon
from scipy.stats import norm

import ipywidgets
from IPython.display import Markdown
from myst_nb import glue

import genlib
from genlib import bench, checks, data, diagrams, gan, metrics, plot, train_family, widgets
from genlib.train import check_epochs, fit

dev = genlib.device(device)
gen = genlib.seed_everything(seed)
data.check_dataset(dataset, ("digits", "mnist5k", "mnist"))
check_epochs(epochs)
checks.positive_int("steps", steps)
checks.positive_int("stable_steps", stable_steps)
checks.positive("r1", r1)
checks.positive_int("pack", pack)
checks.choice("mitigation", mitigation, ("minibatch_std", "pack"))
checks.positive_int("latent_dim", latent_dim)
checks.positive_int("hidden", hidden)
checks.positive("ring_lr_d", ring_lr_d)
if not isinstance(seeds, (list, tuple)) or not seeds or any(
        isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
    raise ValueError(f"seeds must be a non-empty list of non-negative integers (papermill: -y 'seeds: [0, 1]'), "
                     f"got {seeds!r}")


show = genlib.show_source  # prints a genlib function's source, to read next to its equation


# the medians over seeds that the prose states come from the chapter's benchmark (benchmarks/gan_digits.py)
BENCH = json.loads((Path(genlib.__file__).resolve().parent.parent / "results" / "gan_digits.json").read_text())


def median(values):
    return float(np.median(values))


# %% [markdown]
# ## 1. Generators transform distributions
#
# Chapter 1 drew rivers from random bits: a program turned noise into a sample. A GAN's generator
# does the same with a neural network. Draw $z$ from a fixed, simple distribution $p(z)$ and output
# $x=G(z)$: the distribution of $x$, written $p_g$, is the **push-forward** of $p(z)$ through $G$.
# In one dimension, with $G$ increasing, probability is conserved between $z$ and $x=G(z)$, so
#
# $$
# p_g(x) = p(z)\,\Big|\frac{dG}{dz}\Big|^{-1}, \qquad z = G^{-1}(x).
# $$
#
# Where $G$ is steep it stretches a small interval of $z$ over a long interval of $x$ and the
# density thins out; where $G$ is flat it piles probability up. Take $z\sim\mathcal N(0,1)$ and
# $G(z)=z/2+2\tanh(2z)$: steep around $z=0$, flatter on both sides. One Gaussian bump becomes two.

# %%
def push(z):
    """The 1-D generator of this section: increasing, steep near z = 0."""
    return z / 2 + 2 * np.tanh(2 * z)


def push_density(x):
    """p_g(x) by the change of variables: invert G on a fine grid, divide p(z) by G'(z)."""
    z_grid = np.linspace(-6, 6, 200_001)
    z = np.interp(x, push(z_grid), z_grid)              # G is increasing, so interpolation inverts it
    slope = 0.5 + 4 / np.cosh(2 * z) ** 2               # G'(z)
    return norm.pdf(z) / slope


z_samples = torch.randn(100_000, generator=gen).numpy()
x_samples = push(z_samples)
edges = np.linspace(-4, 4, 81)
counts, _ = np.histogram(x_samples, edges, density=True)
centres = (edges[1:] + edges[:-1]) / 2

fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
axes[0].hist(z_samples, bins=60, density=True, color="C0", alpha=0.6)
axes[0].set(title="noise z ~ N(0, 1)", xlabel="z", ylabel="density")
zz = np.linspace(-3, 3, 200)
axes[1].plot(zz, push(zz), color="C2")
axes[1].set(title="generator x = G(z)", xlabel="z", ylabel="x")
axes[2].hist(x_samples, bins=edges, density=True, color="C1", alpha=0.6, label="histogram of G(z)")
axes[2].plot(centres, push_density(centres), "k", lw=1, label="change of variables")
axes[2].set(title="push-forward p_g", xlabel="x", ylabel="density")
axes[2].legend(frameon=False, fontsize=8, loc="upper center")
plt.tight_layout()
plt.show()

# %% tags=["nbval-check-output"]
tv = 0.5 * np.abs(counts - push_density(centres)).sum() * (edges[1] - edges[0])
print(f"total variation between the histogram and the formula: {tv:.2f} (sampling noise and binning only)")
print("formula integrates to one:", bool(abs(np.trapezoid(push_density(np.linspace(-6, 6, 4001)),
                                                          np.linspace(-6, 6, 4001)) - 1) < 1e-3))

# %% [markdown]
# The histogram of $G(z)$ lies on the change-of-variables density. In one dimension we could
# compute $p_g$ because $G$ was invertible; a generator of images maps $L$ numbers to $D\gg L$
# pixels, its samples lie on an $L$-dimensional surface, and $p_g$ has no density on pixel space
# at all. A GAN is therefore an **implicit** model (Chapter 1's taxonomy): easy to sample from, with
# no `log_prob`. Training cannot maximise a likelihood that does not exist; it needs another way to
# compare $p_g$ with $p_{\text{data}}$ from samples alone.

# %% [markdown]
# ## 2. The two-player game
#
# The idea of {cite:t}`goodfellow2014gan`: train a classifier to compare the two. The discriminator
# $D_\phi(x)\in(0,1)$ is the probability that $x$ is real; it is trained, like any binary
# classifier, to maximise the log-likelihood of the labels "real" for data and "fake" for samples.
# The generator is trained to make it fail. Together they play the minimax game
#
# $$
# \min_\theta\max_\phi\; V(D_\phi,G_\theta),\qquad
# V(D,G)=\mathbb E_{x\sim p_{\text{data}}}\big[\log D(x)\big]+\mathbb E_{z\sim p(z)}\big[\log\big(1-D(G(z))\big)\big].
# $$

# %%
diagrams.draw_gan_game()
plt.show()

# %% [markdown]
# **The best discriminator.** Fix $G$. The derivation below needs $p_{\text{data}}$ and $p_g$ to
# have densities with respect to one common measure: both continuous on the same space (the 1-D
# example of section 1), or both discrete (the check that follows). An image generator's $p_g$
# lives on an $L$-dimensional surface and has no density on pixel space (section 1); the result
# still holds with densities taken with respect to $p_{\text{data}}+p_g$, and where the two
# distributions do not overlap it says something stark, which we verify below: $D^*$ is 1 on the
# data and 0 on the samples, and the Jensen–Shannon divergence sits at its ceiling $\log 2$
# however close or far the two supports are. Writing the second expectation over $x=G(z)\sim p_g$,
#
# $$
# V(D,G)=\int \Big(p_{\text{data}}(x)\log D(x)+p_g(x)\log\big(1-D(x)\big)\Big)\,dx .
# $$
#
# $D$ may choose its value at every $x$ separately, so we maximise the integrand pointwise. For
# $a,b>0$ the function $t\mapsto a\log t+b\log(1-t)$ on $(0,1)$ has derivative $a/t-b/(1-t)$, zero at
# $t=a/(a+b)$, and is concave, so that is its maximum:
#
# $$
# D^*(x)=\frac{p_{\text{data}}(x)}{p_{\text{data}}(x)+p_g(x)} .
# $$
#
# **The optimum of the game.** Substitute $D^*$ and add and subtract $\log 4$. With the mixture
# $\bar p=\tfrac12(p_{\text{data}}+p_g)$, $D^*=p_{\text{data}}/(2\bar p)$ and $1-D^*=p_g/(2\bar p)$, so
#
# $$
# V(D^*,G)=\mathbb E_{p_{\text{data}}}\Big[\log\frac{p_{\text{data}}}{\bar p}\Big]+\mathbb E_{p_g}\Big[\log\frac{p_g}{\bar p}\Big]-\log 4
# =2\,\mathrm{JS}(p_{\text{data}}\,\|\,p_g)-\log 4,
# $$
#
# where $\mathrm{JS}(p\|q)=\tfrac12\mathrm{KL}(p\|\bar p)+\tfrac12\mathrm{KL}(q\|\bar p)$, $\bar p=\tfrac12(p+q)$, is the Jensen–Shannon
# divergence. It is non-negative and zero only when $p_g=p_{\text{data}}$: the generator's best
# move against a perfect discriminator is to reproduce the data distribution, where $D^*=\tfrac12$
# everywhere and $V=-\log 4$. Where maximum likelihood minimises $\mathrm{KL}(p_{\text{data}}\|p_\theta)$
# (Chapter 1), the idealised GAN minimises a different divergence, and only needs samples of $p_g$.
#
# Both identities can be checked numerically on any two discrete distributions (scipy's
# `jensenshannon` returns $\sqrt{\mathrm{JS}}$):

# %%
show(gan.optimal_discriminator)

# %% tags=["nbval-check-output"]
rng = np.random.default_rng(seed)
p_demo, q_demo = rng.dirichlet(np.ones(10)), rng.dirichlet(np.ones(10))
d_star_demo = gan.optimal_discriminator(torch.tensor(p_demo), torch.tensor(q_demo)).numpy()
value_star = (p_demo * np.log(d_star_demo)).sum() + (q_demo * np.log(1 - d_star_demo)).sum()
print("V(D*, G) = 2 JS - log 4:", bool(np.isclose(value_star, 2 * jensenshannon(p_demo, q_demo) ** 2 - math.log(4))))
perturbed = np.clip(d_star_demo + rng.normal(0, 0.05, 10), 0.01, 0.99)
print("any other D does worse:", bool((p_demo * np.log(perturbed)).sum() + (q_demo * np.log(1 - perturbed)).sum()
                                        < value_star))
same = gan.optimal_discriminator(torch.tensor(p_demo), torch.tensor(p_demo))
print("p_g = p_data gives D* = 1/2 everywhere:", bool(torch.allclose(same, torch.tensor(0.5, dtype=same.dtype))))
p_left, p_right = np.r_[p_demo[:5] / p_demo[:5].sum(), np.zeros(5)], np.r_[np.zeros(5), q_demo[5:] / q_demo[5:].sum()]
d_disjoint = gan.optimal_discriminator(torch.tensor(p_left), torch.tensor(p_right)).numpy()
print("disjoint supports: D* is 1 on the data, 0 on the samples:",
      bool(np.all(d_disjoint[:5] == 1) and np.all(d_disjoint[5:] == 0)),
      "| JS = log 2:", bool(np.isclose(jensenshannon(p_left, p_right) ** 2, math.log(2))))

# %% [markdown]
# **A trained discriminator reaches $D^*$.** The derivation assumes a discriminator that can be
# anything. A neural network trained by the discriminator's loss on samples should approach $D^*$
# where it has data. We take the two-bump push-forward of section 1 as "data" and a Gaussian
# $\mathcal N(0, 1.5^2)$ as a fixed "generator" — both densities known — and train a small MLP
# discriminator with genlib's training loop on 20,000 samples of each.

# %%
show(gan.discriminator_loss)
x_real = torch.tensor(push(torch.randn(20_000, generator=gen).numpy()), dtype=torch.float32)[:, None]
x_fake = 1.5 * torch.randn(20_000, 1, generator=gen)
disc_1d = gan.Discriminator(gan.GANConfig(dims=1, hidden=32))
fit(disc_1d, gan.two_sample_loss, (x_real, x_fake), epochs=10, batch_size=256, lr=3e-3, generator=gen, progress=False)

xs = np.linspace(-3.5, 3.5, 400)
p_data_xs, p_g_xs = push_density(xs), norm.pdf(xs, 0, 1.5)
d_star_xs = gan.optimal_discriminator(torch.tensor(p_data_xs), torch.tensor(p_g_xs)).numpy()
with torch.no_grad():
    d_learned = torch.sigmoid(disc_1d(torch.tensor(xs, dtype=torch.float32)[:, None])).numpy()
fig, ax = plt.subplots(figsize=(7, 3.3))
ax.plot(xs, p_data_xs, color="C1", label="$p_{data}$ (section 1)")
ax.plot(xs, p_g_xs, color="C0", label="$p_g$ = N(0, 1.5²)")
ax.plot(xs, d_star_xs, "k--", label="$D^*$")
ax.plot(xs, d_learned, color="C3", label="trained D")
ax.set(xlabel="x", ylabel="density / probability real", title="a trained discriminator approaches D*")
ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
plt.tight_layout()
plt.show()

# %% tags=["nbval-check-output"]
where = (p_data_xs + p_g_xs) > 0.1  # where the discriminator sees plenty of data
print(f"|D - D*| where p_data + p_g > 0.1 (|x| < {np.abs(xs[where]).max():.1f}): "
      f"max {np.abs(d_learned - d_star_xs)[where].max():.2f}, mean {np.abs(d_learned - d_star_xs)[where].mean():.2f}")

# %% [markdown]
# The trained discriminator follows $D^*$ closely where either density has mass: above ½ near the
# data's two bumps, below ½ between them and in the tails where the Gaussian is wider. Far out,
# where neither density has samples, it is unconstrained. The discriminator is a *density-ratio
# estimator*: $D/(1-D)\approx p_{\text{data}}/p_g$, learned from samples alone.

# %% [markdown]
# ## 3. The algorithm, and the non-saturating loss
#
# In practice the inner maximisation is not run to convergence. Training alternates $n_D$ gradient
# steps on the discriminator (each on a fresh minibatch of data and of noise) with one step on
# the generator, each player with its own optimiser {cite:p}`goodfellow2014gan`:
#
# > repeat: for $n_D$ steps, ascend $\frac1B\sum_n\big[\log D(x^{(n)})+\log(1-D(G(z^{(n)})))\big]$ in $\phi$;
# > then descend $\frac1B\sum_n\log(1-D(G(z^{(n)})))$ in $\theta$.
#
# genlib writes the losses on the discriminator's logit $a$ ($D=\sigma(a)$, so
# $\log D=-\operatorname{softplus}(-a)$ and $\log(1-D)=-\operatorname{softplus}(a)$, stable for any $a$).
# `AdversarialStep` is the step that `genlib.train.fit` calls on every minibatch in place of its
# usual update (the `step=` hook): a discriminator step always, a generator step every $n_D$-th call.

# %%
show(gan.generator_loss)
show(gan.AdversarialStep.__call__)
show(gan.AdversarialStep._generator_step)

# %% [markdown]
# **Saturation.** Early in training the generator is poor and the discriminator rejects its samples
# confidently: $D(G(z))\to 0$. There the game's own generator loss $\log(1-D(G(z)))$ is flat.
# Its derivative with respect to the logit is $\frac{d}{da}\log(1-\sigma(a))=-\sigma(a)=-D$, which
# vanishes exactly when the generator most needs to learn. {cite:t}`goodfellow2014gan` therefore
# train $G$ to *maximise* $\log D(G(z))$ instead — the **non-saturating** loss $-\log D(G(z))$, whose
# derivative is $-(1-D)$, close to $-1$ there. Both losses have the same fixed point (the generator
# wants $D(G(z))$ large), but very different gradients on the way. We plot both, from autograd, next
# to the formulas:

# %%
d_axis = torch.linspace(0.001, 0.999, 200, dtype=torch.float64)
grad = {}
for kind in gan.GENERATOR_LOSSES:
    a = torch.log(d_axis / (1 - d_axis)).requires_grad_(True)
    (grad[kind],) = torch.autograd.grad(gan.generator_loss(a, kind) * len(a), a)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
for kind, color in zip(gan.GENERATOR_LOSSES, ["C0", "C3"]):
    label = "non-saturating: $-\\log D(G(z))$" if kind == "nonsaturating" else "minimax: $\\log(1-D(G(z)))$"
    a = torch.log(d_axis / (1 - d_axis))
    axes[0].plot(d_axis, [float(gan.generator_loss(v[None], kind)) for v in a], color=color, label=label)
    axes[1].plot(d_axis, grad[kind].abs(), color=color, label=label)
axes[1].plot(d_axis[::20], d_axis[::20], "k.", ms=4, label="formulas: D and 1 - D")
axes[1].plot(d_axis[::20], 1 - d_axis[::20], "k.", ms=4)
axes[0].set(xlabel="D(G(z))", ylabel="generator loss", title="the two generator losses")
axes[1].set(xlabel="D(G(z))", ylabel="|d loss / d logit|", title="their gradients")
axes[0].legend(frameon=False, fontsize=8), axes[1].legend(frameon=False, fontsize=8, loc="upper center")
plt.tight_layout()
plt.show()

# %% tags=["nbval-check-output"]
low = d_axis < 0.05
print("autograd matches -D and -(1 - D):",
      bool(torch.allclose(grad["minimax"], -d_axis) and torch.allclose(grad["nonsaturating"], -(1 - d_axis))))
print(f"where D(G(z)) < 0.05, the non-saturating gradient is at least "
      f"{(grad['nonsaturating'] / grad['minimax'])[low].min():.0f}x the minimax one")

# %% [markdown]
# The minimax loss (red) is nearly flat on the left, where a fresh generator starts; the
# non-saturating loss (blue) is steepest there.
#
# **Training with each loss.** The plot is about one number; what matters is whether training
# stalls. We train the same small GAN on the ring of section 5 twice from the same seed, once with
# each generator loss, with $n_D=5$ discriminator steps per generator step so that the discriminator
# gets ahead early, as it does on real data, and record the mean $D(G(z))$ and the norm of the
# generator's gradient at every generator step (`AdversarialStep.log`).

# %%
saturation_ring = gan.RingExperiment(steps=200, lr_d=1e-3, evals=8)
saturation = {kind: saturation_ring.run(seed, generator_loss=kind, k=5) for kind in ("minimax", "nonsaturating")}
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
for (kind, result), color in zip(saturation.items(), ["C3", "C0"]):
    log_k = result["step"].log
    axes[0].plot(log_k["d_fake"], color=color, lw=1, label=kind)
    axes[1].semilogy(log_k["g_grad"], color=color, lw=1, label=kind)
axes[0].set(xlabel="generator step", ylabel="mean D(G(z))", title="how the discriminator rates the samples", ylim=(0, 1))
axes[1].set(xlabel="generator step", ylabel="‖∇θ generator loss‖", title="the generator's gradient")
for ax in axes:
    ax.legend(frameon=False, fontsize=8)
plt.tight_layout()
plt.show()

# %% tags=["nbval-check-output"]
for kind, result in saturation.items():
    log_k = result["step"].log
    print(f"{kind:14} first 50 steps: mean D(G(z)) {np.mean(log_k['d_fake'][:50]):.1f}; "
          f"after {result['step'].steps} steps: {result['final']['modes']}/8 modes")
    glue(f"sat_{kind}_grad", float(np.median(log_k["g_grad"][:50])), display=False)
    glue(f"sat_{kind}_dfake", float(np.mean(log_k["d_fake"][:50])), display=False)
    glue(f"sat_{kind}_modes", result["final"]["modes"], display=False)
    glue(f"sat_{kind}_hq", result["final"]["high_quality"], display=False)
mm, ns = (saturation[k]["step"].log for k in ("minimax", "nonsaturating"))
early_mm, early_ns = float(np.median(mm["g_grad"][:50])), float(np.median(ns["g_grad"][:50]))
glue("saturation_verdict", Markdown(
    f"In the first 50 generator steps the discriminator rates the samples at {np.mean(mm['d_fake'][:50]):.2f} on "
    f"average under the minimax loss, and the generator's gradient has median norm {early_mm:.3g}, against "
    f"{early_ns:.3g} for the non-saturating loss "
    + (f"({early_ns / early_mm:.1f} times larger). " if early_ns > early_mm else "(not larger: here the saturation does not show in the gradient's norm). ")
    + f"After {saturation['minimax']['step'].steps} steps the minimax run covers {saturation['minimax']['final']['modes']}/8 modes "
    f"with {saturation['minimax']['final']['high_quality']:.0%} high-quality samples, the non-saturating run "
    f"{saturation['nonsaturating']['final']['modes']}/8 with {saturation['nonsaturating']['final']['high_quality']:.0%}. "
    "This is one seed; the plot of the two losses above is the general argument."), display=False)

# %% [markdown]
# {glue:md}`saturation_verdict` From here on every generator in this chapter uses the non-saturating loss
# (or, in section 6, a loss without a sigmoid).

# %% [markdown]
# ## 4. Non-convergence: the Dirac-GAN
#
# A GAN is not trained by minimising one loss: each player descends its own, and the pair looks
# for a saddle point. Gradient steps on a game can circle a saddle point for ever. The smallest
# example is the **Dirac-GAN** of {cite:t}`mescheder2018which`: the data are a single point $x=0$,
# the generator a single point $\theta$ ($p_g=\delta_\theta$), and the discriminator's logit is
# linear, $a(x)=\psi x$. The only equilibrium is $\theta=\psi=0$: the generator on the data, and a
# discriminator that cannot tell. With genlib's losses the discriminator's loss is
# $\operatorname{softplus}(0)+\operatorname{softplus}(\psi\theta)$ and the non-saturating
# generator's $\operatorname{softplus}(-\psi\theta)$, so gradient descent in continuous time is
#
# $$
# \dot\psi=-\theta\,\sigma(\psi\theta),\qquad \dot\theta=\psi\,\sigma(-\psi\theta),
# $$
#
# and near the equilibrium, where $\sigma\approx\tfrac12$, $\dot\psi=-\theta/2$ and
# $\dot\theta=\psi/2$: a rotation. $\tfrac{d}{dt}(\theta^2+\psi^2)=\theta\psi-\psi\theta=0$, so the
# players circle the equilibrium and never reach it. Discrete steps do worse: a *simultaneous* step
# of size $\eta$ multiplies the distance to the equilibrium by $\sqrt{1+\eta^2/4}$ (the linear
# map has that determinant), an outward spiral; *alternating* steps (the discriminator first, as in
# `AdversarialStep`) stay on a closed orbit. With the Wasserstein critic of section 6 the field is
# exactly the rotation, $\dot\psi=-\theta$, $\dot\theta=\psi$, at every distance.
#
# **The fix is a penalty.** R1 {cite:p}`mescheder2018which` adds $\tfrac\gamma2\lVert\nabla_x
# a(x)\rVert^2$ on real data to the discriminator's loss; here $\nabla_x a=\psi$, so the penalty is
# $\tfrac\gamma2\psi^2$ and the field gains a friction term, $\dot\psi=-\theta/2-\gamma\psi$. The
# linearised matrix now has trace $-\gamma<0$ and determinant $\tfrac14>0$: both eigenvalues have a
# negative real part, and the players spiral *in*. `gan.dirac_gan` runs these dynamics with the
# chapter's own loss functions and autograd:

# %%
show(gan.r1_penalty)
eta = 0.1
dirac = {
    "Wasserstein, simultaneous": gan.dirac_gan(1.0, 0.0, 300, eta, "wasserstein"),
    "Wasserstein, alternating": gan.dirac_gan(1.0, 0.0, 300, eta, "wasserstein", simultaneous=False),
    "GAN, simultaneous": gan.dirac_gan(1.0, 0.0, 1500, eta, "gan"),
    "GAN, alternating": gan.dirac_gan(1.0, 0.0, 1500, eta, "gan", simultaneous=False),
    f"GAN + R1 (γ = {r1:g})": gan.dirac_gan(1.0, 0.0, 1500, eta, "gan", r1=r1),
}
fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
for ax, names in zip(axes, (list(dirac)[:2], list(dirac)[2:])):
    for name, color in zip(names, ["C3", "C0", "C2"]):
        path = dirac[name].numpy()
        ax.plot(path[:, 0], path[:, 1], color=color, lw=0.8, label=name)
        ax.plot(*path[-1], "o", color=color, ms=4)
    ax.plot(0, 0, "k*", ms=9, label="equilibrium θ = ψ = 0")
    ax.plot(1, 0, "ks", ms=4, label="start (θ, ψ) = (1, 0)")
    ax.set(xlabel="generator θ", ylabel="discriminator ψ", aspect="equal")
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.15), ncol=2)
axes[0].set_title(f"Wasserstein critic: 300 steps, η = {eta}")
axes[1].set_title(f"GAN (non-saturating): 1,500 steps, η = {eta}")
plt.tight_layout()
plt.show()

# %% tags=["nbval-check-output"]
radius = {name: path.norm(dim=1) for name, path in dirac.items()}
print("Wasserstein, simultaneous: r² grows by exactly (1 + η²) per step:",
      bool(torch.allclose(radius["Wasserstein, simultaneous"] ** 2, (1 + eta ** 2) ** torch.arange(301.0, dtype=torch.float64))))
alternating = radius["Wasserstein, alternating"]
print(f"Wasserstein, alternating: the distance stays between {alternating.min():.2f} and {alternating.max():.2f}")
for name in list(dirac)[2:]:
    print(f"{name}: distance to the equilibrium after 1,500 steps {float(radius[name][-1]):.3f}")
glue("dirac_wgan_r", float(radius["Wasserstein, simultaneous"][-1]), display=False)
glue("dirac_gan_r", float(radius["GAN, simultaneous"][-1]), display=False)
glue("dirac_gan_alt_r", float(radius["GAN, alternating"][-1]), display=False)
glue("dirac_r1_r", float(radius[f"GAN + R1 (γ = {r1:g})"][-1]), display=False)

# %% [markdown]
# Left: with the Wasserstein critic, simultaneous steps spiral out (from distance 1 to
# {glue:text}`dirac_wgan_r:.2f` in 300 steps) and alternating steps go round a closed orbit. Right:
# the GAN's sigmoid slows the players down far from the equilibrium, so its simultaneous path
# neither escapes nor converges — it winds onto a cycle and ends at distance
# {glue:text}`dirac_gan_r:.2f` (alternating: {glue:text}`dirac_gan_alt_r:.2f`) — while R1 brings it to
# the equilibrium (distance {glue:text}`dirac_r1_r:.1e`). The same happens, in many dimensions at once,
# inside every GAN: losses that oscillate instead of settling, and samples that keep moving.

# %% [markdown]
# ## 5. Mode collapse on a ring of Gaussians
#
# The data: eight narrow Gaussians on a circle of radius $2.5$ (genlib's `8gaussians` toy with
# $\sigma$ set by `RingExperiment.std`). Because we know the modes, we can count what a generator
# does with the protocol of the mode-collapse literature {cite:p}`srivastava2017veegan,lin2018pacgan`:
# assign each of the `n_eval` samples to its nearest mode; a sample is **high quality** if it lies
# within $3\sigma$ of it; a mode is **covered** if it receives at least one high-quality sample. The
# target we set (and `benchmarks/gan_digits.py` checks) is all eight modes with at least
# $90\%$ high-quality samples.

# %%
show(metrics.mode_coverage)
ring = gan.RingExperiment(steps=steps, lr_d=ring_lr_d)
print(ring)

# %% [markdown]
# **Mode collapse** is a generator whose samples are realistic but cover only a few of the data's
# modes: each sample, judged alone, is perfectly plausible, so a discriminator that looks at one
# sample at a time has nothing to object to. In practice the generator often hops from mode to
# mode as the discriminator learns to reject the current one {cite:p}`metz2017unrolled`, which is
# the non-convergence of section 4 seen on a real model. The fixes give the discriminator a view
# of the *set* of samples. {cite:t}`salimans2016improved` let it compare each sample with the others
# in its minibatch ("minibatch discrimination"); the simplest version {cite:p}`karras2018progressive`
# hands it one extra number, the minibatch's standard deviation (averaged over coordinates). A real
# minibatch of the ring has a spread of about $1.8$; a collapsed generator's minibatch has almost
# none, and the discriminator can reject the whole batch at once. {cite:t}`lin2018pacgan` instead let
# it judge $m$ samples at once ("packing", PacGAN). In genlib both are options of the discriminator
# (`minibatch_std=True`, `pack=m`); nothing else in the game changes.
#
# We train the plain GAN and the fixed one (the parameter `mitigation`; the book uses the minibatch
# feature) on the same seeds, with the same networks, optimisers and number of generator steps, and
# count modes over training. The discriminator learns ten times more slowly than the generator, the
# setting in which {cite:t}`metz2017unrolled` demonstrate collapse. Section 6 adds a third run with
# the standard stabilisers.

# %%
show(gan.Discriminator.forward)
fix_name, fix = (("minibatch std", dict(minibatch_std=True)) if mitigation == "minibatch_std"
                 else (f"PacGAN{pack}", dict(pack=pack)))
stable_ring = gan.RingExperiment(steps=stable_steps, lr_d=1e-3)
stable_name = f"R1 (γ = {r1:g}), balanced"

# %%
tic = time.process_time()
runs = {"plain GAN": [ring.run(s) for s in seeds],
        fix_name: [ring.run(s, **fix) for s in seeds],
        stable_name: [stable_ring.run(s, r1=r1, ema=gan.STABLE_RING_EMA) for s in seeds]}
print(f"{3 * len(seeds)} ring runs: {time.process_time() - tic:.0f} s CPU")
print(f"generator steps: {runs['plain GAN'][0]['step'].steps} ({fix_name} the same), "
      f"{runs[stable_name][0]['step'].steps} ({stable_name})")
glue("ring_steps_taken", runs["plain GAN"][0]["step"].steps, display=False)
glue("stable_steps_taken", runs[stable_name][0]["step"].steps, display=False)
glue("ring_n_eval", ring.n_eval, display=False)

# %%
ring_data = data.toy("8gaussians", 2500, seed=seed, noise=ring.std)
colours = {"plain GAN": "C3", fix_name: "C2", stable_name: "C0"}


def ring_bounds(*point_sets, margin=0.3):
    """Square limits that contain every point (a diverging generator is drawn in full)."""
    reach = max(3.2, max(float(np.abs(np.asarray(p)).max()) for p in point_sets)) + margin
    return (-reach, reach, -reach, reach)


fig, axes = plt.subplots(len(seeds), 3, figsize=(10, 3.6 * len(seeds)), squeeze=False)
for col, (name, results) in enumerate(runs.items()):
    for row, (s, result) in enumerate(zip(seeds, results)):
        ax, final = axes[row, col], result["final"]
        samples = result["model"].sample(ring.n_eval, generator=torch.Generator().manual_seed(s))
        bounds = ring_bounds(ring_data, samples)
        plot.scatter(ring_data, ax=ax, bounds=bounds, s=1, color="0.75")
        plot.scatter(samples, ax=ax, bounds=bounds, s=1, color=colours[name],
                     title=f"{name}, seed {s}\n{final['modes']}/8 modes, {final['high_quality']:.0%} high quality")
        ax.set_xlabel("$x_1$"), ax.set_ylabel("$x_2$")
fig.suptitle("samples (colour) over the data (grey) at the end of training")
plt.tight_layout()
plt.show()

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(10, 3.9))
for name, results in runs.items():
    for i, result in enumerate(results):
        kw = dict(color=colours[name], alpha=0.8, lw=1, label=name if i == 0 else None)
        axes[0].plot(result["steps"], result["modes"], **kw)
        axes[1].plot(result["steps"], result["high_quality"], **kw)
axes[0].set(xlabel="generator step", ylabel="modes covered (of 8)", ylim=(-0.3, 8.5),
            title="modes covered, one line per seed")
axes[0].yaxis.set_major_locator(plt.MaxNLocator(integer=True))
axes[1].set(xlabel="generator step", ylabel="fraction of high-quality samples", ylim=(0, 1.02),
            title="sample quality, one line per seed")
axes[1].axhline(0.9, color="k", ls=":", lw=1, label="target: 90% high quality")
for ax in axes:
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.18), ncol=2)
plt.tight_layout()
plt.show()

# %% tags=["nbval-check-output"]
print(f"{'':28}" + "".join(f"{'seed ' + str(s):>14}" for s in seeds))
for name, results in runs.items():
    print(f"{name:28}" + "".join(f"{r['final']['modes']:>6}/8 {r['final']['high_quality']:>5.2f}" for r in results))
print(f"(modes covered / high-quality fraction of {ring.n_eval} samples at the end)")

# %% tags=["remove-input"]
ring_bench = BENCH["ring"]


def ring_median(name, key):
    return median([r[key] for r in ring_bench[name]["runs"]])


for key, name in (("plain", "plain GAN (collapse setting)"), ("mbstd", "minibatch std (collapse setting)"),
                  ("balanced", "plain GAN (balanced)"), ("r1", "R1"), ("sn", "spectral norm + hinge"),
                  ("ttur", "R1 + TTUR"), ("pacgan", "PacGAN4 (collapse setting)"), ("wgan", "WGAN-GP"),
                  ("long", "plain GAN (balanced, 2x steps)")):
    glue(f"ring_{key}_modes", ring_median(name, "modes"), display=False)
    glue(f"ring_{key}_hq", ring_median(name, "high_quality"), display=False)
    glue(f"ring_{key}_hq_min", min(r["high_quality"] for r in ring_bench[name]["runs"]), display=False)
    glue(f"ring_{key}_hq_max", max(r["high_quality"] for r in ring_bench[name]["runs"]), display=False)
    glue(f"ring_{key}_hits", f"{ring_bench[name]['target_hits']} of {len(ring_bench[name]['runs'])}", display=False)
    glue(f"ring_{key}_steps", ring_bench[name]["steps"], display=False)
    glue(f"ring_{key}_cpu", ring_median(name, "cpu_seconds"), display=False)
glue("ring_bench_seeds", len(ring_bench["R1"]["runs"]), display=False)


def ring_quality(name):
    return [r["high_quality"] for r in ring_bench[name]["runs"]]


balanced = ["plain GAN (balanced)", "R1", "spectral norm + hinge", "R1 + TTUR"]
best = max(balanced, key=lambda name: ring_median(name, "high_quality"))
overlapping = [name for name in balanced if name != best and bench.overlap(ring_quality(best), ring_quality(name))]
most_hits = max(ring_bench[name]["target_hits"] for name in balanced)
verdict = (f"The best median quality among the balanced runs is {best}'s "
           f"({ring_median(best, 'high_quality'):.0%}); "
           + (f"its range overlaps that of {', '.join(overlapping)}, so over these seeds it is not clearly better. "
              if overlapping else "its range lies above every other balanced variant's. ")
           + (f"At most {most_hits} of {len(ring_quality(best))} seeds reach the target of eight modes with at least "
              f"90% high quality: at this number of steps the target is not reached." if most_hits < 0.8 * len(ring_quality(best)) else
              f"{most_hits} of {len(ring_quality(best))} seeds reach the target of eight modes with at least 90% "
              f"high quality."))
worse = [name for name in balanced if max(ring_quality(name)) < min(ring_quality(best))]
if worse:
    verdict += f" Over these seeds {' and '.join(worse)} (as configured here) did clearly worse than {best}."
longer = "plain GAN (balanced, 2x steps)"
verdict += (f" Trained twice as long ({ring_bench[longer]['steps']} generator steps), the balanced plain GAN reaches "
            f"the target on {ring_bench[longer]['target_hits']} of {len(ring_quality(longer))} seeds (median high "
            f"quality {ring_median(longer, 'high_quality'):.0%}): what the shorter runs lack is training time, not a "
            f"fix — the samples left on the arcs between modes shrink as training goes on.")
glue("ring_verdict", Markdown(verdict), display=False)

# %% [markdown]
# The table and the figures show one run; the sentences that follow rest on
# `benchmarks/gan_digits.py --ring`, over {glue:text}`ring_bench_seeds` seeds (median, and the range
# in brackets, of the high-quality fraction).
#
# **The plain GAN does not learn the ring in the collapse setting.** Its samples form one compact
# blob (median {glue:text}`ring_plain_modes:.0f` of 8 modes covered, high quality
# {glue:text}`ring_plain_hq:.0%`), which sits between modes rather than on one: this is
# non-convergence as much as collapse — the replay below shows the blob wandering as the
# discriminator, which learns ten times more slowly than the generator, catches up with it and the
# generator runs to the next place the discriminator still likes.
#
# **The minibatch feature stops the collapse**: with the same networks, learning rates, noise and
# number of steps ({glue:text}`ring_steps_taken`), the generator spreads its samples around the
# whole ring (median {glue:text}`ring_mbstd_modes:.0f` of 8 modes), but not onto the modes: median
# high quality {glue:text}`ring_mbstd_hq:.0%` (range {glue:text}`ring_mbstd_hq_min:.0%` to
# {glue:text}`ring_mbstd_hq_max:.0%`); most samples lie on the arcs between the modes. Coverage and
# quality are different targets, and the fix only reaches the first.
#
# A caution about the count itself: a mode is "covered" as soon as *one* sample lands within
# $3\sigma$ of it, so a generator that sprays samples everywhere covers modes by chance. Read the
# mode count together with the high-quality fraction, never alone.

# %% [markdown]
# ### Replay: the ring over training
#
# The generator's samples at every snapshot, from the same fixed noise $z$. In JupyterLab the
# slider redraws (first cell); the book shows the same frames as an animation (second cell).

# %%
replay = {name: results[0]["step"].snapshots for name, results in list(runs.items())[:2]}
snapshot_steps = [s.step for s in replay["plain GAN"]]
replay_bounds = ring_bounds(ring_data, *[snap.samples for snaps in replay.values() for snap in snaps])
# computed once, so that the slider only draws (a redraw must answer at once)
replay_cover = {name: [metrics.mode_coverage(snap.samples, metrics.ring_centres(), ring.std) for snap in snaps]
                for name, snaps in replay.items()}


def draw_replay(fig, index):
    axes = fig.subplots(1, 3)
    plot.scatter(ring_data, ax=axes[0], bounds=replay_bounds, s=1, color="0.5", title="data")
    for ax, (name, snaps) in zip(axes[1:], replay.items()):
        cover = replay_cover[name][index]
        plot.scatter(snaps[index].samples, ax=ax, bounds=replay_bounds, s=1, color=colours[name],
                     title=f"{name}, step {snaps[index].step}\n{cover['modes']}/8 modes, "
                           f"{cover['high_quality']:.0%} HQ")
    for ax in axes:
        ax.set_xlabel("$x_1$"), ax.set_ylabel("$x_2$")
    fig.subplots_adjust(left=0.07, right=0.99, bottom=0.16, top=0.8, wspace=0.35)  # fixed: no layout search per redraw


# %% tags=["nbval-ignore-output", "hide-input"]
widgets.live(draw_replay, figsize=(9, 3.4),
             index=ipywidgets.IntSlider(min=0, max=len(snapshot_steps) - 1, value=len(snapshot_steps) - 1,
                                        description="snapshot"))

# %% tags=["hide-input"]
widgets.animate(draw_replay, list(range(0, len(snapshot_steps), 2)), figsize=(9, 3.4), interval=400)

# %% [markdown]
# ## 6. The standard fixes, measured on the ring
#
# **The Wasserstein critic.** Section 2's game minimises the Jensen–Shannon divergence, which is
# stuck at $\log 2$ while the supports do not overlap (exercise 1): no signal about *how far* the
# generator is. {cite:t}`arjovsky2017wasserstein` replace it by the earth mover's (Wasserstein-1)
# distance $W_1(p,q)=\inf_{\gamma\in\Pi(p,q)}\mathbb E_{(x,y)\sim\gamma}\lVert x-y\rVert$, the cheapest
# way to transport one distribution onto the other, which shrinks smoothly as $p_g$ moves towards
# $p_{\text{data}}$. Its dual form (Kantorovich–Rubinstein) is a maximisation over functions,
#
# $$
# W_1(p_{\text{data}},p_g)=\sup_{\lVert f\rVert_L\le 1}\;\mathbb E_{p_{\text{data}}}[f(x)]-\mathbb E_{p_g}[f(x)],
# $$
#
# the supremum over all 1-Lipschitz $f$. A network $f$, the **critic** (a discriminator without the
# sigmoid), maximises the gap — genlib's `critic_loss` is its negative — and the generator
# minimises $-\mathbb E[f(G(z))]$. Everything rests on the Lipschitz constraint: without it the gap
# is unbounded. {cite:t}`gulrajani2017improved` enforce it softly with a **gradient penalty**
# (WGAN-GP): the optimal critic has $\lVert\nabla f\rVert=1$ on the straight lines between points
# coupled by the optimal transport, so they penalise $\lambda\,\mathbb E_{\hat x}(\lVert\nabla f(\hat
# x)\rVert-1)^2$ at random points $\hat x$ between a real and a generated sample.
#
# **R1** (section 4) penalises the gradient only on real data, $\tfrac\gamma2\mathbb E\lVert\nabla_x
# a(x)\rVert^2$, pushing it to zero there: at the equilibrium the discriminator is flat on the
# data, and the Dirac-GAN showed that this damps the rotation. **Spectral normalisation**
# {cite:p}`miyato2018spectral` bounds the Lipschitz constant of the discriminator by construction:
# each weight matrix is divided by its largest singular value (estimated by one power iteration
# per step), so each layer, and with 1-Lipschitz activations the whole network, is 1-Lipschitz; it
# is usually paired with the **hinge loss** $\mathbb E\max(0,1-a(x))+\mathbb E\max(0,1+a(G(z)))$.
# **TTUR** {cite:p}`heusel2017fid` gives the two players different learning rates. Finally, the
# generator we *evaluate* can be an exponential moving average of its weights over training
# {cite:p}`karras2018progressive`, which averages out the last oscillations.

# %%
show(gan.gradient_penalty)
show(gan.hinge_losses)

# %% [markdown]
# In genlib each is an option: `TrainConfig(loss="wasserstein", gp=λ)`, `TrainConfig(r1=γ)`,
# `GANConfig(spectral_norm=True)` with `TrainConfig(loss="hinge")`, `lr_g`/`lr_d`, and
# `TrainConfig(ema=β)`. The third column of the figures above is R1 with balanced learning rates
# (both $10^{-3}$), {glue:text}`stable_steps_taken` generator steps and the averaged generator. Over
# seeds (`benchmarks/gan_digits.py --ring`, each variant from the same seeds; range of the
# high-quality fraction in brackets):
#
# | variant | steps | modes (median) | high quality (median) | seeds at the target |
# | --- | --- | --- | --- | --- |
# | plain GAN, collapse setting | {glue:text}`ring_steps_taken` | {glue:text}`ring_plain_modes:.0f` | {glue:text}`ring_plain_hq:.0%` ({glue:text}`ring_plain_hq_min:.0%`–{glue:text}`ring_plain_hq_max:.0%`) | {glue:text}`ring_plain_hits` |
# | minibatch std, collapse setting | {glue:text}`ring_steps_taken` | {glue:text}`ring_mbstd_modes:.0f` | {glue:text}`ring_mbstd_hq:.0%` ({glue:text}`ring_mbstd_hq_min:.0%`–{glue:text}`ring_mbstd_hq_max:.0%`) | {glue:text}`ring_mbstd_hits` |
# | PacGAN4, collapse setting | {glue:text}`ring_steps_taken` | {glue:text}`ring_pacgan_modes:.0f` | {glue:text}`ring_pacgan_hq:.0%` ({glue:text}`ring_pacgan_hq_min:.0%`–{glue:text}`ring_pacgan_hq_max:.0%`) | {glue:text}`ring_pacgan_hits` |
# | plain GAN, balanced | {glue:text}`stable_steps_taken` | {glue:text}`ring_balanced_modes:.0f` | {glue:text}`ring_balanced_hq:.0%` ({glue:text}`ring_balanced_hq_min:.0%`–{glue:text}`ring_balanced_hq_max:.0%`) | {glue:text}`ring_balanced_hits` |
# | R1, balanced | {glue:text}`stable_steps_taken` | {glue:text}`ring_r1_modes:.0f` | {glue:text}`ring_r1_hq:.0%` ({glue:text}`ring_r1_hq_min:.0%`–{glue:text}`ring_r1_hq_max:.0%`) | {glue:text}`ring_r1_hits` |
# | spectral norm + hinge, balanced | {glue:text}`stable_steps_taken` | {glue:text}`ring_sn_modes:.0f` | {glue:text}`ring_sn_hq:.0%` ({glue:text}`ring_sn_hq_min:.0%`–{glue:text}`ring_sn_hq_max:.0%`) | {glue:text}`ring_sn_hits` |
# | R1 + TTUR (G five times slower) | {glue:text}`stable_steps_taken` | {glue:text}`ring_ttur_modes:.0f` | {glue:text}`ring_ttur_hq:.0%` ({glue:text}`ring_ttur_hq_min:.0%`–{glue:text}`ring_ttur_hq_max:.0%`) | {glue:text}`ring_ttur_hits` |
# | WGAN-GP (5 critic steps per generator step) | {glue:text}`ring_wgan_steps` | {glue:text}`ring_wgan_modes:.0f` | {glue:text}`ring_wgan_hq:.0%` ({glue:text}`ring_wgan_hq_min:.0%`–{glue:text}`ring_wgan_hq_max:.0%`) | {glue:text}`ring_wgan_hits` |
# | plain GAN, balanced, twice as long | {glue:text}`ring_long_steps` | {glue:text}`ring_long_modes:.0f` | {glue:text}`ring_long_hq:.0%` ({glue:text}`ring_long_hq_min:.0%`–{glue:text}`ring_long_hq_max:.0%`) | {glue:text}`ring_long_hits` |
#
# All the balanced runs use the averaged generator. {glue:md}`ring_verdict`


# %% [markdown]
# ## 7. DCGAN on the digits
#
# For images, both players are convolutional, following the DCGAN recipe
# {cite:p}`radford2016dcgan`: the generator projects $z$ to a small feature map and upsamples it
# with stride-2 transposed convolutions, with batch normalisation and ReLUs; the discriminator
# downsamples with stride-2 convolutions and leaky ReLUs, with no pooling; Adam with $\beta_1=0.5$.
# On 8x8 digits that is two layers each way ($2\times2\to4\times4\to8\times8$). The generator ends in
# a sigmoid: it produces grey levels in $[0,1]$, the data's pixels divided by 16.
#
# The chapter's main image model is the **unconditional** DCGAN: it sees images only, like the VAE
# of Chapter 4 and the models of the later chapters, so it is the one the comparison of Chapter 9
# uses (`gan.digits_config()`, trained by `gan.fit_gan` with `gan.digits_train_config()` for
# `gan.DIGITS_EPOCHS` epochs). Beside it we train a **conditional** one
# {cite:p}`mirza2014conditional`, which costs almost nothing: the label $y$ goes to both players,
# $G(z,y)$ and $D(x,y)$ (a one-hot vector appended to the generator's input, and ten constant image
# channels, one per class, stacked on the discriminator's input). The discriminator now asks "is this
# a real image *of a $y$*?", so the generator must produce the right class, and we can ask for one
# (section 8). The unconditional DCGAN can also be trained outside the notebook
# (`python -m genlib.train_family gan --out DIR`, e.g. on a GPU) and loaded with the parameter
# `checkpoint=DIR/gan.pt` instead of trained here.

# %%
diagrams.draw_gan_game(conditional=True)
plt.show()

# %%
splits = {name: data.images(dataset, name) for name in ("train", "val", "test")}
train, test = splits["train"], splits["test"]
x_train, y_train, x_test = train.scaled(), train.y, test.scaled()
config = gan.digits_config(dataset, latent_dim=latent_dim, hidden=hidden)
train_config = gan.digits_train_config()
print(config)
print(train_config)
print(f"{dataset}: {tuple(x_train.shape)} training images, pixels in [0, 1]")

def train_unconditional():
    tic = time.process_time()
    model = gan.GAN(config)
    step = gan.fit_gan(model, x_train, epochs=epochs, batch_size=64, config=train_config, generator=gen, device=dev)
    print(f"unconditional DCGAN: {epochs} epochs, {step.steps} generator steps in "
          f"{time.process_time() - tic:.0f} s CPU")
    return model, step.history  # its log: both players' losses per generator step (section 11)


# trained elsewhere (python -m genlib.train_family gan ...) when `checkpoint` is given: load, do not train
ugan, history = train_family.load_or_train(checkpoint, "gan", train_unconditional, device=device,
                                           expect={"dataset": dataset, "latent_dim": latent_dim, "hidden": hidden})
ugan = ugan.to(dev)

tic = time.process_time()
cgan = gan.GAN(gan.digits_config(dataset, latent_dim=latent_dim, hidden=hidden, n_classes=10))
cgan_step = gan.fit_gan(cgan, (x_train, y_train), epochs=epochs, batch_size=64, config=train_config,
                        generator=gen, device=dev)
print(f"conditional DCGAN: {epochs} epochs, {cgan_step.steps} generator steps in "
      f"{time.process_time() - tic:.0f} s CPU")

def random_labels(n):
    """n labels drawn with the training set's class frequencies."""
    return y_train[torch.randint(len(y_train), (n,), generator=gen)].to(dev)


# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 4.4))
plot.image_grid(x_train[:64], train.shape, nrow=8, ax=axes[0], title="training images", vmax=1)
plot.image_grid(ugan.sample(64, generator=gen).cpu(), train.shape, nrow=8, ax=axes[1],
                title="unconditional DCGAN samples", vmax=1)
plot.image_grid(cgan.sample(64, y=random_labels(64), generator=gen).cpu(), train.shape, nrow=8, ax=axes[2],
                title="conditional DCGAN (random labels)", vmax=1)
plt.tight_layout()
plt.show()

# %% [markdown]
# **Evaluating the samples.** There is no likelihood to report. Following the practice of the
# field, genlib compares *features* of samples with features of real images. The features here are
# the penultimate layer of a small digit classifier that genlib trains once with a fixed seed
# (`metrics.classifier`; its test accuracy is printed) — *not* the Inception network of the papers'
# FID {cite:p}`heusel2017fid`, so these numbers are only comparable with each other, on the same
# data. Two summaries:
#
# * the **Fréchet distance** between Gaussians fitted to the two feature sets,
#   $\lVert\mu_1-\mu_2\rVert^2+\operatorname{tr}\big(\Sigma_1+\Sigma_2-2(\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2})^{1/2}\big)$
#   — lower is better, one number mixing quality and diversity;
# * **precision and recall** {cite:p}`kynkaanniemi2019improved`: each set's "manifold" is the union
#   of balls reaching every point's 3rd nearest neighbour within its set; precision is the fraction
#   of samples inside the real manifold (quality), recall the fraction of real images inside the
#   samples' manifold (diversity).
#
# Every number comes with its **floor**: the same measures between as many training images as there
# are samples and the test images — two samples of the true distribution, at the same $N$ (both
# measures depend on $N$: section 11). No model should be expected to beat it.

# %%
show(metrics.frechet_distance)
classifier = metrics.classifier(dataset)
n_eval = len(x_test)
floor = metrics.sample_quality(x_train[torch.randperm(len(x_train), generator=gen)[:n_eval]], x_test, dataset)
quality = {"unconditional DCGAN": metrics.sample_quality(ugan.sample(n_eval, generator=gen).cpu(), x_test, dataset),
           "conditional DCGAN (random labels)": metrics.sample_quality(
               cgan.sample(n_eval, y=random_labels(n_eval), generator=gen).cpu(), x_test, dataset)}


# %% tags=["nbval-check-output"]
def quality_row(name, q):
    return f"{name:36}{q['frechet']:10.0f}{q['precision']:11.1f}{q['recall']:8.1f}"


print(f"{str(n_eval) + ' samples vs the ' + str(n_eval) + ' test images':36}{'Fréchet':>10}{'precision':>11}{'recall':>8}")
print(quality_row(f"floor: {n_eval} training images", floor))
for name, q in quality.items():
    print(quality_row(name, q))
for key in ("frechet", "precision", "recall"):
    glue(f"floor_{key}", floor[key], display=False)
    glue(f"ugan_{key}", quality["unconditional DCGAN"][key], display=False)
    glue(f"cgan_{key}", quality["conditional DCGAN (random labels)"][key], display=False)

# %% tags=["remove-input"]
digits_bench = BENCH["digits"]["models"]


def digits_glue(prefix, name):
    for key in ("frechet", "precision", "recall", "seconds") + (("fd_over_vae",) if name != "VAE" else ()):
        values = [r[key] for r in digits_bench[name]]
        glue(f"{prefix}_{key}_med", median(values), display=False)
        glue(f"{prefix}_{key}_min", min(values), display=False)
        glue(f"{prefix}_{key}_max", max(values), display=False)


for prefix, name in (("b_ugan", "DCGAN + R1"), ("b_plaingan", "DCGAN, no penalty"), ("b_cgan", "conditional DCGAN + R1"),
                     ("b_vae", "VAE")):
    if name in digits_bench:  # the models the benchmark file holds
        digits_glue(prefix, name)
glue("digits_bench_seeds", len(digits_bench["VAE"]), display=False)
glue("b_floor_frechet", BENCH["digits"]["floor"]["frechet"], display=False)
glue("b_floor_recall", BENCH["digits"]["floor"]["recall"], display=False)
ratios = [r["fd_over_vae"] for r in digits_bench["DCGAN + R1"]]
pr = [min(r["precision"], r["recall"]) for r in digits_bench["DCGAN + R1"]]
plain_fd = [r["frechet"] for r in digits_bench.get("DCGAN, no penalty", [])]
r1_fd = [r["frechet"] for r in digits_bench["DCGAN + R1"]]
verdict = ((f"On every seed the GAN's distance is within twice the VAE's" if max(ratios) <= 2 else
            f"The GAN's distance is more than twice the VAE's on {sum(r > 2 for r in ratios)} of {len(ratios)} seeds")
           + ("; " if True else "")
           + (f"precision and recall are both at least 0.7 on every seed." if min(pr) >= 0.7 else
              f"precision and recall are not both at least 0.7 on {sum(v < 0.7 for v in pr)} of {len(pr)} seeds "
              f"(the lower of the two has median {median(pr):.2f}).")
           + ((f" Without R1 the same DCGAN's Fréchet distance is {bench.fmt(plain_fd, '.0f')} over the same seeds, "
               + ("a range entirely above R1's: the penalty helps on images too." if min(plain_fd) > max(r1_fd) else
                  "a range that overlaps R1's: over these seeds the penalty is not clearly better."))
              if plain_fd else ""))
glue("digits_verdict", Markdown(verdict), display=False)

# %% [markdown]
# This run: the unconditional DCGAN's Fréchet distance is {glue:text}`ugan_frechet:.0f` against a floor
# of {glue:text}`floor_frechet:.0f`, its precision {glue:text}`ugan_precision:.2f` and recall
# {glue:text}`ugan_recall:.2f` against the floor's {glue:text}`floor_precision:.2f` and
# {glue:text}`floor_recall:.2f`. One run is one draw: over {glue:text}`digits_bench_seeds` seeds
# (`benchmarks/gan_digits.py --digits`, median and range) the unconditional DCGAN's Fréchet distance
# is {glue:text}`b_ugan_frechet_med:.0f` ({glue:text}`b_ugan_frechet_min:.0f`–{glue:text}`b_ugan_frechet_max:.0f`),
# with precision {glue:text}`b_ugan_precision_med:.2f` and recall {glue:text}`b_ugan_recall_med:.2f`;
# the book profile's VAE of Chapter 4, trained from the same seeds and scored the same way, gets
# {glue:text}`b_vae_frechet_med:.0f` ({glue:text}`b_vae_frechet_min:.0f`–{glue:text}`b_vae_frechet_max:.0f`),
# precision {glue:text}`b_vae_precision_med:.2f` and recall {glue:text}`b_vae_recall_med:.2f`; seed
# by seed, the GAN's distance is {glue:text}`b_ugan_fd_over_vae_med:.1f` times the VAE's (range
# {glue:text}`b_ugan_fd_over_vae_min:.1f`–{glue:text}`b_ugan_fd_over_vae_max:.1f`). {glue:md}`digits_verdict`

# %% [markdown]
# ## 8. Asking for a digit
#
# The conditional generator, given each label in turn (one row per requested digit):

# %%
rows = torch.arange(10).repeat_interleave(10)          # ten samples of each class, one class per row
cgan_samples = cgan.sample(100, y=rows.to(dev), generator=gen).cpu()
ax = plot.image_grid(cgan_samples, train.shape, nrow=10, title="conditional samples", vmax=1)
h = train.shape[0] + 1
ax.set_yticks([1 + h * r + train.shape[0] / 2 - 0.5 for r in range(10)], [str(r) for r in range(10)])
ax.set_ylabel("requested digit")
plt.show()

# %% [markdown]
# The feature classifier gives a direct check of control: it labels samples drawn for each
# requested digit, and the fraction it labels as requested is the conditional GAN's *label
# accuracy*, to read next to the classifier's accuracy on real test digits (how far to trust it).

# %% tags=["nbval-check-output"]
requested = torch.arange(10).repeat(50)                  # 500 samples, 50 per class
with torch.no_grad():
    predicted = classifier(cgan.sample(len(requested), y=requested.to(dev), generator=gen).cpu()).argmax(1)
per_class = [(predicted[requested == c] == c).float().mean().item() for c in range(10)]
label_accuracy = (predicted == requested).float().mean().item()
print(f"label accuracy of conditional samples: {label_accuracy:.1f} "
      f"(the classifier on real test images: {classifier.test_accuracy:.1f})")
glue("label_accuracy", label_accuracy, display=False)
glue("classifier_accuracy", classifier.test_accuracy, display=False)
glue("worst_class", int(np.argmin(per_class)), display=False)
glue("worst_class_accuracy", min(per_class), display=False)

# %% [markdown]
# The classifier labels {glue:text}`label_accuracy:.0%` of the samples as the requested digit (it is
# right on {glue:text}`classifier_accuracy:.0%` of real test digits); the worst class is the digit
# {glue:text}`worst_class` ({glue:text}`worst_class_accuracy:.0%`). Label accuracy says the label
# steers the class; it does not say each sample is well drawn — look at the grid for the malformed
# ones — nor that the samples within a class are varied: rows of near-identical digits are
# collapse *within* a class, which the recall of section 7 measures.

# %% [markdown]
# ## 9. Walking in latent space: interpolation and a "control"
#
# A generator is a continuous map from $z$ to images, so a straight line between two codes gives a
# path of images between two samples. With the unconditional GAN the two ends are usually
# different digits, and the images on the way need not be digits at all: nothing trained the
# generator to keep the path on the data.

# %%
z_pairs = ugan.noise(6, gen)
t = torch.linspace(0, 1, 9)[:, None].to(dev)
fig, axes = plt.subplots(3, 1, figsize=(7, 3.6))
for i, ax in enumerate(axes):
    z_line = (1 - t) * z_pairs[2 * i] + t * z_pairs[2 * i + 1]     # (9, L) on the segment
    plot.image_grid(ugan.sample(9, z=z_line).cpu(), train.shape, nrow=9, ax=ax, vmax=1,
                    title="from one sample to another along a straight line in z" if i == 0 else None)
plt.tight_layout()
plt.show()

# %% [markdown]
# **A latent control.** Directions in $z$ can mean something. To find one without labels, measure a
# property of many samples — here the amount of ink, the mean grey level — and regress it linearly
# on $z$; the regression's weight vector points in the direction that adds ink. Moving a code along
# it is a "control" knob on the generator.

# %%
z_many = ugan.noise(2000, gen)
ink = ugan.sample(2000, z=z_many).mean(1)                # (2000,)
design = torch.cat([z_many, torch.ones(2000, 1, device=dev)], 1).cpu()
weights = torch.linalg.lstsq(design, ink.cpu()[:, None]).solution[:latent_dim, 0]
direction = (weights / weights.norm()).to(dev)           # unit vector in z space
amounts = torch.linspace(-3, 3, 7)
z_base = ugan.noise(3, gen)
edits = torch.stack([z + a * direction for z in z_base for a in amounts])   # (21, L)
ax = plot.image_grid(ugan.sample(len(edits), z=edits).cpu(), train.shape, nrow=7, vmax=1,
                     title="three codes z moved along the ink direction, a = -3 … 3")
ax.set_xticks([1 + (train.shape[1] + 1) * i + train.shape[1] / 2 - 0.5 for i in range(7)],
              [f"{a:+.0f}" for a in amounts.tolist()])
ax.set_xlabel("a")
plt.show()

# %% tags=["nbval-check-output"]
with torch.no_grad():
    ink_along = [float(ugan.sample(200, z=ugan.noise(200, gen) + a * direction).mean()) for a in (-2.0, 0.0, 2.0)]
print("mean ink at a = -2, 0, +2:", [round(v, 1) for v in ink_along],
      "increasing:", ink_along[0] < ink_along[1] < ink_along[2])

# %% [markdown]
# ## 10. No way back: inverting a GAN
#
# A VAE has an encoder: any image $x$ gets a code $z$ and a reconstruction. A GAN has only the map
# $z\mapsto x$, and no way back. To find a code for a given image we must solve
# $\min_z\lVert G(z)-x\rVert^2$ by gradient descent on $z$ with the generator frozen
# (`gan.invert`). It is a non-convex problem — each image gets its own optimisation, which can stop
# in a local minimum — and an image the generator cannot make has no exact code at all. We invert
# test images and compare with the nearest training image (what a memorising model would return).

# %%
show(gan.invert)
x_query = x_test[:12].to(dev)
z_found, x_found = gan.invert(ugan, x_query, steps=300, lr=0.05, generator=gen)
_, nearest_index = gan.nearest_neighbours(x_query.cpu(), x_train)
fig, axes = plt.subplots(3, 1, figsize=(7, 3.4))
for ax, images, title in zip(axes, (x_query.cpu(), x_found.cpu(), x_train[nearest_index]),
                             ("test images", "G(z*) after optimising z", "nearest training image")):
    plot.image_grid(images, train.shape, nrow=12, ax=ax, vmax=1, title=title)
plt.tight_layout()
plt.show()

# %% tags=["nbval-check-output"]
inversion_error = (x_found.cpu() - x_query.cpu()).pow(2).mean(1)           # per-pixel squared error per image
nearest_error = (x_train[nearest_index] - x_query.cpu()).pow(2).mean(1)
print(f"mean squared error per pixel: GAN inversion {inversion_error.mean():.2f}, "
      f"nearest training image {nearest_error.mean():.2f}")
glue("inversion_mse", float(inversion_error.mean()), display=False)
glue("nearest_mse", float(nearest_error.mean()), display=False)

# %% tags=["remove-input"]
vae_mse = [r["vae_reconstruction_mse"] for r in BENCH["digits"]["inversion"]]
glue("b_vae_reconstruction_mse_med", median(vae_mse), display=False)
glue("b_vae_reconstruction_mse_min", min(vae_mse), display=False)
glue("b_vae_reconstruction_mse_max", max(vae_mse), display=False)
glue("vae_mse_seeds", len(vae_mse), display=False)
this_mse = float((gan.invert(ugan, x_test[:100].to(dev), steps=300, lr=0.05, generator=gen)[1].cpu()
                  - x_test[:100]).pow(2).mean())
glue("inversion_mse_100", this_mse, display=False)
glue("inversion_verdict", Markdown(
    "below the VAE's whole range: here the optimised codes reconstruct better than the VAE's encoder"
    if this_mse < min(vae_mse) else "above the VAE's whole range: the VAE's encoder reconstructs better"
    if this_mse > max(vae_mse) else "inside the VAE's range: neither reconstructs clearly better"), display=False)

# %% [markdown]
# The optimised codes reproduce these test images with a mean squared error per pixel of
# {glue:text}`inversion_mse:.3f` (pixels in $[0,1]$; the nearest training image:
# {glue:text}`nearest_mse:.3f`). On the first 100 test images this run's inversion error is
# {glue:text}`inversion_mse_100:.3f`; the book profile's VAE of Chapter 4, reconstructing the same
# images through its encoder (the decoder's mean at the encoder's mean), has
# {glue:text}`b_vae_reconstruction_mse_med:.3f` ({glue:text}`b_vae_reconstruction_mse_min:.3f`–{glue:text}`b_vae_reconstruction_mse_max:.3f`
# over {glue:text}`vae_mse_seeds` seeds, `benchmarks/gan_digits.py --digits --models VAE`). The GAN's
# number is {glue:md}`inversion_verdict` — the VAE in one forward pass, the GAN after 300 gradient
# steps per image, and a GAN trained only to fool a discriminator, not to cover every image.


# %% [markdown]
# ## 11. Why GANs are hard to train and to evaluate
#
# **The losses are a poor guide.** A GAN has no loss that decreases towards a solution (section 4).
# Below, the unconditional DCGAN's two losses and the discriminator's mean output on real and on
# generated images, per generator step (moving averages). At the game's equilibrium $D=\tfrac12$
# everywhere, so the discriminator's loss $-V$ would be $\log 4$ and the non-saturating generator
# loss $-\log D(G(z))$ would be $\log 2$ (dotted lines; the discriminator's loss plotted is the
# game's, without the R1 penalty).

# %% tags=["hide-input"]
def smooth(values, width=25):
    values = np.asarray(values)
    return np.convolve(values, np.ones(width) / width, mode="valid")


fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
log = history.log
axes[0].plot(smooth(log["d_loss"]), color="C0", label="discriminator loss −V")
axes[0].plot(smooth(log["g_loss"]), color="C1", label="generator loss −log D(G(z))")
axes[0].axhline(math.log(4), color="C0", ls=":", lw=1, label="log 4: −V at the equilibrium")
axes[0].axhline(math.log(2), color="C1", ls=":", lw=1, label="log 2: −log D(G(z)) at the equilibrium")
axes[1].plot(smooth(log["d_real"]), label="mean D(x), real")
axes[1].plot(smooth(log["d_fake"]), label="mean D(G(z)), generated")
axes[1].axhline(0.5, color="k", ls=":", lw=1, label="½: the equilibrium")
axes[0].set(xlabel="generator step", ylabel="loss (nats)", title="DCGAN losses (moving average)")
axes[1].set(xlabel="generator step", ylabel="discriminator output", title="what the discriminator says",
            ylim=(0, 1))
for ax in axes:
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.2), ncol=1)
plt.tight_layout()
plt.show()

# %% tags=["nbval-check-output"]
last = slice(-100, None)
final_d_loss = float(np.mean(log["d_loss"][last]))
print(f"last 100 steps: mean -V {final_d_loss:.1f} (log 4 = {math.log(4):.1f}), mean D(x) "
      f"{np.mean(log['d_real'][last]):.1f}, mean D(G(z)) {np.mean(log['d_fake'][last]):.1f}")
glue("final_d_loss", final_d_loss, display=False)
glue("js_lower_bound", max(0.0, (math.log(4) - final_d_loss) / 2), display=False)

# %% [markdown]
# What can the discriminator's loss tell us? For any discriminator $V(D,G)\le V(D^*,G)=2\,\mathrm{JS}-\log 4$
# (section 2), so $-V\ge\log 4-2\,\mathrm{JS}$, i.e. $\mathrm{JS}\ge\tfrac12(\log 4-(-V))$: a
# *lower* bound on the divergence, and only as good as the discriminator. Over the last 100 steps
# $-V$ averages {glue:text}`final_d_loss:.2f`, which bounds JS below by
# {glue:text}`js_lower_bound:.2f` — compatible with a generator that is still far from the data,
# as the Fréchet distance of section 7 says it is. A loss near $\log 4$ says that the game is
# balanced, not that the generator is good; that is why GANs are evaluated on their samples.
#
# **Collapse on images.** On images collapse is harder to see, and that is where the evaluation
# measures earn their keep. We make a "collapsed" generator on purpose — the conditional GAN asked
# for one digit only — and compare it with the same model asked for all ten (the floor and models
# at the same $N$).

# %% tags=["nbval-check-output"]
one_class = cgan.sample(n_eval, y=torch.full((n_eval,), 1, device=dev), generator=gen).cpu()
all_classes = cgan.sample(n_eval, y=random_labels(n_eval), generator=gen).cpu()
collapsed = metrics.sample_quality(one_class, x_test, dataset)
print(f"{str(n_eval) + ' samples vs the ' + str(n_eval) + ' test images':36}{'Fréchet':>10}{'precision':>11}{'recall':>8}")
print(quality_row(f"floor: {n_eval} training images", floor))
print(quality_row("conditional GAN, all ten digits", metrics.sample_quality(all_classes, x_test, dataset)))
print(quality_row("conditional GAN, only the digit 1", collapsed))
for key in ("frechet", "precision", "recall"):
    glue(f"collapsed_{key}", collapsed[key], display=False)

# %% [markdown]
# Asked only for ones, the samples keep a high precision ({glue:text}`collapsed_precision:.2f`: ones
# are easy digits to draw) but recall falls to {glue:text}`collapsed_recall:.2f` — almost no test
# digit has a generated neighbour — and the Fréchet distance grows to
# {glue:text}`collapsed_frechet:.0f`. Precision and recall separate the two failures that the single
# Fréchet distance mixes: bad samples, and missing variety.
#
# **The Fréchet distance depends on $N$.** It is estimated from sample means and covariances, and
# the estimate is biased upwards for small sets: two samples of the *same* distribution are at a
# positive distance that shrinks as they grow {cite:p}`heusel2017fid`. Comparing a model measured
# with 200 samples with one measured with 447 is comparing the sample sizes as much as the models.

# %%
sizes = [50, 100, 200, n_eval]
fd_by_n = {"training images (the floor)": [], "unconditional DCGAN": []}
ugan_pool = ugan.sample(n_eval, generator=gen).cpu()
for n in sizes:
    pick = torch.randperm(len(x_train), generator=gen)[:n]
    fd_by_n["training images (the floor)"].append(metrics.sample_quality(x_train[pick], x_test, dataset)["frechet"])
    fd_by_n["unconditional DCGAN"].append(metrics.sample_quality(ugan_pool[:n], x_test, dataset)["frechet"])
fig, ax = plt.subplots(figsize=(6, 3.4))
for name, values in fd_by_n.items():
    ax.plot(sizes, values, "o-", label=name)
ax.set(xlabel=f"samples N (against all {n_eval} test images)", ylabel="Fréchet distance",
       title="the same models, measured at different N", ylim=(0, None))
ax.legend(frameon=False, fontsize=8)
plt.tight_layout()
plt.show()

# %% tags=["nbval-check-output"]
print(f"the floor with {sizes[0]} images is above the floor with {sizes[-1]}:",
      fd_by_n["training images (the floor)"][0] > fd_by_n["training images (the floor)"][-1])
glue("fd_floor_50", fd_by_n["training images (the floor)"][0], display=False)
glue("fd_floor_full", fd_by_n["training images (the floor)"][-1], display=False)

# %% [markdown]
# The floor, two samples of the true distribution, is at {glue:text}`fd_floor_50:.1f` with 50 images
# and {glue:text}`fd_floor_full:.1f` with {glue:text}`n_eval_glue`: report $N$ with every Fréchet
# distance, and compare models (and the floor) only at the same $N$.
#
# **Seeds.** The same recipe from another seed gives another number: the unconditional DCGAN's
# Fréchet distance ranged from {glue:text}`b_ugan_frechet_min:.0f` to {glue:text}`b_ugan_frechet_max:.0f`
# over {glue:text}`digits_bench_seeds` seeds (section 7). A difference between two models smaller
# than that spread says nothing; this book ranks models only on medians and ranges over seeds.
#
# **Memorisation.** A generator that returned its training images would score like the floor on
# every measure above. The test is to look, for each sample, at its nearest training image and
# compare that distance with the same distance for *test* images, which the model never saw: a
# sample much closer to a training image than test images ever are is a copy.

# %%
sample_nn, sample_index = gan.nearest_neighbours(ugan_pool, x_train)
test_nn, _ = gan.nearest_neighbours(x_test, x_train)
fig, ax = plt.subplots(figsize=(6, 3.4))
bins = np.linspace(0, float(max(sample_nn.max(), test_nn.max())), 40)
ax.hist(test_nn.numpy(), bins=bins, alpha=0.6, label="test images", density=True)
ax.hist(sample_nn.numpy(), bins=bins, alpha=0.6, label="DCGAN samples", density=True)
ax.set(xlabel="distance to the nearest training image (pixels in [0, 1])", ylabel="density",
       title="memorisation test")
ax.legend(frameon=False, fontsize=8)
plt.tight_layout()
plt.show()

# %% tags=["nbval-check-output"]
closest = float(test_nn.min())
copies = float((sample_nn < closest).float().mean())
print(f"median distance: samples {sample_nn.median():.1f}, test images {test_nn.median():.1f}; "
      f"samples closer than any test image: {copies:.0%}")
glue("nn_sample_median", float(sample_nn.median()), display=False)
glue("nn_test_median", float(test_nn.median()), display=False)
glue("nn_closest_test", closest, display=False)
glue("nn_copies", copies, display=False)
glue("n_eval_glue", n_eval, display=False)
glue("memo_verdict", Markdown(
    ("Almost no sample is closer to a training image than new digits can be: no sign of copying. "
     if copies < 0.05 else "A visible share of the samples sit closer to a training image than any test digit: "
     "look at them next to their nearest training images before trusting the scores. ")
    + ("The samples are, if anything, *closer* to the training set than test digits are: they favour typical "
       "shapes (high precision, lower recall), not copies." if float(sample_nn.median()) < float(test_nn.median())
       else "The samples are typically farther from the training set than test digits are: imperfect shapes, not copies.")),
    display=False)

# %% [markdown]
# The samples' median distance to their nearest training image is {glue:text}`nn_sample_median:.2f`,
# the test images' {glue:text}`nn_test_median:.2f`; {glue:text}`nn_copies:.0%` of the samples are
# closer to a training image than the closest test image is ({glue:text}`nn_closest_test:.2f`).
# {glue:md}`memo_verdict`
#
# **Discrete data.** The generator's gradient reaches $\theta$ through $x=G_\theta(z)$: the
# discriminator's judgement must change smoothly with the sample. Our digits have 17 grey levels,
# and the generator sidesteps that by producing continuous grey values in $[0,1]$; the discriminator
# sees the training images as floats as well. A generator of *discrete* outputs (words, or pixels
# rounded to their 17 levels) breaks the chain: rounding is a step function whose derivative is zero
# almost everywhere, so no gradient flows back.

# %% tags=["nbval-check-output"]
y_four = torch.arange(4, device=dev)
x_cont = cgan.sample(4, y=y_four, generator=gen).requires_grad_(True)
(grad_cont,) = torch.autograd.grad(cgan.discriminator(x_cont, y_four).sum(), x_cont)
x_rounded = torch.round(x_cont * 16) / 16                 # snap to the 17 grey levels of the data
(grad_round,) = torch.autograd.grad(cgan.discriminator(x_rounded, y_four).sum(), x_cont)
print(f"|dD/dx| through continuous pixels: {grad_cont.abs().sum() > 0}; "
      f"through rounded pixels: {float(grad_round.abs().sum()):.1f}")

# %% [markdown]
# GANs for text therefore need other gradient estimators (REINFORCE, Gumbel-softmax relaxations).
# Of the likelihood-based models of the next chapters, the autoregressive ones model discrete
# pixels directly (a softmax over the 17 levels); flows and diffusion models work with continuous
# values too, and turn the integer images into densities by dequantisation (adding uniform noise
# within each level).

# %% tags=["remove-input"]
pac, mb = ring_quality("PacGAN4 (collapse setting)"), ring_quality("minibatch std (collapse setting)")
glue("pacgan_verdict", Markdown(
    ("Its quality range overlaps the minibatch feature's: over these seeds neither is clearly better. "
     if bench.overlap(pac, mb) else
     ("PacGAN4's quality range lies above the minibatch feature's. " if min(pac) > max(mb)
      else "PacGAN4's quality range lies below the minibatch feature's. "))
    + "With a pack of four the discriminator judges a quarter as many inputs per step, each a harder question, "
      "and with its slow learning rate it learns the modes' shape slowly; the papers train much longer."),
    display=False)
glue("balanced_verdict", Markdown(
    "So with balanced players the plain GAN does not collapse in this budget: the learning rates, not the loss, "
    "decided the collapse of section 5." if ring_median("plain GAN (balanced)", "modes") >= 7 else
    "So even with balanced players the plain GAN misses modes."), display=False)

# %% [markdown]
# ## Summary
#
# * A generator pushes noise forward, $x=G_\theta(z)$; its distribution has samples but, in high
#   dimension, no density — an implicit model.
# * The discriminator is a classifier between data and samples. For a fixed generator (and two
#   distributions with densities) its optimum is $D^*=p_{\text{data}}/(p_{\text{data}}+p_g)$, and the
#   game's value at $D^*$ is $2\,\mathrm{JS}(p_{\text{data}}\|p_g)-\log 4$, minimised exactly by
#   $p_g=p_{\text{data}}$; on disjoint supports JS is stuck at $\log 2$.
# * Training alternates $n_D$ discriminator steps with a generator step; the non-saturating generator
#   loss $-\log D(G(z))$ keeps gradients alive where $D(G(z))\to 0$.
# * Gradient steps on a game orbit its equilibrium (the Dirac-GAN); a gradient penalty (R1) damps
#   the orbit.
# * Mode collapse and non-convergence are measurable on a ring of Gaussians (modes covered,
#   high-quality fraction). A minibatch statistic spreads the samples; R1, spectral normalisation,
#   the hinge or Wasserstein losses, TTUR and weight averaging are the standard stabilisers, each
#   measured over seeds.
# * DCGANs generate digits, unconditionally or for a requested label; a GAN has no encoder, and
#   inverting it is an optimisation per image.
# * Evaluate GANs on samples, with the floor and the models at the same $N$, over seeds, and with a
#   memorisation test; prefer likelihood-based models when likelihoods or discrete data matter.
#
# ## Exercises
#
# **1. $D^*$ by calculus of variations.** Show that for fixed $G$ the value $V(D,G)$ is maximised by
# $D^*$, and that for two distributions with disjoint supports
# $V(D^*,G)=0$, so $\mathrm{JS}=\log 2$ no matter how far apart they are. What does that mean for
# the generator's gradient when the generator's samples are far from the data?
#
# ```{admonition} Solution
# :class: dropdown
# Pointwise, $a\log t+b\log(1-t)$ with $a=p_{\text{data}}(x)$, $b=p_g(x)$ is concave in $t$ with
# its maximum at $t=a/(a+b)$ (section 2). With disjoint supports, $D^*=1$ on the data's support
# and $0$ on the generator's, so both expectations are $\log 1=0$ and
# $\mathrm{JS}=(0+\log 4)/2=\log 2$, the largest possible value, *whatever the distance between
# them* (the check in section 2 computes exactly this). Moving the generator a little does not
# change the JS divergence, so a perfect discriminator gives the generator no gradient through the
# game's value: one motivation for the non-saturating loss, and for the Wasserstein distance of
# section 6, which does shrink as the supports approach.
# ```
#
# **2. What the non-saturating generator minimises.** With $D=D^*$, write the non-saturating
# generator loss $\mathbb E_{p_g}[-\log D^*(x)]$ with $\mathrm{KL}(p_g\|p_{\text{data}})$ and
# $\mathrm{JS}(p_{\text{data}}\|p_g)$. The first is the *reverse* KL; why does it tolerate missing modes?
#
# ```{admonition} Solution
# :class: dropdown
# $-\log D^*=\log\frac{p_{\text{data}}+p_g}{p_{\text{data}}}=\log\frac{p_g}{p_{\text{data}}}+\log\frac{2\bar p}{p_g}$
# with $\bar p=\tfrac12(p_{\text{data}}+p_g)$, so
# $\mathbb E_{p_g}[-\log D^*]=\mathrm{KL}(p_g\|p_{\text{data}})-\mathrm{KL}(p_g\|\bar p)+\log 2$; since
# $\mathrm{KL}(p_{\text{data}}\|\bar p)+\mathrm{KL}(p_g\|\bar p)=2\,\mathrm{JS}$, this is
# $\mathrm{KL}(p_g\|p_{\text{data}})-2\,\mathrm{JS}+\mathrm{KL}(p_{\text{data}}\|\bar p)+\log 2$.
# {cite:t}`arjovsky2017towards` show that its gradient in $\theta$, with $D^*$ held fixed, is that of
# $\mathrm{KL}(p_g\|p_{\text{data}})-2\,\mathrm{JS}$. The reverse KL
# $\mathbb E_{p_g}[\log p_g/p_{\text{data}}]$ is an expectation under the *generator*: samples where
# the data has no mass (bad quality) cost a lot, but a mode of the data that the generator never
# visits costs nothing. Maximum likelihood's $\mathrm{KL}(p_{\text{data}}\|p_g)$ is the opposite: a
# missed mode, where $p_{\text{data}}>0$ and $p_g=0$, makes $\log(p_{\text{data}}/p_g)=+\infty$, so the
# divergence is $+\infty$. That asymmetry is one explanation of why GANs trade diversity for quality.
# ```
#
# **3. Packing instead.** Rerun the ring with PacGAN (papermill: `-p mitigation pack`, with the
# default `pack=4`). Does it stop the collapse? Compare its samples with the minibatch feature's.
#
# ```{admonition} Solution
# :class: dropdown
# Over the benchmark's {glue:text}`ring_bench_seeds` seeds (section 6's table), PacGAN4 covers a median
# of {glue:text}`ring_pacgan_modes:.0f` modes with {glue:text}`ring_pacgan_hq:.0%` high-quality
# samples, against {glue:text}`ring_mbstd_modes:.0f` and {glue:text}`ring_mbstd_hq:.0%` for the
# minibatch feature, in the same {glue:text}`ring_steps_taken` steps. {glue:md}`pacgan_verdict`
# ```
#
# **4. Collapse depends on the balance of the players.** Rerun the chapter with a discriminator as
# fast as the generator (papermill: `-p ring_lr_d 0.001`). Does the plain GAN still collapse? Compare
# with the "plain GAN, balanced" row of section 6, which also trains twice as long.
#
# ```{admonition} Solution
# :class: dropdown
# With balanced learning rates the discriminator keeps up with the generator. In the benchmark's
# balanced setting ({glue:text}`stable_steps_taken` steps, averaged generator) the plain GAN covers a
# median of {glue:text}`ring_balanced_modes:.0f` modes with {glue:text}`ring_balanced_hq:.0%`
# high-quality samples (range {glue:text}`ring_balanced_hq_min:.0%`–{glue:text}`ring_balanced_hq_max:.0%`),
# against {glue:text}`ring_plain_modes:.0f` modes in the collapse setting. {glue:md}`balanced_verdict` Whether a GAN
# collapses depends on architecture, learning rates and training length, which is why the
# literature measures it over many seeds.
# ```
#
# **5. Precision, recall and a memorising generator.** What precision, recall and Fréchet distance
# would a "generator" get that returns training images themselves? Compare with the floor printed
# in section 7 and explain why a low Fréchet distance alone does not show that a GAN generalises.
#
# ```{admonition} Solution
# :class: dropdown
# Returning $N$ training images, with $N$ the number of samples the models are scored with, *is* the
# floor row of section 7: it compares that many training images with the test images. At that
# matched $N$ a memorising generator scores exactly as well as the data itself on all three
# measures, although it has learned nothing beyond the training set (Chapter 1's filing cabinet);
# at another $N$ its numbers differ, as section 11 shows, which is why the floor must be computed at
# the models' $N$. Feature-based measures compare distributions of samples and cannot tell
# memorisation from generalisation; that needs a held-out test: the nearest-training-image test of
# section 11, or a likelihood on test data, which a GAN does not have.
# ```

# %% tags=["remove-cell", "nbval-check-output"]
widgets.check_live("05_gans")  # moves every control of every live widget above: see genlib/widgets.py
