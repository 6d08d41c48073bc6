"""Where the time goes, and how the service's pipeline compares with what a user would use instead.

    python -m bench.pipeline [--clips 16] [--repeat 5]

Measured in one run on the same clips (30 s WAVs in GTZAN's format, 22.05 kHz mono 16-bit),
reported as ratios:
- stages per 30 s clip: decode, front end, inference (batch 1); and decoding a CD-format
  (44.1 kHz stereo) clip, which adds downmixing and resampling;
- the CD-format clip end to end: decode, resample, front end and inference;
- inference per 30 s window (batch 1, one thread) against model 1.2.0's ONNX file
  (`bench.common.REFERENCE_MODEL`: four networks then) and 2.1.3's (`SPEED_BAR_MODEL`: model
  3.0's bar is half of its time), the three timed in turns (--rounds of 20 calls each);
- the pipeline (decode + resample + front end + ONNX Runtime) against the same network in eager
  PyTorch, and against a librosa front end (librosa.load + librosa.stft);
- audio seconds per CPU second with batched inference;
- inference throughput at batch 1 against batches of 32 windows;
- cost against audio length, 10 s to 10 min.
Needs the `train` and `dev` extras (torch, librosa) for the comparisons.
"""

from __future__ import annotations

import argparse
import functools
import io
import tempfile
from collections.abc import Callable
from pathlib import Path

import librosa
import numpy as np
import onnxruntime as ort
import torch
from threadpoolctl import threadpool_limits

from bench.common import REFERENCE_MODEL, SPEED_BAR_MODEL, timed, timed_in_turns, wav_clip, write
from model.audio import decode
from model.card import card_path, load_card
from model.features import (
    CLIP_SAMPLES,
    HOP_LENGTH,
    N_FFT,
    SAMPLE_RATE,
    model_input,
    pool_bands,
    power_db_bands,
)
from model.pipeline import Pipeline
from model.runtime import DEFAULT_MODEL_PATH, INPUT_NAME, GenreModel
from training.export import export_onnx
from training.network import ExportWrapper, GenreNet, NetworkConfig


def librosa_front_end(data: bytes) -> np.ndarray:
    """The typical alternative: librosa.load (resampling to 22050) and librosa.stft, same grid."""
    y, _ = librosa.load(io.BytesIO(data), sr=SAMPLE_RATE, mono=True, res_type="soxr_hq")
    power = np.abs(librosa.stft(y[:CLIP_SAMPLES], n_fft=N_FFT, hop_length=HOP_LENGTH, center=False)) ** 2
    return model_input(pool_bands(librosa.power_to_db(power, ref=1.0, amin=1e-30, top_db=None).T))


def shipped_architecture() -> ExportWrapper:
    """The shipped model's architecture (from its card) with fresh weights: speed needs no training."""
    card = load_card(card_path(DEFAULT_MODEL_PATH))
    return ExportWrapper(*(GenreNet(NetworkConfig(**m.network)) for m in card.members)).eval()  # type: ignore[arg-type]


