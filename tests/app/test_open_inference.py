"""The Open Inference Protocol (KServe V2): in-process for the encoding and every error, and with
Triton's own HTTP client against the real server."""

from __future__ import annotations

import json
import struct
import subprocess
from collections.abc import Iterator

import numpy as np
import pytest
import tritonclient.http as triton
from fastapi.testclient import TestClient
from tritonclient.utils import InferenceServerException

from app.open_inference_codec import ProtocolError, join_bytes_elements, parse_request, split_bytes_elements
from model.card import card_path, load_card
from model.features import model_input, power_db_bands, to_mono
from model.runtime import DEFAULT_MODEL_PATH, GenreModel
from tests.audio import encoded, music_like
from tests.helpers import SHIPPED_LABELS, make_client

N_FEATURES = 128


@pytest.fixture(scope="module")
def v2() -> Iterator[tuple[TestClient, str]]:
    """A client of the app and the path of its model, /v2/models/<card name>."""
    with make_client() as client:
        name = client.get("/health").json()["model"]["name"]
        yield client, f"/v2/models/{name}"


def binary_request(inputs: list[tuple[str, str, list[int], bytes]], **payload: object) -> tuple[bytes, dict[str, str]]:
    """A body with the binary tensor data extension, and its Inference-Header-Content-Length header."""
    head = {
        "inputs": [
            {"name": n, "datatype": t, "shape": s, "parameters": {"binary_data_size": len(b)}} for n, t, s, b in inputs
        ],
        **payload,
    }
    header = json.dumps(head).encode()
    return header + b"".join(b for *_, b in inputs), {"Inference-Header-Content-Length": str(len(header))}


def read_binary_response(body: bytes, header_length: int) -> tuple[dict[str, object], dict[str, bytes]]:
    head = json.loads(body[:header_length])
    blobs, offset = {}, header_length
    for out in head["outputs"]:
        size = out["parameters"]["binary_data_size"]
        blobs[out["name"]] = body[offset : offset + size]
        offset += size
    assert offset == len(body)
    return head, blobs


def spectrogram(batch: int, frames: int, seed: int = 0) -> np.ndarray:
    grids = [
        power_db_bands(to_mono(music_like(frames * 0.09 + 0.2, 22050, seed=seed + i), 22050)) for i in range(batch)
    ]
    return np.stack([model_input(g[:frames]) for g in grids]).astype(np.float32)


def test_server_and_model_metadata(v2: tuple[TestClient, str]) -> None:
    client, path = v2
    server = client.get("/v2").json()
    assert server["name"] == "genre-classifier" and {"binary_tensor_data", "classification"} <= set(
        server["extensions"]
    )
    assert client.get("/v2/health/live").status_code == 200 and client.get("/v2/health/ready").json() == {"ready": True}
    meta = client.get(path).json()
    assert meta["inputs"][0] == {"name": "audio", "datatype": "BYTES", "shape": [1]}
    assert meta["outputs"][0] == {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(SHIPPED_LABELS)]}
    assert meta["outputs"][2] == {"name": "music_probability", "datatype": "FP32", "shape": [-1]}
    assert meta["outputs"][3] == {"name": "embedding", "datatype": "FP32", "shape": [-1, 192]}
    assert meta["parameters"]["labels"] == list(SHIPPED_LABELS)
    assert client.get(f"{path}/versions/{meta['versions'][0]}").json() == meta
    assert client.get(f"{path}/ready").status_code == 200


def test_spectrogram_in_json_gives_the_models_own_outputs(v2: tuple[TestClient, str]) -> None:
    client, path = v2
    x = spectrogram(2, 100)
    body = {
        "id": "r1",
        "inputs": [{"name": "spectrogram", "datatype": "FP32", "shape": list(x.shape), "data": x.ravel().tolist()}],
    }
    answer = client.post(f"{path}/infer", json=body).json()
    assert answer["id"] == "r1" and answer["model_name"] == path.rsplit("/", 1)[1]
    outputs = {o["name"]: o for o in answer["outputs"]}
    expected = GenreModel(providers="cpu").predict(x)
    expected_p, expected_a = expected.probabilities, expected.attention
    assert outputs["probabilities"]["shape"] == [2, 10] and outputs["attention"]["shape"] == [2, 100]
    np.testing.assert_allclose(np.reshape(outputs["probabilities"]["data"], (2, 10)), expected_p, atol=1e-5)
    np.testing.assert_allclose(np.reshape(outputs["attention"]["data"], (2, 100)), expected_a, atol=1e-5)
    assert outputs["music_probability"]["shape"] == [2] and expected.music is not None
    np.testing.assert_allclose(outputs["music_probability"]["data"], expected.music, atol=1e-5)
    assert outputs["embedding"]["shape"] == [2, 192] and expected.embedding is not None  # each window's, raw
    np.testing.assert_allclose(np.reshape(outputs["embedding"]["data"], (2, 192)), expected.embedding, atol=1e-5)


