from __future__ import annotations

import pytest
import torch

from model.features import N_FEATURES
from model.labels import N_GENRES
from model.network import ExportWrapper, GenreNet, NetworkConfig


@pytest.mark.parametrize(("batch", "frames"), [(1, 11), (3, 344), (2, 900)])
def test_outputs_are_distributions_of_the_right_shape(batch: int, frames: int) -> None:
    torch.manual_seed(0)
    probabilities, attention = ExportWrapper(GenreNet(NetworkConfig())).eval()(torch.randn(batch, frames, N_FEATURES))
    assert probabilities.shape == (batch, N_GENRES) and attention.shape == (batch, frames)
    torch.testing.assert_close(probabilities.sum(1), torch.ones(batch))
    torch.testing.assert_close(attention.sum(1), torch.ones(batch))
    assert (attention >= 0).all()


def test_an_ensemble_averages_its_members() -> None:
    torch.manual_seed(0)
    a, b = GenreNet(NetworkConfig()).eval(), GenreNet(NetworkConfig()).eval()
    x = torch.randn(2, 40, N_FEATURES)
    (pa, wa), (pb, wb), (p, w) = ExportWrapper(a)(x), ExportWrapper(b)(x), ExportWrapper(a, b)(x)
    torch.testing.assert_close(p, (pa + pb) / 2)
    torch.testing.assert_close(w, (wa + wb) / 2)
    torch.testing.assert_close(w.sum(1), torch.ones(2))


def test_attention_reads_the_spectrogram_not_the_rnn() -> None:
    """The parallel design: changing the GRU's weights leaves the attention weights alone."""
    torch.manual_seed(0)
    net = GenreNet(NetworkConfig()).eval()
    x = torch.randn(2, 50, N_FEATURES)
    _, before = net(x)
    with torch.no_grad():
        for p in net.rnn.parameters():
            p.add_(1.0)
    logits_after, after = net(x)
    torch.testing.assert_close(before, after)
    assert torch.isfinite(logits_after).all()


def test_fused_feature_is_the_attention_weighted_mean_of_rnn_states() -> None:
    torch.manual_seed(0)
    net = GenreNet(NetworkConfig()).eval()
    x = torch.randn(1, 30, N_FEATURES)
    logits, weights = net(x)
    states, _ = net.rnn(net.frame_encoder(x))
    fused = (weights[0, :, None] * states[0]).sum(0)
    torch.testing.assert_close(net.classifier(fused[None]), logits)
