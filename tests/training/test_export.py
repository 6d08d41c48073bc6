from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from model.features import DEFAULT_SETTINGS, N_BANDS, N_FEATURES
from training.clip_summary import SummaryHead, fit_summary_head
from training.export import PARITY_TOLERANCE, export_onnx, parity
from training.network import ExportWrapper, GenreNet, NetworkConfig


def fitted_head(n_labels: int = 10) -> SummaryHead:
    rng = np.random.default_rng(5)
    grids = [rng.standard_normal((344, N_BANDS)).astype(np.float32) * s for s in rng.uniform(0.5, 2, 30)]
    return fit_summary_head(grids, np.arange(30) % n_labels, 0.3, n_labels, DEFAULT_SETTINGS)


@pytest.mark.parametrize("with_head", [False, True])
def test_onnx_and_torch_agree_on_several_lengths_and_batches(tmp_path: Path, with_head: bool) -> None:
    torch.manual_seed(1)
    members = GenreNet(NetworkConfig(encoder="linear", co_variation=0)), GenreNet(NetworkConfig(encoder="conv"))
    head = fitted_head() if with_head else None
    net = ExportWrapper(*members, temperature=0.9, head=head, head_weight=0.75).eval()
    path = tmp_path / "net.onnx"
    export_onnx(net, path)
    assert parity(net, path) <= PARITY_TOLERANCE

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for batch in (1, 4):
        for frames in (11, 57, 344, 1200):
            x = rng.standard_normal((batch, frames, N_FEATURES)).astype(np.float32)
            with torch.no_grad():
                expected = [t.numpy() for t in net(torch.from_numpy(x))]
            got = session.run(None, {"spectrogram": x})
            for e, g in zip(expected, got, strict=True):
                assert g.shape == e.shape
                np.testing.assert_allclose(g, e, atol=PARITY_TOLERANCE, rtol=0)


def test_the_head_adds_its_weighted_log_probabilities_to_the_networks_before_the_temperature() -> None:
    torch.manual_seed(2)
    net, head = GenreNet(NetworkConfig()).eval(), fitted_head().eval()
    x = torch.randn(3, 200, N_FEATURES)
    with torch.no_grad():
        logits, attention = net(x)
        expected = torch.softmax((torch.log_softmax(logits, 1) + 0.5 * head(x)) / 1.3, 1)
        probabilities, fused_attention = ExportWrapper(net, temperature=1.3, head=head, head_weight=0.5)(x)
        alone, _ = ExportWrapper(net, temperature=1.3)(x)
    torch.testing.assert_close(probabilities, expected)
    torch.testing.assert_close(fused_attention, attention)
    assert not torch.allclose(probabilities, alone, atol=1e-3)
