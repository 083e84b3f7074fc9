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
# # Energy-based models
#
# Chapter 2's densities were normalised by construction: a Gaussian, a mixture of Gaussians and a
# kernel density all integrate to one, and that is what limited them. An **energy-based model**
# (EBM) drops the constraint. Any network that maps a data point to one number, its *energy*
# $E_\theta(x)$, defines a distribution,
#
# $$
# p_\theta(x) = \frac{e^{-E_\theta(x)}}{Z(\theta)}, \qquad Z(\theta) = \int e^{-E_\theta(x)}\,dx ,
# $$
#
# low energy meaning high probability {cite:p}`lecun2006tutorial`. The freedom has two prices. The
# normaliser $Z(\theta)$ is an integral over the whole data space that we cannot compute, so we can
# neither evaluate $\log p_\theta(x)$ nor take its gradient directly; and there is no direct way to
# draw a sample. Chapter 1 called such a model an *indirect generator*: a scoring function
# $E_\theta: \mathcal X \to \mathbb R$ plus a sampler that searches for low-energy points. This
# chapter follows the lecture's route {cite:p}`isola2024dgm1`: derive the likelihood gradient, see
# that it needs samples from the model, draw them by Langevin dynamics, and train with the
# persistent variant of contrastive divergence {cite:p}`hinton2002training,tieleman2008training`:
# short runs of Langevin dynamics continued from a buffer of chains {cite:p}`du2019implicit`. We
# check every step on 2-D data, where $Z$ *can* be computed on a grid, and then train an EBM on the
# digits and watch what breaks.

# %% tags=["parameters"]
device = "cpu"            # "auto", "cpu", "cuda" or "mps"
dataset = "moons"         # 2-D toy of sections 1-6, 9, 10: moons, rings, 8gaussians, spiral, swissroll
image_dataset = "digits"  # sections 7, 8, 11-13: "digits" (8x8, embedded) or "mnist5k" (28x28, offline)
epochs = 100              # training epochs on the 2-D toy (1000 points, batches of 128)
image_epochs = 30         # epochs of the image EBM and of the RBMs; each failure-mode variant gets half
n_steps = 20              # Langevin steps per training update on images (short-run chains)
long_steps = 500          # length of the long-run chains of section 7
jem_epochs = 60           # training epochs of the joint energy model (JEM) of section 12
checkpoint = ""           # a file from genlib.train_family: load the main model, skip its training
seed = 0

# %% tags=["hide-input"]
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import ipywidgets

from myst_nb import glue

import genlib
from genlib import bench, checks, data, diagrams, ebm, energy, metrics, plot, train_family, widgets
from genlib.density import GaussianMixture, mean_log_prob
from genlib.train import check_epochs, fit

dev = genlib.device(device)
gen = genlib.seed_everything(seed)
data.check_dataset(dataset, data.TOYS)
data.check_dataset(image_dataset, ("digits", "mnist5k", "mnist"))
check_epochs(epochs), check_epochs(image_epochs), check_epochs(jem_epochs)
checks.positive_int("n_steps", n_steps), checks.positive_int("long_steps", long_steps)


show = genlib.show_source  # prints a genlib function's source, to read next to its equation


# %% [markdown]
# ## 1. Unnormalised densities: ratios need no $Z$
#
# Whatever $Z(\theta)$ is, it is the same number for every $x$, so it cancels from any ratio:
#
# $$
# \frac{p_\theta(x_1)}{p_\theta(x_2)} = \frac{e^{-E_\theta(x_1)}/Z(\theta)}{e^{-E_\theta(x_2)}/Z(\theta)}
# = e^{E_\theta(x_2) - E_\theta(x_1)} .
# $$
#
# Relative probabilities are often all we need: which of two images is more plausible, and — as
# we will see — where a sampler should move next. `genlib.ebm.EBM` is a small MLP energy with
# smooth (SiLU) activations. In two dimensions we can do what is impossible in general and
# normalise it by brute force: `ebm.GridDensity` cuts a box into $200\times200$ cells and sums
# $e^{-E_\theta}$ over their centres (the midpoint rule), giving $\log Z(\theta)$, a normalised
# $\log p_\theta(x)$, and exact samples (pick a cell with probability proportional to
# $e^{-E_\theta}$). An untrained network already defines a valid density this way:

# %%
box = (-4.5, 4.5, -4.5, 4.5)
x_train, x_val = data.toy(dataset, n=1000, seed=seed), data.toy(dataset, n=1000, seed=seed + 1)
toy_config = ebm.EBMConfig.for_dataset(dataset)
untrained = ebm.EBM(toy_config, gen).to(dev)
grid = ebm.GridDensity(untrained.energy, bounds=box, steps=200, device=dev)
print(toy_config)

# %% tags=["nbval-check-output"]
x_pair = torch.tensor([[0.0, 0.0], [1.5, -1.0]], device=dev)
with torch.no_grad():
    energies = untrained.energy(x_pair)
    ratio_from_energies = torch.exp(energies[1] - energies[0])
    log_p = grid.log_prob(x_pair)
    ratio_from_densities = torch.exp(log_p[0] - log_p[1])
    cells = grid.log_weights()  # −E(c_j) + log h² for every cell
    log_z = grid.log_z()
print(f"log Z of the untrained network on the box: {float(log_z):.2f}")
print("p(x1)/p(x2) from energies alone equals the ratio of normalised densities:",
      bool(torch.isclose(ratio_from_energies, ratio_from_densities, rtol=1e-4)))
print("the normalised density sums to one over the grid:", bool(torch.isclose(
    torch.logsumexp(cells - log_z, 0), torch.tensor(0.0), atol=1e-5)))

# %% [markdown]
# In two dimensions the sum has $4\times10^4$ terms and costs milliseconds. On the $8\times8$
# digits, a grid with only ten values per pixel would have $10^{64}$ cells: no computer will ever
# sum them. That is why an EBM's likelihood is unknown, and why everything below avoids $Z$.
#
# ## 2. The likelihood gradient: push data down, push samples up
#
# Maximum likelihood (Chapter 1) maximises $\mathbb E_{x\sim p_\text{data}}[\log p_\theta(x)]$. With
# $\log p_\theta(x) = -E_\theta(x) - \log Z(\theta)$ its gradient has two parts,
#
# $$
# \nabla_\theta\, \mathbb E_{x\sim p_\text{data}}[\log p_\theta(x)]
# = -\mathbb E_{x\sim p_\text{data}}[\nabla_\theta E_\theta(x)] - \nabla_\theta \log Z(\theta) .
# $$
#
# The first is easy: average $\nabla_\theta E_\theta$ over a batch of data. The second looks hopeless,
# but it is an expectation too. Step by step:
#
# $$
# \begin{aligned}
# \nabla_\theta \log Z(\theta)
# &= \frac{1}{Z(\theta)}\,\nabla_\theta Z(\theta)
#   && \text{chain rule: } \nabla \log f = \nabla f / f \\
# &= \frac{1}{Z(\theta)}\,\nabla_\theta \int e^{-E_\theta(x)}\,dx
#   && \text{definition of } Z \\
# &= \frac{1}{Z(\theta)} \int \nabla_\theta\, e^{-E_\theta(x)}\,dx
#   && \text{exchange gradient and integral} \\
# &= \frac{1}{Z(\theta)} \int -e^{-E_\theta(x)}\,\nabla_\theta E_\theta(x)\,dx
#   && \text{chain rule on } e^{-E} \\
# &= -\int \frac{e^{-E_\theta(x)}}{Z(\theta)}\,\nabla_\theta E_\theta(x)\,dx
#  = -\int p_\theta(x)\,\nabla_\theta E_\theta(x)\,dx
#   && \text{definition of } p_\theta \\
# &= -\mathbb E_{\hat x\sim p_\theta}[\nabla_\theta E_\theta(\hat x)]
#   && \text{definition of expectation.}
# \end{aligned}
# $$
#
# So the gradient of the log-likelihood is a difference of two averages,
#
# $$
# \nabla_\theta\, \mathbb E_{p_\text{data}}[\log p_\theta(x)]
# = -\mathbb E_{x\sim p_\text{data}}[\nabla_\theta E_\theta(x)] + \mathbb E_{\hat x\sim p_\theta}[\nabla_\theta E_\theta(\hat x)]
# \approx -\frac1N\sum_{n=1}^N \nabla_\theta E_\theta(x^{(n)}) + \frac1{\hat N}\sum_{m=1}^{\hat N} \nabla_\theta E_\theta(\hat x^{(m)}),
# $$
#
# with $N$ points $x^{(n)}$ from the data and $\hat N$ points $\hat x^{(m)}$ sampled from the model. Read as an update, it
# **pushes the energy down at the data and up at the model's own samples** (the figure's green and
# red arrows). Where the model puts too much mass — a spurious valley with no data in it — its
# samples gather and the valley is filled in; where it puts too little, the data dig it out. When
# the model's samples look exactly like the data, the two averages are equal and the update is
# zero. We never need $Z$, only samples.

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(15, 4.2), gridspec_kw=dict(width_ratios=[2.2, 1]))
diagrams.draw_cd_loop(axes[0])
axes[0].set_title("contrastive divergence with persistent chains (training loop)")
diagrams.draw_push_pull(axes[1])
fig.tight_layout()
plt.show()

# %% [markdown]
# The left diagram is the training loop this chapter builds: the data and the sampler's output
# $\hat x$ both pass through the energy network; the loss compares their mean energies; Adam changes
# $\theta$; the sampler follows the new energy downhill, starting from chains kept in a buffer. The
# right sketch is one update on a 1-D model with a spurious dip near $x=-1.7$.
#
# On the grid we can check the derivation with numbers. Autograd differentiates $\log Z$ computed by
# the midpoint rule; the expectation $\mathbb E_{p_\theta}[\nabla_\theta E_\theta]$ is computed
# separately as a weighted sum over the grid cells, $\sum_j p_j \nabla_\theta E_\theta(c_j)$ with
# $p_j = \mathrm{softmax}(-E_\theta(c))_j$:

