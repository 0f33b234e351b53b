"""The cost functions against plain loop-based readings of the lecture's formulas."""

import itertools

import pytest
import torch

from course_nst import costs


def _rand(*shape, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype)


# --- loop-based readings of the formulas (a_ijk: row i, column j, channel k) ----------
def loop_content_cost(a_C, a_G):
    _, n_C, n_H, n_W = a_C.shape
    total = 0.0
    for i, j, k in itertools.product(range(n_H), range(n_W), range(n_C)):
        total += (a_C[0, k, i, j].item() - a_G[0, k, i, j].item()) ** 2
    return 0.5 * total


def loop_gram(a):
    _, n_C, n_H, n_W = a.shape
    G = [[0.0] * n_C for _ in range(n_C)]
    for k, kp in itertools.product(range(n_C), range(n_C)):
        G[k][kp] = sum(a[0, k, i, j].item() * a[0, kp, i, j].item() for i in range(n_H) for j in range(n_W))
    return torch.tensor(G, dtype=torch.float64)


def loop_layer_style_cost(a_S, a_G):
    _, n_C, n_H, n_W = a_G.shape
    GS, GG = loop_gram(a_S), loop_gram(a_G)
    frob = sum((GS[k, kp] - GG[k, kp]).item() ** 2 for k in range(n_C) for kp in range(n_C))
    return frob / (2 * n_H * n_W * n_C) ** 2


SHAPES = [(1, 3, 4, 5), (1, 5, 3, 3), (1, 2, 6, 2)]