def reference_inference(path: Path, waveform: np.ndarray) -> Callable[[], object]:
    """Another model file's inference on the same clip, batch 1, one thread."""
    model = GenreModel(path, providers="cpu", intra_op_threads=1, inter_op_threads=1)
    x = model_input(power_db_bands(waveform, model.front_end), model.front_end)[None]
    return lambda: model.predict(x)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=15, help="turns of the inference timings against older files")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    # One thread for numpy's BLAS too: its idle threads spin, and process time counts them.
    threadpool_limits(1)
    model = GenreModel(providers="cpu", intra_op_threads=1, inter_op_threads=1)
    pipeline = Pipeline.of(model.card)
    clips = [wav_clip(30.0, seed, rate=SAMPLE_RATE, channels=1) for seed in range(args.clips)]
    clip = clips[0]
    waveform = decode(clip).waveform
    x = model_input(power_db_bands(waveform))[None]
    cd_clip = wav_clip(30.0, rate=44100, channels=2)

    inference = timed_in_turns(
        {
            "now": lambda: model.predict(x),
            "1.2.0": reference_inference(REFERENCE_MODEL, waveform),
            "2.1.3": reference_inference(SPEED_BAR_MODEL, waveform),
        },
        args.rounds,
        calls=20,
    )
    stages = {  # CPU seconds
        "decode": timed(lambda: decode(clip), args.repeat)[1],
        "front_end": timed(lambda: model_input(power_db_bands(waveform)), args.repeat)[1],
        "inference": inference["now"],
    }
    total_cpu = sum(stages.values())
    stages["decode_and_resample_cd_format"] = timed(lambda: decode(cd_clip), args.repeat)[1]
    cd_end_to_end = timed(lambda: pipeline.classify(model, cd_clip), args.repeat)

    torch_model = shipped_architecture()
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "same.onnx"
        export_onnx(torch_model, onnx_path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        same = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        onnx_time = timed(lambda: same.run(None, {INPUT_NAME: x}), args.repeat)
    with torch.no_grad():
        torch_time = timed(lambda: torch_model(torch.from_numpy(x)), args.repeat)
    ours_front = timed(lambda: model_input(power_db_bands(decode(clip).waveform)), args.repeat)
    librosa_front = timed(lambda: librosa_front_end(clip), args.repeat)

    def pipeline_batched() -> None:
        inputs = np.concatenate([pipeline.prepare(c).inputs for c in clips])
        for i in range(0, len(inputs), 32):
            model.predict(inputs[i : i + 32])

    batched = timed(pipeline_batched, max(1, args.repeat // 2))
    windows = np.repeat(x, 32, axis=0)
    batch1 = timed(lambda: [model.predict(windows[i : i + 1]) for i in range(32)], max(1, args.repeat // 2))
    batch32 = timed(lambda: model.predict(windows), max(1, args.repeat // 2))

    def analyse(data: bytes) -> None:
        pipeline.classify(model, data)

    lengths = {}
    for seconds in (10, 30, 60, 120, 300, 600):
        data = wav_clip(float(seconds), seed=seconds, rate=SAMPLE_RATE, channels=1)
        wall, cpu = timed(functools.partial(analyse, data), 1)
        lengths[seconds] = {"wall_s": wall, "cpu_s": cpu, "audio_s_per_cpu_s": seconds / cpu}

    stages_cpu_ms = {k: round(1000 * cpu, 3) for k, cpu in stages.items()}
    by_length = {str(k): {kk: round(vv, 4) for kk, vv in v.items()} for k, v in lengths.items()}
    result = {
        "clip": "30 s, 22.05 kHz mono 16-bit WAV; one thread for ONNX Runtime and torch",
        "model": f"{model.card.name} {model.card.version} ({len(model.card.members)} member(s))",
        "stages_cpu_ms": stages_cpu_ms,
        "pipeline_cpu_ms_batch1": round(1000 * total_cpu, 3),
        "audio_s_per_cpu_s_batch1": round(30.0 / total_cpu, 1),
        "audio_s_per_cpu_s_batched": round(30.0 * args.clips / batched[1], 1),
        "inference_ms": {"onnxruntime": round(1000 * onnx_time[0], 3), "torch_eager": round(1000 * torch_time[0], 3)},
        "cd_format_end_to_end_cpu_ms": round(1000 * cd_end_to_end[1], 3),
        "inference_cpu_ms_1_2_0": round(1000 * inference["1.2.0"], 3),
        "inference_1_2_0_over_now": round(inference["1.2.0"] / inference["now"], 2),
        "inference_cpu_ms_2_1_3": round(1000 * inference["2.1.3"], 3),
        "now_over_inference_2_1_3": round(inference["now"] / inference["2.1.3"], 2),
        "torch_over_onnx": round(torch_time[0] / onnx_time[0], 2),
        "front_end_ms": {"ours": round(1000 * ours_front[0], 3), "librosa": round(1000 * librosa_front[0], 3)},
        "librosa_over_ours": round(librosa_front[0] / ours_front[0], 2),
        "windows_per_s": {"batch_1": round(32 / batch1[0], 1), "batch_32": round(32 / batch32[0], 1)},
        "batch32_over_batch1": round(batch1[0] / batch32[0], 2),
        "by_length": by_length,
    }
    rows = [
        "| measure | value |",
        "| --- | --- |",
        *(f"| {k} (CPU ms per 30 s clip) | {v} |" for k, v in stages_cpu_ms.items()),
        f"| audio seconds per CPU second, batch 1 | {result['audio_s_per_cpu_s_batch1']} |",
        f"| audio seconds per CPU second, batched | {result['audio_s_per_cpu_s_batched']} |",
        f"| 44.1 kHz stereo 30 s end to end (decode, resample, front end, inference), CPU ms | "
        f"{result['cd_format_end_to_end_cpu_ms']} |",
        f"| inference per 30 s window, batch 1: 1.2.0's CPU time / now | {result['inference_1_2_0_over_now']}x |",
        f"| inference per 30 s window, batch 1: now / 2.1.3's CPU time (model 3.0's bar: 0.5) | "
        f"{result['now_over_inference_2_1_3']} |",
        f"| eager PyTorch / ONNX Runtime inference time | {result['torch_over_onnx']}x |",
        f"| librosa load+STFT / our decode+resample+front end | {result['librosa_over_ours']}x |",
        f"| batched (32) / batch-1 inference throughput | {result['batch32_over_batch1']}x |",
        *(
            f"| {k} s of audio: wall s, audio s per CPU s | {v['wall_s']:.3f}, {v['audio_s_per_cpu_s']:.0f} |"
            for k, v in by_length.items()
        ),
    ]
    write("pipeline", result, f"Model: {result['model']}. Clip: {result['clip']}.\n\n" + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