# %% tags=["nbval-check-output"]
params = list(untrained.parameters())
flat = lambda grads: torch.cat([g.reshape(-1) for g in grads])  # noqa: E731
grad_log_z = flat(torch.autograd.grad(grid.log_z(), params))
weights_cells = torch.softmax(grid.log_weights(), 0).detach()  # p_j, (cells,)
expected_grad_e = flat(torch.autograd.grad((weights_cells * untrained.energy(grid.centres)).sum(), params))
print(f"{grad_log_z.numel()} parameters; max |∇ log Z + E_p[∇E]| = "
      f"{float((grad_log_z + expected_grad_e).abs().max()):.1e}")
print("∇_θ log Z = −E_p[∇_θ E]:", bool(torch.allclose(grad_log_z, -expected_grad_e, atol=1e-5)))

# %% [markdown]
# With *samples* instead of the exact sum the identity holds on average. Drawing $\hat x$ exactly
# from the grid model, the sample version of the gradient (the contrastive-divergence gradient of
# section 4) matches the exact gradient of the grid log-likelihood within its Monte Carlo error,
# and gets closer as the number of samples $\hat N$ grows (the test
# `test_cd_gradient_equals_the_exact_likelihood_gradient_on_a_grid` makes the same check
# parameter by parameter):

# %% tags=["nbval-check-output"]
x_batch = x_train[:256].to(dev)
exact = flat(torch.autograd.grad(-grid.log_prob(x_batch).mean(), params))  # ∇ of the NLL
rel_errors = {}
for m_samples in (100, 1000, 10000, 100000):
    x_hat = grid.sample(m_samples, generator=gen, jitter=False).to(dev)
    estimate = flat(torch.autograd.grad(ebm.cd_loss(untrained, x_batch, x_hat), params))
    rel_errors[m_samples] = float((estimate - exact).norm() / exact.norm())
    print(f"N̂ = {m_samples:6d} exact model samples: relative error of the sampled gradient "
          f"{rel_errors[m_samples]:.2f}")
print("error shrinks roughly like 1/sqrt(N̂):", rel_errors[100000] < rel_errors[1000] < rel_errors[100])

# %% [markdown]
# ## 3. Sampling by Langevin dynamics
#
# Outside two dimensions we cannot sample from a grid. But we know the *gradient* of the log-density
# everywhere, $\nabla_x \log p_\theta(x) = -\nabla_x E_\theta(x)$ (again without $Z$), and Chapter 1
# showed a sampler that needs nothing else. Langevin dynamics {cite:p}`roberts1996exponential`
# walks downhill on the energy and adds noise,
#
# $$
# x_{t+1} = x_t - \frac{\eta}{2}\,\nabla_x E_\theta(x_t) + \sigma\,\varepsilon_t, \qquad \varepsilon_t\sim\mathcal N(0, I),
# $$
#
# with step size $\eta$ and noise scale $\sigma$ — the same step, with the same $\eta$, as Chapter 1's
# sampler and Chapter 8's annealed Langevin dynamics. With $\sigma=\sqrt{\eta}$ this is the
# discretised Langevin diffusion: for small $\eta$ and many steps $T$, $x_T$ is distributed
# approximately as $p_\theta$ wherever the chain started (a Metropolis accept/reject test on each
# step, MALA {cite:p}`roberts1996exponential`, removes the remaining step-size bias). The
# gradient term pulls samples into low-energy valleys; the noise keeps them from all collapsing
# onto the minimum, and its size sets how wide the valleys are sampled. In practice, image EBMs
# decouple the two {cite:p}`du2019implicit,nijkamp2019learning`: a large step with a small noise
# (a "cold" sampler), clipped gradients, and chains kept in the pixel box.

# %%
show(ebm.langevin)

# %% [markdown]
# Before trusting the sampler with a learned energy, test it on a known one. Here the energy of a
# 2-D Gaussian, $E(x)=\tfrac12(x-\mu)^\top\Sigma^{-1}(x-\mu)$; $2000$ independent chains started from
# broad noise should end with the Gaussian's mean and covariance, within the Monte Carlo error of
# $2000$ draws (a relative standard error of $\sqrt{2/2000}=1/\sqrt{1000}$ on a variance). A sampler with the
# noise too small (here $\sigma=\sqrt{\eta/2}$) samples a narrower distribution, and the same check
# catches it. (The tests do this with a two-component mixture too.)

# %% tags=["nbval-check-output"]
mu_known = torch.tensor([1.0, -0.5])
cov_known = torch.tensor([[1.0, 0.6], [0.6, 0.8]])
precision = torch.linalg.inv(cov_known)
energy_known = lambda x: 0.5 * torch.einsum("bi,ij,bj->b", x - mu_known, precision, x - mu_known)  # noqa: E731
x0_known = 2 * torch.randn(2000, 2, generator=gen)
for label, sigma in (("sigma = sqrt(eta)  ", None), ("sigma = sqrt(eta/2)", math.sqrt(0.01))):
    x_end = ebm.langevin(energy_known, x0_known, n_steps=1000, step_size=0.02, noise_scale=sigma, generator=gen)
    m_hat, c_hat = x_end.mean(0).tolist(), torch.cov(x_end.T).tolist()
    print(f"{label}: mean [{m_hat[0]:.1f}, {m_hat[1]:.1f}], covariance [[{c_hat[0][0]:.1f}, {c_hat[0][1]:.1f}], "
          f"[{c_hat[1][0]:.1f}, {c_hat[1][1]:.1f}]]   (true: [1.0, -0.5], [[1.0, 0.6], [0.6, 0.8]])")

# %% [markdown]
# With $\sigma=\sqrt{\eta}$ the chains reproduce the mean and covariance; with half the noise
# variance the covariance is about half as large: the sampler is not sampling $p$ but a "colder"
# $p^2/Z'$. Keep this in mind for the images below, where a cold sampler is used on purpose.
#
# ## 4. Contrastive divergence with a replay buffer
#
# Section 2's gradient is the gradient of a surrogate loss that autograd can differentiate,
# the mean energy of the data minus the mean energy of model samples (held fixed):
#
# $$
# \mathcal L_\text{CD}(\theta) = \frac1N\sum_{n} E_\theta(x^{(n)}) - \frac1{\hat N}\sum_m E_\theta(\hat x^{(m)})
# + \lambda\Big(\frac1N\sum_n E_\theta(x^{(n)})^2 + \frac1{\hat N}\sum_m E_\theta(\hat x^{(m)})^2\Big).
# $$
#
# With $\lambda=0$ and $\hat x$ drawn exactly from $p_\theta$, the gradient of the first two terms is
# minus the log-likelihood gradient *in expectation*: one minibatch gives an unbiased, noisy estimate
# (section 2's check). The loss is unchanged by $E\to E+c$, so its value says nothing about the fit
# (it hovers near zero); the regulariser $\lambda\,\overline{E^2}$ pins the energies near zero and
# keeps them from drifting off {cite:p}`du2019implicit`. It also changes the objective: with
# $\lambda>0$ the minimiser is no longer the maximum-likelihood fit. On the toy $\lambda=0.01$ is a
# small perturbation; on the images below $\lambda=1$ weighs as much as the likelihood terms, so
# what is trained there is not maximum likelihood even before the sampler's bias is counted.

# %%
show(ebm.cd_loss)

# %% [markdown]
# Where do the $\hat x$ come from? Running Langevin chains to convergence for every update would
# cost thousands of steps. **Contrastive divergence** {cite:p}`hinton2002training` runs
# $T$ steps of MCMC *started at the data points of the batch* (CD-$T$; CD-1 is the usual choice). It
# was invented for Boltzmann machines, whose block Gibbs sampler makes each step cheap. What this
# chapter trains is different: **persistent** chains {cite:p}`tieleman2008training` that never start
# at the data and do not restart: each update continues chains from earlier updates and pays for $T$
# steps. The chains live in a **replay buffer**; a fraction $0.05$ of each batch restarts from
# uniform noise, so that the buffer keeps
# exploring new regions {cite:p}`du2019implicit` — and so that no chain is very old: the buffer
# records each chain's age, measured after training below. `ContrastiveDivergence` is the loss that genlib's one training loop,
# `genlib.train.fit`, minimises: it draws chains from the model's buffer, advances them, puts them
# back, and returns $\mathcal L_\text{CD}$.

# %%
show(ebm.ContrastiveDivergence.__call__)
show(ebm.ContrastiveDivergence.samples)

# %% [markdown]
# We train on the 2-D toy with the Langevin diffusion ($\sigma=\sqrt{2\eta}$) so that the model's
# samples really are samples of $p_\theta$. The loss object also measures, every 10 updates, the
# sizes of the two gradient terms $g_\text{data} = \overline{\nabla_\theta E_\theta(x)}$ and
# $g_\text{model} = \overline{\nabla_\theta E_\theta(\hat x)}$ and of the update $g_\text{model} - g_\text{data}$,
# and keeps five snapshots of the weights and chains.

