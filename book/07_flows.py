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
# # Normalizing flows
#
# Every family so far gave something up. Chapter 2's mixtures have exact densities but are weak (and on
# integer images their score is the same dequantisation bound as this chapter's flows); the VAE of
# Chapter 4 is flexible but only bounds its own likelihood; the autoregressive models of Chapter 6
# compute $\log p(x)$ exactly but generate one pixel at a time. The taxonomy of the lectures
# {cite:p}`johnson2022generative,goodfellow2016nips` puts a second kind of model next to the
# autoregressive ones among the densities that *can be computed*: NICE, RealNVP, Glow and FFJORD,
# the **normalizing flows** {cite:p}`dinh2015nice,dinh2017realnvp,kingma2018glow,papamakarios2021normalizing`.
#
# A flow is a generator $x = g(z)$ from Gaussian noise to data, like a VAE's decoder, with one
# difference: $g$ is **invertible**, and $z$ has as many dimensions as $x$. Then no integral over
# latents is needed. The density of $x$ follows from the density of $z$ by the change-of-variables
# formula, exactly, and a sample costs one pass through $g$. The price is paid in architecture: every
# layer must be invertible, keep the dimension, and have a Jacobian determinant that is cheap to
# compute. This chapter derives the formula (in one dimension, then in $D$), builds the layers that
# make it cheap (coupling layers), watches a trained flow push data towards a Gaussian layer by layer,
# fits the digits, where a flow beats the mixtures of Chapter 2 by a wide margin, and then builds the
# autoregressive flows (MAF, IAF) from Chapter 6's MADE, Glow's pieces, and a learned dequantisation.
#
# ## Parameters
#
# `toy` is the 2-D data set of section 4, trained for `toy_epochs` passes. The digits flow of
# sections 5–6 has `n_layers` coupling layers whose networks are `hidden` units wide; `coupling`
# picks affine (RealNVP) or additive (NICE) layers; it trains for at most `epochs` passes with early
# stopping on the validation loss. `dataset="mnist5k"` runs the image sections on the offline 28x28
# MNIST subset (256 levels). `checkpoint` names a file written by `python -m genlib.train_family flow`
# (the same digits flow, trained outside the notebook, e.g. on a GPU): section 6 then loads it instead
# of training, and the rest of the chapter runs unchanged.

# %% tags=["parameters"]
device = "cpu"          # "auto", "cpu", "cuda" or "mps"
dataset = "digits"      # "digits" (8x8, 17 levels) or "mnist5k" (28x28, 256 levels, offline)
toy = "moons"           # 2-D data: moons, rings, 8gaussians, spiral, swissroll
toy_epochs = 40         # passes over the 2,000 toy points for each 2-D flow
epochs = 50             # digits flow: passes at most (early stopping on validation)
n_layers = 8            # M, coupling layers of the image flow
hidden = 128            # width of each coupling network
coupling = "affine"     # "affine" (RealNVP) or "additive" (NICE)
temperatures = [1.0, 0.7]  # σ_z: samples start from z ~ N(0, σ_z² I); σ_z < 1 trades diversity for cleaner images
timing_images = 256     # images per batch when timing MAF and IAF (section 8; the smoke profile cuts it)
checkpoint = ""         # a file from genlib.train_family: load the digits flow, skip its training
seed = 0

# %% tags=["hide-input"]
import math
import time
from dataclasses import replace

import ipywidgets
import matplotlib
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import torch
from torch.autograd.functional import jacobian

from myst_nb import glue

import genlib
from genlib import checks, data, diagrams, flows, metrics, plot, results, train_family, widgets
from genlib.train import check_epochs, fit

dev = genlib.device(device)
gen = genlib.seed_everything(seed)
data.check_dataset(dataset, ("digits", "mnist5k"))
data.check_dataset(toy, data.TOYS)
check_epochs(epochs), check_epochs(toy_epochs)
checks.positive_int("n_layers", n_layers), checks.positive_int("hidden", hidden)
checks.positive_int("timing_images", timing_images)
checks.choice("coupling", coupling, flows.COUPLINGS)
if not isinstance(temperatures, (list, tuple)) or not temperatures:
    raise ValueError(f"temperatures must be a non-empty list of positive numbers, got {temperatures!r}")
for t in temperatures:
    checks.positive("temperature", t)


show = genlib.show_source  # prints a genlib function's source, to read next to its equation


# %% [markdown]
# ## 1. Change of variables in one dimension
#
# Let $z$ have a density $p_Z$ and let $f$ be a strictly increasing, differentiable map with
# $z = f(x)$. The events $\{X\le x\}$ and $\{Z\le f(x)\}$ are the same event, so their
# probabilities agree, $F_X(x) = F_Z(f(x))$. Differentiating both sides,
#
# $$
# p_X(x) = p_Z\big(f(x)\big)\, f'(x), \qquad
# \log p_X(x) = \log p_Z\big(f(x)\big) + \log f'(x).
# $$
#
# For a decreasing $f$ the same argument gives $|f'(x)|$. The factor $f'(x)$ is the bookkeeping of
# probability mass: a small interval $[x, x+dx]$ is mapped to an interval of length $f'(x)\,dx$,
# and both hold the same mass. Where $f$ *stretches* ($f'>1$), $x$ receives more density than its
# image $z$ has. So a flow that maps the data into a standard normal $p_Z=\mathcal N(0,1)$ must
# stretch the crowded regions of the data and squeeze the empty ones. Read the other way,
# $x = f^{-1}(z)$ is a sampler: draw $z\sim\mathcal N(0,1)$ and invert.
#
# genlib's `MonotoneWarp` is such a map, built by hand: a line plus a few $\tanh$ bumps with
# non-negative heights,
# $f(x) = a x + b + \sum_{j=1}^{J} \gamma_j \tanh\big((x - c_j)/w_j\big)$ with $a>0$, $\gamma_j\ge 0$, $w_j > 0$. Its derivative
# is positive everywhere, and its log-derivative is the log-determinant of the map:

# %%
show(flows.MonotoneWarp._map_and_slope)
show(flows.MonotoneWarp.forward)

# %% [markdown]
# We fit it by maximum likelihood, $\max \frac1N \sum_n \log p_X(x^{(n)})$, to the first
# coordinate of the `8gaussians` toy: five peaks of different heights. The `Flow` class chains
# bijections under a standard normal base; here the chain has one layer, and `genlib.train.fit`
# (Adam on minibatches) does the rest.

# %%
x1d = data.toy("8gaussians", 2000, seed=seed)[:, :1]  # (2000, 1)
x1d_val = data.toy("8gaussians", 1000, seed=seed + 1)[:, :1]
warp_flow = flows.Flow(layers=[flows.MonotoneWarp(1, n_bumps=8)])
warp_untrained = flows.evaluate_nll(warp_flow, x1d_val).nats  # before any step: the identity map, p_X = N(0, 1)
warp_history = fit(warp_flow, flows.batch_loss, x1d, x1d_val, epochs=150, batch_size=500, lr=0.05,
                   generator=gen, progress=False)
print(f"1-D flow: validation NLL {warp_untrained:.2f} nats per point before training (the identity map), "
      f"{warp_history.val[-1]:.2f} after {warp_history.epochs} epochs")

# %%
grid1 = torch.linspace(-4, 4, 801).unsqueeze(1)  # (801, 1)
warp = warp_flow.layers[0]
with torch.no_grad():
    z_grid, log_slope = warp(grid1)
    density1 = warp_flow.log_prob(grid1).exp()
    z_data = warp(x1d)[0]
fig, axes = plt.subplots(1, 3, figsize=(12, 3.3))
axes[0].hist(x1d.squeeze().numpy(), bins=120, density=True, color="0.75", label="data")
axes[0].plot(grid1.squeeze(), density1, color="C0", label=r"$p_X(x) = p_Z(f(x))\,f'(x)$")
axes[0].set(xlabel="$x$", ylabel="density", title="data and the flow's density")
axes[0].legend(frameon=False, fontsize=8, loc="upper left")
axes[1].plot(grid1.squeeze(), z_grid.squeeze(), color="C1")
axes[1].set(xlabel="$x$", ylabel="$z = f(x)$", title="the learned map: steep where data crowd")
axes[2].hist(z_data.squeeze().numpy(), bins=60, density=True, color="0.75", label="$f(x)$, data")
zz = torch.linspace(-4, 4, 200)
axes[2].plot(zz, torch.exp(-zz**2 / 2) / math.sqrt(2 * math.pi), color="C2", label=r"$\mathcal{N}(0, 1)$")
axes[2].set(xlabel="$z$", ylabel="density", title="the data mapped to z")
axes[2].legend(frameon=False, fontsize=8, loc="upper left")
plt.tight_layout()
plt.show()

