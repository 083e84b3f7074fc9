"""Metrics and samplers refuse inputs that would give a wrong number or a raw error (issue 26, cases 5-6):
one table, each row a call and the one-line message it must raise."""
import numpy as np
import pytest
import torch

from genlib import autoregressive as ar
from genlib import diffusion, ebm, gan, metrics

NAN = float("nan")


def _models():
    torch.manual_seed(0)
    return {
        "ddpm": diffusion.Diffusion(diffusion.DiffusionConfig(dims=4, shape=None, T=10, net="mlp", width=8)),
        "fm": diffusion.FlowMatching(diffusion.DiffusionConfig(dims=4, shape=None, T=10, net="mlp", width=8)),
        "ebm": ebm.EBM(ebm.EBMConfig(dims=2, hidden=8)),
        "gan": gan.GAN(gan.GANConfig(dims=2, latent_dim=3, hidden=8, n_classes=10)),
        "pixelcnn": ar.PixelCNN(ar.PixelCNNConfig(shape=(3, 3), levels=4, channels=4, n_layers=1, head=8,
                                                  n_classes=10)),
    }


M = _models()
rng = np.random.default_rng(0)
A, B = rng.normal(size=(20, 3)), rng.normal(size=(20, 3))
WITH_NAN = A.copy()
WITH_NAN[0, 0] = np.nan
WITH_INF = A.copy()
WITH_INF[1, 1] = np.inf
U = torch.rand(2, 3, 3)