# %%
toy_model = ebm.EBM(toy_config, gen).to(dev)
toy_train = ebm.TrainConfig.for_dataset(dataset, epochs=epochs)
steps_per_epoch = math.ceil(len(x_train) / toy_train.batch_size)
toy_cd = ebm.ContrastiveDivergence(gen, monitor_every=10, snapshot_every=max(1, epochs * steps_per_epoch // 4))
tic = time.process_time()
toy_history = fit(toy_model, toy_cd, x_train, epochs=toy_train.epochs, batch_size=toy_train.batch_size,
                  lr=toy_train.lr, device=dev, generator=gen, progress=False)
toy_seconds = time.process_time() - tic
toy_age = toy_model.buffer.age.double() * toy_config.n_steps  # (buffer_size,) Langevin steps since each restart
print(f"{toy_cd.step} updates x {toy_config.n_steps} Langevin steps in {toy_seconds:.1f} s of CPU time")
print(f"age of the buffer's chains since their last restart: mean {float(toy_age.mean()):.0f} Langevin steps, "
      f"90% below {float(toy_age.quantile(0.9)):.0f}")
glue("toy_updates", toy_cd.step, display=False)
glue("toy_chain_age", float(toy_age.mean()), display=False)
glue("toy_chain_age_p90", float(toy_age.quantile(0.9)), display=False)


# %%
def energy_of(weights, config=toy_config):
    """A fresh EBM holding a snapshot's weights."""
    model = ebm.EBM(ebm.EBMConfig(**{**config.__dict__, "buffer_size": 0}))
    model.load_state_dict(weights)
    return model.to(dev).eval()


final_chains = toy_model.sample(128, generator=gen, from_buffer=True)  # one more batch of chains
snapshots = toy_cd.record.snapshots + [(toy_cd.step, toy_model.state_dict(), final_chains)]
points_snap, gx_snap, gy_snap = plot.grid_points(box, 120)
with torch.no_grad():
    densities = [ebm.GridDensity(energy_of(w).energy, bounds=box, steps=200, device=dev)
                 .log_prob(points_snap.to(dev)).exp().cpu().numpy().reshape(gx_snap.shape) for _, w, _ in snapshots]
p_max = max(float(d.max()) for d in densities)
fig, axes = plt.subplots(2, len(snapshots), figsize=(3.0 * len(snapshots) + 1, 6.0), layout="constrained", dpi=100)
for col, ((step, _, x_hat), dens) in enumerate(zip(snapshots, densities)):
    mesh = axes[0, col].pcolormesh(gx_snap, gy_snap, dens, cmap="viridis", vmin=0, vmax=p_max, shading="auto")
    plot.scatter(x_train[::3], ax=axes[0, col], bounds=box, color="white", s=1, alpha=0.5,
                 title=f"$p_\\theta$, update {step}")
    plot.scatter(x_train[::3], ax=axes[1, col], bounds=box, color="0.7", s=2, alpha=0.6)
    plot.scatter(x_hat, ax=axes[1, col], bounds=box, color="C3", s=3, alpha=0.8,
                 title=f"chains $\\hat x$, update {step}")
axes[1, 0].legend(handles=[plt.Line2D([], [], ls="", marker="o", color="0.7", label="training data"),
                           plt.Line2D([], [], ls="", marker="o", color="C3", label=r"chains $\hat x$")],
                  loc="lower left", fontsize=7, frameon=True)
fig.colorbar(mesh, ax=axes[0, :], label=r"density $p_\theta(x)$", shrink=0.9)
plt.show()

# %% [markdown]
# Top: the grid-normalised density $p_\theta$ at five points of training, on one colour scale, with
# training points in white; bottom: the batch of persistent chains (red) that the update at that
# moment used, over the training points (grey). At the start the network's energy is nearly flat
# and the chains are uniform noise. The data dig valleys where the toy's points lie; the chains flow
# into them and, as they gather, push the energy up wherever the model has put more mass than the
# data, carving the shape ever more sharply. The training cell printed the age of the buffer's
# chains at the end: on average {glue:text}`toy_chain_age:.0f` Langevin steps since their last
# restart, and below {glue:text}`toy_chain_age_p90:.0f` for nine chains in ten — hundreds of steps,
# not thousands. The arithmetic agrees: a chain restarts at a draw with probability $0.05$, so it
# survives about $1/0.05 = 20$ draws of $T = 20$ steps, and in {glue:text}`toy_updates` updates of
# $128$ chains each slot of the $2000$ is drawn only $128\,U/2000$ times on average ($U$ the number of updates).
#
# ## 5. At convergence the two terms cancel
#
# The lecture's claim, measured: below, the sizes of the two gradient terms and of the update they
# combine into, and the mean energies of data and samples, over training. An update estimated from
# $128$ data points and $128$ chains can never be exactly zero, so it needs a reference: the same norm
# for two disjoint batches of *data*, $\|g_\text{data}(B) - g_\text{data}(A)\|$, which is what a perfect
# model whose samples were drawn from $p_\text{data}$ itself would show — minibatch noise alone. We
# measure it at the five snapshots and at the end, averaged over $16$ pairs of batches.

# %%
def update_and_noise(weights, x_hat, pairs=16):
    """(‖g_model − g_data‖, ‖g_data(B) − g_data(A)‖) for one snapshot, each averaged over ``pairs`` data batches."""
    model, n = energy_of(weights), len(x_hat)
    update, noise = [], []
    for _ in range(pairs):
        order = torch.randperm(len(x_train), generator=gen)
        x_a, x_b = x_train[order[:n]].to(dev), x_train[order[n:2 * n]].to(dev)
        g_a, g_m = ebm.grad_terms(model, x_a, x_hat.to(dev))
        update.append(float((g_m - g_a).norm()))
        noise.append(float((ebm.grad_terms(model, x_b, x_a)[0] - g_a).norm()))
    return float(np.mean(update)), float(np.mean(noise))


snap_steps = [step for step, _, _ in snapshots]
snap_update, snap_noise = zip(*(update_and_noise(w, x_hat) for _, w, x_hat in snapshots))
print("update    |g_model - g_data|    minibatch noise    ratio")
for step, u, z in zip(snap_steps, snap_update, snap_noise):
    print(f"{step:6d}    {u:18.2f}    {z:15.2f}    {u / z:5.1f}")

# %%
record = toy_cd.record
fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
axes[0].plot(record.monitored_steps, record.g_data, color="tab:green", label=r"$\|g_{data}\|$ (data term)")
axes[0].plot(record.monitored_steps, record.g_model, color="tab:red", ls="--", label=r"$\|g_{model}\|$ (sample term)")
axes[0].plot(record.monitored_steps, record.g_diff, color="k", label=r"$\|g_{model} - g_{data}\|$ (the update)")
axes[0].plot(snap_steps, snap_noise, "o", color="tab:blue", ms=5,
             label=r"$\|g_{data}(B) - g_{data}(A)\|$ (minibatch noise)")
axes[0].set_xlabel("update"), axes[0].set_ylabel("gradient norm")
axes[0].set_title("the two gradient terms and their difference")
axes[0].legend(frameon=False, fontsize=8, loc="center right")
smooth = lambda v: np.convolve(v, np.ones(20) / 20, mode="valid")  # noqa: E731
axes[1].plot(smooth(record.e_data), color="tab:green", label=r"mean $E_\theta(x)$, data")
axes[1].plot(smooth(record.e_model), color="tab:red", ls="--", label=r"mean $E_\theta(\hat x)$, samples")
axes[1].set_xlabel("update"), axes[1].set_ylabel("energy (nats, 20-update mean)")
axes[1].set_title("energies of data and samples")
axes[1].legend(frameon=False, fontsize=8)
fig.tight_layout()
plt.show()

# %% tags=["nbval-check-output"]
ratios = [u / z for u, z in zip(snap_update, snap_noise)]
glue("cancel_ratio_start", ratios[0], display=False)
glue("cancel_ratio_later_min", min(ratios[1:]), display=False)
glue("cancel_ratio_later_max", max(ratios[1:]), display=False)
print("far above the noise at the start (ratio > 3):", ratios[0] > 3)
print("within twice the noise at every later snapshot (ratio < 2):", max(ratios[1:]) < 2)

# %% [markdown]
# Each term stays large — the energy surface keeps changing in $\theta$ — but their difference, the
# actual update, shrinks. At the first update it is {glue:text}`cancel_ratio_start:.1f` times the
# minibatch noise; at every later snapshot it is between {glue:text}`cancel_ratio_later_min:.1f` and
# {glue:text}`cancel_ratio_later_max:.1f` times the noise: what is left of the update is about what two
# batches of data would show, so at the resolution of $128$ points the terms cancel. (Compared with the data term alone, as one might first try, the update is a
# fraction of it from the first updates on, so that comparison cannot tell a converged model from
# a fresh one.) The mean energies tell the same story: samples and data end up at the same energy
# level. Because training stops being driven once samples look like
# data, the loss value is no progress measure; on the grid we have a real one, the held-out
# log-likelihood, which can be put next to Chapter 2's mixture of Gaussians on the same points:

# %% tags=["nbval-check-output"]
toy_grid = ebm.GridDensity(toy_model.energy, bounds=box, steps=200, device=dev)
with torch.no_grad():
    ebm_val = float(toy_grid.log_prob(x_val.to(dev)).mean())
gmm = GaussianMixture(K=8).fit_em(x_train, generator=gen)
gmm_val = mean_log_prob(gmm, x_val)
outside = int(((x_val.abs() > 4.5).any(1)).sum())
print(f"held-out log-likelihood on {dataset} (nats per point, {len(x_val)} points, {outside} outside the box):")
print(f"  EBM, grid-normalised on the box: {ebm_val:.1f}")
print(f"  Gaussian mixture, K = 8, EM (Chapter 2): {gmm_val:.1f}")
glue("toy_ebm_val", ebm_val, display=False)
glue("toy_gmm_val", gmm_val, display=False)

# %% [markdown]
# The numbers are on the same scale: continuous nats per point, both models normalised (the EBM
# on the box; the printed count says how many validation points fall outside it, where the grid
# model has zero density). The mixture wins ({glue:text}`toy_gmm_val:.2f` against
# {glue:text}`toy_ebm_val:.2f` nats per point here): eight Gaussians describe two moons well and EM
# maximises their likelihood exactly, while the EBM is a small network trained by
# {glue:text}`toy_updates` noisy Adam updates of a $\lambda$-regularised objective. The chains are
# not what holds it back: Exercise 4 replaces them by exact samples from the grid and ends at about
# the same held-out log-likelihood. The benchmark (`benchmarks/ebm_digits.py`) repeats this over
# seeds, and on `8gaussians`, whose narrow modes (standard deviation $0.15$) the book's settings fit
# far worse than the mixture does: a sampler and a regulariser tuned for one data set are not tuned
# for another. The EBM's advantage is not this
# score but its form: any network can be an energy, which matters once the data are images.
#
# ## 6. Try it: Langevin steps down the learned landscape
#
# Start 400 chains from uniform noise on the box and run the trained model's sampler. The slider
# moves through the steps; the background is the learned energy above its minimum,
# $E_\theta - \min E_\theta$ (dark = low energy).

# %%
chain = toy_model.langevin(toy_model.noise(400, gen), gen, return_chain=True, n_steps=100).cpu()  # (101, 400, 2)
landscape_points, gx, gy = plot.grid_points(box, 120)
with torch.no_grad():
    landscape = toy_model.energy(landscape_points.to(dev)).cpu().numpy().reshape(gx.shape)
landscape = landscape - landscape.min()  # E − min E: only differences of energy matter
landscape_levels = np.arange(0, 10.5, 0.5)  # up to 10 nats above the minimum: e^-10 is negligible


def draw_langevin(fig, t=0):
    ax = fig.add_subplot(1, 1, 1)
    mesh = ax.contourf(gx, gy, np.minimum(landscape, landscape_levels[-1]), levels=landscape_levels, cmap="magma")
    fig.colorbar(mesh, ax=ax, label=r"$E_\theta(x) - \min E_\theta$ (nats)", shrink=0.85, ticks=range(0, 11, 2))
    plot.scatter(chain[t], ax=ax, bounds=box, color="cyan", s=4, alpha=0.8,
                 title=f"Langevin step t = {t}")


widgets.live(draw_langevin, figsize=(5, 4.2), t=(0, 100, 1))

# %% tags=["hide-input"]
widgets.animate(draw_langevin, [0, 1, 2, 3, 5, 8, 12, 20, 35, 60, 100], figsize=(5, 4.2), interval=700, dpi=100)

# %% [markdown]
# In the first steps the chains slide straight down the slopes — fastest from far out, where the
# energy rises steeply; by step 20 or so most are in the valleys, and afterwards they drift along
# them, pushed around by the noise.
#
# ## 7. Digits: short-run chains from a replay buffer
#
# On images we follow the recipe of {cite:t}`du2019implicit`, scaled down: pixels in $[0,1]$, an
# MLP energy, chains kept in the box, a large step with small noise and clipped gradients, a
# replay buffer of $2000$ chains with $5\%$ restarts, and a stronger energy regulariser. Each update
# runs `n_steps` Langevin steps; nothing else about the training loop changes. (This model can also be
# trained outside the notebook, e.g. on a GPU, by `python -m genlib.train_family ebm --out DIR`; the
# parameter `checkpoint=DIR/ebm.pt` then loads it, replay buffer included, instead of training it here.)

# %%
images = {split: data.images(image_dataset, split) for split in ("train", "test")}
x_img, x_img_test = images["train"].scaled(), images["test"].scaled()
shape = images["train"].shape
img_config = ebm.EBMConfig.for_dataset(image_dataset, n_steps=n_steps)
print(img_config)


def train_images(config, epochs_here, label):
    """An image EBM trained by persistent CD through genlib.train.fit; one summary line."""
    gen_here = genlib.seed_everything(seed)
    model = ebm.EBM(config, gen_here).to(dev)
    loss = ebm.ContrastiveDivergence(gen_here)
    settings = ebm.TrainConfig.for_dataset(image_dataset, epochs=epochs_here)
    tic = time.process_time()
    fit(model, loss, x_img, epochs=settings.epochs, batch_size=settings.batch_size, lr=settings.lr, device=dev,
        generator=gen_here, progress=False)
    print(f"{label}: {loss.step} updates in {time.process_time() - tic:.1f} s of CPU time")
    return model


if checkpoint:  # trained elsewhere (python -m genlib.train_family ebm ...): load, do not train
    img_model, saved = train_family.load(checkpoint, "ebm", device=device)
    train_family.check_params(checkpoint, saved, image_dataset=image_dataset, n_steps=n_steps)
    history = train_family.load_history(checkpoint)
    print(f"loaded {checkpoint}: {history.epochs} epochs of persistent CD, {len(img_model.buffer.x)} chains in its buffer")
else:
    img_model = train_images(img_config, image_epochs, "persistent CD")
img_age = img_model.buffer.age.double() * img_config.n_steps  # (buffer_size,) Langevin steps since each restart
print(f"age of the buffer's chains since their last restart: mean {float(img_age.mean()):.0f} Langevin steps"
      + (" (not saved with a checkpoint: 0 means unknown)" if checkpoint else ""))
glue("img_chain_age", float(img_age.mean()), display=False)

# %% [markdown]
# Three ways to read samples off the trained model: the buffer's persistent chains (what training
# saw), and fresh chains started from uniform noise, run for $T=$ `n_steps` (a short run, as in
# training) or for `long_steps` steps (a long run, closer to what the energy itself prefers).
# Sample quality uses the book's shared measure (`genlib.metrics.sample_quality`): a Fréchet
# distance between features of a small digit classifier, and precision / recall, always next to
# their floor — the same numbers for the training images against the test images.

# %%
floor = metrics.quality_floor(image_dataset)
gen_samples = genlib.seed_everything(seed + 1)
with torch.no_grad():
    e_data_img = float(img_model.energy(x_img.to(dev)).mean())
samples_img = {"buffer (persistent)": img_model.sample(300, generator=gen_samples, from_buffer=True).cpu()}
long_chain_x = img_model.noise(300, gen_samples)
long_energy = []
for t in range(long_steps + 1):
    if t == n_steps:
        samples_img[f"noise, {n_steps} steps"] = long_chain_x.cpu()
    with torch.no_grad():
        long_energy.append(float(img_model.energy(long_chain_x).mean()))
    if t < long_steps:
        long_chain_x = img_model.langevin(long_chain_x, gen_samples, n_steps=1)
samples_img[f"noise, {long_steps} steps"] = long_chain_x.cpu()
quality_img = {name: metrics.sample_quality(x, x_img_test, image_dataset) for name, x in samples_img.items()}
spread = lambda x: float(torch.pdist(x[:64].flatten(1)).mean())  # noqa: E731  mean distance between 64 images
glue("img_spread_test", spread(x_img_test), display=False)
glue("img_spread_long", spread(samples_img[f"noise, {long_steps} steps"]), display=False)
glue("img_spread_buffer", spread(samples_img["buffer (persistent)"]), display=False)
glue("img_energy_gap", e_data_img - long_energy[-1], display=False)
for key, q in (("floor", floor), ("buffer", quality_img["buffer (persistent)"]),
               ("short", quality_img[f"noise, {n_steps} steps"]), ("long", quality_img[f"noise, {long_steps} steps"])):
    for metric in ("frechet", "precision", "recall"):
        glue(f"img_{key}_{metric}", q[metric], display=False)

# %%
print(f"floor (train vs test images): Fréchet {floor['frechet']:.1f}, "
      f"precision {floor['precision']:.2f}, recall {floor['recall']:.2f}")
for name, q in quality_img.items():
    print(f"{name:22s}: Fréchet {q['frechet']:6.0f}, precision {q['precision']:.1f}, recall {q['recall']:.1f}")
print(f"mean distance between two of 64 images: test {spread(x_img_test):.1f}, "
      f"buffer {spread(samples_img['buffer (persistent)']):.1f}, {long_steps}-step chains "
      f"{spread(samples_img[f'noise, {long_steps} steps']):.1f}")

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 4, figsize=(15, 4.3))
plot.image_grid(x_img_test[:64], shape, nrow=8, ax=axes[0], vmax=1, title="test images")
for ax, (name, x) in zip(axes[1:], samples_img.items()):
    plot.image_grid(x[:64], shape, nrow=8, ax=ax, vmax=1,
                    title=f"{name}\nFréchet {quality_img[name]['frechet']:.0f}")
fig.tight_layout()
plt.show()

# %% [markdown]
# The buffer's chains are the best of the three — the energy was trained to make exactly these
# chains look like the data, and each has been advanced on average {glue:text}`img_chain_age:.0f`
# Langevin steps since it last started from noise — but they are not digits to the metrics: a
# Fréchet distance of {glue:text}`img_buffer_frechet:.0f` against a floor of
# {glue:text}`img_floor_frechet:.1f`, and a precision of {glue:text}`img_buffer_precision:.2f` against
# {glue:text}`img_floor_precision:.2f`: fewer than half of them fall inside the neighbourhoods of the
# test digits. Their recall, {glue:text}`img_buffer_recall:.2f`, is *above* the floor's
# {glue:text}`img_floor_recall:.2f`; that does not mean better coverage than real digits. Recall
# counts the test images that fall within some sample's distance to its $n_{\text{nn}}$-th nearest
# sample ($n_{\text{nn}}=3$), and with only $300$ noisy, spread-out samples those balls are large, so they swallow test
# images easily — with few samples, recall rewards spread as much as coverage. Fresh chains tell a
# different story. After `n_steps` steps from noise they are grey, blotchy and only vaguely
# digit-like — the model never had to learn to turn noise into digits in one short run, because its
# chains (except the ones that restart) did not start from noise. Run much longer, they collapse: the
# mean distance between two of the long-run samples is {glue:text}`img_spread_long:.1f`, against
# {glue:text}`img_spread_test:.1f` between two test digits — the figure's long-run panel is one
# saturated, non-digit shape repeated. That is the real evidence that the energy's deepest minima
# are not digits. The energy along the long run:

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(6, 3.2))
ax.plot(np.arange(long_steps + 1), long_energy, color="tab:red", label=r"mean $E_\theta(\hat x_t)$, chains from noise")
ax.axhline(e_data_img, color="tab:green", ls="--", label=r"mean $E_\theta(x)$, training images")
ax.axvline(n_steps, color="0.5", ls=":", lw=1, label=f"t = {n_steps} (training's chain length)")
ax.set_xlim(0, long_steps)
ax.set_xlabel("Langevin step t"), ax.set_ylabel("energy (nats)")
ax.set_title("long-run chains go below the data's energy")
ax.legend(frameon=False, fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# The chains pass the data's mean energy and end {glue:text}`img_energy_gap:.2f` nats below it. That
# small gap says little about probability: these chains are cold ($\sigma=0.01$, almost gradient
# descent, Exercise 2), so they are mode-seeking — they find minima, not typical points of
# $p_\theta$, and a minimum can hold little mass. What the collapse above does show is that the
# energy's minima are not at the digits. Short-run persistent CD learns an energy whose short-run chains
# (from the buffer) produce good samples, not necessarily an energy whose true distribution
# $p_\theta$ is the data's. {cite:t}`nijkamp2019learning,nijkamp2020anatomy` analyse this
# "non-convergent" regime: with chains this short, the model is best read as a sampler (a buffer
# plus $T$ steps), not as a density. Sampling $p_\theta$ faithfully needs long chains during
# training too — and long chains are what the book profile cannot afford.
#
# ## 8. What breaks: step size, chain length, the buffer
#
# Training is fragile, and the sampler is part of the model. Four variants of the recipe above,
# each changing one thing and trained for half as long (the reference is retrained for the same
# budget), with samples read off the way each was trained (its buffer, or noise when it has none):

# %%
variants = {
    "reference": {},
    "step 10x smaller": dict(step_size=img_config.step_size / 10),
    "step 30x larger": dict(step_size=img_config.step_size * 30),
    "2 steps per update": dict(n_steps=2),
    "no buffer (from noise)": dict(buffer_size=0),
}
variant_samples, variant_quality = {}, {}
for name, change in variants.items():
    model_v = train_images(ebm.EBMConfig(**{**img_config.__dict__, **change}), max(1, image_epochs // 2), name)
    x_v = model_v.sample(300, generator=gen_samples, from_buffer=True).cpu()
    variant_samples[name] = x_v
    variant_quality[name] = metrics.sample_quality(x_v, x_img_test, image_dataset)

# %%
for name, q in variant_quality.items():
    print(f"{name:24s}: Fréchet {q['frechet']:6.0f}, precision {q['precision']:.1f}, recall {q['recall']:.1f}")
for key, name in (("ref", "reference"), ("big", "step 30x larger")):
    glue(f"var_{key}_frechet", variant_quality[name]["frechet"], display=False)
    glue(f"var_{key}_precision", variant_quality[name]["precision"], display=False)

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, len(variants), figsize=(3.2 * len(variants), 3.9))
for ax, (name, x) in zip(axes, variant_samples.items()):
    plot.image_grid(x[:36], shape, nrow=6, ax=ax, vmax=1,
                    title=f"{name}\nFréchet {variant_quality[name]['frechet']:.0f}")
fig.tight_layout()
plt.show()

# %% [markdown]
# * **Step $\eta/10$**, or **2 steps per update**: the chains move too little between updates.
#   The model pushes up the energy of noise-like samples near where they start, and has no reason
#   to shape the energy anywhere near the digits; its samples stay noisy.
# * **Step $30\eta$**: a step can move a pixel by $\tfrac{30\eta}{2}\times0.03=0.9$ (the drift's
#   factor times the clipped gradient, with $\eta=2$), nearly the whole $[0,1]$ range, so chains hop
#   between saturated corners of the box. Strokes come out blocky and black-and-white.
# * **No buffer**: every update starts chains from uniform noise and runs `n_steps` steps. In
#   this budget the chains end in speckled images: the model raises the energy of speckle, but $T$
#   cold steps from noise never get near the digits for it to shape the energy there. Short-run
#   training from noise {cite:p}`nijkamp2019learning` needs more steps per update and longer training.
#
# The numbers do not rank the variants the way the eye does. The $30\eta$ step's samples look crisper
# than the reference's, and in this run their precision is {glue:text}`var_big_precision:.2f`
# against the reference's {glue:text}`var_ref_precision:.2f`, yet their Fréchet distance is worse,
# {glue:text}`var_big_frechet:.0f` against {glue:text}`var_ref_frechet:.0f`: precision asks only
# whether each sample sits near some digit, while the Fréchet distance also compares the spread of
# the samples' features with the digits' — and black-and-white strokes have the wrong spread. Read
# the metrics together, and over seeds before ranking (these are single runs). None of these
# changes the loss's formula: the sampler settings decide what an EBM learns.

# %% [markdown]
# ## 9. Training without a sampler: score matching and noise-contrastive estimation
#
# Persistent chains are one way around $Z$. Two others avoid sampling the model altogether, and
# on the toy the grid checks each of them.
#
# **Score matching** {cite:p}`hyvarinen2005estimation` fits the model's *score*
# $s_\theta(x)=\nabla_x\log p_\theta(x)=-\nabla_x E_\theta(x)$, in which $Z$ has vanished, to the
# data's, by minimising the Fisher divergence $\tfrac12\mathbb E_{p_\text{data}}\|s_\theta-\nabla_x\log p_\text{data}\|^2$.
# The data's score is unknown, but integrating by parts turns the objective into one that needs
# only data, up to a constant:
#
# $$
# J(\theta) = \mathbb E_{x\sim p_\text{data}}\Big[\tfrac12\|\nabla_x E_\theta(x)\|^2 - \Delta_x E_\theta(x)\Big],
# \qquad \Delta_x E = \sum_{d} \frac{\partial^2 E}{\partial x_d^2}.
# $$
#
# The Laplacian costs one backward pass per dimension: cheap in 2-D, prohibitive for images.
# **Denoising score matching** {cite:p}`vincent2011connection` removes it: perturb each point,
# $\tilde x = x+\sigma\varepsilon$, and regress the model's score at $\tilde x$ onto the direction back
# to $x$, minimising $\tfrac12\mathbb E\|\sigma s_\theta(\tilde x)+\varepsilon\|^2$. Its minimiser is the
# score of the *noised* data $p_\text{data} * \mathcal N(0,\sigma^2 I)$, not of the data — exactly the
# regression a diffusion model solves at every noise level (Chapter 8).
#
# **Noise-contrastive estimation** {cite:p}`gutmann2010noise` keeps the likelihood's form but treats
# $\log Z$ as one more parameter $c$, $\log p_\theta(x)=-E_\theta(x)-c$, and learns both by logistic
# regression: tell the data from $\nu$ times as many draws of a known noise density $p_\text{n}$, with the
# logit $\log p_\theta(x)-\log(\nu p_\text{n}(x))$. The best classifier's logit is $\log p_\text{data}-\log(\nu p_\text{n})$,
# so at the optimum $p_\theta=p_\text{data}$ and $c=\log Z$. Here $p_\text{n}$ is a Gaussian with the data's
# mean and $1.5$ times its standard deviations. A GAN's discriminator (Chapter 5) is the same
# classifier with a *learned* noise distribution: it too estimates a density ratio,
# $D^*=p_\text{data}/(p_\text{data}+p_g)$.

# %%
show(energy.score_matching_loss)
show(energy.dsm_loss)

# %%
def train_toy(model, loss, label):
    """A toy model trained with ``loss`` by genlib.train.fit, as the PCD model was; one summary line."""
    gen_here = genlib.seed_everything(seed)
    model = model.to(dev)
    tic = time.process_time()
    fit(model, loss(gen_here), x_train, epochs=toy_train.epochs, batch_size=toy_train.batch_size, lr=toy_train.lr,
        device=dev, generator=gen_here, progress=False)
    with torch.no_grad():
        held_out = float(ebm.GridDensity(model.energy, bounds=box, steps=200, device=dev).log_prob(x_val.to(dev)).mean())
    print(f"{label:34s}: held-out log-likelihood {held_out:.2f} nats per point ({time.process_time() - tic:.1f} s of CPU time)")
    return model, held_out


dsm_sigma = 0.2  # the noise level of denoising score matching
no_buffer = ebm.EBMConfig(**{**toy_config.__dict__, "buffer_size": 0})
nce_noise = energy.GaussianNoise.fit(x_train, scale=1.5)
sm_model, sm_val = train_toy(ebm.EBM(no_buffer), lambda g: energy.ScoreMatchingLoss(), "score matching")
dsm_model, dsm_val = train_toy(ebm.EBM(no_buffer), lambda g: energy.DenoisingScoreMatchingLoss(dsm_sigma, g),
                               f"denoising score matching, sigma {dsm_sigma}")
nce_model, nce_val = train_toy(energy.SelfNormalised(ebm.EnergyNet(2, toy_config.hidden, toy_config.layers)),
                               lambda g: energy.NCELoss(nce_noise, nu=1, generator=g), "noise-contrastive estimation")
with torch.no_grad():
    nce_log_z = float(ebm.GridDensity(nce_model.energy, bounds=box, steps=200, device=dev).log_z())
nce_c = float(nce_model.log_z.detach())
print(f"{'persistent chains (section 4)':34s}: held-out log-likelihood {ebm_val:.2f}")
print(f"{'Gaussian mixture, K = 8, EM':34s}: held-out log-likelihood {gmm_val:.2f}")
print(f"NCE's learned constant c = {nce_c:.2f}; the grid's log Z of its energy = {nce_log_z:.2f}")
for key, value in (("sm_val", sm_val), ("dsm_val", dsm_val), ("nce_val", nce_val), ("nce_c", nce_c),
                   ("nce_log_z", nce_log_z)):
    glue(key, value, display=False)

# %% tags=["nbval-check-output"]
print("NCE's c is log Z to within 0.2 nats:", abs(nce_c - nce_log_z) < 0.2)

# %%
fig, axes = plt.subplots(1, 4, figsize=(14, 3.6), layout="constrained", dpi=100)
toy_models = {"persistent chains": toy_model, "score matching": sm_model,
              f"denoising SM, $\\sigma={dsm_sigma}$": dsm_model, "NCE": nce_model}
for ax, (name, model) in zip(axes, toy_models.items()):
    with torch.no_grad():
        dens = ebm.GridDensity(model.energy, bounds=box, steps=200, device=dev).log_prob(
            points_snap.to(dev)).exp().cpu().numpy().reshape(gx_snap.shape)
    mesh = ax.pcolormesh(gx_snap, gy_snap, dens, cmap="viridis", vmin=0, vmax=p_max, shading="auto")
    plot.scatter(x_val[::4], ax=ax, bounds=box, color="white", s=1, alpha=0.5, title=name)
fig.colorbar(mesh, ax=axes, label=r"density $p_\theta(x)$", shrink=0.9)
plt.show()

# %% [markdown]
# The four densities on one colour scale, with held-out points in white. On this toy, in this run,
# score matching reaches a held-out log-likelihood of {glue:text}`sm_val:.2f` nats per point, NCE
# {glue:text}`nce_val:.2f` and denoising score matching {glue:text}`dsm_val:.2f`, against
# {glue:text}`toy_ebm_val:.2f` for the persistent chains and {glue:text}`toy_gmm_val:.2f` for the
# mixture (single runs; `benchmarks/ebm_digits.py` repeats the comparison over seeds). Denoising
# score matching fits the noised data by construction: its density is the data's blurred by
# $\sigma$, and it is no more than that, whatever the network. NCE's learned
# constant is {glue:text}`nce_c:.2f`, and the grid's $\log Z$ of the energy it learned is
# {glue:text}`nce_log_z:.2f`: the classification task alone has taught the model its normaliser.
# Neither score matching nor NCE ran a single Langevin step. Their limits appear in high
# dimension: the Laplacian's cost for score matching, and for NCE a noise density that must be
# close enough to the data for the classification to stay hard — a Gaussian is trivially
# distinguished from digits.
#
# ## 10. Sampling and normalising better: MALA, AIS, and products of experts
#
# Section 3's sampler is biased for any finite $\eta$ (Exercise 2 computes how much for a
# Gaussian). The **Metropolis-adjusted Langevin algorithm** {cite:p}`roberts1996exponential` treats
# the Langevin step as a proposal $y$ and accepts it with probability
# $\min\big(1, e^{E(x)-E(y)}\,\kappa(x\mid y)/\kappa(y\mid x)\big)$, $\kappa(y\mid x)=\mathcal N\big(y;\,x-\tfrac\eta2\nabla E(x),\,\eta I\big)$:
# the chain then leaves $p_\theta$ exactly invariant, whatever $\eta$. On the trained toy energy
# we start $2000$ chains at *exact* samples from the grid and run $300$ steps with a step $\eta$ five
# times the training sampler's: an exact sampler must stay where it started, in distribution.

# %%
show(energy.mala)

# %%
with torch.no_grad():
    e_exact = float((torch.softmax(toy_grid.log_weights(), 0) * toy_model.energy(toy_grid.centres)).sum())
x_exact = toy_grid.sample(2000, generator=gen).to(dev)
big_step = 5 * toy_config.step_size
x_ula = ebm.langevin(toy_model.energy, x_exact, 300, big_step, generator=gen)
x_mala, mala_acceptance = energy.mala(toy_model.energy, x_exact, 300, big_step, generator=gen)
with torch.no_grad():
    e_ula, e_mala = float(toy_model.energy(x_ula).mean()), float(toy_model.energy(x_mala).mean())
    e_se = float(toy_model.energy(x_exact).std()) / math.sqrt(2000)
print(f"mean energy under p_theta: exact (grid) {e_exact:.3f}; after 300 steps of eta = {big_step}: "
      f"Langevin {e_ula:.3f}, MALA {e_mala:.3f} (acceptance {mala_acceptance:.2f}; Monte Carlo s.e. {e_se:.3f})")
glue("e_exact", e_exact, display=False), glue("e_ula", e_ula, display=False), glue("e_mala", e_mala, display=False)
glue("mala_acceptance", mala_acceptance, display=False)

# %% tags=["nbval-check-output"]
print("MALA within 4 standard errors of the exact mean energy:", abs(e_mala - e_exact) < 4 * e_se)
print("plain Langevin further from it than MALA:", abs(e_ula - e_exact) > abs(e_mala - e_exact))

# %% [markdown]
# With the large step plain Langevin drifts to a broader distribution — its chains' mean energy
# rises from {glue:text}`e_exact:.3f` to {glue:text}`e_ula:.3f` — while MALA, rejecting a fraction
# $1-${glue:text}`mala_acceptance:.2f` of its proposals, stays at {glue:text}`e_mala:.3f`. The price is
# one more energy evaluation per step and, in high dimension, step sizes small enough to be
# accepted; the cold image samplers of section 7 would reject almost everything.
#
# **Annealed importance sampling** {cite:p}`neal2001annealed` estimates $\log Z$ where no grid can:
# start chains from a Gaussian $p_0$ with known $Z_0$, move them through the geometric path
# $p_\beta\propto p_0^{1-\beta}e^{-\beta E_\theta}$ for $\beta$ from $0$ to $1$ with MALA steps, and add
# $(\beta_k-\beta_{k-1})\big(E_0(x)-E_\theta(x)\big)$ to each chain's log weight at every stage. The
# mean weight is an unbiased estimate of $Z/Z_0$. In 2-D we can check it against the grid:

# %%
tic = time.process_time()
ais = energy.ais_log_z(toy_model.energy, 2, n_chains=500, n_temps=100, step_size=0.2, generator=gen, device=dev)
with torch.no_grad():
    grid_log_z = float(toy_grid.log_z())
print(f"log Z of the trained toy energy: AIS {ais.log_z:.3f} ± {ais.se:.3f} (effective sample size "
      f"{ais.ess:.0f} of 500, {time.process_time() - tic:.1f} s of CPU time); grid {grid_log_z:.3f}")
glue("ais_log_z", ais.log_z, display=False), glue("ais_se", ais.se, display=False)
glue("grid_log_z", grid_log_z, display=False)

# %% tags=["nbval-check-output"]
print("AIS agrees with the grid within 4 standard errors (+ 0.02 for the grid's box):",
      abs(ais.log_z - grid_log_z) < 4 * ais.se + 0.02)

# %% [markdown]
# AIS gives {glue:text}`ais_log_z:.2f` ± {glue:text}`ais_se:.2f` against the grid's
# {glue:text}`grid_log_z:.2f` (the grid sums only over its box; the mass outside is negligible here).
# Nothing in AIS needs a grid, so the same code estimates an image model's likelihood — with more
# temperatures, and with a standard error that tells when it cannot be trusted.
#
# Energies also **compose**. Multiplying densities adds energies, $E = E_1 + E_2$: a *product of
# experts* {cite:p}`hinton2002training` is likely only where every expert agrees, an intersection,
# where a mixture would be a union. Here the trained moons energy is multiplied by an expert that
# only says "$x_1 > 0$" (energy $\operatorname{softplus}(-x_1/0.1)$); no retraining, and the grid
# normalises the product:

# %%
def right_half(x):
    """An expert that only prefers x_1 > 0: E(x) = softplus(−x_1 / 0.1). (B, 2) -> (B,)"""
    return torch.nn.functional.softplus(-x[:, 0] / 0.1)


poe = energy.product_of_experts(toy_model.energy, right_half)
fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), layout="constrained", dpi=100)
for ax, (name, e) in zip(axes, (("expert 1: the moons EBM", toy_model.energy), ("expert 2: $x_1 > 0$", right_half),
                                ("product: $E_1 + E_2$", poe))):
    with torch.no_grad():
        dens = ebm.GridDensity(e, bounds=box, steps=200, device=dev).log_prob(
            points_snap.to(dev)).exp().cpu().numpy().reshape(gx_snap.shape)
    mesh = ax.pcolormesh(gx_snap, gy_snap, dens, cmap="viridis", shading="auto")
    fig.colorbar(mesh, ax=ax, label=r"density", shrink=0.8)
    plot.scatter(np.empty((0, 2)), ax=ax, bounds=box, title=name)
