"""afford-motion CDM re-implementation vs the reference numbers in $GOLDEN_DIR/cdm (see its README for tolerances).

Architectures, steps, respacings and checkpoint paths come from the fixture's config.json.
"""
import json

import numpy as np
import pytest
import torch

from golden import GOLDEN_DIR, assert_close, cases, config, tensor
from models.cdm import CDM
from models.cdm_checkpoints import find_checkpoint, load_cdm
from models.checkpoints import CheckpointError
from models.contact import contact_to_distance, dataset_contact, denormalize_contact, model_output_to_distance
from models.gaussian_diffusion import GaussianDiffusion, cosine_betas
from models.hilbert import encode, hilbert_order, quantize
from models.mamba import Mamba, bidirectional_residual, selective_scan, selective_scan_loop

CFG = config("cdm")
ROOT = GOLDEN_DIR / "cdm"
ARCH_CFG = {"pointmamba": CFG["model_pointmamba"]["arch_pointmamba"],
            "perceiver": CFG["model_perceiver"]["arch_perceiver"]}
ARCH_NAME = {"pointmamba": "PointMamba", "perceiver": "Perceiver"}


def load(key, arch_key=None):
    arch_key = arch_key or key
    model_cfg = CFG[f"model_{arch_key}"]
    return load_cdm(ROOT / CFG["checkpoints"][key], arch=ARCH_NAME[arch_key], arch_cfg=ARCH_CFG[arch_key],
                    contact_dim=model_cfg["input_feats"], time_emb_dim=model_cfg["time_emb_dim"],
                    text_feat_dim=CFG["derived"]["text_feat_dim"], point_feat_dim=CFG["derived"]["point_feat_dim"])


@pytest.fixture(scope="module")
def models():
    return {"pointmamba": load("pointmamba").model, "perceiver": load("perceiver").model,
            "pointmamba_ddp": load("pointmamba_ddp", "pointmamba").model}


def model_fn(model, c):
    text, xyz = tensor(c["c_text"]), tensor(c["c_pc_xyz"])
    return lambda x, t: model(x, t, c_text=text, c_pc_xyz=xyz)


# -- Hilbert ordering (case 8) ----------------------------------------------------------------------------------

def test_hilbert_codes_exact():
    c = cases("cdm", "hilbert_cases.npz")
    for prefix in ("", "spec_"):
        codes = encode(tensor(c[f"{prefix}locs"]), int(c["num_dims"]), int(c["num_bits"]))
        np.testing.assert_array_equal(codes.numpy(), c[f"{prefix}codes"], err_msg=f"{prefix}codes")


@pytest.mark.parametrize("prefix", ["pipe", "pipe_odd", "ties"])
def test_hilbert_pipeline_exact(prefix):
    c = cases("cdm", "hilbert_cases.npz")
    xyz = tensor(c[f"{prefix}_xyz"])
    xyz_int = quantize(xyz, int(c["num_bits"]))
    np.testing.assert_array_equal(xyz_int.numpy(), c[f"{prefix}_xyz_int"])
    np.testing.assert_array_equal(encode(xyz_int).numpy(), c[f"{prefix}_codes"])
    sort_idx, unsort_idx = hilbert_order(xyz)
    if prefix == "ties":  # equal codes: any order of the tied points is valid; ours keeps input order
        codes = c["ties_codes"]
        assert (np.diff(np.take_along_axis(codes, sort_idx.numpy(), 1), axis=1) >= 0).all()
    else:
        np.testing.assert_array_equal(sort_idx.numpy(), c[f"{prefix}_sort_idx"])
        np.testing.assert_array_equal(unsort_idx.numpy(), c[f"{prefix}_unsort_idx"])
    np.testing.assert_array_equal(torch.gather(sort_idx, 1, unsort_idx).numpy(),
                                  np.broadcast_to(np.arange(xyz.shape[1]), sort_idx.shape))


