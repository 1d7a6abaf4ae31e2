"""MARDM re-implementation vs the reference numbers in $GOLDEN_DIR/mardm (see its README for tolerances)."""
import json

import numpy as np
import pytest
import torch

from golden import GOLDEN_DIR, assert_close, cases, config, tensor
from models.ae import AE
from models.checkpoints import CheckpointError, load_file, take_key
from models.mardm import MARDM, MARDM_models
from models.mardm_checkpoints import build_ae, build_mardm, load_length_estimator, load_mardm, load_mean_std
from models.mardm_sampler import ReferenceNoise, generate
from motiondata.features import recover_from_ric

CFG = config("mardm")
ROOT = GOLDEN_DIR / "mardm"


def mardm_arch(name):
    arch = {k: v for k, v in CFG[name].items() if k not in ("cond_mode", "clip_version", "diffmlps")}
    head = dict(CFG[name]["diffmlps"])
    head_type = head.pop("type").replace("DiffMLPs_", "")
    head.pop("target_channels"), head.pop("z_channels")
    return {**arch, "diffmlps": {"type": head_type, **head}}


def checkpoint_name(key):
    return CFG["checkpoints"][key].split("/")[2]


@pytest.fixture(scope="module")
def networks():
    def load(key):
        return load_mardm(ROOT / "checkpoints", checkpoint_name(key), ae_name=checkpoint_name("ae"),
                          mardm_arch=mardm_arch(key), ae_arch=CFG["ae"],
                          mean_path=ROOT / CFG["mean_std"]["mean"], std_path=ROOT / CFG["mean_std"]["std"])
    return {"sit": load("mardm_sit"), "ddpm": load("mardm_ddpm")}


def test_ae_encode_decode(networks):
    ae, c = networks["sit"].ae, cases("mardm", "ae_cases.npz")
    with torch.no_grad():
        for key in c:
            if key.startswith("encode_") and key.endswith("_x"):
                tag = key[len("encode_"):-2]
                assert_close(ae.encode(tensor(c[key])), c[f"encode_{tag}_z"], 1e-4, 1e-4, f"encode {tag}")
                assert_close(ae(tensor(c[key])), c[f"forward_{tag}_out"], 1e-4, 1e-4, f"forward {tag}")
            if key.startswith("decode_") and key.endswith("_z"):
                tag = key[len("decode_"):-2]
                assert_close(ae.decode(tensor(c[key])), c[f"decode_{tag}_out"], 1e-4, 1e-4, f"decode {tag}")


@pytest.mark.parametrize("head", ["sit", "ddpm"])
def test_transformer_forward(networks, head):
    model, c = networks[head].mardm, cases("mardm", "transformer_cases.npz")
    args = [tensor(c[f"{head}_{k}"]) for k in ("latents", "cond", "padding_mask")]
    with torch.no_grad():
        assert_close(model(*args), c[f"{head}_out"], 1e-4, 1e-4, "forward")
        assert_close(model(*args, force_mask=True), c[f"{head}_out_force_mask"], 1e-4, 1e-4, "force_mask")
        assert_close(model(*args, mask=tensor(c[f"{head}_reorder_mask"])), c[f"{head}_out_reorder"], 1e-4, 1e-4,
                     "hard pseudo reorder")


def test_forward_with_cfg(networks):
    """One guided prediction: transformer cond+uncond passes, masked rows row-major, one ODE solve."""
    model, c = networks["sit"].mardm, cases("mardm", "transformer_cases.npz")
    latents, is_mask = tensor(c["cfg_latents"]), tensor(c["cfg_is_mask"])
    with torch.no_grad():
        z = model.guided_z(latents, tensor(c["cfg_cond"]), tensor(c["cfg_padding_mask"]), is_mask)
        pred = model.DiffMLPs.sample(z, tensor(c["cfg_noise"]), cfg=float(c["cfg_scale"]))
    out = latents.clone()
    out[is_mask] = pred
    assert_close(out, c["cfg_out"], 1e-3, 1e-3, "forward_with_CFG")
    torch.manual_seed(int(c["cfg_seed"]))
    assert_close(torch.randn(int(is_mask.sum()), model.ae_dim), c["cfg_noise"], 0, 0, "seeded noise draw")


