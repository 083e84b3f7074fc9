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
# # Autoencoders and variational autoencoders
#
# Chapter 2 fitted a *finite* mixture of Gaussians: pick one of $K$ components, then draw a
# point from it. This chapter lets the component index become a continuous vector $z$ and the
# component's mean a neural network of $z$. The result, the variational autoencoder (VAE)
# {cite:p}`kingma2014vae,rezende2014stochastic`, is a generator that maps simple noise to images
# *and* an encoder that maps images back to codes.
#
# We build it in three steps, following the three tricks that make the integral
# $p_\theta(x)=\int p_\theta(x\mid z)\,p(z)\,dz$ computable (the framing, and the view of the VAE
# as an infinite mixture of Gaussians, are Isola's {cite:p}`isola2024dgm2`; the chapter also draws
# on the lectures of Ororbia, Johnson and MIT 6.S191
# {cite:p}`ororbia2025generative,johnson2022generative,mit6s191generative`):
#
# 1. approximate the integral with samples from the prior (Monte Carlo);
# 2. sample where $p_\theta(x\mid z)$ is large instead (importance sampling);
# 3. let a network predict, for each $x$, where that is (an encoder, *amortised inference*).
#
# Each trick is run and measured on a small model whose $\log p(x)$ and posterior are known
# exactly, so that we can see the error of every estimate. Then we train VAEs on the digits and
# look at what they learn: reconstructions, samples, latent traversals, a 2-D latent map, the
# effect of $\beta$, a class-conditional VAE, and test log-likelihoods.
#
# The parameters below are the book profile (CPU, the 8x8 digits). A larger VAE can be trained
# outside the notebook, on a GPU or under `torchrun`, with `python -m genlib.train_family vae` and
# the same parameters; pass its file as `checkpoint` and section 7 loads it instead of training.

# %% tags=["parameters"]
device = "cpu"          # "auto", "cpu", "cuda" or "mps"
dataset = "digits"      # "digits", "mnist5k" (offline), "mnist" or "binarized_mnist" (download)
model = "mlp"           # "mlp" or "conv" (encoder and decoder networks)
epochs = 60             # at most, per model; training stops early on the validation loss
latent_dim = 32         # L, the size of z for the main VAE
betas = [0.5, 1.0, 4.0, 8.0]  # the β-VAEs compared in section 9
k_iwae = 1000           # importance samples for the test log-likelihood
n_images = None         # at most this many images per split (None: the whole split; the smoke profile cuts it)
checkpoint = ""         # a file from genlib.train_family: load the main VAE (section 7), skip its training
seed = 0

# %% tags=["hide-input"]
import math
import time
from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from torch.distributions import MultivariateNormal, Normal, kl_divergence

import ipywidgets
from myst_nb import glue

import genlib
from genlib import bench, compare, data, diagrams, metrics, plot, train_family, vae, widgets
from genlib.train import check_epochs, fit

dev = genlib.device(device)
gen = genlib.seed_everything(seed)
data.check_dataset(dataset, ("digits", "mnist5k", "mnist", "binarized_mnist"))
check_epochs(epochs)
if model not in vae.ARCHS:
    raise ValueError(f"unknown model {model!r}; choose one of: {', '.join(vae.ARCHS)}")
if not isinstance(betas, (list, tuple)) or not betas or any(
        isinstance(b, bool) or not isinstance(b, (int, float)) or b <= 0 for b in betas):
    raise ValueError(f"betas must be a non-empty list of positive numbers (papermill: -y 'betas: [1.0, 4.0]'), "
                     f"got {betas!r}")
if not isinstance(k_iwae, int) or k_iwae < 1:
    raise ValueError(f"k_iwae must be a positive integer, got {k_iwae!r}")
if n_images is not None and (isinstance(n_images, bool) or not isinstance(n_images, int) or n_images < 100):
    raise ValueError(f"n_images must be None or an integer >= 100, got {n_images!r}")


show = genlib.show_source  # prints a genlib function's source, to read next to its equation


def label_grid(ax, shape, row_labels=None, col_labels=None, pad=1):
    """Tick labels at the centres of the rows and columns of a plot.image_grid picture."""
    h, w = shape
    if row_labels is not None:
        ax.set_yticks([pad + r * (h + pad) + (h - 1) / 2 for r in range(len(row_labels))], row_labels, fontsize=8)
    if col_labels is not None:
        ax.set_xticks([pad + c * (w + pad) + (w - 1) / 2 for c in range(len(col_labels))], col_labels, fontsize=8)


# %% [markdown]
# ## 1. Two inverse maps: representation learning and generation
#
# An **encoder** maps data to a representation (analysis); a **generator** or **decoder** maps a
# representation to data (synthesis). Representation learning studies the first map, generative
# modelling the second, and an autoencoder trains both at once by composing them:
#
# $$
# z = f_\phi(x), \qquad \hat x = g_\theta(z), \qquad
# \min_{\phi,\theta}\; \frac1N\sum_{n=1}^N \Delta\big(x^{(n)},\, g_\theta(f_\phi(x^{(n)}))\big).
# $$
#
# for a reconstruction loss $\Delta$. With $\Delta(x,\hat x)=\lVert x-\hat x\rVert^2$ this is the classic autoencoder
# {cite:p}`hinton2006reducing,mit6s191generative`. The code $z$ has fewer dimensions than $x$ (a *bottleneck*), so the
# network cannot copy its input and must find a compressed description. Why should one exist? The
# **manifold hypothesis** {cite:p}`bengio2013representation`: natural images fill only a thin,
# low-dimensional region of pixel space. Almost every random 8x8 grey image is noise, not a digit;
# the digits vary along a few directions (which digit, slant, stroke width, size), and a good code
# is a coordinate system on that region.
#
# The autoencoder trained below does **not** use the squared error. genlib's `Autoencoder` uses the
# same networks and the same decoder likelihood as the VAE below, with a deterministic code, and its
# loss is $\Delta = -\log p_\theta(x\mid z=f_\phi(x))$. On the digits that decoder is categorical
# over the 17 grey levels, so $\Delta$ is the **categorical cross-entropy**
# $-\sum_d \log \operatorname{softmax}(o_d)_{x_d}$ (decoder outputs $o_d$, one per grey level) of each pixel's level (section 6 shows the
# decoders); with a Gaussian decoder of fixed variance the same code would give the squared error,
# scaled, plus a constant. The losses printed below are in nats per image.

# %%
splits = {name: data.images(dataset, name) for name in ("train", "val", "test")}
if n_images is not None:
    splits = {name: data.Images(s.x[:n_images], s.y[:n_images], s.levels, s.shape) for name, s in splits.items()}
train, val, test = splits["train"], splits["val"], splits["test"]
config = vae.VAEConfig.for_dataset(dataset, latent_dim=latent_dim, arch=model)
x_train, x_val, x_test = (vae.model_inputs(s.x, config, gen) for s in (train, val, test))
D, shape = config.dims, config.shape
settings = vae.TrainConfig()
print(f"{dataset}: train {tuple(x_train.shape)}, val {tuple(x_val.shape)}, test {tuple(x_test.shape)}; "
      f"decoder likelihood: {config.likelihood}")
print(config)


def train_model(net, train_data, val_data, quantity, patience=settings.patience):
    """Adam with early stopping on the validation loss (genlib.train.fit); one summary line that
    names the loss, since the models below minimise different quantities."""
    tic = time.perf_counter()
    history = fit(net, vae.batch_loss, train_data, val_data, epochs=epochs, batch_size=settings.batch_size,
                  lr=settings.lr, patience=patience, device=dev, generator=gen, progress=False)
    print(f"{type(net).__name__}: {history.epochs} epochs in {time.perf_counter() - tic:.1f} s, "
          f"best validation {quantity} {history.best:.2f} nats per image (epoch {history.best_epoch + 1})")
    return history


# %%
autoencoder = vae.Autoencoder(config)
ae_history = train_model(autoencoder, (x_train,), (x_val,), "reconstruction loss -log p(x | z = f(x))")
with torch.no_grad():
    ae_recon = autoencoder.reconstruct(x_test[:16].to(dev)).cpu()
fig, axes = plt.subplots(1, 2, figsize=(8, 2.6))
plot.image_grid(vae.model_inputs(test.x[:16], config), shape, nrow=8, ax=axes[0], title="test images")
plot.image_grid(ae_recon, shape, nrow=8, ax=axes[1], title="autoencoder reconstructions")
plt.show()

# %% [markdown]
# The reconstructions are close to the inputs although every image passed through a code of
# $L$ numbers. Are those numbers useful for something else? A cheap test is a *linear probe*:
# fit a logistic regression that predicts the digit's label from the code, using the training
# labels only, and compare it with the same classifier on raw pixels.


# %%
def probe(features_train, features_test, n=5000):
    """Test accuracy of a logistic regression fitted to (at most n) training features and labels."""
    clf = LogisticRegression(max_iter=3000).fit(features_train[:n].numpy(), train.y[:n].numpy())
    return clf.score(features_test.numpy(), test.y.numpy())


with torch.no_grad():
    codes_train = autoencoder.encode(x_train.to(dev)).cpu()
    codes_test = autoencoder.encode(x_test.to(dev)).cpu()
pixels_train, pixels_test = autoencoder.features(x_train), autoencoder.features(x_test)
print(f"linear probe accuracy: raw pixels ({D} numbers) {probe(pixels_train, pixels_test):.3f}, "
      f"autoencoder codes ({config.latent_dim} numbers) {probe(codes_train, codes_test):.3f}")

# %% [markdown]
# The code keeps most of what the label needs, with fewer numbers and no labels during training.
# But an autoencoder is not a generative model: it defines no distribution over codes, so there is
# no principled way to pick a $z$ to decode. Decoding random codes shows the problem (left). The
# middle panel shows why: it projects the $L$-dimensional codes of the test images onto the plane of
# their two main directions of variation (the top two principal axes, found from the centred codes;
# the codes themselves are projected as they are, without subtracting their mean, so the origin —
# the prior's centre — stays at the origin), together with as many draws of $z \sim \mathcal N(0, I)$
# projected onto the same plane — which are again standard normal in the plane, because the two axes
# are orthonormal. In this plane the codes spread over a much wider, irregular region, with clusters
# and arms, while the prior's draws crowd its centre. The right panel is the codes' whole spectrum:
# their variance along each of their $L$ principal axes, against the prior's variance of one in
# every direction. A few axes carry far more variance than the prior, and along the last ones the
# codes barely vary at all. A random $z$ therefore lands where no image was ever encoded, and the
# decoder has never learned what to do there.

# %%
with torch.no_grad():
    random_codes = torch.randn(len(codes_test), config.latent_dim, generator=gen).to(dev)  # z ~ N(0, I)
    ae_fantasies = autoencoder.decode(random_codes[:16]).mean.cpu()
axes_2d = torch.linalg.svd(codes_test - codes_test.mean(0), full_matrices=False).Vh[:2]  # (2, L), orthonormal
spectrum = torch.linalg.eigvalsh(torch.cov(codes_test.T)).flip(0)  # (L,) variances along the codes' principal axes
fig, axes = plt.subplots(1, 3, figsize=(12.5, 3.4), gridspec_kw={"width_ratios": [1.6, 1, 1]})
plot.image_grid(ae_fantasies, shape, nrow=8, ax=axes[0], title="autoencoder: decode z ~ N(0, I)")
for points, label, color in ((random_codes.cpu() @ axes_2d.T, "z ~ N(0, I)", "C1"),
                             (codes_test @ axes_2d.T, "AE codes of test images", "C0")):
    axes[1].scatter(points[:, 0], points[:, 1], s=4, alpha=0.5, color=color, label=label)
