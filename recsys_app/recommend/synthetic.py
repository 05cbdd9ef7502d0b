"""Generated interaction data in MovieLens layouts: a second data set to check tuned settings on,
and any catalogue size for the scale benchmarks (``bench/recsys.py``).

Items have Zipf popularity and one or two of ``genres`` tastes; each user has a few favourite
genres and walks through items: the next item shares a genre with the last one with probability
``stickiness`` (a sequence to learn), else comes from the user's favourites; popular items are
picked more often. Users rate in sessions, several items at the same second (MovieLens' ties).
Ratings are 4-5 for a favourite genre, 1-3 otherwise.

    python -m recsys_app.recommend.synthetic --layout ml-100k --out data/generated/ml100k-style
    # → u.data (tab, no header: user item rating timestamp) and u.item (pipe: id|title|…)
    python -m recsys_app.recommend.synthetic --layout ml-latest-small --users 2000 --items 10000 --out DIR
    # → ratings.csv (userId,movieId,rating,timestamp) and movies.csv (movieId,title,genres)
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from shared.runs import write_text


def generate(users: int = 943, items: int = 1682, per_user: int = 106, genres: int = 18,
             stickiness: float = 0.6, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(ratings, movies)``: ratings with user, item, rating, timestamp; movies with item, title, genres."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, items + 1) ** 0.9
    popularity = popularity[rng.permutation(items)]
    item_genres = [rng.choice(genres, size=rng.integers(1, 3), replace=False) for _ in range(items)]
    member = np.zeros((genres, items), dtype=bool)
    for item, ig in enumerate(item_genres):
        member[ig, item] = True
    by_genre = [np.flatnonzero(row) for row in member]
    # rng.choice(pool, p=w) draws one uniform and searches the normalised cumulative sum; doing it
    # here with the sums computed once gives the same items (the same stream) without the
    # O(pool) work per draw, so 50,000-item catalogues generate in seconds, not an hour.
    cdfs = [np.cumsum(popularity[idx]) for idx in by_genre]
    cdfs = [c / c[-1] if len(c) else c for c in cdfs]
    genre_lists = [ig.tolist() for ig in item_genres]
    rows = []
    for u in range(users):
        favourite = rng.choice(genres, size=3, replace=False).tolist()
        liked_genres = set(favourite)
        n = min(max(20, int(rng.geometric(1.0 / per_user))), items // 2)
        seen: set[int] = set()
        t = 880_000_000 + int(rng.integers(0, 20_000_000))
        genre = favourite[rng.integers(3)]
        while len(seen) < min(n, items):
            pool = by_genre[genre]
            item = int(pool[cdfs[genre].searchsorted(rng.random(), side="right")]) if len(pool) \
                else int(rng.integers(items))
            if item in seen:  # try elsewhere: a favourite, now and then any genre (no dead ends)
                genre = int(favourite[rng.integers(3)] if rng.random() < 0.7 else rng.integers(genres))
                continue
            seen.add(item)
            mine = genre_lists[item]
            liked = not liked_genres.isdisjoint(mine)
            rows.append((u + 1, item + 1, int(rng.integers(4, 6) if liked else rng.integers(1, 4)), t))
            t += 0 if rng.random() < 0.3 else int(rng.integers(1, 600))  # same-second ratings, as MovieLens has
            genre = mine[rng.integers(len(mine))] if rng.random() < stickiness else favourite[rng.integers(3)]
    ratings = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    movies = pd.DataFrame({"item": np.arange(1, items + 1), "title": [f"Movie {i} (1995)" for i in range(1, items + 1)],
                           "genres": ["|".join(f"G{g}" for g in sorted(ig)) for ig in item_genres]})
    return ratings, movies


def write(ratings: pd.DataFrame, movies: pd.DataFrame, out: Path, layout: str) -> list[Path]:
    """The files in ``layout``: ``ml-100k`` (u.data + u.item) or ``ml-latest-small`` (csv)."""
    out = Path(out)
    if layout == "ml-100k":
        data = "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in ratings.itertuples(index=False))
        item = "".join(f"{i}|{title}|01-Jan-1995||http://example.org/{i}|0|0\n"
                       for i, title in zip(movies["item"], movies["title"]))
        return [write_text(out / "u.data", data), write_text(out / "u.item", item)]
    return [write_text(out / "ratings.csv", ratings.set_axis(["userId", "movieId", "rating", "timestamp"], axis=1)
                       .to_csv(index=False)),
            write_text(out / "movies.csv", movies.set_axis(["movieId", "title", "genres"], axis=1).to_csv(index=False))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layout", choices=("ml-100k", "ml-latest-small"), default="ml-100k")
    ap.add_argument("--users", type=int, default=943)
    ap.add_argument("--items", type=int, default=1682)
    ap.add_argument("--per-user", type=int, default=106, help="mean interactions per user (at least 20)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    ratings, movies = generate(args.users, args.items, args.per_user, seed=args.seed)
    for path in write(ratings, movies, Path(args.out), args.layout):
        print(path)
    print(f"{len(ratings)} ratings, {ratings['user'].nunique()} users, {ratings['item'].nunique()} items")


if __name__ == "__main__":
    main()
