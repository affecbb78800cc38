"""PyTorch baseline of `deno task bench`: the same Matryoshka SAE training step as our GPU path.

Per step: sample a batch of 128 from the tree (vectorised Bernoulli draws level by level, each
node gated by its parent; mutually exclusive children by a multinomial draw), embed it with the
toy model (x = f @ E), encode (x - b_dec) @ W_enc + b_enc, ReLU, then for every loss term of the
SAE's loss plan (src/sae/loss_plan.ts, sent by the bench) the prefix reconstruction
r = acts[:, :end] @ W_dec[:end] + b_dec (latents below `detachBelow` detached), the loss
reconMult * mean_b sum_d (r - x)^2 + l1Mult * mean_b sum_j acts_j * ||W_dec[j]||, then backward,
global-norm clipping (clip_grad_norm_, max norm 1) and Adam (betas (0, 0.999), eps 1e-8).

Two ways to train M SAEs:
  loop     one SAE at a time, each with its own torch.optim.Adam and its own fresh batch per
           step, as the researchers do today (train_toy_sae in a Python loop);
  batched  all M SAEs as [M, ...] tensors (batched matmul), one shared batch per step, the
           gradient norm clipped per model, one Adam over the stacked tensors (Adam is
           element-wise, so this equals M separate optimisers stepped together).

Protocol: one JSON request per line on stdin, one JSON response per line on stdout, until EOF.
The first line written is {"ok": true, "hello": {versions}}. Requests:
  {"task": "throughput", "variant": "loop"|"batched", "world": W, "sae": S, "models": M,
   "batch": B, "warmupSteps": n, "repetitions": r, "repSeconds": t, "seed": s}
     -> {"ok": true, "reps": [{"saeSteps": k, "seconds": t}], "modelsTouched": m}
  {"task": "steps", "world": W, "sae": S, "batch": B, "steps": n, "warmupSteps": w,
   "initParams": [...] | null, "seed": s}
     -> {"ok": true, "seconds": t, "steps": n}    (one SAE, the loop variant; for extrapolation)
  {"task": "check", "variant": "loop"|"batched", "sae": S, "x": [steps*B*D], "batch": B,
   "params": [...]}
     -> {"ok": true, "losses": [[l, ...] per step], "params": [[...] per model]}
     (training steps on the given batches; "batched" trains two copies of the model together)
  {"task": "sample", "world": W, "batch": B, "seed": s}
     -> {"ok": true, "features": [B*nFeatures]}    (one batch of feature values, for tests)
  W = {"dIn": D, "nFeatures": F, "embedding": [F*D], "nodes": [{"parent": p|null,
       "activeProb": q, "isReadOut": bool, "index": i|null, "mutuallyExclusiveChildren": bool,
       "magnitudeMean": m, "magnitudeStd": s}] in depth-first pre-order}
  S = {"dIn": D, "dSae": S, "applyBDecToInput": bool, "l1ByDecoderNorm": bool,
       "terms": [{"end", "detachBelow", "reconMult", "l1Start", "l1End", "l1Mult"}],
       "adam": {"lr", "beta1", "beta2", "eps", "clipNorm"}}
Parameters use the flat layout of src/sae/layout.ts: W_enc [D][S], b_enc [S], W_dec [S][D],
b_dec [D]. Errors come back as {"ok": false, "error": message}.

Run with Debian's python3-torch: /usr/bin/python3 bench/torch_sae.py [--threads N] (default 2).
"""

import json
import math
import platform
import sys
import time

import torch

THREADS = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 2
torch.set_num_threads(THREADS)


