"""transformers' masked LMs as they are prompted: ``fastspec.torch.masked_lm`` on real classes.

A tiny ``BertForMaskedLM`` built from a config (seeded weights, no hub) and a
``BertTokenizer`` built from a local vocabulary file. Laws: a prompt framed by
CLS/SEP and padding (attention mask 0) is continued, and the samples follow the
sequential law enumerated with direct calls of the model (chi-square, fixed
seeds); the same samples tested against the law without the prompt must fail.
The positions protocol (``marginals(ctx, positions)``) equals the dense answer at
those positions, through the output-layer hook and through logit slicing.
``symbols=None`` runs on a 30,522-token vocabulary.
"""

import functools
import itertools

import numpy as np
import pytest
from scipy import stats

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import fastspec  # noqa: E402
from fastspec.torch import FLOAT32_ABOVE, masked_lm  # noqa: E402

torch.set_num_threads(1)

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "dog", "sat", "on", "mat",
         "a", "ran", "big", "small", "red"]
PASS_P = 1e-3
FAIL_P = 1e-6


def _bert(vocab_size, seed=0, **extra):
    torch.manual_seed(seed)
    config = transformers.BertConfig(
        vocab_size=vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=32, initializer_range=0.5, **extra)
    return transformers.BertForMaskedLM(config).eval()


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(WORDS) + "\n")
    return transformers.BertTokenizer(str(path))


@pytest.fixture(scope="module")
def bert():
    return _bert(len(WORDS))


def _prompted(tokenizer, n_free):
    """[CLS] the big cat <n_free slots> [SEP] [PAD] [PAD], and its attention mask."""
    prompt = tokenizer("the big cat", add_special_tokens=False)["input_ids"]
    template = ([tokenizer.cls_token_id] + prompt + [-1] * n_free + [tokenizer.sep_token_id]
                + [tokenizer.pad_token_id] * 2)
    mask = [1] * (len(template) - 2) + [0, 0]
    return template, mask


def _sequential_law(bert, template, mask, symbols, mask_id):
    """P(x) for the left-to-right order, by direct calls of the model (K = all prefixes)."""
    slots = [i for i, t in enumerate(template) if t == -1]
    q, n = len(symbols), len(slots)
    law = np.ones((q,) * n)
    for x in itertools.product(range(q), repeat=n):
        ids = [mask_id if t == -1 else t for t in template]
        p = 1.0
        for i, slot in enumerate(slots):
            with torch.no_grad():
                logits = bert(torch.tensor([ids]),
                              attention_mask=torch.tensor([mask])).logits[0, slot]
            cond = torch.softmax(logits[list(symbols)].double(), -1).numpy()
            p *= cond[x[i]]
            ids[slot] = symbols[x[i]]
        law[x] = p
    return law.ravel()


def _chi2(samples, q, law):
    codes = np.ravel_multi_index(samples.T, (q,) * samples.shape[1])
    counts = np.bincount(codes, minlength=law.size)
    expected = law * samples.shape[0]
    keep = expected > 5
    rest = [counts[~keep].sum()] if (~keep).any() else []
    obs = np.concatenate([counts[keep], rest])
    exp = np.concatenate([expected[keep], [expected[~keep].sum()] if rest else []])
    return stats.chisquare(obs, exp * obs.sum() / exp.sum()).pvalue


def test_prompt_continuation_follows_the_sequential_law(bert, tokenizer):
    template, mask = _prompted(tokenizer, 3)
    symbols = tokenizer.convert_tokens_to_ids(["sat", "ran", "on", "red"])
    model = masked_lm(bert, template=template, attention_mask=mask, symbols=symbols,
                      mask_id=tokenizer.mask_token_id)
    res = fastspec.sample(model, n_samples=20_000, order=[0, 1, 2], method="block", seed=0)
    law = _sequential_law(bert, template, mask, symbols, tokenizer.mask_token_id)
    assert _chi2(res.samples, 4, law) > PASS_P
    # negative control: the law of the same slots without the prompt
    bare = [tokenizer.cls_token_id, -1, -1, -1, tokenizer.sep_token_id]
    other = _sequential_law(bert, bare, [1] * 5, symbols, tokenizer.mask_token_id)
    assert _chi2(res.samples, 4, other) < FAIL_P
    # and the samples decode to text after the prompt
    text = tokenizer.decode(np.asarray(symbols)[res.samples[0]])
    assert len(text.split()) == 3


def test_docs_prompt_example(bert, tokenizer):
    # docs/TORCH.md, section 1: continue a prompt given as token ids
    prompt = tokenizer("the big cat", add_special_tokens=False)["input_ids"]
    template = [tokenizer.cls_token_id, *prompt, -1, -1, -1, tokenizer.sep_token_id]
    model = fastspec.torch.masked_lm(bert, template=template, mask_id=tokenizer.mask_token_id)
    res = fastspec.sample(model, n_samples=4, seed=0)
    assert res.samples.shape == (4, 3)
    assert model.symbols.shape == (len(WORDS),)
    words = [tokenizer.decode(row) for row in res.samples]
    assert all(isinstance(w, str) for w in words)