# %% [markdown]
# The map (middle) is steep on each peak and flat between them; pushed through it, the five peaks
# become one bell (right). The density on the left is $\mathcal N(f(x);0,1)\,f'(x)$ and nothing
# else: no normalising constant was computed, yet it integrates to one. We check that, and that the
# hand-written $\log f'(x)$ equals the derivative autograd computes:

# %% tags=["nbval-check-output"]
autograd_slope = torch.autograd.functional.jacobian(lambda v: warp(v.unsqueeze(1))[0].sum(), grid1.squeeze(1))
print(f"integral of p_X over [-4, 4]: {float(torch.trapezoid(density1, grid1.squeeze())):.3f}")
print("log f'(x) equals autograd's:", torch.allclose(log_slope, autograd_slope.log(), atol=1e-5))
x_back, _ = warp.inverse(z_grid)
print("inverse by bisection recovers x:", torch.allclose(x_back, grid1, atol=1e-4))

# %% [markdown]
# This map has no inverse in closed form; `MonotoneWarp.inverse` finds $x$ by bisection, sixty
# evaluations of $f$ per sample. In one dimension that is cheap. The layers of the next sections
# are designed so that the inverse is one evaluation, in any dimension.
#
# ## 2. Change of variables in $D$ dimensions
#
# For an invertible, differentiable $f:\mathbb R^D\to\mathbb R^D$ the same mass argument, applied to
# a small box around $x$, says that the box is mapped to a parallelepiped whose volume is
# $|\det J_f(x)|$ times the box's, where $J_f(x) = \partial f(x)/\partial x$ is the $D\times D$
# Jacobian. Hence
#
# $$
# p_X(x) = p_Z\big(f(x)\big)\,\big|\det J_f(x)\big| ,\qquad
# \log p_X(x) = \log p_Z\big(f(x)\big) + \log\big|\det J_f(x)\big| .
# $$
#
# A flow builds $f$ as a composition of simple layers, $f = f_M\circ\dots\circ f_1$, with
# $h_0 = x$, $h_m = f_m(h_{m-1})$ and $z = h_M$. The chain rule multiplies the Jacobians, the
# determinant of a product is the product of determinants, and the log turns it into a sum:
#
# $$
# \log p_X(x) = \log \mathcal N\big(z; 0, I\big) + \sum_{m=1}^{M} \log\Big|\det
# \frac{\partial h_m}{\partial h_{m-1}}\Big| .
# $$
#
# Training maximises this over the data; sampling runs the chain backwards,
# $x = f_1^{-1}(\cdots f_M^{-1}(z))$ with $z\sim\mathcal N(0,I)$. The name: the forward direction
# *normalizes* the data (turns them into a standard normal), and the inverse *flows* the
# Gaussian into the data.

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(9, 2.6))
diagrams.draw_flow_chain(ax)
plt.show()

# %% [markdown]
# **Why the determinant must be cheap.** For a general network, $\log|\det J|$ needs the whole
# Jacobian — $D$ backward passes, one per output — and then an $O(D^3)$ factorisation, for every
# training image at every step. For the 64 pixels of a digit that is already slow (we time it in
# section 6); for a 256x256 colour image, $D = 3\cdot256^2$, it is out of the question. The
# requirements on each layer are therefore: invertible, dimension-preserving, a cheap inverse,
# a cheap log-determinant, and still expressive. Triangular Jacobians meet the middle ones: the
# determinant of a triangular matrix is the product of its diagonal.
#
# ## 3. Coupling layers
#
# A **coupling layer** {cite:p}`dinh2015nice,dinh2017realnvp` splits the coordinates with a binary
# mask $\mathbb 1_A$ (1 on a set $A$ of kept coordinates) into a kept part $x_A$ and the rest $x_B$. The kept part passes through
# unchanged and parameterises an elementwise affine map of the rest:
#
# $$
# z_A = x_A,\qquad z_B = x_B\odot \exp\big(s(x_A)\big) + t(x_A),
# $$
#
# where $s$ and $t$ are *any* neural networks (they are never inverted). Ordering the coordinates
# as $(A, B)$, the Jacobian is block lower-triangular,
#
# $$
# \frac{\partial z}{\partial x} = \begin{pmatrix} I & 0 \\[2pt]
# \dfrac{\partial z_B}{\partial x_A} & \operatorname{diag}\big(e^{s(x_A)}\big)\end{pmatrix},
# \qquad \log\Big|\det\frac{\partial z}{\partial x}\Big| = \sum_{d\in B} s_d(x_A),
# $$
#
# whatever the complicated block $\partial z_B/\partial x_A$ is. The inverse is as cheap: $z_A=x_A$
# gives back the inputs of $s$ and $t$, so $x_B = \big(z_B - t(z_A)\big)\odot e^{-s(z_A)}$. With
# $s\equiv 0$ the layer is NICE's **additive coupling**, whose determinant is 1 (it preserves
# volume). genlib bounds the log-scale, $s = s_{\max}\tanh(\hat s/s_{\max})$, so that no single
# layer can stretch a coordinate by more than $e^{s_{\max}}$, and starts every layer at the
# identity (the networks' last layer is zero).

# %%
fig, ax = plt.subplots(figsize=(9, 4.2))
diagrams.draw_coupling_layer(ax)
plt.show()
show(flows.AffineCoupling.forward)
show(flows.AffineCoupling.inverse)

# %% [markdown]
# Let us look at the Jacobians themselves, computed by autograd, for a randomly initialised
# coupling layer on $D=8$ coordinates (mask: first half kept), for two layers with alternating
# masks, and for four.

# %%
def random_coupling_stack(n, dims=8, seed_=0):
    g = torch.Generator().manual_seed(seed_)
    stack = flows.Flow(layers=[flows.AffineCoupling(flows.make_mask("half", dims, k), hidden=16)
                               for k in range(n)])
    with torch.no_grad():
        for p in stack.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g))
    return stack.double().eval()


x8 = torch.randn(8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
stacks = {n: random_coupling_stack(n) for n in (1, 2, 4)}
jacobians = {n: jacobian(lambda v, s=s: s(v.unsqueeze(0))[0].squeeze(0), x8) for n, s in stacks.items()}
fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.3))
vmax = max(float(J.abs().max()) for J in jacobians.values())
norm = matplotlib.colors.LogNorm(vmin=1e-3, vmax=vmax)  # one log scale for the three panels; exact zeros white
for ax, (n, J) in zip(axes, jacobians.items()):
    im = ax.imshow(np.ma.masked_equal(J.abs().numpy(), 0), cmap="viridis", norm=norm)
    ax.set_facecolor("white")
    ax.set(title=f"{n} coupling layer{'s' if n > 1 else ''}: |∂z/∂x|", xlabel="input coordinate $x_j$",
           xticks=range(0, 8), yticks=range(0, 8))
axes[0].set_ylabel("output coordinate $z_i$")
fig.colorbar(im, ax=axes, shrink=0.8, label="|Jacobian entry| (white: exactly 0)")
plt.show()

# %% [markdown]
# One layer (left): the top-left block is the identity (kept coordinates), the top-right block is
# zero (kept outputs ignore the rest), the bottom-right block is diagonal — a triangular matrix.
# One layer alone is a weak model: half of the coordinates never change, and the others change
# only elementwise. A second layer with the **mask flipped** transforms the other half, given the
# first; after a few layers every output depends on every input (right) and the Jacobian is dense,
# yet its determinant is still the product of the layers' cheap ones. That is why the masks
# alternate (or a permutation shuffles the coordinates between layers); section 4 shows what goes
# wrong when they do not. The identities, checked:

