"""The music detector's audio: music and not-music from Debian packages, text-to-speech and code.

    python -m training.corpus fetch --cache runs/corpus    # apt-get download + unpack (about 1 GB)

Every source is one voice, one package or one generator, and is either trained on or held out
whole (`Source.held_out`), so the detector's figures are measured on voices, languages, packages
and signals it never heard. The GTZAN arrays and audio clips are music too (training.detector
adds them). What each source holds:

- speech: Asterisk's recorded telephone prompts (four voices, five languages, 8 kHz), two more
  prompt sets (GSM), words and syllables read by people in many languages for KDE's children's
  games (wideband), and the espeak-ng, flite and festival text-to-speech voices;
- effects: the sound folders of game and desktop data packages (jingles left out by name);
- noise, tones, silence: training.synthetic;
- music: the game soundtracks.

`items` turns a source into waveforms the length of uploads (prompts and effects strung together
with pauses), each through a random degradation of the kind uploads get.
"""

from __future__ import annotations

import argparse
import itertools
import re
import subprocess
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import numpy as np
import soxr

from model.audio import AUDIO_SUFFIXES, AudioError, decode, decode_file
from model.features import SAMPLE_RATE
from training.degrade import DEGRADATIONS, with_noise
from training.synthetic import SYNTHETIC, room_tone

Kind = Literal["music", "speech", "effects", "noise", "tones", "silence"]
NOT_MUSIC_KINDS: tuple[Kind, ...] = ("speech", "effects", "noise", "tones", "silence")
PACKAGE_AUDIO_SUFFIXES = {*AUDIO_SUFFIXES, ".gsm", ".wv"}  # the service's, raw GSM prompts and WavPack sounds
JINGLE = re.compile(r"music|zik|jingle|fanfare|horn|startup|login|logout|shutdown|win|lose|complete", re.IGNORECASE)
ITEM_SECONDS = (2.0, 30.0)  # the lengths of not-music items: up to one analysis window
# 30 s windows taken from each soundtrack, spread over it: more from those trained on (their variety
# is what the detector learns music from), fewer from the held-out ones (each is measured 10 ways).
TRACK_WINDOWS = {False: 6, True: 2}  # held_out -> windows
# festival's four female voices: flite's and festival's English ones are male but for slt, which
# is held out, and a detector that heard no female synthetic voice passed slt as music.
FESTIVAL_VOICES = {  # voice -> its Debian package
    "upc_ca_ona_hts": "festvox-ca-ona-hts",
    "lp_diphone": "festvox-italp16k",
    "suo_fi_lj_diphone": "festvox-suopuhe-lj",
    "czech_dita": "festvox-czech-dita",
}
FESTIVAL_HELD_OUT = "czech_dita"
TTS_PACKAGES = ("espeak-ng", "flite", "festival", *FESTIVAL_VOICES.values())


@dataclass(frozen=True)
class Source:
    name: str
    kind: Kind
    held_out: bool
    package: str = ""  # the Debian package its files come from; "" for TTS and synthetic sources
    folder: str = ""  # where in the package
    voice: str = ""  # a TTS voice: "espeak-ng:<voice>", "flite:<voice>" or "festival:<voice>"


