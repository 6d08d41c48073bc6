"""The Open Inference Protocol's (KServe V2) REST encoding: requests in, responses out.

Pure functions over bytes, no web framework: a request is a JSON header, optionally followed
by binary tensor data (the binary tensor data extension; `Inference-Header-Content-Length`
says where the JSON ends, and each binary input's `binary_data_size` how long it is). BYTES
elements are sent length-prefixed (4 bytes, little-endian) in binary, as UTF-8 strings in JSON.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

HEADER_LENGTH = "inference-header-content-length"
NUMPY_TYPES = {"FP32": np.dtype("<f4")}  # the numeric datatypes this model takes


class ProtocolError(ValueError):
    """A request the protocol (or this model) cannot take: `{"error": message}` with `status`."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Tensor:
    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray | list[bytes]  # numeric types: an array of `shape`; BYTES: the elements in row-major order


@dataclass(frozen=True)
class RequestedOutput:
    name: str
    binary: bool
    classification: int = 0  # > 0: the classification extension's top-k "score:index:label" strings


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    inputs: list[Tensor]
    outputs: list[RequestedOutput] | None  # None: every output
    binary_outputs: bool  # the request's `binary_data_output` parameter: the default for every output


def _object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProtocolError(f"{what} must be a JSON object")
    return value


def _shape(value: object, name: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value):
        raise ProtocolError(f"input {name!r}: shape must be a list of non-negative integers")
    return tuple(value)


def split_bytes_elements(raw: bytes, name: str) -> list[bytes]:
    """BYTES tensor data in binary: each element's 4-byte little-endian length, then the element."""
    elements, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise ProtocolError(f"input {name!r}: BYTES data ends inside an element's length")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise ProtocolError(f"input {name!r}: a BYTES element says {length} bytes but fewer follow")
        elements.append(raw[offset : offset + length])
        offset += length
    return elements


def join_bytes_elements(elements: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(e)) + e for e in elements)