# %% tags=["nbval-check-output"]
for n, J in jacobians.items():
    _, log_det = stacks[n](x8.unsqueeze(0))
    print(f"{n} layer(s): sum of the layers' log-dets equals log|det J| from autograd:",
          torch.allclose(log_det[0], torch.linalg.slogdet(J)[1], atol=1e-10))
J1, kept = jacobians[1], flows.make_mask("half", 8, 0).bool()
print("one layer: Jacobian triangular:", bool(torch.all(J1.triu(1) == 0)),
      "| kept block is the identity:", torch.allclose(J1[kept][:, kept], torch.eye(4, dtype=torch.float64)))
print("inverse(forward(x)) == x:", torch.allclose(stacks[4].inverse(stacks[4](x8.unsqueeze(0))[0])[0][0], x8))

# %% [markdown]
# ## 4. Flows on 2-D data
#
# On a 2-D toy the mask is just "keep $x_1$" or "keep $x_2$". We train eight affine coupling layers
# (alternating), each with a two-hidden-layer network of 64 units, on 2,000 points of the toy, and
# a second flow with the same layers that keeps $x_1$ in *every* layer.

# %%
x_toy, x_toy_val = data.toy(toy, 2000, seed=seed), data.toy(toy, 1000, seed=seed + 1)


def train_toy(**overrides):
    model = flows.Flow(flows.FlowConfig.toy(**overrides))
    tic = time.perf_counter()
    history = fit(model, flows.batch_loss, x_toy.to(dev), x_toy_val.to(dev), epochs=toy_epochs, batch_size=256,
                  lr=5e-3, device=dev, generator=gen, progress=False)
    print(f"{model.config.n_layers} layers, alternate={model.config.alternate}: {history.epochs} epochs in "
          f"{time.perf_counter() - tic:.1f} s")
    return model.cpu().eval(), history


toy_flow, toy_history = train_toy()
fixed_flow, fixed_history = train_toy(alternate=False)

# %%
bounds = (-4, 4, -4, 4)
with torch.no_grad():
    toy_samples = toy_flow.sample(2000, generator=gen)
    fixed_samples = fixed_flow.sample(2000, generator=gen)
fig, axes = plt.subplots(1, 4, figsize=(15, 3.6), layout="constrained")
plot.scatter(x_toy, ax=axes[0], title=f"{toy}: 2,000 training points", bounds=bounds)
plot.scatter(toy_samples, ax=axes[2], title="flow samples (one pass each)", bounds=bounds, color="C1")
density_grid, gx_, gy_ = plot.grid_points(bounds, 120)
with torch.no_grad():  # the two densities on one colour scale, so that their heights can be compared
    toy_densities = [m.log_prob(density_grid).exp().reshape(gx_.shape).numpy() for m in (toy_flow, fixed_flow)]
density_norm = matplotlib.colors.Normalize(0, max(float(d.max()) for d in toy_densities))
for ax, dens, title in zip(axes[[1, 3]], toy_densities, ("flow density (alternating masks)", "same mask in every layer")):
    mesh = ax.pcolormesh(gx_, gy_, dens, cmap="viridis", norm=density_norm, shading="auto")
    ax.set(xlim=bounds[:2], ylim=bounds[2:], aspect="equal", title=title, xlabel="$x_1$", ylabel="$x_2$")
fig.colorbar(mesh, ax=axes[[1, 3]], shrink=0.9, label="density $p(x)$ (one scale for both panels)")
plt.show()

# %% [markdown]
# The alternating flow puts its density on the data and its samples look like the training
# points, although a few samples land in the gaps between the parts of the data, a limitation we
# return to in section 8. The flow that keeps $x_1$ in every layer (right) is a failure we can predict
# from the formula: its $z_1 = x_1$ exactly, so the marginal of $x_1$ is the standard normal
# whatever the training does, and all the layers can shape is $x_2$ given $x_1$. Validation
# log-likelihoods, and the check that the learned density integrates to one over a grid:

# %% tags=["nbval-check-output"]
points, gx, gy = plot.grid_points((-8, 8, -8, 8), 300)
with torch.no_grad():
    grid_density = toy_flow.log_prob(points).exp()
cell = (gx[0, 1] - gx[0, 0]) * (gy[1, 0] - gy[0, 0])
print(f"integral of the learned density over [-8, 8]^2: {float(grid_density.sum()) * cell:.3f}")
with torch.no_grad():
    nll = {name: flows.evaluate_nll(model, x_toy_val).nats for name, model in
           (("standard normal (no layers)", flows.Flow(layers=[])), ("alternating masks", toy_flow),
            ("same mask in every layer", fixed_flow))}
for name, value in nll.items():
    print(f"validation NLL, {name:28}: {value:.1f} nats per point")

# %% [markdown]
# ### The data pushed layer by layer towards the Gaussian
#
# `Flow.trajectory` returns $h_0=x, h_1,\dots,h_M=z$. Each coupling layer moves the points along
# one axis only (the one its mask does not keep), by an amount that depends on the other axis; the
# colour of a point is its polar angle $\operatorname{atan2}(x_2, x_1)$ in the space where it started
# (the data for the top row, the base for the bottom row), so that the deformation can be tracked.
# The bottom row runs the same chain backwards: Gaussian samples pulled through $f_M^{-1}$, then
# $f_{M-1}^{-1}$, and so on, until they are samples of the model. Both rows are drawn in the same
# spaces, column by column: the column $h_m$ shows the data after $m$ layers (top) and the base samples
# after $M-m$ inverse layers (bottom), which live in the same space as $h_m$.

# %%
with torch.no_grad():
    x_shown = x_toy[::2]  # 1,000 points from all of the data (the toy lists its parts in order)
    forward_path = toy_flow.trajectory(x_shown)
    z_base = torch.randn(1000, 2, generator=gen)
    backward_path = toy_flow.inverse_trajectory(z_base)
M = len(toy_flow.layers)
colour_data = torch.atan2(x_shown[:, 1], x_shown[:, 0]).numpy()
colour_base = torch.atan2(z_base[:, 1], z_base[:, 0]).numpy()
shown = [0, 2, 4, 6, M]
fig, axes = plt.subplots(2, len(shown), figsize=(2.6 * len(shown), 5.6), sharex=True, sharey=True)
for col, m in enumerate(shown):
    h, g_ = forward_path[m].numpy(), backward_path[M - m].numpy()  # both in the space of h_m
    axes[0, col].scatter(h[:, 0], h[:, 1], c=colour_data, cmap="hsv", s=2)
    axes[0, col].set_title(f"data in $h_{{{m}}}$" + (" = x" if m == 0 else " = z" if m == M else ""))
    axes[1, col].scatter(g_[:, 0], g_[:, 1], c=colour_base, cmap="hsv", s=2)
    axes[1, col].set_title(f"N(0, I) after {M - m} inverse" if m < M else "z ~ N(0, I)")
for ax in axes.flat:
    ax.set(xlim=(-4, 4), ylim=(-4, 4), aspect="equal")
for ax in axes[1]:
    ax.set_xlabel("first coordinate")
for ax in axes[:, 0]:
    ax.set_ylabel("second coordinate")
plt.tight_layout()
plt.show()

# %% tags=["remove-input"]
with torch.no_grad():
    z_toy = forward_path[-1]
glue("toy_z_mean_norm", float(z_toy.mean(0).norm()), display=False)
glue("toy_z_std_min", float(z_toy.std(0).min()), display=False)
glue("toy_z_std_max", float(z_toy.std(0).max()), display=False)

# %% [markdown]
# Read the columns from left to right: the two parts of the data are sheared and stretched until, in
# $h_M = z$ (top right), they cover the middle of the plane with standard deviations between
# {glue:text}`toy_z_std_min:.2f` and {glue:text}`toy_z_std_max:.2f` per axis. It is not yet a
# Gaussian cloud: the two parts of the data still lie one above the other as horizontal bands (the
# colours are stratified by height, where a Gaussian sample, bottom right, is coloured by angle all
# around its centre), and the edge of the cloud is ragged. The bottom row, read from right to left,
# shows the consequence: the Gaussian samples that fall where the data's bands meet are pulled back
# into the region between the two parts, where the data have no points.
#
# **Interactive.** Step through the layers: the slider picks $m$; the left panel shows the data
# after $m$ layers, $h_m$; the right panel shows Gaussian samples after $m$ inverse layers. (In
# JupyterLab the slider is live; the book shows the same frames as an animation.)