def _random_contexts(k, n, q, rng):
    ctx = rng.integers(0, q, size=(k, n))
    ctx[rng.random((k, n)) < 0.5] = -1
    ctx[:, 0] = -1
    return ctx


def _positions(ctx, rng):
    """Per row, a random subset of its free positions, padded with -1."""
    k = ctx.shape[0]
    width = int((ctx < 0).sum(axis=1).max())
    pos = np.full((k, width), -1, dtype=np.int64)
    for r in range(k):
        free = np.flatnonzero(ctx[r] < 0)
        pick = rng.permutation(free)[:rng.integers(1, free.size + 1)]
        pos[r, :pick.size] = pick
    return pos


# The logits are float32: calls on batches of other shapes round differently (measured
# up to 2.2e-6 relative in a probability), hence rtol=2e-5 where batches differ.
@pytest.mark.parametrize("wrapped", [False, True])
def test_positions_answer_equals_the_dense_answer(bert, tokenizer, wrapped):
    template, mask = _prompted(tokenizer, 6)
    # wrapped: no get_output_embeddings, so the logits are sliced before the softmax
    net = functools.partial(bert, return_dict=False) if wrapped else bert
    symbols = tokenizer.convert_tokens_to_ids(["sat", "ran", "on", "red", "a"])
    model = masked_lm(net, template=template, attention_mask=mask, symbols=symbols,
                      mask_id=tokenizer.mask_token_id, max_rows=3)
    rng = np.random.default_rng(0)
    ctx = _random_contexts(8, 6, 5, rng)
    pos = _positions(ctx, rng)
    dense = model.marginals(ctx)
    part = model.marginals(ctx, pos)
    assert part.shape == pos.shape + (5,) and part.dtype == np.float64
    rows = np.arange(8)[:, None].repeat(pos.shape[1], axis=1)
    valid = pos >= 0
    np.testing.assert_allclose(part[valid], dense[rows[valid], pos[valid]], rtol=2e-5,
                               atol=1e-9)
    np.testing.assert_array_equal(part[~valid], 0.0)
    # and the dense answer equals a direct call of the model
    ids = np.array([[tokenizer.mask_token_id if t == -1 else t for t in template]] * 8)
    slots = np.flatnonzero(np.array(template) == -1)
    ids[:, slots] = np.where(ctx < 0, tokenizer.mask_token_id, np.asarray(symbols)[ctx])
    with torch.no_grad():
        logits = bert(torch.tensor(ids), attention_mask=torch.tensor([mask] * 8)).logits
    direct = torch.softmax(logits[:, slots][..., symbols].double(), -1).numpy()
    free = ctx < 0
    np.testing.assert_allclose(dense[free], direct[free], rtol=2e-5, atol=1e-9)


def test_hook_and_slicing_agree(bert, tokenizer):
    template, mask = _prompted(tokenizer, 5)
    kw = dict(template=template, attention_mask=mask, mask_id=tokenizer.mask_token_id)
    hooked = masked_lm(bert, **kw)
    sliced = masked_lm(lambda ids, **a: bert(ids, **a).logits, **kw)
    rng = np.random.default_rng(1)
    ctx = _random_contexts(6, 5, len(WORDS), rng)
    ctx[ctx == tokenizer.mask_token_id] = 5
    pos = _positions(ctx, rng)
    a, b = hooked.marginals(ctx, pos), sliced.marginals(ctx, pos)
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-9)
    valid = pos >= 0
    assert (a[valid][:, tokenizer.mask_token_id] == 0).all()     # the mask is never drawn
    np.testing.assert_allclose(a[valid].sum(axis=1), 1.0, rtol=1e-12)


@pytest.fixture(scope="module")
def big_bert():
    return _bert(30_522, seed=1)


def test_whole_vocabulary_at_real_size(big_bert):
    # BERT's vocabulary size; symbols=None: every token id except the mask is a symbol
    model = masked_lm(big_bert, template=[101, -1, -1, -1, -1, 102], mask_id=103)
    assert model.q == 30_522 > FLOAT32_ABOVE
    rng = np.random.default_rng(2)
    ctx = _random_contexts(16, 4, 30_522, rng)
    dense = model.marginals(ctx)
    assert dense.dtype == np.float32 and dense.shape == (16, 4, 30_522)
    free = ctx < 0
    np.testing.assert_allclose(dense[free].sum(axis=1, dtype=np.float64), 1.0, atol=1e-5)
    assert (dense[free][:, 103] == 0).all() and (dense[~free] == 0).all()
    pos = _positions(ctx, rng)
    part = model.marginals(ctx, pos)
    rows = np.arange(16)[:, None].repeat(pos.shape[1], axis=1)
    valid = pos >= 0
    np.testing.assert_array_equal(part[valid], dense[rows[valid], pos[valid]])
    res = fastspec.sample(model, n_samples=3, method="block", seed=0)
    assert res.samples.shape == (3, 4) and (res.samples != 103).all()


