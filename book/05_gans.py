# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Generative adversarial networks
#
# The models of Chapters 2 and 4 are trained by maximum likelihood: they must say how probable
# every image is. A generative adversarial network (GAN) {cite:p}`goodfellow2014gan` gives that up.
# Its generator is a network $G_\theta$ that turns noise into samples, $x=G_\theta(z)$, and it is
# trained by a second network, a discriminator $D_\phi$, whose only job is to tell its samples
# from real data. The generator wins when the discriminator cannot.
#
# This chapter builds the idea from the ground up and measures where it breaks:
#
# 1. a generator is a *distribution transformer*: it pushes a simple density forward;
# 2. the two-player game, its best discriminator $D^*=p_{\text{data}}/(p_{\text{data}}+p_g)$ and
#    its optimum (the Jensen–Shannon divergence), checked on densities we know;
# 3. the training algorithm, and why the generator's loss is changed in practice;
# 4. **mode collapse** on a ring of eight Gaussians, counted over training and seeds, and one
#    fix (a minibatch feature for the discriminator);
# 5. a convolutional GAN (DCGAN) and a conditional GAN on the digits, latent interpolation and a
#    latent "control";
# 6. what makes GANs hard: instability, collapse, discrete data and evaluation — with a
#    classifier-feature Fréchet distance and precision/recall next to their floor.
#
# The framing follows the GAN parts of the lectures of {cite:t}`isola2024dgm` (generators as direct
# samplers) and {cite:t}`ororbia2024generative` (GANs as distribution transformers, the objective and
# algorithm, conditional GANs, DCGAN, the problems with GANs and their evaluation).

# %% tags=["parameters"]
device = "cpu"          # "auto", "cpu", "cuda" or "mps"
dataset = "digits"      # "digits" (8x8), "mnist5k" (offline 28x28) or "mnist" (download)
epochs = 40             # passes over the training images for the image GAN
steps = 1500            # generator steps on the ring of Gaussians
seeds = [0, 1]          # ring runs: the plain GAN and the fix on the same seeds
mitigation = "minibatch_std"  # the fix for collapse: "minibatch_std" (a minibatch feature) or "pack" (PacGAN)
pack = 4                # samples the discriminator judges at once when mitigation = "pack"
ring_lr_d = 1e-4        # the ring discriminator's learning rate (the generator's is 1e-3)
latent_dim = 16         # L, the size of z for the image GANs
hidden = 32             # channels of the first conv layer of the image GAN
checkpoint = ""         # a file from genlib.train_family: load the main model, skip its training
seed = 0

# %%
import inspect
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy.spatial.distance import jensenshannon
from scipy.stats import norm

import ipywidgets

import genlib
from genlib import checks, data, diagrams, gan, metrics, plot, train_family, widgets
from genlib.train import check_epochs, fit

