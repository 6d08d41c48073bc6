"""Artist-disjoint cross-validation folds over GTZAN's train + valid clips.

A song's other clips, or the same artist's other songs, make a held-out score look better than
it is (GTZAN's best-known fault): so no artist is split between folds. A clip whose artist is
unknown is a group of its own, as the data's README asks.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from training.data import read_labels


def artist_groups(data_dir: Path) -> dict[str, str]:
    """clip_id -> its artist, or a group of its own when `artists.csv` does not name one."""
    with open(data_dir / "artists.csv", newline="") as f:
        artists = {row["clip_id"]: row["artist"].strip() for row in csv.DictReader(f)}
    return {row["clip_id"]: artists.get(row["clip_id"]) or f"unknown:{row['clip_id']}" for row in read_labels(data_dir)}


def artist_folds(data_dir: Path, n_folds: int) -> dict[str, int]:
    """clip_id -> fold in [0, n_folds). Deterministic. Each artist's clips go, largest artists first,
    to the fold with the fewest clips of that artist's main genre so far (then the fewest clips),
    so the folds come out near equal in size and in genre mix."""
    genre_of = {row["clip_id"]: row["genre"] for row in read_labels(data_dir)}
    members: dict[str, list[str]] = {}
    for clip_id, group in artist_groups(data_dir).items():
        members.setdefault(group, []).append(clip_id)
    main_genre = {g: Counter(genre_of[c] for c in clips).most_common(1)[0][0] for g, clips in members.items()}
    by_genre = [Counter[str]() for _ in range(n_folds)]
    sizes = [0] * n_folds
    fold_of: dict[str, int] = {}
    for group in sorted(members, key=lambda g: (main_genre[g], -len(members[g]), g)):
        fold = min(range(n_folds), key=lambda f: (by_genre[f][main_genre[group]], sizes[f], f))
        for clip_id in members[group]:
            fold_of[clip_id] = fold
            by_genre[fold][genre_of[clip_id]] += 1
        sizes[fold] += len(members[group])
    return fold_of