def test_random_network_is_refused_whatever_wraps_it(tokenizer):
    net = _bert(len(WORDS), hidden_dropout_prob=0.5).train()
    kw = dict(n=3, q=4, symbols=[5, 6, 7, 8], mask_id=4)
    with pytest.raises(ValueError, match=r"training mode .*Dropout.*module.eval\(\)"):
        masked_lm(net, **kw)
    # through a lambda or functools.partial the modules are not visible: the probe sees it
    with pytest.raises(ValueError, match=r"different answers to the same input"):
        masked_lm(lambda ids: net(ids), **kw)
    with pytest.raises(ValueError, match=r"different answers to the same input"):
        masked_lm(functools.partial(net, return_dict=False), **kw)
    # dropout probabilities all 0: training mode changes nothing, accepted
    quiet = _bert(len(WORDS), hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0).train()
    model = masked_lm(quiet, **kw)
    assert model.q == 4
    quiet.eval()
    net.eval()


def test_devices_are_checked_when_the_model_is_built(bert):
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"device 'cuda' cannot be used here"):
            masked_lm(bert, n=3, q=4, symbols=[5, 6, 7, 8], mask_id=4, device="cuda")
    with torch.device("meta"):
        ghost = transformers.BertForMaskedLM(bert.config)
    with pytest.raises(ValueError, match=r"'meta' device"):
        masked_lm(ghost.eval(), n=3, q=4, symbols=[5, 6, 7, 8], mask_id=4)


@pytest.mark.parametrize("kwargs, match", [
    (dict(template=[2, -1, -1, 3], n=3), r"n = 3 disagrees with template, which has 2 free"),
    (dict(template=[2, 3]), r"template has no free slot"),
    (dict(template=[2, -2, -1]), r"template\[1\] = -2"),
    (dict(template=[2, -1, 3], attention_mask=[1, 1]), r"attention_mask must be 3 zeros and ones"),
    (dict(n=2, symbols=[5, 99]), r"symbols must hold token ids < V = 16 .* got 99"),
    (dict(n=2, mask_id=99), r"mask_id must hold token ids < V = 16 .* got 99"),
    (dict(template=[2, -1, 30]), r"template must hold token ids < V = 16 .* got 30"),
])
def test_template_errors(bert, kwargs, match):
    args = dict(mask_id=4)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        masked_lm(bert, **args)


def _other_masked_lm(name):
    torch.manual_seed(0)
    v = 40
    if name == "distilbert":
        config = transformers.DistilBertConfig(
            vocab_size=v, dim=16, n_layers=1, n_heads=2, hidden_dim=32,
            max_position_embeddings=32, initializer_range=0.5)
        return transformers.DistilBertForMaskedLM(config).eval()
    if name == "roberta":
        config = transformers.RobertaConfig(
            vocab_size=v, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
            intermediate_size=32, max_position_embeddings=40, initializer_range=0.5)
        return transformers.RobertaForMaskedLM(config).eval()
    config = transformers.ModernBertConfig(
        vocab_size=v, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=32, initializer_range=0.5, pad_token_id=0,
        bos_token_id=1, eos_token_id=2, cls_token_id=1, sep_token_id=2, mask_token_id=3,
        global_attn_every_n_layers=1, local_attention=16)
    return transformers.ModernBertForMaskedLM(config).eval()


@pytest.mark.parametrize("name", ["distilbert", "roberta", "modernbert"])
def test_other_masked_lms_hook_slicing_and_dense_agree(name):
    net = _other_masked_lm(name)
    kw = dict(template=[1, 9, -1, -1, -1, -1, 2], mask_id=3, symbols=[5, 6, 7, 8], max_rows=3)
    hooked = masked_lm(net, **kw)
    sliced = masked_lm(lambda ids: net(ids).logits, **kw)
    rng = np.random.default_rng(0)
    ctx = _random_contexts(7, 4, 4, rng)
    pos = _positions(ctx, rng)
    a, b, dense = hooked.marginals(ctx, pos), sliced.marginals(ctx, pos), hooked.marginals(ctx)
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-9)
    rows = np.arange(7)[:, None].repeat(pos.shape[1], axis=1)
    valid = pos >= 0
    np.testing.assert_allclose(a[valid], dense[rows[valid], pos[valid]], rtol=2e-5, atol=1e-9)
    assert np.ptp(a[valid], axis=1).max() > 0.1          # not uniform: the test can fail
