"""Soft encoding over the K nearest bins, and annealed-mean decoding."""

import numpy as np
import pytest
import torch
from sslreg_colorization.bins import gamut_bins
from sslreg_colorization.encoding import (
    annealed_mean,
    nearest_bin,
    soft_encode,
    soft_encode_sparse,
)


@pytest.fixture(scope="module")
def bins(gamut_dir):
    return torch.from_numpy(gamut_bins(gamut_dir))


def random_ab(seed: int = 0, n: int = 2, size: int = 6) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, 2, size, size, generator=generator) * 180 - 90


@pytest.mark.parametrize("k", [1, 2, 5, 10, 40, 262, 313])
def test_soft_encoding_sums_to_one_with_k_nonzeros_and_nearest_argmax(bins, k):
    ab = random_ab(k)
    dense = soft_encode(ab, bins, k)
    assert dense.shape == (2, len(bins), 6, 6)
    torch.testing.assert_close(dense.sum(1), torch.ones(2, 6, 6))
    assert torch.all((dense > 0).sum(1) == min(k, len(bins)))
    assert torch.equal(dense.argmax(1), nearest_bin(ab, bins))


def test_weights_are_the_normalised_gaussian_of_the_k_nearest(bins):
    ab = random_ab(3, n=1, size=2)
    index, weights = soft_encode_sparse(ab, bins, 10, sigma=5.0)
    centres = bins.numpy().astype(np.float64)
    for i, j in [(0, 0), (0, 1), (1, 0), (1, 1)]:
        point = ab[0, :, i, j].double().numpy()
        d2 = ((centres - point) ** 2).sum(1)
        order = np.argsort(d2)[:10]
        expected = np.exp(-d2[order] / 50.0)
        np.testing.assert_array_equal(np.sort(index[0, i, j].numpy()), np.sort(order))
        np.testing.assert_allclose(weights[0, i, j].numpy(), expected / expected.sum(), rtol=1e-4, atol=1e-7)


def test_a_pixel_on_a_bin_centre_puts_most_weight_there(bins):
    ab = bins[17].view(1, 2, 1, 1)
    dense = soft_encode(ab, bins, 5)
    assert dense[0, 17, 0, 0] > 0.5 and dense.argmax(1).item() == 17


def test_annealed_mean_decodes_confident_logits_to_the_bin(bins):
    logits = torch.full((1, len(bins), 2, 2), -20.0)
    logits[0, 5, 0, 0] = logits[0, 100, 1, 1] = logits[0, 7, 0, 1] = logits[0, 7, 1, 0] = 20.0
    ab = annealed_mean(logits, bins, 0.38)
    torch.testing.assert_close(ab[0, :, 0, 0], bins[5])
    torch.testing.assert_close(ab[0, :, 1, 1], bins[100])


def test_temperature_one_is_the_mean_and_small_t_the_mode(bins):
    logits = torch.randn(1, len(bins), 1, 1, generator=torch.Generator().manual_seed(0))
    mean = (torch.softmax(logits[0, :, 0, 0], 0)[:, None] * bins).sum(0)
    torch.testing.assert_close(annealed_mean(logits, bins, 1.0)[0, :, 0, 0], mean)
    torch.testing.assert_close(annealed_mean(logits, bins, 1e-3)[0, :, 0, 0], bins[logits.flatten().argmax()])
    with pytest.raises(ValueError, match="temperature"):
        annealed_mean(logits, bins, 0.0)


def test_shape_is_checked(bins):
    with pytest.raises(ValueError, match=r"\(N, 2, h, w\)"):
        soft_encode(torch.zeros(2, 3, 4, 4), bins, 5)