@pytest.mark.parametrize("head", ["sit", "ddpm"])
def test_diffmlp_net(networks, head):
    net, c = networks[head].mardm.DiffMLPs.net, cases("mardm", "diffmlp_cases.npz")
    x, t, z = (tensor(c[f"{head}_{k}"]) for k in ("x", "t", "c"))
    with torch.no_grad():
        assert_close(net(x, t, z), c[f"{head}_out"], 1e-4, 1e-4, "net.forward")
        assert_close(net.time_embed(t), c[f"{head}_time_embed"], 1e-4, 1e-4, "time_embed")
        args = [tensor(c[f"{head}_cfg_{k}"]) for k in ("x", "t", "c")]
        assert_close(net.forward_with_cfg(*args, float(c[f"{head}_cfg_scale"])), c[f"{head}_cfg_out"],
                     1e-4, 1e-4, "forward_with_cfg")


@pytest.mark.parametrize("method", ["dopri5", "euler", "midpoint", "heun2", "rk4"])
def test_sit_ode(networks, method):
    head, c = networks["sit"].mardm.DiffMLPs, cases("mardm", "sit_ode_cases.npz")
    evals = []
    with torch.no_grad():
        out = head.sample(tensor(c["z"]), tensor(c["noise"]), cfg=float(c["cfg_scale"]), solver=method,
                          num_steps=CFG["ode_fixed_steps"], nfe_counter=evals)
    n = len(c["noise"])
    assert_close(out, c[f"{method}_final"][:n], 2e-3, 1e-3, method)
    assert len(evals) == int(c[f"{method}_nfe"])
    np.testing.assert_allclose(evals, c[f"{method}_t_evals"], atol=1e-4)


def test_sit_ode_without_guidance(networks):
    head, c = networks["sit"].mardm.DiffMLPs, cases("mardm", "sit_ode_cases.npz")
    n, evals = len(c["noise"]), []
    with torch.no_grad():
        out = head.sample(tensor(c["z"][:n]), tensor(c["noise"]), cfg=1.0, nfe_counter=evals)
    assert_close(out, c["nocfg_dopri5_final"], 2e-3, 1e-3, "cfg=1 dopri5")
    assert len(evals) == int(c["nocfg_dopri5_nfe"])


def test_ddpm_head(networks):
    head, c = networks["ddpm"].mardm.DiffMLPs, cases("mardm", "ddpm_head_cases.npz")
    diffusion = head.gen_diffusion
    for key in ("betas", "alphas_cumprod", "posterior_variance", "posterior_log_variance_clipped"):
        np.testing.assert_allclose(getattr(diffusion, key), c[key], rtol=1e-12, err_msg=key)
    np.testing.assert_array_equal(diffusion.timestep_map, c["timestep_map"])
    step_noise = tensor(c["step_noise"])
    with torch.no_grad():
        out = head.sample(tensor(c["z"]), tensor(c["x_T_half"]), lambda i, x: step_noise[i], cfg=float(c["cfg_scale"]))
    n = len(c["x_T_half"])
    assert_close(out, c["out"][:n], 1e-4 * np.abs(c["out"]).max(), 0, "DDPM head sample")
    torch.manual_seed(int(c["seed"]))
    assert_close(torch.randn(c["x_T_half"].shape), c["x_T_half"], 0, 0, "x_T draw")


def generate_cases():
    names = [f"generate_sit_case{i}.npz" for i in range(len(CFG["generate_cases"]))]
    return [("sit", n) for n in names] + [("ddpm", "generate_ddpm_case0.npz")]


@pytest.mark.parametrize("head,name", generate_cases())
def test_generate_reference_rng(networks, head, name):
    """Full generate() with the reference draw order, then decode, denormalise, recover_from_ric."""
    nets, c = networks[head], cases("mardm", name)
    noise = ReferenceNoise(int(c["seed"]), "cpu")
    latents, trace = generate(nets.mardm, tensor(c["cond"]), tensor(c["m_lens"]), noise, int(c["timesteps"]),
                              float(c["cond_scale"]), return_trace=True)
    np.testing.assert_array_equal(np.stack([t["is_mask"].numpy() for t in trace]), c["is_mask_per_iter"])
    np.testing.assert_array_equal(nets.mean.numpy(), c["mean"])
    with torch.no_grad():
        decoded = nets.ae.decode(latents)
    denorm = decoded * nets.std + nets.mean
    if head == "sit":
        assert_close(latents, c["latents"], 5e-3, 1e-3, "latents")
        assert_close(decoded, c["decoded"], 5e-3, 1e-3, "decoded")
        assert_close(denorm, c["denorm"], 1e-3, 1e-3, "denorm")
        joint_tol = (1e-3, 1e-3)
    else:
        for key, value in (("latents", latents), ("decoded", decoded), ("denorm", denorm)):
            assert_close(value, c[key], 1e-4 * np.abs(c[key]).max(), 0, key)
    for b, length in enumerate(c["m_lens"]):
        joints = recover_from_ric(denorm[b, : 4 * length].float(), 22)
        ref = c[f"joints_{b}"]
        tol = joint_tol if head == "sit" else (1e-3 * np.abs(ref).max(), 0)
        assert_close(joints, ref, *tol, f"joints_{b}")


