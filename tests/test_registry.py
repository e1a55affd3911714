"""The name -> implementation maps: each name once, an unknown name listing the known ones."""

import pytest

from bptt.registry import Registry, UnknownNameError


def test_registered_entries_come_back_by_name_and_list_sorted():
    cells = Registry[object]("cell")

    @cells.register("lstm")
    def lstm():
        return "lstm"

    assert cells.add("gru", "the gru") == "the gru"
    assert cells.get("lstm") is lstm and cells.get("gru") == "the gru"
    assert cells.names() == ["gru", "lstm"] == list(cells)
    assert "gru" in cells and "rnn" not in cells and 3 not in cells


def test_a_name_registered_twice_is_refused_and_the_first_kept():
    tasks = Registry[int]("task")
    tasks.add("adding", 1)
    with pytest.raises(KeyError, match="task 'adding' is registered twice"):
        tasks.add("adding", 2)
    assert tasks.get("adding") == 1


def test_an_unknown_name_says_the_field_and_the_names_allowed():
    activations = Registry[int]("activation")
    for name in ("tanh", "relu", "sigmoid"):
        activations.add(name, 0)
    with pytest.raises(UnknownNameError, match=r"^unknown activation 'tahn'; allowed: relu, sigmoid, tanh$"):
        activations.get("tahn")
    assert issubclass(UnknownNameError, ValueError)  # caught with any other bad argument
    with pytest.raises(UnknownNameError, match="allowed: $"):
        Registry[int]("empty").get("x")