CASES = [
    # metrics: k and set sizes, NaN/inf features
    ("precision_recall k=0", lambda: metrics.precision_recall(A, B, k=0), ValueError, "k must be a positive integer"),
    ("precision_recall k=-1", lambda: metrics.precision_recall(A, B, k=-1), ValueError, "k must be a positive integer"),
    ("precision_recall NaN", lambda: metrics.precision_recall(A, WITH_NAN), ValueError, "fake has NaN or infinite"),
    ("precision_recall too few", lambda: metrics.precision_recall(A[:3], B, k=3), ValueError, "real has 3 rows; this needs at least 4"),
    ("precision_recall empty", lambda: metrics.precision_recall(A, B[:0]), ValueError, "fake has 0 rows"),
    ("precision_recall widths", lambda: metrics.precision_recall(A, B[:, :2]), ValueError, "fake has 2 features per row"),
    ("frechet NaN", lambda: metrics.frechet_distance(WITH_NAN, B), ValueError, "a has NaN or infinite"),
    ("frechet inf", lambda: metrics.frechet_distance(A, WITH_INF), ValueError, "b has NaN or infinite"),
    ("frechet one point", lambda: metrics.frechet_distance(A[:1], B), ValueError, "a has 1 rows; this needs at least 2"),
    ("frechet empty", lambda: metrics.frechet_distance(A, B[:0]), ValueError, "b has 0 rows"),
    # diffusion and flow matching
    ("ddpm steps=0", lambda: M["ddpm"].sample(2, steps=0), ValueError, "steps must be a positive integer"),
    ("ddpm x_T NaN", lambda: M["ddpm"].sample(2, x_T=torch.full((2, 4), NAN)), ValueError, "x_T has NaN"),
    ("ddpm x_T width", lambda: M["ddpm"].sample(2, x_T=torch.zeros(2, 5)), ValueError, r"x_T must have shape \(2, 4\)"),
    ("ddpm x_T rows", lambda: M["ddpm"].sample(2, x_T=torch.zeros(3, 4)), ValueError, r"x_T must have shape \(2, 4\), got \(3, 4\)"),
    ("ddpm bound levels=1", lambda: M["ddpm"].bound(torch.zeros(2, 4, dtype=torch.long), levels=1), ValueError, "levels must be an integer >= 2"),
    ("ddpm loss int", lambda: M["ddpm"].loss(torch.zeros(2, 4, dtype=torch.long)), TypeError, "must be a floating-point tensor"),
    ("fm x_T NaN", lambda: M["fm"].sample(2, x_T=torch.full((2, 4), NAN)), ValueError, "x_T has NaN"),
    ("fm x_T width", lambda: M["fm"].sample(2, x_T=torch.zeros(2, 5)), ValueError, r"x_T must have shape \(2, 4\)"),
    ("fm x_T rows", lambda: M["fm"].sample(2, x_T=torch.zeros(3, 4)), ValueError, r"x_T must have shape \(2, 4\)"),
    ("fm loss int", lambda: M["fm"].loss(torch.zeros(2, 4, dtype=torch.long)), TypeError, "must be a floating-point tensor"),
    # energy-based models
    ("ebm energy NaN", lambda: M["ebm"].energy(torch.full((2, 2), NAN)), ValueError, "x has NaN"),
    ("langevin NaN", lambda: ebm.langevin(M["ebm"].energy, torch.full((2, 2), NAN), 2, 0.1), ValueError, "x0 has NaN"),
    ("langevin clip_grad=-1", lambda: ebm.langevin(M["ebm"].energy, torch.zeros(2, 2), 2, 0.1, clip_grad=-1), ValueError, "clip_grad must be > 0"),
    # GAN
    ("gan label 10", lambda: M["gan"].sample(2, y=torch.tensor([1, 10])), ValueError, r"class indices 0\.\.9, found 10"),
    ("gan label -1", lambda: M["gan"].sample(2, y=torch.tensor([-1, 1])), ValueError, "found -1"),
    ("gan float labels", lambda: M["gan"].sample(2, y=torch.tensor([1.5, 2.0])), TypeError, "integer class indices"),
    ("gan label rows", lambda: M["gan"].sample(2, y=torch.tensor([1, 2, 3])), ValueError, r"y must have shape \(2\)"),
    ("gan z NaN", lambda: M["gan"].sample(2, y=torch.tensor([1, 2]), z=torch.full((2, 3), NAN)), ValueError, "z has NaN"),
    ("gan z rows", lambda: M["gan"].sample(2, y=torch.tensor([1, 2]), z=torch.zeros(3, 3)), ValueError, r"z must have shape \(2, 3\)"),
    # conditional PixelCNN
    ("pixelcnn label 10", lambda: M["pixelcnn"].sample(2, y=torch.tensor([0, 10])), ValueError, "found 10"),
    ("pixelcnn label -1", lambda: M["pixelcnn"].sample(2, y=torch.tensor([-1, 0])), ValueError, "found -1"),
    ("pixelcnn u NaN", lambda: M["pixelcnn"].sample(2, y=torch.tensor([0, 1]), u=torch.full((2, 3, 3), NAN)), ValueError, "u has NaN"),
    ("pixelcnn u 5", lambda: M["pixelcnn"].sample(2, y=torch.tensor([0, 1]), u=U + 4), ValueError, r"u must lie in \[0, 1\]"),
    ("pixelcnn u shape", lambda: M["pixelcnn"].sample(2, y=torch.tensor([0, 1]), u=torch.rand(2, 4)), ValueError, r"u must have shape \(2, 9\) or \(2, 3, 3\)"),
    ("pixelcnn known shape", lambda: M["pixelcnn"].complete(torch.zeros(2, 9, dtype=torch.long), y=torch.tensor([0, 1]),
                                                             known=torch.ones(2, 5, dtype=torch.bool)), ValueError, "known must have shape"),
]


@pytest.mark.parametrize("call, error, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_input_is_one_clear_line(call, error, message):
    with pytest.raises(error, match=message) as info:
        call()
    assert len(str(info.value).splitlines()) == 1 and len(str(info.value)) < 200


def test_good_inputs_still_work():
    p, r = metrics.precision_recall(A, B, k=3)
    assert 0 <= p <= 1 and 0 <= r <= 1
    assert np.isfinite(metrics.frechet_distance(A[:2], B[:2]))
    assert M["ddpm"].sample(2, steps=2, x_T=torch.zeros(2, 4)).shape == (2, 4)
    assert M["gan"].sample(2, y=torch.tensor([0, 9]), z=torch.zeros(2, 3)).shape == (2, 2)
    assert M["pixelcnn"].sample(2, y=torch.tensor([0, 9]), u=U).shape[0] == 2
    assert ebm.langevin(M["ebm"].energy, torch.zeros(2, 2), 1, 0.1, clip_grad=0.5).shape == (2, 2)