def _tensor_data(name: str, datatype: str, shape: tuple[int, ...], raw: bytes | None, values: object) -> Tensor:
    count = math.prod(shape)
    if datatype == "BYTES":
        if raw is not None:
            elements = split_bytes_elements(raw, name)
        elif isinstance(values, list) and all(isinstance(v, str) for v in values):
            elements = [v.encode() for v in values]
        else:
            raise ProtocolError(f"input {name!r}: BYTES data in JSON must be a flat list of strings")
        if len(elements) != count:
            raise ProtocolError(f"input {name!r}: shape {list(shape)} holds {count} elements, the data {len(elements)}")
        return Tensor(name, datatype, shape, elements)
    dtype = NUMPY_TYPES.get(datatype)
    if dtype is None:
        raise ProtocolError(
            f"input {name!r}: datatype {datatype} is not one this model takes ({', '.join(NUMPY_TYPES)}, BYTES)"
        )
    if raw is not None:
        if len(raw) != count * dtype.itemsize:
            raise ProtocolError(
                f"input {name!r}: shape {list(shape)} needs {count * dtype.itemsize} bytes, got {len(raw)}"
            )
        array: np.ndarray = np.frombuffer(raw, dtype)
    else:
        try:
            array = np.asarray(values, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise ProtocolError(f"input {name!r}: {datatype} data must be a list of numbers") from None
        if array.size != count:
            raise ProtocolError(f"input {name!r}: shape {list(shape)} holds {count} elements, the data {array.size}")
    return Tensor(name, datatype, shape, array.astype(np.float32).reshape(shape))


def parse_request(body: bytes, header_length: str | None) -> InferRequest:
    """An infer request's body (and its Inference-Header-Content-Length header, if any)."""
    if header_length is not None:
        if not header_length.isdigit() or int(header_length) > len(body):
            raise ProtocolError(
                f"Inference-Header-Content-Length {header_length!r} does not fit a {len(body)}-byte body"
            )
        head, binary = body[: int(header_length)], body[int(header_length) :]
    else:
        head, binary = body, b""
    try:
        payload = _object(json.loads(head), "the request")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ProtocolError(
            "the request does not start with a JSON object (binary data needs Inference-Header-Content-Length)"
        ) from None
    inputs_json = payload.get("inputs")
    if not isinstance(inputs_json, list) or not inputs_json:
        raise ProtocolError("the request needs a non-empty list of inputs")
    inputs, offset = [], 0
    for item in inputs_json:
        entry = _object(item, "each input")
        name, datatype = entry.get("name"), entry.get("datatype")
        if not isinstance(name, str) or not isinstance(datatype, str):
            raise ProtocolError("each input needs a name and a datatype")
        shape = _shape(entry.get("shape"), name)
        size = _object(entry.get("parameters") or {}, f"input {name!r} parameters").get("binary_data_size")
        raw = None
        if size is not None:
            if not isinstance(size, int) or size < 0 or offset + size > len(binary):
                raise ProtocolError(f"input {name!r}: binary_data_size {size!r} runs past the binary data")
            raw, offset = binary[offset : offset + size], offset + size
        elif "data" not in entry:
            raise ProtocolError(f"input {name!r} has neither data nor binary_data_size")
        inputs.append(_tensor_data(name, datatype, shape, raw, entry.get("data")))
    if offset != len(binary):
        raise ProtocolError(f"{len(binary) - offset} bytes of binary data belong to no input")
    parameters = _object(payload.get("parameters") or {}, "the request parameters")
    binary_outputs = bool(parameters.get("binary_data_output", False))
    outputs = None
    if (outputs_json := payload.get("outputs")) is not None:
        if not isinstance(outputs_json, list):
            raise ProtocolError("outputs must be a list")
        outputs = []
        for item in outputs_json:
            entry = _object(item, "each output")
            if not isinstance(name := entry.get("name"), str):
                raise ProtocolError("each output needs a name")
            params = _object(entry.get("parameters") or {}, f"output {name!r} parameters")
            k = params.get("classification", 0)
            if not isinstance(k, int) or isinstance(k, bool) or k < 0:
                raise ProtocolError(f"output {name!r}: classification must be a non-negative integer")
            outputs.append(RequestedOutput(name, bool(params.get("binary_data", binary_outputs)), k))
    request_id = payload.get("id")
    return InferRequest(request_id if isinstance(request_id, str) else None, inputs, outputs, binary_outputs)


def classification_strings(probabilities: np.ndarray, k: int, labels: list[str]) -> list[bytes]:
    """The classification extension: per row, the top k as b"score:index:label", best first; shape (rows, k)."""
    out = []
    for row in probabilities:
        for i in np.argsort(-row, kind="stable")[:k]:
            out.append(f"{row[i]:f}:{i}:{labels[i]}".encode())
    return out


@dataclass(frozen=True)
class OutputTensor:
    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray | list[bytes]
    binary: bool


def encode_response(
    model_name: str, model_version: str, request_id: str | None, outputs: list[OutputTensor]
) -> tuple[bytes, dict[str, str]]:
    """The response body and its headers: JSON alone, or JSON then each binary output's bytes."""
    entries, blobs = [], []
    for out in outputs:
        entry: dict[str, Any] = {"name": out.name, "datatype": out.datatype, "shape": list(out.shape)}
        if out.binary:
            blob = (
                join_bytes_elements(out.data)
                if isinstance(out.data, list)
                else np.ascontiguousarray(out.data, "<f4").tobytes()
            )
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        elif isinstance(out.data, list):
            entry["data"] = [e.decode() for e in out.data]
        else:
            entry["data"] = out.data.reshape(-1).tolist()
        entries.append(entry)
    response: dict[str, Any] = {"model_name": model_name, "model_version": model_version, "outputs": entries}
    if request_id is not None:
        response["id"] = request_id
    head = json.dumps(response).encode()
    if not blobs:
        return head, {"content-type": "application/json"}
    return head + b"".join(blobs), {"content-type": "application/octet-stream", HEADER_LENGTH: str(len(head))}
