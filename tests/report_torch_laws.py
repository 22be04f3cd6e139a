"""Print the p-values and one-step errors quoted in docs/TORCH.md ("How it is tested").

It uses the tests' own models, seeds and statistics. Run it from the repository
root, with the test extra installed (about a minute):

    python tests/report_torch_laws.py
"""

import os
import sys
import tempfile

import numpy as np
from scipy import stats
from fastspec._rules import CONCRETE_METHODS

if __name__ == "__main__":
    # imported only when run: pytest's --doctest-modules imports this file too, and the
    # suite must collect without the optional libraries
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import diffusers
    import torch
    import transformers

    import fastspec
    from fastspec import schedules

    import test_from_sigmas as S
    import test_real_diffusers as D
    import test_real_transformers as T

CHAINS = [("ddpm-default", "block"), ("ddpm-default", "sequential"), ("ddpm-default", "token"),
          ("ddpm-default", "srs"),
          ("ddpm-trailing-large", "token"), ("ddpm-linspace-threshold-v", "block"),
          ("ddpm-zero-snr", "srs"), ("ddim-eta1", "block"), ("ddim-eta-half-clipped", "token"),
          ("ddim-zero-snr", "block")]


def diffusers_chains():
    refs = {}
    for name, method in CHAINS:
        if name not in refs:
            scheduler, step_kw = D._scheduler(name)
            refs[name] = D._diffusers_loop(scheduler, step_kw, 10, D.N_LAW, seed=1)
        p = D._ks_pvalue(D._fastspec(name, 10, method), refs[name])
        print(f"diffusers chain {name}, {method}: p = {p:.3g}")
    scheduler, _ = D._scheduler("ddpm-default")
    old = schedules.ddpm(scheduler.alphas_cumprod, 10)
    p = D._ks_pvalue(D._fastspec("ddpm-default", 10, "block", sched=old), refs["ddpm-default"])
    print(f"diffusers negative control (schedules.ddpm against ddpm-default): p = {p:.3g}")


def _scheduler_step(scheduler, step_kw, answers, t, x):
    """diffusers' step mean and noise scale (as in test_one_step_equals_scheduler_step)."""
    if isinstance(scheduler, diffusers.DDIMScheduler):
        zero = D._diffusers_step(scheduler, step_kw, answers, t, x, torch.zeros_like(x))
        ones = D._diffusers_step(scheduler, step_kw, answers, t, x, torch.ones_like(x))
        return zero.numpy(), (ones - zero).numpy()
    one = D._diffusers_step(scheduler, step_kw, answers, t, x, 1).numpy()
    two = D._diffusers_step(scheduler, step_kw, answers, t, x, 2).numpy()
    noise = [torch.randn(x.shape, generator=torch.Generator().manual_seed(s),
                         dtype=x.dtype).numpy() for s in (1, 2)]
    scale = (one - two) / (noise[0] - noise[1])
    return one - scale * noise[0], scale


def diffusers_one_step():
    for name in D.CONFIGS:
        scheduler, step_kw = D._scheduler(name)
        sched = D.from_diffusers(scheduler, 10, **step_kw)
        scheduler.set_timesteps(10)
        rng = np.random.default_rng(0)
        k = 6
        answers = torch.as_tensor(rng.normal(0.3, 1.5, size=(k,) + D.SHAPE))
        model = D.denoiser(lambda x, t: answers[:x.shape[0]], shape=D.SHAPE,
                           scheduler=scheduler)
        worst_mean = worst_c = 0.0
        for j, t in enumerate(scheduler.timesteps):
            x = torch.as_tensor(rng.normal(0.0, 1.0, size=(k,) + D.SHAPE))
            d = model.denoise(x.numpy() / sched.s[j], np.full(k, sched.sigma[j]))
            mean, scale = _scheduler_step(scheduler, step_kw, answers, t, x)
            worst_mean = max(worst_mean, np.abs(sched.a[j] * x.numpy() + sched.b[j] * d
                                                - mean).max())
            worst_c = max(worst_c, np.abs(scale - sched.c[j]).max())
        print(f"one step {name}: worst mean error {worst_mean:.2g}, worst noise-scale error "
              f"{worst_c:.2g}")


