from __future__ import annotations

from pathlib import Path
from typing import get_args

import numpy as np
import onnx
import pytest
import torch

from model.features import N_FEATURES
from training.export import export_onnx, parity
from training.network import (
    N_COARSE_BANDS,
    BandConvEncoder,
    BandCoVariation,
    ExportWrapper,
    FrameEncoder,
    GenreNet,
    NetworkConfig,
)

ENCODERS = get_args(FrameEncoder)


@pytest.mark.parametrize("co_variation", [0, 32])
@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize(("batch", "frames"), [(1, 11), (3, 344), (2, 900)])
def test_outputs_are_distributions_of_the_right_shape(
    batch: int, frames: int, encoder: FrameEncoder, co_variation: int
) -> None:
    torch.manual_seed(0)
    net = GenreNet(NetworkConfig(encoder=encoder, co_variation=co_variation))
    probabilities, attention = ExportWrapper(net).eval()(torch.randn(batch, frames, N_FEATURES))
    assert probabilities.shape == (batch, NetworkConfig().n_classes) and attention.shape == (batch, frames)
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


@pytest.mark.parametrize("encoder", ENCODERS)
def test_fused_feature_is_the_attention_weighted_mean_of_rnn_states(encoder: FrameEncoder) -> None:
    torch.manual_seed(0)
    net = GenreNet(NetworkConfig(encoder=encoder)).eval()
    x = torch.randn(1, 30, N_FEATURES)
    logits, weights = net(x)
    states, _ = net.rnn(net.frame_features(x))
    fused = (weights[0, :, None] * states[0]).sum(0)
    torch.testing.assert_close(net.classifier(fused[None]), logits)


def test_the_conv_encoder_encodes_each_frame_on_its_own() -> None:
    """Each frame is encoded on its own: changing one frame changes only its embedding."""
    torch.manual_seed(0)
    net = GenreNet(NetworkConfig(encoder="conv")).eval()
    x = torch.randn(2, 30, N_FEATURES)
    y = x.clone()
    y[1, 7] += 1.0
    with torch.no_grad():
        changed = (net.frame_encoder(x) - net.frame_encoder(y)).abs().sum(-1) > 0
    assert changed.nonzero().tolist() == [[1, 7]]


def test_co_variation_products_are_those_of_centred_coarse_bands() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 40, N_FEATURES)).astype(np.float32)
    n_bands = N_FEATURES // 2
    coarse = x[..., :n_bands].reshape(2, 40, N_COARSE_BANDS, -1).mean(-1)
    deviation = coarse - coarse.mean(1, keepdims=True)
    covariance = np.einsum("bti,btj->bij", deviation, deviation) / 40  # per clip, over time
    module = BandCoVariation(NetworkConfig())
    products = module.products(torch.from_numpy(x)).mean(1).numpy()  # mean over frames
    i, j = np.triu_indices(N_COARSE_BANDS)
    np.testing.assert_allclose(products, covariance[:, i, j], atol=1e-5)


def test_exported_co_variation_computes_the_same_projection_without_gathering_pairs(tmp_path: Path) -> None:
    """Training keeps the pairs' form bit for bit; the ONNX file gets the outer product, whose
    numbers agree to float rounding and which has no Gather of the pairs' indices."""
    torch.manual_seed(0)
    net = GenreNet(NetworkConfig()).eval()
    module = net.co_variation
    assert module is not None
    x = torch.randn(2, 50, N_FEATURES)
    with torch.no_grad():
        assert torch.equal(module(x), module.project(module.products(x)))
        torch.testing.assert_close(module.outer_projected(x), module.project[0](module.products(x)), atol=1e-5, rtol=0)
    path = tmp_path / "net.onnx"
    export_onnx(ExportWrapper(net), path)
    assert parity(ExportWrapper(net), path) < 1e-5
    graph = onnx.load(str(path)).graph
    constants = [onnx.numpy_helper.to_array(t) for t in graph.initializer] + [
        onnx.numpy_helper.to_array(a.t) for n in graph.node if n.op_type == "Constant" for a in n.attribute
    ]
    n_pairs = N_COARSE_BANDS * (N_COARSE_BANDS + 1) // 2
    assert not [c for c in constants if c.dtype == np.int64 and c.size == n_pairs]  # no pair indices


def test_exported_frame_encoder_convolves_one_image_to_the_same_numbers(tmp_path: Path) -> None:
    """Training keeps the per-frame convolutions bit for bit; the ONNX file convolves the window as
    one image (two-dimensional kernels one frame wide), to the same numbers within float rounding."""
    torch.manual_seed(0)
    net = GenreNet(NetworkConfig(encoder="conv")).eval()
    encoder = net.frame_encoder[0]
    assert isinstance(encoder, BandConvEncoder)
    x = torch.randn(2, 50, N_FEATURES)
    with torch.no_grad():
        torch.testing.assert_close(encoder.as_image(x), encoder(x), atol=1e-5, rtol=0)
    path = tmp_path / "net.onnx"
    export_onnx(ExportWrapper(net), path)
    assert parity(ExportWrapper(net), path) < 1e-5
    graph = onnx.load(str(path)).graph
    weights = {t.name: t for t in graph.initializer}
    encoder_convs = [n for n in graph.node if n.op_type == "Conv" and "frame_encoder" in n.name]
    assert len(encoder_convs) == 2
    assert all(len(weights[n.input[1]].dims) == 4 for n in encoder_convs)


def test_co_variation_ignores_band_levels() -> None:
    """Only how bands move matters: a constant offset per band (an EQ) changes nothing."""
    torch.manual_seed(0)
    module = BandCoVariation(NetworkConfig()).eval()
    x = torch.randn(1, 30, N_FEATURES)
    tilted = x.clone()
    tilted[..., : N_FEATURES // 2] += torch.linspace(-2, 2, N_FEATURES // 2)
    torch.testing.assert_close(module(x), module(tilted))


def test_without_co_variation_the_gru_reads_only_the_frame_embedding() -> None:
    net = GenreNet(NetworkConfig(co_variation=0)).eval()
    x = torch.randn(1, 20, N_FEATURES)
    assert net.co_variation is None
    torch.testing.assert_close(net.frame_features(x), net.frame_encoder(x))


def test_unknown_encoder_is_refused() -> None:
    with pytest.raises(ValueError, match="frame encoder"):
        NetworkConfig(encoder="lstm")  # type: ignore[arg-type]


def test_co_variation_needs_equal_band_groups() -> None:
    with pytest.raises(ValueError, match="equal groups"):
        NetworkConfig(n_features=2 * (N_COARSE_BANDS + 1))