# %% tags=["nbval-ignore-output", "hide-input"]
def draw_layers(fig, m):
    axes = fig.subplots(1, 2)
    for ax, path, colour, title in ((axes[0], forward_path, colour_data, f"data after {m} layers: $h_{{{m}}}$"),
                                    (axes[1], backward_path, colour_base, f"N(0, I) after {m} inverse layers")):
        h = path[m].numpy()
        ax.scatter(h[:, 0], h[:, 1], c=colour, cmap="hsv", s=3)
        ax.set(xlim=(-4, 4), ylim=(-4, 4), aspect="equal", title=title, xlabel="first coordinate",
               ylabel="second coordinate")
    fig.tight_layout()


widgets.live(draw_layers, figsize=(8, 4), m=ipywidgets.IntSlider(min=0, max=M, step=1, value=0))

# %% tags=["hide-input"]
widgets.animate(draw_layers, list(range(M + 1)), figsize=(8, 4), interval=700)

# %% [markdown]
# ## 5. Flows on images: dequantisation and the logit
#
# A flow is a continuous density; the digits are integers $x\in\{0,\dots,V-1\}^D$ with $V=17$.
# Fitting a continuous density to integer points is ill-posed: the density can pile up on the
# lattice points without limit. Chapter 2's remedy applies unchanged. Dequantise,
# $y = (x+u)/V$ with $u\sim\mathcal U[0,1)^D$, fit a density $p(y)$ on the unit cube, and report
#
# $$
# \log P(x) \;\ge\; \mathbb E_u\big[\log p\big((x+u)/V\big)\big] - D\log V ,
# $$
#
# a lower bound on the log-probability of the integer image {cite:p}`theis2016note`. A flow on the
# unit cube meets a second problem: its base is a Gaussian on all of $\mathbb R^D$. RealNVP's
# preprocessing {cite:p}`dinh2017realnvp` maps the cube to $\mathbb R^D$ by a logit of a slightly
# squeezed pixel, itself a bijection whose log-determinant must be counted:
#
# $$
# \tilde y_d = \operatorname{logit}(\bar y_d),\quad \bar y_d = \xi + (1-2\xi)\,y_d,\qquad
# \log\Big|\det\frac{\partial \tilde y}{\partial y}\Big| = \sum_d \big[\log(1-2\xi) - \log \bar y_d - \log(1-\bar y_d)\big].
# $$
#
# So the number we report for one image is, with every term spelled out,
#
# $$
# \underbrace{\log\mathcal N\big(z;0,I\big) + \sum_m \log\Big|\det\frac{\partial h_m}{\partial h_{m-1}}\Big|
# + \log\Big|\det\frac{\partial \tilde y}{\partial y}\Big|}_{\log p(y)\ \text{(`Flow.log_density`)}} - D\log V ,
# $$
#
# averaged over draws of $u$ (a sample of the bound). The logit is the first layer of genlib's image
# flows, so `Flow.log_density` includes its Jacobian, and `Flow.log_prob` adds the noise and the
# $-D\log V$ (through `genlib.metrics.discrete_log_prob`). The logit maps $[0,1]$ onto
# $[\operatorname{logit}\xi, \operatorname{logit}(1-\xi)]$, so the Gaussian mass beyond that range
# is wasted: the discrete model then sums to less than one, which only makes the bound conservative.

# %%
show(flows.Logit.forward)
show(flows.Flow.log_prob)

# %%
splits = {name: data.images(dataset, name) for name in ("train", "val", "test")}
train, val, test = splits["train"], splits["val"], splits["test"]
D, V, shape = train.dims, train.levels, train.shape
config = flows.FlowConfig(dims=D, shape=shape, levels=V, n_layers=n_layers, hidden=hidden, coupling=coupling)
settings = flows.TrainConfig(epochs=epochs)
print(f"{dataset}: D = {D} pixels, V = {V} levels; train/val/test = {len(train)}/{len(val)}/{len(test)} images")
print(config)
print(settings)

# %% tags=["nbval-check-output"]
probe_flow = flows.Flow(config).eval()
x_probe = test.x[:4]
g_a, g_b = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
y_probe = (x_probe.float() + torch.rand(x_probe.shape, generator=g_b)) / V
print("log_prob = log p(y) - D log V:",
      torch.allclose(probe_flow.log_prob(x_probe, g_a), probe_flow.log_density(y_probe) - D * math.log(V), atol=1e-4))
print(f"uniform model: {metrics.uniform_nats(D, V):.1f} nats per image = "
      f"{metrics.nats_to_bpd(metrics.uniform_nats(D, V), D):.2f} bits/dim")

# %% [markdown]
# **What happens without dequantisation.** To see the failure rather than take it on trust, we
# train the same flow for a few epochs on $y = x/V$ exactly, without noise, and score the noiseless
# training images by the formula one would be tempted to use, $-\log p(x/V) + D\log V$ (the density
# at the lattice point times the cell volume $V^{-D}$). We leave out ActNorm here: its data-dependent
# start divides each pixel by its spread in the first batch plus $10^{-3}$, and a border pixel that
# is 0 in every image of that batch would be multiplied by a thousand, which makes this short run
# unstable. Next to that score we put the honest dequantised bound of the same model.

# %%
def no_noise_loss(model, batch):
    return -model.log_density(batch[0].float() / V).mean()


cheat = flows.Flow(replace(config, actnorm=False))  # ActNorm would scale constant pixels by 1 / 1e-3
tic = time.perf_counter()
cheat_history = fit(cheat, no_noise_loss, train.x.to(dev), epochs=min(epochs, 8), batch_size=settings.batch_size,
                    lr=settings.lr, device=dev, generator=gen, progress=False)
with torch.no_grad():
    cheat.eval()
    cheat_score = float(-cheat.log_density(train.x.float().to(dev) / V).mean()) + D * math.log(V)
    cheat_train_bound = flows.evaluate_nll(cheat, train.x.to(dev), draws=4, generator=gen).nats
    cheat_val = flows.evaluate_nll(cheat, val.x.to(dev), draws=4, generator=gen).nats
print(f"trained without noise ({cheat_history.epochs} epochs, {time.perf_counter() - tic:.1f} s):")
print(f"  -log p(x/V) + D log V on the noiseless training images: {cheat_score:.0f} nats")
print(f"  dequantised bound, same model: training images {cheat_train_bound:.0f} nats, "
      f"validation images {cheat_val:.0f} nats")
glue("cheat_score", cheat_score, display=False)
glue("cheat_train_bound", cheat_train_bound, display=False)
glue("cheat_val", cheat_val, display=False)

# %% [markdown]
# The noiseless score, {glue:text}`cheat_score:.0f` nats per image, looks excellent: better than the
# honestly trained flow of section 6 and the PixelCNN of Chapter 6 (compare the table in section 6).
# It is not a likelihood of anything. The flow has learned to pile its density onto the lattice points
# $x/V$, and a density evaluated at a point says nothing about the mass of the cell around it; the
# same model's honest bound is {glue:text}`cheat_train_bound:.0f` nats on the very same training
# images and {glue:text}`cheat_val:.0f` on the validation images, far worse than the flow of section 6.
# Trained longer, the noiseless score keeps falling without limit while the bound does not follow.
# Continuous likelihoods of discrete data are only meaningful through the bound.
#
# ## 6. A flow on the digits
#
# The digits flow: the logit, then $M$ blocks of [ActNorm, affine coupling]. **ActNorm**
# {cite:p}`kingma2018glow` is a per-pixel affine map $h\mapsto (h-\mu)\odot e^{-\log\sigma}$ whose
# parameters are first set from a batch of data (so each coupling sees standardised inputs) and then
# learned; its log-determinant is $-\sum_d\log\sigma_d$. The masks are **checkerboards** that
# alternate between the two colours of the 8x8 board, so every layer transforms 32 pixels given the
# other 32 (the conditioner is an MLP that sees all of the kept pixels, not only the neighbours). With 1,000 training images, the coupling networks overfit quickly:
# dropout in the networks, a little weight decay and early stopping on the validation bound keep
# that in check.