ASTERISK = "usr/share/asterisk/sounds"
GAMES = "usr/share/games"
ESPEAK_TRAIN = tuple(
    [
        "en-us",
        "fr-fr",
        "es",
        "it",
        "ru",
        "pt",
        "nl",
        "pl",
        "sv",
        "fi",
        "tr",
        "cmn",
        "cs",
        "hu",
        "ro",
        "vi",
        "id",
        "ko",
        "he",
        "uk",
        "da",
        "nb",
        "ta",
        "bn",
        "fa",
    ]
)  # languages of espeak-ng's voices trained on
ESPEAK_HELD_OUT = ("de", "ja", "ar", "hi", "sw", "el")
# Real wideband voices: ktuberling's words, a source a language (those with 70 words or more), and
# klettres's letters and syllables held out, in languages ktuberling has no speaker for.
KTUBERLING = ("fr", "ca", "uk", "lt", "da", "ru", "wa", "el", "en", "de", "sl", "gl")
KLETTRES_HELD_OUT = ("ml", "es", "pt_BR", "hu")
SOURCES: tuple[Source, ...] = (
    Source("asterisk-en", "speech", False, "asterisk-core-sounds-en-wav", ASTERISK),
    Source("asterisk-es", "speech", False, "asterisk-core-sounds-es-wav", ASTERISK),
    Source("asterisk-fr", "speech", False, "asterisk-core-sounds-fr-wav", ASTERISK),
    Source("asterisk-ru", "speech", False, "asterisk-core-sounds-ru-wav", ASTERISK),
    Source("prompt-es-co", "speech", False, "asterisk-prompt-es-co", ASTERISK),
    Source("asterisk-it", "speech", True, "asterisk-core-sounds-it-wav", ASTERISK),
    Source("prompt-fr-armelle", "speech", True, "asterisk-prompt-fr-armelle", ASTERISK),
    *(Source(f"espeak-{v}", "speech", False, voice=f"espeak-ng:{v}") for v in ESPEAK_TRAIN),
    *(Source(f"espeak-{v}", "speech", True, voice=f"espeak-ng:{v}") for v in ESPEAK_HELD_OUT),
    *(Source(f"flite-{v}", "speech", False, voice=f"flite:{v}") for v in ("kal", "awb", "rms")),
    Source("flite-slt", "speech", True, voice="flite:slt"),
    *(Source(f"festival-{v}", "speech", v == FESTIVAL_HELD_OUT, voice=f"festival:{v}") for v in FESTIVAL_VOICES),
    *(
        Source(f"ktuberling-{v}", "speech", False, "ktuberling-data", f"usr/share/ktuberling/sounds/{v}")
        for v in KTUBERLING
    ),
    *(Source(f"klettres-{v}", "speech", True, "klettres-data", f"usr/share/klettres/{v}") for v in KLETTRES_HELD_OUT),
    Source("wesnoth-sounds", "effects", False, "wesnoth-1.16-data", f"{GAMES}/wesnoth/1.16"),
    Source("minetest-sounds", "effects", False, "minetest-data", f"{GAMES}/minetest"),
    Source("bzflag-sounds", "effects", False, "bzflag-data", f"{GAMES}/bzflag"),
    Source("teeworlds-sounds", "effects", False, "teeworlds-data", f"{GAMES}/teeworlds"),
    Source("frozen-bubble-sounds", "effects", False, "frozen-bubble-data", f"{GAMES}/frozen-bubble/snd"),
    Source("chromium-bsu-sounds", "effects", True, "chromium-bsu-data", f"{GAMES}/chromium-bsu"),
    Source("pingus-sounds", "effects", True, "pingus-data", f"{GAMES}/pingus/data/sounds"),
    Source("freedesktop-sounds", "effects", True, "sound-theme-freedesktop", "usr/share/sounds"),
    Source("gnome-sounds", "effects", True, "gnome-audio", "usr/share/sounds"),
    *(Source(f"synthetic-{kind}", kind, False) for kind in SYNTHETIC),  # type: ignore[arg-type]
    *(Source(f"synthetic-{kind}-held-out", kind, True) for kind in SYNTHETIC),  # type: ignore[arg-type]
    Source("wesnoth-music", "music", False, "wesnoth-1.16-music", f"{GAMES}/wesnoth/1.16/data/core/music"),
    Source("warzone2100-music", "music", False, "warzone2100-music", "usr/share/games/warzone2100"),
    Source("ufoai-music", "music", False, "ufoai-music", f"{GAMES}/ufoai"),
    Source("hedgewars-music", "music", False, "hedgewars-data", f"{GAMES}/hedgewars/Data/Music"),
    Source("supertux-music", "music", False, "supertux-data", f"{GAMES}/supertux2/music"),
    Source("freedroidrpg-music", "music", False, "freedroidrpg-data", "usr/share/freedroidrpg/data/sound/music"),
    Source("extremetuxracer-music", "music", False, "extremetuxracer-data", f"{GAMES}/etr/music"),
    Source("lincity-ng-music", "music", False, "lincity-ng-data", f"{GAMES}/lincity-ng/music"),
    Source("xmoto-music", "music", False, "xmoto-data", f"{GAMES}/xmoto/Textures/Musics"),
    Source("hyperrogue-music", "music", False, "hyperrogue-music", "usr/share/hyperrogue/music"),
    Source("planetblupi-music", "music", False, "planetblupi-music-ogg", "usr/share/planetblupi/music"),
    Source("asc-music", "music", False, "asc-music", f"{GAMES}/asc/music"),
    Source("warmux-music", "music", False, "warmux-data", f"{GAMES}/warmux/music"),
    Source("nexuiz-music", "music", True, "nexuiz-music", f"{GAMES}/nexuiz"),
    Source("singularity-music", "music", True, "singularity-music", f"{GAMES}/singularity/music"),
)
TRAINING_SOUNDTRACKS = tuple(s for s in SOURCES if s.kind == "music" and not s.held_out)
PACKAGES = sorted({s.package for s in SOURCES if s.package})