def test_hilbert_spec_pipeline_example():
    c = cases("cdm", "hilbert_cases.npz")
    np.testing.assert_array_equal(hilbert_order(tensor(c["spec_pipeline_xyz"]))[0].numpy(),
                                  c["spec_pipeline_sort_idx"])


# -- CDM forward (case 9) ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["pointmamba", "perceiver", "pointmamba_ddp"])
def test_cdm_forward(models, key):
    model, c = models[key], cases("cdm", "cdm_forward_cases.npz")
    ref = key.replace("_ddp", "")
    x, t, text, xyz = (tensor(c[k]) for k in ("x", "timesteps", "c_text", "c_pc_xyz"))
    with torch.no_grad():
        time_emb = model.timestep_embedder(t)
        assert_close(time_emb, c[f"{ref}_time_emb"], 1e-4, 1e-4, "time embedding")
        hidden = model.contact_model(x, None, text[:, None], time_emb, xyz)
        assert_close(hidden, c[f"{ref}_contact_model_out"], 1e-4, 1e-4, "contact_model out")
        assert_close(model(x, t, c_text=text, c_pc_xyz=xyz), c[f"{ref}_out"], 1e-4, 1e-4, "CDM out")


def test_pointmamba_intermediates(models):
    encoder, c = models["pointmamba"].contact_model, cases("cdm", "cdm_forward_cases.npz")
    x, text, xyz = tensor(c["x"]), tensor(c["c_text"])[:, None], tensor(c["c_pc_xyz"])
    with torch.no_grad():
        time_emb = models["pointmamba"].timestep_embedder(tensor(c["timesteps"]))
        assert_close(encoder.embed(x, None, text, time_emb, xyz), c["pointmamba_embedding_out"], 1e-4, 1e-4,
                     "embedding")
        np.testing.assert_array_equal(hilbert_order(xyz)[0].numpy(), c["hilbert_sort_idx"])
        mixer = encoder.layers[0].mamba
        for scan in (selective_scan, selective_scan_loop):
            assert_close(mixer(tensor(c["mamba_layer0_in"]), scan=scan), c["mamba_layer0_out"], 1e-4, 1e-4,
                         f"mamba layer 0 ({scan.__name__})")


def test_ddp_checkpoint_loads_the_same_weights(models):
    plain, ddp = models["pointmamba"].state_dict(), models["pointmamba_ddp"].state_dict()
    assert all(torch.equal(plain[k], ddp[k]) for k in plain)
    raw = torch.load(ROOT / CFG["checkpoints"]["pointmamba_ddp"], weights_only=True)
    assert all(k.startswith("module.") for k in raw)


# -- schedules and single diffusion operations (cases 10, 11) ---------------------------------------------------

def test_cosine_schedules():
    c = cases("cdm", "schedule_cases.npz")
    for steps in (500, 1000):
        betas = cosine_betas(steps)
        np.testing.assert_allclose(betas, c[f"cosine{steps}_betas"], rtol=1e-12)
        np.testing.assert_allclose(np.cumprod(1 - betas), c[f"cosine{steps}_alphas_cumprod"], rtol=1e-12)


def test_diffusion_quantities():
    c = cases("cdm", "schedule_cases.npz")
    diffusion = GaussianDiffusion(CFG["diffusion_main"]["steps"], "cosine", model_mean_type="start_x")
    for key in c:
        if key.startswith("diff500_"):
            np.testing.assert_allclose(getattr(diffusion, key[len("diff500_"):]), c[key], rtol=1e-12, err_msg=key)


@pytest.mark.parametrize("case", CFG["schedule_spaced_cases"], ids=lambda case: case["key_prefix"])
def test_respaced_schedules(case):
    c, prefix = cases("cdm", "schedule_cases.npz"), case["key_prefix"]
    assert int(c[f"{prefix}_steps"]) == case["steps"]
    diffusion = GaussianDiffusion(case["steps"], "cosine", "start_x", respacing=case["respacing"])
    np.testing.assert_array_equal(diffusion.timestep_map, c[f"{prefix}_timestep_map"])
    np.testing.assert_allclose(diffusion.betas, c[f"{prefix}_betas"], rtol=1e-12)
    np.testing.assert_allclose(diffusion.alphas_cumprod, c[f"{prefix}_alphas_cumprod"], rtol=1e-12)