plt.show()

# %% [markdown]
# (Each panel has its own colour scale: the half-plane expert alone is nearly flat.) The product
# keeps the part of the moons that lies at $x_1>0$ and renormalises it — the model was never
# trained for this.
#
# ## 11. Boltzmann machines: where contrastive divergence comes from
#
# CD was invented for the **restricted Boltzmann machine** (RBM) {cite:p}`hinton2002training`:
# binary pixels $v\in\{0,1\}^D$, binary hidden units $h\in\{0,1\}^H$, and a bilinear energy
# $E(v,h)=-b^\top v-c^\top h-v^\top W h$. With no connections within a layer, each layer given the
# other is a product of independent Bernoullis, $p(h_j=1\mid v)=\sigma(c_j+(v^\top W)_j)$ and
# $p(v_d=1\mid h)=\sigma(b_d+(Wh)_d)$, so one step of block Gibbs sampling updates all units at once.
# Summing $h$ out gives the free energy $F(v)=-b^\top v-\sum_j\operatorname{softplus}(c_j+(v^\top W)_j)$,
# an energy on pixels, and the likelihood gradient of section 2 with $F$ in place of $E$. **CD-$T$**
# runs $T$ Gibbs sweeps *starting at each data point*; **PCD** {cite:p}`tieleman2008training` keeps
# $100$ chains running between updates instead. With $H=16$ hidden units, $\log Z$ is an exact sum
# over the $2^{16}$ hidden states, so we can score both on held-out binarised digits, next to the
# model that treats pixels as independent (the best "no interactions" model):

