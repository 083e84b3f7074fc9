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
# # Diffusion models
#
# Every generator in this book turns simple noise into data. A VAE does it in one jump, through a
# decoder; an autoregressive model (Chapter 6) one pixel at a time. A **diffusion model** does it in
# many small steps, and it learns those steps by running the opposite process, which needs no
# learning at all: take a training image and *just add noise*, a little at a time, until nothing of
# the image is left {cite:p}`sohldickstein2015deep,ho2020ddpm`. A network trained to undo one step
# of that corruption, applied over and over to pure noise, produces new images.
#
# The framing of this chapter follows the MIT 6.7960 lecture on deep generative models
# {cite:p}`isola2024dgm1`: the forward and reverse processes, the stripped-down training
# algorithm ("train a denoiser to reverse these sequences"), and generative modelling as a
# *sequence of supervised problems*. We then meet the parts that make diffusion work in practice:
# predicting the noise instead of the image, the score view, a likelihood bound in nats, fewer
# sampling steps, and flow matching, a close relative.

# %% [markdown]
# ## Parameters
#
# `toy` is the 2-D data set of the pictures, `dataset` the images. `T` and `toy_T` are the numbers
# of diffusion steps for the images and for the toy; `epochs`, `fixed_epochs` and `toy_epochs` the
# passes over the training sets (`fixed_epochs` for the lattice-matched model of section 8) (each model then trains a quarter as many more epochs at a tenth of the learning
# rate). `width` is the U-Net's base number of channels. `steps_grid` lists the sampling step
# counts compared in section 10, each with `n_quality` samples; the likelihood bound of section 8
# uses `bound_images` test images and at most `bound_strata` strata of timesteps per image (one random
# step in each). `bin_fraction` sets the smallest noise of the lattice-matched schedule of section 8,
# as a fraction of the distance between neighbouring grey levels. `guided_epochs` trains the
# label-conditional model of section 12, sampled at each classifier-free guidance scale of
# `guidance_grid`; `ode_images` and `ode_steps` set the test images and Heun steps of the
# probability-flow ODE's likelihood in section 11. `checkpoint`
# names a file written by `python -m genlib.train_family diffusion` (section 8's lattice-matched U-Net,
# trained outside the notebook, e.g. on a GPU): section 8 then loads it instead of training it.

# %% tags=["parameters"]
device = "cpu"          # "auto", "cpu", "cuda" or "mps"
dataset = "digits"      # "digits", "mnist5k" (offline 28x28) or "mnist" (download)
toy = "swissroll"       # a 2-D toy: swissroll, moons, rings, 8gaussians, spiral
epochs = 10             # passes over the image training set, per image model
fixed_epochs = 30       # passes for the lattice-matched model of section 8
toy_epochs = 60         # passes over the toy data, per toy model
T = 1000                # diffusion steps for the images
toy_T = 100             # diffusion steps for the toy
schedule = "linear"     # noise schedule: "linear" or "cosine"
width = 16              # U-Net base channels
steps_grid = [5, 10, 20]  # sampling steps compared in section 10
n_quality = 300         # samples per point of the quality curves
bound_images = 64       # test images for the likelihood bound
bound_strata = 64       # strata of timesteps for the bound (one random step each, per image)
bin_fraction = 0.5      # lattice-matched schedule: smallest noise sigma_1 = bin_fraction * bin width
guided_epochs = 10      # passes for the label-conditional model of section 12
guidance_grid = [0.0, 0.5, 1.0, 2.0, 4.0]  # classifier-free guidance scales compared in section 12
ode_images = 4          # test images for the probability-flow ODE likelihood of section 11
ode_steps = 40          # Heun steps of that ODE
checkpoint = ""         # a file from genlib.train_family: load the lattice-matched U-Net, skip its training
seed = 0

# %% tags=["hide-input"]
import json
import math
import time
from dataclasses import replace

import ipywidgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from myst_nb import glue

import genlib
from genlib import checks, compare, data, diagrams, metrics, plot, results, train_family, widgets
from genlib import diffusion as dm
from genlib.train import check_epochs

dev = genlib.device(device)
gen = genlib.seed_everything(seed)
data.check_dataset(dataset, ("digits", "mnist5k", "mnist"))
data.check_dataset(toy, data.TOYS)
check_epochs(epochs), check_epochs(toy_epochs), check_epochs(fixed_epochs), check_epochs(guided_epochs)
for name, value in [("T", T), ("toy_T", toy_T), ("width", width), ("n_quality", n_quality),
                    ("bound_images", bound_images), ("bound_strata", bound_strata), ("ode_images", ode_images),
                    ("ode_steps", ode_steps)]:
    checks.positive_int(name, value)
if not isinstance(guidance_grid, (list, tuple)) or not guidance_grid or any(
        isinstance(g, bool) or not isinstance(g, (int, float)) or not 0 <= g < 100 for g in guidance_grid):
    raise ValueError(f"guidance_grid must be a non-empty list of scales in [0, 100) (papermill: -y 'guidance_grid: [0, 2]'), "
                     f"got {guidance_grid!r}")
guidance_grid = sorted(set(float(g) for g in guidance_grid))
checks.positive("bin_fraction", bin_fraction)
checks.choice("schedule", schedule, dm.SCHEDULES)
if not isinstance(steps_grid, (list, tuple)) or not steps_grid or any(
        isinstance(s, bool) or not isinstance(s, int) or not 1 <= s <= T for s in steps_grid):
    raise ValueError(f"steps_grid must be a non-empty list of integers in 1..T (papermill: -y 'steps_grid: [5, 20]'), "
                     f"got {steps_grid!r}")
steps_grid = sorted(set(steps_grid))


show = genlib.show_source  # prints a genlib function's source, to read next to its equation


def toy_scatter(points, ax, bounds=(-3, 3, -3, 3), title=""):
    """genlib.plot.scatter on a fixed frame, saying in the title how many points fall outside it."""
    x0, x1, y0, y1 = bounds
    outside = int(((points[:, 0] < x0) | (points[:, 0] > x1) | (points[:, 1] < y0) | (points[:, 1] > y1)).sum())
    note = f"\n({outside} of {len(points)} outside)" if outside else ""
    plot.scatter(points, ax=ax, s=1, bounds=bounds, title=title + note)


def train_model(model, train_data, val_data, n_epochs, batch_size, lr, note=""):
    """Adam (genlib.train.fit) for n_epochs, then n_epochs/4 more at lr/10; one summary line; the history."""
    tic = time.process_time()
    history = dm.fit_with_cooldown(model, train_data, val_data, dm.TrainConfig(n_epochs, batch_size, lr),
                                   generator=gen, device=dev, progress=False)
    seconds = time.process_time() - tic
    print(f"{type(model).__name__} ({model.config.net}, {model.config.objective if isinstance(model, dm.Diffusion) else 'velocity'}{note}): "
          f"trained {history.epochs} epochs in {seconds:.1f} s of CPU time")
    return history


# %% [markdown]
# ## 1. Just add noise
#
# Fix a number of steps $T$ and a **noise schedule** $0<\beta_1<\dots<\beta_T<1$. The forward
# process corrupts a data point $x_0$ step by step:
#
# $$
# x_t=\sqrt{1-\beta_t}\,x_{t-1}+\sqrt{\beta_t}\,\varepsilon_t,\qquad \varepsilon_t\sim\mathcal N(0,I),
# \qquad\text{i.e.}\qquad q(x_t\mid x_{t-1})=\mathcal N\big(\sqrt{1-\beta_t}\,x_{t-1},\ \beta_t I\big).
# $$
#
# The factor $\sqrt{1-\beta_t}$ shrinks the signal while noise is added, so that the variance stays
# bounded: if $x_{t-1}$ has unit variance, so does $x_t$. After enough steps nothing of $x_0$ is
# left and $x_T$ is (very nearly) a draw from $\mathcal N(0,I)$. The generative model runs the chain
# the other way, from noise to data, with learned steps $p_\theta(x_{t-1}\mid x_t)$:

# %%
ax = diagrams.draw_diffusion_chain()
ax.set_title("Forward (fixed) and reverse (learned) Markov chains")
plt.show()

# %% [markdown]
# The figure below runs the forward process literally, one step at a time, on the swiss roll
# (scaled to unit standard deviation, like the noise) and on test digits (pixels scaled to
# $[-1,1]$). The toy uses $T$ = `toy_T` steps, the images $T$ = `T`; the columns are the same
# fractions of the way.

# %%
raw = data.toy(toy, 2000, seed=seed)
x_toy = raw / raw.std()  # (N, 2), unit standard deviation overall
splits = {s: data.images(dataset, s) for s in ("train", "val", "test")}
train, val, test = splits["train"], splits["val"], splits["test"]
levels, shape, D = train.levels, train.shape, train.dims
x_train, x_val, x_test = (dm.to_unit_range(s.x, levels) for s in (train, val, test))  # (N, D) in [-1, 1]

toy_config = dm.DiffusionConfig.for_dataset(toy, T=toy_T, schedule=schedule)
image_config = dm.DiffusionConfig.for_dataset(dataset, T=T, schedule=schedule, width=width)
toy_schedule = dm.NoiseSchedule(dm.config_betas(toy_config))
image_schedule = dm.NoiseSchedule(dm.config_betas(image_config))
print(f"toy: {tuple(x_toy.shape)}; {dataset}: train {tuple(x_train.shape)}, val {tuple(x_val.shape)}, "
      f"test {tuple(x_test.shape)}, {levels} levels scaled to [-1, 1]")


def forward_chain(x0, schedule_, stops, generator):
    """Run q(x_t | x_{t-1}) step by step; keep x_t at the times in ``stops``."""
    kept, x = {0: x0}, x0
    for t in range(1, max(stops) + 1):
        x = dm.q_step(x, t, schedule_, generator=generator)
        if t in stops:
            kept[t] = x
    return kept


fractions = [0, 0.05, 0.1, 0.25, 0.5, 1.0]
toy_stops = [round(f * toy_T) for f in fractions]
image_stops = [round(f * T) for f in fractions]
toy_forward = forward_chain(x_toy, toy_schedule, toy_stops, gen)
digits_forward = forward_chain(x_test[:6], image_schedule, image_stops, gen)

fig, axes = plt.subplots(2, len(fractions), figsize=(13, 4.6), gridspec_kw={"height_ratios": [1.15, 1]})
for ax, t in zip(axes[0], toy_stops):
    toy_scatter(toy_forward[t], ax, bounds=(-3.5, 3.5, -3.5, 3.5), title=f"t = {t} of {toy_T}")
for ax, t in zip(axes[1], image_stops):
    plot.image_grid(dm.from_unit_range(digits_forward[t]), shape, nrow=3, ax=ax, vmax=1.0,
                    title=f"t = {t} of {T}")
fig.suptitle("The forward process: the swiss roll (top) and test digits (bottom) dissolve into noise")
fig.tight_layout()
plt.show()

# %% [markdown]
# How fast the image dissolves is set by the schedule. The quantity that matters turns out to be
# the product $\bar\alpha_t=\prod_{s\le t}(1-\beta_s)$ (next section): $\sqrt{\bar\alpha_t}$ is how
# much of $x_0$ survives in $x_t$ and $\sqrt{1-\bar\alpha_t}$ how much noise has replaced it. The
# linear schedule of {cite:t}`ho2020ddpm` ($\beta_t$ from $10^{-4}$ to $0.02$ over 1000 steps; genlib
# rescales the two ends by $1000/T$ for other $T$) destroys most of the signal by the middle of the
# chain; the cosine schedule of {cite:t}`nichol2021improved` spends more steps at moderate noise.
# A third view of a schedule turns out to be the most useful one: the **signal-to-noise ratio**
# $\mathrm{SNR}_t=\bar\alpha_t/(1-\bar\alpha_t)$, on a log scale (right). The third schedule, `snr`,
# makes $\log\mathrm{SNR}_t$ fall in a straight line {cite:p}`kingma2021variational`, from a value
# chosen for the data's grey levels (section 8 explains why) to the same end as the linear schedule.

# %%
schedules = {name: dm.NoiseSchedule(dm.config_betas(replace(image_config, schedule=name))) for name in dm.SCHEDULES}
fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
t_axis = np.arange(T + 1)
for i, (name, sch) in enumerate(schedules.items()):
    axes[0].plot(t_axis, sch.alpha_bar.sqrt().numpy(), color=f"C{i}", label=name)
    axes[0].plot(t_axis, (1 - sch.alpha_bar).sqrt().numpy(), color=f"C{i}", ls="--")
    axes[1].semilogy(t_axis[1:], sch.beta[1:].numpy(), color=f"C{i}", label=name)
    axes[2].plot(t_axis[1:], torch.log(sch.alpha_bar[1:] / (1 - sch.alpha_bar[1:])).numpy(), color=f"C{i}", label=name)
half_bin_logsnr = dm.lattice_logsnr_max(levels)
axes[2].axhline(half_bin_logsnr, color="grey", lw=1, ls=":")
axes[2].annotate("noise = half a grey level", (0.98 * T, half_bin_logsnr), ha="right", va="bottom", fontsize=8, color="grey")
axes[0].set_xlabel("step t"), axes[0].set_ylabel("coefficient")
axes[0].set_title(f"signal $\\sqrt{{\\bar\\alpha_t}}$ (solid), noise $\\sqrt{{1-\\bar\\alpha_t}}$ (dashed)", fontsize=10)
axes[1].set_xlabel("step t"), axes[1].set_ylabel("$\\beta_t$ (log scale)"), axes[1].set_title("noise added per step", fontsize=10)
axes[2].set_xlabel("step t"), axes[2].set_ylabel("$\\log \\mathrm{SNR}_t$"), axes[2].set_title("log signal-to-noise ratio", fontsize=10)
for ax, where in zip(axes, ["center right", "lower right", "lower left"]):
    ax.legend(frameon=False, fontsize=8, loc=where)