def unet_chain():
    unet = D._tiny_unet()
    scheduler = diffusers.DDPMScheduler()
    n, n_steps = 600, 6          # as test_unet_chain_law_equals_diffusers_loop
    ref = D._unet_loop(unet, scheduler, n_steps, n, seed=3)

    def pvalue(a):
        p = [stats.ks_2samp(a[:, i], ref[:, i]).pvalue for i in (0, 27)]
        p.append(stats.ks_2samp(a.mean(axis=1), ref.mean(axis=1)).pvalue)
        return min(1.0, 3 * min(p))

    model = D.denoiser(lambda x, t: unet(x, t, return_dict=False), shape=(1, 8, 8),
                       scheduler=scheduler)
    got = fastspec.sample(model, schedule=D.from_diffusers(scheduler, n_steps), n_samples=n,
                          method="block", seed=4).samples.reshape(n, -1)
    old = D.denoiser(unet, prediction="eps", alphas_cumprod=scheduler.alphas_cumprod)
    bad = fastspec.sample(old, schedule=schedules.ddpm(scheduler.alphas_cumprod, n_steps),
                          n_samples=n, method="block", seed=4).samples.reshape(n, -1)
    print(f"UNet chain: p = {pvalue(got):.3g}; negative control (schedules.ddpm): "
          f"p = {pvalue(bad):.3g}")


def sigmas_chains():
    model = fastspec.DiffusionModel(S.denoise, dim=2)
    refs = {name: S.euler_ancestral(sig, S.N_LAW, 2, 1.0, np.random.default_rng(1))
            for name, sig in S.SIGMAS.items()}

    def pvalue(got, ref):
        return min(1.0, 2 * min(stats.ks_2samp(got[:, 0], ref[:, 0]).pvalue,
                                stats.ks_2samp(got.sum(axis=1), ref.sum(axis=1)).pvalue))

    for name, sig in S.SIGMAS.items():
        for method in CONCRETE_METHODS:
            got = fastspec.sample(model, schedule=S.from_sigmas(sig), n_samples=S.N_LAW,
                                  method=method, seed=2).samples
            print(f"from_sigmas {name}, {method}: p = {pvalue(got, refs[name]):.3g}")
    got = fastspec.sample(model, schedule=S.from_sigmas(S.SIGMAS["karras"], eta=0.5),
                          n_samples=S.N_LAW, method="block", seed=2).samples
    print(f"from_sigmas negative control (eta = 0.5): p = {pvalue(got, refs['karras']):.3g}")


def masked_lm_prompt():
    folder = tempfile.mkdtemp()
    path = os.path.join(folder, "vocab.txt")
    with open(path, "w") as f:
        f.write("\n".join(T.WORDS) + "\n")
    tok = transformers.BertTokenizer(path)
    bert = T._bert(len(T.WORDS))
    template, mask = T._prompted(tok, 3)
    symbols = tok.convert_tokens_to_ids(["sat", "ran", "on", "red"])
    model = T.masked_lm(bert, template=template, attention_mask=mask, symbols=symbols,
                        mask_id=tok.mask_token_id)
    law = T._sequential_law(bert, template, mask, symbols, tok.mask_token_id)
    bare = T._sequential_law(bert, [tok.cls_token_id, -1, -1, -1, tok.sep_token_id], [1] * 5,
                             symbols, tok.mask_token_id)
    for method in CONCRETE_METHODS:
        res = fastspec.sample(model, n_samples=20_000, order=[0, 1, 2], method=method, seed=0)
        print(f"masked LM prompt, {method}: p = {T._chi2(res.samples, 4, law):.3g}; against "
              f"the law without the prompt p = {T._chi2(res.samples, 4, bare):.3g}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    diffusers_chains()
    diffusers_one_step()
    unet_chain()
    sigmas_chains()
    masked_lm_prompt()