def test_audio_in_binary_gives_what_classify_gives(v2: tuple[TestClient, str]) -> None:
    client, path = v2
    audio = encoded("flac", 40.0)
    data, headers = binary_request(
        [("audio", "BYTES", [1], join_bytes_elements([audio]))], parameters={"binary_data_output": True}
    )
    response = client.post(f"{path}/infer", content=data, headers=headers)
    assert response.status_code == 200, response.text
    head, blobs = read_binary_response(response.content, int(response.headers["inference-header-content-length"]))
    probabilities = np.frombuffer(blobs["probabilities"], "<f4")
    names = [o["name"] for o in head["outputs"]]  # type: ignore[attr-defined]
    assert names == ["probabilities", "music_probability", "embedding"]
    classified = client.post("/classify", files={"file": ("a.flac", audio)}, params={"embedding": True}).json()
    expected = {g["genre"]: g["probability"] for g in classified["genres"]}
    np.testing.assert_allclose(probabilities, [expected[label] for label in SHIPPED_LABELS], atol=1e-6)
    music = np.frombuffer(blobs["music_probability"], "<f4")
    np.testing.assert_allclose(music, [classified["music_probability"]], atol=1e-6)
    embedding = np.frombuffer(blobs["embedding"], "<f4")  # the track's, at unit length
    np.testing.assert_allclose(embedding, classified["embedding"], atol=1e-6)


def test_classification_extension_ranks_labels(v2: tuple[TestClient, str]) -> None:
    client, path = v2
    x = spectrogram(1, 80)
    body = {
        "inputs": [
            {"name": "spectrogram", "datatype": "FP32", "shape": [1, 80, N_FEATURES], "data": x.ravel().tolist()}
        ],
        "outputs": [{"name": "probabilities", "parameters": {"classification": 3}}],
    }
    [out] = client.post(f"{path}/infer", json=body).json()["outputs"]
    assert out["datatype"] == "BYTES" and out["shape"] == [1, 3]
    expected = GenreModel(providers="cpu").predict(x).probabilities[0]
    ranked = [s.split(":") for s in out["data"]]
    assert [int(i) for _, i, _ in ranked] == list(np.argsort(-expected)[:3])
    assert [label for *_, label in ranked] == [SHIPPED_LABELS[int(i)] for _, i, _ in ranked]
    assert float(ranked[0][0]) == pytest.approx(expected.max(), abs=1e-5)


def spectrogram_body(**entry: object) -> dict[str, object]:
    base = {"name": "spectrogram", "datatype": "FP32", "shape": [1, 2, N_FEATURES], "data": [0.0] * (2 * N_FEATURES)}
    return {"inputs": [{**base, **entry}]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"inputs": []}, "non-empty list of inputs"),
        (
            {"inputs": [{"name": "audio", "datatype": "BYTES", "shape": [1], "data": ["not audio"]}]},
            "could not be decoded",
        ),
        ({"inputs": [{"name": "audio", "datatype": "BYTES", "shape": [2], "data": ["a", "b"]}]}, "one audio file"),
        ({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1], "data": [0]}]}, "exactly one input"),
        (spectrogram_body(shape=[1, 3, N_FEATURES]), "holds 384 elements, the data 256"),
        (spectrogram_body(shape=[1, 2, 64], data=[0.0] * 128), "[batch, frames, 128]"),
        (spectrogram_body(datatype="INT8"), "datatype INT8"),
        (spectrogram_body(data=["x"] * (2 * N_FEATURES)), "list of numbers"),
        (spectrogram_body(shape=[1, -2, N_FEATURES]), "non-negative integers"),
        ({**spectrogram_body(), "outputs": [{"name": "logits"}]}, "'logits' is not one"),
        ({**spectrogram_body(), "outputs": [{"name": "attention", "parameters": {"classification": 2}}]}, "applies to"),
        (
            {**spectrogram_body(), "outputs": [{"name": "probabilities", "parameters": {"classification": 11}}]},
            "has 10",
        ),
    ],
)
def test_bad_requests_are_400_with_an_error(v2: tuple[TestClient, str], body: dict[str, object], message: str) -> None:
    client, path = v2
    response = client.post(f"{path}/infer", json=body)
    assert response.status_code == 400 and message in response.json()["error"], response.text