fig.suptitle(f"Three noise schedules, T = {T}", fontsize=11)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 2. The closed form $q(x_t\mid x_0)$
#
# A sum of independent Gaussians is Gaussian, so the chain can be collapsed. Write
# $\alpha_t=1-\beta_t$. Two steps give
#
# $$
# x_t=\sqrt{\alpha_t}\big(\sqrt{\alpha_{t-1}}\,x_{t-2}+\sqrt{1-\alpha_{t-1}}\,\varepsilon_{t-1}\big)
# +\sqrt{1-\alpha_t}\,\varepsilon_t ,
# $$
#
# whose noise part has variance $\alpha_t(1-\alpha_{t-1})+(1-\alpha_t)=1-\alpha_t\alpha_{t-1}$. By
# induction,
#
# $$
# q(x_t\mid x_0)=\mathcal N\big(\sqrt{\bar\alpha_t}\,x_0,\ (1-\bar\alpha_t)I\big),\qquad
# x_t=\sqrt{\bar\alpha_t}\,x_0+\sqrt{1-\bar\alpha_t}\,\varepsilon ,\qquad \bar\alpha_t=\prod_{s=1}^t\alpha_s .
# $$
#
# This is what makes training cheap: any $x_t$ is one line away from $x_0$, without running the
# chain. genlib's two functions, the step and the closed form:

# %%
show(dm.q_step)
show(dm.q_sample)

# %% [markdown]
# A numerical check: start 100,000 copies of the same $x_0$, run $t$ steps of the chain, and compare
# the sample mean and variance with $\sqrt{\bar\alpha_t}\,x_0$ and $1-\bar\alpha_t$ — and with
# 100,000 draws from the closed form.

# %% tags=["nbval-check-output"]
check_gen = torch.Generator().manual_seed(1)
x0_check = torch.full((100_000, 1), 0.8, dtype=torch.float64)
t_check = T // 4
iterated = forward_chain(x0_check, image_schedule, [t_check], check_gen)[t_check]
closed = dm.q_sample(x0_check, t_check, image_schedule, generator=check_gen)
ab = image_schedule.alpha_bar[t_check].item()
print(f"t = {t_check}: exact mean {math.sqrt(ab) * 0.8:.3f}, variance {1 - ab:.3f}")
print(f"iterated chain: mean {iterated.mean():.3f}, variance {iterated.var():.3f}")
print(f"closed form:    mean {closed.mean():.3f}, variance {closed.var():.3f}")
print("agree within Monte Carlo error:",
      abs(iterated.mean().item() - closed.mean().item()) < 0.02 and abs(iterated.var().item() - closed.var().item()) < 0.02)

# %% [markdown]
# ## 3. The reverse process and the stripped-down training algorithm
#
# To generate we run the chain backwards: draw $x_T\sim\mathcal N(0,I)$ and step
#
# $$
# p_\theta(x_{t-1}\mid x_t)=\mathcal N\big(\mu_\theta(x_t,t),\ \sigma_t^2 I\big)
# $$
#
# down to $x_0$. When each forward step adds only a little noise, the true reverse step
# $q(x_{t-1}\mid x_t)$ is itself close to Gaussian {cite:p}`sohldickstein2015deep`, so this family is
# the right one, and only its mean has to be learned. The lecture's algorithm does exactly that:
# generate training sequences by diffusing each training image, then train a denoiser
# $f_\theta$ to reverse them, one step at a time:
#
# $$
# \theta^*=\arg\min_\theta\ \sum_{n=1}^N\sum_{t=1}^T\ \big\lVert f_\theta(x_t^{(n)},t)-x_{t-1}^{(n)}\big\rVert^2 .
# $$
#
# A regression to the mean: the minimiser is $f^*(x_t,t)=\mathbb E[x_{t-1}\mid x_t]$, the mean of
# the true reverse step. genlib draws one random $t$ per image per minibatch instead of the whole
# sequence (the same objective, in expectation), and gets $x_{t-1}$ from the closed form and $x_t$
# by one more forward step (`objective="x_prev"` below). The sampler then uses
# $\mu_\theta=f_\theta$ and $\sigma_t^2=\tilde\beta_t$ (defined in the next section).

# %%
show(dm.Diffusion.loss)

# %%
stripped = dm.Diffusion(replace(toy_config, objective="x_prev"))
train_model(stripped, x_toy, None, toy_epochs, 256, 5e-3)
toy_reference = data.toy(toy, 2000, seed=seed + 1) / raw.std()  # fresh points for comparisons


def toy_quality(samples):
    """k-NN precision and recall (genlib.metrics) on the raw 2-D coordinates, against fresh toy points."""
    precision, recall = metrics.precision_recall(toy_reference.double().numpy(), samples.double().numpy())
    return {"precision": precision, "recall": recall}


stripped_samples = stripped.sample(2000, generator=gen)

# %% [markdown]
# ## 4. Predicting the noise: the same regression, reparameterised
#
# The reverse step has a closed form once we also condition on $x_0$. By Bayes' rule,
# $q(x_{t-1}\mid x_t,x_0)\propto q(x_t\mid x_{t-1})\,q(x_{t-1}\mid x_0)$, a product of two Gaussians
# in $x_{t-1}$, so
#
# $$
# q(x_{t-1}\mid x_t,x_0)=\mathcal N\big(\tilde\mu_t(x_t,x_0),\ \tilde\beta_t I\big),\quad
# \tilde\mu_t=\frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t}\,x_0+\frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}\,x_t,\quad
# \tilde\beta_t=\frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\,\beta_t .
# $$
#
# The stripped-down target $x_{t-1}$ is a draw from this Gaussian, so its regression minimiser is
# $\mathbb E[x_{t-1}\mid x_t]=\mathbb E[\tilde\mu_t\mid x_t]$, and every target carries irreducible
# noise of variance $\tilde\beta_t$ per coordinate. Now substitute
# $x_0=(x_t-\sqrt{1-\bar\alpha_t}\,\varepsilon)/\sqrt{\bar\alpha_t}$ from the closed form:
#
# $$
# \tilde\mu_t=\frac{1}{\sqrt{\alpha_t}}\Big(x_t-\frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,\varepsilon\Big).
# $$
#
# The only unknown in the mean is the noise $\varepsilon$ that was added. So parameterise
# $\mu_\theta(x_t,t)=\frac{1}{\sqrt{\alpha_t}}\big(x_t-\frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\varepsilon_\theta(x_t,t)\big)$
# and the squared error of the means becomes a weighted squared error of the noise,
# $\lVert\tilde\mu_t-\mu_\theta\rVert^2=\frac{\beta_t^2}{\alpha_t(1-\bar\alpha_t)}\lVert\varepsilon-\varepsilon_\theta\rVert^2$.
# {cite:t}`ho2020ddpm` drop the weight and train
#
# $$
# L_{\text{simple}}=\mathbb E_{t,x_0,\varepsilon}\big\lVert\varepsilon-\varepsilon_\theta\big(\sqrt{\bar\alpha_t}x_0+\sqrt{1-\bar\alpha_t}\varepsilon,\ t\big)\big\rVert^2 .
# $$
#
# Same optimum (the posterior mean), different target: $\varepsilon$ has unit variance at every $t$,
# whereas the stripped-down target differs from its input $x_t$ by an amount of order
# $\sqrt{\beta_t}$, buried in noise of the same order. The check below verifies the two
# identities with the true $\varepsilon$ on random inputs.

# %% tags=["nbval-check-output"]
g = torch.Generator().manual_seed(2)
x0_r = torch.randn(256, 2, generator=g, dtype=torch.float64)
t_r = torch.randint(1, toy_T + 1, (256,), generator=g)
eps_r, eps_wrong = torch.randn(256, 2, generator=g, dtype=torch.float64), torch.randn(256, 2, generator=g, dtype=torch.float64)
xt_r = dm.q_sample(x0_r, t_r, toy_schedule, eps_r)
mu_tilde, _ = dm.q_posterior(x0_r, xt_r, t_r, toy_schedule)
print("posterior mean = mean written through the true noise:",
      torch.allclose(mu_tilde, dm.mean_from_eps(xt_r, t_r, eps_r, toy_schedule), atol=1e-10))
beta, alpha, abar = (toy_schedule.at(k, t_r, x0_r)[:, 0] for k in ("beta", "alpha", "alpha_bar"))
lhs = (mu_tilde - dm.mean_from_eps(xt_r, t_r, eps_wrong, toy_schedule)).pow(2).sum(1)
rhs = beta**2 / (alpha * (1 - abar)) * (eps_r - eps_wrong).pow(2).sum(1)
print("mean error = weighted noise error:", torch.allclose(lhs, rhs, rtol=1e-8))

# %% [markdown]
# Train the noise predictor with the same network, schedule and budget as the stripped-down model,
# and sample both with the full chain of $T$ = `toy_T` ancestral steps:

# %%
toy_model = dm.Diffusion(toy_config)
train_model(toy_model, x_toy, None, toy_epochs, 256, 5e-3)
toy_samples, toy_path = toy_model.sample(2000, generator=gen, trajectory=True)

fig, axes = plt.subplots(1, 3, figsize=(11, 3.8))
toy_scatter(x_toy, axes[0], bounds=(-3, 3, -3, 3), title="training data")
for ax, (name, s) in zip(axes[1:], [("stripped-down: predict $x_{t-1}$", stripped_samples),
                                    ("DDPM: predict the noise", toy_samples)]):
    q = toy_quality(s)
    toy_scatter(s, ax, bounds=(-3, 3, -3, 3),
                 title=f"{name}\nprecision {q['precision']:.2f}, recall {q['recall']:.2f}")
fig.tight_layout()
plt.show()

# %% tags=["nbval-check-output"]
quality_stripped, quality_eps = toy_quality(stripped_samples), toy_quality(toy_samples)
print(f"k-NN precision on the 2-D points (higher is better): stripped-down {quality_stripped['precision']:.1f}, "
      f"noise prediction {quality_eps['precision']:.1f}")

# %% [markdown]
# The titles give the nearest-neighbour precision (the fraction of samples that land among fresh data points:
# quality) and recall (the fraction of data points that the samples cover: diversity) of
# `genlib.metrics`, computed on the 2-D coordinates themselves. (A Fréchet distance would be
# useless here: it compares only means and covariances, and a round blob has the roll's.) Which
# objective wins at this small budget is what the printed precisions say, not a law; the argument
# for noise prediction is its better-conditioned target, and that matters more as the steps get
# smaller (exercise 2). All sample clouds in this chapter are fuzzier than the roll: `toy_epochs` is
# small so that the chapter runs in about a minute on a CPU; the MLP sees the input through Fourier
# features (sines and cosines of $x$ at a few frequencies, {cite:p}`tancik2020fourier`), which lets it bend around the thin roll
# in so few steps, and the points tighten with longer training (the `paper` profile).
#
# ## 5. Digits from noise
#
# For images the noise predictor is a small **U-Net** {cite:p}`ronneberger2015unet`: convolutions
# at full and at reduced resolution, with skip connections that carry the fine detail from the
# encoder half to the decoder half, and the time step fed to every block through a sinusoidal
# embedding. The output has the input's shape, one noise estimate per pixel.

# %%
show(dm.UNet.forward)


unet = dm.Diffusion(image_config)
train_model(unet, x_train, None, epochs, 64, 2e-3)
print(f"U-Net: {sum(p.numel() for p in unet.parameters()):,} parameters")

# %% [markdown]
# Ancestral sampling uses all $T$ steps. Each sample below started from its own $x_T$ — a different
# roll of the dice gives a different digit — and the rows at the bottom follow eight of them from
# pure noise (left) to the final image (right).

# %%
tic = time.process_time()
digit_samples, digit_path = unet.sample(16, generator=gen, trajectory=True)
seconds_full_chain = time.process_time() - tic
show_times = [round(f * T) for f in (1.0, 0.8, 0.6, 0.4, 0.3, 0.2, 0.1, 0.05, 0.0)]
by_time = dict(digit_path)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1, 2.2]})
plot.image_grid(dm.from_unit_range(digit_samples), shape, nrow=4, ax=axes[0], vmax=1.0,
                title=f"16 samples, {T} ancestral steps")
trajectory = torch.stack([by_time[t][:8] for t in show_times], 1).reshape(-1, D)  # (8 * 9, D)
plot.image_grid(dm.from_unit_range(trajectory), shape, nrow=len(show_times), ax=axes[1], vmax=1.0,
                title="denoising trajectories; columns t = " + ", ".join(map(str, show_times)))
fig.tight_layout()
plt.show()
print(f"full chain: {T} network evaluations per sample, {seconds_full_chain:.1f} s of CPU time for 16 samples")

