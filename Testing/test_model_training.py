"""Stacked ensemble training: members are independent, bootstrap counts equal repeated rows, early
stopping keeps each member's best validation epoch."""

import numpy as np
import pytest
import torch

from DELICAITELib.model.training import Penalties, train_ensemble

OPTIONS = dict(hidden_units=8, dropout=0.0, penalties=Penalties(1e-3, 5e-3, 3e-3, 5e-3), interaction_penalty=1e-3,
               learning_rate=1e-2, patience=5, device="cpu")
NO_ROWS = np.array([], dtype=int)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4))
    t = np.where(rng.random(120) < 0.5, 1.0, -1.0)
    y = (rng.random(120) < 1 / (1 + np.exp(-(x[:, 0] + t * x[:, 1])))).astype(float)
    return x, t, y, rng.uniform(0.5, 1.5, 120)


def _weights(net) -> np.ndarray:
    return np.concatenate([p.detach().numpy().ravel() for p in net.parameters()])


def test_members_trained_together_equal_members_trained_alone(data):
    x, t, y, w = data
    rng = np.random.default_rng(1)
    splits = [(rng.integers(0, 120, 120), NO_ROWS) for _ in range(3)]
    together = train_ensemble(x, t, y, w, splits, [11, 12, 13], epochs=40, **OPTIONS)
    for split, seed, member in zip(splits, [11, 12, 13], together):
        (alone,) = train_ensemble(x, t, y, w, [split], [seed], epochs=40, **OPTIONS)
        assert np.allclose(_weights(member), _weights(alone), atol=1e-4)
    assert not np.allclose(_weights(together[0]), _weights(together[1]), atol=1e-2)  # seeds and samples differ


def test_bootstrap_counts_equal_training_on_the_repeated_rows(data):
    x, t, y, w = data
    rows = np.array([0, 0, 0, 5, 7, 7] + list(range(10, 60)))
    (counted,) = train_ensemble(x, t, y, w, [(rows, NO_ROWS)], [3], epochs=30, **OPTIONS)
    repeated = np.arange(len(rows))
    (explicit,) = train_ensemble(x[rows], t[rows], y[rows], w[rows], [(repeated, NO_ROWS)], [3], epochs=30, **OPTIONS)
    assert np.allclose(_weights(counted), _weights(explicit), atol=1e-5)


def test_early_stopping_keeps_the_best_validation_epoch(data):
    x, t, y, w = data
    train_rows, val_rows = np.arange(0, 40), np.arange(40, 120)  # few training rows: it overfits early
    options = dict(OPTIONS, penalties=Penalties(0.0, 0.0, 0.0, 0.0), interaction_penalty=0.0, learning_rate=5e-2)
    xv, tv = torch.as_tensor(x[val_rows], dtype=torch.float32), torch.as_tensor(t[val_rows], dtype=torch.float32)

    def val_loss(net):
        with torch.no_grad():
            logit = net(xv, tv)[0].numpy().astype(float)
        bce = np.logaddexp(0, logit) - y[val_rows] * logit
        return float((bce * w[val_rows]).sum() / w[val_rows].sum())

    # the rule applied to the losses after each number of epochs, each from a run without early stopping
    runs = {k: train_ensemble(x, t, y, w, [(train_rows, NO_ROWS)], [5], epochs=k, **options)[0] for k in range(1, 81)}
    best, best_epoch, since = np.inf, None, 0
    for k in range(1, 81):
        loss = val_loss(runs[k])
        if loss < best - 1e-6:
            best, best_epoch, since = loss, k, 0
        else:
            since += 1
            if since >= options["patience"]:
                break
    assert best_epoch is not None and best_epoch < 75  # it did stop early
    (stopped,) = train_ensemble(x, t, y, w, [(train_rows, val_rows)], [5], epochs=80, **options)
    assert np.allclose(_weights(stopped), _weights(runs[best_epoch]), atol=1e-5)