def fetch(cache: Path) -> None:
    """Download and unpack the sources' Debian packages under cache/<package>/ (soundtracks'
    .pk3 archives unzipped beside them), and install the TTS programs if they are missing."""
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    missing = [p for p in PACKAGES if not (cache / p).is_dir()]
    if missing:
        subprocess.run(["apt-get", "download", *missing], cwd=debs, check=True)
    for package in missing:
        (deb,) = debs.glob(f"{package}_*.deb")
        subprocess.run(["dpkg-deb", "-x", str(deb), str(cache / package)], check=True)
        for archive in (cache / package).rglob("*.pk3"):
            with zipfile.ZipFile(archive) as z:
                z.extractall(archive.with_suffix(""))
    if not all(installed(p) for p in TTS_PACKAGES):
        try:
            subprocess.run(["apt-get", "install", "-y", "-qq", *TTS_PACKAGES], check=True)
        except (OSError, subprocess.CalledProcessError):
            raise SystemExit(f"the text-to-speech voices need: apt-get install {' '.join(TTS_PACKAGES)}") from None


def installed(package: str) -> bool:
    """Whether dpkg has this package installed."""
    query = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
    return query.stdout.endswith(" installed")


def files(source: Source, cache: Path) -> list[Path]:
    """A package source's audio files, sorted, without jingles."""
    root = cache / source.package / source.folder
    if not root.is_dir():
        raise SystemExit(f"{root} is missing: run python -m training.corpus fetch --cache {cache}")
    found = sorted(p for p in root.rglob("*") if p.suffix.lower() in PACKAGE_AUDIO_SUFFIXES)
    return [p for p in found if source.kind == "music" or not JINGLE.search(p.relative_to(root).as_posix())]


def soundtrack_files(names: tuple[str, ...], cache: Path) -> list[Path]:
    """The music files of the training soundtrack sources named (all of them for none), the sources
    interleaved, so that the first n files spread over all of them. A held-out or unknown name is
    a ValueError."""
    per_source = [files(s, cache) for s in soundtrack_sources(names)]
    return [p for row in itertools.zip_longest(*per_source) for p in row if p is not None]


def soundtrack_sources(names: tuple[str, ...]) -> list[Source]:
    """The training soundtrack sources named (all of them for none), in SOURCES's order."""
    known = [s.name for s in TRAINING_SOUNDTRACKS]
    if unknown := sorted(set(names) - set(known)):
        raise ValueError(f"unknown soundtrack sources {unknown}; the corpus trains on {known}")
    return [s for s in TRAINING_SOUNDTRACKS if not names or s.name in names]