# %% [markdown]
# The trajectories show the coarse-to-fine order of generation: for most of the chain the images
# are noise; the digit's rough shape appears around the middle, and the last few tenths of the chain
# only sharpen strokes.
#
# ## 6. Generative modelling as a sequence of supervised problems
#
# The lecture's central lesson: a hard unsupervised problem, "model $p(x)$", is turned into a
# *sequence of supervised problems*, each a plain regression or classification that a network
# learns from labelled pairs. Diffusion and the autoregressive models of Chapter 6 are two ways to
# choose the sequence. Diffusion makes the image progressively noisier and learns to take one step
# back (input: $x_t$; label: $x_{t-1}$, or the noise); an autoregressive model hides the image
# progressively, one pixel at a time in raster order, and learns to predict the next pixel from the
# ones before it (input: $x_{<i}$; label: $x_i$). Both generate by running their sequence from the
# empty end — all noise, or no pixels — to a full image. Below, the same test digit goes through
# both sequences (drawn with this chapter's data; the PixelCNN of Chapter 6 is the model that learns
# the second row).

# %%
digit = x_test[0:1]
ar_cuts = [round(f * D) for f in (0, 0.125, 0.3, 0.5, 0.7, 0.875, 1.0)]
diff_times = [T, round(0.6 * T), round(0.4 * T), round(0.25 * T), round(0.1 * T), round(0.02 * T), 0]
fixed_eps = torch.randn(1, D, generator=gen)
fig, axes = plt.subplots(2, len(ar_cuts), figsize=(12, 4.2))
for ax, t in zip(axes[0], diff_times):
    xt = dm.q_sample(digit, t, image_schedule, fixed_eps)
    ax.imshow(dm.from_unit_range(xt).reshape(shape), cmap="gray_r", vmin=0, vmax=1)
    ax.set_title(f"$x_{{{t}}}$", fontsize=10)
for ax, i in zip(axes[1], ar_cuts):
    shown = np.full(D, np.nan)
    shown[:i] = dm.from_unit_range(digit)[0, :i].numpy()
    ax.imshow(np.ma.masked_invalid(shown.reshape(shape)), cmap="gray_r", vmin=0, vmax=1)
    ax.set_facecolor("#f4c7a1")
    if i < D:
        r, c = divmod(i, shape[1])
        ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, ec="tab:red", lw=2))
    ax.set_title(f"$x_{{<{i}}}$" if i < D else "all pixels", fontsize=10)
for ax in axes.flat:
    ax.set_xticks([]), ax.set_yticks([])
axes[0, 0].set_ylabel("diffusion\nsupervised: $x_t \\to x_{t-1}$", fontsize=9)
axes[1, 0].set_ylabel("autoregressive\nsupervised: $x_{<i} \\to x_i$", fontsize=9)
fig.suptitle("Two sequences of supervised problems, generated left to right "
             "(red square: the next pixel to predict; orange: not yet generated)", fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# The two sequences differ in what each step can see. The autoregressive step sees part of the image
# exactly and must produce a full *distribution* over the next pixel (a 17-way softmax on digits),
# so its likelihood is exact; it needs one network evaluation per pixel, $D$ in all, in a fixed order.
# The diffusion step sees all pixels at once but blurred by noise, and its output can be a Gaussian
# because each step is small; the number of steps $T$ is a choice, independent of the image size,
# and section 10 shows how far it can be cut.
#
# ## 7. The score view
#
# The noise predictor has a second meaning. For any density, **Tweedie's formula**
# {cite:p}`efron2011tweedie` says that the posterior mean of a Gaussian-corrupted signal is one
# gradient step away from the observation: if $x_t=\sqrt{\bar\alpha_t}x_0+\sqrt{1-\bar\alpha_t}\varepsilon$,
# then $\mathbb E[\sqrt{\bar\alpha_t}x_0\mid x_t]=x_t+(1-\bar\alpha_t)\nabla_{x_t}\log q(x_t)$.
# Rearranged with the closed form,
#
# $$
# \nabla_{x_t}\log q(x_t)=-\frac{\mathbb E[\varepsilon\mid x_t]}{\sqrt{1-\bar\alpha_t}}
# \approx-\frac{\varepsilon_\theta(x_t,t)}{\sqrt{1-\bar\alpha_t}} ,
# $$
#
# so the noise predictor, trained by least squares to estimate $\mathbb E[\varepsilon\mid x_t]$, is
# a **score** estimate of the noised data density, one for every noise level
# {cite:p}`vincent2011connection,song2019generative`. Chapter 3 sampled an energy-based model with
# Langevin dynamics, $x\leftarrow x+\tfrac{\eta}{2}\nabla_x\log p(x)+\sqrt\eta\,z$, which needs
# exactly this gradient. The check below uses one-dimensional Gaussian data, where everything is
# exact: $\mathbb E[\varepsilon\mid x_t]$ in closed form, and the score from a finite difference of
# $\log q(x_t)$.

# %% tags=["nbval-check-output"]
m_1d, s2_1d, t_1d = -0.4, 0.6, toy_T // 3
ab_1d = toy_schedule.alpha_bar[t_1d]
x_1d = torch.linspace(-3, 3, 25, dtype=torch.float64)[:, None]
var_t = ab_1d * s2_1d + 1 - ab_1d  # q(x_t) = N(sqrt(ab) m, ab s2 + 1 - ab)
eps_posterior_mean = torch.sqrt(1 - ab_1d) * (x_1d - torch.sqrt(ab_1d) * m_1d) / var_t  # E[eps | x_t]
q_t = torch.distributions.Normal(torch.sqrt(ab_1d) * m_1d, var_t.sqrt())
h = 1e-5
finite_difference = (q_t.log_prob(x_1d + h) - q_t.log_prob(x_1d - h)) / (2 * h)
print("Tweedie score = finite-difference gradient of log q(x_t):",
      torch.allclose(dm.score_from_eps(x_1d, t_1d, eps_posterior_mean, toy_schedule), finite_difference, atol=1e-6))

# %% [markdown]
# On the toy, the learned score field (left, middle, drawn at one arrow scale: the score is larger
# at the smaller noise level, as $1/\sqrt{1-\bar\alpha_t}$ says) points from the noised points back towards the
# data. At this training budget it resolves little of the roll's shape — mostly it points towards
# the middle of the data, more strongly far out — which is the same underfitting that makes the
# samples fuzzy. Following it with annealed Langevin dynamics (right) — a few Langevin steps at each
# noise level, from the largest to the smallest, step size proportional to the noise variance, as in
# {cite:t}`song2019generative` — is a second sampler for the same network, with no reverse chain in
# sight.

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 4))
grid, gx, gy = plot.grid_points((-3, 3, -3, 3), 17)
score_times = [round(0.1 * toy_T), round(0.4 * toy_T)]
with torch.no_grad():
    scores = {t: dm.score_from_eps(grid, t, toy_model.eps(grid, t), toy_schedule) for t in score_times}
longest = max(sc.norm(dim=1).max().item() for sc in scores.values())  # one arrow scale for both panels
for ax, t in zip(axes[:2], score_times):
    noised = dm.q_sample(x_toy[:600], t, toy_schedule, generator=gen)
    score = scores[t]
    ax.scatter(*noised.T, s=2, alpha=0.4, color="tab:orange", label=f"data noised to t = {t}")
    ax.quiver(gx, gy, score[:, 0].reshape(gx.shape), score[:, 1].reshape(gx.shape), color="0.25",
              angles="xy", scale_units="xy", scale=longest / 0.35)
    ax.set_xlim(-3, 3), ax.set_ylim(-3, 3), ax.set_aspect("equal"), ax.set_xlabel("$x_1$"), ax.set_ylabel("$x_2$")
    ax.set_title(f"learned score $-\\varepsilon_\\theta/\\sqrt{{1-\\bar\\alpha_t}}$ at t = {t}")
    ax.legend(loc="lower left", fontsize=8, frameon=True)


@torch.no_grad()
def annealed_langevin(model, n, sweeps=3, scale=0.1, generator=None):
    """Langevin steps x += (η/2) score + sqrt(η) z at t = T..1, step size η = scale (1 − ᾱ_t)."""
    sch = model.schedule
    x = torch.randn(n, model.config.dims, generator=generator)
    for t in range(model.T, 0, -1):
        step_size = scale * (1 - sch.alpha_bar[t].item())
        for _ in range(sweeps):
            score = dm.score_from_eps(x, t, model.eps(x, t), sch)
            x = x + step_size / 2 * score + math.sqrt(step_size) * torch.randn(x.shape, generator=generator)
    return x


langevin_samples = annealed_langevin(toy_model, 1000, generator=gen)
q = toy_quality(langevin_samples)
toy_scatter(langevin_samples, axes[2], bounds=(-3, 3, -3, 3),
             title=f"annealed Langevin with the learned score\nprecision {q['precision']:.2f}, recall {q['recall']:.2f}")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 8. A likelihood: the variational bound in nats
#
# The reverse chain is a latent-variable model whose latents are $x_{1:T}$, and the forward process
# is a fixed encoder $q(x_{1:T}\mid x_0)$. Chapter 4's ELBO applies unchanged, and because both
# chains are Markov and Gaussian it splits into one term per step {cite:p}`ho2020ddpm`:
#
# $$
# -\log p_\theta(x_0)\le
# \underbrace{\mathrm{KL}\big(q(x_T\mid x_0)\,\|\,\mathcal N(0,I)\big)}_{L_T}
# +\sum_{t=2}^T\underbrace{\mathbb E_q\,\mathrm{KL}\big(q(x_{t-1}\mid x_t,x_0)\,\|\,p_\theta(x_{t-1}\mid x_t)\big)}_{L_{t-1}}
# \underbrace{-\ \mathbb E_q\log p_\theta(x_0\mid x_1)}_{L_0} .
# $$
#
# Each $L_{t-1}$ is a KL between two Gaussians with the same variance $\tilde\beta_t$, so it is
# $\lVert\tilde\mu_t-\mu_\theta\rVert^2/(2\tilde\beta_t)$: the weighted noise regression of
# section 4. $L_T$ has no parameters and is nearly zero. To put the number on the same scale as
# Chapter 4's digits — a probability of the **integer** image, in nats — genlib makes three choices,
# those of {cite:t}`ho2020ddpm`:
#
# * the $V$ grey levels ($V$ = {glue:text}`levels` here) are scaled to $[-1,1]$, $y=2x/(V-1)-1$, so
#   neighbouring levels are $\Delta=2/(V-1)$ apart;
# * the last step is a **discretised Gaussian** decoder: $P_\theta(x_0\mid x_1)$ is the mass that
#   $\mathcal N(\mu_\theta(x_1,1),\beta_1)$ puts on each pixel's bin $[y-\Delta/2,\,y+\Delta/2]$ (the end
#   bins extend to $\pm\infty$, so the $V$ masses sum to one), and $L_0=-\log P_\theta(x_0\mid x_1)$;
# * the sum over $t$ is estimated without bias by **stratified** Monte Carlo: the steps $2..T$ are cut
#   into at most `bound_strata` strata with log-spaced edges (the smallest $t$ get a stratum each),
#   one random $t$ per stratum and image, weighted by the stratum's size, on `bound_images` test
#   images. `benchmarks/diffusion_digits.py` computes every $t$ on the whole test split.
#
# The result is an upper bound on $-\log P_\theta(x)$ of the discrete image, comparable with the
# VAE's $-$ELBO and $-$IWAE of Chapter 4 (also bounds on a discrete likelihood) and with the
# uniform model's $D\log V$. One detail: the bound uses the network's mean $\mu_\theta$ as it is,
# while the sampler clips $\hat x_0$ to the data range (section 10); the bound is that of the
# unclipped model.

# %%
show(dm.Diffusion.bound)
board = compare.load_scoreboard(results.BOOK.parent / "results" / "scoreboard.json")
reference_nll = {row["family"].split(" (")[0]: float(np.median(nll)) for row in board["rows"]  # median over seeds
                 if (nll := compare.values(row, "test_nll_nats"))}


def measure_bound(model, name):
    """The stratified bound on the first bound_images test images: mean terms, standard error, CPU time."""
    tic = time.process_time()
    terms = model.bound(test.x[:bound_images], levels, t_samples=bound_strata, generator=gen)
    row = {k: v.mean().item() for k, v in terms.items()}
    row["se"] = terms["total"].std().item() / math.sqrt(bound_images)
    row["sigma_1"] = model.schedule.beta[1].sqrt().item()
    row["seconds"] = time.process_time() - tic
    print(f"{name}: {row['total']:.1f} ± {row['se']:.1f} nats per image ({metrics.nats_to_bpd(row['total'], D):.2f} bits/dim): "
          f"L_T {row['prior']:.2f}, sum of L_(t-1) {row['diffusion']:.1f}, L_0 {row['decoder']:.2f}; "
          f"sigma_1 = {row['sigma_1']:.3f}")
    return row


bin_width = 2 / (levels - 1)
naive_row = measure_bound(unet, f"{schedule} schedule")
uniform_nll = metrics.uniform_nats(D, levels)
print(f"uniform model: {uniform_nll:.1f} nats per image; half a bin: {bin_width / 2:.4f}")

# %% tags=["remove-input"]
glue("levels", levels, display=False)
glue("naive_bound", naive_row["total"], display=False)
glue("naive_bound_se", naive_row["se"], display=False)
glue("naive_l0", naive_row["decoder"], display=False)
glue("naive_sigma1", naive_row["sigma_1"], display=False)
glue("half_bin", bin_width / 2, display=False)
glue("half_bin_in_sigmas", bin_width / 2 / naive_row["sigma_1"], display=False)
glue("uniform_nll", uniform_nll, display=False)