# %%
def train_digit_flow():
    model = flows.Flow(config)
    return model, fit(model, flows.batch_loss, train.x.to(dev), val.x.to(dev), epochs=settings.epochs,
                      batch_size=settings.batch_size, lr=settings.lr, weight_decay=settings.weight_decay,
                      patience=settings.patience, device=dev, generator=gen, progress=False)


tic = time.perf_counter()
# trained elsewhere (python -m genlib.train_family flow ...) when `checkpoint` is set: load, do not train
digit_flow, history = train_family.load_or_train(checkpoint, "flow", train_digit_flow, device=dev, expect={
    "dataset": dataset, "n_layers": n_layers, "hidden": hidden, "coupling": coupling})
train_seconds = sum(history.seconds) if checkpoint else time.perf_counter() - tic
if not checkpoint:
    print(f"trained: {history.epochs} epochs in {train_seconds:.1f} s")
print(f"{sum(p.numel() for p in digit_flow.parameters()):,} parameters; best validation bound {history.best:.1f} nats "
      f"(epoch {history.best_epoch + 1})")
fig, ax = plt.subplots(figsize=(6, 3.2))
plot.history(history, ax=ax, ylabel="−log P(x) bound (nats/image)", title=f"{dataset} flow training")
ax.axhline(metrics.uniform_nats(D, V), color="0.5", ls="--", lw=1)
ax.text(1, metrics.uniform_nats(D, V) - 3, "uniform model", va="top", fontsize=8, color="0.4")
ax.set_ylim(top=metrics.uniform_nats(D, V) + 10)
ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
plt.show()

# %% [markdown]
# The training curve (computed with dropout on) keeps falling after the validation bound has
# flattened: the flow starts to memorise the 1,000 training images. `fit` keeps the weights of the
# best validation epoch (marked), and stops early if `patience` epochs pass without a better one.
# Now the test split, with the bound averaged over ten draws of $u$ per image:

# %%
tic = time.perf_counter()
test_nll = flows.evaluate_nll(digit_flow, test.x.to(dev), draws=10, generator=gen).nats
eval_seconds = time.perf_counter() - tic
glue("flow_test_nll", test_nll, display=False)
glue("flow_train_seconds", train_seconds, display=False)
gmm_nll = results.quote("02_density_models", "gmm_best_nll")  # Chapter 2's best mixture, as that chapter glued it
pixelcnn_nll = results.quote("06_autoregressive", "gated_test_nll")  # Chapter 6's gated PixelCNN
glue("gmm_best_nll", gmm_nll, display=False)  # glued again under the source's key (a test compares the two)
glue("gated_test_nll", pixelcnn_nll, display=False)

# %% tags=["nbval-check-output"]
print(f"test NLL on {dataset} ({len(test)} images, {D} pixels), discrete scale (dequantisation bound)")
print(f"{'':34}{'nats/image':>11}{'bits/dim':>10}")
for name, value in (("uniform model", metrics.uniform_nats(D, V)), (f"flow, M = {n_layers} couplings", test_nll)):
    print(f"{name:34}{value:11.1f}{metrics.nats_to_bpd(value, D):10.2f}")
print("section 5's noiseless score lies below this honest bound:", cheat_score < test_nll)

# %% [markdown]
# **Comparisons, on one scale.** All numbers below are $-\log P(x)$ of the integer test images of
# the book's split (or a bound on it), in nats per image:
#
# * Chapter 2's best Gaussian mixture, fitted to the same dequantised images:
#   {glue:text}`gmm_best_nll:.1f` (read from Chapter 2's executed notebook). A mixture's density is exact,
#   but on integer images its number is the same dequantisation bound as the flow's, not an exact
#   $-\log P(x)$; the flow's advantage is the learned warp.
# * An integer discrete flow (IDF, {cite:t}`hoogeboom2019idf`) on the same split, in
#   {cite:t}`tomczak2022dgm`'s code: 142.7 after about 139 s of training — our re-run of that code.
#   IDF models the integers directly, so its number needs no conversion.
# * The RealNVP of {cite:t}`tomczak2022dgm` reports 122.8, but on a *continuous* scale: its inputs
#   are the integer levels plus uniform noise on $(0, 0.5]$, and it reports $-\log p$ of that density.
#   Each pixel's noise cell is then half a level wide, so the discrete bound is
#   $122.8 + 64\log 2 = 167.2$ nats. Put next to our numbers without that
#   conversion, it would look $64\log 2$ nats better than it is.
# * The VAE of Chapter 4 (a categorical decoder; an importance-sampled bound) and the PixelCNN of
#   Chapter 6 (exact: {glue:text}`gated_test_nll:.1f` for its gated model in the book profile) are on
#   the same discrete scale; Chapter 9 puts all of them in one table.
#
# The book profile trains a small flow for at most `epochs` passes; `benchmarks/flows_digits.py`
# trains the larger benchmark flow (the same recipe with 256-unit networks), three seeds, and
# prints the median and range of its test bound and training time.
#
# **Is the log-determinant right?** The whole point of coupling layers is that we never form the
# Jacobian. Here we form it anyway for one test image — 64 backward passes through the trained
# flow and a $64\times64$ determinant — and compare, and time both ways:

# %%
digit_flow = digit_flow.cpu().double()
y_one = ((test.x[:1].double() + 0.5) / V)  # (1, D), a pixel-centred point
tic = time.perf_counter()
_, flow_log_det = digit_flow(y_one)
flow_time = time.perf_counter() - tic
tic = time.perf_counter()
J_full = jacobian(lambda v: digit_flow(v.unsqueeze(0))[0].squeeze(0), y_one[0])  # (D, D)
autograd_log_det = torch.linalg.slogdet(J_full)[1]
autograd_time = time.perf_counter() - tic
digit_flow = digit_flow.float()
print(f"log|det J| by the layers: {flow_time * 1e3:.1f} ms; by autograd + slogdet: {autograd_time * 1e3:.0f} ms "
      f"({autograd_time / flow_time:.0f}x slower, and O(D^3))")

# %% tags=["nbval-check-output"]
print("sum of layer log-dets equals autograd's log|det J| (trained flow, one test image):",
      torch.allclose(flow_log_det[0], autograd_log_det, rtol=1e-6, atol=1e-6))
print("Jacobian shape:", tuple(J_full.shape))

# %% [markdown]
# ### Samples, in one pass
#
# To sample, draw $z\sim\mathcal N(0, \sigma_z^2 I)$, run the inverse chain, undo the logit, and floor
# $V\,y$ to an integer level. $\sigma_z=1$ samples the model; a **temperature** $\sigma_z<1$
# {cite:p}`kingma2018glow` draws from nearer the mode of the base, trading diversity for cleaner
# strokes (it no longer samples the trained model).

# %%
samples = {}
tic = time.perf_counter()
with torch.no_grad():
    timing_batch = digit_flow.sample(1000, generator=gen)
sample_seconds = (time.perf_counter() - tic) / 1000
for T in temperatures:
    with torch.no_grad():
        samples[T] = digit_flow.sample(1000, generator=gen, temperature=T).cpu()
fig, axes = plt.subplots(1, len(temperatures) + 1, figsize=(4.2 * (len(temperatures) + 1), 4.2))
plot.image_grid(test.x[:36], shape, nrow=6, ax=axes[0], title="test images", vmax=V - 1)
for ax, T in zip(axes[1:], temperatures):
    plot.image_grid(samples[T][:36], shape, nrow=6, ax=ax, title=f"flow samples, σ_z = {T}", vmax=V - 1)
plt.tight_layout()
plt.show()

# %% [markdown]
# At $\sigma_z=1$ many samples are recognisable digits, with speckle in the background: the model
# spreads some mass over noisy images, which a likelihood penalises only mildly. At $\sigma_z=0.7$
# the strokes are greyer and more alike, not obviously cleaner.
# How close are the samples to the data? The classifier-feature Fréchet distance and precision/recall
# of `genlib.metrics` (lower distance and higher precision/recall are better), next to their floor,
# the training images against the test images:

# %%
reference = test.x.float() / (V - 1)
floor = metrics.quality_floor(dataset)
quality = {f"flow, σ_z = {T}": metrics.sample_quality(samples[T].float() / (V - 1), reference, dataset)
           for T in temperatures}
