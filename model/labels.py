"""Genre labels, in the order of the model's output units."""

GENRES: tuple[str, ...] = (
    "blues",
    "classical",
    "country",
    "disco",
    "hiphop",
    "jazz",
    "metal",
    "pop",
    "reggae",
    "rock",
)
N_GENRES = len(GENRES)
GENRE_INDEX: dict[str, int] = {genre: i for i, genre in enumerate(GENRES)}