def test_bad_bodies_and_names_get_errors_too(v2: tuple[TestClient, str]) -> None:
    client, path = v2
    assert "JSON object" in client.post(f"{path}/infer", content=b"\x00\xff").json()["error"]
    nan = struct.pack("<f", float("nan")) * (2 * N_FEATURES)
    data, headers = binary_request([("spectrogram", "FP32", [1, 2, N_FEATURES], nan)])
    assert "not finite" in client.post(f"{path}/infer", content=data, headers=headers).json()["error"]
    assert "runs past" in client.post(f"{path}/infer", content=data[:-4], headers=headers).json()["error"]
    assert "belong to no input" in client.post(f"{path}/infer", content=data + b"xx", headers=headers).json()["error"]
    missing = client.post("/v2/models/nope/infer", json=spectrogram_body())
    assert missing.status_code == 404 and "no model named 'nope'" in missing.json()["error"]
    assert client.get(f"{path}/versions/0.0.0").status_code == 404
    assert "error" in client.get("/v2/nothing").json()


def test_bytes_elements_round_trip_and_truncation_is_caught() -> None:
    elements = [b"", b"abc", bytes(range(256))]
    assert split_bytes_elements(join_bytes_elements(elements), "x") == elements
    with pytest.raises(ProtocolError, match="fewer follow"):
        split_bytes_elements(join_bytes_elements(elements)[:-1], "x")
    with pytest.raises(ProtocolError, match="does not fit"):
        parse_request(b"{}", "99")


def test_infer_needs_the_api_key_when_keys_are_set() -> None:
    with make_client(api_keys="k1") as client:
        name = client.get("/health").json()["model"]["name"]
        refused = client.post(f"/v2/models/{name}/infer", json=spectrogram_body())
        assert refused.status_code == 401 and "error" in refused.json()
        allowed = client.post(
            f"/v2/models/{name}/infer", json=spectrogram_body(), headers={"Authorization": "Bearer k1"}
        )
        assert allowed.status_code == 200


def test_tritons_client_against_the_real_server(server: tuple[str, subprocess.Popen[bytes]]) -> None:
    url, _ = server
    client = triton.InferenceServerClient(url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready()
    assert client.get_server_metadata()["name"] == "genre-classifier"
    name = load_card(card_path(DEFAULT_MODEL_PATH)).name
    assert client.is_model_ready(name) and client.get_model_metadata(name)["name"] == name

    audio = triton.InferInput("audio", [1], "BYTES")
    audio.set_data_from_numpy(np.array([encoded("m4a", 35.0)], dtype=np.object_), binary_data=True)
    outputs = [
        triton.InferRequestedOutput("probabilities", binary_data=True),
        triton.InferRequestedOutput("probabilities", binary_data=False, class_count=2),
    ]
    result = client.infer(name, [audio], outputs=outputs[:1])
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (1, 10) and probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    top = client.infer(name, [audio], outputs=outputs[1:]).as_numpy("probabilities")
    assert top.shape == (1, 2) and str(top[0, 0]).endswith(":" + SHIPPED_LABELS[int(probabilities.argmax())])

    x = spectrogram(3, 120, seed=5)
    spectrogram_input = triton.InferInput("spectrogram", list(x.shape), "FP32")
    spectrogram_input.set_data_from_numpy(x, binary_data=True)
    result = client.infer(name, [spectrogram_input])  # no outputs named: all of them, in binary
    expected = GenreModel(providers="cpu").predict(x)
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected.probabilities, atol=1e-5)
    np.testing.assert_allclose(result.as_numpy("attention"), expected.attention, atol=1e-5)
    assert expected.embedding is not None
    np.testing.assert_allclose(result.as_numpy("embedding"), expected.embedding, atol=1e-5)

    broken = triton.InferInput("audio", [1], "BYTES")
    broken.set_data_from_numpy(np.array([b"RIFF nonsense"], dtype=np.object_), binary_data=True)
    with pytest.raises(InferenceServerException, match="could not be decoded"):
        client.infer(name, [broken])
    client.close()