def stand_in_model(output):
    """A model that returns a fixed x0 prediction and records the timesteps it was given."""
    seen = []
    def fn(x, t):
        seen.append(t.clone())
        return output
    return fn, seen


def test_single_diffusion_ops():
    c = cases("cdm", "diffusion_step_cases.npz")
    diffusion = GaussianDiffusion(CFG["diffusion_main"]["steps"], "cosine", model_mean_type="start_x")
    t, x_t, noise = tensor(c["t"]), tensor(c["x_t"]), tensor(c["p_sample_noise"])
    fn, seen = stand_in_model(tensor(c["model_output"]))
    assert_close(diffusion.q_sample(tensor(c["x_start"]), t, tensor(c["noise"])), c["q_sample"], 1e-4, 1e-4,
                 "q_sample")
    out = diffusion.p_mean_variance(fn, x_t, t, clip_denoised=False)
    for key in ("mean", "variance", "log_variance", "pred_xstart"):
        assert_close(out[key].expand_as(x_t), c[f"pmv_{key}"], 1e-4, 1e-4, f"p_mean_variance {key}")
    np.testing.assert_array_equal(seen[0].numpy(), c["pmv_model_t"])
    clipped = diffusion.p_mean_variance(fn, x_t, t, clip_denoised=True)["mean"]
    assert_close(clipped, c["pmv_clipped_mean"], 1e-4, 1e-4, "clipped mean")
    assert_close(diffusion.p_sample(fn, x_t, t, noise), c["p_sample_out"], 1e-4, 1e-4, "p_sample")
    assert_close(diffusion.ddim_sample(fn, x_t, t, noise, eta=0.0), c["ddim_eta0_out"], 1e-4, 1e-4, "ddim eta 0")
    assert_close(diffusion.ddim_sample(fn, x_t, t, noise, eta=0.5), c["ddim_eta05_out"], 1e-4, 1e-4, "ddim eta .5")


def test_single_respaced_op():
    c, case = cases("cdm", "diffusion_step_cases.npz"), CFG["ddim_case"]  # the steps cases' respaced chain
    diffusion = GaussianDiffusion(case["steps"], "cosine", "start_x", respacing=case["respacing"])
    fn, seen = stand_in_model(tensor(c["model_output"]))
    x_t = tensor(c["x_t"])
    out = diffusion.p_mean_variance(fn, x_t, tensor(c["spaced_t"]))
    np.testing.assert_array_equal(seen[0].numpy(), c["spaced_model_t"])
    assert_close(out["mean"], c["spaced_pmv_mean"], 1e-4, 1e-4, "respaced mean")
    assert_close(out["log_variance"].expand_as(x_t), c["spaced_pmv_log_variance"], 1e-4, 1e-4, "respaced log var")


# -- sampling loops with the PointMamba checkpoint (case 12) ----------------------------------------------------

def recording(model_fn):
    seen = []
    def fn(x, t):
        seen.append(t.clone())
        return model_fn(x, t)
    return fn, seen


def test_p_sample_loop_reference_rng(models):
    c, case = cases("cdm", "sampling_cases.npz"), CFG["p_sample_loop_case"]
    diffusion = GaussianDiffusion(int(c["p_steps"]), "cosine", "start_x", respacing=case["respacing"])
    fn, seen = recording(model_fn(models["pointmamba"], c))
    states, draws = [], []
    def step_noise(i, x):  # the reference draws after the model call; the model draws nothing, so same stream
        states.append(x)
        draws.append(torch.randn_like(x))
        return draws[-1]
    torch.manual_seed(int(c["p_seed"]))
    x_T = torch.randn(c["p_x_T"].shape)
    with torch.no_grad():
        final = diffusion.sample_loop(fn, x_T, step_noise, method="ancestral", clip_denoised=case["clip_denoised"])
    assert_close(x_T, c["p_x_T"], 0, 0, "x_T draw")
    assert_close(torch.stack(draws), c["p_step_noise"], 0, 0, "step noise draws")
    assert_close(torch.stack(states[1:] + [final]), c["p_samples"], 1e-3, 1e-3, "per-step samples")
    assert_close(final, c["p_final"], 1e-3, 1e-3, "final sample")
    np.testing.assert_array_equal(torch.stack(seen).numpy(), c["p_model_t"])


