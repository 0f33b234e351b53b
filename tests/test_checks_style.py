"""The notebook-03 checkers: the unroll diagnoses say what reshape really does, and the prediction questions.

``reshape`` reads a tensor's numbers in the logical, row-major order of its indices (the last
index fastest), whatever their layout in memory. So a correct unroll stays correct on a tensor
stored channels-last, and the two wrong unrolls the checker knows are wrong because of the order
of the dimensions they reshape, which is what their messages must say.
"""

from __future__ import annotations

import math

import pytest
import torch

from course_nst import costs
from course_nst.checks import EXERCISES, PREDICTIONS, check_prediction
from course_nst.checks.style import PREDICTIONS as STYLE_PREDICTIONS


def gram_reshape(a):
    _, n_C, n_H, n_W = a.shape
    A = a.reshape(n_C, n_H * n_W)
    return A @ A.T


def gram_reshape_of_channels_last_memory(a):
    # the same logical tensor, its numbers stored channels-last in memory
    return gram_reshape(a.contiguous(memory_format=torch.channels_last))


def gram_permuted_then_reshaped(a):
    A = a.permute(0, 2, 3, 1).reshape(a.shape[1], -1)
    return A @ A.T


def gram_positions_first(a):
    _, n_C, n_H, n_W = a.shape
    A = a.reshape(n_H * n_W, n_C)
    return A.T @ A


def test_reshape_follows_the_index_order_not_the_memory_layout():
    """The fact the messages rest on: same numbers from reshape, whatever the memory layout."""
    a = torch.randn(1, 3, 4, 5)
    stored = a.contiguous(memory_format=torch.channels_last)
    assert stored.stride() != a.stride()  # really a different layout in memory
    assert torch.equal(stored.reshape(3, 20), a.reshape(3, 20))
    assert torch.equal(stored.reshape(3, 20)[1], a[0, 1].flatten())  # row k is channel k
    # and a permuted view is reshaped in the order of *its* indices: channel fastest
    assert torch.equal(a.permute(0, 2, 3, 1).reshape(-1)[:3], a[0, :, 0, 0])


def test_a_correct_unroll_on_a_channels_last_tensor_passes():
    assert EXERCISES["gram_matrix"].evaluate(gram_reshape).passed
    assert EXERCISES["gram_matrix"].evaluate(gram_reshape_of_channels_last_memory).passed


@pytest.mark.parametrize(
    ("wrong", "words"),
    [
        (gram_permuted_then_reshaped, ["mixes channels and positions", "permute(0, 2, 3, 1)", "order of the indices"]),
        (gram_positions_first, ["mixes channels and positions", "[n_H*n_W, n_C]", "order of its indices"]),
    ],
    ids=["channels_last_view", "positions_first"],
)
def test_the_wrong_unrolls_get_their_diagnosis_without_blaming_memory_order(wrong, words):
    result = EXERCISES["gram_matrix"].evaluate(wrong)
    assert not result.passed
    text = " ".join(result.problems)
    for w in words:
        assert w in text, f"{w!r} not in {text!r}"
    assert "memory order" not in text and "in memory" not in text, text


def test_the_same_wrong_unrolls_inside_layer_style_cost_are_diagnosed():
    def layer_with(gram):
        def f(a_S, a_G):
            _, n_C, n_H, n_W = a_G.shape
            return ((gram(a_S) - gram(a_G)) ** 2).sum() / (2 * n_H * n_W * n_C) ** 2

        return f

    for wrong in (gram_permuted_then_reshaped, gram_positions_first):
        result = EXERCISES["layer_style_cost"].evaluate(layer_with(wrong))
        assert not result.passed
        assert any("mix channels and positions" in p for p in result.problems), result.problems
    assert EXERCISES["layer_style_cost"].evaluate(layer_with(gram_reshape_of_channels_last_memory)).passed


# --------------------------------------------------------------------------- prediction questions


def test_notebook_03_defines_its_two_predictions():
    ids = {p.grade_id for p in STYLE_PREDICTIONS}
    assert ids == {"predict_style_growth", "predict_gram_entries"}
    for p in STYLE_PREDICTIONS:
        assert p.notebook == "03_style_cost"
        assert PREDICTIONS[p.grade_id] is p
        assert p.variable == p.grade_id


def test_style_growth_answer_is_what_the_cost_does_when_the_positions_are_tiled():
    """Four times the positions with the same statistics: J_style[l] is unchanged, J_content 4 times."""
    g = torch.Generator().manual_seed(3)
    a_S = torch.rand(1, 6, 5, 7, generator=g, dtype=torch.float64)
    a_G = torch.rand(1, 6, 5, 7, generator=g, dtype=torch.float64)
    tile = lambda a: a.repeat(1, 1, 2, 2)  # noqa: E731
    ratio = costs.layer_style_cost(tile(a_S), tile(a_G)) / costs.layer_style_cost(a_S, a_G)
    assert math.isclose(float(ratio), PREDICTIONS["predict_style_growth"].answer, rel_tol=1e-9)
    content_ratio = costs.content_cost(tile(a_S), tile(a_G)) / costs.content_cost(a_S, a_G)
    assert math.isclose(float(content_ratio), 4.0, rel_tol=1e-9)  # what its `why` says of J_content
    assert "4 times" in PREDICTIONS["predict_style_growth"].why


@pytest.mark.parametrize("side", [16, 64])
def test_gram_entries_answer_is_the_number_of_entries_whatever_the_size(side):
    a = torch.rand(1, 256, side, side)  # relu3_1 has 256 channels (VGG19's third block)
    assert costs.gram_matrix(a).numel() == PREDICTIONS["predict_gram_entries"].answer


def test_vgg19_relu3_1_has_the_256_channels_the_question_says():
    from course_nst.backbones import vgg19

    convs = [m for name, m in vgg19.layers() if name == "conv3_1"]
    assert convs[0].out_channels == 256
    assert "256 channels" in PREDICTIONS["predict_gram_entries"].question


@pytest.mark.parametrize("grade_id", ["predict_style_growth", "predict_gram_entries"])
def test_a_right_prediction_is_told_why_and_a_wrong_one_gets_the_hint_not_the_answer(grade_id, capsys):
    p = PREDICTIONS[grade_id]
    check_prediction(grade_id, p.answer)
    out = capsys.readouterr().out
    assert "right" in out and p.why in out
    wrong = p.answer * 4 + 3
    check_prediction(grade_id, wrong)
    out = capsys.readouterr().out
    assert "Hint" in out and p.hint in out
    if p.answer >= 100:  # a small answer such as 1 is a digit of the hint's formulas anyway
        assert f"{p.answer:g}" not in out.replace(f"{wrong:g}", "") and f"{p.answer:,.0f}" not in out
    check_prediction(grade_id, None)
    assert "not answered yet" in capsys.readouterr().out