print(f"{'':22}{'Fréchet':>9}{'precision':>11}{'recall':>8}")
for name, q in {"floor (train vs test)": floor, **quality}.items():
    print(f"{name:22}{q['frechet']:9.1f}{q['precision']:11.2f}{q['recall']:8.2f}")
print(f"sampling: {sample_seconds * 1e3:.3f} ms per image (batch of 1,000, one inverse pass); "
      f"density: {eval_seconds / (10 * len(test)) * 1e3:.3f} ms per image and draw of u")

# %% [markdown]
# The numbers say what the pictures suggest: at $\sigma_z=1$ the samples cover the test images well
# (high recall), but many fall outside the test images' feature manifold (precision well below the
# floor); lowering $\sigma_z$ buys a little precision with a larger loss of recall, and the
# Fréchet distance grows. Temperature is no free lunch here.
#
# Sampling is one pass through the inverse layers for the whole batch, so its cost per image is
# about that of evaluating a density. Chapter 6's PixelCNN needs one network pass per pixel
# ($D = 64$ sequential passes) for the same job; its chapter times it on this data, and Chapter 9
# sets the two side by side.
#
# **The latent has the data's dimension.** Encoding is exact: a test image's dequantised $y$ maps to a
# $z$ of 64 numbers, and the inverse gives $y$ back to float precision — there is no bottleneck and no
# reconstruction error, unlike the autoencoders of Chapter 4. Interpolating between two latents
# walks through the model's space of images:

# %%
with torch.no_grad():
    y_pair = (test.x[:2].float() + 0.5) / V
    z_pair, _ = digit_flow(y_pair)
    y_back, _ = digit_flow.inverse(z_pair)
    weights = torch.linspace(0, 1, 8).unsqueeze(1)
    # interpolate on the sphere-like shell where Gaussian latents live (norms stay typical)
    z_path = torch.stack([math.cos(w * math.pi / 2) * z_pair[0] + math.sin(w * math.pi / 2) * z_pair[1]
                          for w in weights.squeeze(1)])
    y_path = digit_flow.inverse(z_path)[0].clamp(0, 1)
fig, ax = plt.subplots(figsize=(8, 1.6))
plot.image_grid(y_path, shape, nrow=8, ax=ax, title="decoding cos(θ) z_a + sin(θ) z_b, θ from 0 to π/2", vmax=1)
plt.show()

# %% tags=["nbval-check-output"]
print("exact reconstruction, max |f^{-1}(f(y)) - y| < 1e-4:", bool((y_back - y_pair).abs().max() < 1e-4))
with torch.no_grad():
    z_test = digit_flow((test.x.float() + 0.5) / V)[0]
print(f"latents of the test images: shape {tuple(z_test.shape)}, mean {float(z_test.mean()):.1f}, "
      f"std {float(z_test.std()):.1f}")

# %% [markdown]
# The intermediate images are mostly digit-like rather than a pixelwise cross-fade of the two
# ends. The test latents have mean near 0 and standard deviation near 1, roughly what a standard
# normal's would be.
#
# ## 7. Autoregressive flows: MAF and IAF
#
# A coupling layer lets half of the coordinates condition the other half. Let instead *every*
# coordinate condition on all the ones before it in an order, as in Chapter 6's chain rule:
#
# $$
# z_d = \big(x_d - t_d(x_{<d})\big)\,e^{-s_d(x_{<d})},\qquad
# \log\Big|\det\frac{\partial z}{\partial x}\Big| = -\sum_{d=1}^{D}s_d(x_{<d}).
# $$
#
# The Jacobian is triangular in the order, whatever $t$ and $s$ are, and Chapter 6's MADE
# computes all $t_d, s_d$ in one masked pass. This is the **masked autoregressive flow**
# {cite:p}`papamakarios2017maf`; a coupling layer is its special case in which $t_d$ and $s_d$
# see only a fixed half of the coordinates. The density direction $x\to z$ is one pass, because all
# of $x$ is known. The sampling direction is not: $x_d = z_d\,e^{s_d(x_{<d})} + t_d(x_{<d})$
# needs $x_{<d}$ first, so drawing a sample takes $D$ passes — exactly the PixelCNN's trade-off.
# The **inverse autoregressive flow** {cite:p}`kingma2016iaf` conditions on $z$ instead,
# $x_d = z_d\,e^{s_d(z_{<d})} + t_d(z_{<d})$: sampling is one pass and the density of a
# given $x$ takes $D$. `MaskedAutoregressive` implements both (`inverse=True` for IAF):

# %%
show(flows.MaskedAutoregressive.forward)
show(flows.MaskedAutoregressive._sequential)

# %% [markdown]
# We train a MAF on the digits — the logit, then four MAF layers whose orders alternate between
# raster order and its reverse, each with a MADE of 256 hidden units — with the same recipe as the
# coupling flow, and time both directions against an IAF of the same shape. (We do not train the
# IAF by maximum likelihood: every training step would need $D$ sequential passes. IAF's home is the
# other direction: as the approximate posterior $q_\phi(z\mid x)$ of a VAE
# {cite:p}`kingma2016iaf`, it is only ever *sampled* and its density evaluated at its own samples,
# both in one pass — a way to shrink the gap between the ELBO and the likelihood that Chapter 4
# measures.)

# %%
def autoregressive_flow(iaf):
    orders = [torch.arange(D) if k % 2 == 0 else torch.arange(D).flip(0) for k in range(4)]
    return flows.Flow(config, layers=[flows.Logit(config.alpha)] + [
        flows.MaskedAutoregressive(D, hidden=(256,), order=o, inverse=iaf) for o in orders])


maf = autoregressive_flow(iaf=False)
tic = time.perf_counter()
maf_history = fit(maf, flows.batch_loss, train.x.to(dev), val.x.to(dev), epochs=min(epochs, 15),
                  batch_size=settings.batch_size, lr=settings.lr, weight_decay=settings.weight_decay,
                  patience=settings.patience, device=dev, generator=gen, progress=False)
maf_seconds = time.perf_counter() - tic
maf = maf.cpu().eval()
maf_nll = flows.evaluate_nll(maf, test.x, draws=10, generator=gen).nats
iaf = autoregressive_flow(iaf=True).eval()


def seconds_per_image(fn, n):
    times = []
    for _ in range(3):
        tic = time.perf_counter()
        with torch.no_grad():
            fn()
        times.append((time.perf_counter() - tic) / n)
    return float(np.median(times))


ar_times = {}
for name, model in (("MAF", maf), ("IAF", iaf)):
    ar_times[name] = (seconds_per_image(lambda: model.log_prob(test.x[:timing_images], generator=gen), timing_images),
                      seconds_per_image(lambda: model.sample(timing_images, generator=gen), timing_images))
print(f"MAF trained {maf_history.epochs} epochs in {maf_seconds:.1f} s: test bound {maf_nll:.1f} nats/image")
print(f"{'':6}{'density (ms/image)':>20}{'sampling (ms/image)':>21}   (medians of 3, batches of {timing_images})")
for name, (density_s, sample_s) in ar_times.items():
    print(f"{name:6}{density_s * 1e3:20.3f}{sample_s * 1e3:21.3f}")
glue("maf_nll", maf_nll, display=False)
glue("maf_seconds", maf_seconds, display=False)
glue("maf_sample_over_density", ar_times["MAF"][1] / ar_times["MAF"][0], display=False)
glue("iaf_density_over_sample", ar_times["IAF"][0] / ar_times["IAF"][1], display=False)

# %% tags=["nbval-check-output"]
x_check = test.x[:4]
with torch.no_grad():
    y_check = (x_check.float() + 0.5) / V
    for name, model in (("MAF", maf), ("IAF", iaf)):
        z_check, _ = model(y_check)
        print(f"{name}: inverse(forward(y)) == y:", torch.allclose(model.inverse(z_check)[0], y_check, atol=1e-4))
print("MAF: sampling slower than density:", ar_times["MAF"][1] > ar_times["MAF"][0],
      "| IAF: density slower than sampling:", ar_times["IAF"][0] > ar_times["IAF"][1])