dev = genlib.device(device)
gen = genlib.seed_everything(seed)
data.check_dataset(dataset, ("digits", "mnist5k", "mnist"))
check_epochs(epochs)
checks.positive_int("steps", steps)
checks.positive_int("pack", pack)
checks.choice("mitigation", mitigation, ("minibatch_std", "pack"))
checks.positive_int("latent_dim", latent_dim)
checks.positive_int("hidden", hidden)
checks.positive("ring_lr_d", ring_lr_d)
if not isinstance(seeds, (list, tuple)) or not seeds or any(
        isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
    raise ValueError(f"seeds must be a non-empty list of non-negative integers (papermill: -y 'seeds: [0, 1]'), "
                     f"got {seeds!r}")


def show(fn):
    """Print the source of a genlib function, to read next to its equation."""
    print(inspect.getsource(fn))


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
# **The best discriminator.** Fix $G$. Writing the second expectation over $x=G(z)\sim p_g$,
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
# $M=\tfrac12(p_{\text{data}}+p_g)$, $D^*=p_{\text{data}}/(2M)$ and $1-D^*=p_g/(2M)$, so
#
# $$
# V(D^*,G)=\mathbb E_{p_{\text{data}}}\Big[\log\frac{p_{\text{data}}}{M}\Big]+\mathbb E_{p_g}\Big[\log\frac{p_g}{M}\Big]-\log 4
# =2\,\mathrm{JS}(p_{\text{data}}\,\|\,p_g)-\log 4,
# $$
#
# where $\mathrm{JS}(p\|q)=\tfrac12\mathrm{KL}(p\|M)+\tfrac12\mathrm{KL}(q\|M)$, $M=\tfrac12(p+q)$, is the Jensen–Shannon
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
# In practice the inner maximisation is not run to convergence. Training alternates $k$ gradient
# steps on the discriminator (each on a fresh minibatch of data and of noise) with one step on
# the generator, each player with its own optimiser {cite:p}`goodfellow2014gan`:
#
# > repeat: for $k$ steps, ascend $\frac1B\sum_i\big[\log D(x_i)+\log(1-D(G(z_i)))\big]$ in $\phi$;
# > then descend $\frac1B\sum_i\log(1-D(G(z_i)))$ in $\theta$.
#
# genlib writes the losses on the discriminator's logit $a$ ($D=\sigma(a)$, so
# $\log D=-\operatorname{softplus}(-a)$ and $\log(1-D)=-\operatorname{softplus}(a)$, stable for any $a$).
# `AdversarialStep` is the step that `genlib.train.fit` calls on every minibatch in place of its
# usual update (the `step=` hook): a discriminator step always, a generator step every $k$-th call.

# %%
show(gan.generator_loss)
show(gan.AdversarialStep.__call__)
show(gan.AdversarialStep._generator_step)

# %% [markdown]
# **Saturation.** Early in training the generator is poor and the discriminator rejects its samples
# confidently: $D(G(z))\approx 0$. There the game's own generator loss $\log(1-D(G(z)))$ is flat.
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
# non-saturating loss (blue) is steepest there. From here on every generator in this chapter uses the
# non-saturating loss.

# %% [markdown]
# ## 4. Mode collapse on a ring of Gaussians
#
# The data: eight narrow Gaussians on a circle of radius 2.5 (genlib's `8gaussians` toy with
# $\sigma$ set by `RingExperiment.std`). Because we know the modes, we can count what a generator
# does with the protocol of the mode-collapse literature {cite:p}`srivastava2017veegan,lin2018pacgan`:
# assign each of 2,500 samples to its nearest mode; a sample is **high quality** if it lies within
# $3\sigma$ of it; a mode is **covered** if it receives at least one high-quality sample.

# %%
show(metrics.mode_coverage)
ring = gan.RingExperiment(steps=steps, lr_d=ring_lr_d)
print(ring)

# %% [markdown]
# A GAN whose generator only produces a few modes can still fool a discriminator that looks at one
# sample at a time: every sample it sees is perfectly realistic. This is **mode collapse**; in
# practice the generator often hops from mode to mode as the discriminator learns to reject the
# current one {cite:p}`metz2017unrolled`. The fixes give the discriminator a view of the *set* of
# samples. {cite:t}`salimans2016improved` let it compare each sample with the others in its
# minibatch ("minibatch discrimination"); the simplest version {cite:p}`karras2018progressive`
# hands it one extra number, the minibatch's standard deviation (averaged over coordinates). A real
# minibatch of the ring has a spread of about 1.8; a collapsed generator's minibatch has almost none,
# and the discriminator can reject the whole batch at once. {cite:t}`lin2018pacgan` instead let it
# judge $m$ samples at once ("packing", PacGAN). In genlib both are options of the discriminator
# (`minibatch_std=True`, `pack=m`); nothing else in the game changes.
#
# We train the plain GAN and the fixed one (the parameter `mitigation`; the book uses the minibatch
# feature) on the same seeds, with the same networks, optimisers and number of generator steps, and
# count modes over training. The discriminator learns ten times more slowly than the generator, the
# setting in which {cite:t}`metz2017unrolled` demonstrate collapse.

# %%
show(gan.Discriminator.forward)
fix_name, fix = (("minibatch std", dict(minibatch_std=True)) if mitigation == "minibatch_std"
                 else (f"PacGAN{pack}", dict(pack=pack)))

# %%
tic = time.process_time()
runs = {"plain GAN": [ring.run(s) for s in seeds],
        fix_name: [ring.run(s, **fix) for s in seeds]}
print(f"{2 * len(seeds)} ring runs of {ring.steps} generator steps: {time.process_time() - tic:.0f} s CPU")

# %%
ring_data = data.toy("8gaussians", 2500, seed=seed, noise=ring.std)
ring_bounds = (-3.5, 3.5, -3.5, 3.5)
fig, axes = plt.subplots(2, len(seeds), figsize=(2.9 * len(seeds), 6.0), squeeze=False)
for row, (name, results) in enumerate(runs.items()):
    for col, (s, result) in enumerate(zip(seeds, results)):
        ax, final = axes[row, col], result["final"]
        plot.scatter(ring_data, ax=ax, bounds=ring_bounds, s=1, color="0.75")
        plot.scatter(result["step"].snapshots[-1].samples, ax=ax, bounds=ring_bounds, s=1,
                     color="C3" if row == 0 else "C2",
                     title=f"{name}, seed {s}\n{final['modes']}/8 modes, {final['high_quality']:.0%} high quality")
        ax.set_xlabel("$x_1$"), ax.set_ylabel("$x_2$")
fig.suptitle(f"samples (colour) over the data (grey) after {ring.steps} generator steps")
plt.tight_layout()
plt.show()

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
for (name, results), color in zip(runs.items(), ["C3", "C2"]):
    for i, result in enumerate(results):
        kw = dict(color=color, alpha=0.8, lw=1, label=name if i == 0 else None)
        axes[0].plot(result["steps"], result["modes"], **kw)
        axes[1].plot(result["steps"], result["high_quality"], **kw)
axes[0].set(xlabel="generator step", ylabel="modes covered (of 8)", ylim=(-0.3, 8.5),
            title="modes covered, one line per seed")
axes[0].yaxis.set_major_locator(plt.MaxNLocator(integer=True))
axes[1].set(xlabel="generator step", ylabel="fraction of high-quality samples", ylim=(0, 1.02),
            title="sample quality, one line per seed")
axes[1].axhline(0.95, color="k", ls=":", lw=1)
axes[0].legend(frameon=False, fontsize=8, loc="lower right")
plt.tight_layout()
plt.show()

# %% tags=["nbval-check-output"]
print(f"{'':14}" + "".join(f"{'seed ' + str(s):>14}" for s in seeds))
for name, results in runs.items():
    print(f"{name:14}" + "".join(f"{r['final']['modes']:>6}/8 {r['final']['high_quality']:>5.2f}" for r in results))
print("(modes covered / high-quality fraction of 2,500 samples at the end)")

# %% [markdown]
# The table and the figures tell one story. **The plain GAN collapses on every seed**: its samples
# form a single blob that sits on at most one mode — or between modes — and the replay below shows
# the blob wandering as the discriminator, which learns ten times more slowly than the generator
# (the setting of the collapse demonstrations of {cite:t}`metz2017unrolled`), catches up with it
# and the generator runs to the next place the discriminator still likes.
#
# **The minibatch feature stops the collapse**: with the same networks, learning rates, noise and
# number of steps, the generator spreads its samples around the whole ring and covers all eight
# modes on every seed, and the fraction of high-quality samples starts to climb in the last few
# hundred steps (right panel). The target of the mode-collapse literature is stricter: all modes *and* nearly all samples
# within $3\sigma$ — the papers' PacGAN4 covers 7.8 of 8 modes on average with most samples of high
# quality {cite:p}`lin2018pacgan`, with larger networks and many more steps. Our CPU-sized run gets
# the coverage but not yet the quality: most samples still lie on the arcs between the modes.
# `benchmarks/gan_digits.py --ring` measures both numbers over five seeds, and exercises 3 and 4
# try packing instead and show that the balance of the learning rates decides whether the plain
# GAN collapses at all.
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
replay = {name: results[0]["step"].snapshots for name, results in runs.items()}
snapshot_steps = [s.step for s in replay["plain GAN"]]


def draw_replay(fig, index):
    axes = fig.subplots(1, 3)
    plot.scatter(ring_data, ax=axes[0], bounds=(-3.5, 3.5, -3.5, 3.5), s=1, color="0.5", title="data")
    for ax, (name, snaps), color in zip(axes[1:], replay.items(), ["C3", "C2"]):
        cover = metrics.mode_coverage(snaps[index].samples, metrics.ring_centres(), ring.std)
        plot.scatter(snaps[index].samples, ax=ax, bounds=(-3.5, 3.5, -3.5, 3.5), s=1, color=color,
                     title=f"{name}, step {snaps[index].step}\n{cover['modes']}/8 modes, "
                           f"{cover['high_quality']:.0%} HQ")
    for ax in axes:
        ax.set_xlabel("$x_1$"), ax.set_ylabel("$x_2$")
    fig.tight_layout()


# %% tags=["nbval-ignore-output"]
widgets.live(draw_replay, figsize=(9, 3.4),
             index=ipywidgets.IntSlider(min=0, max=len(snapshot_steps) - 1, value=len(snapshot_steps) - 1,
                                        description="snapshot"))

# %%
widgets.animate(draw_replay, list(range(0, len(snapshot_steps), 2)), figsize=(9, 3.4), interval=400)

# %% [markdown]
# ## 5. DCGAN on the digits
#
# For images, both players are convolutional, following the DCGAN recipe
# {cite:p}`radford2016dcgan`: the generator projects $z$ to a small feature map and upsamples it
# with stride-2 transposed convolutions, with batch normalisation and ReLUs; the discriminator
# downsamples with stride-2 convolutions and leaky ReLUs, with no pooling; Adam with $\beta_1=0.5$.
# On 8x8 digits that is two layers each way ($2\times2\to4\times4\to8\times8$). The generator ends in
# a sigmoid: it produces grey levels in $[0,1]$, the data's pixels divided by 16.
#
# We also make it **conditional** {cite:p}`mirza2014conditional`, which costs almost nothing: the
# label $y$ goes to both players, $G(z,y)$ and $D(x,y)$ (a one-hot vector appended to the
# generator's input, and ten constant image channels, one per class, stacked on the
# discriminator's input). The discriminator now asks "is this a
# real image *of a $y$*?", so the generator must produce the right class, and we can ask for one
# (section 6). Drawing $y$ at random with the data's class frequencies, as below, makes the same
# generator an ordinary sampler of $p(x)$; the book profile trains this one image GAN to keep the
# chapter within its CPU budget, and `benchmarks/gan_digits.py --digits` trains the unconditional DCGAN.
# The same conditional DCGAN can be trained outside the notebook (`python -m genlib.train_family gan
# --out DIR`, e.g. on a GPU) and loaded with the parameter `checkpoint=DIR/gan.pt` instead of trained here.

# %%
diagrams.draw_gan_game(conditional=True)
plt.show()

# %%
splits = {name: data.images(dataset, name) for name in ("train", "val", "test")}
train, test = splits["train"], splits["test"]
x_train, y_train, x_test = train.scaled(), train.y, test.scaled()
config = gan.GANConfig.for_dataset(dataset, arch="conv", latent_dim=latent_dim, hidden=hidden, n_classes=10)
train_config = gan.TrainConfig(lr_g=1e-3, lr_d=1e-3)
print(config)
print(train_config)
print(f"{dataset}: {tuple(x_train.shape)} training images, pixels in [0, 1]")

if checkpoint:  # trained elsewhere (python -m genlib.train_family gan ...): load, do not train
    cgan, saved = train_family.load(checkpoint, "gan", device=device)
    train_family.check_params(checkpoint, saved, dataset=dataset, latent_dim=latent_dim, hidden=hidden)
    history = train_family.load_history(checkpoint)
    print(f"loaded {checkpoint}: conditional DCGAN, {history.epochs} epochs, {len(history.log['g_loss'])} "
          f"generator steps")
else:
    tic = time.process_time()
    cgan = gan.GAN(config)
    cgan_step = gan.fit_gan(cgan, (x_train, y_train), epochs=epochs, batch_size=64, config=train_config,
                            generator=gen, device=dev)
    history = cgan_step.history  # its log: both players' losses per generator step (section 8)
    print(f"conditional DCGAN: {epochs} epochs, {cgan_step.steps} generator steps in {time.process_time() - tic:.0f} s CPU")


def random_labels(n):
    """n labels drawn with the training set's class frequencies."""
    return y_train[torch.randint(len(y_train), (n,), generator=gen)].to(dev)


# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 4.6))
plot.image_grid(x_train[:64], train.shape, nrow=8, ax=axes[0], title="training images", vmax=1)
plot.image_grid(cgan.sample(64, y=random_labels(64), generator=gen).cpu(), train.shape, nrow=8, ax=axes[1],
                title="DCGAN samples (random labels)", vmax=1)
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
# Every number comes with its **floor**: the same measures between the training images and the test
# images, two samples of the true distribution. No model should be expected to beat it.

# %%
show(metrics.frechet_distance)
classifier = metrics.classifier(dataset)
floor = metrics.quality_floor(dataset)
n_eval = len(x_test)
dcgan_quality = metrics.sample_quality(cgan.sample(n_eval, y=random_labels(n_eval), generator=gen).cpu(), x_test,
                                       dataset)

# %% tags=["nbval-check-output"]
def quality_row(name, q):
    return f"{name:34}{q['frechet']:10.0f}{q['precision']:11.2f}{q['recall']:8.2f}"


print(f"{'samples vs the ' + str(n_eval) + ' test images':34}{'Fréchet':>10}{'precision':>11}{'recall':>8}")
print(quality_row("floor: training images", floor))
print(quality_row("DCGAN (random labels)", dcgan_quality))

# %% [markdown]
# Read each number against the floor. The GAN's Fréchet distance is several times the floor's and
# its precision is lower: many samples are clean digits, but a fair share are malformed strokes that
# fall outside the real images' manifold. Its recall is lower too: part of the variety of the test
# digits has no generated neighbour. `benchmarks/gan_digits.py --digits` gives the spread of these
# numbers over seeds for the unconditional DCGAN.

# %% [markdown]
# ## 6. Asking for a digit
#
# The same generator, given each label in turn:

# %%
rows = torch.arange(10).repeat_interleave(10)          # ten samples of each class, one class per row
cgan_samples = cgan.sample(100, y=rows.to(dev), generator=gen).cpu()
plot.image_grid(cgan_samples, train.shape, nrow=10, title="conditional samples: row = requested digit", vmax=1)
plt.show()

# %% [markdown]
# The feature classifier gives a direct check of control: it labels samples drawn for each
# requested digit, and the fraction it labels as requested is the conditional GAN's *label
# accuracy* (next to the classifier's accuracy on real test digits, which says how far to trust it).

# %% tags=["nbval-check-output"]
requested = torch.arange(10).repeat(50)                  # 500 samples, 50 per class
with torch.no_grad():
    predicted = classifier(cgan.sample(len(requested), y=requested.to(dev), generator=gen).cpu()).argmax(1)
print(f"label accuracy of conditional samples: {(predicted == requested).float().mean():.1f} "
      f"(the classifier on real test images: {classifier.test_accuracy:.2f})")

# %% [markdown]
# The classifier recognises the requested digit in the samples about as reliably as it recognises
# real test digits: the label controls the class. Within a class the generator favours clear,
# typical shapes over unusual ones — the lower recall of section 5, seen from another side.

# %% [markdown]
# ## 7. Walking in latent space: interpolation and a "control"
#
# A generator is a smooth map from $z$ to images, so a straight line between two codes gives a
# sequence of images that morph from one to the other. The conditional GAN lets us hold the digit
# fixed and move only $z$ (its "style"), or hold $z$ fixed and change the label.

# %%
z_pair = cgan.noise(2, gen)
t = torch.linspace(0, 1, 9)[:, None].to(dev)
z_line = (1 - t) * z_pair[0] + t * z_pair[1]              # (9, L) on the segment
fig, axes = plt.subplots(2, 1, figsize=(7, 2.4))
plot.image_grid(cgan.sample(9, y=torch.full((9,), 3, device=dev), z=z_line).cpu(), train.shape, nrow=9,
                ax=axes[0], title="interpolating z for the digit 3", vmax=1)
plot.image_grid(cgan.sample(10, y=torch.arange(10, device=dev), z=z_pair[:1].repeat(10, 1)).cpu(), train.shape,
                nrow=10, ax=axes[1], title="one z, every label: the style is kept", vmax=1)
plt.tight_layout()
plt.show()

# %% [markdown]
# **A latent control.** Directions in $z$ can mean something. To find one without labels, measure a
# property of many samples — here the amount of ink, the mean grey level — and regress it linearly
# on $z$; the regression's weight vector points in the direction that adds ink. Moving a code along
# it is a "control" knob on the generator.

# %%
z_many = cgan.noise(2000, gen)
y_many = torch.arange(2000, device=dev) % 10
ink = cgan.sample(2000, y=y_many, z=z_many).mean(1)      # (2000,)
design = torch.cat([z_many, torch.nn.functional.one_hot(y_many, 10).float()], 1).cpu()
weights = torch.linalg.lstsq(design, ink.cpu()[:, None]).solution[:latent_dim, 0]
direction = (weights / weights.norm()).to(dev)           # unit vector in z space
amounts = torch.linspace(-3, 3, 7)
z_base = cgan.noise(1, gen)
edits = torch.cat([z_base + a * direction for a in amounts])
fig, axes = plt.subplots(2, 1, figsize=(6, 2.6))
for ax, digit in zip(axes, (2, 7)):
    plot.image_grid(cgan.sample(7, y=torch.full((7,), digit, device=dev), z=edits).cpu(), train.shape, nrow=7, ax=ax,
                    title=f"digit {digit}: z + a·(ink direction), a = -3 … 3", vmax=1)
plt.tight_layout()
plt.show()

# %% tags=["nbval-check-output"]
with torch.no_grad():
    ink_along = [float(cgan.sample(200, y=torch.arange(200, device=dev) % 10,
                                   z=cgan.noise(200, gen) + a * direction).mean()) for a in (-2.0, 0.0, 2.0)]
print("mean ink at a = -2, 0, +2:", [round(v, 2) for v in ink_along],
      "increasing:", ink_along[0] < ink_along[1] < ink_along[2])

# %% [markdown]
# ## 8. Why GANs are hard
#
# **Instability.** A GAN has no loss that decreases towards a solution: the two players look for a
# saddle point, and gradient steps on a game can orbit it instead of converging (the plain GAN's
# wandering blob in section 4 is one such orbit). The losses are also a poor guide to progress.
# Below, the DCGAN's two losses and the discriminator's mean output on real and on generated
# images, per generator step (moving averages): at the game's optimum $-V=\log 4$ and both outputs
# are ½.

# %%
def smooth(values, width=25):
    values = np.asarray(values)
    return np.convolve(values, np.ones(width) / width, mode="valid")


fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
log = history.log
axes[0].plot(smooth(log["d_loss"]), label="discriminator loss −V")
axes[0].plot(smooth(log["g_loss"]), label="generator loss −log D(G(z))")
axes[0].axhline(math.log(4), color="k", ls=":", lw=1, label="−V at the optimum: log 4")
axes[1].plot(smooth(log["d_real"]), label="mean D(x), real")
axes[1].plot(smooth(log["d_fake"]), label="mean D(G(z)), generated")
axes[1].axhline(0.5, color="k", ls=":", lw=1)
axes[0].set(xlabel="generator step", ylabel="loss (nats)", title="DCGAN losses (moving average)")
axes[1].set(xlabel="generator step", ylabel="discriminator output", title="what the discriminator says",
            ylim=(0, 1))
axes[0].legend(frameon=False, fontsize=8), axes[1].legend(frameon=False, fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# After about 150 steps both curves sit near their optimal values: on average the discriminator
# can no longer tell the two sets apart, yet the samples are visibly imperfect and their Fréchet
# distance is several times the floor. A flat GAN loss says that the game is balanced, not that
# the generator is good — which is why GANs are evaluated on their samples.
#
# **Mode collapse** was section 4. On images it is harder to see, and that is where the evaluation
# measures earn their keep. A generator that only draws one class has realistic samples but no
# diversity; precision and recall separate the two failures that a single Fréchet distance mixes.
# We make such a "collapsed" generator on purpose — the conditional GAN asked for one digit only —
# and compare it with the same model asked for all ten.

# %% tags=["nbval-check-output"]
one_class = cgan.sample(n_eval, y=torch.full((n_eval,), 1, device=dev), generator=gen).cpu()
all_classes = cgan.sample(n_eval, y=torch.arange(n_eval, device=dev) % 10, generator=gen).cpu()
print(f"{'samples vs the ' + str(n_eval) + ' test images':34}{'Fréchet':>10}{'precision':>11}{'recall':>8}")
print(quality_row("floor: training images", floor))
print(quality_row("conditional GAN, all ten digits", metrics.sample_quality(all_classes, x_test, dataset)))
print(quality_row("conditional GAN, only the digit 1", metrics.sample_quality(one_class, x_test, dataset)))

# %% [markdown]
# Asked only for ones, the samples are still realistic — precision does not drop (it even rises:
# ones are easy digits to draw) — but recall collapses (almost no test digit has a generated
# neighbour) and the Fréchet distance grows by an order of magnitude. Precision and recall separate the two failures that the
# single Fréchet distance mixes: bad samples, and missing variety.
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
# GANs for text therefore need other gradient estimators (REINFORCE, Gumbel-softmax relaxations),
# and the likelihood-based models of the next chapters handle discrete data natively.
#
# **Evaluation is hard.** Without a likelihood, every number above depends on a choice of features
# (ours: a small classifier trained by genlib), of sample sizes (the Fréchet distance is biased
# upwards for small sets — the floor shows how far from zero two samples of the *same* distribution
# are) and of the nearest-neighbour $k$ for precision/recall. Always report the floor, and compare
# models only with the same features and sample sizes.

# %% [markdown]
# ## Summary
#
# * A generator pushes noise forward, $x=G_\theta(z)$; its distribution has samples but, in high
#   dimension, no density — an implicit model.
# * The discriminator is a classifier between data and samples. For a fixed generator its optimum is
#   $D^*=p_{\text{data}}/(p_{\text{data}}+p_g)$, and the game's value at $D^*$ is
#   $2\,\mathrm{JS}(p_{\text{data}}\|p_g)-\log 4$, minimised exactly by $p_g=p_{\text{data}}$.
#   A trained network approaches $D^*$ where it has data.
# * Training alternates $k$ discriminator steps with a generator step; the non-saturating generator
#   loss $-\log D(G(z))$ keeps gradients alive where $D(G(z))\approx 0$.
# * Mode collapse is measurable on a ring of Gaussians (modes covered, high-quality fraction);
#   showing the discriminator a minibatch statistic (or packs of samples, PacGAN) counters it.
# * DCGAN and conditional GANs generate digits; labels and latent directions control them.
# * GANs are hard to train and to evaluate: report feature-based distances and precision/recall
#   with their floor, and prefer likelihood-based models when discrete data or likelihoods matter.
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
# them*: `gan.optimal_discriminator` on two discrete distributions with disjoint supports gives
# $D^*\in\{0,1\}$ and $2\,\mathrm{JS}-\log 4=0$ from `jensenshannon`. Moving the generator a little
# does not change the JS divergence, so a perfect discriminator gives the generator no gradient
# through the game's value: one motivation for the non-saturating loss, and for losses based on
# distances between distributions (Wasserstein GANs).
# ```
#
# **2. What the non-saturating generator minimises.** With $D=D^*$, write the non-saturating
# generator loss $\mathbb E_{p_g}[-\log D^*(x)]$ with $\mathrm{KL}(p_g\|p_{\text{data}})$ and
# $\mathrm{JS}(p_{\text{data}}\|p_g)$. The first is the *reverse* KL; why does it tolerate missing modes?
#
# ```{admonition} Solution
# :class: dropdown
# $-\log D^*=\log\frac{p_{\text{data}}+p_g}{p_{\text{data}}}=\log\frac{p_g}{p_{\text{data}}}+\log\frac{2M}{p_g}$
# with $M=\tfrac12(p_{\text{data}}+p_g)$, so
# $\mathbb E_{p_g}[-\log D^*]=\mathrm{KL}(p_g\|p_{\text{data}})-\mathrm{KL}(p_g\|M)+\log 2$; since
# $\mathrm{KL}(p_{\text{data}}\|M)+\mathrm{KL}(p_g\|M)=2\,\mathrm{JS}$, this is
# $\mathrm{KL}(p_g\|p_{\text{data}})-2\,\mathrm{JS}+\mathrm{KL}(p_{\text{data}}\|M)+\log 2$.
# {cite:t}`arjovsky2017towards` show that its gradient in $\theta$, with $D^*$ held fixed, is that of
# $\mathrm{KL}(p_g\|p_{\text{data}})-2\,\mathrm{JS}$. The reverse KL
# $\mathbb E_{p_g}[\log p_g/p_{\text{data}}]$ is an expectation under the *generator*: samples where
# the data has no mass (bad quality) cost a lot, but a mode of the data that the generator never
# visits costs nothing. Maximum likelihood's $\mathrm{KL}(p_{\text{data}}\|p_g)$ is the opposite: a
# missed mode costs $\log 0=-\infty$. That asymmetry is one explanation of why GANs trade diversity for
# quality.
# ```
#
# **3. Packing instead.** Rerun the ring with PacGAN (papermill: `-p mitigation pack`, with the
# default `pack=4`). Does it stop the collapse? Compare its samples with the minibatch feature's.
#
# ```{admonition} Solution
# :class: dropdown
# The blob disappears, but PacGAN4 does not learn the ring in 1,500 steps: on seeds 0 and 1 it ends
# with "7/8 modes" and about 1% high-quality samples, and its samples are a diffuse cloud over the
# whole square — the seven modes are hit by chance, which is exactly the weakness of the mode count
# noted in section 4. With a pack of 4 the discriminator judges a quarter as many inputs per step,
# each a harder question, and with its slow learning rate it learns the modes' shape slowly; the
# papers train much longer.
# ```
#
# **4. Collapse depends on the balance of the players.** Rerun the chapter with a discriminator as
# fast as the generator (papermill: `-p ring_lr_d 0.001`). Does the plain GAN still collapse?
#
# ```{admonition} Solution
# :class: dropdown
# With equal learning rates the discriminator keeps up with the generator, and the plain GAN no
# longer collapses in this budget: on seeds 0 and 1 it covers all 8 modes, with 38% and 22%
# high-quality samples at the end (samples spread along the ring between the modes). Whether a GAN
# collapses depends on architecture, learning rates and training length, which is why the
# literature measures it over many seeds.
# ```
#
# **5. Precision, recall and a memorising generator.** What precision, recall and Fréchet distance
# would a "generator" get that returns the training images themselves? Compare with the floor
# printed in section 5 and explain why a low Fréchet distance alone does not show that a GAN
# generalises.
#
# ```{admonition} Solution
# :class: dropdown
# Returning the training images *is* the floor row: `metrics.quality_floor` compares the training
# images with the test images. A memorising generator therefore scores exactly as well as the data
# itself on all three measures, although it has learned nothing beyond the training set (Chapter 1's
# filing cabinet). Feature-based measures compare distributions of samples and cannot tell
# memorisation from generalisation; that needs a held-out test (nearest training neighbours of
# samples, or a likelihood on test data, which a GAN does not have).
# ```

# %% tags=["remove-cell", "nbval-check-output"]
widgets.check_live("05_gans")  # moves every control of every live widget above: see genlib/widgets.py
