"""The teacher of model 3.0 on ONNX Runtime: musicnn's front end, its exported tagger, and its
targets for audio, cached.

    python -m training.teacher --teacher runs/teacher/MSD_musicnn.onnx [--corpus runs/corpus] AUDIO...

musicnn reads 3 s patches of a 96-band log-mel spectrogram at 16 kHz (it cannot read the labelled
arrays, whose 87 ms frames are too coarse). training.teacher_export turns its TensorFlow checkpoint
into ONNX once; from then on no TensorFlow is needed. For each audio file the teacher gives, per
non-overlapping patch, its penultimate embedding (200 values) and its tag logits (50): the targets a
student learns from, cached by the file's content. bench.teacher_ceiling scores the teacher itself on the
GTZAN audio clips: the ceiling on audio.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import onnxruntime as ort

from model.audio import AUDIO_SUFFIXES
from training.corpus import SOURCES, files, read

SAMPLE_RATE_HZ = 16_000  # musicnn's configuration: SR, FFT_SIZE, FFT_HOP, N_MELS
FFT_SIZE = 512  # samples
HOP_SAMPLES = 256  # 16 ms
MEL_BANDS = 96
PATCH_FRAMES = 187  # 3 s, as musicnn's extractor counts its frames
PATCH_SECONDS = PATCH_FRAMES * HOP_SAMPLES / SAMPLE_RATE_HZ  # 2.992 s between patch starts
BATCH_PATCHES = 16  # patches per ONNX Runtime call

# The MSD tags that name a GTZAN genre. Classical and reggae have none: a zero-shot guess covers
# the other eight, and soft targets from tags leave those two genres to the labels.
GENRE_TAGS: dict[str, tuple[str, ...]] = {
    "blues": ("blues",),
    "country": ("country",),
    "disco": ("dance", "funk"),
    "hiphop": ("Hip-Hop", "rnb"),
    "jazz": ("jazz",),
    "metal": ("metal", "heavy metal"),
    "pop": ("pop",),
    "rock": ("rock", "classic rock", "hard rock"),
}


def log_mel(waveform: np.ndarray) -> np.ndarray:
    """Mono float waveform at 16 kHz -> musicnn's input features, shape (frames, 96), float32.

    As musicnn computes them: librosa's mel power spectrogram, rounded through float16, then
    log10(10000 x + 1) in float32, as numpy 1 (musicnn's) computes it; numpy 2's casting rules would
    keep it in float16, where a loud band overflows to infinity.
    """
    mel = librosa.feature.melspectrogram(
        y=np.asarray(waveform, dtype=np.float32),
        sr=SAMPLE_RATE_HZ,
        n_fft=FFT_SIZE,
        hop_length=HOP_SAMPLES,
        n_mels=MEL_BANDS,
        center=True,
        pad_mode="constant",
    ).T
    rounded = mel.astype(np.float16).astype(np.float32)
    return np.log10(10_000 * rounded + 1).astype(np.float32)


def patches(features: np.ndarray) -> np.ndarray:
    """(frames, 96) -> non-overlapping 3 s patches (n, 187, 96), as musicnn's extractor cuts them;
    audio shorter than one patch is looped to fill it (musicnn's extractor fails on it)."""
    if len(features) < PATCH_FRAMES:
        features = np.resize(features, (PATCH_FRAMES, features.shape[1]))
    n = len(features) // PATCH_FRAMES
    return np.ascontiguousarray(features[: n * PATCH_FRAMES].reshape(n, PATCH_FRAMES, features.shape[1]))


@dataclass(frozen=True)
class Targets:
    """The teacher on one audio file: a row per 3 s patch (patch i starts at i * PATCH_SECONDS)."""

    embedding: np.ndarray  # (patches, 200): the penultimate layer (200 per teacher when joined)
    tag_logits: np.ndarray  # (patches, 50) (50 per teacher when joined)

    def between(self, start_s: float, end_s: float) -> Targets:
        """The patches that start within [start_s, end_s); at least the one nearest start_s."""
        first = min(round(start_s / PATCH_SECONDS), len(self.embedding) - 1)
        last = max(first + 1, min(len(self.embedding), int(np.ceil(end_s / PATCH_SECONDS))))
        return Targets(self.embedding[first:last], self.tag_logits[first:last])

    @staticmethod
    def joined(parts: list[Targets]) -> Targets:
        """Several teachers on the same file as one: their embeddings and tags side by side."""
        if len({len(p.embedding) for p in parts}) != 1:
            raise ValueError(f"the teachers cut the file into different patches: {[len(p.embedding) for p in parts]}")
        return Targets(
            np.concatenate([p.embedding for p in parts], axis=1), np.concatenate([p.tag_logits for p in parts], axis=1)
        )

    @property
    def tag_probabilities(self) -> np.ndarray:
        """(patches, tags): the tags' sigmoid."""
        probabilities: np.ndarray = 1 / (1 + np.exp(-self.tag_logits))
        return probabilities


class Teacher:
    """An exported musicnn tagger (training.teacher_export's file and note) on ONNX Runtime."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        note = json.loads(path.with_suffix(".json").read_text())
        expected = {"frames": PATCH_FRAMES, "mel_bands": MEL_BANDS}
        found = {key: note["input"][key] for key in expected}
        if found != expected:
            raise ValueError(f"{path}: the teacher reads patches of {found}, this front end makes {expected}")
        self.name: str = note["model"]
        self.tags: list[str] = note["tags"]
        self.digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def on_patches(self, batch: np.ndarray) -> Targets:
        """(patches, 187, 96) -> their targets, BATCH_PATCHES at a time: ONNX Runtime's arena keeps
        the largest batch's memory (about 15 MB a patch), so a long track must not be one batch."""
        parts = [
            self._session.run(["embedding", "tag_logits"], {"log_mel": batch[i : i + BATCH_PATCHES]})
            for i in range(0, len(batch), BATCH_PATCHES)
        ]
        return Targets(np.concatenate([e for e, _ in parts]), np.concatenate([t for _, t in parts]))

    def __call__(self, waveform: np.ndarray) -> Targets:
        """A mono waveform at 16 kHz -> its targets."""
        return self.on_patches(patches(log_mel(waveform)))

    def entry(self, content_key: str, cache: Path) -> Path:
        """Where cache/ keeps this teacher's targets for a file: by its content and this teacher's weights."""
        return cache / self.name / self.digest / f"{content_key}.npz"

    def cached(self, path: Path, cache: Path) -> Targets:
        """The teacher's targets for an audio file, computed once and kept under cache/."""
        return cached_targets(path, [self], cache)[0]

    @property
    def has_genre_tags(self) -> bool:
        """Whether its tags name the genres of GENRE_TAGS (MSD's do; MagnaTagATune's do not)."""
        return all(tag in self.tags for tags in GENRE_TAGS.values() for tag in tags)

    def genre_patch_scores(self, targets: Targets) -> np.ndarray:
        """(patches, genres of GENRE_TAGS): each patch's likeliest tag of each genre."""
        probability = targets.tag_probabilities
        index = {tag: i for i, tag in enumerate(self.tags)}
        columns = [probability[:, [index[t] for t in tags]].max(axis=1) for tags in GENRE_TAGS.values()]
        return np.stack(columns, axis=1)

    def genre_scores(self, targets: Targets) -> dict[str, float]:
        """Zero-shot: each genre of GENRE_TAGS scored by its likeliest tag, averaged over patches."""
        scores = self.genre_patch_scores(targets).mean(axis=0)
        return {genre: float(score) for genre, score in zip(GENRE_TAGS, scores, strict=True)}

    def zero_shot_genre(self, targets: Targets) -> str:
        scores = self.genre_scores(targets)
        return max(scores, key=scores.__getitem__)


def _keep(targets: Targets, where: Path) -> None:
    where.parent.mkdir(parents=True, exist_ok=True)
    partial = where.with_suffix(".partial.npz")
    np.savez(partial, embedding=targets.embedding, tag_logits=targets.tag_logits)
    partial.replace(where)  # a run cut off midway leaves no half-written entry


def cached_targets(path: Path, teachers: list[Teacher], cache: Path) -> list[Targets]:
    """Each teacher's targets for an audio file, from cache/ or computed (the file decoded once) and kept."""
    content_key = hashlib.sha256(path.read_bytes()).hexdigest()[:32]  # read once for every teacher
    waveform = None
    found = []
    for teacher in teachers:
        where = teacher.entry(content_key, cache)
        if where.exists():
            with np.load(where) as saved:
                found.append(Targets(saved["embedding"], saved["tag_logits"]))
            continue
        if waveform is None:
            waveform = read_16k(path)
        targets = teacher(waveform)
        _keep(targets, where)
        found.append(targets)
    return found


def read_16k(path: Path) -> np.ndarray:
    """An audio file, mono at the teacher's rate, through the corpus's reader (raw GSM prompts too)."""
    return read(path, SAMPLE_RATE_HZ)


def audio_files(roots: list[Path]) -> list[Path]:
    """The audio files under each root (a root may be a file), sorted."""
    found: list[Path] = []
    for root in roots:
        candidates = [root] if root.is_file() else root.rglob("*")
        found += sorted(p for p in candidates if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("audio", type=Path, nargs="*", help="audio files or folders")
    parser.add_argument("--corpus", type=Path, help="also every file of training.corpus's packaged sources")
    parser.add_argument("--teacher", type=Path, action="append", required=True, help="an exported teacher")
    parser.add_argument("--cache", type=Path, default=Path("runs/teacher/targets"))
    args = parser.parse_args(argv)
    teachers = [Teacher(path) for path in args.teacher]
    paths = audio_files(args.audio)
    if args.corpus is not None:
        paths += [path for source in SOURCES if source.package for path in files(source, args.corpus)]
    for i, path in enumerate(paths, 1):
        cached_targets(path, teachers, args.cache)
        if i % 100 == 0 or i == len(paths):
            print(f"{i}/{len(paths)} files", flush=True)


if __name__ == "__main__":
    main()
