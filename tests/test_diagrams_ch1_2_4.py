"""The schematic diagrams of chapters 1, 2 and 4 draw without error and name what they must."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from genlib import diagrams  # noqa: E402


def texts(ax):
    return " ".join(t.get_text() for t in ax.texts)


def test_taxonomy_names_every_family_with_its_chapter():
    ax = diagrams.draw_taxonomy()
    shown = texts(ax)
    for family in ("autoregressive", "flows", "VAE", "diffusion", "EBM", "GAN", "Boltzmann", "NADE"):
        assert family in shown, family
    for chapter in ("ch. 3", "ch. 4", "ch. 5", "ch. 6", "ch. 7", "ch. 8"):
        assert chapter in shown, chapter
    plt.close("all")


def test_latent_variable_model_and_vae_diagrams():
    shown = texts(diagrams.draw_latent_variable_model())
    assert "z^{(n)}" in shown and "x^{(n)}" in shown and "q_{\\phi}" in shown
    shown = texts(diagrams.draw_vae())
    assert "\\varepsilon" in shown and "\\mu + \\sigma \\odot \\varepsilon" in shown and "KL" in shown
    plt.close("all")
