from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from model.features import N_FEATURES
from training.export import PARITY_TOLERANCE, export_onnx, parity
from training.network import ExportWrapper, GenreNet, NetworkConfig


def test_onnx_and_torch_agree_on_several_lengths_and_batches(tmp_path: Path) -> None:
    torch.manual_seed(1)
    members = GenreNet(NetworkConfig(encoder="linear", co_variation=0)), GenreNet(NetworkConfig(encoder="conv"))
    net = ExportWrapper(*members).eval()
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