def read(path: Path, rate: int = SAMPLE_RATE) -> np.ndarray:
    """A file through the service's audio route, mono at `rate` (the model's); raw GSM named as such."""
    if path.suffix.lower() != ".gsm":
        return decode_file(path, target_rate=rate).waveform
    with av.open(str(path), format="gsm") as container:
        frames = [f.to_ndarray().reshape(-1) for f in container.decode(audio=0)]
    waveform: np.ndarray = soxr.resample(np.concatenate(frames).astype(np.float32) / 32768, 8000, rate)
    return waveform.astype(np.float32)


def speak(voice: str, text: str, rng: np.random.Generator) -> np.ndarray:
    """Text-to-speech at a random speed and pitch: mono at the model's rate."""
    program, name = voice.split(":")
    stdin = None  # festival reads its text from stdin
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "speech.wav"
        if program == "espeak-ng":
            variant = rng.choice(["", "+m1", "+m3", "+m5", "+f1", "+f2", "+f4", "+klatt"])
            speed, pitch = str(rng.integers(120, 220)), str(rng.integers(20, 80))
            command = ["espeak-ng", "-v", f"{name}{variant}", "-s", speed, "-p", pitch, "-w", str(out), text]
        elif program == "festival":
            stretch = f"(Parameter.set 'Duration_Stretch {rng.uniform(0.8, 1.3):.2f})"
            command = ["text2wave", "-eval", f"(voice_{name})", "-eval", stretch, "-o", str(out)]
            stdin = text.encode()
        else:
            command = ["flite", "-voice", name, "--setf", f"duration_stretch={rng.uniform(0.8, 1.3):.2f}"]
            command += ["-t", text, "-o", str(out)]
        subprocess.run(command, check=True, capture_output=True, input=stdin)
        return decode_file(out).waveform


def sentences(rng: np.random.Generator, n: int) -> str:
    """Prose to read: sentences of the licence texts every Debian system has, with numbers."""
    text = " ".join(p.read_text(errors="ignore") for p in sorted(Path("/usr/share/common-licenses").glob("*"))[:8])
    pool = [s.strip() for s in re.split(r"(?<=[.;:])\s+", " ".join(text.split())) if 20 < len(s) < 300]
    picked = [str(pool[i]) for i in rng.integers(0, len(pool), n)]
    if rng.random() < 0.3:
        picked.append(" ".join(str(rng.integers(0, 10**6)) for _ in range(rng.integers(1, 5))))
    return " ".join(picked)


def strung(parts: Iterator[np.ndarray], seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Clips one after another with 0.1-1.2 s pauses, up to `seconds` of audio."""
    out: list[np.ndarray] = []
    total = 0
    while total < seconds * SAMPLE_RATE:
        part = next(parts)
        gap = np.zeros(int(rng.uniform(0.1, 1.2) * SAMPLE_RATE), np.float32)
        out += [part, gap]
        total += len(part) + len(gap)
    return np.concatenate(out)[: int(seconds * SAMPLE_RATE)]


def reverberated(waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A room: convolved with exponentially decaying noise (RT60 0.2-1.0 s), mixed with the dry signal."""
    rt60 = rng.uniform(0.2, 1.0)
    t = np.arange(int(rt60 * SAMPLE_RATE)) / SAMPLE_RATE
    response = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)
    wet = np.fft.irfft(np.fft.rfft(waveform, len(waveform) + len(t)) * np.fft.rfft(response, len(waveform) + len(t)))
    wet = wet[: len(waveform)] / (np.abs(wet).max() or 1) * (np.abs(waveform).max() or 1)
    mix = rng.uniform(0.2, 0.8)
    return ((1 - mix) * waveform + mix * wet).astype(np.float32)


