"""The topics kind's loaders on small generated files (parsing, empty documents, splits, downloading, plain text
and its options, every bad file), and on the real files in ../shared/data."""

import dataclasses
import gzip
import hashlib
import json
import re
from pathlib import Path

import pytest
import torch

from elbo.errors import InputError
from elbo.models.topics import datasets as data
from elbo.models.topics.config import TextOptions
from helpers import SHARED_DATA

real_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="the shared data directory ../shared/data is absent")

VOCAB = ["alpha", "beta", "gamma", "delta"]
FEAT = "1 1:2 3:1\n1 2:5\n1 \n1 4:1 1:1 4:2\n1 \n"  # two empty documents (lines 3 and 5)
EXPECTED = [[2, 0, 1, 0], [0, 5, 0, 0], [1, 0, 0, 3]]


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path_factory):
    """No test here reaches the internet: every download URL points at a file that does not exist."""
    nowhere = tmp_path_factory.getbasetemp() / "offline-mirror"
    for name in data.URLS:
        monkeypatch.setitem(data.URLS, name, [(nowhere / name).as_uri()])


def write(path, text, *, gz=False):
    path = Path(f"{path}.gz" if gz else path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    return path


def trust(monkeypatch, *paths):
    """Make ``elbo.models.topics.datasets`` accept these generated files: their content's SHA-256 becomes the
    expected one."""
    for path in paths:
        path = Path(path)
        content = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        monkeypatch.setitem(data.SHA256, path.name.removesuffix(".gz"), hashlib.sha256(content).hexdigest())


def news(directory, monkeypatch, *, train=FEAT, test="1 2:1 3:1\n", vocab=None, gz=False):
    folder = Path(directory) / "20news_avitm"
    vocab = "".join(f"{w} 0 \n" for w in VOCAB) if vocab is None else vocab
    paths = (write(folder / "train.feat", train, gz=gz), write(folder / "test.feat", test, gz=gz),
             write(folder / "vocab.new", vocab))
    trust(monkeypatch, *paths)
    return paths


BBC_CORPUS = ("alpha beta alpha\ttrain\tsport\n"
              "gamma\ttrain\tbusiness\n"
              "delta delta\tval\tsport\n"
              "beta gamma delta\ttest\ttech\n")


def bbc(directory, monkeypatch, *, corpus=BBC_CORPUS, vocab="alpha\nbeta\ngamma\ndelta\n"):
    folder = Path(directory) / "bbc_news"
    paths = write(folder / "corpus.tsv", corpus), write(folder / "vocabulary.txt", vocab)
    trust(monkeypatch, *paths)
    return paths


# --- 20news -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [False, True])
def test_20news_parses_counts_and_drops_empty_documents(tmp_path, monkeypatch, gz):
    news(tmp_path, monkeypatch, gz=gz)
    docs = data.load_20news(data_dir=tmp_path, download=False)
    assert docs.name == "20news" and docs.vocabulary == tuple(VOCAB)
    assert docs.train.dtype == torch.get_default_dtype() and docs.train.layout == torch.strided
    assert docs.train.tolist() == EXPECTED  # repeated indices add up; empty lines are gone
    assert docs.val.shape == (0, 4)  # ProdLDA's protocol: no validation split by default
    assert docs.test.tolist() == [[0, 1, 1, 0]]
    assert docs.train_labels is None and docs.test_labels is None and docs.train_tokens is None
    assert data.document_lengths(docs.train).tolist() == [3, 5, 4]
    x, labels = docs.scored("test")
    assert x is docs.test and labels is None
    batch = docs.train[:2]
    assert docs.resample(batch, torch.Generator()) is batch
    with pytest.raises(InputError, match="split must be one of"):
        docs.scored("valid")


def test_20news_val_size_takes_the_last_training_documents(tmp_path, monkeypatch):
    news(tmp_path, monkeypatch)
    docs = data.load_20news(data_dir=tmp_path, val_size=1, download=False)
    assert docs.train.tolist() == EXPECTED[:2] and docs.val.tolist() == EXPECTED[2:]
    for bad in (3, -1, 1.5, True):
        with pytest.raises(InputError, match=re.escape("val_size must be an integer in [0, 3)")):
            data.load_20news(data_dir=tmp_path, val_size=bad, download=False)


def test_20news_files_are_also_found_directly_in_the_data_dir(tmp_path, monkeypatch):
    for path in news(tmp_path, monkeypatch):
        path.rename(tmp_path / path.name)
    assert data.load_20news(data_dir=tmp_path, download=False).train.shape == (3, 4)


def test_20news_missing_file_names_it_and_its_folder(tmp_path, monkeypatch):
    train, _, _ = news(tmp_path, monkeypatch)
    train.unlink()
    with pytest.raises(FileNotFoundError, match=r"20news: train\.feat .* missing from .*20news_avitm .*"
                                                 r"\(downloading is off\)"):
        data.load_20news(data_dir=tmp_path, download=False)
    with pytest.raises(FileNotFoundError, match="could not be downloaded"):  # the offline mirror has nothing
        data.load_20news(data_dir=tmp_path, download=True)


def test_20news_downloads_a_missing_file_and_verifies_it(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    paths = news(mirror, monkeypatch)
    for path in paths:
        monkeypatch.setitem(data.URLS, path.name, [path.as_uri()])
    target = tmp_path / "data"
    docs = data.load_20news(data_dir=target, download=True)
    assert docs.train.tolist() == EXPECTED
    assert (target / "20news_avitm" / "train.feat").read_bytes() == paths[0].read_bytes()
    # a source whose content has the wrong checksum is not kept
    (target / "20news_avitm" / "test.feat").unlink()
    monkeypatch.setitem(data.SHA256, "test.feat", "0" * 64)
    with pytest.raises(FileNotFoundError, match="wrong SHA-256"):
        data.load_20news(data_dir=target, download=True)
    assert not (target / "20news_avitm" / "test.feat").exists()


def test_checksum_failure_names_the_file(tmp_path, monkeypatch):
    news(tmp_path, monkeypatch)
    monkeypatch.setitem(data.SHA256, "vocab.new", "0" * 64)
    with pytest.raises(InputError, match=r"vocab\.new: SHA-256 of the content is .* expected 0000"):
        data.load_20news(data_dir=tmp_path, download=False)


@pytest.mark.parametrize("line, message", [
    ("1 1:2 5:1", "word index 5 is outside the vocabulary (1..4)"),
    ("1 0:2", "word index 0 is outside the vocabulary (1..4)"),
    ("1 1:2 2:-1", "count '-1' in '2:-1' is negative"),
    ("1 1:1.5", "count '1.5' in '1:1.5' is not an integer"),
    ("1 1:x", "count 'x' in '1:x' is not an integer"),
    ("1 x:2", "word index 'x' in 'x:2' is not a positive integer"),
    ("1 1:2 3", "malformed pair '3' (expected idx:count)"),
    ("1 1:2:3", "malformed pair '1:2:3'"),
    ("1 :3", "malformed pair ':3'"),
    ("1 2:", "malformed pair '2:'"),
])
def test_bad_feat_lines_name_the_file_and_the_line(tmp_path, monkeypatch, line, message):
    news(tmp_path, monkeypatch, train=f"1 1:1\n1 2:2\n{line}\n1 3:3\n")
    with pytest.raises(InputError, match=re.escape(f"train.feat, line 3: {message}")) as error:
        data.load_20news(data_dir=tmp_path, download=False)
    assert "\n" not in str(error.value)


def test_a_corpus_with_no_words_is_an_error(tmp_path, monkeypatch):
    news(tmp_path, monkeypatch, test="1 \n1 2:0\n")
    with pytest.raises(InputError, match=r"test\.feat: no non-empty document"):
        data.load_20news(data_dir=tmp_path, download=False)


@pytest.mark.parametrize("vocab, message", [
    ("alpha\nbeta\nalpha\n", "line 3: word 'alpha' is already on line 1"),
    ("alpha\n\nbeta\n", "line 2: empty line"),
    ("alpha 0\nbeta gamma\n", "line 2: expected a word, optionally followed by a count, got 'beta gamma'"),
    ("alpha 1 2\n", "line 1: expected a word"),
    ("", "the vocabulary is empty"),
])
def test_bad_vocabularies_name_the_file_and_the_line(tmp_path, monkeypatch, vocab, message):
    news(tmp_path, monkeypatch, vocab=vocab, train="1 1:1\n", test="1 1:1\n")
    with pytest.raises(InputError, match=re.escape(f"vocab.new{', ' if 'line' in message else ': '}{message}")):
        data.load_20news(data_dir=tmp_path, download=False)


# --- bbc ----------------------------------------------------------------------------------------------------------

def test_bbc_reads_its_split_labels_and_tokens(tmp_path, monkeypatch):
    bbc(tmp_path, monkeypatch)
    docs = data.load_bbc(data_dir=tmp_path, download=False)
    assert docs.name == "bbc" and docs.vocabulary == ("alpha", "beta", "gamma", "delta")
    assert docs.train.tolist() == [[2, 1, 0, 0], [0, 0, 1, 0]]
    assert docs.val.tolist() == [[0, 0, 0, 2]] and docs.test.tolist() == [[0, 1, 1, 1]]
    assert docs.label_names == ("business", "sport", "tech")
    assert docs.train_labels.tolist() == [1, 0] and docs.val_labels.tolist() == [1]
    assert docs.test_labels.tolist() == [2] and docs.test_labels.dtype == torch.int64
    assert docs.train_tokens == ((0, 1, 0), (2,)) and docs.test_tokens == ((1, 2, 3),)
    x, labels = docs.scored("val")
    assert x is docs.val and labels is docs.val_labels


def test_bbc_split_is_fixed(tmp_path, monkeypatch):
    bbc(tmp_path, monkeypatch)
    with pytest.raises(InputError, match="val_size must be None for bbc"):
        data.load_bbc(data_dir=tmp_path, val_size=1, download=False)


def test_bbc_has_no_download_source(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"bbc: vocabulary\.txt .* \(no download source is known"):
        data.load_bbc(data_dir=tmp_path, download=True)


@pytest.mark.parametrize("line, message", [
    ("alpha omega\ttrain\tsport", "line 2: word 'omega' is not in the vocabulary"),
    ("alpha\ttrain", "line 2: expected 3 tab-separated fields TOKENS, SPLIT, LABEL, got 2"),
    ("alpha\ttrain\tsport\textra", "line 2: expected 3 tab-separated fields TOKENS, SPLIT, LABEL, got 4"),
    ("alpha\tdev\tsport", "line 2: unknown split 'dev'"),
])
def test_bad_bbc_lines_name_the_file_and_the_line(tmp_path, monkeypatch, line, message):
    lines = BBC_CORPUS.splitlines()
    bbc(tmp_path, monkeypatch, corpus="\n".join([lines[0], line, *lines[1:]]) + "\n")
    with pytest.raises(InputError, match=re.escape("corpus.tsv, ") + ".*" + re.escape(message)):
        data.load_bbc(data_dir=tmp_path, download=False)


def test_bbc_without_documents_in_a_split_is_an_error(tmp_path, monkeypatch):
    bbc(tmp_path, monkeypatch, corpus="alpha\ttrain\tsport\nbeta\ttest\ttech\n")
    with pytest.raises(InputError, match=r"corpus\.tsv: no non-empty val document"):
        data.load_bbc(data_dir=tmp_path, download=False)


def test_bbc_vocabulary_with_duplicates_is_an_error(tmp_path, monkeypatch):
    bbc(tmp_path, monkeypatch, vocab="alpha\nbeta\nbeta\n")
    with pytest.raises(InputError, match=r"vocabulary\.txt, line 3: word 'beta' is already on line 2"):
        data.load_bbc(data_dir=tmp_path, download=False)


# --- a user's own corpus ------------------------------------------------------------------------------------------

def test_bag_of_words_holds_out_the_last_tenth_without_a_test_file(tmp_path):
    vocab = write(tmp_path / "words.txt", "alpha\nbeta\ngamma\n")
    lines = [f"{i % 3} {i % 3 + 1}:{i + 1}" for i in range(21)] + ["0 "]
    corpus = write(tmp_path / "mine.feat", "\n".join(lines) + "\n", gz=True)
    docs = data.load_bag_of_words(corpus, vocab, val_size=4)
    assert docs.name == "mine" and docs.vocabulary == ("alpha", "beta", "gamma")
    assert (len(docs.train), len(docs.val), len(docs.test)) == (15, 4, 2)  # 21 documents: 21 // 10 test the model
    assert docs.test.sum(-1).tolist() == [20, 21] and docs.val.sum(-1).tolist() == [16, 17, 18, 19]
    assert docs.test_labels.tolist() == [1, 2] and docs.label_names is None
    assert docs.train_labels.tolist() == [i % 3 for i in range(15)]


def test_bag_of_words_with_a_test_file_and_named_labels(tmp_path):
    vocab = write(tmp_path / "words.txt", "alpha 3\nbeta 1\n")
    train = write(tmp_path / "train.txt", "sport 1:1\nnews 2:2\n")
    test = write(tmp_path / "test.txt", "arts 1:3 2:1\n")
    docs = data.load_bag_of_words(train, vocab, test_path=test)
    assert docs.train.tolist() == [[1, 0], [0, 2]] and docs.val.shape == (0, 2) and docs.test.tolist() == [[3, 1]]
    assert docs.label_names == ("arts", "news", "sport")
    assert docs.train_labels.tolist() == [2, 1] and docs.test_labels.tolist() == [0]


def test_bag_of_words_bad_files(tmp_path):
    vocab = write(tmp_path / "words.txt", "alpha\nbeta\n")
    with pytest.raises(FileNotFoundError, match="nowhere.txt"):
        data.load_bag_of_words(tmp_path / "train.txt", tmp_path / "nowhere.txt")
    with pytest.raises(FileNotFoundError, match="train.txt"):
        data.load_bag_of_words(tmp_path / "train.txt", vocab)
    one = write(tmp_path / "one.txt", "1 1:1\n")
    with pytest.raises(InputError, match="one.txt: 1 non-empty document.*give a test_path"):
        data.load_bag_of_words(one, vocab)
    bad = write(tmp_path / "bad.txt", "1 1:1\n1 3:1\n")
    with pytest.raises(InputError, match=re.escape("bad.txt, line 2: word index 3 is outside the vocabulary (1..2)")):
        data.load_bag_of_words(bad, vocab)
    with pytest.raises(InputError, match="val_size must be an integer"):
        data.load_bag_of_words(one, vocab, test_path=one, val_size=1)


# --- a user's own corpus in plain text ----------------------------------------------------------------------------

TEXT_TRAIN = "The cat sat on the mat.\nDogs and cats!\n\nthe dog sat\n"  # a blank line is no document
TEXT_TEST = "A dog and a bird sat, sat.\n"
EVERY_WORD = TextOptions(min_df=1, max_df=1.0)  # no pruning by document frequency


def text_corpus(directory, train=TEXT_TRAIN, test=TEXT_TEST, *, gz=False):
    directory = Path(directory)
    write(directory / "train.txt", train, gz=gz)
    if test is not None:
        write(directory / "test.txt", test, gz=gz)
    return directory


@pytest.mark.parametrize("gz", [False, True])
def test_text_corpus_counts_a_hand_written_corpus_exactly(tmp_path, gz):
    docs = data.load_corpus(data_dir=text_corpus(tmp_path, gz=gz), options=EVERY_WORD)
    # lower-cased; "the", "on", "and" are English stop words and "a" is shorter than two letters; vocabulary sorted
    assert docs.name == "corpus" and docs.vocabulary == ("cat", "cats", "dog", "dogs", "mat", "sat")
    assert docs.train.dtype == torch.get_default_dtype()
    assert docs.train.tolist() == [[1, 0, 0, 0, 1, 1], [0, 1, 0, 1, 0, 0], [0, 0, 1, 0, 0, 1]]
    assert docs.val.shape == (0, 6)
    assert docs.test.tolist() == [[0, 0, 1, 0, 0, 2]]  # "bird" is not in the training vocabulary: dropped
    assert docs.train_tokens == ((0, 5, 4), (3, 1), (2, 5)) and docs.test_tokens == ((2, 5, 5),)  # in order
    assert docs.train_labels is None and docs.val_labels is None and docs.test_labels is None
    assert docs.label_names is None and docs.scored("test")[1] is None


def test_text_corpus_keeps_case_and_stop_words_when_told(tmp_path):
    options = TextOptions(lowercase=False, stop_words=None, min_df=1, max_df=1.0)
    docs = data.load_corpus(data_dir=text_corpus(tmp_path, train="The cat sat on the mat.\nthe cat\n",
                                                 test="The mat\n"), options=options)
    assert docs.vocabulary == ("The", "cat", "mat", "on", "sat", "the")  # upper case sorts first
    assert docs.train.tolist() == [[1, 1, 1, 1, 1, 1], [0, 1, 0, 0, 0, 1]]
    assert docs.test.tolist() == [[1, 0, 1, 0, 0, 0]]


def test_min_df_and_max_df_prune_the_vocabulary_and_empty_documents_are_dropped(tmp_path):
    # document frequencies over 4 documents: apple 3, banana 2, cherry 1, date 1
    train, test = write(tmp_path / "train.txt", "apple banana\napple cherry\napple banana apple\ndate\n"), \
        write(tmp_path / "t.txt", "banana\n")
    with pytest.warns(UserWarning, match=r"train\.txt: 2 of the 4 training documents have no word of the vocabulary"):
        docs = data.load_text_corpus(train, test_path=test, options=TextOptions(min_df=2, max_df=0.5))
    # apple is in 3/4 > 0.5 of the documents; cherry and date are in 1 < 2
    assert docs.name == "train" and docs.vocabulary == ("banana",)
    assert docs.train.tolist() == [[1], [1]] and docs.train_tokens == ((0,), (0,)) and docs.test.tolist() == [[1]]
    # max_features keeps the most frequent words over the corpus: apple (4 times), then banana (2)
    with pytest.warns(UserWarning, match=r"1 of the 4 training documents"):  # "date"
        docs = data.load_text_corpus(train, test_path=test, options=TextOptions(min_df=1, max_df=1.0, max_features=2))
    assert docs.vocabulary == ("apple", "banana") and docs.train.tolist() == [[1, 1], [1, 0], [2, 1]]


def test_text_corpus_without_a_test_file_holds_out_its_last_tenth_unseen(tmp_path):
    train = "alpha beta\n" * 9 + "beta gamma gamma\n"  # 10 documents: the last one tests
    docs = data.load_corpus(data_dir=text_corpus(tmp_path, train=train, test=None), val_size=2, options=EVERY_WORD)
    assert docs.vocabulary == ("alpha", "beta")  # gamma is only in the held-out document
    assert (len(docs.train), len(docs.val), len(docs.test)) == (7, 2, 1)
    assert docs.test.tolist() == [[0, 1]] and docs.test_tokens == ((1,),) and len(docs.train_tokens) == 7


def test_text_tokens_give_the_counts(tmp_path):
    lines = [" ".join(f"word{(3 * d + 7 * i) % 11}" for i in range(d % 5 + 2)) for d in range(30)]
    docs = data.load_corpus(data_dir=text_corpus(tmp_path, train="\n".join(lines), test=None),
                            options=TextOptions(stop_words=None, min_df=2, max_df=0.9))
    for x, tokens in ((docs.train, docs.train_tokens), (docs.test, docs.test_tokens)):
        expected = torch.stack([torch.bincount(torch.tensor(t), minlength=len(docs.vocabulary)) for t in tokens])
        assert torch.equal(x, expected.to(x.dtype))


def test_a_directory_with_both_feat_and_text_is_refused(tmp_path):
    text_corpus(tmp_path)
    write(tmp_path / "train.feat", "1 1:1\n")
    write(tmp_path / "vocabulary.txt", "alpha\n")
    with pytest.raises(InputError, match="holds both train.feat and train.txt") as error:
        data.load_corpus(data_dir=tmp_path)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("train, test, options, message", [
    ("", TEXT_TEST, EVERY_WORD, "train.txt: no document (expected plain text, one document a line)"),
    ("\n  \n", TEXT_TEST, EVERY_WORD, "train.txt: no document"),
    (TEXT_TRAIN, "\n", EVERY_WORD, "test.txt: no document"),
    (b"caf\xe9 latte\n", TEXT_TEST, EVERY_WORD, "train.txt: not UTF-8 text"),
    ("the and of\nit is a\n", TEXT_TEST, EVERY_WORD, "train.txt: no word to count: every token is shorter than two "
                                                     "letters or one of the stop_words ('english')"),
    ("apple\nbanana\ncherry\n", TEXT_TEST, TextOptions(min_df=2, max_df=1.0),
     "no word is in at least min_df (2) and at most max_df (1.0) of the 3 training documents: lower min_df"),
    (TEXT_TRAIN, TEXT_TEST, TextOptions(min_df=4), "min_df (4) is more than the 3 training documents"),
    (TEXT_TRAIN, TEXT_TEST, TextOptions(min_df=2, max_df=0.5),
     "max_df (0.5) keeps the words of at most 1.5 of the 3 training documents"),
    (TEXT_TRAIN, "bird fish\n", EVERY_WORD, "test.txt: no test document has a word of the vocabulary"),
], ids=["empty", "blank", "empty test", "not UTF-8", "only stop words", "all pruned", "min_df > documents",
        "max_df below min_df", "test without a known word"])
def test_bad_text_corpora_are_one_line(tmp_path, train, test, options, message):
    text_corpus(tmp_path, test=test)
    (tmp_path / "train.txt").write_bytes(train if isinstance(train, bytes) else train.encode())
    with pytest.raises(InputError, match=re.escape(message)) as error:
        data.load_corpus(data_dir=tmp_path, options=options)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("field, value, message", [
    ("lowercase", "yes", "lowercase must be True or False, got 'yes'"),
    ("stop_words", "french", "stop_words must be one of 'english', None, got 'french'"),
    ("min_df", 0, "min_df must be a positive integer, got 0"),
    ("min_df", 0.5, "min_df must be a positive integer, got 0.5"),
    ("max_df", 0, "max_df must be a number in (0, 1]"),
    ("max_df", 1.5, "max_df must be a number in (0, 1]"),
    ("max_df", True, "max_df must be a number in (0, 1]"),
    ("max_features", 0, "max_features must be a positive integer, got 0"),
])
def test_text_options_are_checked(field, value, message):
    with pytest.raises(InputError, match=re.escape(message)) as error:
        TextOptions(**{field: value})
    assert error.value.argument == field


def test_text_options_round_trip():
    options = TextOptions(lowercase=False, stop_words=None, min_df=3, max_df=0.8, max_features=100)
    assert TextOptions.from_dict(json.loads(json.dumps(dataclasses.asdict(options)))) == options


# --- the real files -----------------------------------------------------------------------------------------------

@real_data
def test_real_20news_documents():
    docs = data.load_20news(data_dir=SHARED_DATA, download=False)
    assert (len(docs.train), len(docs.val), len(docs.test)) == (11258, 0, 7487)
    assert len(docs.vocabulary) == 1995 and docs.train.shape[1] == 1995 and docs.vocabulary[0] == "_eos_"
    for split in ("train", "test"):
        text = (SHARED_DATA / "20news_avitm" / f"{split}.feat").read_text()
        total = sum(int(pair.split(":")[1]) for line in text.splitlines() for pair in line.split()[1:])
        x = getattr(docs, split)
        assert x.sum().item() == total and bool((x.sum(-1) > 0).all())
    assert docs.train[:, 0].sum().item() == 0  # word 1, _eos_, never occurs


@real_data
def test_real_bbc_documents():
    docs = data.load_bbc(data_dir=SHARED_DATA, download=False)
    assert (len(docs.train), len(docs.val), len(docs.test)) == (1556, 334, 335)
    assert len(docs.vocabulary) == 2949 and docs.train.shape[1] == 2949
    assert docs.label_names == ("business", "entertainment", "politics", "sport", "tech")
    assert set(docs.train_labels.tolist()) == set(range(5))
    assert len(docs.train_tokens) == 1556 and len(docs.test_tokens) == 335
    for x, tokens in ((docs.train, docs.train_tokens), (docs.test, docs.test_tokens)):
        expected = torch.stack([torch.bincount(torch.tensor(t), minlength=2949) for t in tokens])
        assert torch.equal(x, expected.to(x.dtype))
