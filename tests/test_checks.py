"""Tests of the exercise checkers: they pass the reference and name each usual mistake."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import course_nst.checks as checks
from course_nst import costs as ref
from course_nst.checks import (
    EXERCISES,
    NOT_IMPLEMENTED,
    check_content_cost,
    check_gram_matrix,
    check_layer_style_cost,
    check_optimization_step,
    check_style_cost,
    check_total_cost,
)

# --------------------------------------------------------------------------- reference step


def optimization_step(G, objective, optimizer):
    """The correct answer to the notebook-04 exercise."""
    optimizer.zero_grad()
    J = objective(G)["J"]
    J.backward()
    optimizer.step()
    return J.item()


def optimization_step_zero_after(G, objective, optimizer):
    """Also correct: the gradients are cleared after the step instead of before."""
    J = objective(G)["J"]
    J.backward()
    optimizer.step()
    optimizer.zero_grad()
    return float(J.detach())


def not_implemented(*args, **kwargs):
    raise NotImplementedError


# --------------------------------------------------------------------------- wrong implementations

N = lambda a: a.shape[1] * a.shape[2] * a.shape[3]  # noqa: E731


def gram_channels_last(a):
    n_C = a.shape[1]
    A = a.permute(0, 2, 3, 1).reshape(n_C, -1)
    return A @ A.T


def gram_positions_first(a):
    _, n_C, n_H, n_W = a.shape
    A = a.reshape(n_H * n_W, n_C)
    return A.T @ A


def gram_mixed(a):  # reshape(-1, n_C) taken for the transpose: not symmetric
    n_C = a.shape[1]
    return a.reshape(n_C, -1) @ a.reshape(-1, n_C)


def layer_style_with(gram, normaliser):
    def f(a_S, a_G):
        return ((gram(a_S) - gram(a_G)) ** 2).sum() / normaliser(a_G)

    return f


def style_with(combine):
    def f(acts_S, acts_G, weights):
        J = {k: ref.layer_style_cost(acts_S[k], acts_G[k]) for k in weights}
        return combine(J, weights)

    return f


WRONG = {
    # content_cost
    "content_no_half": (ref.content_cost, lambda a_C, a_G: ((a_C - a_G) ** 2).sum(), ["2 times too large", "1/2"]),
    "content_mean": (ref.content_cost, lambda a_C, a_G: 0.5 * ((a_C - a_G) ** 2).mean(), [".mean()", "n_H*n_W*n_C"]),
    "content_mean_no_half": (ref.content_cost, lambda a_C, a_G: ((a_C - a_G) ** 2).mean(), [".mean()", "1/2"]),
    "content_coursera": (
        ref.content_cost,
        lambda a_C, a_G: ((a_C - a_G) ** 2).sum() / (4 * N(a_G)),
        ["Coursera", "4 n_H n_W n_C", "1/2"],
    ),
    "content_norm": (ref.content_cost, lambda a_C, a_G: 0.5 * torch.norm(a_C - a_G), ["norm", "square"]),
    "content_float": (
        ref.content_cost,
        lambda a_C, a_G: 0.5 * ((a_C - a_G) ** 2).sum().item(),
        ["Python float", ".item()"],
    ),
    "content_numpy": (
        ref.content_cost,
        lambda a_C, a_G: 0.5 * np.sum((a_C.detach().numpy() - a_G.detach().numpy()) ** 2),
        ["numpy"],
    ),
    "content_detached": (
        ref.content_cost,
        lambda a_C, a_G: 0.5 * ((a_C - a_G.detach()) ** 2).sum(),
        ["does not require grad", "graph"],
    ),
    "content_not_summed": (ref.content_cost, lambda a_C, a_G: 0.5 * (a_C - a_G) ** 2, ["shape", "sum"]),
    "content_keepdim": (
        ref.content_cost,
        lambda a_C, a_G: 0.5 * ((a_C - a_G) ** 2).sum().reshape(1),
        ["shape [1]", "0-dimensional"],
    ),
    # gram_matrix
    "gram_channels_last": (ref.gram_matrix, gram_channels_last, ["mixes channels and positions", "permute"]),
    "gram_positions_first": (ref.gram_matrix, gram_positions_first, ["mixes channels and positions", "[n_H*n_W, n_C]"]),
    "gram_not_symmetric": (ref.gram_matrix, gram_mixed, ["not symmetric"]),
    "gram_normalised_positions": (
        ref.gram_matrix,
        lambda a: ref.gram_matrix(a) / (a.shape[2] * a.shape[3]),
        ["n_H*n_W", "not normalised", "layer_style_cost"],
    ),
    "gram_normalised_all": (ref.gram_matrix, lambda a: ref.gram_matrix(a) / N(a), ["n_C*n_H*n_W", "not normalised"]),
    "gram_wrong_side": (
        ref.gram_matrix,
        lambda a: a.reshape(a.shape[1], -1).T @ a.reshape(a.shape[1], -1),
        ["[n_H*n_W, n_H*n_W]", "A @ A.T"],
    ),
    "gram_batch_dim": (ref.gram_matrix, lambda a: ref.gram_matrix(a)[None], ["batch dimension"]),
    "gram_numpy": (
        ref.gram_matrix,
        lambda a: (lambda A: A @ A.T)(a.detach().numpy().reshape(a.shape[1], -1)),
        ["numpy", "not a torch tensor"],
    ),
    "gram_detached": (ref.gram_matrix, lambda a: ref.gram_matrix(a.detach()), ["does not require grad"]),
    # layer_style_cost
    "layer_no_normaliser": (
        ref.layer_style_cost,
        layer_style_with(ref.gram_matrix, lambda a: 1.0),
        ["(2 n_H n_W n_C)^2", "forget to divide"],
    ),
    "layer_not_squared": (
        ref.layer_style_cost,
        layer_style_with(ref.gram_matrix, lambda a: 2.0 * N(a)),
        ["2 n_H n_W n_C", "square"],
    ),
    "layer_two_outside": (
        ref.layer_style_cost,
        layer_style_with(ref.gram_matrix, lambda a: 2.0 * N(a) ** 2),
        ["2 times too large", "inside the square"],
    ),
    "layer_no_two": (
        ref.layer_style_cost,
        layer_style_with(ref.gram_matrix, lambda a: float(N(a)) ** 2),
        ["4 times too large", "inside the square"],
    ),
    "layer_mean": (
        ref.layer_style_cost,
        lambda a_S, a_G: ((ref.gram_matrix(a_S) - ref.gram_matrix(a_G)) ** 2).mean() / (2.0 * N(a_G)) ** 2,
        [".mean()", "n_C^2"],
    ),
    "layer_normalised_gram": (
        ref.layer_style_cost,
        layer_style_with(lambda a: ref.gram_matrix(a) / N(a), lambda a: (2.0 * N(a)) ** 2),
        ["divided by n_C*n_H*n_W", "not normalised"],
    ),
    "layer_mixed_unroll": (
        ref.layer_style_cost,
        layer_style_with(gram_channels_last, lambda a: (2.0 * N(a)) ** 2),
        ["mix channels and positions"],
    ),
    "layer_frobenius_not_squared": (
        ref.layer_style_cost,
        lambda a_S, a_G: torch.norm(ref.gram_matrix(a_S) - ref.gram_matrix(a_G)) / (2.0 * N(a_G)) ** 2,
        ["Frobenius norm", "square"],
    ),
    "layer_float": (
        ref.layer_style_cost,
        lambda a_S, a_G: ref.layer_style_cost(a_S, a_G).item(),
        ["Python float"],
    ),
    "layer_detached": (
        ref.layer_style_cost,
        lambda a_S, a_G: ref.layer_style_cost(a_S, a_G.detach()),
        ["does not require grad"],
    ),
    "layer_not_summed": (
        ref.layer_style_cost,
        lambda a_S, a_G: (ref.gram_matrix(a_S) - ref.gram_matrix(a_G)) ** 2 / (2.0 * N(a_G)) ** 2,
        ["shape", "sum"],
    ),
    # style_cost
    "style_ignores_lambda": (ref.style_cost, style_with(lambda J, w: sum(J.values())), ["ignores the weights"]),
    "style_average": (
        ref.style_cost,
        style_with(lambda J, w: sum(w[k] * J[k] for k in w) / len(w)),
        ["averages instead of summing"],
    ),
    "style_mean_no_lambda": (
        ref.style_cost,
        style_with(lambda J, w: sum(J.values()) / len(J)),
        ["averages", "ignores the weights"],
    ),
    "style_last_only": (
        ref.style_cost,
        style_with(lambda J, w: w[list(w)[-1]] * J[list(w)[-1]]),
        ["only the last layer"],
    ),
    "style_all_layers": (
        ref.style_cost,
        lambda acts_S, acts_G, w: sum(w.get(k, 1.0) * ref.layer_style_cost(acts_S[k], acts_G[k]) for k in acts_G),
        ["every layer of acts_G"],
    ),
    "style_float": (ref.style_cost, lambda *args: ref.style_cost(*args).item(), ["Python float"]),
    "style_detached": (
        ref.style_cost,
        lambda acts_S, acts_G, w: ref.style_cost(acts_S, {k: v.detach() for k, v in acts_G.items()}, w),
        ["does not require grad"],
    ),
    # total_cost
    "total_swapped": (
        ref.total_cost,
        lambda Jc, Js, alpha=10, beta=40: beta * Jc + alpha * Js,
        ["swapped alpha and beta"],
    ),
    "total_defaults": (
        ref.total_cost,
        lambda Jc, Js, alpha=10, beta=40: 10 * Jc + 40 * Js,
        ["ignores the alpha and beta"],
    ),
    "total_no_beta": (ref.total_cost, lambda Jc, Js, alpha=10, beta=40: alpha * Jc + Js, ["forgot beta"]),
    "total_float": (
        ref.total_cost,
        lambda Jc, Js, alpha=10, beta=40: (alpha * Jc + beta * Js).item(),
        ["Python float"],
    ),
    "total_detached": (
        ref.total_cost,
        lambda Jc, Js, alpha=10, beta=40: (alpha * Jc + beta * Js).detach(),
        ["does not require grad"],
    ),
}


def _step_no_zero_grad(G, objective, optimizer):
    J = objective(G)["J"]
    J.backward()
    optimizer.step()
    return J.item()


def _step_returns_after(G, objective, optimizer):
    optimizer.zero_grad()
    objective(G)["J"].backward()
    optimizer.step()
    return objective(G)["J"].item()


def _step_returns_tensor(G, objective, optimizer):
    optimizer.zero_grad()
    J = objective(G)["J"]
    J.backward()
    optimizer.step()
    return J


def _step_no_return(G, objective, optimizer):
    optimizer.zero_grad()
    J = objective(G)["J"]
    J.backward()
    optimizer.step()


def _step_no_step(G, objective, optimizer):
    optimizer.zero_grad()
    J = objective(G)["J"]
    J.backward()
    return J.item()


def _step_no_backward(G, objective, optimizer):
    optimizer.zero_grad()
    J = objective(G)["J"]
    optimizer.step()
    return J.item()


def _step_zero_grad_between(G, objective, optimizer):
    J = objective(G)["J"]
    J.backward()
    optimizer.zero_grad()
    optimizer.step()
    return J.item()


def _step_uphill(G, objective, optimizer):
    optimizer.zero_grad()
    J = objective(G)["J"]
    (-J).backward()
    optimizer.step()
    return J.item()


def _step_content_only(G, objective, optimizer):
    optimizer.zero_grad()
    terms = objective(G)
    terms["J_content"].backward()
    optimizer.step()
    return terms["J"].item()


WRONG_STEPS = {
    "accumulates": (_step_no_zero_grad, ["accumulate", "zero_grad"]),
    "returns_after": (_step_returns_after, ["after the step"]),
    "returns_tensor": (_step_returns_tensor, ["returns a tensor", "J.item()"]),
    "returns_none": (_step_no_return, ["returns None"]),
    "no_step": (_step_no_step, ["did not change", "optimizer.step()"]),
    "no_backward": (_step_no_backward, ["no gradient reached G", "J.backward()"]),
    "zero_grad_between": (_step_zero_grad_between, ["erased", "zero_grad() came after J.backward()"]),
    "uphill": (_step_uphill, ["uphill"]),
    "content_only": (_step_content_only, ["J_content"]),
}

CHECKERS = {
    "content_cost": (check_content_cost, ref.content_cost),
    "gram_matrix": (check_gram_matrix, ref.gram_matrix),
    "layer_style_cost": (check_layer_style_cost, ref.layer_style_cost),
    "style_cost": (check_style_cost, ref.style_cost),
    "total_cost": (check_total_cost, ref.total_cost),
    "optimization_step": (check_optimization_step, optimization_step),
}


def _exercise_for(reference_fn):
    return EXERCISES[reference_fn.__name__]


# --------------------------------------------------------------------------- tests


def test_exercises_registry():
    assert set(CHECKERS) <= set(EXERCISES)
    for grade_id, exercise in EXERCISES.items():
        assert exercise.grade_id == grade_id
        assert callable(exercise.diagnose)
        assert exercise.points == 1
        assert exercise.teaches and exercise.notebook
    assert EXERCISES["content_cost"].notebook == "02_content_cost"
    assert {EXERCISES[g].notebook for g in ("gram_matrix", "layer_style_cost", "style_cost")} == {"03_style_cost"}
    assert {EXERCISES[g].notebook for g in ("total_cost", "optimization_step")} == {"04_neural_style_transfer"}
    for name in CHECKERS:
        assert f"check_{name}" in checks.__all__


@pytest.mark.parametrize("grade_id", list(CHECKERS))
def test_reference_passes_with_one_line(grade_id, capsys):
    check, reference = CHECKERS[grade_id]
    assert EXERCISES[grade_id].evaluate(reference).passed, EXERCISES[grade_id].evaluate(reference).report()
    check(reference)
    assert capsys.readouterr().out == f"{grade_id}: all checks passed\n"


def test_zero_grad_after_the_step_is_also_correct():
    assert EXERCISES["optimization_step"].evaluate(optimization_step_zero_after).passed


def test_float32_and_float64_implementations_pass():
    def content64(a_C, a_G):
        return 0.5 * ((a_C.double() - a_G.double()) ** 2).sum()

    def gram_einsum(a):
        return torch.einsum("bkij,blij->kl", a, a)

    def gram_channels_last_done_right(a):
        A = a.permute(0, 2, 3, 1).reshape(-1, a.shape[1])
        return A.T @ A

    assert EXERCISES["content_cost"].evaluate(content64).passed
    assert EXERCISES["gram_matrix"].evaluate(gram_einsum).passed
    assert EXERCISES["gram_matrix"].evaluate(gram_channels_last_done_right).passed


@pytest.mark.parametrize("case", list(WRONG))
def test_wrong_implementation_is_diagnosed(case, capsys):
    reference, wrong, words = WRONG[case]
    exercise = _exercise_for(reference)
    result = exercise.evaluate(wrong)
    assert not result.passed
    text = " ".join(result.problems)
    for word in words:
        assert word in text, f"{case}: {word!r} not in {text!r}"
    exercise.check(wrong)  # never raises
    out = capsys.readouterr().out
    assert "problem(s) found" in out and "all checks passed" not in out


@pytest.mark.parametrize("case", list(WRONG_STEPS))
def test_wrong_optimization_step_is_diagnosed(case):
    wrong, words = WRONG_STEPS[case]
    result = EXERCISES["optimization_step"].evaluate(wrong)
    assert not result.passed
    text = " ".join(result.problems)
    for word in words:
        assert word in text, f"{case}: {word!r} not in {text!r}"


def test_factor_messages_name_the_number():
    problems = EXERCISES["content_cost"].diagnose(lambda a_C, a_G: 0.5 * ((a_C - a_G) ** 2).mean())
    assert "= 0.0166667 for shape [1, 3, 4, 5]" in problems[0]  # 1/60
    problems = EXERCISES["layer_style_cost"].diagnose(WRONG["layer_no_normaliser"][1])
    assert "= 14400 for shape [1, 3, 4, 5]" in problems[0]  # (2*60)^2


@pytest.mark.parametrize("grade_id", list(CHECKERS))
def test_not_implemented_and_crashes_never_raise(grade_id, capsys):
    check, _ = CHECKERS[grade_id]
    result = EXERCISES[grade_id].evaluate(not_implemented)
    assert result.not_implemented and "not implemented yet" in result.report()
    check(not_implemented)
    assert capsys.readouterr().out == f"{grade_id}: {NOT_IMPLEMENTED}\n"

    def crashes(*args):
        return 1 / 0

    check(crashes)
    assert "ZeroDivisionError" in capsys.readouterr().out
    check(lambda *args: None)
    assert "problem(s) found" in capsys.readouterr().out
    check("not a function")
    assert "expected a function" in capsys.readouterr().out


def test_in_place_change_of_an_input_is_reported():
    def content_in_place(a_C, a_G):
        a_C -= a_G.detach()
        return 0.5 * (a_C**2).sum() + 0 * a_G.sum()

    problems = EXERCISES["content_cost"].diagnose(content_in_place)
    assert any("in place" in p for p in problems)


def test_constant_zero_is_reported():
    problems = EXERCISES["content_cost"].diagnose(lambda a_C, a_G: torch.zeros(()))
    assert "returns 0 on every test" in problems[0]


def test_convnets_exercises_are_merged_when_present(monkeypatch):
    import importlib
    import sys
    import types

    from course_nst.checks import Exercise

    fake = types.ModuleType("course_nst.checks.convnets")
    fake.__all__ = ["check_receptive_field"]
    fake.EXERCISES = [
        Exercise("receptive_field", "receptive_field", lambda fn: [], "01_what_convnets_learn", "a unit sees a patch")
    ]
    fake.check_receptive_field = fake.EXERCISES[0].check
    monkeypatch.setitem(sys.modules, "course_nst.checks.convnets", fake)
    try:
        reloaded = importlib.reload(checks)
        from course_nst.checks import controls as notebook05
        from course_nst.checks import transfer as notebook04

        notebook05_ids = {e.grade_id for e in notebook05.EXERCISES}
        notebook04_ids = {e.grade_id for e in notebook04.EXERCISES}  # total_variation is tested on its own
        assert set(reloaded.EXERCISES) == set(CHECKERS) | {"receptive_field"} | notebook04_ids | notebook05_ids
        assert reloaded.check_receptive_field is fake.check_receptive_field
    finally:
        monkeypatch.delitem(sys.modules, "course_nst.checks.convnets")
        importlib.reload(checks)
    assert set(checks.EXERCISES) >= set(CHECKERS)