def test_ddim_loop_from_given_noise(models):
    c, case = cases("cdm", "sampling_cases.npz"), CFG["ddim_case"]
    diffusion = GaussianDiffusion(int(c["ddim_steps"]), "cosine", "start_x", respacing=case["respacing"])
    np.testing.assert_array_equal(diffusion.timestep_map, c["ddim_timestep_map"])
    fn, seen = recording(model_fn(models["pointmamba"], c))
    with torch.no_grad():
        final = diffusion.sample_loop(fn, tensor(c["ddim_noise"]), lambda i, x: torch.randn_like(x), method="ddim",
                                      eta=case["eta"])
    assert_close(final, c["ddim_final"], 1e-3, 1e-3, "DDIM final")
    np.testing.assert_array_equal(torch.stack(seen).numpy(), c["ddim_model_t"])


# -- contact <-> distance (case 13) -----------------------------------------------------------------------------

def test_contact_distance_conversion():
    c = cases("cdm", "distance_cases.npz")
    stats = cases("cdm", "Mean_Std_Cont_fixture_contact_cont_joints_0.8.npz")
    np.testing.assert_array_equal(stats["mean"], c["mean"])
    mean, std, sigma = tensor(stats["mean"]), tensor(stats["std"]), CFG["sigma"]
    assert float(c["sigma"]) == pytest.approx(sigma)
    for prefix in ("sample", "designed"):
        contact = denormalize_contact(tensor(c[f"{prefix}_x"]), mean, std)
        assert_close(contact, c[f"{prefix}_contact"], 1e-4, 1e-4, f"{prefix} contact")
        assert_close(contact_to_distance(contact, sigma, clip_min=1e-6), c[f"{prefix}_dist_gen"], 1e-4, 1e-4,
                     f"{prefix} gen distance")
        assert_close(contact_to_distance(contact, sigma, clip_min=1e-20), c[f"{prefix}_dist_test"], 1e-4, 1e-4,
                     f"{prefix} test distance")
        assert_close(model_output_to_distance(tensor(c[f"{prefix}_x"]), mean, std, sigma), c[f"{prefix}_dist_gen"],
                     1e-4, 1e-4, f"{prefix} x -> gen distance")
    assert tuple(c["fwd_joints"]) == tuple(CFG["contact_joints"])
    x = dataset_contact(tensor(c["fwd_dist22"]), mean, std, sigma, joints=c["fwd_joints"].tolist())
    assert_close(x, c["fwd_x"], 1e-4, 1e-4, "dataset direction")


def test_settings_not_in_checkpoints_default_to_the_fork_scripts():
    settings = load("pointmamba").settings
    assert (settings.diffusion_steps, settings.sigma, settings.text_max_length) == (500, 0.8, 20)
    assert settings.contact_joints == (0, 10, 11, 12, 20, 21) and settings.clip_denoised is False


# -- checkpoints: full-size manifests, loader errors ------------------------------------------------------------

@pytest.mark.parametrize("manifest,arch", [("cdm_pointmamba_h3d.json", "PointMamba"),
                                           ("cdm_perceiver_h3d.json", "Perceiver")])
def test_full_size_manifests(manifest, arch):
    expected = json.loads((GOLDEN_DIR / "manifests" / manifest).read_text())
    with torch.device("meta"):
        state = CDM(arch, contact_dim=6, text_feat_dim=512, time_emb_dim=128).state_dict()
    assert [(k, list(v.shape)) for k, v in state.items()] == list(expected.items())