# %%
show(energy.RBMContrastiveDivergence.__call__)

# %%
v_train, v_test = (x_img > 0.5).float(), (x_img_test > 0.5).float()
pixel_p = v_train.mean(0).clamp(1e-3, 1 - 1e-3)  # (D,) independent pixels
indep_ll = float((v_test * pixel_p.log() + (1 - v_test) * (1 - pixel_p).log()).sum(1).mean())
rbms, rbm_ll = {}, {}
for name, persistent in (("CD-1", False), ("PCD-1", True)):
    gen_here = genlib.seed_everything(seed)
    rbm = energy.RBM(v_train.shape[1], 16, gen_here).to(dev)
    tic = time.process_time()
    fit(rbm, energy.RBMContrastiveDivergence(k=1, persistent=persistent, n_chains=100, generator=gen_here), v_train,
        epochs=image_epochs, batch_size=50, lr=0.01, device=dev, generator=gen_here, progress=False)
    with torch.no_grad():
        rbm_ll[name] = float(rbm.log_prob(v_test.to(dev)).mean())
    rbms[name] = rbm
    print(f"RBM, H = 16, {name:5s}: exact held-out log-likelihood {rbm_ll[name]:.1f} nats per image "
          f"({time.process_time() - tic:.1f} s of CPU time)")
