"""Sampler properties beyond the golden cases: per-item reproducibility, skipping redundant iterations."""
import pytest
import torch

from lightning_modules.pose_module import resolve_frame_index
from models.mardm_sampler import PerItemNoise, generate, num_masked_schedule
from test_mardm_conformance import networks  # noqa: F401  (fixture: the golden SiT and DDPM models)


def text_features(n, dim=512, seed=0):
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


def sample(model, cond, m_lens, ids, solver="heun", skip=False, seed=11):
    return generate(model, cond, m_lens, PerItemNoise(seed, ids, "cpu"), time_steps=18, cfg=4.5, solver=solver,
                    num_steps=6, skip_redundant=skip)


@pytest.mark.parametrize("head", ["sit", "ddpm"])
def test_per_item_noise_is_independent_of_batch_and_order(networks, head):
    model = networks[head].mardm
    cond, m_lens, ids = text_features(5), torch.tensor([4, 4, 3, 4, 2]), [10, 11, 12, 13, 14]
    together = sample(model, cond, m_lens, ids)
    # random-weight DDPM outputs reach ~1e4 (see the golden README): compare relative to the magnitude
    atol = 2e-5 * max(1.0, together.abs().max().item())
    for b in range(5):
        alone = sample(model, cond[b: b + 1], m_lens[b: b + 1], ids[b: b + 1])
        n = int(m_lens[b])
        torch.testing.assert_close(alone[0, :, :n], together[b, :, :n], atol=atol, rtol=1e-5)
    order = [4, 2, 0, 3, 1]
    shuffled = sample(model, cond[order], m_lens[order], [ids[i] for i in order])
    for position, b in enumerate(order):
        n = int(m_lens[b])
        torch.testing.assert_close(shuffled[position, :, :n], together[b, :, :n], atol=atol, rtol=1e-5)


def test_per_item_noise_depends_on_seed_and_id(networks):
    model = networks["sit"].mardm
    cond, m_lens = text_features(1).repeat(2, 1), torch.tensor([4, 4])
    out = sample(model, cond, m_lens, [0, 1])
    assert not torch.allclose(out[0], out[1])
    assert not torch.allclose(sample(model, cond[:1], m_lens[:1], [0], seed=12), out[:1])


@pytest.mark.parametrize("head", ["sit", "ddpm"])
def test_cfg_one_samples_the_conditional_model(networks, head):
    """cfg = 1 (which crashes in the reference) is unguided: the limit of guided sampling as cfg -> 1."""
    model = networks[head].mardm
    cond, m_lens, ids = text_features(3), torch.tensor([4, 2, 3]), [0, 1, 2]
    runs = [generate(model, cond, m_lens, PerItemNoise(3, ids, "cpu"), cfg=cfg, solver="heun", num_steps=6)
            for cfg in (1, 1.0 + 1e-6, 4.5)]
    atol = 1e-4 * max(1.0, runs[0].abs().max().item())
    torch.testing.assert_close(runs[0], runs[1], atol=atol, rtol=1e-4)
    assert not torch.allclose(runs[0], runs[2], atol=atol)


def test_generate_samples_in_eval_mode_and_restores_the_mode(networks):
    model = networks["sit"].mardm

    def run():
        return generate(model, text_features(2), torch.tensor([4, 4]), PerItemNoise(0, [0, 1], "cpu"),
                        solver="heun", num_steps=4)

    expected = run()  # the fixture's model is in eval mode
    model.train()
    try:
        assert torch.equal(run(), expected) and model.training  # no dropout while sampling; the mode given back
    finally:
        model.eval()


class TokenKeyedNoise(PerItemNoise):
    """Noise fixed per (caption, token), whatever the iteration: makes skip/no-skip runs comparable."""

    def __init__(self, B, l, channels):
        super().__init__(0, range(B), "cpu")
        self.table = torch.randn(B, l, channels, generator=torch.Generator().manual_seed(5))

    def token_noise(self, predict_mask, channels):
        return self.table[predict_mask]


def test_skip_redundant_gives_the_same_motion(networks):
    model = networks["sit"].mardm
    cond, m_lens = text_features(3), torch.tensor([4, 3, 4])
    runs = []
    for skip in (False, True):
        runs.append(generate(model, cond, m_lens, TokenKeyedNoise(3, 4, model.ae_dim), cfg=4.5, solver="euler",
                             num_steps=5, skip_redundant=skip, return_trace=True))
    torch.testing.assert_close(runs[0][0], runs[1][0], atol=2e-5, rtol=1e-5)
    predicted = [sum(int(t["predict"].sum()) for t in trace) for _, trace in runs]
    assert predicted[0] == int(num_masked_schedule(m_lens, 18).sum())
    assert predicted[1] == int(m_lens.sum())  # each token is predicted once, when it is committed


@pytest.mark.parametrize("frame_index,frames,expected", [(-1, 16, 8), (-2, 16, 15), (-3, 16, 13), (0, 16, 0),
                                                         (15, 16, 15), (-1, 12, 6)])
def test_frame_index(frame_index, frames, expected):
    assert resolve_frame_index(frame_index, frames) == expected


@pytest.mark.parametrize("frame_index", [16, -17])
def test_frame_index_out_of_range(frame_index):
    with pytest.raises(ValueError, match="frame_index"):
        resolve_frame_index(frame_index, 16)


def test_padding_items_get_a_valid_stream(networks):
    """Ranks with fewer captions than ranks get no-op items with id -1; they must not break a batch."""
    model = networks["sit"].mardm
    cond, m_lens = text_features(2), torch.tensor([4, 4])
    mixed = sample(model, cond, m_lens, [7, -1])
    torch.testing.assert_close(mixed[:1], sample(model, cond[:1], m_lens[:1], [7]), atol=2e-5, rtol=1e-5)