def save_variant(tmp_path, name, state):
    folder = tmp_path / name / "ckpt"
    folder.mkdir(parents=True)
    torch.save(state, folder / "model000100.pt")
    return tmp_path / name


def test_old_pointmamba_variant_is_rejected(tmp_path):
    state = torch.load(ROOT / CFG["checkpoints"]["pointmamba"], weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith("contact_model.layers.")}
    state["contact_model.blocks.layers.0.mixer.A_log"] = torch.zeros(4, 16)
    state["contact_model.output_proj.weight"] = torch.zeros(32, 64)
    with pytest.raises(CheckpointError, match=r"model000100.pt has contact_model.blocks.*deleted PointMamba variant"):
        load_cdm(save_variant(tmp_path, "old", state))


def test_configured_size_mismatch_names_file_and_key():
    arch_cfg = {**ARCH_CFG["pointmamba"], "trans_dim": 2 * ARCH_CFG["pointmamba"]["trans_dim"]}
    with pytest.raises(CheckpointError, match=r"model000100.pt: configured trans_dim=.*contact_model.embedding.net.2"):
        load_cdm(ROOT / CFG["checkpoints"]["pointmamba"], arch_cfg=arch_cfg)
    with pytest.raises(CheckpointError, match="holds a 'PointMamba' CDM but the config asks for 'Perceiver'"):
        load_cdm(ROOT / CFG["checkpoints"]["pointmamba"], arch="Perceiver")
    with pytest.raises(CheckpointError, match=r"configured depth=.*contact_model.layers"):
        load_cdm(ROOT / CFG["checkpoints"]["pointmamba"], arch_cfg={"depth": ARCH_CFG["pointmamba"]["depth"] + 1})


def test_missing_keys_and_latest_file(tmp_path):
    state = torch.load(ROOT / CFG["checkpoints"]["pointmamba_ddp"], weights_only=True)
    exp_dir = save_variant(tmp_path, "exp", {k: v for k, v in state.items() if "layers.0.mamba.D" not in k})
    torch.save(state, exp_dir / "ckpt" / "model000020.pt")
    torch.save({"step": torch.tensor(1)}, exp_dir / "ckpt" / "opt.pt")
    assert find_checkpoint(exp_dir).name == "model000100.pt"  # natural sort; opt.pt ignored
    with pytest.raises(CheckpointError, match=r"model000100.pt .*1 missing \(first: contact_model.layers.0.mamba.D"):
        load_cdm(exp_dir)
    assert load_cdm(exp_dir / "ckpt" / "model000020.pt").path.name == "model000020.pt"
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no model.*pt in"):
        load_cdm(tmp_path / "empty")
    with pytest.raises(CheckpointError, match="not found"):
        load_cdm(tmp_path / "missing")


# -- the CPU scan -----------------------------------------------------------------------------------------------

def random_scan_inputs(batch, length, d_inner, d_state, seed):
    g = torch.Generator().manual_seed(seed)
    def randn(*shape):
        return torch.randn(*shape, generator=g)
    delta = torch.nn.functional.softplus(randn(batch, length, d_inner) - 1)
    A = -torch.exp(randn(d_inner, d_state))
    return randn(batch, length, d_inner), delta, A, randn(batch, length, d_state), randn(batch, length, d_state), \
        randn(d_inner), randn(batch, length, d_inner)


@pytest.mark.parametrize("length,block_len,chunk_len", [
    (1, None, 16), (7, None, 16), (16, None, 16), (33, None, 16), (300, 64, 16), (300, 48, 8), (1000, None, 16)])
def test_chunked_scan_matches_per_token_loop(length, block_len, chunk_len):
    inputs = random_scan_inputs(2, length, 24, 16, seed=length)
    ref = selective_scan_loop(*inputs)
    got = selective_scan(*inputs, block_len=block_len, chunk_len=chunk_len)
    assert_close(got, ref.numpy(), 1e-5 * ref.abs().max().item(), 1e-5, f"scan L={length}")