print(f"independent pixels          : held-out log-likelihood {indep_ll:.1f} nats per image")
glue("rbm_cd_ll", rbm_ll["CD-1"], display=False), glue("rbm_pcd_ll", rbm_ll["PCD-1"], display=False)
glue("indep_ll", indep_ll, display=False)

# %%
fig, axes = plt.subplots(1, 3, figsize=(11, 4), dpi=100)
plot.image_grid(v_test[:36], shape, nrow=6, ax=axes[0], vmax=1, title="binarised test digits")
for ax, (name, rbm) in zip(axes[1:], rbms.items()):
    plot.image_grid(rbm.sample(36, k=1000, generator=gen).cpu(), shape, nrow=6, ax=ax, vmax=1,
                    title=f"RBM trained by {name}\n1000 Gibbs sweeps from noise")
fig.tight_layout()
plt.show()

# %% [markdown]
# Both RBMs beat independent pixels by a wide margin — {glue:text}`rbm_cd_ll:.1f` (CD-1) and
# {glue:text}`rbm_pcd_ll:.1f` (PCD-1) against {glue:text}`indep_ll:.1f` nats per image — because
# sixteen hidden units already capture which pixels switch on together. These are binary nats on
# binarised images: not comparable with the continuous densities of the toys, nor with Chapter 4's
# models of grey levels. CD-1 scores higher than PCD here, and `benchmarks/ebm_digits.py` finds the
# same on each of its seeds at these settings ($100$ persistent chains, Adam at a learning rate of
# $0.01$); which wins depends on such settings, so the ranking is theirs, not a law. Long Gibbs runs from both give blocky strokes rather than clean digits: sixteen hidden units
# make a small model, and its exact likelihood, not its samples, is what this section is for.
#
# ## 12. A classifier is an energy model: JEM
#
# Any classifier with logits $f_\theta(x)[y]$ already defines an energy model
# {cite:p}`grathwohl2020your`: read the logits as $p_\theta(x,y)\propto e^{f_\theta(x)[y]}$. Then
# $p_\theta(y\mid x)$ is the usual softmax — $Z$ cancels — and summing out $y$ gives
# $E_\theta(x)=-\log\sum_y e^{f_\theta(x)[y]}$. A **joint energy model** (JEM) trains the same network on
# both: the cross-entropy of the labels plus section 4's persistent-chain loss on $E_\theta(x)$, with
# the image sampler of section 7. Both the JEM and its classifier-only twin below see their
# classification inputs with Gaussian noise of standard deviation $0.2$ added (an augmentation that
# lowers the test error of this small network).