# %% [markdown]
# The duality is measured: the MAF samples {glue:text}`maf_sample_over_density:.0f` times slower per
# image than it evaluates densities, the IAF evaluates densities {glue:text}`iaf_density_over_sample:.0f`
# times slower than it samples — the $D$ sequential passes move from one direction to the other. The
# MAF's test bound after {glue:text}`maf_seconds:.0f` s of training is {glue:text}`maf_nll:.1f` nats
# per image (one seed; the coupling flow of section 6 reached {glue:text}`flow_test_nll:.1f`).
#
# ### Glow's pieces and a learned dequantisation
#
# Glow {cite:p}`kingma2018glow` builds image flows from three pieces, all in `genlib.flows`. A
# **squeeze** turns every 2x2 block of a channel into four channels of one pixel (a fixed
# permutation, $\log|\det| = 0$), so that convolutional couplings can split along channels instead of
# a checkerboard; after each scale, half of the channels are **factored out** and go to the base as
# they are, so later layers work on fewer dimensions (`Partial`, `glow_layers`). Between couplings, an
# **invertible 1x1 convolution** mixes the channels of every pixel with one learned $C\times C$
# matrix $W$ — a learned generalisation of the fixed permutations — whose log-determinant,
# $H W \log|\det W|$, Glow makes cheap by storing $W = P\,L\,(U + \operatorname{diag}(s))$ in LU form:
# $\log|\det W| = \sum_c \log|s_c|$.

# %%
show(flows.InvertibleConv1x1.weight)

# %% tags=["nbval-check-output"]
conv1x1 = flows.InvertibleConv1x1((4, 4, 4), torch.Generator().manual_seed(0)).double()
with torch.no_grad():
    conv1x1.log_s.add_(torch.linspace(-0.5, 0.5, 4, dtype=torch.float64))  # away from a rotation