def test_chunked_scan_gradients_match_loop():
    inputs = [t.requires_grad_() for t in random_scan_inputs(1, 70, 8, 4, seed=0)]
    grads = []
    for scan in (selective_scan_loop, lambda *a: selective_scan(*a, block_len=32, chunk_len=8)):
        grads.append(torch.autograd.grad(scan(*inputs).square().sum(), inputs))
    for name, ref, got in zip("u delta A B C D z".split(), *grads):
        assert_close(got, ref.numpy(), 1e-5 * ref.abs().max().item(), 1e-5, f"grad {name}")


def test_bidirectional_stacked_batch_equals_two_calls():
    torch.manual_seed(0)
    block, x = Mamba(16).eval(), torch.randn(2, 40, 16)
    with torch.no_grad():
        two_calls = x + block(x) + block(x.flip(1)).flip(1)
        assert_close(bidirectional_residual(block, x), two_calls.numpy(), 1e-6, 1e-6, "stacked bidirectional")


# -- the CUDA dispatch, with stand-ins for mamba-ssm's kernels (no GPU here) --------------------------------------

def fake_selective_scan_fn(u, delta, A, B, C, D, z=None, delta_bias=None, delta_softplus=False):
    """mamba-ssm's documented selective_scan_fn semantics; channel-major (b, d, L), B and C (b, n, L)."""
    delta = delta + delta_bias[:, None]
    delta = torch.nn.functional.softplus(delta) if delta_softplus else delta
    y = selective_scan_loop(*(t.transpose(1, 2) for t in (u, delta)), A, B.transpose(1, 2), C.transpose(1, 2), D,
                            z.transpose(1, 2))
    return y.transpose(1, 2)


def fake_mamba_inner_fn(xz, conv1d_weight, conv1d_bias, x_proj_weight, delta_proj_weight, out_proj_weight,
                        out_proj_bias, A, B=None, C=None, D=None, delta_bias=None, delta_softplus=True):
    """mamba-ssm's documented mamba_inner_fn semantics (input-dependent B and C when None)."""
    length, d_state, dt_rank = xz.shape[-1], A.shape[1], delta_proj_weight.shape[1]
    x, z = xz.chunk(2, dim=1)
    x = torch.nn.functional.silu(torch.nn.functional.conv1d(
        x, conv1d_weight, conv1d_bias, padding=conv1d_weight.shape[-1] - 1, groups=x.shape[1])[..., :length])
    x_dbl = torch.nn.functional.linear(x.transpose(1, 2), x_proj_weight)  # (b, L, dt_rank + 2n)
    delta = (x_dbl[..., :dt_rank] @ delta_proj_weight.T).transpose(1, 2)
    B, C = (t.transpose(1, 2) for t in x_dbl[..., dt_rank:].split(d_state, dim=-1))
    y = fake_selective_scan_fn(x, delta, A, B, C, D, z, delta_bias, delta_softplus)
    return torch.nn.functional.linear(y.transpose(1, 2), out_proj_weight, out_proj_bias)


@pytest.mark.parametrize("has_causal_conv1d", [True, False])
def test_cuda_kernel_call_plumbing(monkeypatch, has_causal_conv1d):
    import models.mamba
    kernels = {"mamba_inner_fn": fake_mamba_inner_fn, "selective_scan_fn": fake_selective_scan_fn,
               "has_causal_conv1d": has_causal_conv1d}
    monkeypatch.setattr(models.mamba, "cuda_kernels", lambda: kernels)
    torch.manual_seed(0)
    block, x = Mamba(16).eval(), torch.randn(2, 40, 16)
    with torch.no_grad():
        assert_close(block._forward_cuda_kernels(x), block(x).numpy(), 1e-5, 1e-5, "kernel path")
