"""Print the p-values and one-step errors quoted in docs/TORCH.md ("How it is tested").

Uses the tests' own models, seeds and statistics; run from the repository root:
``python tests/report_torch_laws.py`` (needs the test extra; about a minute).
"""
import os
import sys
import tempfile
sys.path.insert(0, "tests")
import numpy as np
import test_real_diffusers as D
import test_from_sigmas as S
import test_real_transformers as T
from scipy import stats
import diffusers
import fastspec
import torch
import transformers
from fastspec import schedules
cache = {}
def ref(name, n):
    if (name, n) not in cache:
        sch, kw = D._scheduler(name); cache[name, n] = D._diffusers_loop(sch, kw, n, D.N_LAW, seed=1)
    return cache[name, n]
for name, method in [("ddpm-default","block"),("ddpm-default","sequential"),("ddpm-trailing-large","token"),("ddpm-linspace-threshold-v","block"),("ddpm-zero-snr","srs"),("ddim-eta1","block"),("ddim-eta-half-clipped","token"),("ddim-zero-snr","block")]:
    print("diffusers", name, method, "p = %.3g" % D._ks_pvalue(D._fastspec(name, 10, method), ref(name, 10)))
sch, _ = D._scheduler("ddpm-default")
print("diffusers negative control (schedules.ddpm vs ddpm-default) p = %.3g" % D._ks_pvalue(D._fastspec("ddpm-default", 10, "block", sched=schedules.ddpm(sch.alphas_cumprod, 10)), ref("ddpm-default", 10)))
# one-step worst errors
for name in D.CONFIGS:
    scheduler, step_kw = D._scheduler(name)
    sched = D.from_diffusers(scheduler, 10, **step_kw); scheduler.set_timesteps(10)
    rng = np.random.default_rng(0); k = 6
    answers = torch.as_tensor(rng.normal(0.3, 1.5, size=(k,) + D.SHAPE))
    model = D.denoiser(lambda x, t: answers[:x.shape[0]], shape=D.SHAPE, scheduler=scheduler)
    worst_m = worst_c = 0.0
    for j, t in enumerate(scheduler.timesteps):
        x = torch.as_tensor(rng.normal(0.0, 1.0, size=(k,) + D.SHAPE))
        d = model.denoise(x.numpy() / sched.s[j], np.full(k, sched.sigma[j]))
        mean = sched.a[j] * x.numpy() + sched.b[j] * d
        if isinstance(scheduler, diffusers.DDIMScheduler):
            z = D._diffusers_step(scheduler, step_kw, answers, t, x, torch.zeros_like(x)); o = D._diffusers_step(scheduler, step_kw, answers, t, x, torch.ones_like(x))
            gm, gc = z.numpy(), (o - z).numpy()
        else:
            one = D._diffusers_step(scheduler, step_kw, answers, t, x, 1).numpy(); two = D._diffusers_step(scheduler, step_kw, answers, t, x, 2).numpy()
            n1 = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=x.dtype).numpy(); n2 = torch.randn(x.shape, generator=torch.Generator().manual_seed(2), dtype=x.dtype).numpy()
            gc = (one - two) / (n1 - n2); gm = one - gc * n1
        worst_m = max(worst_m, np.abs(mean - gm).max()); worst_c = max(worst_c, np.abs(gc - sched.c[j]).max())
    print("one step", name, "worst |mean diff| %.2g, worst |c diff| %.2g" % (worst_m, worst_c))
refs = {n: S.euler_ancestral(sig, S.N_LAW, 2, 1.0, np.random.default_rng(1)) for n, sig in S.SIGMAS.items()}
def sp(got, r):
    return min(1.0, 2 * min(stats.ks_2samp(got[:, 0], r[:, 0]).pvalue, stats.ks_2samp(got.sum(axis=1), r.sum(axis=1)).pvalue))
m = fastspec.DiffusionModel(S.denoise, dim=2)
for n in S.SIGMAS:
    for method in ["sequential", "token", "block", "srs"]:
        got = fastspec.sample(m, schedule=S.from_sigmas(S.SIGMAS[n]), n_samples=S.N_LAW, method=method, seed=2).samples
        print("from_sigmas", n, method, "p = %.3g" % sp(got, refs[n]))
got = fastspec.sample(m, schedule=S.from_sigmas(S.SIGMAS["karras"], eta=0.5), n_samples=S.N_LAW, method="block", seed=2).samples
print("from_sigmas negative control eta=0.5 p = %.3g" % sp(got, refs["karras"]))
# the tiny UNet (test_unet_chain_law_equals_diffusers_loop: 600 samples, 6 steps)
unet = D._tiny_unet()
scheduler = diffusers.DDPMScheduler()
n, n_steps = 600, 6
r = D._unet_loop(unet, scheduler, n_steps, n, seed=3)
def up(a):
    s = [stats.ks_2samp(a[:, i], r[:, i]).pvalue for i in (0, 27)]
    s.append(stats.ks_2samp(a.mean(axis=1), r.mean(axis=1)).pvalue)
    return min(1.0, 3 * min(s))
model = D.denoiser(lambda x, t: unet(x, t, return_dict=False), shape=(1, 8, 8), scheduler=scheduler)
got = fastspec.sample(model, schedule=D.from_diffusers(scheduler, n_steps), n_samples=n, method="block", seed=4).samples.reshape(n, -1)
old = D.denoiser(unet, prediction="eps", alphas_cumprod=scheduler.alphas_cumprod)
bad = fastspec.sample(old, schedule=schedules.ddpm(scheduler.alphas_cumprod, n_steps), n_samples=n, method="block", seed=4).samples.reshape(n, -1)
print("UNet chain p = %.3g, negative control (schedules.ddpm) p = %.3g" % (up(got), up(bad)))
d = tempfile.mkdtemp(); open(os.path.join(d, "vocab.txt"), "w").write("\n".join(T.WORDS) + "\n")
tok = transformers.BertTokenizer(os.path.join(d, "vocab.txt"))
bert = T._bert(len(T.WORDS))
template, mask = T._prompted(tok, 3)
symbols = tok.convert_tokens_to_ids(["sat", "ran", "on", "red"])
model = T.masked_lm(bert, template=template, attention_mask=mask, symbols=symbols, mask_id=tok.mask_token_id)
law = T._sequential_law(bert, template, mask, symbols, tok.mask_token_id)
bare = T._sequential_law(bert, [tok.cls_token_id, -1, -1, -1, tok.sep_token_id], [1]*5, symbols, tok.mask_token_id)
for method in ["sequential", "token", "block", "srs"]:
    res = fastspec.sample(model, n_samples=20_000, order=[0, 1, 2], method=method, seed=0)
    print(method, "p = %.3g" % T._chi2(res.samples, 4, law), "negative control (law without the prompt) p = %.3g" % T._chi2(res.samples, 4, bare), "rounds", res.stats.rounds)
