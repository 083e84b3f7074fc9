"""genlib: the tested PyTorch package behind the genlib book on deep generative models.

Every chapter of the book imports its models, losses, samplers and helpers from here.
Devices are chosen in one place (:func:`device`) and seeding happens in one place
(:func:`seed_everything`).
"""
from genlib._core import DEVICES, device, seed_everything, show_source

__version__ = "0.1.0"
__all__ = ["DEVICES", "device", "seed_everything", "show_source", "__version__"]