@pytest.mark.parametrize("shape", SHAPES)
def test_content_cost_matches_loop(shape):
    a_C, a_G = _rand(*shape, seed=1), _rand(*shape, seed=2)
    assert costs.content_cost(a_C, a_G).item() == pytest.approx(loop_content_cost(a_C, a_G), rel=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
def test_gram_matrix_matches_loop(shape):
    a = _rand(*shape, seed=3)
    G = costs.gram_matrix(a)
    assert G.shape == (shape[1], shape[1])
    torch.testing.assert_close(G, loop_gram(a))


@pytest.mark.parametrize("shape", SHAPES)
def test_layer_style_cost_matches_loop(shape):
    a_S, a_G = _rand(*shape, seed=4), _rand(*shape, seed=5)
    assert costs.layer_style_cost(a_S, a_G).item() == pytest.approx(loop_layer_style_cost(a_S, a_G), rel=1e-12)


def test_style_cost_is_lambda_weighted_sum():
    acts_S = {"a": _rand(1, 3, 4, 4, seed=6), "b": _rand(1, 2, 2, 2, seed=7)}
    acts_G = {"a": _rand(1, 3, 4, 4, seed=8), "b": _rand(1, 2, 2, 2, seed=9)}
    lam = {"a": 0.3, "b": 2.0}
    expected = 0.3 * loop_layer_style_cost(acts_S["a"], acts_G["a"]) + 2.0 * loop_layer_style_cost(
        acts_S["b"], acts_G["b"]
    )
    assert costs.style_cost(acts_S, acts_G, lam).item() == pytest.approx(expected, rel=1e-12)
    # a layer with lambda 0 does not count
    assert costs.style_cost(acts_S, acts_G, {"a": 0.3, "b": 0.0}).item() == pytest.approx(
        0.3 * loop_layer_style_cost(acts_S["a"], acts_G["a"]), rel=1e-12
    )


def test_total_cost():
    assert costs.total_cost(torch.tensor(2.0), torch.tensor(3.0), alpha=10, beta=40).item() == 2 * 10 + 3 * 40


def test_total_variation_matches_loop():
    x = _rand(1, 3, 4, 5, seed=10)
    expected = 0.0
    for c, i, j in itertools.product(range(3), range(4), range(5)):
        if i + 1 < 4:
            expected += (x[0, c, i + 1, j] - x[0, c, i, j]).item() ** 2
        if j + 1 < 5:
            expected += (x[0, c, i, j + 1] - x[0, c, i, j]).item() ** 2
    assert costs.total_variation(x).item() == pytest.approx(expected, rel=1e-12)
    assert costs.total_variation(torch.ones(1, 3, 4, 4)).item() == 0


def test_costs_of_identical_activations_are_zero():
    a = _rand(1, 4, 3, 5, seed=11)
    assert costs.content_cost(a, a.clone()).item() == 0
    assert costs.layer_style_cost(a, a.clone()).item() == 0


def test_gram_is_symmetric_positive_semidefinite():
    a = _rand(1, 6, 4, 4, seed=12)
    G = costs.gram_matrix(a)
    torch.testing.assert_close(G, G.t())
    assert torch.linalg.eigvalsh(G).min().item() > -1e-9


def test_gram_and_style_cost_ignore_where_things_are():
    a_S, a_G = _rand(1, 4, 5, 6, seed=13), _rand(1, 4, 5, 6, seed=14)
    perm = torch.randperm(30, generator=torch.Generator().manual_seed(0))
    shuffled = a_G.reshape(1, 4, 30)[:, :, perm].reshape(1, 4, 5, 6)
    assert not torch.equal(shuffled, a_G)
    torch.testing.assert_close(costs.gram_matrix(shuffled), costs.gram_matrix(a_G))
    assert costs.layer_style_cost(a_S, shuffled).item() == pytest.approx(
        costs.layer_style_cost(a_S, a_G).item(), rel=1e-12
    )
    # ... while the content cost does notice
    assert costs.content_cost(a_S, shuffled).item() != pytest.approx(costs.content_cost(a_S, a_G).item())


def test_precomputed_style_gram_gives_same_cost():
    a_S, a_G = _rand(1, 3, 4, 4, seed=15), _rand(1, 3, 4, 4, seed=16)
    direct = costs.layer_style_cost(a_S, a_G)
    pre = costs.layer_style_cost(None, a_G, gram_S=costs.gram_matrix(a_S))
    assert direct.item() == pytest.approx(pre.item(), rel=1e-12)


def test_style_image_of_another_size_is_rescaled_to_the_generated_positions():
    a = _rand(1, 3, 4, 4, seed=17)
    tiled = a.repeat(1, 1, 2, 2)  # the same texture, four times the positions
    # same statistics per position: the cost against itself is (nearly) zero after rescaling
    assert costs.layer_style_cost(tiled, a).item() == pytest.approx(0.0, abs=1e-12)


def test_gradients_flow_gradcheck():
    a_C = _rand(1, 2, 3, 3, seed=18)
    a_S = _rand(1, 2, 3, 3, seed=19)
    a_G = _rand(1, 2, 3, 3, seed=20).requires_grad_(True)
    img = _rand(1, 3, 4, 4, seed=21).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda g: costs.content_cost(a_C, g), (a_G,))
    assert torch.autograd.gradcheck(costs.gram_matrix, (a_G,))
    assert torch.autograd.gradcheck(lambda g: costs.layer_style_cost(a_S, g), (a_G,))
    assert torch.autograd.gradcheck(lambda g: costs.style_cost({"l": a_S}, {"l": g}, {"l": 0.7}), (a_G,))
    assert torch.autograd.gradcheck(costs.total_variation, (img,))


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: costs.content_cost(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5)), "same layer"),
        (lambda: costs.content_cost(torch.zeros(3, 4, 4), torch.zeros(3, 4, 4)), "[1, n_C, n_H, n_W]"),
        (lambda: costs.gram_matrix(torch.zeros(2, 3, 4, 4)), "one image"),
        (lambda: costs.layer_style_cost(torch.zeros(1, 3, 4, 4), torch.zeros(1, 4, 4, 4)), "channels"),
        (lambda: costs.style_cost({}, {}, {}), "at least one"),
    ],
)
def test_bad_shapes_give_clear_errors(call, words):
    with pytest.raises(ValueError, match=None) as info:
        call()
    assert words in str(info.value)


def test_style_cost_names_the_missing_layer():
    with pytest.raises(KeyError, match="conv9_9"):
        costs.style_cost({"a": torch.zeros(1, 1, 2, 2)}, {"a": torch.zeros(1, 1, 2, 2)}, {"conv9_9": 1.0})