class TreeSampler:
    """Samples [B, nFeatures] feature values from a tree given as a pre-order node list."""

    def __init__(self, world):
        nodes = world["nodes"]
        self.n_nodes = len(nodes)
        self.n_features = world["nFeatures"]
        depth = [0] * len(nodes)
        for n, node in enumerate(nodes):
            if node["parent"] is not None:
                depth[n] = depth[node["parent"]] + 1
        self.root_prob = float(nodes[0]["activeProb"])
        self.levels = []
        for d in range(1, max(depth) + 1):
            idx = [n for n in range(len(nodes)) if depth[n] == d]
            free = [n for n in idx if not nodes[nodes[n]["parent"]]["mutuallyExclusiveChildren"]]
            self.levels.append({
                "nodes": torch.tensor(idx, dtype=torch.long),
                "parents": torch.tensor([nodes[n]["parent"] for n in idx], dtype=torch.long),
                "free": torch.tensor(free, dtype=torch.long),
                "free_probs": torch.tensor([nodes[n]["activeProb"] for n in free]),
                "exclusive": [
                    (
                        torch.tensor(node["childNodes"], dtype=torch.long),
                        torch.tensor([nodes[c]["activeProb"] for c in node["childNodes"]]),
                    )
                    for node in self._exclusive_parents(nodes, idx)
                ],
            })
        readout = [n for n, node in enumerate(nodes) if node["isReadOut"]]
        order = sorted(readout, key=lambda n: nodes[n]["index"])
        self.readout = torch.tensor(order, dtype=torch.long)
        self.mean = torch.tensor([float(nodes[n]["magnitudeMean"]) for n in order])
        self.std = torch.tensor([float(nodes[n]["magnitudeStd"]) for n in order])
        self.any_std = bool((self.std > 0).any())
        self.embedding = torch.tensor(world["embedding"], dtype=torch.float32).reshape(
            self.n_features, world["dIn"]
        )

    @staticmethod
    def _exclusive_parents(nodes, level):
        """Mutually exclusive parents of this level's nodes, each with its children's node ids."""
        parents = sorted({nodes[n]["parent"] for n in level})
        out = []
        for p in parents:
            if nodes[p]["mutuallyExclusiveChildren"]:
                out.append({"childNodes": [n for n in level if nodes[n]["parent"] == p]})
        return out

    @torch.no_grad()
    def features(self, batch):
        active = torch.zeros(batch, self.n_nodes, dtype=torch.bool)
        active[:, 0] = torch.rand(batch) < self.root_prob
        for level in self.levels:
            own = torch.zeros(batch, self.n_nodes, dtype=torch.bool)
            if len(level["free"]) > 0:
                own[:, level["free"]] = torch.rand(batch, len(level["free"])) < level["free_probs"]
            for children, weights in level["exclusive"]:
                chosen = torch.multinomial(weights, batch, replacement=True)
                own[:, children] = chosen.unsqueeze(1) == torch.arange(len(children))
            nodes = level["nodes"]
            active[:, nodes] = own[:, nodes] & active[:, level["parents"]]
        on = active[:, self.readout].float()
        if not self.any_std:
            return on * self.mean
        magnitude = torch.abs(self.mean + self.std * torch.randn(batch, self.n_features))
        return on * magnitude

    @torch.no_grad()
    def sample(self, batch):
        """x = f @ E: [B, dIn]."""
        return self.features(batch) @ self.embedding


def split_params(flat, d_in, d_sae):
    """The four tensors of one model from its flat block (src/sae/layout.ts)."""
    flat = torch.as_tensor(flat, dtype=torch.float32)
    a = d_in * d_sae
    return [
        flat[:a].reshape(d_in, d_sae).clone(),
        flat[a:a + d_sae].clone(),
        flat[a + d_sae:a + d_sae + d_sae * d_in].reshape(d_sae, d_in).clone(),
        flat[a + d_sae + d_sae * d_in:].clone(),
    ]


def random_params(d_in, d_sae, models, generator):
    """SAELens-style init: W_dec ~ U(+-sqrt(6/dIn)), W_enc = W_dec^T, biases 0; [M, ...] each."""
    bound = math.sqrt(6.0 / d_in)
    w_dec = (torch.rand(models, d_sae, d_in, generator=generator) * 2 - 1) * bound
    return [
        w_dec.transpose(1, 2).contiguous(),
        torch.zeros(models, d_sae),
        w_dec,
        torch.zeros(models, d_in),
    ]


