"""The data of chapters 8 and 9: the restricted unpickler refuses what it must, the question set's answers occur
in their passages, the readers' simulation is deterministic, the Chinese captions follow their grammar.

covers: mmtutor.data.newsgroups, mmtutor.data.lee, mmtutor.data.lee_questions, mmtutor.data.polarity,
mmtutor.data.bilingual, mmtutor.data.scenes_zh, mmtutor.data.readers
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from mmtutor.applications.rag import normalize_answer
from mmtutor.data.bilingual import load_en_it
from mmtutor.data.lee import lee_passages, load_lee_judged_documents, load_lee_similarities, split_sentences
from mmtutor.data.lee_questions import QUESTIONS
from mmtutor.data.newsgroups import RestrictedUnpickler, load_mini_newsgroups, restricted_loads, strip_headers
from mmtutor.data.polarity import load_polarity
from mmtutor.data.readers import ReaderConfig, simulate_readers
from mmtutor.data.scenes import Caption, Thing
from mmtutor.data.scenes_zh import (
    EN_TO_ZH,
    ZH_VOCAB,
    caption_corpus,
    encode_zh,
    skewed_scenes,
    zh_caption,
)

# ----------------------------------------------------------------------------- newsgroups


def test_newsgroups_load_with_labels_and_without_headers():
    news = load_mini_newsgroups()
    assert len(news.texts) == 200 and news.group_names == ("alt.atheism", "sci.space")
    assert sorted(set(news.labels)) == [0, 1] and sum(news.labels) == 100
    assert not any(t.startswith(("Newsgroups:", "Path:", "From:")) for t in news.texts)
    assert not any("\nNewsgroups: " in t[:200] for t in news.texts)  # the header that names the label is gone


def test_strip_headers_keeps_subject_and_body():
    post = "From: a@b\nSubject: Re: Moon\nNewsgroups: sci.space\n\nThe body.\n\nMore."
    assert strip_headers(post) == "Re: Moon\nThe body.\n\nMore."


@pytest.mark.parametrize("payload", [
    b"cos\nsystem\n(S'echo pwned'\ntR.",  # os.system("echo pwned"), protocol 0
    b"cbuiltins\neval\n(S'1+1'\ntR.",
    pickle.dumps(print, protocol=2),  # a global by protocol 2
    pickle.dumps(np.array([object()], dtype=object), protocol=2),
])
def test_restricted_unpickler_refuses_every_other_global(payload):
    with pytest.raises(pickle.UnpicklingError, match="refusing|only"):
        restricted_loads(payload)


def test_restricted_unpickler_maps_bunch_to_dict_and_refuses_object_arrays():
    # what the file does: copy_reg._reconstructor(Bunch, dict, state) -> a plain dict
    payload = (b"ccopy_reg\n_reconstructor\n(csklearn.datasets.base\nBunch\nc__builtin__\ndict\n"
               b"(dS'a'\nI1\nstR.")
    assert restricted_loads(payload) == {"a": 1}
    assert RestrictedUnpickler.ALLOWED[("sklearn.datasets.base", "Bunch")] is dict
    with pytest.raises(pickle.UnpicklingError, match="object dtypes"):
        restricted_loads(b"cnumpy\ndtype\n(S'O8'\nI0\nI1\ntR.")
    with pytest.raises(TypeError, match="bytes"):
        restricted_loads("not bytes")


# ----------------------------------------------------------------------------- Lee documents and questions


def test_lee_documents_and_judgements():
    docs, S = load_lee_judged_documents(), load_lee_similarities()
    assert len(docs) == 50 and all(len(d.split()) > 30 for d in docs)
    assert S.shape == (50, 50) and torch.equal(S, S.T) and (S.diagonal() == 1).all()
    assert 0 <= S.min() and S.max() <= 1


def test_passages_cover_every_document_in_order():
    passages, doc_of = lee_passages(2)
    docs = load_lee_judged_documents()
    assert doc_of == sorted(doc_of) and set(doc_of) == set(range(50))
    for d, doc in enumerate(docs):
        assert " ".join(p for p, o in zip(passages, doc_of, strict=True) if o == d) == doc
    assert split_sentences("He left. She said \"no.\" Then 3 went.") == ["He left.", "She said \"no.\"", "Then 3 went."]
    with pytest.raises(ValueError, match="positive int"):
        lee_passages(0)


def test_every_answer_occurs_in_its_evidence_and_the_evidence_in_its_document():
    docs = load_lee_judged_documents()
    passages, doc_of = lee_passages(2)
    assert len(QUESTIONS) >= 30 and len({q.question for q in QUESTIONS}) == len(QUESTIONS)
    for q in QUESTIONS:
        assert q.evidence in docs[q.doc], q
        assert normalize_answer(q.answers[0]) in normalize_answer(q.evidence), q
        assert all(normalize_answer(a) in normalize_answer(docs[q.doc]) for a in q.answers), q
        assert any(q.evidence in p for p, d in zip(passages, doc_of, strict=True) if d == q.doc), q
        # the question does not give its answer away
        assert normalize_answer(q.answers[0]) not in normalize_answer(q.question), q


# ----------------------------------------------------------------------------- polarity and bilingual vectors


def test_polarity_sentences():
    texts, labels = load_polarity()
    assert len(texts) == 200 and sum(labels) == 100 and set(labels) == {0, 1}
    assert all(isinstance(t, str) and t for t in texts)


def test_en_it_vectors_and_dictionary():
    en, E_en, it, E_it, pairs = load_en_it()
    assert E_en.shape == (20, 300) and E_it.shape == (20, 300) and len(pairs) == 20
    assert ("one", "uno") in pairs and ("fish", "cavallo") in pairs  # the dictionary's one wrong pair, as shipped
    from gensim.models import KeyedVectors
    from gensim.test.utils import datapath

    kv = KeyedVectors.load_word2vec_format(datapath("EN.1-10.cbow1_wind5_hs0_neg10_size300_smpl1e-05.txt"))
    np.testing.assert_allclose(E_en[en.index("dog")].numpy(), kv["dog"], rtol=1e-6)


# ----------------------------------------------------------------------------- Chinese captions


def test_chinese_grammar_puts_the_side_after_the_object():
    c = Caption(Thing("circle", "red", "small"), "left of", Thing("square", "blue", "large"))
    assert c.text == "a small red circle left of a large blue square"
    assert zh_caption(c) == "一个 红色 的 小 圆形 在 一个 蓝色 的 大 方形 的 左边"
    assert zh_caption(Caption(Thing("triangle", "green", "large"))) == "一个 绿色 的 大 三角形"
    ids, lengths = encode_zh([zh_caption(c)])
    assert lengths.tolist() == [13] and ids.max() < len(ZH_VOCAB)
    with pytest.raises(ValueError, match="Chinese scene"):
        encode_zh(["一个 红色 的 狗"])
    assert set(EN_TO_ZH) == {"small", "large", "red", "green", "blue", "yellow", "purple", "circle", "square",
                             "triangle", "left", "right", "above", "below"}
    assert len(set(EN_TO_ZH.values())) == len(EN_TO_ZH)


def test_skewed_scenes_keep_captions_true_and_follow_the_tables():
    scenes, captions = skewed_scenes(400, seed=3)
    assert all(c.holds(s) for s, c in zip(scenes, captions, strict=True))
    assert all(len({(o.thing.color, o.thing.shape) for o in s.objects}) == len(s.objects) for s in scenes)
    things = [o.thing for s in scenes for o in s.objects]
    red_circles = sum(t.color == "red" and t.shape == "circle" for t in things)
    red_squares = sum(t.color == "red" and t.shape == "square" for t in things)
    assert red_circles > 3 * red_squares  # red favours circles in the skewed world
    uniform = [o.thing for s in skewed_scenes(400, seed=3, skew=0.0)[0] for o in s.objects]
    assert abs(sum(t.shape == "circle" for t in uniform) / len(uniform) - 1 / 3) < 0.05
    assert skewed_scenes(50, seed=3) == skewed_scenes(50, seed=3)  # seeded


def test_caption_corpus_is_seeded_and_drops_function_words():
    en = caption_corpus(100, seed=1, language="en")
    assert en == caption_corpus(100, seed=1, language="en")
    zh = caption_corpus(100, seed=1, language="zh")
    assert not {"a", "of"} & {w for s in en for w in s}
    assert not {"一个", "的", "在"} & {w for s in zh for w in s}
    assert all(len(a) == len(b) for a, b in zip(en, zh, strict=True))  # the same scenes: as many content words
    with pytest.raises(ValueError, match="language"):
        caption_corpus(3, 0, "fr")


# ----------------------------------------------------------------------------- simulated readers


def test_reader_simulation_is_deterministic_under_a_seed():
    groups = torch.tensor([0, 1] * 100)
    a, b = simulate_readers(groups, seed=4), simulate_readers(groups, seed=4)
    assert a.train == b.train and a.test == b.test and torch.equal(a.taste, b.taste)
    assert simulate_readers(groups, seed=5).train != a.train


def test_reader_simulation_follows_its_rules():
    groups = torch.tensor([0, 1] * 100)
    config = ReaderConfig(n_users=400)
    r = simulate_readers(groups, config, seed=0)
    low, high = config.clicks_per_user
    for train, test in zip(r.train, r.test, strict=True):
        assert len(test) == config.n_test and low <= len(train) + len(test) <= high
        assert len(set(train + test)) == len(train) + len(test)  # no post clicked twice
    # readers click their preferred group and their liked tastes far more often than chance
    in_group = [sum(int(groups[i]) in g for i in h) / len(h) for h, g in zip(r.train, r.groups_preferred, strict=True)
                if len(g) == 1]
    liked = [sum(int(r.taste[i]) in t for i in h) / len(h) for h, t in zip(r.train, r.tastes_liked, strict=True)]
    assert sum(in_group) / len(in_group) > 0.75
    assert sum(liked) / len(liked) > 2 * config.tastes_per_user / config.n_tastes
    with pytest.raises(ValueError, match="n_test"):
        simulate_readers(groups, ReaderConfig(clicks_per_user=(2, 4), n_test=3))