def degraded(waveform: np.ndarray, rng: np.random.Generator, kind: Kind) -> np.ndarray:
    """What an upload goes through: for speech, maybe another speaker's pitch and pace, a room and
    quiet room tone under it; then maybe one of the robustness table's degradations (codec, band
    limit, noise), decoded by the service's route."""
    if kind == "speech" and rng.random() < 0.5:
        # Played faster or slower: pitch and formants move together, as from a higher or lower voice.
        factor = rng.uniform(0.8, 1.25)
        waveform = soxr.resample(waveform, SAMPLE_RATE * factor, SAMPLE_RATE).astype(np.float32)
    if kind == "speech" and rng.random() < 0.5:
        waveform = reverberated(waveform, rng)
    if kind == "speech" and rng.random() < 0.5:
        # One sample more than asked for: seconds * rate may round down.
        waveform = waveform + room_tone(rng, (len(waveform) + 1) / SAMPLE_RATE, SAMPLE_RATE)[: len(waveform)]
    condition = rng.choice(["clean", "clean", *DEGRADATIONS, "noise"])
    if condition == "clean":
        return waveform
    if condition == "noise":
        return decode(with_noise(waveform, SAMPLE_RATE, rng.uniform(5, 30), int(rng.integers(1 << 30)))).waveform
    return decode(DEGRADATIONS[str(condition)](waveform, SAMPLE_RATE)).waveform


def under_each_degradation(waveform: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
    """The waveform clean, then through each of the robustness table's degradations, decoded by the
    service's route: what held-out music is measured under."""
    yield "clean", waveform
    for name, degrade in DEGRADATIONS.items():
        yield name, decode(degrade(waveform, SAMPLE_RATE)).waveform


def _cycle(paths: list[Path], rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Readable files of a source (of 50 ms or more) in random order, forever."""
    while True:
        found = False
        for i in rng.permutation(len(paths)):
            try:
                waveform = read(paths[i])
            except (AudioError, OSError, ValueError, av.error.FFmpegError):
                continue
            if len(waveform) > SAMPLE_RATE // 20:
                found = True
                yield waveform
        if not found:
            raise SystemExit(
                f"none of the {len(paths)} files from {paths[0].parent if paths else '?'} is readable audio"
            )


def alone_or_strung(parts: Iterator[np.ndarray], seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Sometimes the next clip alone (up to `seconds`), as an upload of one sound, where it lasts
    1.5 s (shorter ones are refused as uploads); else clips strung together."""
    part = next(parts)
    if len(part) >= 1.5 * SAMPLE_RATE and rng.random() < 0.3:
        return part[: int(seconds * SAMPLE_RATE)]
    return strung(itertools.chain([part], parts), seconds, rng)


def _length(rng: np.random.Generator) -> float:
    """Half of uploads fill a whole window; the rest are shorter."""
    return ITEM_SECONDS[1] if rng.random() < 0.5 else float(rng.uniform(*ITEM_SECONDS))


def items(source: Source, cache: Path, n: int, seed: int) -> Iterator[np.ndarray]:
    """n waveforms of a not-music source (each up to one window), or windows of a soundtrack's
    tracks (up to TRACK_WINDOWS a track, n ignored); before degradation."""
    rng = np.random.default_rng(seed)
    if source.kind == "music":
        for path in files(source, cache):
            try:
                waveform = read(path)
            except (AudioError, OSError):
                continue
            window = ITEM_SECONDS[1] * SAMPLE_RATE
            starts = np.linspace(0, max(0, len(waveform) - window), TRACK_WINDOWS[source.held_out]).astype(int)
            for start in sorted(set(starts)):
                yield waveform[start : start + int(window)]
        return
    make: Callable[[float], np.ndarray]
    if source.voice:
        voice = source.voice
        spoken = (speak(voice, sentences(rng, 2), rng) for _ in iter(int, 1))  # endless
        make = lambda s: strung(spoken, s, rng)  # noqa: E731
    elif source.package:
        parts = _cycle(files(source, cache), rng)
        make = lambda s: alone_or_strung(parts, s, rng)  # noqa: E731
    else:
        generators = list(SYNTHETIC[source.kind].values())
        make = lambda s: generators[rng.integers(len(generators))](rng, s, SAMPLE_RATE)  # noqa: E731
    for _ in range(n):
        yield make(_length(rng))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["fetch"])
    parser.add_argument("--cache", type=Path, default=Path("runs/corpus"))
    args = parser.parse_args(argv)
    fetch(args.cache)


if __name__ == "__main__":
    main()
