"""The topics kind's data sets: documents as bags of words, checked by SHA-256 of their decompressed content.

Each data set has a loader, ``load_<name>(data_dir=..., val_size=..., download=...)``, which returns ``BagOfWords``:
dense word counts ``(N, V)`` in torch's default dtype, one row a document, split into train / validation / test,
with the vocabulary (``V`` words) and, where the data set has them, labels and token sequences.

- ``"20news"``: 20 Newsgroups in the split of ProdLDA (Srivastava & Sutton 2017) and of the Dirichlet VAE topic
  models (Burkhardt & Kramer 2019), ``train.feat``, ``test.feat`` and ``vocab.new`` (1,995 words). Each ``.feat``
  line is ``LABEL idx:count idx:count ...`` with 1-based indices into ``vocab.new``; empty documents are dropped
  (the last line of each file is one), which leaves 11,258 training and 7,487 test documents. Its label is always 1,
  so the documents have no labels. ProdLDA's protocol has no validation split: ``val_size`` defaults to 0, and
  ``val_size=n`` makes the last ``n`` training documents validate.
- ``"bbc"``: BBC News as OCTIS preprocessed it, ``corpus.tsv`` (``TOKENS<TAB>SPLIT<TAB>LABEL``, one document a line,
  tokens space-separated in their original order) and ``vocabulary.txt`` (2,949 words): the file's own split into
  1,556 training, 334 validation and 335 test documents (``val_size`` must be ``None``), five classes as labels
  (``label_names`` sorted), and the token sequences of the training and test documents (``train_tokens``,
  ``test_tokens``) for sliding-window coherence.

``load_bag_of_words(train_path, vocabulary_path, test_path=..., val_size=...)`` reads a user's own corpus in the
``LABEL idx:count`` format, ``load_text_corpus(train_path, test_path=..., val_size=..., options=...)`` one in plain
text, one document a line, tokenised by scikit-learn's ``CountVectorizer`` (``TextOptions``); ``load_corpus`` (the
data set ``"corpus"``) reads whichever of the two a directory holds.

Files are looked for in ``data_dir/<folder>/`` and ``data_dir/`` (``folder`` as in ``FOLDERS``, the layout of the
project's shared data directory), each as ``name`` or ``name.gz``. A missing file is downloaded from ``URLS`` when
``download`` is true and the machine can reach it, then verified; otherwise the loader fails with one line naming
the file and the directory to put it in. A bad file is an ``InputError`` of one line naming the file and the line.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from ..._checks import check_val_size, one_of
from ..._downloads import DataFiles
from ...errors import InputError
from ...kinds import SPLITS
from . import formats
from .config import TextOptions

__all__ = ["BagOfWords", "load_20news", "load_bbc", "load_bag_of_words", "load_text_corpus", "load_corpus",
           "document_lengths", "SHA256", "URLS", "FOLDERS"]

DEFAULT_DATA_DIR = "data"
FOLDERS = {"20news": "20news_avitm", "bbc": "bbc_news"}

# SHA-256 of the decompressed content (robust to re-compression).
SHA256 = {
    "train.feat": "6c4b612d03bb54c68c923ae7b689398c4a7bd1046b0874332dfe0a0c42830143",
    "test.feat": "5e5beaff3c66affeb08aeefb69e40e3e1c52360cdad2df03e7df2ecb6b79fad0",
    "vocab.new": "75594f361e317a8c8fafca9846e903143ff25bb57ac4207ff850ef4245eb94bb",
    "corpus.tsv": "f76c715babb4b1decbe0d929454d1f2fd902c67d118cecaf7fbf39f1b376c624",
    "vocabulary.txt": "7aaf24bf24073a3eeb6b255dac054a40c5b3deda3dbcb0317e502e8b9f2ec8aa",
}

# The files of the public repository the shared data came from, at a fixed commit; no canonical URL is known for
# BBC's OCTIS files, which must be put in place by hand.
_DVAE = ("https://raw.githubusercontent.com/sophieburkhardt/dirichlet-vae-topic-models/"
         "70091d4f1df37c7a7eb2995fbbffba36caed46aa/data/20news/")
URLS = {name: [_DVAE + name] for name in ("train.feat", "test.feat", "vocab.new")}
FILES = DataFiles(sha256=SHA256, urls=URLS, folders=FOLDERS)


@dataclass(frozen=True, eq=False)
class BagOfWords:
    """Documents as dense word counts ``(N, V)`` in the default dtype, one row a document.

    ``vocabulary``: the ``V`` words, column ``j`` counting word ``vocabulary[j]``. ``*_labels``: each document's class
    (int64, ``(N,)``, indices into ``label_names`` where there are names), or ``None``. ``train_tokens`` and
    ``test_tokens``: each document's word ids in their original order (for sliding-window coherence), or ``None``
    where the data set has only counts.
    """

    name: str
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor
    vocabulary: tuple[str, ...]
    train_labels: torch.Tensor | None = None
    val_labels: torch.Tensor | None = None
    test_labels: torch.Tensor | None = None
    train_tokens: tuple[tuple[int, ...], ...] | None = None
    test_tokens: tuple[tuple[int, ...], ...] | None = None
    label_names: tuple[str, ...] | None = None

    def scored(self, split: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The counts of ``split`` (``"train"``, ``"val"`` or ``"test"``) and their labels (or ``None``)."""
        return getattr(self, one_of("split", split, SPLITS)), getattr(self, f"{split}_labels")

    def resample(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The batch itself: word counts have nothing to redraw."""
        return batch


def document_lengths(x: torch.Tensor) -> torch.Tensor:
    """The number of words in each document of counts ``x`` ``(..., V)``."""
    return x.sum(-1)


# --- loaders -----------------------------------------------------------------------------------------------------

def load_20news(*, data_dir=None, val_size: int | None = None, download: bool = True) -> BagOfWords:
    """20 Newsgroups in ProdLDA's split: 11,258 training and 7,487 test documents over 1,995 words once the empty
    documents are dropped; no labels. No validation split by default (ProdLDA's protocol has none): ``val_size=n``
    makes the last ``n`` training documents validate."""
    directory, name = _directory(data_dir), "20news"
    vocabulary = formats.vocabulary(*_read(directory, name, "vocab.new", download))
    docs = {split: formats.feat(*_read(directory, name, f"{split}.feat", download), len(vocabulary))
            for split in ("train", "test")}
    (train, _), (test, _) = docs["train"], docs["test"]
    cut = len(train) - check_val_size(val_size, len(train), default=0, points="training documents")
    return BagOfWords(name, train[:cut], train[cut:], test, vocabulary)


def load_bbc(*, data_dir=None, val_size: int | None = None, download: bool = True) -> BagOfWords:
    """BBC News (OCTIS): the file's fixed split of 1,556 / 334 / 335 documents, five classes, and the token
    sequences of the training and test documents. ``val_size`` must be ``None``: the split is the file's."""
    if val_size is not None:
        raise InputError(f"val_size must be None for bbc (its train/val/test split is fixed by the file), "
                         f"got {val_size!r}", argument="val_size")
    directory, name = _directory(data_dir), "bbc"
    vocabulary = formats.vocabulary(*_read(directory, name, "vocabulary.txt", download))
    path, text = _read(directory, name, "corpus.tsv", download)
    ids = {word: i for i, word in enumerate(vocabulary)}
    documents = {split: [] for split in SPLITS}  # split -> [(line, token ids, label)]
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split("\t")
        if len(fields) != 3:
            raise InputError(f"{path}, line {number}: expected 3 tab-separated fields TOKENS, SPLIT, LABEL, "
                             f"got {len(fields)}")
        words, split, label = fields
        if split not in documents:
            raise InputError(f"{path}, line {number}: unknown split {split!r} (expected one of "
                             f"{', '.join(map(repr, SPLITS))})")
        try:
            tokens = tuple(ids[word] for word in words.split())
        except KeyError as error:
            raise InputError(f"{path}, line {number}: word {error.args[0]!r} is not in the vocabulary") from None
        if tokens:  # an empty document carries no words to model
            documents[split].append((tokens, label.strip()))
    for split, docs in documents.items():
        if not docs:
            raise InputError(f"{path}: no non-empty {split} document")
    label_names = tuple(sorted({label for docs in documents.values() for _, label in docs}))
    index = {label: i for i, label in enumerate(label_names)}
    counts, labels = {}, {}
    for split, docs in documents.items():
        counts[split] = _counts_from_tokens([tokens for tokens, _ in docs], len(vocabulary))
        labels[split] = torch.tensor([index[label] for _, label in docs], dtype=torch.int64)
    return BagOfWords(name, counts["train"], counts["val"], counts["test"], vocabulary,
                      labels["train"], labels["val"], labels["test"],
                      train_tokens=tuple(tokens for tokens, _ in documents["train"]),
                      test_tokens=tuple(tokens for tokens, _ in documents["test"]), label_names=label_names)


def load_bag_of_words(train_path, vocabulary_path, *, test_path=None, val_size: int | None = None) -> BagOfWords:
    """A user's own corpus: ``LABEL idx:count ...`` lines (1-based indices into the vocabulary file, one word a
    line, optionally followed by a count, which is ignored), gzipped or not; empty documents are dropped. Without a
    ``test_path``, the last tenth of the documents (``N // 10``, at least one; in the file's order, not shuffled)
    are the test set. The last ``val_size`` of the other documents validate (default 0). Integer labels are kept
    as they are; other labels become indices into the sorted ``label_names``. No checksum: the files are the
    user's."""
    vocabulary_path = Path(vocabulary_path)
    vocabulary = formats.vocabulary(vocabulary_path, formats.text(vocabulary_path))
    train_path = Path(train_path)
    train, train_labels = formats.feat(train_path, formats.text(train_path), len(vocabulary))
    if test_path is None:
        (train, test), (train_labels, test_labels) = _hold_out_tenth(train_path, train, train_labels)
    else:
        test_path = Path(test_path)
        test, test_labels = formats.feat(test_path, formats.text(test_path), len(vocabulary))
    labels, label_names = _label_indices(train_labels, test_labels)
    cut = len(train) - check_val_size(val_size, len(train), default=0, points="training documents")
    name = Path(train_path.name.removesuffix(".gz")).stem
    return BagOfWords(name, train[:cut], train[cut:], test, vocabulary,
                      labels[0][:cut], labels[0][cut:], labels[1], label_names=label_names)


def load_text_corpus(train_path, *, test_path=None, val_size: int | None = None,
                     options: TextOptions | None = None) -> BagOfWords:
    """A user's own corpus in plain text: one document a line (blank lines are none), gzipped or not, counted by
    scikit-learn's ``CountVectorizer`` with ``options`` (``TextOptions``; ``None``: its defaults), fitted on the
    training documents alone (the validating ones among them); the test documents are counted over the same
    vocabulary (``vocabulary[j]`` the ``j``-th word in alphabetical order), their other words dropped. A document
    left with no word of the vocabulary is dropped, with a warning that counts them. Without a ``test_path``, the
    last tenth of the documents are the test set, as in ``load_bag_of_words``, and the vocabulary is the other nine
    tenths'. The last ``val_size`` of the training documents validate (default 0). No labels; ``train_tokens`` and
    ``test_tokens`` are each document's kept words as vocabulary indices, in order (its counts are theirs)."""
    options = TextOptions() if options is None else options
    train_path = Path(train_path)
    train = _documents(train_path)
    if test_path is None:
        ((train, test),) = _hold_out_tenth(train_path, train)
        test_path = train_path
    else:
        test_path = Path(test_path)
        test = _documents(test_path)
    vocabulary, analyze = _fit_vocabulary(train_path, train, options)
    ids = {word: i for i, word in enumerate(vocabulary)}
    train_tokens = _kept_tokens(train_path, train, analyze, ids, "training")
    test_tokens = _kept_tokens(test_path, test, analyze, ids, "test")
    cut = len(train_tokens) - check_val_size(val_size, len(train_tokens), default=0, points="training documents")
    train, val, test = (_counts_from_tokens(tokens, len(vocabulary))
                        for tokens in (train_tokens[:cut], train_tokens[cut:], test_tokens))
    name = Path(train_path.name.removesuffix(".gz")).stem
    return BagOfWords(name, train, val, test, vocabulary, train_tokens=train_tokens[:cut], test_tokens=test_tokens)


CORPUS_FILES = {"train": ("train.feat",), "test": ("test.feat",), "vocabulary": ("vocabulary.txt", "vocab.new")}
TEXT_FILES = {"train": ("train.txt",), "test": ("test.txt",)}


def load_corpus(*, data_dir=None, val_size: int | None = None, download: bool = True,
                options: TextOptions | None = None) -> BagOfWords:
    """The data set ``"corpus"``: a user's own corpus in the directory ``data_dir`` (``elbo train --data corpus
    --data-dir DIR``). Either ``train.feat`` (``LABEL idx:count`` lines), a vocabulary (``vocabulary.txt`` or
    ``vocab.new``, one word a line) and, optionally, ``test.feat``, read by ``load_bag_of_words``; or plain text,
    ``train.txt`` and, optionally, ``test.txt`` (one document a line), read by ``load_text_corpus`` with ``options``
    (unused for ``.feat`` files). Each file may be gzipped; a directory with both train files is refused.
    ``download`` is not used: the files are the user's."""
    if data_dir is None:
        raise InputError("the data set 'corpus' is a directory of your own: give data_dir (train.feat, "
                         "vocabulary.txt and, optionally, test.feat; or train.txt and, optionally, test.txt)",
                         argument="data_dir")
    directory = Path(data_dir)
    found, text = _found(directory, CORPUS_FILES), _found(directory, TEXT_FILES)
    if found["train"] is not None and text["train"] is not None:
        raise InputError(f"{directory} holds both {found['train'].name} and {text['train'].name}: keep one (a corpus "
                         f"is LABEL idx:count lines or plain text, not both)", argument="data_dir")
    if options is not None and options.stream and (found["train"] or text["train"]) is not None:
        if text["train"] is None and found["vocabulary"] is None:
            raise FileNotFoundError(f"corpus: {' or '.join(CORPUS_FILES['vocabulary'])} is missing from {directory}")
        if val_size:
            raise InputError(f"a streamed corpus has no validation split (its documents are read once an epoch), got "
                             f"val_size={val_size}: drop it, or read the corpus into memory", argument="val_size")
        from .stream import load_streamed_corpus

        return load_streamed_corpus(directory, found, text, options)
    if text["train"] is not None:
        corpus = load_text_corpus(text["train"], test_path=text["test"], val_size=val_size, options=options)
        return dataclasses.replace(corpus, name="corpus")
    if found["train"] is None:
        raise FileNotFoundError(f"corpus: train.feat or train.txt is missing from {directory}")
    if found["vocabulary"] is None:
        raise FileNotFoundError(f"corpus: {' or '.join(CORPUS_FILES['vocabulary'])} is missing from {directory}")
    corpus = load_bag_of_words(found["train"], found["vocabulary"], test_path=found["test"], val_size=val_size)
    return dataclasses.replace(corpus, name="corpus")


def _found(directory: Path, files: dict) -> dict:
    """Each role of ``files`` (role -> names) to the first of its names found in ``directory`` (``name`` or
    ``name.gz``), or ``None``."""
    return {role: next((directory / f for name in names for f in (name, name + ".gz") if (directory / f).is_file()),
                       None) for role, names in files.items()}


def _hold_out_tenth(path: Path, *columns) -> list[tuple]:
    """Each of ``columns`` (one entry a document of ``path``) split as ``(train, test)``: the last tenth of the
    documents (``N // 10``, at least one; in the file's order, not shuffled) are the test set."""
    size = len(columns[0])
    test_size = max(1, size // 10)
    if size <= test_size:
        raise InputError(f"{path}: {size} non-empty document(s), too few to hold out a tenth for testing; give a "
                         f"test_path")
    return [(column[:-test_size], column[-test_size:]) for column in columns]


def _directory(data_dir) -> Path:
    return Path(DEFAULT_DATA_DIR if data_dir is None else data_dir)


def _label_indices(*splits: list[str]) -> tuple[list[torch.Tensor], tuple[str, ...] | None]:
    """Labels as int64 tensors: integers as they are (no names), else indices into the sorted distinct labels."""
    try:
        return [torch.tensor([int(label) for label in split], dtype=torch.int64) for split in splits], None
    except (ValueError, RuntimeError, OverflowError):
        names = tuple(sorted({label for split in splits for label in split}))
        index = {name: i for i, name in enumerate(names)}
        return [torch.tensor([index[label] for label in split], dtype=torch.int64) for split in splits], names


# --- formats -----------------------------------------------------------------------------------------------------

def _documents(path: Path) -> list[str]:
    """The documents of a plain-text file: its lines that are not blank."""
    documents = [line for line in formats.text(path).split("\n") if line.strip()]
    if not documents:
        raise InputError(f"{path}: no document (expected plain text, one document a line)")
    return documents


def _fit_vocabulary(path: Path, documents: list[str], options: TextOptions):
    """The vocabulary ``CountVectorizer`` with ``options`` keeps from ``documents`` (in its order: alphabetical),
    and its analyzer (a document to its words: lower-cased, stop words removed)."""
    from sklearn.feature_extraction.text import CountVectorizer  # scikit-learn's import is slow: only for plain text

    size = len(documents)
    if options.min_df > size:
        raise InputError(f"min_df ({options.min_df}) is more than the {size} training documents of {path}: no word "
                         f"can be in that many; lower min_df", argument="min_df")
    if options.max_df * size < options.min_df:
        raise InputError(f"max_df ({options.max_df}) keeps the words of at most {options.max_df * size:g} of the "
                         f"{size} training documents of {path}, fewer than min_df ({options.min_df}): raise max_df "
                         f"or lower min_df", argument="max_df")
    vectorizer = CountVectorizer(**options.analyzer, min_df=options.min_df, max_df=float(options.max_df),
                                 max_features=options.max_features)
    analyze = vectorizer.build_analyzer()
    try:
        vectorizer.fit(documents)
    except ValueError:  # an empty vocabulary: what emptied it is told apart below
        if not any(analyze(document) for document in documents):
            raise InputError(f"{path}: no word to count: every token is shorter than two letters or one of the "
                             f"stop_words ({options.stop_words!r})", argument="stop_words") from None
        raise InputError(f"{path}: no word is in at least min_df ({options.min_df}) and at most max_df "
                         f"({options.max_df}) of the {size} training documents: lower min_df or raise max_df",
                         argument="min_df") from None
    return tuple(str(word) for word in vectorizer.get_feature_names_out()), analyze


def _kept_tokens(path: Path, documents: list[str], analyze, ids: dict, what: str) -> tuple[tuple[int, ...], ...]:
    """Each document's words that are in the vocabulary (``ids``: word -> index), in order; documents left with no
    word are dropped, with a warning."""
    tokens = [tuple(ids[word] for word in analyze(document) if word in ids) for document in documents]
    kept = tuple(document for document in tokens if document)
    if not kept:
        raise InputError(f"{path}: no {what} document has a word of the vocabulary")
    if len(kept) < len(tokens):
        warnings.warn(f"{path}: {len(tokens) - len(kept)} of the {len(tokens)} {what} documents have no word of the "
                      f"vocabulary and were dropped", stacklevel=2)
    return kept


def _counts_from_tokens(documents: list[tuple[int, ...]], vocab_size: int) -> torch.Tensor:
    """Dense counts ``(N, V)`` from each document's token ids, in one ``index_put_``."""
    sizes = torch.tensor([len(tokens) for tokens in documents], dtype=torch.int64)
    row = torch.repeat_interleave(torch.arange(len(documents)), sizes)
    column = torch.tensor([i for tokens in documents for i in tokens], dtype=torch.int64)
    counts = torch.zeros(len(documents), vocab_size, dtype=torch.get_default_dtype())
    return counts.index_put_((row, column), torch.ones(len(column), dtype=counts.dtype), accumulate=True)


# --- files -------------------------------------------------------------------------------------------------------

def _read(directory: Path, dataset: str, name: str, download: bool) -> tuple[Path, str]:
    """The path of file ``name`` (found as ``name`` or ``name.gz``, or downloaded) and its verified text."""
    path, content = FILES.read(directory, dataset, name, download)
    return path, formats.decoded(path, content)