# %% [markdown]
# With the naive schedule (the parameter `schedule`, linear by default) the bound is {glue:text}`naive_bound:.0f` ± {glue:text}`naive_bound_se:.0f`
# nats per image (± one standard error over the images) — no better than the uniform model's
# {glue:text}`uniform_nll:.0f`. Where is it lost? Write each term through the signal-to-noise ratio
# $\mathrm{SNR}_t=\bar\alpha_t/(1-\bar\alpha_t)$ of section 1. With $\sigma_t^2=\tilde\beta_t$ and
# the noise parameterisation, a line of algebra gives
#
# $$
# L_{t-1}=\tfrac12\Big(\frac{\mathrm{SNR}_{t-1}}{\mathrm{SNR}_t}-1\Big)\,\mathbb E\,\lVert\varepsilon-\varepsilon_\theta(x_t,t)\rVert^2
# \;\approx\;\tfrac12\,\big(\log\mathrm{SNR}_{t-1}-\log\mathrm{SNR}_t\big)\,\mathbb E\,\lVert\varepsilon-\varepsilon_\theta\rVert^2 ,
# $$
#
# so the bound charges half a nat per pixel per unit of squared noise error *per unit of
# $\log\mathrm{SNR}$* that the chain crosses {cite:p}`kingma2021variational` (the check below). Now look at the
# start of the chain. The linear schedule was designed for 256 grey levels: its
# $\sigma_1=\sqrt{\beta_1}$ = {glue:text}`naive_sigma1:.3f` sits {glue:text}`half_bin_in_sigmas:.0f` standard
# deviations inside half a bin of our {glue:text}`levels` levels ({glue:text}`half_bin:.4f`). So
# $L_0$ = {glue:text}`naive_l0:.2f` nats: the last step is free. But for every $t$ with
# $\sigma_t<\Delta/2$ the clean image can be read off $x_t$ by rounding each pixel to the nearest
# level, and the optimal noise estimate is then a sawtooth,
# $\mathbb E[\varepsilon\mid x_t]\approx(x_t-\sqrt{\bar\alpha_t}\,\mathrm{round}(x_t))/\sqrt{1-\bar\alpha_t}$,
# which jumps at every bin edge. A smooth network does not learn it; it misses $\varepsilon$ by
# about $\varepsilon$ itself, one unit per pixel, and pays about $D/2$ nats for every unit of
# $\log\mathrm{SNR}$ between $\log\mathrm{SNR}_1$ and the point where the noise reaches half a bin.
# The cumulative sum of the terms (below) shows where the bound accumulates.

# %% tags=["nbval-check-output"]
t_check_snr = torch.arange(2, T + 1)
snr = image_schedule.alpha_bar / (1 - image_schedule.alpha_bar)
weight = image_schedule.beta[t_check_snr] ** 2 / (2 * image_schedule.beta_tilde[t_check_snr] * image_schedule.alpha[t_check_snr]
                                                  * (1 - image_schedule.alpha_bar[t_check_snr]))
print("KL weight = (SNR_(t-1)/SNR_t - 1)/2 at every t:",
      torch.allclose(weight, (snr[t_check_snr - 1] / snr[t_check_snr] - 1) / 2, rtol=1e-9))


# %%
def cumulative_terms(model):
    """Mean L_(t-1) over the bound images at one t per log stratum, and the cumulative sum over t."""
    edges = dm.log_strata(T, bound_strata)
    mids = [(lo + hi - 1) // 2 for lo, hi in zip(edges[:-1], edges[1:])]
    sizes = torch.tensor([hi - lo for lo, hi in zip(edges[:-1], edges[1:])], dtype=torch.float64)
    terms = model.kl_terms(test.x[:bound_images], levels, mids, generator=gen).mean(0)  # (strata,)
    return np.array(edges[1:]) - 1, torch.cumsum(sizes * terms, 0).numpy()


def half_bin_time(sch):
    """The first t at which the noise sqrt(1 - abar_t) reaches half a bin."""
    return int(torch.nonzero(torch.sqrt(1 - sch.alpha_bar) >= bin_width / 2)[0])


naive_t, naive_cum = cumulative_terms(unet)
t_half_naive = half_bin_time(image_schedule)
lattice_cost_naive = float(naive_cum[np.searchsorted(naive_t, t_half_naive)])
log_snr = torch.log(snr)
predicted_naive = D / 2 * (log_snr[1] - dm.lattice_logsnr_max(levels)).item()
print(f"noise reaches half a bin at t = {t_half_naive}; terms up to there: {lattice_cost_naive:.0f} nats "
      f"(the D/2 per unit of log SNR estimate: {predicted_naive:.0f})")

# %% tags=["remove-input"]
glue("t_half_naive", t_half_naive, display=False)
glue("lattice_cost_naive", lattice_cost_naive, display=False)
glue("lattice_cost_fraction", lattice_cost_naive / naive_row["diffusion"], display=False)
glue("predicted_naive", predicted_naive, display=False)

# %% [markdown]
# Up to $t$ = {glue:text}`t_half_naive` — the steps before the noise reaches half a bin — the
# terms add up to {glue:text}`lattice_cost_naive:.0f` nats, {glue:text}`lattice_cost_fraction:.0%` of the
# sum, against the rough estimate $\tfrac D2(\log\mathrm{SNR}_1-\log\mathrm{SNR}_{\Delta/2})$ =
# {glue:text}`predicted_naive:.0f`. It is not the dropped weights of $L_{\text{simple}}$ (those cost a
# few hundredths of a bit per dimension on CIFAR-10 {cite:p}`ho2020ddpm`); it is a schedule that spends
# its first steps where our data has nothing left to denoise. The same terms also explain why a few
# uniformly drawn $t$ per image make a poor estimator: the mass sits in a small fraction of the steps,
# which the log strata give one stratum each.
#
# **The fix: a schedule matched to the lattice.** Start the chain where the noise is a fraction
# `bin_fraction` of a bin, $\sigma_1=$ `bin_fraction`$\cdot\Delta$, and let $\log\mathrm{SNR}_t$ fall on a
# straight line to the linear schedule's end (the `snr` schedule of section 1,
# {cite:t}`kingma2021variational`'s fixed schedule). Two things change. The steps where a network
# would have to learn the sawtooth are gone; in exchange the last step must jump a good part of a
# bin, and $L_0$ grows. And the weight $\tfrac12(\mathrm{SNR}_{t-1}/\mathrm{SNR}_t-1)$ is the same
# for every $t$, so $L_{\text{simple}}$ with uniformly drawn $t$ is, up to a constant factor, the
# bound itself: training and the likelihood now ask for the same thing. The model below is the same
# U-Net, trained on $L_{\text{simple}}$ for `fixed_epochs` epochs.

# %%
fixed_config = replace(image_config, schedule="snr", logsnr_max=dm.lattice_logsnr_max(levels, bin_fraction))


def train_fixed():
    model = dm.Diffusion(fixed_config)
    return model, train_model(model, x_train, None, fixed_epochs, 64, 2e-3, note=", snr schedule")


# with a checkpoint from `python -m genlib.train_family diffusion ...` (e.g. trained on a GPU), this model
# (the family's DDPM, the one Chapter 9 compares) is loaded instead of trained
fixed, _ = train_family.load_or_train(checkpoint, "diffusion", train_fixed, device=dev,
                                      expect={"dataset": dataset, "T": T, "width": width, "bin_fraction": bin_fraction})
fixed = fixed.to(dev)
fixed_row = measure_bound(fixed, f"snr schedule, sigma_1 = {bin_fraction} bin")
fixed_t, fixed_cum = cumulative_terms(fixed)

fig, ax = plt.subplots(figsize=(7.5, 3.8))
for (t_axis_, cum, row), name, color in [((naive_t, naive_cum, naive_row), f"{schedule} schedule", "C0"),
                                         ((fixed_t, fixed_cum, fixed_row), "snr schedule (lattice-matched)", "C1")]:
    ax.plot(t_axis_, cum, color=color, label=f"{name}: sum of $L_{{t-1}}$ {row['diffusion']:.0f}, $L_0$ {row['decoder']:.1f}")
ax.axvline(t_half_naive, color="C0", ls=":", lw=1)
ax.annotate(f"{schedule}: noise = half a bin\n(t = {t_half_naive})", (t_half_naive, 0.4 * naive_cum[-1]), xytext=(4, 0),
            textcoords="offset points", fontsize=8, color="C0")
ax.set_xscale("log"), ax.set_xlabel("step t (log scale)"), ax.set_ylabel("$\\sum_{s\\leq t} L_{s-1}$ (nats per image)")
ax.set_title("Where the bound accumulates", fontsize=10)
ax.legend(frameon=False, fontsize=8, loc="upper left")
fig.tight_layout()
plt.show()

# %% tags=["remove-input"]
glue("fixed_bound", fixed_row["total"], display=False)
glue("fixed_bound_se", fixed_row["se"], display=False)
glue("fixed_l0", fixed_row["decoder"], display=False)
glue("fixed_diffusion", fixed_row["diffusion"], display=False)
glue("fixed_sigma1", fixed_row["sigma_1"], display=False)
glue("pixelcnn_nll", reference_nll["gated PixelCNN"], display=False)
glue("vae_nll", reference_nll["VAE"], display=False)
glue("fixed_gap", fixed_row["total"] - reference_nll["gated PixelCNN"], display=False)

# %% [markdown]
# The lattice-matched model's bound is {glue:text}`fixed_bound:.1f` ± {glue:text}`fixed_bound_se:.1f` nats
# per image ($L_0$ = {glue:text}`fixed_l0:.1f`, $\sigma_1$ = {glue:text}`fixed_sigma1:.3f`), against
# {glue:text}`naive_bound:.0f` for the naive schedule. For scale, the scoreboard
# (`results/scoreboard.json`) holds the exact likelihood of Chapter 6's PixelCNN,
# {glue:text}`pixelcnn_nll:.1f` nats, and the VAE's bound, {glue:text}`vae_nll:.1f`: the diffusion bound is
# {glue:text}`fixed_gap:.0f` nats above the PixelCNN's. `benchmarks/diffusion_digits.py` gives both
# bounds over seeds and on the whole test split. The rest of the gap is in the middle of the chain,
# where the digits' shapes are decided, and in $L_0$; what the literature uses to close it —
# learned variances with a hybrid objective and importance-sampled $t$ {cite:p}`nichol2021improved`, a
# learned schedule with Fourier features of the input {cite:p}`kingma2021variational` — is not measured
# here. Of those, learned variances are the closest to this chapter's model: the network outputs, per
# pixel, an interpolation $\sigma_t^2=\exp\big(u\log\beta_t+(1-u)\log\tilde\beta_t\big)$ between the two
# natural choices, trained by the bound's own terms $L_{t-1}$ (with the mean held fixed) added with a
# small weight to $L_{\text{simple}}$, the *hybrid* objective, and the steps $t$ are drawn in proportion to
# the root mean square of their terms instead of uniformly {cite:p}`nichol2021improved`. genlib does not
# implement them, and a line of algebra says why little is to be gained here. For a given mean, the
# variance that minimises $L_{t-1}$ is $\sigma_t^2=\tilde\beta_t(1+r_t)$, where $r_t$ is the mean's squared
# error per pixel in units of $\tilde\beta_t$ {cite:p}`bao2022analytic`, and it saves
# $\tfrac12\big(r_t-\log(1+r_t)\big)\approx\tfrac14r_t^2$ nats per pixel against $\sigma_t^2=\tilde\beta_t$: second
# order in $r_t$. With the lattice-matched schedule $r_t$ is the step's $\log\mathrm{SNR}$ decrement times the
# noise error (the identity above), small at every one of the $T$ steps; with the naive schedule's
# sawtooth steps it is not, and there learned variances would recover part of the loss (not measured
# here). Likelihood and sample quality remain different questions
# (Chapter 1): section 10 samples the naive model, which was trained for samples, not for the bound.
#
# ## 9. Flow matching: straight paths and velocities
#
# Diffusion needs a schedule, a posterior, and a choice of objective. **Flow matching**
# {cite:p}`lipman2023flow,liu2023flow` keeps only the idea of a path from data to noise and a
# regression that follows it back. Interpolate on a straight line,
# $x_t=(1-t)\,x_0+t\,\varepsilon$ for $t\in[0,1]$, whose velocity is $\frac{d}{dt}x_t=\varepsilon-x_0$,
# and train a network on
#
# $$
# L_{\text{FM}}=\mathbb E_{t,x_0,\varepsilon}\big\lVert v_\theta(x_t,t)-(\varepsilon-x_0)\big\rVert^2 .
# $$
#
# Its minimiser $v^*(x,t)=\mathbb E[\varepsilon-x_0\mid x_t=x]$ is a velocity field that carries the
# distribution of noise at $t=1$ to the data at $t=0$; generating is integrating the ODE
# $dx/dt=v_\theta(x,t)$ backwards from a noise draw, here with Euler steps. No simulation is needed to
# train (like diffusion), and the same networks serve: the MLP for the toy, the U-Net for digits.

# %% [markdown]
# **Flow matching is Gaussian-path diffusion.** The straight path is a forward process too:
# $x_t=a_t x_0+b_t\varepsilon$ with $a_t=1-t$, $b_t=t$, a Gaussian $q(x_t\mid x_0)$ like the closed
# form of section 2 with a different pair of coefficients. Write $x_0=(x_t-t\varepsilon)/(1-t)$; then the
# optimal velocity is a noise predictor in disguise,
#
# $$
# v^*(x_t,t)=\mathbb E[\varepsilon\mid x_t]-\mathbb E[x_0\mid x_t]=\frac{\mathbb E[\varepsilon\mid x_t]-x_t}{1-t},
# $$
#
# and an Euler step of $dx/dt=v_\theta$ from $t$ to $s$ lands on
# $x_s=(1-s)\hat x_0+s\,\hat\varepsilon$: exactly the DDIM step of section 10 on this path. So flow
# matching and DDIM differ in the *path* ($a_t,b_t$ instead of $\sqrt{\bar\alpha_t},\sqrt{1-\bar\alpha_t}$)
# and in the *weighting of the regression over noise levels*, not in the sampler. Both identities are
# checked below on 1-D Gaussian data, where $\mathbb E[\varepsilon\mid x_t]$ is known in closed form.

# %% tags=["nbval-check-output"]
m_fm, s2_fm = 0.7, 0.3
x_fm = torch.linspace(-2, 2, 9, dtype=torch.float64)[:, None]
t_fm, s_fm = 0.6, 0.35


def fm_posterior(x, t):
    """E[eps | x_t] and E[x_0 | x_t] for x_t = (1 - t) x_0 + t eps, x_0 ~ N(m, s2) (Gaussian conditioning)."""
    a, b = 1 - t, t
    var = a**2 * s2_fm + b**2
    return b * (x - a * m_fm) / var, m_fm + a * s2_fm * (x - a * m_fm) / var


eps_mean, x0_mean = fm_posterior(x_fm, t_fm)
v_star = eps_mean - x0_mean
print("v* = (E[eps | x_t] - x_t) / (1 - t):", torch.allclose(v_star, (eps_mean - x_fm) / (1 - t_fm), atol=1e-12))
euler = x_fm - (t_fm - s_fm) * v_star
print("Euler step = DDIM step (1 - s) x0_hat + s eps_hat:", torch.allclose(euler, (1 - s_fm) * x0_mean + s_fm * eps_mean, atol=1e-12))

# %%
show(dm.FlowMatching.loss)
show(dm.FlowMatching.sample)

# %%
toy_flow = dm.FlowMatching(dm.FlowMatchingConfig.from_diffusion(toy_config))
train_model(toy_flow, x_toy, None, toy_epochs, 256, 5e-3)
flow = dm.FlowMatching(dm.FlowMatchingConfig.from_diffusion(image_config))
train_model(flow, x_train, None, epochs, 64, 2e-3)

fig, axes = plt.subplots(1, 3, figsize=(11, 3.8))
compare_steps = 20
toy_compare = {
    f"diffusion, ancestral, {compare_steps} steps": toy_model.sample(2000, steps=compare_steps, generator=gen),
    f"diffusion, DDIM, {compare_steps} steps": toy_model.sample(2000, steps=compare_steps, eta=0.0, generator=gen),
    f"flow matching, Euler, {compare_steps} steps": toy_flow.sample(2000, steps=compare_steps, generator=gen),
}
for ax, (name, s) in zip(axes, toy_compare.items()):
    q = toy_quality(s)
    toy_scatter(s, ax, bounds=(-3, 3, -3, 3), title=f"{name}\nprecision {q['precision']:.2f}, recall {q['recall']:.2f}")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 10. Fewer sampling steps, and what they cost
#
# Sampling with all $T$ steps costs $T$ network evaluations per image (section 5 printed the time).
# Two ways to take fewer, larger steps along an evenly spaced subsequence $T=\tau_{T'}>\dots>\tau_0=0$
# of $T'$ steps:
#
# * **ancestral on the subsequence**: treat $\bar\alpha_{\tau_i}$ as the schedule of a shorter chain
#   and take its Gaussian reverse steps, with that chain's posterior variance $\tilde\beta$;
# * **DDIM** {cite:p}`song2021ddim`: predict $\hat x_0$ from $\varepsilon_\theta$ and jump
#   deterministically, $x_s=\sqrt{\bar\alpha_s}\,\hat x_0+\sqrt{1-\bar\alpha_s}\,\varepsilon_\theta(x_t,t)$.
#
# Both are one function in genlib (`eta=1` ancestral, `eta=0` DDIM), with the same trained network:

# %%
show(dm.reverse_step)

# %% [markdown]
# What do fewer steps cost? First where the answer is exact: 1-D Gaussian data $\mathcal N(m,s^2)$,
# for which the optimal noise predictor $\mathbb E[\varepsilon\mid x_t]$ is known in closed form
# (section 7). With it, the full chain reproduces the data distribution (tested in
# `tests/test_diffusion.py`). With few steps, *both* samplers under-disperse: the sample variance
# falls below the data's.

# %% tags=["nbval-check-output"]
class GaussianOracle(torch.nn.Module):
    """The exact E[eps | x_t] for 1-D data N(m, s2), as a 'network' of (x_t, t/T)."""

    def __init__(self, m, s2, schedule_):
        super().__init__()
        self.m, self.s2, self.schedule = m, s2, schedule_
        self.dummy = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))

    def forward(self, xt, s):
        ab = self.schedule.at("alpha_bar", torch.round(s * self.schedule.T).long(), xt)
        return torch.sqrt(1 - ab) * (xt - torch.sqrt(ab) * self.m) / (ab * self.s2 + 1 - ab)


