"""The written contract of genlib.family, checked for every registered family (one test over the registry).

Every family: a smoke-sized model from its chapter's parameters trains through its declaration; its
model's ``loss(x, y=None, *, generator=None)`` is a finite scalar with a backward pass; ``sample`` takes
``y`` and ``generator`` by keyword; the declaration's samples are (n, D) in the declared space [0, 1] and
the same for the same seed; its NLL (if any) is finite and of the declared kind.
"""
import inspect
import math
from dataclasses import fields, is_dataclass

import pytest
import torch
from torch import nn

from genlib import data, family, params
from genlib.train import History

OPTIONS = {"device": "cpu", "progress": False, "precision": "fp32", "compile": False}


@pytest.fixture(scope="module")
def digits():
    train, test = data.digits("train"), data.digits("test")
    return train.x[:16], train.y[:16], test.x[:8], train.levels


def _smoke(declared: family.Family):
    return declared.parameters({**params.defaults(declared.chapter), **declared.smoke})


@pytest.mark.parametrize("key", list(family.REGISTRY))
def test_the_declaration_is_complete(key):
    declared = family.FAMILIES[key]
    assert declared.name == key and declared.chapter in params.CHAPTERS
    assert declared.density in (*family.KINDS, "none", "energy only")
    assert (declared.nll is None) == (declared.density not in family.KINDS)
    assert is_dataclass(declared.params) and declared.params.__dataclass_params__.frozen
    assert set(declared.smoke) <= {f.name for f in fields(declared.params)}
    assert declared.dataset_key in {f.name for f in fields(declared.params)}


@pytest.mark.parametrize("key", list(family.REGISTRY))
def test_the_model_signatures(key):
    model = family.FAMILIES[key].model
    for method, positional in (("loss", ["self", None, "y"]), ("sample", ["self", "n"])):  # None: x (any name)
        signature = inspect.signature(getattr(model, method))
        names = [p.name for p in signature.parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        assert [n if want else None for n, want in zip(names, positional)] == positional, \
            f"{model.__name__}.{method}{signature}"
        keyword = {p.name for p in signature.parameters.values() if p.kind == p.KEYWORD_ONLY}
        assert "generator" in keyword, f"{model.__name__}.{method}: generator must be keyword-only"
        if method == "sample":
            assert "y" in keyword, f"{model.__name__}.sample: y must be keyword-only"
        else:
            assert signature.parameters["y"].default is None


@pytest.mark.parametrize("key", list(family.REGISTRY))
def test_every_family_keeps_the_contract(key, digits):
    x, y, x_test, levels = digits
    declared = family.FAMILIES[key]
    chosen = _smoke(declared)
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = declared.build(chosen)
    assert isinstance(model, declared.model)
    history = declared.train(model, chosen, gen, OPTIONS)
    assert isinstance(history, History) and history.epochs >= 1 and all(map(math.isfinite, history.train))

    # the loss: a finite scalar, and (for a network) gradients for its parameters
    if isinstance(model, nn.Module):
        model.train()
    inputs = declared.inputs(model, x, levels, gen)
    loss = model.loss(inputs, y if declared.labels else None, generator=gen)
    assert loss.dim() == 0 and torch.isfinite(loss)
    if isinstance(model, nn.Module):
        model.zero_grad(set_to_none=True)
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
    if not declared.labels:
        with pytest.raises(ValueError, match="unconditional"):
            model.loss(inputs, y, generator=gen)

    # samples: (n, D) in [0, 1], the same for the same seed
    if isinstance(model, nn.Module):
        model.eval()
    first, again = (declared.samples(model, 5, torch.Generator().manual_seed(1)) for _ in range(2))
    assert first.shape == (5, x.shape[1]) and first.is_floating_point()
    assert first.min() >= 0 and first.max() <= 1 and torch.equal(first, again)
    assert not torch.equal(first, declared.samples(model, 5, torch.Generator().manual_seed(2)))

    # the likelihood: a finite number of the declared kind (nats, kind unpack)
    if declared.nll is not None:
        nats, kind = declared.nll(model, x_test, torch.Generator().manual_seed(0))
        assert math.isfinite(nats) and kind == declared.density
    if declared.features is not None:
        assert declared.features(model, x_test).shape[0] == len(x_test)