# %%
show(energy.JEMLoss.__call__)

# %%
labels_train, labels_test = images["train"].y, images["test"].y
jem_models, jem_stats = {}, {}
for name, weight in (("classifier only", 0.0), ("JEM", energy.JEMConfig().gen_weight)):
    gen_here = genlib.seed_everything(seed)
    jem = energy.JEM(energy.JEMConfig(dims=x_img.shape[1], n_steps=n_steps, gen_weight=weight), gen_here).to(dev)
    tic = time.process_time()
    fit(jem, energy.JEMLoss(gen_here), (x_img, labels_train), epochs=jem_epochs, batch_size=100, lr=3e-3, device=dev,
        generator=gen_here, progress=False)
    seconds = time.process_time() - tic
    with torch.no_grad():
        error = float((jem.classify(x_img_test.to(dev)).cpu() != labels_test).float().mean())
    jem_models[name], jem_stats[name] = jem, {"error": error, "seconds": seconds}
    print(f"{name:16s}: test error {100 * error:.1f}% ({seconds:.1f} s of CPU time)")
jem_samples = jem_models["JEM"].sample(300, gen_samples).cpu()
jem_quality = metrics.sample_quality(jem_samples, x_img_test, image_dataset)
print(f"JEM's samples (its buffer, {n_steps} steps): Fréchet {jem_quality['frechet']:.0f}, "
      f"precision {jem_quality['precision']:.2f}, recall {jem_quality['recall']:.2f}")
glue("jem_error", 100 * jem_stats["JEM"]["error"], display=False)
glue("clf_error", 100 * jem_stats["classifier only"]["error"], display=False)
glue("jem_frechet", jem_quality["frechet"], display=False)

# %% [markdown]
# The joint model classifies with a test error of {glue:text}`jem_error:.1f`% against
# {glue:text}`clf_error:.1f`% for the same network trained as a classifier only, and its buffer's
# samples reach a Fréchet distance of {glue:text}`jem_frechet:.0f` (section 7's EBM:
# {glue:text}`img_buffer_frechet:.0f`). One network now does both jobs, but not for free: the
# generative term costs $T$ Langevin steps per update, most of the training time. It need not cost
# accuracy: with the generative term weighted $0.3$ against the cross-entropy (`JEMConfig.gen_weight`),
# the benchmark (`benchmarks/ebm_digits.py --only jem`, three seeds) finds the JEM's test error and the
# classifier-only twin's within each other's ranges — lower on two seeds, higher on one — so this book
# ranks neither above the other. At weight $1$ the generative term dominated and cost accuracy on every seed.
#
# An energy also **scores** inputs: a low $E_\theta(x)$ says "this looks like my training data".
# Below, the energies of test digits against three kinds of input no model saw — uniform noise,
# digits with their grey levels inverted, and blank images — under section 7's EBM and under JEM.
# The printed number is the fraction of (digit, other) pairs in which the digit has the lower
# energy (the area under the ROC curve of the energy used as a detector; $0.5$ is chance).

# %%
def auroc(e_in, e_out):
    """P(E(in) < E(out)) over all pairs: the area under the ROC curve of −E as an in-distribution score."""
    return float((e_in[:, None] < e_out[None, :]).double().mean() + 0.5 * (e_in[:, None] == e_out[None, :]).double().mean())


ood_inputs = {"uniform noise": torch.rand(300, x_img.shape[1], generator=gen), "inverted digits": 1 - x_img_test[:300],
              "blank images": torch.zeros(300, x_img.shape[1])}
ood = {}
for model_name, model in (("EBM (section 7)", img_model), ("JEM", jem_models["JEM"])):
    with torch.no_grad():
        e_in = model.energy(x_img_test.to(dev)).cpu()
        for input_name, x_out in ood_inputs.items():
            ood[model_name, input_name] = auroc(e_in, model.energy(x_out.to(dev)).cpu())
for input_name in ood_inputs:
    print(f"{input_name:16s}: AUROC " + ", ".join(f"{m} {ood[m, input_name]:.2f}" for m in ("EBM (section 7)", "JEM")))
glue("ood_blank_ebm", ood["EBM (section 7)", "blank images"], display=False)
glue("ood_blank_jem", ood["JEM", "blank images"], display=False)
glue("ood_easy_min", min(v for (m, name), v in ood.items() if name != "blank images"), display=False)

# %% [markdown]
# Both energies separate noise and inverted digits from the test digits almost perfectly (every
# such AUROC is at least {glue:text}`ood_easy_min:.2f`). Blank
# images are harder: the AUROCs are {glue:text}`ood_blank_ebm:.2f` for section 7's EBM and
# {glue:text}`ood_blank_jem:.2f` for JEM in this run. An image that is all background sits close
# to the digits' most common pixel value, and a low energy is not the same as typical — the lesson
# of the cold chains of section 7. Likelihood-based detectors are known to fail this way on images
# {cite:p}`nalisnick2019do`, so an energy is a useful score, not a guarantee.
#
# ## 13. Where EBMs sit: an indirect generator, and its cost
#
# Chapter 1 split generators into *direct* ones, which map noise to a sample in one pass, and
# *indirect* ones, which define a score and search it. An EBM is the purest indirect generator: its
# network computes $E_\theta: \mathcal X\to\mathbb R$ and nothing else; every sample costs a chain of
# forward *and* backward passes. We time one Langevin step of 100 chains on the digit model, a
# finished sample at the chain lengths used above, and — for scale — one forward pass of the same
# network, the cost a direct generator of the same size would pay per batch.

# %%
x_timing = img_model.noise(100, gen)
step_seconds = bench.seconds(lambda: img_model.langevin(x_timing, gen, n_steps=1))
with torch.no_grad():
    forward_seconds = bench.seconds(lambda: img_model.energy(x_timing))
print(f"one Langevin step, 100 chains: {1e3 * step_seconds:.2f} ms "
      f"({1e6 * step_seconds / 100:.1f} µs per chain step)")