axes[1].set_aspect("equal"), axes[1].legend(frameon=False, fontsize=8, markerscale=3, loc="best")
axes[1].set_xlabel("first principal axis of the codes"), axes[1].set_ylabel("second principal axis")
axes[1].set_title("codes vs the prior, projected", fontsize=10)
axes[2].semilogy(range(1, len(spectrum) + 1), spectrum, "o-", ms=3, color="C0", label="AE codes of test images")
axes[2].axhline(1.0, color="C1", ls="--", label="prior N(0, I)")
axes[2].set_xlabel("principal axis of the codes (sorted)"), axes[2].set_ylabel("variance along the axis")
axes[2].set_title("the codes' spectrum", fontsize=10), axes[2].legend(frameon=False, fontsize=8)
plt.tight_layout()
plt.show()

# %%
print(f"AE codes: distance of their mean from the origin {float(codes_test.mean(0).norm()):.0f}; variances along "
      f"their principal axes from {float(spectrum.min()):.0e} to {float(spectrum.max()):.0f} (N(0, I): all 1)")

# %% [markdown]
# **The manifold hypothesis and the bottleneck, measured.** How many numbers does a digit need?
# Principal component analysis answers for the best *linear* code: centre the training images,
# keep their top $L$ principal axes, and reconstruct each test image from its $L$ coordinates on
# them — a linear autoencoder. The left panel is the digits' spectrum: the fraction of the pixel
# variance that the first $L$ axes capture. It rises steeply — {glue:text}`pca_L90` axes capture
# $90\,\%$ of it and {glue:text}`pca_L99` capture $99\,\%$ — which is the manifold hypothesis in its
# simplest, linear form: the images vary along far fewer directions than they have pixels (and
# {glue:text}`pca_constant` of the $D$ pixels never change at all in the training images). The
# right panel is the bottleneck: the test reconstruction error falls fast up to that knee and slowly
# after it, and at $L = D$ it is zero — with as many numbers as pixels the code is a change of basis,
# an exact copy, and no longer has to find any structure; a network given $L \ge D$ can learn to
# copy its input in the same way. The autoencoder above, with $L =$ {glue:text}`ae_L`, is the
# cross: its error is {glue:text}`ae_mse:.2f`, {glue:text}`ae_vs_pca` the linear code's
# {glue:text}`pca_mse_at_ae:.2f` at the same $L$ (it minimises a cross-entropy, not this error, and
# trains with dropout). Section 8 adds the VAEs.

# %%
centre = x_train.float().mean(0)
_, singular, principal_axes = torch.linalg.svd(x_train.float() - centre)  # axes: (D, D), a full basis
pixel_spectrum = singular.pow(2) / (len(x_train) - 1)  # variance along each principal axis
pixel_spectrum = torch.cat([pixel_spectrum, pixel_spectrum.new_zeros(D - len(singular))])  # (D,): 0 past the rank
explained = (pixel_spectrum.cumsum(0) / pixel_spectrum.sum()).tolist()


def pca_reconstruction_error(L, x=x_test.float()):
    """Mean squared error per pixel of reconstructing x from its top-L principal coordinates."""
    V = principal_axes[:L].T  # (D, L)
    return float((x - (centre + (x - centre) @ V @ V.T)).pow(2).mean())


latent_sizes = list(range(1, D + 1))
pca_errors = [pca_reconstruction_error(L) for L in latent_sizes]
with torch.no_grad():
    ae_mse = float((autoencoder.reconstruct(x_test.to(dev)).cpu() - x_test.float()).pow(2).mean())