def sae_loss(params, x, sae):
    """The loss plan's total: a scalar for 2-D parameters, [M] for stacked [M, ...] ones."""
    w_enc, b_enc, w_dec, b_dec = params
    x_in = x - b_dec.unsqueeze(-2) if sae["applyBDecToInput"] else x
    acts = torch.relu(x_in @ w_enc + b_enc.unsqueeze(-2))
    weight = w_dec.norm(dim=-1) if sae["l1ByDecoderNorm"] else None
    total = 0
    for term in sae["terms"]:
        end, det = term["end"], term["detachBelow"]
        if term["reconMult"] != 0:
            r = acts[..., det:end] @ w_dec[..., det:end, :] + b_dec.unsqueeze(-2)
            if det > 0:
                r = r + (acts[..., :det] @ w_dec[..., :det, :]).detach()
            total = total + term["reconMult"] * ((r - x) ** 2).sum(-1).mean(-1)
        lo, hi = term["l1Start"], term["l1End"]
        if term["l1Mult"] != 0 and hi > lo:
            a = acts[..., lo:hi]
            if weight is not None:
                a = a * weight[..., lo:hi].unsqueeze(-2)
            total = total + term["l1Mult"] * a.sum(-1).mean(-1)
    return total


def make_adam(params, adam):
    return torch.optim.Adam(
        params, lr=adam["lr"], betas=(adam["beta1"], adam["beta2"]), eps=adam["eps"]
    )


class OneSae:
    """One SAE trained as a researcher does: its own Adam, clip_grad_norm_, its own batches."""

    def __init__(self, params, sae):
        self.params = [p.requires_grad_(True) for p in params]
        self.sae = sae
        self.opt = make_adam(self.params, sae["adam"])

    def step(self, x):
        loss = sae_loss(self.params, x, self.sae)
        self.opt.zero_grad()
        loss.backward()
        if self.sae["adam"]["clipNorm"] > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.sae["adam"]["clipNorm"])
        self.opt.step()
        return loss


class BatchedSaes:
    """M SAEs as stacked [M, ...] tensors: batched matmuls, per-model clipping, one Adam."""

    def __init__(self, params, sae):
        self.params = [p.requires_grad_(True) for p in params]
        self.sae = sae
        self.opt = make_adam(self.params, sae["adam"])

    def step(self, x):
        losses = sae_loss(self.params, x, self.sae)
        self.opt.zero_grad()
        losses.sum().backward()
        clip = self.sae["adam"]["clipNorm"]
        if clip > 0:
            with torch.no_grad():
                sq = sum(p.grad.pow(2).flatten(1).sum(1) for p in self.params)
                coef = (clip / (sq.sqrt() + 1e-6)).clamp(max=1.0)
                for p in self.params:
                    p.grad.mul_(coef.view(-1, *([1] * (p.dim() - 1))))
        self.opt.step()
        return losses