print(f"one forward pass, 100 images: {1e3 * forward_seconds:.2f} ms (what a direct generator of this size pays)")
for steps in (n_steps, long_steps):
    print(f"a finished sample with {steps:3d} steps: {1e3 * steps * step_seconds / 100:.2f} ms per image "
          f"= {steps * step_seconds / forward_seconds:.0f}x one forward pass")

# %% [markdown]
# (Timings depend on the machine and its load, and are not compared by the book's tests.) A
# Langevin step costs a forward and a backward pass through the network, a few forward passes'
# worth, and a sample costs $T$ of them. The persistent buffer hides this cost during training by spreading each chain over many
# updates, but a fresh sample from noise pays in full, and section 7 showed that short chains
# from noise are not good samples. Chapter 8's diffusion models also generate by many small
# denoising steps, but learn the step itself, so that a fixed, modest number of steps from noise
# gives good samples.
#
# ## Summary
#
# * An EBM is $p_\theta=e^{-E_\theta}/Z(\theta)$ for any network $E_\theta: \mathcal X\to\mathbb R$.
#   Ratios and $\nabla_x\log p_\theta$ need no $Z$; likelihoods do.
# * $\nabla_\theta \log Z(\theta)=\mathbb E_{p_\theta}[\nabla_\theta E_\theta]$, so the likelihood
#   gradient is "push the energy of data down, push the energy of model samples up"; checked on a
#   grid, exactly and with samples.
# * Langevin dynamics samples from $\nabla_x E_\theta$ alone; with $\sigma=\sqrt{2\eta}$ it recovers a
#   known Gaussian's moments, with less noise it samples a colder distribution.
# * Persistent short-run chains (a replay buffer; not CD-$T$, which starts at the data) train an EBM
#   through the same `fit` loop as every other model; by the end of training the two gradient terms
#   cancel down to minibatch noise.
# * On digits, the buffer's chains are the best samples but still far from the floor, short chains
#   from noise are worse, and long ones collapse onto one non-digit shape: the learned energy is a
#   short-run sampler more than a faithful density. Step size, chain length and the buffer decide
#   what is learned.
# * Score matching, denoising score matching and NCE train an energy without sampling it; on the
#   toy the grid scores them, and NCE's learned constant is the model's $\log Z$. Denoising score
#   matching fits the noised data: it is Chapter 8's objective at one noise level.
# * MALA makes Langevin exact with a Metropolis test; AIS estimates $\log Z$ beyond the grid; energies
#   add into products of experts.
# * CD-$T$ comes from Boltzmann machines, where block Gibbs sampling is cheap and a small RBM's
#   likelihood is exact by enumeration; any classifier is an energy model (JEM), and energies score
#   inputs, with the blind spots of likelihoods.
#
# ## Exercises
#
# **1. A Gaussian EBM by CD.** Take the energy $E_\theta(x)=\tfrac12 (x-\theta)^2$ in one dimension
# ($Z=\sqrt{2\pi}$ for every $\theta$). Write the CD gradient with exact model samples and show
# that its expectation is $\theta - \bar x$, the gradient of the Gaussian negative log-likelihood.
# What is the fixed point of gradient descent?
#
# ```{admonition} Solution
# :class: dropdown
# $\nabla_\theta E_\theta(x)=\theta-x$. The CD gradient is
# $\frac1N\sum_n(\theta-x^{(n)})-\frac1{\hat N}\sum_m(\theta-\hat x^{(m)})=\bar{\hat x}-\bar x$, and with
# $\hat x\sim\mathcal N(\theta,1)$ its expectation is $\theta-\bar x$. The Gaussian NLL
# $\frac1N\sum_n\tfrac12(x^{(n)}-\theta)^2+\tfrac12\log 2\pi$ has the same gradient (here $Z$ does
# not depend on $\theta$, so $\nabla_\theta\log Z=0=\mathbb E_{p_\theta}[\theta-\hat x]$, as section 2
# says it must). The fixed point is $\theta=\bar x$, the maximum-likelihood mean: the update
# vanishes exactly when the samples' mean equals the data's, the 1-D version of "the two terms
# cancel".
# ```
#
# **2. How cold is a cold sampler?** For the energy of $\mathcal N(0, s^2)$ in one dimension, find
# the stationary variance of the chain $x_{t+1}=x_t-\tfrac{\eta}{2}\nabla E(x_t)+\sigma\varepsilon_t$. What
# does it give for $\sigma=\sqrt{\eta}$, and for the digit sampler's $\eta=2,\sigma=0.01$ on an energy
# with curvature $1/s^2 = 1$? That sampler also clips every entry of $\nabla_x E$ to $\pm0.03$: what
# does the clipping change?
#
# ```{admonition} Solution
# :class: dropdown
# With $a=\eta/(2s^2)$, $x_{t+1}=(1-a)x_t+\sigma\varepsilon_t$, so the stationary variance $v$ solves
# $v=(1-a)^2v+\sigma^2$: $v=\sigma^2/\big(a(2-a)\big)$ (stable for $0<a<2$, i.e. $\eta<4s^2$). With
# $\sigma^2=\eta$: $v=s^2/\big(1-\eta/(4s^2)\big)\to s^2$ as $\eta\to0$, the step-size bias seen in the
# tests (about $\eta/(4s^2)$ relative). With $\eta=2,\sigma=0.01$ and $s=1$: $a=1$ and $v=\sigma^2=10^{-4}$,
# a standard deviation of $0.01$ instead of $1$ — the chain barely explores; it is almost gradient
# descent. Clipping caps the drift at $\tfrac{\eta}{2}\times0.03=0.03$ per pixel and step: far from the
# minimum (where $|\nabla E|=|x|/s^2>0.03$) the chain walks towards it at that constant speed whatever
# the curvature, so it arrives more slowly; within $0.03$ of the minimum the gradient is not clipped,
# the analysis above holds, and the chain's spread of $0.01$ keeps it there. So clipping slows the
# approach but leaves the stationary spread of $10^{-4}$. (Run
# `ebm.langevin(lambda x: 0.5 * (x**2).sum(1), torch.randn(5000, 1), 200, 2.0, 0.01, clip_grad=0.03).var()`
# to see about `1e-4`.) That is why the image sampler finds sharp minima and why its samples
# reflect where the energy is lowest, not the full distribution.
# ```
#
# **3. More steps per update.** Rerun the chapter with 60 Langevin steps per update
# (`python -m genlib.run 03 n_steps=60`). What does it cost, and how do the samples from noise,
# the long-run chains and the "no buffer" variant change?
#
# ```{admonition} Solution
# :class: dropdown
# Each update now runs $60$ forward-backward passes instead of $20$, so training costs about three
# times as much CPU time (compare the printed times of the two runs). Then compare the printed
# distances, not only the pictures. The variant that should change most is "no buffer": its
# samples are chains from noise, and $60$ cold steps from noise get much further towards the digits
# than $20$, so the model can shape the energy along that path — the short-run EBM of
# {cite:t}`nijkamp2019learning`. For the reference, look at the chains from noise after `n_steps`
# steps and at the long-run chains: longer chains in training give an energy whose long runs stay
# closer to the data. The book profile cannot afford this run, so the book states no numbers for
# it; `benchmarks/ebm_digits.py` takes the same settings through its command line.
# ```
#
# **4. The grid as a teacher.** On the 2-D toy, replace the Langevin samples in training by exact
# samples from `ebm.GridDensity(model.energy, box, 100).sample(128, jitter=False)` at every update
# (write a loss `loss(model, batch)` for `fit` that does this). How does the held-out
# log-likelihood compare with the persistent-chain model of section 5, and what does that say
# about where the gap to Chapter 2's mixture comes from?
#
# ```{admonition} Solution
# :class: dropdown
# The loss is `lambda model, batch: ebm.cd_loss(model, batch[0], ebm.GridDensity(model.energy, box,
# 100).sample(len(batch[0]), jitter=False).to(batch[0].device), model.config.reg)`. With exact model
# samples the surrogate's gradient is an unbiased estimate of the gradient of the grid model's
# log-likelihood *plus the regulariser* (section 2's check, with $\lambda=0.01$ added): training is
# stochastic maximum likelihood of a slightly regularised objective, with no sampler bias at all.
# In our run (book settings, seed 0, same number of updates) it reached a held-out log-likelihood of
# {glue:text}`toy_exact_val:.2f` nats per point against the persistent-chain model's
# {glue:text}`toy_ebm_val:.2f`: about the same. On this toy the chains were not what held the EBM
# back; the gap to the mixture's {glue:text}`toy_gmm_val:.2f` comes from the rest — a small network,
# the energy regulariser $\lambda$, and {glue:text}`toy_updates` noisy Adam updates. Exact samples
# cost a pass over all $10^4$ grid cells per update: fine in 2-D, impossible in 64 dimensions,
# which is the whole reason for Langevin chains.
# ```


# %% tags=["remove-input"]
# Exercise 4's solution, measured: the toy EBM trained with exact samples from the grid at every update.
gen_exact = genlib.seed_everything(seed)
exact_model = ebm.EBM(toy_config, gen_exact).to(dev)


def exact_sample_loss(model, batch):
    x_hat = ebm.GridDensity(model.energy, box, 100, device=dev).sample(len(batch[0]), generator=gen_exact, jitter=False)
    return ebm.cd_loss(model, batch[0], x_hat.to(batch[0].device), model.config.reg)


fit(exact_model, exact_sample_loss, x_train, epochs=toy_train.epochs, batch_size=toy_train.batch_size,
    lr=toy_train.lr, device=dev, generator=gen_exact, progress=False)
with torch.no_grad():
    glue("toy_exact_val", float(ebm.GridDensity(exact_model.energy, bounds=box, steps=200, device=dev)
                                .log_prob(x_val.to(dev)).mean()), display=False)

# %% tags=["remove-cell", "nbval-check-output"]
widgets.check_live("03_energy_models")  # moves every control of every live widget above: see genlib/widgets.py