x_glow = torch.randn(2, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
z_glow, ld_glow = conv1x1(x_glow)
J_glow = jacobian(lambda v: conv1x1(v.unsqueeze(0))[0].squeeze(0), x_glow[0])  # (64, 64)
print("1x1 convolution: LU log-det = H W log|det W| = autograd's log|det J|:",
      torch.allclose(ld_glow[0], torch.linalg.slogdet(J_glow)[1]),
      "| inverse recovers x:", torch.allclose(conv1x1.inverse(z_glow)[0], x_glow))

# %% [markdown]
# **Variational dequantisation.** Section 5's bound adds *uniform* noise, and Exercise 4 shows what
# that costs: the bound is tight only where the model's density is flat within each cell. Flow++
# {cite:p}`ho2019flowpp` learns the noise instead, $u\sim q(u\mid x)$, itself a small conditional flow
# (`VariationalDequantizer`: Gaussian noise through couplings that also see $x$, then a sigmoid into
# $[0,1)^D$), and the bound becomes
#
# $$
# \log P(x) \;\ge\; \mathbb E_{q(u\mid x)}\Big[\log p\big((x+u)/V\big) - D\log V - \log q(u\mid x)\Big],
# $$
#
# the uniform case being $q\equiv 1$. How many nats does it recover? We freeze the coupling flow of
# section 6 and train only a dequantiser for it, then evaluate the same flow with both noises:

# %%
dequantizer = flows.VariationalDequantizer(D, V, hidden=64, n_layers=4)
deq_flow = flows.Flow(config, layers=list(digit_flow.cpu().float().layers), dequantizer=dequantizer)
for p_ in digit_flow.parameters():
    p_.requires_grad_(False)
tic = time.perf_counter()
deq_history = fit(deq_flow, flows.batch_loss, train.x, val.x, epochs=min(epochs, 10), batch_size=settings.batch_size,
                  lr=settings.lr, patience=settings.patience, generator=gen, progress=False)
deq_seconds = time.perf_counter() - tic
for p_ in digit_flow.parameters():
    p_.requires_grad_(True)
deq_nll = flows.evaluate_nll(deq_flow, test.x, draws=10, generator=gen).nats
uniform_nll = flows.evaluate_nll(digit_flow.cpu().eval(), test.x, draws=10, generator=gen).nats
print(f"the section 6 flow's test bound: uniform noise {uniform_nll:.2f}, learned q(u | x) {deq_nll:.2f} nats/image "
      f"(dequantiser trained {deq_history.epochs} epochs in {deq_seconds:.1f} s)")
glue("deq_gain", uniform_nll - deq_nll, display=False)
glue("deq_nll", deq_nll, display=False)

# %% [markdown]
# The learned noise tightens the bound of the *same* flow by {glue:text}`deq_gain:.1f` nats per image,
# to {glue:text}`deq_nll:.1f`. Training the flow and the dequantiser together, as Flow++ does, lets
# the flow also stop spending capacity on modelling uniform noise. We train the MAF of the previous
# section again, from the start, with the same recipe and the same number of epochs, but jointly with a
# dequantiser, and compare it with the MAF trained on uniform noise:

# %%
gen_joint = torch.Generator().manual_seed(seed)
maf_deq = flows.Flow(config, layers=autoregressive_flow(iaf=False).layers,
                     dequantizer=flows.VariationalDequantizer(D, V, hidden=64, n_layers=4))
tic = time.perf_counter()
maf_deq_history = fit(maf_deq, flows.batch_loss, train.x.to(dev), val.x.to(dev), epochs=maf_history.epochs,
                      batch_size=settings.batch_size, lr=settings.lr, weight_decay=settings.weight_decay,
                      patience=settings.patience, device=dev, generator=gen_joint, progress=False)
maf_deq_seconds = time.perf_counter() - tic
maf_deq_nll = flows.evaluate_nll(maf_deq.cpu(), test.x, draws=10, generator=gen).nats
print(f"MAF, {maf_history.epochs} epochs each: uniform noise {maf_nll:.2f} nats/image ({maf_seconds:.1f} s); "
      f"trained with q(u | x) {maf_deq_nll:.2f} ({maf_deq_seconds:.1f} s)")
glue("maf_deq_nll", maf_deq_nll, display=False)
glue("maf_deq_gain", maf_nll - maf_deq_nll, display=False)
glue("maf_deq_seconds", maf_deq_seconds, display=False)

# %% [markdown]
# Trained jointly, the MAF's bound moves by {glue:text}`maf_deq_gain:.1f` nats per image, to
# {glue:text}`maf_deq_nll:.1f`, at the price of {glue:text}`maf_deq_seconds:.0f` s of training instead
# of {glue:text}`maf_seconds:.0f` s (one seed, at this chapter's short budget; `benchmarks/flows_digits.py`
# measures the dequantiser with longer training, the coupling flows and Glow's pieces, over seeds).
#
# ## 8. Where flows sit
#
# | | exact $\log p(x)$ | sampling | latent |
# | --- | --- | --- | --- |
# | mixtures (Chapter 2) | yes for continuous data (a bound for dequantised integers) | one pass | a component index |
# | VAE (Chapter 4) | a lower bound | one pass | $L\ll D$ numbers |
# | autoregressive (Chapter 6) | yes | $D$ sequential passes | none |
# | **flows (this chapter)** | **yes** (a bound for dequantised integers) | **one pass** (MAF: $D$ passes) | **$D$ numbers** |
#
# Flows have the two strengths that the other families trade against each other: exact
# likelihoods like an autoregressive model, and fast sampling like a VAE. The costs are structural.
#
# * **Every layer must be invertible and preserve the dimension.** The latent is as big as the
#   data, so a flow does not compress; it re-parameterises. Multi-scale architectures
#   {cite:p}`dinh2017realnvp` factor out half of the dimensions every few layers to save compute,
#   but the total dimension is kept.
# * **Topology.** A flow is a continuous bijection, so it cannot tear the Gaussian apart: two
#   separate parts of the data are reached only by stretching a thin bridge of density between them,
#   and the samples that land in the gaps in section 4 come from it. Expressive layers shrink the
#   bridge but never remove it: the model's density is positive everywhere.
# * **Depth.** Each coupling transforms half the coordinates elementwise; expressive flows need
#   many layers, and their likelihoods still trail the best autoregressive models on images.
#
# **The continuous-time limit.** Make every layer a small step, $h_m = h_{m-1} + \eta\, v(h_{m-1}, \tau_{m-1})$ with $\tau_m = m\eta$
# (we write $\tau$ for the flow's time, since $t(\cdot)$ is a coupling's shift).
# As $\eta\to 0$ with $M\eta$ fixed, the chain becomes an ordinary differential equation
# $dh/d\tau = v(h, \tau)$, and the sum of log-determinants becomes an integral of a trace
# {cite:p}`chen2018neural,grathwohl2019ffjord`:
#
# $$
# \log\det\big(I + \eta\,\partial v/\partial h\big) = \eta\,\operatorname{tr}\frac{\partial v}{\partial h} + O(\eta^2)
# \quad\Longrightarrow\quad \frac{d\log p(h(\tau))}{d\tau} = -\operatorname{tr}\frac{\partial v}{\partial h} .
# $$
#
# A continuous normalizing flow needs no coupling structure at all: any network $v$ is invertible
# as an ODE (run time backwards), and the trace is cheap to estimate. Training one by maximum
# likelihood requires solving the ODE at every step; *flow matching* {cite:p}`lipman2023flow`
# instead regresses $v$ onto the velocity of a simple path from noise to data, without simulation.
# The diffusion models of Chapter 8 arrive at the same picture from the other side: their
# deterministic sampler is such an ODE, with a $v$ learned by denoising.
#
# ## Summary
#
# * Change of variables: $\log p_X(x) = \log p_Z(f(x)) + \log|\det J_f(x)|$ for an invertible $f$;
#   in one dimension, $\log f'(x)$. Composition adds log-determinants.
# * A flow needs invertible, dimension-preserving layers with cheap inverses and log-determinants.
#   Coupling layers get them from a triangular Jacobian, $\log|\det| = \sum_{d\in B}s_d$; the masks
#   alternate so that every coordinate is transformed; keeping the same mask leaves a marginal
#   untouched.
# * Images are dequantised and squeezed through a logit; all Jacobians are counted, and the result is
#   a bound on the discrete log-likelihood in the same nats as every other chapter. Without the
#   noise the continuous likelihood is meaningless.
# * Autoregressive flows (MAF) generalise couplings with a MADE conditioner: one pass for the density,
#   $D$ for sampling; IAF swaps the two. Glow adds squeezes, invertible 1x1 convolutions (LU) and
#   multi-scale factoring-out; a learned dequantisation $q(u\mid x)$ tightens the bound.
# * Flows give exact likelihoods and one-pass sampling (couplings, IAF); their latent is as large as
#   the data; in the continuous-time limit they become ODEs, the bridge to diffusion.
#
# %% tags=["remove-input"]
# numbers quoted in the solutions below
ex2_grid, ex2_gx, ex2_gy = plot.grid_points((-8, 8, -8, 8), 400)
with torch.no_grad():
    ex2_density = fixed_flow.log_prob(ex2_grid).exp().reshape(ex2_gx.shape).double()  # rows: x_2, columns: x_1
ex2_marginal = ex2_density.sum(0) * float(ex2_gy[1, 0] - ex2_gy[0, 0])  # integrate over x_2
ex2_x1 = torch.as_tensor(ex2_gx[0], dtype=torch.float64)
ex2_normal = torch.exp(-ex2_x1 ** 2 / 2) / math.sqrt(2 * math.pi)
glue("ex2_marginal_error", float((ex2_marginal - ex2_normal).abs().max()), display=False)

# %% [markdown]
# ## Exercises
#
# **1. The inverse and its determinant.** Show that
# $x_B = (z_B - t(z_A))\odot e^{-s(z_A)}$ inverts the affine coupling, and that the log-determinant
# of the inverse is $-\sum_{d\in B}s_d(z_A)$. Why would the inverse be expensive if $s$ and $t$ were
# allowed to depend on $x_B$ too?
#
# ```{admonition} Solution
# :class: dropdown
# Since $z_A = x_A$, the inverse can compute $s(z_A) = s(x_A)$ and $t(z_A) = t(x_A)$ before knowing
# $x_B$; solving $z_B = x_B\odot e^{s}+t$ for $x_B$ gives the formula. Its Jacobian is again block
# triangular with diagonal $e^{-s}$, so the log-determinant is $-\sum_{d\in B}s_d$, the negative of
# the forward one at the matching point, as the inverse function theorem requires
# ($J_{f^{-1}}(z) = J_f(x)^{-1}$). `AffineCoupling.inverse` returns exactly that, and
# `tests/test_flows.py::test_log_det_matches_autograd_jacobian` checks both directions against
# autograd. If $s$ and $t$ depended on $x_B$, then $z_B = x_B\odot e^{s(x_A,x_B)} + t(x_A,x_B)$
# would be a nonlinear equation in $x_B$ with no closed-form solution (like `MonotoneWarp`,
# which needs bisection), and the Jacobian would no longer be triangular.
# ```
#
# **2. The marginal that never moves.** In section 4 the flow with the same mask in every layer
# keeps $x_1$. Without computing anything, what is its marginal density $p(x_1)$? Check your answer
# by integrating the trained flow's density over $x_2$ on a grid.
#
# ```{admonition} Solution
# :class: dropdown
# Every layer copies $x_1$, so $z_1 = x_1$ and $\partial z/\partial x$ is triangular with
# $\partial z_1/\partial x_1 = 1$. Then $p(x) = \mathcal N(x_1;0,1)\cdot \mathcal N(z_2;0,1)
# \,|\partial z_2/\partial x_2|$, and the second factor is a normalised density of $x_2$ for each
# fixed $x_1$ (a 1-D flow of $x_2$ conditioned on $x_1$). Integrating over $x_2$ leaves
# $p(x_1) = \mathcal N(x_1; 0, 1)$ exactly, whatever the training did. Numerically: evaluate
# `fixed_flow.log_prob` on `plot.grid_points((-8, 8, -8, 8), 400)`, sum `exp` over the $x_2$ axis
# times the grid step, and compare with the standard normal density: in the chapter's run the largest
# difference over the grid of $x_1$ is {glue:text}`ex2_marginal_error:.1e`.
# ```
#
# **3. Additive couplings.** Rerun the chapter with `coupling="additive"` (papermill:
# `-p coupling additive`). Additive layers preserve volume; how does the digits flow still change
# the density's scale, and how does its test bound compare with the affine flow's?
#
# ```{admonition} Solution
# :class: dropdown
# Each additive coupling has $\log|\det| = 0$, so the couplings can only move mass around, never
# concentrate it. The other layers carry all the volume change: the logit (fixed) and the ActNorm
# layers, whose per-pixel scales are learned; NICE itself ended with a diagonal scaling layer for the
# same reason {cite:p}`dinh2015nice`. The scales are global (the same for every image), so the flow
# cannot make a pixel's density sharper in one context than in another, and the argument predicts a
# worse bound than the affine flow's. To compare the two fairly, over seeds rather than from one run
# of each, run `benchmarks/flows_digits.py --models affine additive` and compare the medians and ranges it
# prints.
# ```
#
# **4. How loose is the bound?** For a 1-D flow on $V$ levels, the exact discrete probability is
# $P(x) = \Phi(f((x+1)/V)) - \Phi(f(x/V))$, with $\Phi$ the standard normal CDF. Show that the
# dequantisation bound never exceeds it, and say when the two are equal.
#
# ```{admonition} Solution
# :class: dropdown
# $P(x) = \int_0^1 p\big((x+u)/V\big)\,V^{-1}\,du$, an average of $p/V$ over $u$. Jensen's inequality
# for the concave $\log$ gives $\log P(x) \ge \mathbb E_u[\log p((x+u)/V)] - \log V$, with equality
# exactly when $p$ is constant on the cell $[x/V, (x+1)/V)$. So the gap is the flow's failure to be flat
# within a cell; a flow that bunches mass at one end of a cell pays for it in the bound.
# `tests/test_flows.py::test_bound_is_below_the_exact_discrete_probability_in_one_dimension` computes
# both for a random `MonotoneWarp` and checks the inequality. Variational dequantisation
# {cite:p}`ho2019flowpp` learns the noise distribution to shrink this gap.
# ```

# %% tags=["remove-cell", "nbval-check-output"]
widgets.check_live("07_flows")  # moves every control of every live widget above: see genlib/widgets.py
