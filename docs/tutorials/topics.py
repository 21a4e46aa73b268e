# # Documents: topic models
#
# Draw a corpus from LDA's own generative process, so that the true topics are known; fit it with a neural topic
# model (ProdLDA, amortized VI) and with LDA by stochastic variational inference; then score both the way the
# field does (perplexity from the ELBO and from the tighter importance-sampled bound, NPMI coherence) and against
# the truth (how far each estimated topic is from its true topic).
#
# Run it: `python docs/tutorials/topics.py [OUT]` (by default `runs/tutorial-topics`); `ELBO_TUTORIAL_QUICK=1`
# uses a smaller corpus and fewer epochs: a few seconds. The same from the command line, on a directory of your
# own (`train.feat`, `vocabulary.txt`, optionally `test.feat`; or plain text, `train.txt`):
#
# ```bash
# elbo train --data corpus --data-dir runs/tutorial-topics/corpus --topics 5 --epochs 50 \
#     --out runs/tutorial-topics/prodlda
# elbo evaluate runs/tutorial-topics/prodlda --iwae-k
# ```

import os
import sys
from pathlib import Path

from elbo import evaluate, runs, train
from elbo.configs import TrainConfig
from elbo.models.topics import TopicConfig
from elbo.models.topics.synthetic import match_topics, write_lda_corpus, write_vocabulary

QUICK = os.environ.get("ELBO_TUTORIAL_QUICK") == "1"
OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/tutorial-topics")
NUM_TOPICS, VOCAB_SIZE = 5, 200
NUM_DOCUMENTS = 600 if QUICK else 3000
EPOCHS = {"prodlda": 30 if QUICK else 200, "lda": 5 if QUICK else 20}

# ## A corpus with known topics
#
# `write_lda_corpus` draws `β_k ~ Dir(η)`, `θ_d ~ Dir(α)` and each word from its topic, and writes the documents as
# `LABEL idx:count` lines (1-based word indices), the format of the NVDM and ProdLDA papers' 20 Newsgroups files.
# With no `test.feat`, the last tenth of the documents is the test set.

corpus = OUT / "corpus"
corpus.mkdir(parents=True, exist_ok=True)
true_topics = write_lda_corpus(corpus / "train.feat", NUM_DOCUMENTS, VOCAB_SIZE, NUM_TOPICS, words_per_document=50,
                               alpha=0.2, eta=0.05, seed=0)  # (K, V)
write_vocabulary(corpus / "vocabulary.txt", VOCAB_SIZE)

# ## Two ways to fit it
#
# `TopicConfig(model="prodlda")` is ProdLDA (Srivastava & Sutton 2017): a logistic-normal q over the topic
# proportions from an encoder, trained on the ELBO by gradient steps. `model="lda"` is latent Dirichlet allocation by
# stochastic variational inference (Hoffman et al. 2013): each step is a closed-form update of the topics on a
# minibatch, taken by the same training loop (so checkpoints, resume and data parallelism are the loop's own).

configs = {
    "prodlda": TrainConfig(data="corpus", data_dir=str(corpus),
                           model=TopicConfig(model="prodlda", num_topics=NUM_TOPICS),
                           epochs=EPOCHS["prodlda"], batch_size=64, lr=0.002, adam_betas=(0.99, 0.999)),
    "lda": TrainConfig(data="corpus", data_dir=str(corpus), model=TopicConfig(model="lda", num_topics=NUM_TOPICS),
                       epochs=EPOCHS["lda"], batch_size=64),
}
for name, config in configs.items():
    train.train(config, OUT / name, force=True, progress=False)

# ## Scores
#
# `evaluate_run` gives a topic run the field's measures besides the bounds (under `"metrics"`): perplexity by the
# corpus formula `exp(-Σ_d L_d / Σ_d N_d)`, from the ELBO and from IWAE-K (an upper bound on the true perplexity
# either way, the IWAE one tighter), and the topics' NPMI. `match_topics` pairs each true topic with an estimated
# one (the Hungarian algorithm on Hellinger distances: 0 is the same topic, 1 disjoint).

print(f"{'model':<8} {'perplexity (ELBO)':>18} {'perplexity (IWAE)':>18} {'NPMI':>7} {'Hellinger to truth':>19}")
for name in configs:
    metrics = evaluate.evaluate_run(OUT / name, num_samples=100 if QUICK else 1000, iwae_samples=())["metrics"]
    model = runs.load_run(OUT / name).model
    distance = match_topics(model.topic_words().softmax(-1), true_topics).distance
    print(f"{name:<8} {metrics['perplexity_corpus_elbo']:>18.1f} {metrics['perplexity_corpus_iwae']:>18.1f} "
          f"{metrics['npmi']:>7.3f} {distance:>19.3f}")