def throughput(req):
    sae, batch, models = req["sae"], req["batch"], req["models"]
    sampler = TreeSampler(req["world"])
    gen = torch.Generator().manual_seed(req.get("seed", 0))
    torch.manual_seed(req.get("seed", 0))
    d_in, d_sae = sae["dIn"], sae["dSae"]
    reps = []
    if req["variant"] == "batched":
        saes = BatchedSaes(random_params(d_in, d_sae, models, gen), sae)
        for _ in range(req["warmupSteps"]):
            saes.step(sampler.sample(batch))
        for _ in range(req["repetitions"]):
            steps = 0
            start = time.perf_counter()
            while True:
                saes.step(sampler.sample(batch))
                steps += 1
                if time.perf_counter() - start >= req["repSeconds"]:
                    break
            reps.append({"saeSteps": steps * models, "seconds": time.perf_counter() - start})
        return {"reps": reps, "modelsTouched": models}

    # One SAE at a time; models are built when first reached (M may not all fit in the time cap).
    built = {}

    def model(m):
        if m not in built:
            built[m] = OneSae([p[0] for p in random_params(d_in, d_sae, 1, gen)], sae)
        return built[m]

    for _ in range(req["warmupSteps"]):
        model(0).step(sampler.sample(batch))
    # Steps per model per visit: enough that a rep visits every model once when time allows.
    start = time.perf_counter()
    probe = 0
    while probe < 20 and time.perf_counter() - start < req["repSeconds"] / 10:
        model(0).step(sampler.sample(batch))
        probe += 1
    per_step = (time.perf_counter() - start) / probe
    per_visit = max(1, int(req["repSeconds"] / per_step / models))
    # Build (untimed) the models a repetition is expected to reach, plus a margin.
    for m in range(min(models, int(req["repSeconds"] / per_step / per_visit * 1.5) + 2)):
        model(m)
    reached = 0
    for _ in range(req["repetitions"]):
        steps = 0
        start = time.perf_counter()
        done = False
        for m in range(models):
            sae_m = model(m)
            reached = max(reached, m + 1)
            for _ in range(per_visit):
                sae_m.step(sampler.sample(batch))
                steps += 1
                if time.perf_counter() - start >= req["repSeconds"]:
                    done = True
                    break
            if done:
                break
        reps.append({"saeSteps": steps, "seconds": time.perf_counter() - start})
    return {"reps": reps, "modelsTouched": reached}


def steps(req):
    sae, batch = req["sae"], req["batch"]
    sampler = TreeSampler(req["world"])
    torch.manual_seed(req.get("seed", 0))
    gen = torch.Generator().manual_seed(req.get("seed", 0))
    if req.get("initParams") is not None:
        params = split_params(req["initParams"], sae["dIn"], sae["dSae"])
    else:
        params = [p[0] for p in random_params(sae["dIn"], sae["dSae"], 1, gen)]
    one = OneSae(params, sae)
    for _ in range(req["warmupSteps"]):
        one.step(sampler.sample(batch))
    start = time.perf_counter()
    for _ in range(req["steps"]):
        one.step(sampler.sample(batch))
    return {"seconds": time.perf_counter() - start, "steps": req["steps"]}


def check(req):
    sae, batch = req["sae"], req["batch"]
    params = split_params(req["params"], sae["dIn"], sae["dSae"])
    if req.get("variant", "loop") == "batched":
        saes = BatchedSaes([torch.stack([p, p.clone()]) for p in params], sae)
    else:
        saes = OneSae(params, sae)
    xs = torch.tensor(req["x"], dtype=torch.float32).reshape(-1, batch, sae["dIn"])
    losses = [saes.step(x).detach().flatten().tolist() for x in xs]
    flat = [torch.cat([p.detach()[m].flatten() for p in saes.params]).tolist()
            for m in range(2)] if isinstance(saes, BatchedSaes) else [
        torch.cat([p.detach().flatten() for p in saes.params]).tolist()]
    return {"losses": losses, "params": flat}


def sample(req):
    torch.manual_seed(req.get("seed", 0))
    return {"features": TreeSampler(req["world"]).features(req["batch"]).flatten().tolist()}


TASKS = {"throughput": throughput, "steps": steps, "check": check, "sample": sample}


def main():
    hello = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
    }
    print(json.dumps({"ok": True, "hello": hello}), flush=True)
    while True:
        line = sys.stdin.readline()
        if not line:
            break
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            task = TASKS.get(req.get("task"))
            if task is None:
                raise ValueError(f"unknown task {req.get('task')!r}; tasks: {', '.join(TASKS)}")
            out = {"ok": True, **task(req)}
        except Exception as error:  # reported to the bench, which prints it in the cell
            out = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