def test_recover_from_ric():
    c = cases("mardm", "recover_from_ric_cases.npz")
    for tag in ("single", "batched", "turning"):
        assert_close(recover_from_ric(tensor(c[f"{tag}_data"]), 22), c[f"{tag}_joints"], 1e-4, 1e-4, tag)


def test_length_estimator():
    c = cases("mardm", "length_estimator_cases.npz")
    estimator = load_length_estimator(ROOT / "checkpoints", **CFG["length_estimator"])
    with torch.no_grad():
        logits = estimator(tensor(c["features"]))
    assert_close(logits, c["logits"], 1e-4, 1e-4, "logits")
    assert_close(torch.softmax(logits, -1), c["probs"], 1e-4, 1e-4, "probs")
    torch.manual_seed(int(c["sample_seed"]))
    sampled = torch.distributions.Categorical(torch.softmax(logits, -1)).sample()
    np.testing.assert_array_equal(sampled.numpy(), c["sampled_token_lens"])


@pytest.mark.parametrize("manifest,build", [
    ("mardm_sit_xl_ema_mardm.json", lambda: build_mardm("MARDM-SiT-XL")),
    ("mardm_ddpm_xl_ema_mardm.json", lambda: build_mardm("MARDM-DDPM-XL")),
    ("ae_t2m.json", lambda: build_ae("AE_Model")),
    ("length_estimator_512_50.json", lambda: __import__("models.length_estimator").length_estimator.LengthEstimator(512, 50)),
])
def test_full_size_manifests(manifest, build):
    expected = json.loads((GOLDEN_DIR / "manifests" / manifest).read_text())
    with torch.device("meta"):
        state = build().state_dict()
    assert {k: list(v.shape) for k, v in state.items()} == expected


def test_ema_key_is_loaded_not_raw(networks):
    path = ROOT / CFG["checkpoints"]["mardm_sit"]
    raw = take_key(load_file(path, "x"), "mardm", path, "x")
    key = "cond_emb.weight"
    assert not torch.equal(raw[key], networks["sit"].mardm.state_dict()[key])


def test_loader_errors_name_file_and_keys(tmp_path):
    path = ROOT / CFG["checkpoints"]["mardm_sit"]
    wrong = {**mardm_arch("mardm_sit"), "latent_dim": 2 * CFG["mardm_sit"]["latent_dim"]}
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_mardm(ROOT / "checkpoints", checkpoint_name("mardm_sit"), checkpoint_name("ae"), mardm_arch=wrong,
                   ae_arch=CFG["ae"], mean_path=ROOT / CFG["mean_std"]["mean"], std_path=ROOT / CFG["mean_std"]["std"])
    partial = torch.load(path, weights_only=True)
    partial["ema_mardm"] = {k: v for k, v in partial["ema_mardm"].items() if not k.startswith("cond_emb")}
    partial["ema_mardm"]["clip_model.extra"] = torch.zeros(1)  # clip keys are tolerated either way
    bad_dir = tmp_path / "t2m" / "bad" / "model"
    bad_dir.mkdir(parents=True)
    torch.save(partial, bad_dir / "latest.tar")
    (tmp_path / "t2m" / checkpoint_name("ae")).symlink_to(ROOT / "checkpoints" / "t2m" / checkpoint_name("ae"))
    with pytest.raises(CheckpointError, match=r"latest.tar.*missing \(first: cond_emb.weight"):
        load_mardm(tmp_path, "bad", checkpoint_name("ae"), mardm_arch=mardm_arch("mardm_sit"), ae_arch=CFG["ae"],
                   mean_path=ROOT / CFG["mean_std"]["mean"], std_path=ROOT / CFG["mean_std"]["std"])
    torch.save({"ae": {}}, bad_dir / "latest.tar")
    with pytest.raises(CheckpointError, match="no key 'ema_mardm'"):
        load_mardm(tmp_path, "bad", checkpoint_name("ae"), mardm_arch=mardm_arch("mardm_sit"), ae_arch=CFG["ae"],
                   mean_path=ROOT / CFG["mean_std"]["mean"], std_path=ROOT / CFG["mean_std"]["std"])
    with pytest.raises(CheckpointError, match="file not found"):
        load_file(tmp_path / "nope.tar", "MARDM checkpoint")
    np.save(tmp_path / "Mean263.npy", np.zeros(263, np.float32))
    with pytest.raises(CheckpointError, match="67-d"):
        load_mean_std(tmp_path / "Mean263.npy", tmp_path / "Mean263.npy")
