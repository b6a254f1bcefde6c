import math

import pytest
import torch

from selfsup.losses import nt_xent


def naive_nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR eq. 1 written as loops over anchors, for clarity not speed."""
    z = torch.cat([z1, z2])
    z = z / z.norm(dim=1, keepdim=True)
    n = z1.shape[0]
    total = 0.0
    for i in range(2 * n):
        positive = (i + n) % (2 * n)
        numerator = math.exp(float(z[i] @ z[positive]) / temperature)
        denominator = sum(math.exp(float(z[i] @ z[k]) / temperature) for k in range(2 * n) if k != i)
        total += -math.log(numerator / denominator)
    return torch.tensor(total / (2 * n))


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0])
def test_nt_xent_matches_naive_reference(temperature: float) -> None:
    generator = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(6, 5, generator=generator), torch.randn(6, 5, generator=generator)
    assert nt_xent(z1, z2, temperature).item() == pytest.approx(naive_nt_xent(z1, z2, temperature).item(), rel=1e-5)


def test_nt_xent_is_low_for_aligned_views_and_high_for_random_ones() -> None:
    z = torch.randn(32, 16)
    assert nt_xent(z, z, 0.1) < nt_xent(z, torch.randn(32, 16), 0.1)


def test_nt_xent_with_gather_equals_single_process_on_the_global_batch() -> None:
    """Two simulated processes, each holding half the batch, average to the one-process loss."""
    generator = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(8, 4, generator=generator), torch.randn(8, 4, generator=generator)
    full = nt_xent(z1, z2, 0.5)
    normalised1 = torch.nn.functional.normalize(z1, dim=1)
    normalised2 = torch.nn.functional.normalize(z2, dim=1)
    losses = []
    for rank in range(2):
        rows = slice(4 * rank, 4 * rank + 4)

        def gather(local: torch.Tensor, rows: slice = rows, rank: int = rank) -> torch.Tensor:
            source = normalised1 if torch.allclose(local, normalised1[rows]) else normalised2
            parts = [source[0:4], source[4:8]]
            parts[rank] = local
            return torch.cat(parts)

        losses.append(nt_xent(z1[rows], z2[rows], 0.5, gather=gather, rank=rank))
    assert torch.stack(losses).mean().item() == pytest.approx(full.item(), rel=1e-5)


def test_nt_xent_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="temperature"):
        nt_xent(torch.randn(4, 3), torch.randn(4, 3), 0.0)
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        nt_xent(torch.randn(4, 3), torch.randn(5, 3))
