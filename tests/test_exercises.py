"""The exercise engine: the three outcomes, staged hints, messages that never contain the expected value, the
recognised mistakes, the registry of a chapter's exercises, and the older ``hint=`` style.

covers: mmtutor.exercises (check, check_function, check_properties, exercise, exercises_of, read_statuses,
passed, reset_attempts), mmtutor.exercises._compare, mmtutor.exercises._outcome, mmtutor.exercises._registry
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mmtutor.exercises import (
    ExerciseFailed,
    check,
    check_function,
    check_properties,
    exercise,
    exercises_of,
    passed,
    read_statuses,
    reset_attempts,
)


@pytest.fixture(autouse=True)
def fresh_attempts():
    reset_attempts()
    yield
    reset_attempts()


def _failure(fn, *args, **kwargs) -> ExerciseFailed:
    with pytest.raises(ExerciseFailed) as info:
        fn(*args, **kwargs)
    return info.value


# --- the three outcomes -------------------------------------------------------------------------------------

@pytest.mark.parametrize("answer, expected", [
    (3, 3), (0.1 + 0.2, 0.3), (torch.tensor(2.0), 2.0), (np.float32(1.5), 1.5), (True, True),
    ("Queen ", "queen"), ({"a", "b"}, {"b", "a"}), ([1, 2.0], [1, 2]), ({"k": 1}, {"k": 1}),
    (torch.arange(4).float(), torch.arange(4).float()), (torch.tensor([1, 2]), torch.tensor([1, 2])),
    (np.array([1.0, 2.0]), np.array([1.0, 2.0])), (None, None), ((torch.ones(2), 3), (torch.ones(2), 3)),
])
def test_right_answers_pass_and_return_none(answer, expected, capsys):
    assert check("Exercise 1", answer, expected) is None  # nothing for the notebook to echo as `True`
    out = capsys.readouterr().out
    assert out.startswith("PASS Exercise 1: correct.")
    assert passed("Exercise 1")


@pytest.mark.parametrize("answer, expected, message", [
    (4, 3, "the number is not right"),
    (2.5, 2, "should be a whole number"),
    ([1, 2], torch.tensor([1, 2]), "should be a torch.Tensor"),
    (torch.zeros(2, 3), torch.zeros(3, 2), "should have shape (3, 2), got (2, 3)"),
    (torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.5]), "1 of 2 entries is wrong, the first at index (1,)"),
    (torch.tensor([[1, 2], [3, 4]]), torch.tensor([[1, 0], [0, 4]]),
     "2 of 4 entries are wrong, the first at index (0, 1)"),
    (torch.tensor([0.5, 1.0]), torch.tensor([0, 1]), "should be an integer or bool tensor"),
    (torch.tensor([float("nan")]), torch.tensor([1.0]), "contains NaN"),
    (torch.tensor([float("inf")]), torch.tensor([1.0]), "contains an infinity"),
    ("king", 1.0, "should be a number, got str"),
    ({"a", "z"}, {"a", "b"}, "1 of your items does not belong: ['z']; 1 item is missing"),
    ([1], [1, 2], "should have 2 items, got 1"),
    ([1, 5], [1, 2], "the number at [1] is not right"),
    ({"k": 2}, {"k": 1}, "the number at ['k'] is not right"),
    ({"j": 1}, {"k": 1}, "1 key is missing; these keys do not belong: ['j']"),
    (1, True, "should be True or False, got int"),
    (False, True, "the answer is not right"),
    ("queen", "king", "the string is not right"),
    (3, None, "the answer is not right (got int)"),
])
def test_wrong_answers_raise_and_say_what_is_wrong(answer, expected, message):
    error = _failure(check, "Exercise 2", answer, expected)
    assert isinstance(error, AssertionError)
    assert str(error).startswith("FAIL Exercise 2: ") and message in str(error), str(error)
    assert (error.number, error.part, error.attempt) == (2, None, 1)
    assert not passed("Exercise 2")


def test_stubs_print_todo_and_let_the_notebook_run(capsys):
    def stub(x):
        raise NotImplementedError("Exercise 3")

    inputs = lambda g: (torch.randn(3, generator=g),)  # noqa: E731
    assert check("Exercise 3", ..., 1) is None
    assert check("Exercise 3 (pair)", (torch.ones(2), ...), (torch.ones(2), 1)) is None
    assert check_function("Exercise 3", ..., torch.exp, inputs) is None
    assert check_function("Exercise 3", stub, torch.exp, inputs) is None
    assert check_properties("Exercise 3", ..., [("is positive", lambda x: x > 0)]) is None
    assert check_properties("Exercise 3", stub, [("exp(0) is 1", lambda f: f(torch.zeros(1)) == 1)]) is None
    statuses = read_statuses(capsys.readouterr().out)
    assert [s.status for s in statuses] == ["TODO"] * 6
    assert [s.number for s in statuses] == [3] * 6 and statuses[1].part == "pair"
    assert "hint" not in " ".join(s.message for s in statuses)  # no hint at TODO time
    assert not passed("Exercise 3")


def test_feedback_follows_a_pass_only(capsys):
    check("Exercise 1", 15, 15, feedback="(nn.Linear(4, 3) learns 15 numbers)")
    assert capsys.readouterr().out.strip() == "PASS Exercise 1: correct. (nn.Linear(4, 3) learns 15 numbers)"
    assert "learns" not in str(_failure(check, "Exercise 1", 14, 15, feedback="(learns 15)"))


def test_tolerances():
    check("Exercise 1", 1.0 + 1e-7, 1.0)
    check("Exercise 1", 105.0, 100.0, rtol=0.06)
    _failure(check, "Exercise 1", 105.0, 100.0, rtol=0.01)
    check("Exercise 1", torch.tensor([1.0, 2.0]) + 1e-3, torch.tensor([1.0, 2.0]), atol=1e-2)
    _failure(check, "Exercise 1", torch.tensor([1.0, 2.0]) + 1e-3, torch.tensor([1.0, 2.0]))


def test_status_lines_parse_back():
    text = ("PASS Exercise 1: correct.\nnoise\nTODO Exercise 12 (part b): not done yet.\n"
            + str(ExerciseFailed("Exercise 3", "the number is not right", ["think"], 1)))
    statuses = read_statuses(text)
    assert [(s.status, s.number, s.part) for s in statuses] == [("PASS", 1, None), ("TODO", 12, "part b"),
                                                                ("FAIL", 3, None)]
    assert statuses[2].message == "the number is not right"


@pytest.mark.parametrize("name", ["exercise 1", "Exercise", "Ex 1", "Exercise 1: x", 3])
def test_a_malformed_name_is_refused(name):
    with pytest.raises(ValueError, match="Exercise N"):
        check(name, 1, 1)


# --- staged hints ---------------------------------------------------------------------------------------------

def test_hints_are_staged_per_exercise():
    hints = ("first, general", "second, closer", "third")
    first = _failure(check, "Exercise 4", 1, 2, hints=hints)
    assert "hint 1: first, general" in str(first) and "hint 2" not in str(first) and first.hints == hints[:1]
    other = _failure(check, "Exercise 5", 1, 2, hints=hints)  # another exercise keeps its own counter
    assert other.attempt == 1 and "hint 2" not in str(other)
    second = _failure(check, "Exercise 4", 1, 2, hints=hints)
    assert second.attempt == 2 and "hint 1: first" in str(second) and "hint 2: second, closer" in str(second)
    assert "hint 3" not in str(second)
    assert "hint 3: third" in str(_failure(check, "Exercise 4", 1, 2, hints=hints))
    fourth = _failure(check, "Exercise 4", 1, 2, hints=hints)
    assert fourth.attempt == 4 and fourth.hints == hints  # all of them, no more
    reset_attempts("Exercise 4")
    assert _failure(check, "Exercise 4", 1, 2, hints=hints).attempt == 1


def test_hints_count_across_all_three_checks():
    inputs = lambda g: (torch.randn(3, generator=g),)  # noqa: E731
    _failure(check_function, "Exercise 6", torch.sin, torch.exp, inputs, hints=("a", "b", "c"))
    error = _failure(check_properties, "Exercise 6", -1, [("is positive", lambda x: x > 0)], hints=("a", "b", "c"))
    assert error.attempt == 2 and error.hints == ("a", "b")


def test_the_older_hint_keyword_is_a_one_element_hint():
    for attempt in (1, 2):
        error = _failure(check, "Exercise 7", 4, 3, hint="think again")
        assert error.attempt == attempt and error.hints == ("think again",)
        assert str(error) == "FAIL Exercise 7: the number is not right\n  hint 1: think again"
    inputs = lambda g: (torch.randn(3, generator=g),)  # noqa: E731
    error = _failure(check_function, "Exercise 8", torch.sin, torch.exp, inputs, hint="use exp")
    assert str(error).endswith("\n  hint 1: use exp")


def test_hint_arguments_are_checked():
    with pytest.raises(TypeError, match="not both"):
        check("Exercise 1", 1, 1, hint="a", hints=("b",))
    with pytest.raises(TypeError, match="sequence of strings"):
        check("Exercise 1", 1, 1, hints="a single string")
    with pytest.raises(TypeError, match="non-empty string"):
        check("Exercise 1", 1, 1, hints=("", "b"))


# --- check_function and check_properties ------------------------------------------------------------------------

def test_check_function_compares_on_hidden_inputs(capsys):
    inputs = lambda g: (torch.randn(int(torch.randint(1, 6, (1,), generator=g)), 5, generator=g),)  # noqa: E731
    check_function("Exercise 4", lambda x: x.softmax(-1), lambda x: torch.softmax(x, dim=-1), inputs, trials=4)
    assert capsys.readouterr().out.startswith("PASS Exercise 4: correct on 4 hidden test inputs.")
    error = _failure(check_function, "Exercise 4", lambda x: x.softmax(0), lambda x: torch.softmax(x, -1), inputs)
    assert "on hidden test input 1 of 3 (tensor (5, 5) float32)" in str(error) and "entries are wrong" in str(error)
    error = _failure(check_function, "Exercise 4", lambda x: 1 / 0, torch.exp, inputs)
    assert "your function raised ZeroDivisionError: division by zero" in str(error)
    assert "should be a function, got int" in str(_failure(check_function, "Exercise 4", 3, torch.exp, inputs))
    with pytest.raises(ValueError, match="trials"):
        check_function("Exercise 4", torch.exp, torch.exp, inputs, trials=0)


def test_check_function_is_not_fooled_by_in_place_changes():
    def sneaky(x):
        x.zero_()
        return x

    _failure(check_function, "Exercise 5", sneaky, lambda x: x.clone(), lambda g: (torch.randn(3, generator=g) + 5,))
    # a reference that changes its inputs in place does not change what the learner's function sees
    check_function("Exercise 5", lambda x: x * 2, lambda x: x.mul_(2), lambda g: (torch.randn(3, generator=g),))


def test_each_check_recognises_its_typical_mistakes():
    message = "you summed over the batch, not over the features"
    inputs = lambda g: (torch.randn(4, 4, generator=g),)  # noqa: E731  square: both sums have the same shape
    mistakes = [("the square root is missing", lambda v: v.square().sum(-1)), (message, lambda v: v.sum(0))]
    error = _failure(check_function, "Exercise 1", lambda v: v.sum(0), lambda v: v.sum(-1), inputs, mistakes=mistakes)
    assert str(error).startswith(f"FAIL Exercise 1: on hidden test input 1 of 3 (tensor (4, 4) float32): {message}")
    other = _failure(check_function, "Exercise 1", lambda v: v.sum(-1) + 1, lambda v: v.sum(-1), inputs,
                     mistakes=[(message, lambda v: v.sum(0)), ("broken", lambda v: 1 / 0)])
    assert message not in str(other) and "entries are wrong" in str(other)  # an unrelated error, a failing variant
    assert "forgot the bias" in str(_failure(check, "Exercise 2", 12, 15, mistakes=[("forgot the bias", 12)]))
    assert "the number is not right" in str(_failure(check, "Exercise 2", 13, 15, mistakes=[("forgot the bias", 12)]))
    rows = [("rows sum to 1", lambda p: torch.allclose(p.sum(-1), torch.ones(len(p))))]
    columns = [("each column sums to 1, not each row", lambda p: torch.allclose(p.sum(0), torch.ones(p.shape[1])))]
    error = _failure(check_properties, "Exercise 3", torch.full((2, 3), 0.2), rows, mistakes=columns)
    assert str(error).startswith("FAIL Exercise 3: not true of your answer: rows sum to 1")
    error = _failure(check_properties, "Exercise 3", torch.full((2, 3), 0.5), rows, mistakes=columns)
    assert str(error).startswith("FAIL Exercise 3: each column sums to 1, not each row")


def test_check_properties_names_the_first_property_that_fails(capsys):
    properties = [("is a (3, 3) tensor", lambda p: isinstance(p, torch.Tensor) and p.shape == (3, 3)),
                  ("is non-negative", lambda p: bool((p >= 0).all())),
                  ("every row sums to 1", lambda p: torch.allclose(p.sum(-1), torch.ones(3)))]
    check_properties("Exercise 9", torch.rand(3, 3).softmax(-1), properties)
    assert capsys.readouterr().out.strip() == "PASS Exercise 9: correct: all 3 properties hold."
    assert str(_failure(check_properties, "Exercise 9", torch.rand(3, 3), properties)).startswith(
        "FAIL Exercise 9: not true of your answer: every row sums to 1")
    error = _failure(check_properties, "Exercise 9", [1], properties)
    assert "not true of your answer: is a (3, 3) tensor" in str(error)
    broken = [("has an entry 0", lambda p: p[0] == 0)]
    assert "could not check that has an entry 0: TypeError" in str(_failure(check_properties, "Exercise 9", 5, broken))
    with pytest.raises(ValueError, match="non-empty"):
        check_properties("Exercise 9", 1, [])


# --- no expected value in any message --------------------------------------------------------------------------

def _renderings(value: float) -> set[str]:
    """How an expected number could appear in a message: repr, str, a few rounding formats."""
    value = float(value)
    forms = {repr(value), str(value), f"{value:.6g}", f"{value:.4g}", f"{value:.4f}", f"{value:.3g}"}
    if value.is_integer():
        forms.add(str(int(value)))
    return {f for f in forms if len(f.lstrip("-")) >= 4}  # shorter forms match indices and counts by chance


def _assert_no_leak(error: ExerciseFailed, expected_numbers) -> None:
    text = str(error)
    for value in np.asarray(expected_numbers, dtype=float).ravel():
        leaked = [form for form in _renderings(value) if form in text]
        assert not leaked, f"{text!r} shows the expected value {leaked}"


distinctive = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, allow_infinity=False).filter(
    lambda x: abs(x) > 1e-2 and len(_renderings(x)) >= 3)


@settings(max_examples=60, deadline=None)
@given(expected=distinctive, offset=st.floats(min_value=0.01, max_value=100), sign=st.sampled_from([-1, 1]),
       kind=st.sampled_from(["float", "tensor", "list", "dict", "string", "int"]))
def test_no_message_shows_an_expected_number(expected, offset, sign, kind):
    wrong = expected + sign * offset * max(1.0, abs(expected))
    assume(not math.isclose(wrong, expected, rel_tol=1e-3))
    answer = {"float": wrong, "tensor": torch.tensor(wrong), "list": [wrong], "dict": {"k": wrong},
              "string": str(wrong), "int": round(wrong) + 0.5}[kind]
    target = {"list": [expected], "dict": {"k": expected}, "tensor": expected}.get(kind, expected)
    error = _failure(check, "Exercise 1", answer, target, hints=("count the weights",),
                     mistakes=[("looks like a different quantity", 1e9)])
    _assert_no_leak(error, [expected])


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), rows=st.integers(1, 5), cols=st.integers(1, 6), integer=st.booleans())
def test_no_message_shows_an_expected_tensor_entry(seed, rows, cols, integer):
    g = torch.Generator().manual_seed(seed)
    expected = torch.randn(rows, cols, generator=g, dtype=torch.float64) * 1000
    if integer:
        expected = expected.round().long() + 10_000 * expected.sign().long()  # entries with at least 4 digits
    wrong = expected.clone()
    mask = torch.rand(rows, cols, generator=g) < 0.5
    mask.view(-1)[0] = True
    wrong[mask] = wrong[mask] * 3 + 7
    error = _failure(check, "Exercise 1", wrong, expected)
    _assert_no_leak(error, expected.numpy())
    error = _failure(check_function, "Exercise 2", lambda x: x * 3 + 7, lambda x: x.clone(), lambda g_: (expected,))
    _assert_no_leak(error, expected.numpy())


def test_no_message_shows_an_expected_word_key_or_member():
    words = [f"zq{i}answerword" for i in range(6)]
    cases = [("other", words[0]), ({"zzwrong"}, set(words[:3])), (set(words[:1]), set(words[:3])),
             ({"zzwrong": 1}, {words[0]: 1}), (["zzwrong", words[1]], words[:2]), ({"zzwrong"}, {words[0]}),
             (3, words[0]), ((words[0], 5), (words[1], 5))]
    for answer, expected in cases:
        text = str(_failure(check, "Exercise 1", answer, expected))
        leaked = [w for w in words if w in text and w not in repr(answer)]
        assert not leaked, f"{text!r} shows {leaked}"


# --- the registry -----------------------------------------------------------------------------------------------

NEGATIVE = "the answer is negative: a length never is"


@exercise(1, tests="the norm of each row", wrong_answers={"returns the squared norm": NEGATIVE},
          answers=lambda: [7.25])
def check_norm(answer) -> None:
    """Exercise 1: the norm of a row.

    More words."""
    check("Exercise 1", answer, 7.25, mistakes=[(NEGATIVE, -7.25)])


@exercise(2, tests="a count", answers=(15,))
def check_count(answer) -> None:
    check("Exercise 2", answer, 15)


def test_the_registry_lists_a_chapters_exercises():
    infos = exercises_of(sys.modules[__name__])
    assert [(i.number, i.function, i.tests) for i in infos] == [(1, "check_norm", "the norm of each row"),
                                                                 (2, "check_count", "a count")]
    assert infos[0].wrong_answers == {"returns the squared norm": NEGATIVE}
    assert infos[0].summary == "Exercise 1: the norm of a row." and infos[1].summary == ""
    assert infos[0].expected_values() == [7.25] and infos[1].expected_values() == [15]
    assert "Tests: the norm of each row" in check_norm.__doc__ and NEGATIVE in check_norm.__doc__
    assert "More words." in check_norm.__doc__
    assert str(_failure(check_norm, -7.25)).startswith(f"FAIL Exercise 1: {NEGATIVE}")  # the message is printed


def test_the_registry_refuses_bad_declarations():
    with pytest.raises(ValueError, match="twice"):
        @exercise(1, tests="again")
        def another(answer) -> None: ...
    for bad in [dict(number=0, tests="x"), dict(number=1, tests=" "), dict(number=1, tests="x", answers="15"),
                dict(number=1, tests="x", wrong_answers={"w": 3})]:
        with pytest.raises(ValueError):
            exercise(**bad)
    with pytest.raises(ValueError, match="chapter"):
        exercises_of(-1)
    with pytest.raises(ModuleNotFoundError):
        exercises_of(99)