oracle_m, oracle_s2 = 1.5, 0.25
oracle = dm.Diffusion(dm.DiffusionConfig(dims=1, shape=None, net="mlp", T=T, schedule=schedule, width=4, clip=None)).double()
oracle.net = GaussianOracle(oracle_m, oracle_s2, oracle.schedule)
oracle_steps = sorted(set([1] + steps_grid + [T]))
x_T_1d = torch.randn(10_000, 1, generator=gen, dtype=torch.float64)
oracle_var = {(eta, s): oracle.sample(10_000, steps=s, eta=eta, x_T=x_T_1d, generator=gen).var().item()
              for eta in (1.0, 0.0) for s in oracle_steps}
print(f"data variance {oracle_s2}; sample variance by steps:")
for eta, name in [(1.0, "ancestral"), (0.0, "DDIM")]:
    print(f"  {name:9s}", ", ".join(f"{s}: {oracle_var[(eta, s)]:.2f}" for s in oracle_steps))
ab_T_1d = oracle.schedule.alpha_bar[T].item()
posterior_var_T = oracle_s2 * (1 - ab_T_1d) / (ab_T_1d * oracle_s2 + 1 - ab_T_1d)  # Var[x_0 | x_T]
print(f"one step: Var E[x_0 | x_T] = {oracle_s2 - posterior_var_T:.5f}; the sampler drops E Var[x_0 | x_T] = {posterior_var_T:.3f}")
# the deterministic path's exact end: y_0 - m = (y_T - m) s / sqrt(s^2 + rho_T^2), y = x / sqrt(abar), rho = sqrt((1 - abar) / abar)
rho_T_1d = math.sqrt((1 - ab_T_1d) / ab_T_1d)
exact_end = oracle_m + (x_T_1d / math.sqrt(ab_T_1d) - oracle_m) * math.sqrt(oracle_s2) / math.sqrt(oracle_s2 + rho_T_1d**2)
heun_error = {n: (oracle.sample_heun(10_000, n // 2, x_T=x_T_1d) - exact_end).abs().max().item() for n in (10, 50, 200)}
ddim_error = {n: (oracle.sample(10_000, steps=n, eta=0.0, x_T=x_T_1d) - exact_end).abs().max().item() for n in (10, 50, 200)}
print("largest error of the ODE's end point, by network evaluations:")
for name, err in [("DDIM (Euler)", ddim_error), ("Heun", heun_error)]:
    print(f"  {name:12s}", ", ".join(f"{n}: {e:.4f}" for n, e in err.items()))

# %% tags=["remove-input"]
glue("oracle_data_var", oracle_s2, display=False)
glue("oracle_fewest", steps_grid[0], display=False)
glue("oracle_anc_fewest", oracle_var[(1.0, steps_grid[0])], display=False)
glue("oracle_ddim_fewest", oracle_var[(0.0, steps_grid[0])], display=False)
glue("oracle_anc_full", oracle_var[(1.0, T)], display=False)
glue("oracle_ddim_err_50", ddim_error[50], display=False)
glue("oracle_heun_err_50", heun_error[50], display=False)
glue("oracle_ddim_err_10", ddim_error[10], display=False)
glue("oracle_heun_err_10", heun_error[10], display=False)

# %% [markdown]
# With {glue:text}`oracle_fewest` steps the ancestral samples have variance {glue:text}`oracle_anc_fewest:.2f`
# and DDIM's {glue:text}`oracle_ddim_fewest:.2f`, against the data's {glue:text}`oracle_data_var:.2f` (the full
# ancestral chain: {glue:text}`oracle_anc_full:.2f`). Large stochastic steps do not inject too much noise;
# they inject too little. The reason {cite:p}`bao2022analytic`: the true reverse step from $t$ to $s$ is
# not the Gaussian $q(x_s\mid x_t,x_0)$ with $x_0$ replaced by its estimate — it also carries the
# uncertainty that remains about $x_0$, $\operatorname{Var}[x_0\mid x_t]$, which the respaced
# $\tilde\beta$ ignores. With small steps that uncertainty is spread over many steps and hardly
# matters; with one step from $T$ to $0$ both samplers return $\mathbb E[x_0\mid x_T]$ and lose all of
# it, as the law of total variance $\operatorname{Var}x_0=\operatorname{Var}\mathbb E[x_0\mid x_t]+\mathbb E\operatorname{Var}[x_0\mid x_t]$
# says.
#
# DDIM is an ODE solver: in $y=x/\sqrt{\bar\alpha_t}$ and $\psi=\sqrt{(1-\bar\alpha_t)/\bar\alpha_t}$ its step
# is an Euler step of $dy/d\psi=\varepsilon_\theta(x,t)$ {cite:p}`song2021ddim`. A second-order method,
# Heun's {cite:p}`karras2022elucidating` (`Diffusion.sample_heun`: an Euler step, then the average of
# the slopes at both ends, two network evaluations per step), should reach the ODE's end point with
# fewer evaluations. For the Gaussian oracle the end point is known, and the last lines above give
# the errors: with 50 evaluations {glue:text}`oracle_heun_err_50:.4f` for Heun against
# {glue:text}`oracle_ddim_err_50:.4f` for DDIM, but with 10 evaluations {glue:text}`oracle_heun_err_10:.2f`
# against {glue:text}`oracle_ddim_err_10:.2f` — second order pays only once the steps follow the path.
#
# Now the digits, with the classifier-feature Fréchet distance and precision/recall of
# `genlib.metrics` (features from a small classifier trained on the same digits; the floor is the
# distance between the training and the test images, the best a sampler can hope for). For every
# step count we draw `n_quality` samples with each method and time them (CPU time). The x-axis counts
# network evaluations, so the comparison is at equal cost. (The full chain of $T$ steps would cost
# more CPU time than this whole chapter's budget allows at `n_quality` samples; the 1-D oracle above
# is the full-chain reference.)

# %%
floor = metrics.quality_floor(dataset)
reference = train.scaled()
quality = {"ancestral": [], "DDIM": [], "Heun (DDIM ODE)": [], "flow matching": []}
seconds_per_image = {name: [] for name in quality}
evaluations = {name: [] for name in quality}  # network evaluations per sample
grids = {}
for steps in steps_grid:
    heun_steps = max(1, steps // 2)  # two evaluations per Heun step
    for name, draw, nfe in [("ancestral", lambda s: unet.sample(n_quality, steps=s, eta=1.0, generator=gen), steps),
                            ("DDIM", lambda s: unet.sample(n_quality, steps=s, eta=0.0, generator=gen), steps),
                            ("Heun (DDIM ODE)", lambda s: unet.sample_heun(n_quality, max(1, s // 2), generator=gen), 2 * heun_steps),
                            ("flow matching", lambda s: flow.sample(n_quality, steps=s, generator=gen), steps)]:
        tic = time.process_time()
        samples = dm.from_unit_range(draw(steps)).cpu()
        evaluations[name].append(nfe)
        seconds_per_image[name].append((time.process_time() - tic) / n_quality)
        quality[name].append(metrics.sample_quality(samples, reference, dataset))
        grids[(name, steps)] = samples[:16]

fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
for i, name in enumerate(quality):
    fd, color = [q["frechet"] for q in quality[name]], f"C{i}"
    axes[0].plot(evaluations[name], fd, marker="o", color=color, label=name)
    axes[1].plot(1000 * np.array(seconds_per_image[name]), fd, marker="o", color=color, label=name)
    axes[2].plot(evaluations[name], [q["precision"] for q in quality[name]], marker="o", color=color, label=f"{name}: precision")
    axes[2].plot(evaluations[name], [q["recall"] for q in quality[name]], marker="x", ls=":", color=color, label=f"{name}: recall")
for ax in axes[:2]:
    ax.axhline(floor["frechet"], color="grey", ls="--", lw=1, label="floor (train vs test)")
    ax.set_ylim(0, None), ax.set_ylabel("Fréchet distance (classifier features)")
    ax.legend(frameon=False, fontsize=8)
axes[0].set_xscale("log"), axes[0].set_xlabel("network evaluations per sample (log scale)")
axes[0].set_xticks(steps_grid, [str(s) for s in steps_grid]), axes[0].minorticks_off()
axes[1].set_xlabel("CPU milliseconds per image")
axes[2].set_xscale("log"), axes[2].set_xticks(steps_grid, [str(s) for s in steps_grid]), axes[2].minorticks_off()
axes[2].set_xlabel("network evaluations (log scale)"), axes[2].set_ylabel("fraction"), axes[2].set_ylim(0, 1.05)
axes[2].legend(frameon=False, fontsize=6.5, ncol=2, loc="lower right")
axes[0].set_title("Quality against steps"), axes[1].set_title("Quality against time"), axes[2].set_title("Precision and recall")
fig.tight_layout()
plt.show()

fig, axes = plt.subplots(1, 4, figsize=(13, 3.4))
for ax, name in zip(axes, quality):
    plot.image_grid(grids[(name, steps_grid[0])], shape, nrow=4, ax=ax, vmax=1.0,
                    title=f"{name}\n{evaluations[name][0]} network evaluations")
fig.tight_layout()
plt.show()

# %% tags=["nbval-check-output"]
print(f"floor (train vs test): Fréchet {floor['frechet']:.1f}")
for name in quality:
    print(f"{name:15s} Fréchet by network evaluations",
          ", ".join(f"{n}: {q['frechet']:.0f}" for n, q in zip(evaluations[name], quality[name])))

# %% tags=["remove-input"]
glue("fd_floor", floor["frechet"], display=False)
glue("fd_steps_few", steps_grid[0], display=False)
glue("fd_steps_many", steps_grid[-1], display=False)
for key, name in [("anc", "ancestral"), ("ddim", "DDIM"), ("heun", "Heun (DDIM ODE)"), ("fm", "flow matching")]:
    glue(f"fd_{key}_few", quality[name][0]["frechet"], display=False)
    glue(f"fd_{key}_many", quality[name][-1]["frechet"], display=False)
    glue(f"fd_{key}_ratio", quality[name][0]["frechet"] / quality[name][-1]["frechet"], display=False)

# %% [markdown]
# Read the curves with the numbers. From {glue:text}`fd_steps_many` steps down to {glue:text}`fd_steps_few`,
# the Fréchet distance goes from {glue:text}`fd_anc_many:.0f` to {glue:text}`fd_anc_few:.0f` for ancestral
# sampling (a factor {glue:text}`fd_anc_ratio:.1f`), from {glue:text}`fd_ddim_many:.0f` to
# {glue:text}`fd_ddim_few:.0f` for DDIM ({glue:text}`fd_ddim_ratio:.1f`) and from {glue:text}`fd_fm_many:.0f`
# to {glue:text}`fd_fm_few:.0f` for flow matching ({glue:text}`fd_fm_ratio:.1f`); Heun's second-order
# steps on DDIM's ODE {cite:p}`karras2022elucidating`, at about the same number of network evaluations,
# go from {glue:text}`fd_heun_many:.0f` to {glue:text}`fd_heun_few:.0f` (at the fewest evaluations its two
# long steps overshoot, as the oracle's errors warned, and the last one evaluates the network at $t=0$,
# where it was never trained). The floor is {glue:text}`fd_floor:.1f`. Every sampler pays for large steps;
# one run of each is not enough to rank them, and `benchmarks/diffusion_digits.py` gives medians over
# seeds. The mechanism is the one the 1-D oracle showed — large steps return conditional means and
# lose the spread that $\operatorname{Var}[x_0\mid x_t]$ should have added — and the flow-matching
# column differs from DDIM's in the path and the training weights (section 9), not in the kind of
# step. The time axis is proportional to the step axis: every step costs one network evaluation,
# whichever the sampler.
#
# Two directions this chapter does not take. **Latent diffusion** {cite:p}`rombach2022high` runs
# the whole process in the latent space of a pretrained autoencoder (Chapter 4's idea with a
# sharper decoder), so each network evaluation is cheap and the diffusion model spends its capacity on
# content rather than on pixel detail. **Distillation** removes most of the steps instead: progressive
# distillation {cite:p}`salimans2022progressive` trains a student to take one step where its teacher
# took two, repeatedly, and consistency models {cite:p}`song2023consistency` train a network to map
# any point of a deterministic sampling trajectory (DDIM's ODE) straight to its end, for one- or few-step sampling.


# %% [markdown]
# ## 11. The continuous-time picture: SDEs, the probability-flow ODE and a likelihood
#
# Let the number of steps grow, $T\to\infty$, with $\beta_t=\beta(\tau)\,\Delta\tau$ for a continuous
# time $\tau=t/T\in[0,1]$ and a rate $\beta(\tau)$ (Chapter 7's $\tau$, the time of a continuous flow).
# Since $\sqrt{1-\beta_t}=1-\tfrac12\beta_t+O(\beta_t^2)$, the forward step
# $x_t=\sqrt{1-\beta_t}\,x_{t-1}+\sqrt{\beta_t}\,\varepsilon_t$ is, to first order, an Euler–Maruyama step
# of the **variance-preserving SDE** {cite:p}`song2021score`
#
# $$
# dx=-\tfrac12\beta(\tau)\,x\,d\tau+\sqrt{\beta(\tau)}\,dW_\tau ,
# $$
#
# with $W_\tau$ a Brownian motion ($dW_\tau$ is Gaussian with variance $d\tau$). It is linear, so its
# marginals are Gaussian: $x_\tau=e^{-\frac12\int_0^\tau\beta}\,x_0+\sqrt{1-e^{-\int_0^\tau\beta}}\,\varepsilon$,
# the closed form of section 2 with $\bar\alpha_t\approx e^{-\sum_{s\le t}\beta_s}$ (the product
# $\prod(1-\beta_s)$ and the exponential differ by $\tfrac12\sum\beta_s^2$ in the exponent, the first line of
# the check below).
#
# **Running it backwards.** A diffusion run backwards in time is again a diffusion
# {cite:p}`anderson1982reverse`; for this SDE the reverse is
#
# $$
# dx=\big[-\tfrac12\beta(\tau)\,x-\beta(\tau)\,\nabla_x\log p_\tau(x)\big]\,d\tau+\sqrt{\beta(\tau)}\,d\bar W_\tau ,
# $$
#
# integrated from $\tau=1$ down to $0$ ($d\tau<0$, $\bar W$ a Brownian motion in reversed time). The
# only unknown is the score of the noisy marginal, which section 7 read off the noise predictor,
# $\nabla\log p_\tau(x)\approx-\varepsilon_\theta(x,\tau)/\sqrt{1-\bar\alpha_\tau}$; an Euler–Maruyama
# step of it is, to first order, DDPM's ancestral step. Among all processes with the same marginals
# $p_\tau$ there is a deterministic one, the **probability-flow ODE** {cite:p}`song2021score`: drop the
# noise and halve the score term,
#
# $$
# \frac{dx}{d\tau}=-\tfrac12\beta(\tau)\big[x+\nabla_x\log p_\tau(x)\big] .
# $$
#
# (Its Fokker–Planck equation is the SDE's: the diffusion term $\tfrac12\beta\,\Delta p$ is written as
# the transport $-\nabla\cdot(p\cdot\tfrac12\beta\nabla\log p)$.) The check runs both, with many
# small steps, on section 10's 1-D Gaussian oracle, where the answers are known: the reverse SDE
# must return samples with the data's mean and variance, and the ODE must carry each $x_T$ to its
# exact end point.
#
# **DDIM is an Euler solver of this ODE.** Substitute $\varepsilon$ for the score and change variables
# to $y=x/\sqrt{\bar\alpha_\tau}$ and $\psi=\sqrt{(1-\bar\alpha_\tau)/\bar\alpha_\tau}$ (section 10's
# pair; $\psi=1/\sqrt{\mathrm{SNR}}$). With $\beta=-d\log\bar\alpha/d\tau$,
# $dy/d\tau=\tfrac12\beta\,\varepsilon/\sqrt{\bar\alpha(1-\bar\alpha)}$ and
# $d\psi/d\tau=\tfrac12\beta/\sqrt{\bar\alpha(1-\bar\alpha)}$, so the ODE is simply
#
# $$
# \frac{dy}{d\psi}=\varepsilon_\theta(x,\tau),
# $$
#
# and an Euler step from $\psi_t$ to $\psi_s$, $y_s=y_t+(\psi_s-\psi_t)\,\varepsilon_\theta$, multiplied by
# $\sqrt{\bar\alpha_s}$, is exactly the DDIM step $x_s=\sqrt{\bar\alpha_s}\,\hat x_0+\sqrt{1-\bar\alpha_s}\,\varepsilon_\theta$
# {cite:p}`song2021ddim,karras2022elucidating` — the third check. That is why Heun's method applies
# to it (section 10), and why DDIM's answer depends on the schedule only through the grid of
# $\psi$ it visits.

# %% tags=["nbval-check-output"]
sum_beta = image_schedule.beta[1:].sum().item()
print(f"log abar_T = {image_schedule.alpha_bar[T].log().item():.3f}; -sum beta = {-sum_beta:.3f}; "
      f"their gap {image_schedule.alpha_bar[T].log().item() + sum_beta:.3f} vs -sum beta^2 / 2 = "
      f"{-0.5 * (image_schedule.beta[1:] ** 2).sum().item():.3f}")
step_gap = (torch.sqrt(1 - image_schedule.beta[1:]) - (1 - image_schedule.beta[1:] / 2)).abs().max().item()
print(f"largest |sqrt(1 - beta_t) - (1 - beta_t / 2)| = {step_gap:.1e} (second order: max beta^2 / 8 = "
      f"{(image_schedule.beta[1:] ** 2).max().item() / 8:.1e})")

sde_gen = torch.Generator().manual_seed(3)
x_sde, x_ode = x_T_1d.clone(), x_T_1d.clone()
for t_ in range(T, 0, -1):  # T small steps of the reverse SDE and of the probability-flow ODE, beta(tau) dtau = beta_t
    b_, sd_ = oracle.schedule.beta[t_].item(), math.sqrt(1 - oracle.schedule.alpha_bar[t_].item())
    score_sde, score_ode = -oracle.eps(x_sde, t_) / sd_, -oracle.eps(x_ode, t_) / sd_
    x_sde = x_sde + b_ * (0.5 * x_sde + score_sde) + math.sqrt(b_) * torch.randn(x_sde.shape, generator=sde_gen, dtype=x_sde.dtype)
    x_ode = x_ode + 0.5 * b_ * (x_ode + score_ode)
print(f"reverse SDE: mean {x_sde.mean().item():.3f}, variance {x_sde.var().item():.3f} (data: {oracle_m}, {oracle_s2})")
print(f"probability-flow ODE: largest distance to the exact end point {(x_ode - exact_end).abs().max().item():.3f}, "
      f"variance {x_ode.var().item():.3f}")

ddim_gen = torch.Generator().manual_seed(4)
x_chk, e_chk = torch.randn(5, 3, generator=ddim_gen, dtype=torch.float64), torch.randn(5, 3, generator=ddim_gen, dtype=torch.float64)
t_a, s_a = 7 * T // 10, 4 * T // 10  # 700 and 400 at T = 1000
rho_ = lambda t_: math.sqrt((1 - image_schedule.alpha_bar[t_].item()) / image_schedule.alpha_bar[t_].item())
euler_rho = math.sqrt(image_schedule.alpha_bar[s_a].item()) * (x_chk / math.sqrt(image_schedule.alpha_bar[t_a].item())
                                                               + (rho_(s_a) - rho_(t_a)) * e_chk)
print("DDIM step = Euler step of dy/drho = eps:",
      torch.allclose(dm.reverse_step(x_chk, t_a, s_a, e_chk, image_schedule, eta=0.0), euler_rho, atol=1e-12))

# %% [markdown]
# **Four names for one regression.** Write the closed form as $x_t=a_t x_0+\sigma_t\varepsilon$ with
# $a_t=\sqrt{\bar\alpha_t}$, $\sigma_t=\sqrt{1-\bar\alpha_t}$ and $\mathrm{SNR}_t=a_t^2/\sigma_t^2$. A network may
# predict the noise $\varepsilon$, the clean image $x_0$, or the **velocity**
# $v=a_t\varepsilon-\sigma_t x_0$ {cite:p}`salimans2022progressive` (with $a_t=\cos\phi$, $\sigma_t=\sin\phi$ it is
# $dx_t/d\phi$, the velocity along a quarter circle, as flow matching's $v_\theta$ is along a straight
# line). Given $x_t$ each determines the others,
#
# $$
# \hat x_0=\frac{x_t-\sigma_t\hat\varepsilon}{a_t},\qquad
# \hat v=a_t\hat\varepsilon-\sigma_t\hat x_0,\qquad
# \hat\varepsilon=\sigma_t x_t+a_t\hat v,\qquad \hat x_0=a_t x_t-\sigma_t\hat v ,
# $$
#
# and so do their errors: $\lVert\hat x_0-x_0\rVert^2=\lVert\hat\varepsilon-\varepsilon\rVert^2/\mathrm{SNR}_t$
# and $\lVert\hat v-v\rVert^2=(1+1/\mathrm{SNR}_t)\,\lVert\hat\varepsilon-\varepsilon\rVert^2$. The
# three losses have the same minimiser at every $t$ and differ only in how they weight the noise
# levels — a function of $\mathrm{SNR}_t$, just as the bound's weight $\tfrac12(\mathrm{SNR}_{t-1}/\mathrm{SNR}_t-1)$
# of section 8 is {cite:p}`kingma2021variational`. Predicting $x_0$ stresses the noisy end (small SNR),
# predicting $\varepsilon$ the clean end, $v$ sits between. The check converts the lattice-matched
# model's $\hat\varepsilon$ on test digits at four noise levels.

# %% tags=["nbval-check-output"]
param_gen = torch.Generator().manual_seed(5)
x0_p = x_test[:64].double()
print(f"{'t':>5} {'log SNR':>8} {'eps error':>10} {'x0 error':>9} {'v error':>8}   (mean squared error per image)")
identities = True
for t_p in (T // 20, 3 * T // 10, 6 * T // 10, 9 * T // 10):  # 50, 300, 600, 900 at T = 1000
    e_p = torch.randn(x0_p.shape, generator=param_gen, dtype=torch.float64)
    ab_p = fixed.schedule.alpha_bar[t_p].item()
    a_p, s_p = math.sqrt(ab_p), math.sqrt(1 - ab_p)
    xt_p = a_p * x0_p + s_p * e_p
    with torch.no_grad():
        e_hat = fixed.eps(xt_p.float(), t_p).double()
    x0_hat = (xt_p - s_p * e_hat) / a_p
    v_true, v_hat = a_p * e_p - s_p * x0_p, a_p * e_hat - s_p * x0_hat
    err = {k: (p_ - q_).pow(2).sum(1).mean().item() for k, (p_, q_) in
           {"eps": (e_hat, e_p), "x0": (x0_hat, x0_p), "v": (v_hat, v_true)}.items()}
    snr_p = ab_p / (1 - ab_p)
    identities &= (torch.allclose(s_p * xt_p + a_p * v_hat, e_hat, atol=1e-9) and torch.allclose(a_p * xt_p - s_p * v_hat, x0_hat, atol=1e-9)
                   and math.isclose(err["x0"], err["eps"] / snr_p, rel_tol=1e-9) and math.isclose(err["v"], err["eps"] * (1 + 1 / snr_p), rel_tol=1e-9))
    print(f"{t_p:5d} {math.log(snr_p):8.1f} {err['eps']:10.1f} {err['x0']:9.2f} {err['v']:8.1f}")
print("conversions and error identities hold at every t:", identities)

# %% [markdown]
# **A likelihood from the ODE.** The probability-flow ODE is a continuous normalising flow
# (Chapter 7): it maps each $x$ to one $x_T$ and carries densities along, by the instantaneous change
# of variables $\frac{d}{d\tau}\log p_\tau(x_\tau)=-\nabla\cdot f(x_\tau,\tau)$ for $dx/d\tau=f$
# {cite:p}`grathwohl2019ffjord,song2021score`. In the $(y,\psi)$ coordinates above $f$ is $\varepsilon_\theta$,
# and at $D$ = {glue:text}`ode_dims` the divergence $\sum_i\partial\varepsilon_{\theta,i}/\partial x_i$ is
# exact and cheap: one pass of the network over $D$ copies of each image and one backward pass
# (`Diffusion.ode_log_density`). The ODE's density is continuous, so to compare it with the bound of
# section 8 on the same discrete scale genlib dequantises with the forward process's own first step:
# $x_1\sim q(x_1\mid x_0)$, and
#
# $$
# -\log P(x_0)\le\mathbb E_{q(x_1\mid x_0)}\big[-\log p^{\text{ODE}}_1(x_1)-\log P_\theta(x_0\mid x_1)\big]-H\big[q(x_1\mid x_0)\big],
# $$
#
# with the same discretised decoder as $L_0$ (`Diffusion.ode_bound`). The integral is solved with
# `ode_steps` Heun steps on a log-spaced grid of $\psi$ — and the answer depends on that number: a
# coarse solver does not follow the flow, and its "likelihood" is no bound at all (too few steps can
# even give a negative number of nats). The cell computes it on the first `ode_images` test images of
# the lattice-matched model at half and at all of `ode_steps`, beside the variational bound of the same images.

# %%
show(dm.Diffusion.ode_bound)
ode_x = test.x[:ode_images]
ode_rows = {}
for n_steps in sorted({max(1, ode_steps // 2), ode_steps}):
    tic = time.process_time()
    ode_terms = fixed.ode_bound(ode_x, levels, steps=n_steps, generator=torch.Generator().manual_seed(seed))
    ode_rows[n_steps] = {"total": ode_terms["total"].mean().item(),
                         "se": ode_terms["total"].std().item() / math.sqrt(ode_images),
                         "seconds": time.process_time() - tic}
bound_same = fixed.bound(ode_x, levels, t_samples=bound_strata, generator=gen)["total"]
for n_steps, row in ode_rows.items():
    print(f"ODE bound, {n_steps} Heun steps ({2 * n_steps} network passes over {D} copies of each image): "
          f"{row['total']:.1f} ± {row['se']:.1f} nats per image, {row['seconds']:.1f} s of CPU time")
# Heun is second order: doubling the steps divides the error by about four, so the limit is about
# full + (full - half) / 3 (Richardson extrapolation)
ode_half_, ode_full_ = ode_rows[min(ode_rows)]["total"], ode_rows[max(ode_rows)]["total"]
ode_limit = ode_full_ + (ode_full_ - ode_half_) / 3
print(f"extrapolated to infinitely many steps: {ode_limit:.1f}")
print(f"variational bound on the same {ode_images} images: {bound_same.mean().item():.1f} ± "
      f"{bound_same.std().item() / math.sqrt(ode_images):.1f}")

# %% tags=["remove-input"]
glue("ode_dims", D, display=False)
glue("ode_steps_half", min(ode_rows), display=False)
glue("ode_steps_full", max(ode_rows), display=False)
glue("ode_half", ode_rows[min(ode_rows)]["total"], display=False)
glue("ode_full", ode_rows[max(ode_rows)]["total"], display=False)
glue("ode_full_se", ode_rows[max(ode_rows)]["se"], display=False)
glue("ode_full_seconds", ode_rows[max(ode_rows)]["seconds"], display=False)
glue("ode_bound_same", bound_same.mean().item(), display=False)
glue("ode_images_n", ode_images, display=False)
glue("ode_limit", ode_limit, display=False)

# %% [markdown]
# With {glue:text}`ode_steps_full` Heun steps the ODE gives {glue:text}`ode_full:.1f` ±
# {glue:text}`ode_full_se:.1f` nats per image on these {glue:text}`ode_images_n` images
# ({glue:text}`ode_full_seconds:.0f` s of CPU time), against {glue:text}`ode_half:.1f` with
# {glue:text}`ode_steps_half` steps and the variational bound's {glue:text}`ode_bound_same:.1f` on the same
# images. The change between the two step counts says how far the solver is from converged: for a
# second-order method doubling the steps divides the error by about four, so the remaining error is
# about a third of that change, and the extrapolated limit is {glue:text}`ode_limit:.1f` (the rule assumes the
# solver is already in its second-order regime; `benchmarks/diffusion_digits.py --ode-images` checks it
# over seeds on more images). Unlike the variational bound it needs no
# sum over $T$ terms, but every evaluation costs $D$ network passes, and the ODE's density is that
# of the *deterministic* sampler, not of the ancestral chain the bound describes: two different models
# sharing one network {cite:p}`song2021score`.

# %% [markdown]
# ## 12. Conditioning and classifier-free guidance
#
# So far the models drew digits of whatever class came out. To ask for a *three*, give the network
# the label as a second input, $\varepsilon_\theta(x_t,t,y)$: genlib's U-Net adds a learned embedding of
# $y$ to its time embedding (`DiffusionConfig(classes=10)`). Trained on pairs $(x_0,y)$ with the same
# $L_{\text{simple}}$, it is a model of $p(x\mid y)$, and the same samplers draw from it.
#
# Conditioning alone is often too weak: the samples of a class are as varied — and as often
# ambiguous — as the model's $p(x\mid y)$. **Guidance** trades that variety for fidelity. In the score
# view (section 7) Bayes' rule gives $\nabla\log p(x_t\mid y)=\nabla\log p(x_t)+\nabla\log p(y\mid x_t)$;
# multiplying the classifier's term by $1+\gamma$ samples from a tilted distribution
# $\propto p(x_t)\,p(y\mid x_t)^{1+\gamma}$, whose mass moves to the images a classifier is surest about.
# **Classifier-free guidance** {cite:p}`ho2021classifierfree` needs no separate classifier: write
# $\nabla\log p(y\mid x_t)=\nabla\log p(x_t\mid y)-\nabla\log p(x_t)$, and use one network for both
# scores by replacing the label with a null label $\varnothing$ for a fraction of the training examples
# (label dropout, `label_dropout` = 0.1). With the score $-\varepsilon/\sqrt{1-\bar\alpha_t}$ the guided
# noise estimate is
#
# $$
# \tilde\varepsilon_\theta(x_t,t,y)=(1+\gamma)\,\varepsilon_\theta(x_t,t,y)-\gamma\,\varepsilon_\theta(x_t,t,\varnothing),
# $$
#
# with the guidance scale $\gamma\ge0$: $\gamma=0$ is the conditional model, the null label alone the
# unconditional one (both tested in `tests/test_diffusion.py`). The cost is a second network
# evaluation per step (genlib batches the two). The model below is the lattice-matched U-Net of
# section 8 with labels, trained for `guided_epochs` epochs; we draw `n_quality` samples, the same number
# of each class, by DDIM in 20 steps at every scale of `guidance_grid`, and measure the
# Fréchet distance and precision/recall against the training images, and the **label accuracy**: how
# often the feature network's classifier (the CNN whose features the Fréchet distance uses) names the
# class that was asked for.

# %%
show(dm.Diffusion.eps)
guided_config = replace(fixed_config, classes=10)
guided = dm.Diffusion(guided_config)
train_model(guided, (x_train, train.y), None, guided_epochs, 64, 2e-3, note=", snr schedule, labels")
feature_classifier = metrics.classifier(dataset, verbose=False)
guide_steps = min(20, T)
guide_labels = torch.arange(n_quality) % 10  # the same number of each class
guide_x_T = torch.randn(n_quality, D, generator=gen)  # one set of starting points for every scale
guidance_quality, guidance_grids = {}, {}
for scale in guidance_grid:
    guided_samples = dm.from_unit_range(guided.sample(n_quality, y=guide_labels, steps=guide_steps, eta=0.0,
                                                      x_T=guide_x_T, guidance=scale)).cpu()
    with torch.no_grad():
        predicted = feature_classifier(guided_samples).argmax(1)
    guidance_quality[scale] = {**metrics.sample_quality(guided_samples, reference, dataset),
                               "accuracy": (predicted == guide_labels).float().mean().item()}
    order = torch.argsort(guide_labels[:40], stable=True)  # four of each class, sorted by class
    guidance_grids[scale] = guided_samples[:40][order]

fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
scales = list(guidance_quality)
axes[0].plot(scales, [guidance_quality[g]["frechet"] for g in scales], marker="o", color="C0")
axes[0].axhline(floor["frechet"], color="grey", ls="--", lw=1, label="floor (train vs test)")
axes[0].set_xlabel("guidance scale $\\gamma$"), axes[0].set_ylabel("Fréchet distance (classifier features)")
axes[0].set_ylim(0, None), axes[0].legend(frameon=False, fontsize=8), axes[0].set_title("Quality", fontsize=10)
for key, marker, ls in [("precision", "o", "-"), ("recall", "x", ":"), ("accuracy", "s", "--")]:
    axes[1].plot(scales, [guidance_quality[g][key] for g in scales], marker=marker, ls=ls, label=key)
axes[1].set_xlabel("guidance scale $\\gamma$"), axes[1].set_ylabel("fraction"), axes[1].set_ylim(0, 1.05)
axes[1].legend(frameon=False, fontsize=8, loc="lower left"), axes[1].set_title("Fidelity against diversity", fontsize=10)
fig.tight_layout()
plt.show()

# %% tags=["nbval-check-output"]
for scale in scales:
    q = guidance_quality[scale]
    print(f"guidance {scale:3.1f}: Fréchet {q['frechet']:4.0f}, precision {q['precision']:.1f}, "
          f"recall {q['recall']:.1f}, label accuracy {q['accuracy']:.1f}")

# %% tags=["remove-input"]
best_scale = min(scales, key=lambda g: guidance_quality[g]["frechet"])
glue("guide_fd_zero", guidance_quality[scales[0]]["frechet"], display=False)
glue("guide_fd_best", guidance_quality[best_scale]["frechet"], display=False)
glue("guide_best_scale", best_scale, display=False)
glue("guide_fd_top", guidance_quality[scales[-1]]["frechet"], display=False)
glue("guide_top_scale", scales[-1], display=False)
glue("guide_zero_scale", scales[0], display=False)
for key in ("precision", "recall", "accuracy"):
    glue(f"guide_{key}_zero", guidance_quality[scales[0]][key], display=False)
    glue(f"guide_{key}_top", guidance_quality[scales[-1]][key], display=False)

# %% [markdown]
# In this run the label accuracy rises from {glue:text}`guide_accuracy_zero:.2f` at $\gamma$ =
# {glue:text}`guide_zero_scale` to {glue:text}`guide_accuracy_top:.2f` at $\gamma$ = {glue:text}`guide_top_scale`,
# and precision from {glue:text}`guide_precision_zero:.2f` to {glue:text}`guide_precision_top:.2f`, while recall
# falls from {glue:text}`guide_recall_zero:.2f` to {glue:text}`guide_recall_top:.2f`: guided samples are more
# recognisably the digit asked for and cover less of the data — the **quality–diversity trade-off**
# {cite:p}`ho2021classifierfree`. The Fréchet distance, which penalises both missing fidelity and missing
# variety, is lowest at $\gamma$ = {glue:text}`guide_best_scale` in this run ({glue:text}`guide_fd_best:.1f`,
# against {glue:text}`guide_fd_zero:.1f` unguided and {glue:text}`guide_fd_top:.1f` at the largest scale):
# some guidance helps this short-trained model, and too much costs the variety the distance also measures.
# `benchmarks/diffusion_digits.py` repeats the sweep over seeds. Move the slider to see the samples
# (four of each class, a row per class pair) at each scale; they were all drawn above, from the same
# starting noise, so the slider only shows them.

# %%
def draw_guidance(fig, scale):
    ax = fig.subplots()
    q = guidance_quality[scale]
    plot.image_grid(guidance_grids[scale], shape, nrow=8, ax=ax, vmax=1.0,
                    title=f"guidance scale {scale}: Fréchet {q['frechet']:.1f}, precision {q['precision']:.2f}, "
                          f"recall {q['recall']:.2f}, label accuracy {q['accuracy']:.2f}")
    fig.tight_layout()


widgets.live(draw_guidance, figsize=(7, 4.2),
             scale=ipywidgets.SelectionSlider(options=scales, value=scales[len(scales) // 2], description="γ"))

# %%
widgets.animate(draw_guidance, scales, figsize=(7, 4.2), interval=900)

# %% [markdown]
# ## 13. Interactive: the two chains, step by step
#
# Move the slider to choose a time $t$ (as a fraction of $T$). Left: the forward chain — test
# digits and the toy data noised to step $t$. Right: the reverse chain — the ancestral samples of
# sections 4 and 5 at the same step on their way from noise to data. At $t=T$ the two sides are
# both plain noise; at $t=0$ the left is data and the right is samples.

# %%
toy_by_time = dict(toy_path)
slider_fractions = [1.0, 0.7, 0.5, 0.35, 0.25, 0.15, 0.08, 0.0]
forward_eps_digits = torch.randn(8, D, generator=gen)
forward_eps_toy = torch.randn(len(x_toy), 2, generator=gen)


def draw_chains(fig, fraction):
    t_img, t_toy = round(fraction * T), round(fraction * toy_T)
    axes = fig.subplots(1, 4, gridspec_kw={"width_ratios": [1, 1, 1, 1]})
    forward_digits = dm.q_sample(x_test[:8], t_img, image_schedule, forward_eps_digits)
    forward_toy = dm.q_sample(x_toy, t_toy, toy_schedule, forward_eps_toy)
    plot.image_grid(dm.from_unit_range(forward_digits), shape, nrow=2, ax=axes[0], vmax=1.0,
                    title=f"forward: digits at t = {t_img}")
    toy_scatter(forward_toy, axes[1], bounds=(-3.5, 3.5, -3.5, 3.5), title=f"forward: toy at t = {t_toy}")
    plot.image_grid(dm.from_unit_range(by_time[t_img][:8]), shape, nrow=2, ax=axes[2], vmax=1.0,
                    title=f"reverse: samples at t = {t_img}")
    toy_scatter(toy_by_time[t_toy], axes[3], bounds=(-3.5, 3.5, -3.5, 3.5), title=f"reverse: toy at t = {t_toy}")
    fig.tight_layout()


widgets.live(draw_chains, figsize=(13, 3.4),
             fraction=ipywidgets.SelectionSlider(options=slider_fractions, value=0.25, description="t / T"))

# %% tags=["hide-input"]
# first frame: data and finished samples; then the chain from noise (t = T) back to t = 0
widgets.animate(draw_chains, [0.0] + slider_fractions, figsize=(13, 3.4), interval=700)

# %% tags=["nbval-check-output"]
print("shapes: digit trajectory", len(digit_path), "states of", tuple(digit_path[0][1].shape),
      "| toy trajectory", len(toy_path), "states of", tuple(toy_path[0][1].shape))

# %% [markdown]
# ## Summary
#
# * The forward process adds Gaussian noise in $T$ small steps; its closed form
#   $q(x_t\mid x_0)=\mathcal N(\sqrt{\bar\alpha_t}x_0,(1-\bar\alpha_t)I)$ makes every $x_t$ one line away.
# * The reverse process is a chain of Gaussians with learned means. The lecture's stripped-down
#   algorithm regresses $x_{t-1}$ on $x_t$; DDPM regresses the noise $\varepsilon$ instead — the same
#   optimum (the posterior mean), reparameterised, with a better-conditioned target.
# * Generative modelling becomes a sequence of supervised problems; diffusion and autoregressive
#   models are two choices of the sequence (noise levels vs pixel order).
# * The noise predictor is a score, $\nabla\log q(x_t)\approx-\varepsilon_\theta/\sqrt{1-\bar\alpha_t}$
#   (Tweedie), which Langevin dynamics can follow.
# * The ELBO splits into per-step KLs, each half a nat per pixel per unit of squared noise error and
#   of $\log\mathrm{SNR}$; with a discretised last step it bounds the discrete likelihood in nats,
#   on the same scale as Chapter 4. A schedule built for 256 grey levels wastes its first steps on
#   17-level data; one matched to the lattice, with $\log\mathrm{SNR}$ falling linearly, makes
#   $L_{\text{simple}}$ the bound's own weighting.
# * Fewer steps: every sampler pays for large steps, because large steps return conditional means
#   and drop $\operatorname{Var}[x_0\mid x_t]$ — the samples under-disperse. Flow matching is
#   Gaussian-path diffusion: its Euler step is DDIM's step on a straight path.
# * In continuous time the forward process is the VP SDE; running it backwards needs only the score,
#   and the probability-flow ODE has the same marginals without noise. DDIM is Euler's method on it,
#   in $y=x/\sqrt{\bar\alpha}$ against $\psi=1/\sqrt{\mathrm{SNR}}$; the ODE also gives a likelihood, if it
#   is solved finely enough. Predicting $\varepsilon$, $x_0$ or $v$ is one regression weighted
#   differently over $\mathrm{SNR}$.
# * Classifier-free guidance mixes a conditional and an unconditional noise estimate from one
#   network trained with label dropout; its scale trades diversity (recall) for fidelity (precision,
#   label accuracy).
#
# ## Exercises
#
# **1. The closed form by induction.** Show that if $x_{t-1}=\sqrt{\bar\alpha_{t-1}}x_0+\sqrt{1-\bar\alpha_{t-1}}\,\bar\varepsilon$
# with $\bar\varepsilon\sim\mathcal N(0,I)$, then one more forward step gives the closed form at $t$.
# Why does the process keep the variance of unit-variance data at one?
#
# ```{admonition} Solution
# :class: dropdown
# $x_t=\sqrt{\alpha_t}\sqrt{\bar\alpha_{t-1}}x_0+\sqrt{\alpha_t(1-\bar\alpha_{t-1})}\,\bar\varepsilon+\sqrt{1-\alpha_t}\,\varepsilon_t$.
# The two noise terms are independent Gaussians, so their sum is Gaussian with variance
# $\alpha_t-\alpha_t\bar\alpha_{t-1}+1-\alpha_t=1-\bar\alpha_t$, and $\sqrt{\alpha_t\bar\alpha_{t-1}}=\sqrt{\bar\alpha_t}$.
# If $\operatorname{Var}[x_0]=1$ (per coordinate), $\operatorname{Var}[x_t]=\bar\alpha_t+(1-\bar\alpha_t)=1$:
# the shrink factor $\sqrt{1-\beta_t}$ removes exactly the variance that the noise adds. Section 2's
# cell checks the closed form against the iterated chain; `test_closed_form_matches_the_iterated_forward_process`
# in `tests/test_diffusion.py` does it for both schedules.
# ```
#
# **2. Why predict the noise?** For the stripped-down objective, show that
# $\mathbb E\lVert f-x_{t-1}\rVert^2=\lVert f-\tilde\mu_t\rVert^2+D\tilde\beta_t$ given $(x_t,x_0)$. At $t=2$,
# with the linear schedule and $T=1000$, how large is the irreducible part compared with the
# noise-prediction loss of a perfect model?
#
# ```{admonition} Solution
# :class: dropdown
# Given $(x_t,x_0)$, $x_{t-1}\sim\mathcal N(\tilde\mu_t,\tilde\beta_tI)$, so expanding the square
# around $\tilde\mu_t$ kills the cross term and leaves $\lVert f-\tilde\mu_t\rVert^2+D\tilde\beta_t$.
# The first part is what the network can reduce; it equals
# $\frac{\beta_t^2}{\alpha_t(1-\bar\alpha_t)}\lVert\varepsilon-\varepsilon_\theta\rVert^2$ (section 4's check). At
# $t=2$ (not $t=1$, where $\tilde\beta_1=0$ and there is nothing irreducible), $\beta_1$ and $\beta_2$ both close to $10^{-4}$ give
# $\tilde\beta_2=\beta_2(1-\bar\alpha_1)/(1-\bar\alpha_2)$, close to $\beta_2/2$, and a weight
# $\beta_2^2/(\alpha_2(1-\bar\alpha_2))$ close to $\beta_2/2$ as well: an error of one unit in $\varepsilon$ changes the
# stripped-down loss per coordinate by about as much as its irreducible noise. The regression signal
# at small $t$ is drowned in the target's own noise, while the noise-prediction target has unit
# scale at every $t$ and no irreducible part given $(x_t, x_0)$.
# ```
#
# **3. DDIM with a perfect network.** Show that if $\varepsilon_\theta(x_t,t)$ equals the true noise
# of a fixed $x_0$ (so $\hat x_0=x_0$ at every step), DDIM returns $x_0$ exactly, for any number of
# steps. Does ancestral sampling?
#
# ```{admonition} Solution
# :class: dropdown
# With $\hat x_0=x_0$ and $\varepsilon_\theta=\varepsilon$ the DDIM step gives
# $x_s=\sqrt{\bar\alpha_s}x_0+\sqrt{1-\bar\alpha_s}\,\varepsilon$, a point of the same straight line in
# $(x_0, \varepsilon)$ coordinates; the last step, $s=0$, gives $\sqrt{\bar\alpha_0}x_0=x_0$. Ancestral
# sampling adds fresh noise $\sigma z$ at every step, but its final step ($s=0$) has $\sigma=0$ and
# returns $\hat x_0$, which the oracle still gets right, so it also returns $x_0$ — the difference
# shows only with an imperfect network. `test_ddim_with_the_oracle_returns_x0` checks DDIM with 50,
# 10 and 3 steps.
# ```

# %% tags=["remove-input"]
def lattice_excess(schedule_name, T_):
    """log SNR_1 of a schedule and the rough D/2 (log SNR_1 - log SNR_half-bin) cost of the steps below half a bin."""
    sch = dm.NoiseSchedule(dm.make_betas(schedule_name, T_))
    top = math.log(sch.alpha_bar[1].item() / (1 - sch.alpha_bar[1].item()))
    return top, D / 2 * max(0.0, top - dm.lattice_logsnr_max(levels))


for key, (name_, T_) in {"lin1000": ("linear", 1000), "lin200": ("linear", 200), "cos1000": ("cosine", 1000)}.items():
    top, excess = lattice_excess(name_, T_)
    glue(f"ex4_{key}_logsnr", top, display=False)
    glue(f"ex4_{key}_excess", excess, display=False)
glue("ex4_half_bin_logsnr", dm.lattice_logsnr_max(levels), display=False)

# %% [markdown]
# **4. More steps, better bound?** Rerun the chapter with `-p T 200` and with `-p schedule cosine`.
# Before you do, predict from section 8's weights what happens to the naive model's variational bound.
# What happens to the quality curves, and why can the two disagree?
#
# ```{admonition} Solution
# :class: dropdown
# Section 8: each term costs about $\tfrac12$ nat per pixel per unit of squared noise error per unit
# of $\log\mathrm{SNR}$, and below half a bin (there $\log\mathrm{SNR}$ = {glue:text}`ex4_half_bin_logsnr:.1f`
# for the digits) a smooth network errs by about one unit per pixel. So the wasted part of the bound is
# about $\tfrac D2(\log\mathrm{SNR}_1-\log\mathrm{SNR}_{\Delta/2})$, and only the schedule's first point
# matters. The linear schedule with $T=1000$ starts at $\log\mathrm{SNR}_1$ = {glue:text}`ex4_lin1000_logsnr:.1f`
# (about {glue:text}`ex4_lin1000_excess:.0f` nats wasted). With $T=200$ genlib rescales $\beta_1$ by five,
# $\log\mathrm{SNR}_1$ = {glue:text}`ex4_lin200_logsnr:.1f` and the waste falls to about
# {glue:text}`ex4_lin200_excess:.0f` nats: fewer steps, *better* bound. The cosine schedule starts even
# higher, {glue:text}`ex4_cos1000_logsnr:.1f`, so its bound should be worse (about
# {glue:text}`ex4_cos1000_excess:.0f`). The number of steps matters little by itself: for large $T$ the sum
# approaches an integral over $\log\mathrm{SNR}$ that depends only on its end points
# {cite:p}`kingma2021variational`. The quality curves measure something else — whether samples look
# like digits to a classifier — and are decided at moderate noise, where all three schedules spend
# plenty of steps; a model can have a poor bound and good samples, as section 8's naive model does.
# ```

# %% tags=["remove-cell", "nbval-check-output"]
widgets.check_live("08_diffusion")  # moves every control of every live widget above: see genlib/widgets.py