L90 = next(L for L, f in zip(latent_sizes, explained) if f >= 0.9)
glue("pca_L90", L90, display=False)
glue("pca_L99", next(L for L, f in zip(latent_sizes, explained) if f >= 0.99), display=False)
glue("pca_constant", int((x_train.float().var(0) == 0).sum()), display=False)
glue("ae_L", config.latent_dim, display=False)
glue("ae_mse", ae_mse, display=False)
glue("pca_mse_at_ae", pca_errors[config.latent_dim - 1], display=False)
glue("ae_vs_pca", "below" if ae_mse < pca_errors[config.latent_dim - 1] else "above", display=False)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
axes[0].plot(latent_sizes, explained, "o-", ms=2)
axes[0].axvline(L90, color="0.5", ls=":", label=f"90% at L = {L90}")
axes[0].set_xlabel("number of principal axes L"), axes[0].set_ylabel("fraction of pixel variance")
axes[0].set_title("the digits' spectrum (training images)", fontsize=10), axes[0].legend(frameon=False, fontsize=8)
axes[1].plot(latent_sizes, pca_errors, "o-", ms=2, label="linear code (PCA)")
axes[1].plot([config.latent_dim], [ae_mse], "X", ms=9, color="C3", label=f"autoencoder, L = {config.latent_dim}")
axes[1].axvline(L90, color="0.5", ls=":")
axes[1].set_xlabel("code size L"), axes[1].set_ylabel("test error per pixel (squared)")
axes[1].set_title(f"the bottleneck: reconstruction error vs L (L = D = {D}: a copy)", fontsize=10)
axes[1].legend(frameon=False, fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 2. Latent-variable models: an infinite mixture of Gaussians
#
# To generate, we need a distribution over codes and a distribution over images given a code:
#
# $$
# z \sim p(z)=\mathcal N(0, I_L), \qquad x\mid z \sim p_\theta(x\mid z), \qquad
# p_\theta(x) = \int p_\theta(x\mid z)\,p(z)\,dz .
# $$
#
# Compare Chapter 2's mixture $p(x)=\sum_{k=1}^K \pi_k\,\mathcal N(x;\mu_k,\Sigma_k)$. Replace the
# index $k$ by a continuous $z$, the weights $\pi_k$ by the density $p(z)$ and the sum by an
# integral, and let a neural network $g_\theta$ give each component's parameters:
# $p_\theta(x\mid z)=\mathcal N(x; g_\theta(z), \sigma^2 I)$. That is a mixture with infinitely many
# components, whose means lie on the curved $L$-dimensional surface $\{g_\theta(z)\}$ — a model of
# the manifold hypothesis. Maximum likelihood asks for $\log p_\theta(x)$ of each training image,
# and that is an integral over $z$ with no closed form once $g_\theta$ is a neural network.
#
# As a graphical model (Chapter 2 drew the same graph for the mixture), each data point $x^{(n)}$
# has its own unobserved code $z^{(n)}$, drawn from the prior and decoded by $p_\theta(x\mid z)$.
# The dashed arrow is what this chapter adds: an *inference model* $q_\phi(z\mid x)$, with its
# own parameters $\phi$, that goes the other way, from an image to the codes that could explain it.

# %%
diagrams.draw_latent_variable_model()
plt.show()

# %% [markdown]
#
# To see the tricks at work we first use a latent-variable model where the integral *is*
# tractable: a linear decoder, $x\mid z\sim\mathcal N(Wz+b,\sigma^2 I)$ (probabilistic PCA
# {cite:p}`tipping1999ppca`). Its marginal is Gaussian, $p(x)=\mathcal N(x; b, WW^\top+\sigma^2I)$,
# and so is its posterior,
#
# $$
# p(z\mid x)=\mathcal N\!\big(P^{-1}W^\top(x-b),\; \sigma^2 P^{-1}\big), \qquad P = W^\top W+\sigma^2 I .
# $$
#
# We take $D=8$, $L=2$ (so $z$ can be drawn) and $\sigma=0.2$, with two correlated columns of
# $W$ (two latent directions that explain the data in similar ways, so the posterior is a tilted
# ellipse), and one data point $x$ drawn from the model. This part has its own random generator,
# so its numbers do not depend on the data set or the training above.

# %%
lg_gen = torch.Generator().manual_seed(seed)
W = torch.randn(8, 2, generator=lg_gen, dtype=torch.float64)  # (D, L)
W[:, 1] = 0.8 * W[:, 0] + 0.6 * W[:, 1]                        # correlated columns
tractable = vae.LinearGaussian(W, b=torch.randn(8, generator=lg_gen, dtype=torch.float64), sigma=0.2)
x_obs = tractable.sample(1, generator=lg_gen)  # (1, 8)
prior, posterior = tractable.prior(), tractable.posterior(x_obs)
log_p_exact = tractable.log_prob(x_obs)


def log_lik(z):
    """log p(x_obs | z) for draws z (k, ..., 2)."""
    return tractable.log_lik(x_obs, z)


# %% tags=["nbval-check-output"]
print(f"exact log p(x) = {log_p_exact.item():.3f}")
print("posterior mean", [round(v, 3) for v in posterior.mean[0].tolist()],
      "std", [round(v, 3) for v in posterior.variance[0].sqrt().tolist()])

# %% [markdown]
# ## 3. Trick 1: sample the prior
#
# The integral is an expectation under the prior, so Monte Carlo applies:
#
# $$
# p_\theta(x)=\mathbb E_{z\sim p(z)}\big[p_\theta(x\mid z)\big]
# \approx \frac1{\hat N}\sum_{m=1}^{\hat N} p_\theta(x\mid z^{(m)}), \qquad z^{(m)}\sim p(z).
# $$
#
# The average is an unbiased estimate of $p_\theta(x)$ (its expectation is exactly the integral).
# In code, with `logsumexp` so that tiny likelihoods do not underflow:

# %%
show(vae.log_p_prior_mc)
show(vae.log_mean_exp)

# %% [markdown]
# ## 4. Trick 2: importance sampling
#
# Most prior draws land where $p_\theta(x\mid z)$ is negligible: above, the posterior's standard
# deviations are about a tenth of the prior's, so only a few prior draws in a thousand land where
# $p_\theta(x\mid z)$ is large. Importance sampling draws from a *proposal* $q(z)$ instead and corrects by a weight:
#
# $$
# p_\theta(x)=\int q(z)\,\frac{p_\theta(x\mid z)\,p(z)}{q(z)}\,dz
# = \mathbb E_{z\sim q}\big[w(z)\big],\qquad w(z)=\frac{p_\theta(x\mid z)\,p(z)}{q(z)},
# \qquad p_\theta(x)\approx \frac1{\hat N}\sum_{m=1}^{\hat N} w(z^{(m)}),\; z^{(m)}\sim q .
# $$
#
# This is unbiased for any $q$ that is positive wherever $p_\theta(x\mid z)p(z)$ is
# {cite:p}`owen2013monte`. Which $q$ is best? By Bayes' rule
# $p_\theta(x\mid z)\,p(z)=p_\theta(z\mid x)\,p_\theta(x)$, so with $q(z)=p_\theta(z\mid x)$
#
# $$
# w(z)=\frac{p_\theta(z\mid x)\,p_\theta(x)}{p_\theta(z\mid x)} = p_\theta(x)\quad\text{for every } z:
# $$
#
# the **posterior is the optimal proposal**: each weight is the answer, one sample suffices and the
# variance is zero. (Trick 1 is the special case $q=p$, where the weight is $p_\theta(x\mid z)$.)
# The weights in code, in the log domain; `vae.log_p_importance` is `log_mean_exp` of them:

# %%
show(vae.importance_log_weights)

# %% [markdown]
# We compare three proposals on the tractable model: the prior (trick 1), a *mismatched* Gaussian
# (centred one posterior standard deviation off and twice as wide, as a learned proposal might be),
# and the exact posterior. For each number of samples $\hat N$ (`k` in the code, as in genlib's
# arguments) we repeat the estimate 100 times with fresh draws and record the mean and the spread
# of $\log \hat p(x)$.

# %%
post_std = posterior.variance.sqrt()
mismatched = vae.diag_normal(posterior.mean + post_std, 2 * torch.log(2 * post_std))
proposals = {"prior (trick 1)": prior, "mismatched q": mismatched, "posterior p(z|x)": posterior}
ks = [1, 3, 10, 30, 100, 300, 1000, 3000, 10000]
repeats = 100


def estimates(q, k):
    """`repeats` independent estimates of log p(x_obs) from k draws each."""
    if q is prior:
        runs = [vae.log_p_prior_mc(log_lik, prior, k, lg_gen) for _ in range(repeats)]
    else:
        runs = [vae.log_p_importance(log_lik, prior, q, k, lg_gen) for _ in range(repeats)]
    return torch.stack(runs).flatten()  # (repeats,)


results = {name: {k: estimates(q, k) for k in ks} for name, q in proposals.items()}
print(f"estimates of log p(x) (exact {log_p_exact.item():.3f}): mean ± standard deviation over {repeats} runs")
print(f"{'N̂':>7}" + "".join(f"{name:>26}" for name in proposals))  # N̂: two code points, one column
for k in ks:
    cells = [f"{results[name][k].mean():9.3f} ± {results[name][k].std():7.3f}" for name in proposals]
    print(f"{k:>6}" + "".join(f"{c:>26}" for c in cells))

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
points, gx, gy = plot.grid_points((-3, 3, -3, 3), 400)
points = points.double()
for q, colors, style in [(posterior, "C2", "solid"), (mismatched, "C1", "dashed")]:
    density = q.log_prob(points.unsqueeze(1)).exp().reshape(gx.shape).numpy()
    axes[0].contour(gx, gy, density, levels=density.max() * np.array([0.05, 0.3, 0.7]), colors=colors,
                    linestyles=style)
z_prior = vae.draw(prior, 300, lg_gen)
axes[0].scatter(z_prior[:, 0], z_prior[:, 1], s=5, color="C0", alpha=0.5, label="draws from the prior")
axes[0].plot([], [], color="C2", label="posterior p(z|x)"), axes[0].plot([], [], "C1--", label="mismatched q")
axes[0].set_xlim(-3, 3), axes[0].set_ylim(-3, 3), axes[0].set_aspect("equal")
axes[0].set_xlabel("$z_1$"), axes[0].set_ylabel("$z_2$"), axes[0].legend(frameon=False, fontsize=8, loc="lower left")
axes[0].set_title("latent space of the tractable model")
for (name, per_k), color in zip(results.items(), ["C0", "C1", "C2"]):
    mean = np.array([per_k[k].mean().item() for k in ks])
    std = np.array([per_k[k].std().item() for k in ks])
    axes[1].plot(ks, mean, "o-", ms=3, color=color, label=name)
    axes[1].fill_between(ks, mean - std, mean + std, color=color, alpha=0.2)
axes[1].axhline(log_p_exact.item(), color="k", ls=":", label="exact log p(x)")
axes[1].set_xscale("log"), axes[1].set_ylim(log_p_exact.item() - 8, log_p_exact.item() + 2)
axes[1].set_xlabel(r"number of samples $\hat N$"), axes[1].set_ylabel(r"estimate of $\log p(x)$ (mean ± sd)")
axes[1].set_title("trick 1 vs trick 2"), axes[1].legend(frameon=False, fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# The left panel shows why trick 1 struggles: the prior's draws (blue) are spread over the
# whole plane while the posterior (green) — the only region that explains $x$ — is small. With a
# few draws the prior estimate is far too low and wildly variable; it needs thousands to settle.
# The mismatched proposal converges much faster, and the exact posterior is exact at $\hat N=1$.
#
# Note that the curves approach the truth *from below* on average. Each $\hat p(x)$ is unbiased for
# $p(x)$, but $\log$ is concave, so by Jensen's inequality
# $\mathbb E[\log \hat p(x)] \le \log \mathbb E[\hat p(x)] = \log p(x)$: the log of an unbiased
# estimate is biased low, by more when the estimate is noisier. Keep this in mind: it is exactly the
# step that turns trick 2 into the ELBO.

# %% tags=["nbval-check-output"]
for name in proposals:
    print(f"{name:>18}: N̂=1: {results[name][1][0].item():9.3f}   N̂=1000: {results[name][1000].mean().item():8.3f}")
print("posterior proposal exact with one sample:",
      torch.allclose(results["posterior p(z|x)"][1], log_p_exact.expand(repeats), atol=1e-9))

# %% [markdown]
# **Interactive.** Move the slider to change the number of samples $\hat N$. Each panel shows the
# draws in latent space, with marker area proportional to the importance weight $w(z^{(m)})$ (for
# the prior, $p(x\mid z^{(m)})$), over the posterior's contours (green) for reference; a draw outside
# the window is drawn as a cross on its edge. The title gives the resulting estimate.

# %%
sample_sets = {name: vae.draw(q, 1000, lg_gen).reshape(1000, 2) for name, q in proposals.items()}  # fixed draws
log_weights = {name: log_lik(z) + prior.log_prob(z) - proposals[name].log_prob(z)  # (1000,) each, computed once:
               for name, z in sample_sets.items()}                                # the slider only takes the first k
post_density = posterior.log_prob(points.unsqueeze(1)).exp().reshape(gx.shape).numpy()  # for the contours


def draw_tricks(fig, k):
    axes = fig.subplots(1, 3)
    for ax, name in zip(axes, proposals):
        z, log_w = sample_sets[name][:k], log_weights[name][:k]  # (k, 2), (k,)
        size = 200 * torch.exp(log_w - log_w.max())
        ax.contour(gx, gy, post_density, levels=post_density.max() * np.array([0.05, 0.5]), colors="C2",
                   linewidths=0.8)
        inside = (z.abs() <= 3).all(1)
        ax.scatter(z[inside, 0], z[inside, 1], s=size[inside].numpy() + 2, alpha=0.6, color="C0")
        edge = z[~inside].clamp(-2.9, 2.9)
        ax.scatter(edge[:, 0], edge[:, 1], marker="x", s=30, color="C0")
        estimate = vae.log_mean_exp(log_w, 0).item()
        ax.set_xlim(-3, 3), ax.set_ylim(-3, 3), ax.set_aspect("equal"), ax.set_xlabel("$z_1$")
        ax.set_title(f"{name}, N̂ = {k}\nlog p̂ = {estimate:.2f} (exact {log_p_exact.item():.2f})", fontsize=9)
    axes[0].set_ylabel("$z_2$")


slider_ks = [1, 3, 10, 30, 100, 300, 1000]
widgets.live(draw_tricks, figsize=(11, 3.8), k=ipywidgets.SelectionSlider(options=slider_ks, value=10, description="N̂"))

# %% tags=["hide-input"]
widgets.animate(draw_tricks, slider_ks, figsize=(11, 3.8), interval=900)

# %% [markdown]
# ## 5. Trick 3: predict the proposal for every data point
#
# The optimal proposal $p_\theta(z\mid x)$ is different for every $x$ and is exactly what we cannot
# compute. Trick 3 fits an approximation $q_\phi(z\mid x)=\mathcal N\big(\mu_\phi(x),
# \operatorname{diag}\sigma^2_\phi(x)\big)$ whose mean and log-variance are the outputs of a
# network, the **encoder** (a *recognition model*, in the words of
# {cite:t}`kingma2014vae` and of NVIL {cite:p}`mnih2014nvil`). One network serves all data points:
# this is *amortised inference* — the cost of fitting a proposal is paid once, in training, rather
# than per data point.
#
# What should the encoder maximise? Take the log of the one-sample importance estimate and its
# expectation under $q_\phi$. By Jensen's inequality,
#
# $$
# \log p_\theta(x) = \log \mathbb E_{z\sim q_\phi(z\mid x)}\!\left[\frac{p_\theta(x\mid z)\,p(z)}{q_\phi(z\mid x)}\right]
# \;\ge\; \mathbb E_{z\sim q_\phi(z\mid x)}\!\left[\log\frac{p_\theta(x\mid z)\,p(z)}{q_\phi(z\mid x)}\right]
# =: \mathrm{ELBO}(x;\theta,\phi),
# $$
#
# the **evidence lower bound**. The same quantity appears from Bayes' rule without any inequality:
# for every $z$, $\log p_\theta(x)=\log p_\theta(x\mid z)+\log p(z)-\log p_\theta(z\mid x)$.
# Add and subtract $\log q_\phi(z\mid x)$ and average over $z\sim q_\phi(z\mid x)$ (the left side
# does not depend on $z$):
#
# $$
# \log p_\theta(x)
# = \underbrace{\mathbb E_{q_\phi}\!\left[\log \frac{p_\theta(x\mid z)p(z)}{q_\phi(z\mid x)}\right]}_{\mathrm{ELBO}}
# + \underbrace{\mathbb E_{q_\phi}\!\left[\log \frac{q_\phi(z\mid x)}{p_\theta(z\mid x)}\right]}_{\mathrm{KL}(q_\phi(z\mid x)\,\|\,p_\theta(z\mid x))\;\ge 0}.
# $$
#
# So the gap between $\log p_\theta(x)$ and the ELBO is exactly how far the proposal is from the
# optimal one. Raising the ELBO in $\phi$ moves $q_\phi$ toward the posterior (better proposals,
# trick 3); raising it in $\theta$ raises a lower bound on the likelihood (better model). **The
# encoder and the decoder share one objective.** Splitting the log-ratio differently gives the
# form used in code:
#
# $$
# \mathrm{ELBO}(x) = \underbrace{\mathbb E_{q_\phi(z\mid x)}\big[\log p_\theta(x\mid z)\big]}_{\text{reconstruction}}
# - \underbrace{\mathrm{KL}\big(q_\phi(z\mid x)\,\|\,p(z)\big)}_{\text{rate}} .
# $$
#
# Let us check the identity numerically on the tractable model. There the ELBO of any Gaussian
# $q(z)=\mathcal N(\mu_q, \Sigma_q)$ has a closed form. The rate $\mathrm{KL}(q\,\|\,p(z))$ is a KL between two
# Gaussians. For the reconstruction term, write
# $\log p(x\mid z) = -\frac D2\log(2\pi\sigma^2) - \frac{1}{2\sigma^2}\lVert x - Wz - b\rVert^2$
# and put $z = \mu_q + (z - \mu_q)$:
#
# $$
# \lVert x - Wz - b\rVert^2 = \lVert x - W\mu_q - b\rVert^2 - 2\,(x - W\mu_q - b)^\top W (z - \mu_q)
# + (z - \mu_q)^\top W^\top W (z - \mu_q).
# $$
#
# Under $q$ the middle term has mean zero and the last has mean
# $\operatorname{tr}(W^\top W \Sigma_q) = \operatorname{tr}(W \Sigma_q W^\top)$, so
#
# $$
# \mathbb E_q[\log p(x\mid z)] = -\frac D2\log(2\pi\sigma^2)
# - \frac{\lVert x - W\mu_q - b\rVert^2 + \operatorname{tr}(W \Sigma_q W^\top)}{2\sigma^2} ,
# $$
#
# which is what `LinearGaussian.elbo` computes, line for line:

# %%
show(vae.LinearGaussian.elbo)

# %% [markdown]
# We train a small encoder (`vae.MLPEncoder`, one hidden layer) to maximise the ELBO of the fixed
# linear-Gaussian model on 2,000 samples from it, then compute, on 500 new samples, the exact gap
# $\log p(x)-\mathrm{ELBO}$ with this closed form and the exact
# $\mathrm{KL}(q_\phi(z\mid x)\,\|\,p(z\mid x))$ from `torch.distributions`.

# %%
lg_train, lg_test = tractable.sample(2000, generator=lg_gen), tractable.sample(500, generator=lg_gen)
encoder = vae.MLPEncoder(dims=8, latent_dim=2, hidden=64, layers=1).double()


def negative_elbo(net, batch):
    (x,) = batch
    mu, log_var = net(x)
    q = vae.diag_normal(mu, log_var)
    return -vae.elbo_estimate(lambda z: tractable.log_lik(x, z), tractable.prior(), q, k=1, generator=lg_gen).mean()


tic = time.perf_counter()
enc_history = fit(encoder, negative_elbo, lg_train, epochs=30, batch_size=100, lr=3e-3, generator=lg_gen,
                  progress=False)
print(f"encoder trained for {enc_history.epochs} epochs in {time.perf_counter() - tic:.1f} s")

with torch.no_grad():
    mu, log_var = encoder(lg_test)
q_amortised = MultivariateNormal(mu, covariance_matrix=torch.diag_embed(log_var.exp()))
exact_posterior = tractable.posterior(lg_test)
gap = tractable.log_prob(lg_test) - tractable.elbo(lg_test, q_amortised)
kl_to_posterior = kl_divergence(q_amortised, exact_posterior)
# the best *diagonal* Gaussian: posterior mean, variances 1 / diag(precision)
best_diag_var = 1 / exact_posterior.precision_matrix.diagonal(dim1=-2, dim2=-1)
q_best_diag = MultivariateNormal(exact_posterior.mean, covariance_matrix=torch.diag_embed(best_diag_var))

# %%
print(f"mean log p(x) - ELBO          = {gap.mean().item():.3f} nats")
print(f"mean KL(q(z|x) || p(z|x))     = {kl_to_posterior.mean().item():.3f} nats")
print(f"best diagonal Gaussian's gap  = {kl_divergence(q_best_diag, exact_posterior).mean().item():.3f} nats")

# %% tags=["nbval-check-output"]
print("log p(x) - ELBO == KL(q(z|x) || p(z|x)) for every test x:", torch.allclose(gap, kl_to_posterior, atol=1e-8))
exact_gap = tractable.log_prob(lg_test) - tractable.elbo(lg_test, exact_posterior)
print(f"largest gap with q = exact posterior: {exact_gap.abs().max().item():.6f} nats")

# %% [markdown]
# The gap equals the KL divergence to the true posterior for every test point. It does not reach
# zero: the posterior here has correlated coordinates, which no diagonal Gaussian can represent;
# the best diagonal $q$ (mean of the posterior, variances $1/\Lambda_{jj}$ from its precision
# matrix $\Lambda$) leaves a gap of its own (the *approximation gap*), and the encoder, which must
# serve every $x$ with one small network trained briefly, adds more (the *amortisation gap*)
# {cite:p}`cremer2018inference`.
#
# ## 6. The VAE, piece by piece
#
# A VAE is trick 3 with a neural decoder: encoder $q_\phi(z\mid x)$, prior $\mathcal N(0, I)$,
# decoder $p_\theta(x\mid z)$, and the ELBO as the training objective for both networks. The
# diagram shows one pass: the encoder's two outputs, the noise $\varepsilon$ entering from the
# side, the decoder, and the two terms of the loss. Three pieces turn it into code.

# %%
diagrams.draw_vae()
plt.show()

# %% [markdown]
#
# **Reparameterisation.** The reconstruction term is an expectation over $z\sim q_\phi(z\mid x)$,
# and we need its gradient with respect to $\phi$, which also shapes the distribution we sample
# from. Write the draw as a deterministic function of $\phi$ and parameter-free noise,
#
# $$
# z = \mu_\phi(x) + \sigma_\phi(x)\odot\varepsilon,\qquad \varepsilon\sim\mathcal N(0,I),
# \qquad \nabla_\phi\,\mathbb E_{q_\phi}[f(z)] = \mathbb E_{\varepsilon}\big[\nabla_\phi f(\mu_\phi+\sigma_\phi\odot\varepsilon)\big],
# $$
#
# and ordinary backpropagation through a sampled $\varepsilon$ gives an unbiased gradient
# {cite:p}`kingma2014vae,rezende2014stochastic`. The network predicts $\log\sigma^2$, which is
# unconstrained, so $\sigma = \exp(\tfrac12\log\sigma^2)$:

# %%
show(vae.reparameterize)

# %% [markdown]
# A one-line check: for $z\sim\mathcal N(\mu,\sigma^2)$, $\mathbb E[z^2]=\mu^2+\sigma^2$, so the
# gradients are $2\mu$ and $2\sigma$. Backpropagating through 100,000 reparameterised draws:

# %% tags=["nbval-check-output"]
mu_1 = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
sigma_1 = torch.tensor(1.3, dtype=torch.float64, requires_grad=True)
eps = torch.randn(100_000, generator=lg_gen, dtype=torch.float64)
z = vae.reparameterize(mu_1.expand(len(eps)), 2 * torch.log(sigma_1).expand(len(eps)), eps=eps)
z.pow(2).mean().backward()
print(f"d/dmu E[z^2]:    reparameterised {mu_1.grad.item():.2f}, closed form {2 * mu_1.item():.2f}")
print(f"d/dsigma E[z^2]: reparameterised {sigma_1.grad.item():.2f}, closed form {2 * sigma_1.item():.2f}")

# %% [markdown]
# **Why not differentiate through an ordinary sample?** A draw made the usual way,
# `Normal(mu, sigma).sample()`, is a number with no record of how it depended on $\mu$ and
# $\sigma$: autograd stops there, so backpropagation gives no gradient for the encoder through the
# reconstruction term at all (and treating the draw as a constant would give the wrong gradient,
# zero). Moving $\mu$ changes *which* $z$ are likely, not the value of a $z$ already drawn; the
# dependence is in the density, not in the sample.
#
# There is a second way to write the gradient that uses exactly that dependence, the
# **score-function** or REINFORCE estimator {cite:p}`williams1992simple`, which NVIL used to train
# its recognition model {cite:p}`mnih2014nvil`. Since
# $\nabla_\phi q_\phi = q_\phi \nabla_\phi \log q_\phi$,
#
# $$
# \nabla_\phi\, \mathbb E_{q_\phi}[f(z)] = \int f(z)\, \nabla_\phi q_\phi(z)\, dz
# = \mathbb E_{q_\phi}\big[f(z)\, \nabla_\phi \log q_\phi(z)\big]
# = \mathbb E_{q_\phi}\big[(f(z) - b)\, \nabla_\phi \log q_\phi(z)\big],
# $$
#
# the last step for any constant $b$ (a *baseline*), because $\mathbb E_q[\nabla_\phi \log q_\phi] =
# \nabla_\phi \int q_\phi = 0$. It needs neither a gradient of $f$ nor a reparameterisation (so it
# works for discrete $z$ too), but it only knows $f$ through its values at the draws, and its variance
# is typically much larger. On the same check, $f(z)=z^2$, we compute each estimator's value from
# every single draw $z = \mu + \sigma\varepsilon$ (autograd on a copy of $\mu$ per draw) and compare
# their means and their spreads:

# %%
show(vae.reinforce_surrogate)

# %% tags=["nbval-check-output"]
z_plain = Normal(mu_1, sigma_1).sample((10,))
print("an ordinary sample carries a gradient:", z_plain.requires_grad)
mu_each = mu_1.detach().expand(len(eps)).clone().requires_grad_(True)  # one copy of mu per draw
z_rep = vae.reparameterize(mu_each, 2 * torch.log(sigma_1.detach()).expand(len(eps)), eps=eps)
(per_draw_rep,) = torch.autograd.grad(z_rep.pow(2).sum(), mu_each)  # d/dmu of (mu + sigma eps)^2, per draw
z_fixed = z_rep.detach()  # the same draws, now plain numbers
baseline = float((mu_1.item() + sigma_1.item() * torch.randn(1000, generator=lg_gen, dtype=torch.float64)).pow(2).mean())
per_draw = {"reparameterised": per_draw_rep}
for name, b in (("score function", 0.0), ("score function, baseline", baseline)):
    log_q = Normal(mu_each, sigma_1.detach()).log_prob(z_fixed)  # (n,) log q(z_i), differentiable in mu
    (per_draw[name],) = torch.autograd.grad(vae.reinforce_surrogate(z_fixed.pow(2), log_q, b).sum(), mu_each)
print(f"d/dmu E[z^2] = 2 mu = {2 * mu_1.item():.2f}; per-draw estimates over {len(eps):,} draws:")
for name, g in per_draw.items():
    print(f"  {name:26s} mean {g.mean().item():5.2f}, standard deviation {g.std().item():5.1f}")

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(6.5, 3.2))
every = torch.cat(list(per_draw.values()))
bins = np.linspace(float(every.min()), float(every.max()), 161)  # the whole range: the tails drive the variance
for (name, g), style in zip(per_draw.items(), ("-", "--", ":")):
    ax.hist(g.numpy(), bins=bins, histtype="step", lw=1.6, ls=style, density=True, label=name)
ax.axvline(2 * mu_1.item(), color="k", lw=0.8)
ax.set_xlabel(r"one-draw estimate of $\partial_\mu \mathbb{E}[z^2]$ (true value: vertical line)")
ax.set_ylabel("density"), ax.set_yscale("log")
ax.set_title(f"same mean, very different spread (all {len(eps):,} draws of each)")
ax.legend(frameon=False, fontsize=8)
plt.show()

# %% [markdown]
# All three are unbiased — their means agree with $2\mu$ within their standard errors — but a
# single score-function draw is spread much wider than a reparameterised one, with heavy tails (the
# printed standard deviations, and the log-scale histogram). The number of draws needed for a given
# accuracy grows with the *variance*, the square of the standard deviation, so the score-function
# estimator needs several times more draws here. A baseline narrows it but does not close the gap. In a VAE, with $L$
# latents and a decoder of thousands of outputs, the difference is larger still; this is why the
# VAE papers' reparameterisation made training practical, and why NVIL needed learned baselines
# and variance normalisation to make the score-function route work.

# %% [markdown]
# **The rate in closed form.** For $q=\mathcal N(\mu,\operatorname{diag}\sigma^2)$ and
# $p=\mathcal N(0,I)$ both densities factorise over the $L$ coordinates, so the KL divergence is a
# sum of one-dimensional terms:
#
# $$
# \mathrm{KL}(q\,\|\,p)=\sum_{j=1}^L \mathbb E_{q}\!\left[-\tfrac12\log(2\pi\sigma_j^2)-\frac{(z_j-\mu_j)^2}{2\sigma_j^2}
# +\tfrac12\log(2\pi)+\frac{z_j^2}{2}\right]
# =\sum_{j=1}^L \left[-\tfrac12\log\sigma_j^2-\tfrac12+\tfrac12(\mu_j^2+\sigma_j^2)\right],
# $$
#
# using $\mathbb E_q[(z_j-\mu_j)^2]=\sigma_j^2$ and $\mathbb E_q[z_j^2]=\mu_j^2+\sigma_j^2$. Hence
# $\mathrm{KL}=\tfrac12\sum_j(\mu_j^2+\sigma_j^2-1-\log\sigma_j^2)$: zero exactly when
# $\mu_j=0,\sigma_j=1$. It pulls every code toward the prior — the price, in nats, of telling the
# decoder something about $x$; hence the name *rate*. (Lecture slides often show the negative,
# $-\mathrm{KL}=\tfrac12\sum_j(1+\log\sigma_j^2-\mu_j^2-\sigma_j^2)$, the term the ELBO *adds*: the same
# formula with the opposite sign, not a different result. One of them writes the diagonal entries of
# the covariance squared where the variances $\sigma_j^2$ themselves belong
# {cite:p}`johnson2022generative`.)

# %%
show(vae.kl_normal_std)

# %% [markdown]
# **The reconstruction term** is the decoder's log-likelihood of the data, summed over the $D$
# pixels (they are independent given $z$):
#
# * *Bernoulli* (binary pixels), decoder logits $o_d$:
#   $\log p_\theta(x\mid z)=\sum_d x_d\log \sigma(o_d)+(1-x_d)\log(1-\sigma(o_d))
#   =\sum_d x_d o_d-\log(1+e^{o_d})$ with $\sigma(o)=1/(1+e^{-o})$ the logistic sigmoid — the binary cross-entropy.
# * *Gaussian*, decoder mean $m_d$ and log-variance $v_d$:
#   $\log p_\theta(x\mid z)=-\tfrac12\sum_d\big[\log 2\pi+v_d+(x_d-m_d)^2e^{-v_d}\big]$; with a fixed
#   variance this is the squared error of an autoencoder, scaled, plus a constant.
# * *Categorical* over the 17 grey levels of the digits, decoder logits $o_{d,c}$ for each pixel
#   $d$ and level $c$: $\log p_\theta(x\mid z)=\sum_d \log\operatorname{softmax}(o_{d,\cdot})_{x_d}$.
#   It is a proper probability of the integer image, so the ELBO is a bound on
#   $\log P(x)$ in nats that can be compared with other models. This is the default for digits.

# %%
show(vae.Categorical.log_prob)
show(vae.VAE.terms)
show(vae.VAE.loss)

# %% [markdown]
# **Training, step by step.** For a minibatch: (1) run the encoder to get $\mu,\log\sigma^2$;
# (2) draw $z=\mu+\sigma\odot\varepsilon$; (3) run the decoder to get $p_\theta(x\mid z)$;
# (4) score the batch, $\log p_\theta(x\mid z)$, and compute the rate in closed form; (5) average
# $-\text{reconstruction}+\beta\cdot\text{rate}$ over the batch and take a gradient step on
# $\theta$ and $\phi$ together. Here are steps (1)-(5) once, by hand, on a fresh model:

# %%
demo = vae.VAE(config)
optimizer = torch.optim.Adam(demo.parameters(), lr=settings.lr)
x_batch = x_train[: settings.batch_size]
mu, log_var = demo.encode(x_batch)                           # (1) q(z|x) parameters, (B, L) each
z = vae.reparameterize(mu, log_var, generator=gen)              # (2) z = mu + sigma * eps
p_x_given_z = demo.decode(z)                                 # (3) the decoder's distribution
reconstruction = p_x_given_z.log_prob(x_batch)               # (4) log p(x|z), (B,)
rate = vae.kl_normal_std(mu, log_var)                        #     KL(q(z|x) || p(z)), (B,)
loss = (-reconstruction + config.beta * rate).mean()         # (5) the negative ELBO (β = 1)
optimizer.zero_grad()
loss.backward()
optimizer.step()
print(f"shapes: x {tuple(x_batch.shape)}, mu {tuple(mu.shape)}, z {tuple(z.shape)}; "
      f"reconstruction {reconstruction.mean().item():.1f}, rate {rate.mean().item():.2f}, loss {loss.item():.1f} nats")

# %% [markdown]
# `genlib.train.fit` repeats exactly this over minibatches and epochs with `VAE.loss`, keeping the
# weights with the best validation loss. The book profile's VAE has one hidden layer of 512 units
# in each network, $L=32$ latents and dropout (1,000 training images are few, and the validation
# loss stops improving after a few dozen epochs without it).

# %% [markdown]
# ## 7. A VAE on the digits

# %%
def train_vae():
    new_vae = vae.VAE(config)
    return new_vae, train_model(new_vae, (x_train,), (x_val,), "-ELBO")


# trained elsewhere (python -m genlib.train_family vae ...) when `checkpoint` is given: load it, do not train
vae_model, vae_history = train_family.load_or_train(checkpoint, "vae", train_vae, device=device,
                                                    expect={"dataset": dataset, "model": model, "latent_dim": latent_dim})
plot.history(vae_history, ylabel="negative ELBO (nats per image)", title="VAE training")
plt.show()

# %% [markdown]
# Both curves fall quickly; the validation loss then flattens while the training loss (computed
# with dropout on, so it is noisier and not directly comparable) keeps going; the best epoch's
# weights are kept.
#
# **Samples and reconstructions.** To generate, draw $z\sim\mathcal N(0,I)$ and decode. The
# decoder returns a *distribution* over images; we can show its mean (for the categorical decoder,
# the expected grey level of each pixel) or draw an image from it.

# %%
vae_model.eval()
with torch.no_grad():
    z = torch.randn(32, config.latent_dim, generator=gen).to(dev)
    p_x = vae_model.decode(z)
    means, draws = p_x.mean.cpu(), p_x.sample(gen).cpu()
    reconstructions = vae_model.reconstruct(x_test[:16].to(dev)).cpu()
fig, axes = plt.subplots(2, 2, figsize=(9, 5))
plot.image_grid(means, shape, nrow=8, ax=axes[0, 0], title="samples: decoder mean")
plot.image_grid(draws, shape, nrow=8, ax=axes[0, 1], title="samples: a draw x ~ p(x|z), same z")
plot.image_grid(vae.model_inputs(test.x[:16], config), shape, nrow=8, ax=axes[1, 0], title="test images")
plot.image_grid(reconstructions, shape, nrow=8, ax=axes[1, 1], title="reconstructions (mean of p(x|z=mu))")
plt.tight_layout()
plt.show()

# %% [markdown]
# **What the reconstructions lose.** A lecture claim to check: a VAE's reconstructions keep the
# large shape and drop small or thin features. Below, the squared error of the reconstructions
# (the decoder's mean for $z = \mu_\phi(x)$), pixel by pixel: averaged over the test set next to the
# test images' own variance at each pixel (top), and for single images (bottom rows: input,
# reconstruction, and the absolute error in grey levels, on the same scale). Grouping the pixels by their grey level in the input tests the claim
# directly: blank background, full-ink stroke centres, and the in-between levels that mark faint
# strokes and the edges of thin ones. The mean squared error is {glue:text}`err_background:.2f` on
# background pixels, {glue:text}`err_full:.2f` on full-ink ones and {glue:text}`err_partial:.2f` on the
# in-between ones: the error sits on the strokes, and {glue:text}`err_verdict`.

# %%
with torch.no_grad():
    recon_all = vae_model.reconstruct(x_test.to(dev)).cpu()  # (N, D) decoder means for z = mu(x)
targets = x_test.float()
squared_error = (recon_all - targets).pow(2)  # (N, D)
levels_top = float(targets.max())
groups = {"background": targets == 0, "full": targets == levels_top, "partial": (targets > 0) & (targets < levels_top)}
group_error = {name: float(squared_error[mask].mean()) for name, mask in groups.items()}
for name, value in group_error.items():
    glue(f"err_{name}", value, display=False)
glue("err_verdict", "most of all on the partial pixels, where thin and faint detail lives, as the lecture says"
     if group_error["partial"] == max(group_error.values()) else "the partial pixels, where thin and faint detail "
     "lives, are not singled out: at this resolution a thin stroke is one or two pixels, and the reconstructions "
     "miss the strokes' exact placement, wide or thin, rather than thin features in particular", display=False)
fig = plt.figure(figsize=(10, 5.6))
grid = fig.add_gridspec(2, 3, height_ratios=[1, 1.15])
for column, (image, title) in enumerate(((targets.mean(0), "mean test image"),
                                          (targets.var(0), "variance of the test images"),
                                          (squared_error.mean(0), "mean squared error of reconstructions"))):
    ax = fig.add_subplot(grid[0, column])
    shown = ax.imshow(image.reshape(shape).numpy(), cmap="gray_r" if column == 0 else "magma")
    fig.colorbar(shown, ax=ax, fraction=0.046), ax.set_title(title, fontsize=9), ax.axis("off")
picks = torch.argsort(squared_error.sum(1), descending=True)[torch.linspace(0, len(targets) - 1, 8).long()]
ax = fig.add_subplot(grid[1, :])  # worst (left) to best (right) reconstructed test images
plot.image_grid(torch.cat([targets[picks], recon_all[picks], squared_error[picks].sqrt()]), shape, nrow=len(picks),
                ax=ax, vmax=levels_top, title="single test images, worst to best reconstructed")
label_grid(ax, shape, ["input", "reconstruction", "|error|"])
plt.tight_layout()
plt.show()

# %% [markdown]
# **Why VAE samples are blurry.** Three reasons can be read off this figure and the model.
# (1) The decoder mean *averages*: when a code is compatible with several images (a stroke a
# pixel to the left or to the right), the likelihood is maximised by a mean that puts grey on both
# places. (2) The decoder is *factorised*: pixels are independent given $z$, so a draw (top right)
# adds independent per-pixel noise instead of coherent strokes — the mean looks cleaner than the
# draw, and that is why papers show means. (3) The prior and the aggregate of the encoder's codes
# do not match exactly: some prior draws land in regions that no training image uses, and decode
# to in-between shapes. A richer decoder (autoregressive, Chapter 6) fixes (2); adversarial or
# diffusion training (Chapters 5 and 8) avoid (1).
#
# The lectures add that VAE samples are blurrier than GAN samples
# {cite:p}`johnson2022generative,ororbia2025generative`. That holds for large images and models; at
# this book's scale, measured by Chapter 9's scoreboard (the Fréchet distance of the samples to the
# test digits in a classifier's features, lower is closer; median and range over
# {glue:text}`board_seeds` seeds), the VAE scores {glue:text}`board_vae_fd` and Chapter 5's
# unconditional DCGAN {glue:text}`board_gan_fd`: {glue:text}`board_verdict`.
#
# **Test log-likelihood.** The ELBO is a lower bound on $\log p_\theta(x)$. Trick 2 with the
# encoder as proposal gives tighter ones: the importance-weighted bound
# {cite:p}`burda2016iwae`
#
# $$
# \mathcal L_{\hat N}(x)=\mathbb E_{z^{(1)},\dots,z^{(\hat N)}\sim q_\phi(z\mid x)}\left[\log\frac1{\hat N}\sum_{m=1}^{\hat N}
# \frac{p_\theta(x\mid z^{(m)})\,p(z^{(m)})}{q_\phi(z^{(m)}\mid x)}\right],\qquad
# \mathrm{ELBO}=\mathcal L_1\le\mathcal L_{\hat N}\le\mathcal L_{\hat N+1}\le\log p_\theta(x),
# $$
#
# which approaches $\log p_\theta(x)$ as $\hat N\to\infty$ (the paper's *k*, and genlib's
# argument `k`). `VAE.log_weights` draws the $\hat N$ weights per image; `VAE.iwae_bound` is
# their `log_mean_exp`, one draw of $\mathcal L_{\hat N}$'s estimator; and
# `vae.evaluate_nll` averages it over a data set in batches, in nats per discrete image. Asked for
# several $\hat N$ at once, it draws the largest number of weights once and splits them into disjoint
# groups for the smaller $\hat N$: each group is one draw of that $\mathcal L_{\hat N}$'s estimator, so
# one pass gives every row of the table below. `vae.evaluate_elbo` does the same for the ELBO (over several
# draws of $z$ per image). `VAE.log_prob` returns the same estimate: an
# *estimate* of $\log p_\theta(x)$ that is a lower bound only in expectation. We report the negative
# bounds for a few $\hat N$ up to `k_iwae`, in nats per image and bits per dimension, next to
# the uniform model that gives every image the same probability.

# %%
from genlib.results import BOOK  # noqa: E402 (the book folder; the name `results` holds section 4's estimates)

board = compare.load_scoreboard(BOOK.parent / "results" / "scoreboard.json")  # Chapter 9's, committed
frechet = {row["key"]: compare.values(row, "frechet") for row in board["rows"]}
glue("board_seeds", len(board["seeds"]), display=False)
glue("board_vae_fd", bench.fmt(frechet["vae"], ".1f"), display=False)
glue("board_gan_fd", bench.fmt(frechet["gan"], ".1f"), display=False)
glue("board_verdict", "the ranges over seeds overlap, so the scoreboard cannot rank them here"
     if bench.overlap(frechet["vae"], frechet["gan"]) else "the VAE's samples are closer to the data, the opposite "
     "of the lectures' ranking" if max(frechet["vae"]) < min(frechet["gan"]) else "the GAN's samples are closer, "
     "as the lectures say", display=False)
show(vae.VAE.log_weights)
show(vae.evaluate_nll)
show(vae.evaluate_elbo)

# %%
tic = time.perf_counter()
nll = {"uniform model": metrics.uniform_nats(D, train.levels),
       "-ELBO (analytic KL)": vae.evaluate_elbo(vae_model, x_test.to(dev), batch_size=64, generator=gen, samples=10).nats}
ks_shown = [k for k in (1, 10, 100) if k_iwae % k == 0 and k < k_iwae] + [k_iwae]
for k, bound in vae.evaluate_nll(vae_model, x_test.to(dev), k=tuple(ks_shown), batch_size=64, generator=gen).items():
    nll[f"-IWAE bound, {k} sample" + "s" * (k > 1)] = bound.nats  # bound.kind: "estimate" (a bound in expectation)
print(f"(IWAE bounds with up to {k_iwae} importance samples per test image in {time.perf_counter() - tic:.1f} s)")

# %% tags=["nbval-check-output"]
print(f"test negative log-likelihood bounds on {dataset} ({len(x_test)} images, {D} pixels)")
print(f"{'':28}{'nats/image':>12}{'bits/dim':>10}")
for name, value in nll.items():
    print(f"{name:28}{value:12.1f}{metrics.nats_to_bpd(value, D):10.2f}")

# %% [markdown]
# Every bound is far below the uniform model's cost. The one-sample row ($\hat N=1$) is the ELBO again
# (estimated with a sampled rather than an analytic KL), and each tenfold increase in $\hat N$ tightens
# the bound.
# The true $-\log p_\theta(x)$ lies below the last row; the shrinking steps suggest that the
# remaining gap is small, although the bounds alone cannot say how small. For reference, when we
# re-ran the public VAE code that accompanies {cite:t}`tomczak2022dgm` (MLP, 16 latents, categorical
# decoder) on the same split, it reached about 96.6 nats (ELBO) and 93.5 nats (IWAE, $\hat N=1000$).
# These are **our re-run of a public implementation, not published results**, measured once; the
# book's own `benchmarks/vae_digits.py` trains the book's model without this chapter's epoch limit
# and reports medians and ranges over seeds.
#
# Finally, the encoder's means are features too: the same linear probe as in section 1, on the VAE's
# $\mu_\phi(x)$:

# %%
with torch.no_grad():
    vae_codes_train = vae_model.encode(x_train.to(dev))[0].cpu()
    vae_codes_test = vae_model.encode(x_test.to(dev))[0].cpu()
print(f"linear probe accuracy on VAE means mu(x): {probe(vae_codes_train, vae_codes_test):.3f}")

# %% [markdown]
# ## 8. What the latents do: traversals, editing and a 2-D map
#
# The rate $\mathrm{KL}(q_\phi(z\mid x)\,\|\,p(z))$ splits over latent coordinates. Coordinates
# whose average rate is near zero are *inactive*: the encoder outputs the prior for them whatever
# the input, and the decoder ignores them. The rate per coordinate tells us which latents carry
# information:

# %%
show(vae.rate_per_latent)
with torch.no_grad():
    mu_test, log_var_test = (t.cpu() for t in vae_model.encode(x_test.to(dev)))
rate_per_dim = vae.rate_per_latent(mu_test, log_var_test)  # (L,)
order = torch.argsort(rate_per_dim, descending=True)
print(f"active latents (mean rate > 0.1 nats): {(rate_per_dim > 0.1).sum().item()} of {config.latent_dim}")
plt.figure(figsize=(6, 2.5))
plt.bar(range(config.latent_dim), rate_per_dim[order].numpy())
plt.xlabel("latent coordinate (sorted by rate)"), plt.ylabel("mean rate (nats)"), plt.title("rate per latent coordinate")
plt.gca().xaxis.set_major_locator(plt.MaxNLocator(integer=True))
plt.show()

# %% [markdown]
# **Latent traversals.** Encode a test digit, then move one active coordinate from $-3$ to $3$
# while holding the others at the encoder's mean, and decode. Each row below is one test digit
# (its label on the left) and one of the four most active coordinates; the columns are the values
# of that coordinate. On these 8x8 digits most rows do not change one style factor of the digit:
# they morph it into another digit (a 3 into a 4 or a 2, a 0 into a 9), since the largest
# differences between the images are between digits, and the most active latents follow them.
# Only some rows keep the digit and change its shape — its width, thickness or slant, several at
# once.
#
# Why would a coordinate line up with anything? **Not because of the prior.** $\mathcal N(0, I)$ is
# rotation-invariant: for any orthogonal matrix $R$, $Rz$ has the same distribution as $z$, so a
# decoder $g_\theta(R^\top z)$ defines exactly the same $p_\theta(x)$ as $g_\theta(z)$, and the prior
# cannot prefer one set of axes to another. The preference comes from the **diagonal posterior**
# $q_\phi(z\mid x)=\mathcal N(\mu, \operatorname{diag}\sigma^2)$: a diagonal Gaussian is *not*
# rotation-invariant, and the ELBO is highest in the rotation where the true posterior is closest
# to diagonal, which pushes a VAE toward axes along which the decoder's local behaviour
# decorrelates, roughly principal directions {cite:p}`rolinek2019variational`. Without such
# inductive biases, or some supervision, disentangled axes are not identifiable from the data at
# all: for every disentangled model there are infinitely many entangled ones with the same
# distribution of $x$, and in a large study the random seed mattered about as much as the method
# {cite:p}`locatello2019challenging`. What the traversals show is a side effect of the
# architecture, not a property the objective guarantees. (Lectures that credit the diagonal,
# independent *prior* with disentangling the latents {cite:p}`johnson2022generative` have the
# cause in the wrong place: the prior, rotation-invariant, cannot prefer any axes.)

# %%
values = torch.linspace(-3, 3, 9)
traversal_rows, row_labels = [], []
with torch.no_grad():
    for i in [0, 5, 9]:
        for j in order[:4].tolist():
            codes = mu_test[i].repeat(len(values), 1)  # (9, L)
            codes[:, j] = values
            traversal_rows.append(vae_model.decode(codes.to(dev)).mean.cpu())
            row_labels.append(f"digit {int(test.y[i])}: $z_{{{j + 1}}}$")
fig, ax = plt.subplots(figsize=(5.2, 6.4))
plot.image_grid(torch.cat(traversal_rows), shape, nrow=len(values), ax=ax,
                title="traversals: one latent at a time (β = 1)")
label_grid(ax, shape, row_labels, [f"{v:g}" for v in values.tolist()])
ax.set_xlabel("value of the traversed latent (others at the encoder mean)")
plt.show()

# %% [markdown]
# **Image editing** uses the same recipe: encode, change some coordinates, decode. A direction
# that changes a property can also be *found* from data: the difference between the mean codes
# of two classes is a direction from one digit towards the other. Below, test images of a 1 are
# moved along $\bar\mu_{7} - \bar\mu_{1}$ in steps of a quarter.

# %%
labels_test = test.y
direction = mu_test[labels_test == 7].mean(0) - mu_test[labels_test == 1].mean(0)
ones = mu_test[labels_test == 1][:4]
steps = torch.linspace(0, 1.25, 6)
with torch.no_grad():
    edited = torch.cat([vae_model.decode((code + steps[:, None] * direction).to(dev)).mean.cpu() for code in ones])
plot.image_grid(edited, shape, nrow=len(steps), title="editing: z + t (mean 7 - mean 1), t = 0 ... 1.25")
plt.show()

# %% [markdown]
# **A 2-D latent space.** With $L=2$ the whole latent space can be drawn. We train a second VAE
# with two latents (and, since two numbers carry little, narrower networks of 256 hidden units,
# stopped after 10 epochs without a better validation loss, to keep the chapter fast), then (left) decode a grid of $z$ values placed at quantiles of the prior, and
# (right) plot the encoder means of the test digits, coloured by label. The map is continuous:
# neighbouring codes decode to similar images, and classes occupy neighbouring regions.

# %%
config_2d = replace(config, latent_dim=2, hidden=256)
vae_2d = vae.VAE(config_2d)
history_2d = train_model(vae_2d, (x_train,), (x_val,), "-ELBO", patience=10)
vae_2d.eval()
quantiles = Normal(0.0, 1.0).icdf(torch.linspace(0.04, 0.96, 12))
grid = torch.cartesian_prod(quantiles.flip(0), quantiles)[:, [1, 0]]  # rows: z_2 high to low
with torch.no_grad():
    manifold = vae_2d.decode(grid.to(dev)).mean.cpu()
    mu_2d = vae_2d.encode(x_test.to(dev))[0].cpu()
fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
plot.image_grid(manifold, shape, nrow=12, ax=axes[0], title="decoded grid of z (prior quantiles)")
label_grid(axes[0], shape, [f"{v:.2f}" for v in quantiles.flip(0).tolist()], [f"{v:.2f}" for v in quantiles.tolist()])
axes[0].tick_params(axis="x", labelrotation=90)
axes[0].set_xlabel("$z_1$"), axes[0].set_ylabel("$z_2$")
points = axes[1].scatter(mu_2d[:, 0], mu_2d[:, 1], c=labels_test, cmap="tab10", s=8)
axes[1].set_xlabel("$z_1$"), axes[1].set_ylabel("$z_2$"), axes[1].set_title("encoder means of test digits")
fig.colorbar(points, ax=axes[1], ticks=range(10), label="digit")
plt.show()

# %% [markdown]
# Back to section 1's bottleneck: the VAEs' reconstruction errors per pixel (decoder mean at
# $z=\mu_\phi(x)$, squared) next to the linear code's at the same $L$. A VAE pays for its rate, so it
# does not minimise this error alone; what the comparison shows is how much a nonlinear code of two
# numbers keeps compared with the best linear one.

# %% tags=["nbval-check-output"]
with torch.no_grad():
    for name, net, L in (("VAE, L = 2", vae_2d, 2), (f"VAE, L = {config.latent_dim}", vae_model, config.latent_dim)):
        error = float((net.reconstruct(x_test.to(dev)).cpu() - x_test.float()).pow(2).mean())
        print(f"{name:12s}: test error per pixel {error:6.2f}   linear code (PCA) at the same L "
              f"{pca_reconstruction_error(L):6.2f}")

# %% [markdown]
# **Interactive: latent sliders.** Move $z_1$ and $z_2$ and see what the decoder of the 2-latent
# VAE makes of them (with a kernel). For the static book, the animation below walks the code around
# a circle of radius $1.5$ in the same plane.


# %% tags=["hide-input"]
def draw_latent(fig, z1, z2):
    ax = fig.subplots()
    with torch.no_grad():
        image = vae_2d.decode(torch.tensor([[z1, z2]], dtype=torch.float32).to(dev)).mean.cpu()
    plot.image_grid(image, shape, nrow=1, ax=ax, title=f"z = ({z1:.2f}, {z2:.2f})",
                    vmax=float(train.levels - 1) if config.likelihood != "gaussian" else 1.0)


widgets.live(draw_latent, figsize=(2.6, 2.6), z1=(-3.0, 3.0, 0.1), z2=(-3.0, 3.0, 0.1))

# %%
angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
widgets.animate(lambda fig, a: draw_latent(fig, 1.5 * np.cos(a), 1.5 * np.sin(a)), angles, figsize=(2.6, 2.6))

# %% [markdown]
# ## 9. β-VAE: trading rate for distortion
#
# Weighting the rate by $\beta$ gives the β-VAE objective {cite:p}`higgins2017beta`
#
# $$
# \mathcal L_\beta(x)=-\mathbb E_{q_\phi(z\mid x)}\big[\log p_\theta(x\mid z)\big]
# +\beta\,\mathrm{KL}\big(q_\phi(z\mid x)\,\|\,p(z)\big).
# $$
#
# $\beta=1$ is the negative ELBO. $\beta>1$ makes information in $z$ expensive: codes stay closer to
# the prior, fewer coordinates are active, reconstructions lose detail (more *distortion*, the
# first term) while the codes that remain tend to be smoother and more independent. $\beta<1$ buys
# sharper reconstructions with a higher *rate* and codes that drift from the prior, so samples get
# worse {cite:p}`higgins2017beta,mit6s191generative`. We train one VAE per $\beta$ (the $\beta=1$
# model is the one above; the others stop after 10 epochs without a better validation loss) and
# measure both terms on the test set. Each model's training summary
# reports *its own* loss, $-\text{reconstruction} + \beta\cdot\text{rate}$: for $\beta\neq 1$ that is
# not the $-$ELBO and not comparable with the other models' numbers. The table below puts all of
# them on one scale: the unweighted sum rate + distortion is each model's test $-$ELBO.

# %%
beta_models = {}
for beta in betas:
    if beta == config.beta:
        beta_models[beta] = vae_model
        continue
    beta_models[beta] = vae.VAE(replace(config, beta=beta))
    print(f"beta = {beta}: ", end="")
    train_model(beta_models[beta], (x_train,), (x_val,), f"β-weighted loss (β = {beta}, not the -ELBO)", patience=10)

rate_distortion = {}
for beta, net in beta_models.items():
    net.eval()
    with torch.no_grad():
        terms = [net.terms(x_test.to(dev), generator=gen) for _ in range(10)]
    distortion = -torch.stack([t[0] for t in terms]).mean().item()
    rate = torch.stack([t[1] for t in terms]).mean().item()
    rate_distortion[beta] = (rate, distortion)
print(f"{'beta':>6}{'rate (nats)':>13}{'distortion (nats)':>19}{'-ELBO (nats)':>14}")
for beta, (rate, distortion) in rate_distortion.items():
    print(f"{beta:>6}{rate:13.1f}{distortion:19.1f}{rate + distortion:14.1f}")

# %%
fig, axes = plt.subplots(1, len(betas) + 1, figsize=(3.2 * (len(betas) + 1), 3.2))
z_shared = torch.randn(16, config.latent_dim, generator=gen).to(dev)  # the same z for every β
for ax, (beta, net) in zip(axes, beta_models.items()):
    with torch.no_grad():
        plot.image_grid(net.decode(z_shared).mean.cpu(), shape, nrow=4, ax=ax, title=f"samples, β = {beta}")
rates, distortions = zip(*rate_distortion.values())
axes[-1].plot(rates, distortions, "o-")
for beta, (rate, distortion) in rate_distortion.items():
    rightmost = rate == max(rates)  # its label goes to the left of the point, inside the axes
    axes[-1].annotate(f"β = {beta}", (rate, distortion), textcoords="offset points", xytext=(-6 if rightmost else 6, 4),
                      ha="right" if rightmost else "left", fontsize=9)
axes[-1].set_xlabel("rate KL(q||p) (nats)"), axes[-1].set_ylabel("distortion -log p(x|z) (nats)")
axes[-1].set_title("rate vs distortion (test)"), axes[-1].margins(0.2)
plt.tight_layout()
plt.show()

# %% [markdown]
# Lower $\beta$ moves along the curve to more rate and less distortion. The samples show the other
# side of the trade: as the rate grows, the encoder uses parts of latent space the prior rarely
# visits, and prior samples decode to less digit-like images.
#
# ### Posterior collapse
#
# The rate is an upper bound on how much the code can tell the decoder about the image: on average
# over the data, $\mathbb E_x\,\mathrm{KL}(q_\phi(z\mid x)\,\|\,p(z)) \ge I(x; z)$, the mutual
# information between image and code under the encoder. Just naming the digit, one of ten roughly
# equally likely classes, takes $\ln 10$ nats (printed below). A model whose rate is below that cannot
# reliably pass on even which digit it was shown: some of the ten must be confused. When the rate drops to zero, $q_\phi(z\mid x) = p(z)$ for
# every $x$: the code carries nothing, the decoder learns to ignore it and becomes an unconditional
# model of the data, and every reconstruction is the same blurred average. This is **posterior
# collapse** {cite:p}`bowman2016generating`; a large $\beta$ forces it, and a decoder powerful enough
# to model $x$ without help from $z$ (an autoregressive one, Chapter 6) invites it even at $\beta=1$.
# The β-VAEs above show its onset and, at the largest $\beta$, the collapse itself. For each we measure the rate, the number of active latents, a
# linear probe of the label on the encoder means (as in section 1), and how much the
# reconstructions vary from image to image, relative to how much the images themselves vary (1:
# as much as the data, 0: the same output for every input):

# %% tags=["nbval-check-output"]
collapse = {}
for beta, net in beta_models.items():
    with torch.no_grad():
        mu_b, log_var_b = (t.cpu() for t in net.encode(x_test.to(dev)))
        mu_b_train = net.encode(x_train.to(dev))[0].cpu()
        recon_b = net.reconstruct(x_test.to(dev)).cpu()
    spread = float(recon_b.float().var(0).sum() / x_test.float().var(0).sum())
    collapse[beta] = {"rate": rate_distortion[beta][0], "active": int((vae.rate_per_latent(mu_b, log_var_b) > 0.1).sum()),
                      "probe": probe(mu_b_train, mu_b), "spread": spread, "rates": vae.rate_per_latent(mu_b, log_var_b)}
print(f"{'beta':>6}{'rate (nats)':>13}{'active latents':>16}{'probe accuracy':>16}{'reconstruction spread':>23}")
for beta, c in collapse.items():
    print(f"{beta:>6}{c['rate']:13.1f}{c['active']:16d}{c['probe']:16.2f}{c['spread']:23.2f}")
print(f"rate below ln 10 = {math.log(10):.2f} nats:", {beta: c["rate"] < math.log(10) for beta, c in collapse.items()})

# %%
digits_shown = [int(torch.nonzero(test.y == d)[0]) for d in range(10)]  # the first test image of each digit
with torch.no_grad():
    recon_rows = [vae.model_inputs(test.x[digits_shown], config).float()] + [
        net.reconstruct(x_test[digits_shown].to(dev)).cpu() for net in beta_models.values()]
fig, ax = plt.subplots(figsize=(6, 0.75 * len(recon_rows) + 0.8))
plot.image_grid(torch.cat(recon_rows), shape, nrow=10, ax=ax, title="reconstructions of one test image per digit")
label_grid(ax, shape, ["input"] + [f"β = {beta}" for beta in beta_models])
plt.show()

# %% [markdown]
# Read the rows against the table. Where the rate stays well above $\ln 10$, the reconstructions
# follow their inputs. Where it falls below, the code cannot carry the digit's identity: only a few
# latents remain active, the probe's accuracy drops, the reconstructions vary much less than the
# inputs, and in the figure they lose the input's identity, drifting toward a few blurred generic
# shapes. That is the onset of posterior collapse. At the largest $\beta$ it is complete: the rate is
# nearly zero, no latent is active, the reconstructions hardly vary at all, and the figure's last
# row is one blurred average digit repeated — the reconstruction ignores $x$. (The probe can still
# read something from the encoder's means, which differ by tiny amounts from image to image; at
# that rate the posterior's noise drowns them before they reach the decoder.)
#
# **Traversals across β.** The same traversal as in section 8, for one test digit, along each
# model's three most active latents (each row's label gives that latent's rate). With larger $\beta$
# fewer coordinates carry information and each carries less; at the largest $\beta$ hardly a frame
# of the rows looks like the input, and the few remaining latents morph between whole digit shapes
# rather than changing one style factor (with no active latent left, the traversals at the largest
# $\beta$ change nothing). Whether a coordinate ends up
# meaning "slant" or "width" is, as discussed above, an accident of the architecture, not something
# $\beta$ guarantees.

# %%
beta_rows, row_labels = [], []
with torch.no_grad():
    for beta, net in beta_models.items():
        code = net.encode(x_test[:1].to(dev))[0].cpu()[0]  # (L,), the encoder mean of test image 0
        for j in torch.argsort(collapse[beta]["rates"], descending=True)[:3].tolist():
            codes = code.repeat(len(values), 1)  # (9, L)
            codes[:, j] = values
            beta_rows.append(net.decode(codes.to(dev)).mean.cpu())
            row_labels.append(f"β = {beta}: $z_{{{j + 1}}}$ ({float(collapse[beta]['rates'][j]):.2f} nats)")
fig, ax = plt.subplots(figsize=(5.6, 0.62 * len(beta_rows) + 1.0))
plot.image_grid(torch.cat(beta_rows), shape, nrow=len(values), ax=ax,
                title=f"traversals of test digit {int(test.y[0])} across β")
label_grid(ax, shape, row_labels, [f"{v:g}" for v in values.tolist()])
ax.set_xlabel("value of the traversed latent (rate of that latent in brackets)")
plt.show()

# %% [markdown]
# **Interactive: choose β** (with a kernel), or play the precomputed frames (static book): the
# same 16 prior draws decoded by each β-VAE.


# %% tags=["hide-input"]
def draw_beta(fig, beta):
    ax = fig.subplots()
    rate, distortion = rate_distortion[beta]
    with torch.no_grad():
        plot.image_grid(beta_models[beta].decode(z_shared).mean.cpu(), shape, nrow=4, ax=ax,
                        title=f"β = {beta}: rate {rate:.1f}, distortion {distortion:.1f}")


widgets.live(draw_beta, figsize=(3.6, 3.8), beta=list(beta_models))

# %% tags=["hide-input"]
widgets.animate(draw_beta, list(beta_models), figsize=(3.6, 3.8), interval=900)

# %% [markdown]
# ## 10. A class-conditional VAE
#
# If labels are available, both networks can see them: $q_\phi(z\mid x,y)$ and
# $p_\theta(x\mid z,y)$, with the prior still $\mathcal N(0,I)$ {cite:p}`sohn2015cvae`. genlib
# concatenates a one-hot $y$ to the encoder's input and to the decoder's input. Since the label
# now carries the digit's identity, the latent code is free to describe *style*. Below, each row
# is one label and each column one $z$ shared by all rows: the same style, rendered as each digit.
# Its training loss is the negative ELBO of $p_\theta(x\mid y)$, a bound on $-\log p_\theta(x\mid y)$:
# the label is given rather than modelled, so the number is smaller than an unconditional
# $-\log p_\theta(x)$ by up to $-\log p(y)\approx\ln 10$ nats without the model being any better at
# images, and it must not be compared with the plain VAE's $-$ELBO. (Like the 2-latent VAE, it uses
# 256 hidden units and stops after 10 epochs without improvement, to keep the chapter fast.)

# %%
cvae = vae.VAE(replace(config, n_classes=10, hidden=256))
cvae_history = train_model(cvae, (x_train, train.y), (x_val, val.y), "bound on -log p(x | y) (not on -log p(x))",
                           patience=10)
cvae.eval()
z_style = torch.randn(1, 10, config.latent_dim, generator=gen).expand(10, 10, -1)  # (label, column, L)
labels = torch.arange(10)[:, None].expand(10, 10)
with torch.no_grad():
    conditional = cvae.decode(z_style.to(dev), labels.to(dev)).mean.cpu()  # (10, 10, D)
plot.image_grid(conditional.reshape(100, D), shape, nrow=10, title="class-conditional samples: row = label, column = z")
plt.show()

# %% tags=["nbval-check-output"]
print("shapes: class-conditional samples", tuple(conditional.shape), "| 2-D manifold grid", tuple(manifold.shape),
      "| traversals (β = 1)", tuple(torch.cat(traversal_rows).shape), "| traversals across β",
      tuple(torch.cat(beta_rows).shape))

# %% [markdown]
# ## Summary
#
# * A latent-variable model $p_\theta(x)=\int p_\theta(x\mid z)p(z)\,dz$ is an infinite mixture;
#   its likelihood is an integral.
# * Trick 1 (prior samples) is unbiased for $p_\theta(x)$ but needs many samples; trick 2
#   (importance sampling) needs few when the proposal is close to the posterior, and one when it
#   is the posterior; trick 3 (an encoder) predicts a proposal for every $x$.
# * Jensen's inequality on trick 2 gives the ELBO, and Bayes' rule shows its gap:
#   $\log p_\theta(x)-\mathrm{ELBO}=\mathrm{KL}(q_\phi(z\mid x)\,\|\,p_\theta(z\mid x))$. Encoder
#   and decoder maximise the same objective; reparameterisation makes it differentiable.
# * With $\hat N$ importance samples the bound tightens (IWAE); test likelihoods are reported with it.
# * Gradients cannot pass through an ordinary sample; the score-function estimator avoids that but
#   is far noisier than the reparameterised gradient on the same problem.
# * $\beta$ trades rate against distortion; when the rate falls below what the data need (here
#   $\ln 10$ nats for the digit's identity) the posterior collapses toward the prior and
#   reconstructions stop depending on the input. Labels give a conditional model; the latent space
#   supports traversals and edits, but axis-aligned "disentangled" latents come from the diagonal
#   posterior's bias, not from the rotation-invariant prior, and are not identifiable in general.
#   Samples are blurry because of averaging and a factorised decoder.
#
# ## Exercises
#
# **1. Unbiased, but biased in the log.** On the tractable model, estimate $\mathbb E[\hat p(x)]$
# and $\mathbb E[\log\hat p(x)]$ for trick 1 with $\hat N=10$ from many repetitions, and compare them with
# $p(x)$ and $\log p(x)$. Which one is biased, in which direction, and why?
#
# ```{admonition} Solution
# :class: dropdown
# Repeat `vae.log_p_prior_mc(log_lik, prior, 10, gen)` a few thousand times. The mean of
# `exp(estimate - log_p_exact)` is close to 1 (within its standard error): $\hat p(x)$ is
# unbiased, because it is an average of $p(x\mid z^{(m)})$ with $z^{(m)}\sim p(z)$ and
# $\mathbb E_{p(z)}[p(x\mid z)]=p(x)$. The mean of the log estimates is well below
# $\log p(x)$: since $\log$ is concave, Jensen gives
# $\mathbb E[\log\hat p]\le\log\mathbb E[\hat p]=\log p(x)$, with a gap that grows with the variance
# of $\hat p$ (to second order, $\operatorname{Var}[\hat p]/(2p(x)^2)$). The test
# `test_estimators_are_unbiased_for_p_not_log_p` in `tests/test_vae.py` checks both facts.
# ```
#
# **2. KL between two diagonal Gaussians.** Derive
# $\mathrm{KL}(\mathcal N(\mu_1,\sigma_1^2)\,\|\,\mathcal N(\mu_2,\sigma_2^2))$ in one dimension and
# check that `vae.kl_normal_std` is the case $\mu_2=0,\sigma_2=1$ summed over coordinates.
#
# ```{admonition} Solution
# :class: dropdown
# $\mathrm{KL}=\mathbb E_{1}\big[\log\frac{\sigma_2}{\sigma_1}-\frac{(z-\mu_1)^2}{2\sigma_1^2}
# +\frac{(z-\mu_2)^2}{2\sigma_2^2}\big]
# =\log\frac{\sigma_2}{\sigma_1}-\frac12+\frac{\sigma_1^2+(\mu_1-\mu_2)^2}{2\sigma_2^2}$, using
# $\mathbb E_1[(z-\mu_2)^2]=\sigma_1^2+(\mu_1-\mu_2)^2$. With $\mu_2=0,\sigma_2=1$:
# $-\frac12\log\sigma_1^2-\frac12+\frac12(\sigma_1^2+\mu_1^2)$, which is one term of
# $\frac12\sum_j(\mu_j^2+\sigma_j^2-1-\log\sigma_j^2)$. Numerically:
# `kl_divergence(vae.diag_normal(mu, log_var), vae.std_normal(L))` agrees with
# `vae.kl_normal_std(mu, log_var)` (the test `test_kl_normal_std_matches_torch`).
# ```
#
# **3. The best diagonal proposal.** For a Gaussian posterior $\mathcal N(m,\Sigma)$ with precision
# $\Lambda=\Sigma^{-1}$, show that the diagonal Gaussian $q$ minimising $\mathrm{KL}(q\,\|\,p)$ has
# mean $m$ and variances $1/\Lambda_{jj}$, and that its gap is
# $\tfrac12\big(\sum_j\log\Lambda_{jj}-\log\det\Lambda\big)$. Why is that zero for a diagonal $\Sigma$?
#
# ```{admonition} Solution
# :class: dropdown
# For $q=\mathcal N(a,\operatorname{diag}s^2)$,
# $\mathrm{KL}(q\|p)=\tfrac12\big[\operatorname{tr}(\Lambda\operatorname{diag}s^2)+(a-m)^\top\Lambda(a-m)
# -L-\sum_j\log s_j^2-\log\det\Lambda\big]$. The quadratic term is minimised by $a=m$; setting the
# derivative in $s_j^2$ to zero, $\tfrac12(\Lambda_{jj}-1/s_j^2)=0$, gives $s_j^2=1/\Lambda_{jj}$.
# Substituting, the trace is $L$ and the KL is $\tfrac12(\sum_j\log\Lambda_{jj}-\log\det\Lambda)$.
# By Hadamard's inequality $\det\Lambda\le\prod_j\Lambda_{jj}$, with equality exactly when
# $\Lambda$ is diagonal: a diagonal $q$ is exact only for a posterior with uncorrelated
# coordinates. This is the "best diagonal Gaussian's gap" printed in section 5.
# ```
#
# **4. Rate, β and active latents.** Rerun the chapter with papermill's
# `-y "betas: [0.1, 1.0, 8.0]"`. How do the number of active latents and the samples change with
# β, and why?
#
# ```{admonition} Solution
# :class: dropdown
# At $\beta=8$ each nat of rate costs eight nats of loss, and no latent pays for itself: the
# posterior collapses. A hidden cell below takes the $\beta=8$ model from section 9 (or trains it, if
# the chapter was run without it), trains the $\beta=0.1$ one (at most {glue:text}`ex4_epochs`
# epochs, with early stopping; the numbers move a little with the seed) and measures both as the
# collapse table does. The $\beta=8$ model's test rate is
# {glue:text}`ex4_rate_8:.2f` nats — against the $\ln 10$ nats needed just to name the digit —
# with {glue:text}`ex4_active_8` active latents (rate above $0.1$ nats) and a reconstruction spread
# of {glue:text}`ex4_spread_8:.2f`: the decoder ignores $z$ and has become an unconditional model of
# the digits, so the image does not keep its identity. (The encoder means can still differ by tiny
# amounts from image to image, enough for a linear probe to score {glue:text}`ex4_probe_8:.2f`, but
# at that rate the posterior's noise drowns them before they reach the decoder.) At $\beta=0.1$ the
# rate is cheap: {glue:text}`ex4_rate_01:.1f` nats, {glue:text}`ex4_active_01` of the
# {glue:text}`ex4_latents` latents active, the reconstructions follow their inputs (spread
# {glue:text}`ex4_spread_01:.2f`, probe {glue:text}`ex4_probe_01:.2f`), and the distortion falls to
# {glue:text}`ex4_distortion_01:.1f` nats. Both points lie on the same rate–distortion trade-off as
# the chapter's models; β only chooses where.
# ```


# %% tags=["remove-input"]
# Exercise 4's solution, run: β = 0.1 and β = 8 trained and measured like the collapse table above
ex4_epochs = min(epochs, 15)
glue("ex4_epochs", ex4_epochs, display=False)
glue("ex4_latents", config.latent_dim, display=False)
for beta, name in ((0.1, "01"), (8.0, "8")):
    net = beta_models.get(beta)
    if net is None:
        net = vae.VAE(replace(config, beta=beta))
        fit(net, vae.batch_loss, (x_train,), (x_val,), epochs=ex4_epochs, batch_size=settings.batch_size,
            lr=settings.lr, patience=10, device=dev, generator=gen, progress=False)
    net.eval()
    with torch.no_grad():
        terms = [net.terms(x_test.to(dev), generator=gen) for _ in range(10)]
        mu_b, log_var_b = (t.cpu() for t in net.encode(x_test.to(dev)))
        mu_b_train = net.encode(x_train.to(dev))[0].cpu()
        recon_b = net.reconstruct(x_test.to(dev)).cpu()
    glue(f"ex4_rate_{name}", torch.stack([t[1] for t in terms]).mean().item(), display=False)
    glue(f"ex4_distortion_{name}", -torch.stack([t[0] for t in terms]).mean().item(), display=False)
    glue(f"ex4_active_{name}", int((vae.rate_per_latent(mu_b, log_var_b) > 0.1).sum()), display=False)
    glue(f"ex4_probe_{name}", probe(mu_b_train, mu_b), display=False)
    glue(f"ex4_spread_{name}", float(recon_b.float().var(0).sum() / x_test.float().var(0).sum()), display=False)

# %% tags=["remove-cell", "nbval-check-output"]
widgets.check_live("04_vae")  # moves every control of every live widget above: see genlib/widgets.py
