"""The exercise checks and the student-copy writer.

covers: mmtutor.exercises, mmtutor.student (stub_source, student_notebook)
"""

import ast
import json

import numpy as np
import pytest
import torch

from mmtutor.exercises import ExerciseFailed, check, check_function
from mmtutor.student import stub_source, student_notebook


@pytest.mark.parametrize("answer, expected", [
    (3, 3), (0.1 + 0.2, 0.3), (torch.tensor(2.0), 2.0), (np.float32(1.5), 1.5), (True, True),
    ("Queen ", "queen"), ({"a", "b"}, {"b", "a"}), ([1, 2.0], [1, 2]), ({"k": 1}, {"k": 1}),
    (torch.arange(4).float(), torch.arange(4).float()), (torch.tensor([1, 2]), torch.tensor([1, 2])),
])
def test_right_answers_pass(answer, expected, capsys):
    assert check("Exercise 1", answer, expected) is True
    assert "PASS Exercise 1" in capsys.readouterr().out


@pytest.mark.parametrize("answer, expected, message", [
    (4, 3, "expected 3, got 4"),
    (2.5, 2, "whole number"),
    ([1, 2], torch.tensor([1, 2]), "torch.Tensor"),
    (torch.zeros(2, 3), torch.zeros(3, 2), "expected shape (3, 2), got (2, 3)"),
    (torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.5]), "first at index (1,)"),
    (torch.tensor([0.5, 1.0]), torch.tensor([0, 1]), "integer/bool"),
    (torch.tensor([float("nan")]), torch.tensor([1.0]), "NaN"),
    ("king", 1.0, "expected a number"),
    ({"a"}, {"a", "b"}, "missing ['b']"),
    ([1], [1, 2], "expected 2 items"),
    (1, True, "True or False"),
])
def test_wrong_answers_raise_with_what_differed(answer, expected, message):
    with pytest.raises(ExerciseFailed, match=None) as info:
        check("Exercise 2", answer, expected, hint="think again")
    assert message in str(info.value) and "hint: think again" in str(info.value)
    assert str(info.value).startswith("Exercise 2:")


def test_not_done_prints_todo_and_does_not_raise(capsys):
    assert check("Exercise 3", ..., 1) is False

    def stub(x):
        raise NotImplementedError("Exercise 3: write stub")

    assert check_function("Exercise 3", stub, torch.exp, lambda g: (torch.randn(3, generator=g),)) is False
    out = capsys.readouterr().out
    assert out.count("TODO Exercise 3") == 2


def test_check_function_compares_on_hidden_inputs(capsys):
    inputs = lambda g: (torch.randn(4, 5, generator=g),)  # noqa: E731
    assert check_function("Exercise 4", lambda x: x.softmax(-1), lambda x: torch.softmax(x, dim=-1), inputs)
    with pytest.raises(ExerciseFailed, match="on test input 1 of 3"):
        check_function("Exercise 4", lambda x: x.softmax(0), lambda x: torch.softmax(x, dim=-1), inputs)
    with pytest.raises(ExerciseFailed, match="raised ZeroDivisionError"):
        check_function("Exercise 4", lambda x: 1 / 0, torch.exp, inputs)
    with pytest.raises(ExerciseFailed, match="expected a function"):
        check_function("Exercise 4", 3, torch.exp, inputs)


def test_check_function_is_not_fooled_by_in_place_changes():
    def sneaky(x):
        x.zero_()
        return x

    with pytest.raises(ExerciseFailed):
        check_function("Exercise 5", sneaky, lambda x: x.clone(), lambda g: (torch.randn(3, generator=g) + 5,))


SOLUTION = '''# Exercise 2
import torch
from torch import nn


@torch.no_grad()
def forget_gate(x, h, W, b=None) -> torch.Tensor:
    """f = sigmoid(W [h, x] + b)."""
    z = torch.cat([h, x], dim=-1) @ W.T
    return torch.sigmoid(z + (0 if b is None else b))


class Tiny(nn.Module):
    def forward(self, x):
        return x * 2


answer, other = 3, [1, 2]
total: int = 7
for i in range(3):
    print(i)
'''


def test_stub_keeps_the_interface_and_drops_the_solution():
    stub = stub_source(SOLUTION, 2)
    tree = ast.parse(stub)
    body_code = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    # The only calls left are the NotImplementedError constructors.
    assert all(isinstance(c.func, ast.Name) and c.func.id == "NotImplementedError" for c in body_code)
    assert "def forget_gate(x, h, W, b=None) -> torch.Tensor:" in stub
    assert '"""f = sigmoid(W [h, x] + b)."""' in stub
    assert 'raise NotImplementedError("Exercise 2: write forget_gate")' in stub
    assert "class Tiny(nn.Module):" in stub and "write forward" in stub
    for name in ("answer", "other", "total"):
        assert f"{name} = ...  # Exercise 2" in stub
    for leaked in ("torch.cat", "sigmoid(z", "x * 2", "print(i)", "= 3", "no_grad"):
        assert leaked not in stub
    namespace: dict = {}
    exec(compile(stub, "<stub>", "exec"), namespace)  # the stub itself runs
    with pytest.raises(NotImplementedError, match="Exercise 2"):
        namespace["forget_gate"](1, 2, 3)
    assert namespace["answer"] is Ellipsis


def test_student_notebook_stubs_only_solution_cells_and_clears_outputs():
    notebook = {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Title"]},
        {"cell_type": "code", "metadata": {}, "source": ["x = 1"], "outputs": [{"a": 1}], "execution_count": 3},
        {"cell_type": "code", "metadata": {"tags": ["solution", "hide-input"]}, "source": ["y = 2"],
         "outputs": [], "execution_count": None},
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    copy = student_notebook(notebook)
    assert notebook["cells"][1]["outputs"] == [{"a": 1}]  # the original is untouched
    assert copy["cells"][1]["source"] == ["x = 1"] and copy["cells"][1]["outputs"] == []
    assert copy["cells"][1]["execution_count"] is None
    assert "y = ...  # Exercise 1" in "".join(copy["cells"][2]["source"])
    assert copy["cells"][2]["metadata"]["tags"] == ["exercise-stub"]
    json.dumps(copy)
