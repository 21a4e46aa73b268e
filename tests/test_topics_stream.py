"""A corpus streamed from disk (elbo.models.topics.stream): the same documents as the in-memory loaders, in the
file's order, each process's block of each minibatch, and the files a stream refuses."""

import gzip
from pathlib import Path

import pytest
import torch

from elbo.errors import InputError
from elbo.models.topics import datasets
from elbo.models.topics.config import TextOptions
from elbo.models.topics.stream import FeatStream, StreamedCorpus, fit_streamed_vocabulary

VOCAB = 40


def _random_feat(path: Path, documents: int, *, seed: int = 0, gz: bool = False) -> torch.Tensor:
    """A ``LABEL idx:count`` file of random documents (some lines blank) and their dense counts."""
    generator = torch.Generator().manual_seed(seed)
    counts = torch.poisson(torch.full((documents, VOCAB), 0.3), generator=generator)
    counts[:, 0] += 1
    lines = []
    for row in counts:
        lines.append("7 " + " ".join(f"{int(i) + 1}:{int(row[i])}" for i in row.nonzero().flatten()))
        if len(lines) % 5 == 0:
            lines.append("")
    text = "\n".join(lines) + "\n"
    (gzip.open(path, "wt") if gz else open(path, "w")).write(text)
    return counts


@pytest.mark.parametrize("gz", [False, True])
def test_a_feat_stream_gives_the_documents_of_the_in_memory_loader_in_order(tmp_path, gz):
    counts = _random_feat(tmp_path / "train.feat", 23, gz=gz)
    stream = FeatStream(tmp_path / "train.feat", VOCAB)
    assert len(stream) == 23
    batches = list(stream.batches(5))
    assert [b.num_documents for b in batches] == [5, 5, 5, 5, 3]
    assert torch.equal(torch.cat([b.csr().to_dense() for b in batches]), counts)
    assert torch.equal(stream.head(7).to_dense(), counts[:7])


def test_each_process_reads_its_block_of_every_minibatch_and_the_blocks_make_the_minibatch(tmp_path):
    counts = _random_feat(tmp_path / "train.feat", 23)
    stream = FeatStream(tmp_path / "train.feat", VOCAB)
    blocks = [list(stream.batches(8, rank=rank, world_size=3)) for rank in range(3)]
    # minibatches of 8, 8 and 7 documents: blocks of 2, 2 and 2 (the remainder of each left out, as elbo.train does)
    for index, start in enumerate((0, 8, 16)):
        together = torch.cat([blocks[rank][index].csr().to_dense() for rank in range(3)])
        assert torch.equal(together, counts[start:start + 6])


def test_a_streamed_text_vocabulary_is_the_one_count_vectorizer_fits_in_memory(tmp_path):
    generator = torch.Generator().manual_seed(2)
    words = [f"word{i}" for i in range(30)] + ["the", "and"]
    lines = [" ".join(words[int(i)] for i in torch.randint(0, len(words), (12,), generator=generator))
             for _ in range(60)]
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "test.txt").write_text("\n".join(lines[:5]) + "\n")
    for options in (TextOptions(min_df=3, max_df=0.3), TextOptions(min_df=1, max_df=1.0, max_features=11)):
        in_memory = datasets.load_corpus(data_dir=tmp_path, options=options)
        vocabulary, documents = fit_streamed_vocabulary(tmp_path / "train.txt", options, chunk=7)
        assert vocabulary == in_memory.vocabulary and documents == 60
        streamed = datasets.load_corpus(data_dir=tmp_path, options=TextOptions(**{**options.__dict__,
                                                                                    "stream": True}))
        assert isinstance(streamed, StreamedCorpus) and streamed.vocabulary == in_memory.vocabulary
        train = torch.cat([b.csr().to_dense() for b in streamed.train.batches(16)])
        assert torch.equal(train[train.sum(-1) > 0], in_memory.train)
        assert torch.equal(streamed.test, in_memory.test)


def test_a_streamed_corpus_needs_a_test_file_and_refuses_bad_lines_with_their_number(tmp_path):
    _random_feat(tmp_path / "train.feat", 10)
    (tmp_path / "vocabulary.txt").write_text("\n".join(f"w{i}" for i in range(VOCAB)) + "\n")
    with pytest.raises(InputError, match="needs a test file"):
        datasets.load_corpus(data_dir=tmp_path, options=TextOptions(stream=True))
    (tmp_path / "test.feat").write_text("1 1:2 3:1\n")
    with pytest.raises(InputError, match="no validation split"):
        datasets.load_corpus(data_dir=tmp_path, val_size=2, options=TextOptions(stream=True))
    corpus = datasets.load_corpus(data_dir=tmp_path, options=TextOptions(stream=True))
    assert len(corpus.train) == 10 and corpus.test.shape == (1, VOCAB) and corpus.reference.shape == (10, VOCAB)
    (tmp_path / "train.feat").write_text("1 1:2\n1 2:x\n")
    stream = FeatStream(tmp_path / "train.feat", VOCAB)
    with pytest.raises(InputError, match=r"train.feat, line 2: count 'x'"):
        list(stream.batches(4))
    (tmp_path / "train.feat").write_text("\n\n")
    with pytest.raises(InputError, match="no document"):
        FeatStream(tmp_path / "train.feat", VOCAB)
