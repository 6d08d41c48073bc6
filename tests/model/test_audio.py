"""The one audio route: every format decodes to the waveform its source had, limits hold while
decoding, and every failure is a human message (never a repr), with nothing raw on stderr."""

from __future__ import annotations

import contextlib
import io
import logging

import numpy as np
import pytest
import soundfile as sf

from model import features as F
from model.audio import AudioError, AudioTooLong, UnsupportedAudio, decode
from tests.audio import FFMPEG_FORMATS, FORMATS, SNDFILE_FORMATS, encoded, music_like
from training.degrade import encode_ffmpeg

LOSSLESS = {"wav", "wav_float", "flac", "aiff", "mka_flac"}


def features_of(waveform: np.ndarray) -> np.ndarray:
    return F.model_input(F.power_db_bands(waveform))


@pytest.mark.parametrize("name", FORMATS)
def test_every_format_decodes_to_its_source(name: str) -> None:
    rate = (SNDFILE_FORMATS.get(name) or FFMPEG_FORMATS[name])[2]
    source = music_like(4.0, rate, channels=2)
    audio = decode(encoded(name, seconds=4.0, channels=2))
    assert (audio.sample_rate, audio.channels) == (rate, 2)
    assert audio.duration_s == pytest.approx(4.0, abs=0.05)  # lossy codecs pad their last frame
    if name in LOSSLESS:  # the same samples, up to 16-bit quantisation and clipping
        reference = source if name == "wav_float" else np.clip(source, -1, 1)  # integer PCM clips
        np.testing.assert_allclose(audio.waveform, F.to_mono(reference, rate), atol=1e-3)
    else:  # lossy: the same music, by the measure the data README uses for its two routes
        expected = features_of(F.to_mono(source, rate))
        got = features_of(audio.waveform)[: len(expected)]
        n = F.N_LOG_BANDS
        correlation = np.corrcoef(got[5:-5, :n].ravel(), expected[5 : len(got) - 5, :n].ravel())[0, 1]
        assert correlation > 0.9, correlation


@pytest.mark.parametrize(
    ("container", "subtype"),
    [
        ("WAV", "PCM_U8"),
        ("WAV", "PCM_16"),
        ("WAV", "PCM_24"),
        ("WAV", "PCM_32"),
        ("FLAC", "PCM_S8"),
        ("FLAC", "PCM_24"),
    ],
)
@pytest.mark.parametrize("channels", [1, 2, 3])
def test_integer_pcm_read_as_integers_gives_libsndfiles_floats_exactly(
    container: str, subtype: str, channels: int
) -> None:
    source = music_like(1.5, 22050, channels=channels) * np.linspace(1.0, 0.3, channels)  # channels that differ
    buffer = io.BytesIO()
    sf.write(buffer, source, 22050, format=container, subtype=subtype)
    as_floats, _ = sf.read(io.BytesIO(buffer.getvalue()), dtype="float32", always_2d=True)
    assert sf.info(io.BytesIO(buffer.getvalue())).subtype == subtype
    np.testing.assert_array_equal(decode(buffer.getvalue()).waveform, F.to_mono(as_floats, 22050))
    np.testing.assert_array_equal(decode(buffer.getvalue(), 16000).waveform, F.to_mono(as_floats, 22050, 16000))


def test_a_file_of_many_channels_decodes_to_their_mean() -> None:
    rng = np.random.default_rng(0)
    source = (0.01 * rng.standard_normal((22050, 300))).astype(np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, source, 22050, format="WAV", subtype="FLOAT")
    np.testing.assert_allclose(decode(buffer.getvalue()).waveform, source.mean(axis=1), atol=1e-7)


@pytest.mark.parametrize(
    ("container", "codec"), [("ipod", "aac"), ("webm", "libopus"), ("mp3", "libmp3lame"), ("ogg", "libopus")]
)
@pytest.mark.parametrize("bit_rate", [32_000, 128_000])
def test_low_and_high_bitrates_of_each_lossy_codec(container: str, codec: str, bit_rate: int) -> None:
    rate = 48000 if codec == "libopus" else 44100
    data = encode_ffmpeg(music_like(3.0, rate), rate, container, codec, bit_rate)
    assert decode(data).duration_s == pytest.approx(3.0, abs=0.05)


def test_the_duration_limit_holds_while_decoding_ffmpeg_formats() -> None:
    for name in ("m4a", "webm", "mp3"):
        with pytest.raises(AudioTooLong, match="maximum of 5 s"):
            decode(encoded(name, seconds=8.0), max_duration_s=5.0)


@pytest.mark.parametrize(
    ("data", "error", "words"),
    [
        (b"", AudioError, "empty"),
        (b"\0" * 4000, UnsupportedAudio, "could not be decoded as audio"),
        (b"RIFF" + bytes(range(256)) * 20, UnsupportedAudio, "could not be decoded as audio"),
        (b"\x1aE\xdf\xa3" + b"\x01" * 3000, UnsupportedAudio, "could not be decoded as audio"),  # broken WebM
        (b"<html><body>not audio</body></html>", UnsupportedAudio, "WAV, FLAC"),
    ],
)
def test_failures_are_human_messages(data: bytes, error: type[AudioError], words: str) -> None:
    with pytest.raises(error) as caught:
        decode(data)
    message = str(caught.value)
    assert words in message
    assert "0x" not in message and "<" not in message and "Errno" not in message  # no reprs, no C errors


@pytest.mark.parametrize("name", ["mp3", "mp3_lame", "m4a", "webm", "flac", "ogg"])
def test_truncated_files_write_nothing_raw_to_stderr(name: str, capfd: pytest.CaptureFixture[str]) -> None:
    data = encoded(name, seconds=6.0)
    for cut in (0.3, 0.61, 0.97):
        with contextlib.suppress(AudioError):
            decode(data[: int(len(data) * cut)])
    out, err = capfd.readouterr()
    assert err == "" and out == ""


@pytest.mark.parametrize(("name", "raises"), [("webm", False), ("mp3", True)])
def test_a_stream_that_breaks_off_keeps_the_good_part(
    name: str, raises: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """WebM's demuxer ends quietly at the garbage; MP3's decoder raises, and that is logged."""
    data = bytearray(encoded(name, seconds=6.0))
    data[len(data) // 2 :] = np.random.default_rng(0).bytes(len(data) - len(data) // 2)  # second half garbage
    logger = logging.getLogger("model.audio")
    logger.addHandler(caplog.handler)  # the service's log set-up stops `model` lines propagating to the root
    try:
        audio = decode(bytes(data))
    finally:
        logger.removeHandler(caplog.handler)
    assert 2.5 < audio.duration_s < 3.5
    records = [r for r in caplog.records if r.name == "model.audio"]
    assert bool(records) == raises
    for record in records:
        assert "breaks off" in record.getMessage()
        assert record.fields["decoded_s"] == pytest.approx(audio.duration_s, abs=0.1)  # type: ignore[attr-defined]
