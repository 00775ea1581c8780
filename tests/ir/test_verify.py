"""The verifier: SSA, result types, attributes and state updates of graphs built in Python."""

from __future__ import annotations

import pytest

from gcomp.ir import (
    GcompError,
    Graph,
    IRVerifyError,
    Node,
    TensorType,
    Value,
    float32,
    int64,
    verify,
)

F34 = TensorType((3, 4), float32)


def base():
    """x -> exp (model.py:3) -> reduce_sum over axis 1; a state w updated with itself."""
    g = Graph("f")
    x = g.add_input(F34, "x")
    w = g.add_input(TensorType((4,), float32), "w", state="w")
    e = g.add_node("exp", [x], loc="model.py:3")
    r = g.add_node("reduce_sum", [e.outputs[0]], {"axes": [1]}, loc="model.py:4")
    g.outputs = [e.outputs[0], r.outputs[0]]
    g.updates = [("w", w)]
    return g


def other_value():
    return Graph("other").add_input(F34, "stranger")


def test_valid_graphs_pass():
    g = base()
    assert verify(g) is g
    # a multi-output node, a new state, an update of a state by a computed value
    t = Graph("train")
    x = t.add_input(TensorType((8, 3), float32), "x")
    w = t.add_input(TensorType((3,), float32), "fc.weight", state="fc.weight")
    y = t.add_node("dot_general", [x, w], {"contract": [[1, 0]]}).outputs[0]
    loss = t.add_node("reduce_sum", [y], {"axes": [0]}).outputs[0]
    seed = t.add_node("full", [], {"shape": [], "value": 1.0, "dtype": float32}).outputs[0]
    grads = t.add_node("grad", [loss, seed, w, x]).outputs
    new_w = t.add_node("sub", [w, grads[0]]).outputs[0]
    t.outputs = [loss, grads[1]]
    t.updates = [("fc.weight", new_w), ("fc.weight.grad", grads[0])]
    assert verify(t) is t
    assert verify(Graph("empty")) is not None


def _use_before_def(g):
    g.nodes.reverse()


def _operand_from_another_graph(g):
    g.nodes[0].inputs = [other_value()]


def _node_listed_twice(g):
    g.nodes.append(g.nodes[0])


def _result_is_a_graph_input(g):
    g.inputs.append(g.nodes[0].outputs[0])


def _input_listed_twice(g):
    g.inputs.append(g.inputs[0])


def _input_with_producer(g):
    g.inputs[0].producer = g.nodes[0]


def _output_not_defined(g):
    g.outputs.append(other_value())


def _update_not_defined(g):
    g.updates.append(("w.grad", other_value()))


def _state_updated_twice(g):
    g.updates.append(("w", g.inputs[1]))


def _state_captured_twice(g):
    g.add_input(TensorType((4,), float32), "w2", state="w")


def _update_of_wrong_type(g):
    g.updates = [("w", g.nodes[1].outputs[0])]


def _wrong_result_shape(g):
    g.nodes[0].outputs[0].type = TensorType((4, 3), float32)


def _wrong_result_dtype(g):
    g.nodes[1].outputs[0].type = TensorType((3,), int64)


def _extra_result(g):
    n = g.nodes[0]
    n.outputs.append(Value(F34, n, 1))


def _result_points_elsewhere(g):
    g.nodes[0].outputs[0].index = 3


def _unknown_op(g):
    g.nodes[0].op = "frobnicate"


def _wrong_arity(g):
    g.nodes[0].inputs.append(g.inputs[0])


def _operand_of_wrong_dtype(g):
    g.nodes[0].inputs = [g.add_input(TensorType((3, 4), int64), "i")]


def _unknown_attribute(g):
    g.nodes[1].attrs["foo"] = 1


def _missing_attribute(g):
    del g.nodes[1].attrs["axes"]


def _missing_defaulted_attribute(g):
    del g.nodes[1].attrs["keepdims"]


def _attribute_of_wrong_kind(g):
    g.nodes[1].attrs["axes"] = "1"


def _bool_for_an_int(g):
    g.nodes[1].attrs["axes"] = (True,)


def _axis_out_of_range(g):
    g.nodes[1].attrs["axes"] = (5,)


CASES = [
    (_use_before_def, r"node 0 \(reduce_sum, model.py:4\): operand .* is not defined before use"),
    (_operand_from_another_graph, r"node 0 \(exp, model.py:3\): operand Value\(stranger"),
    (_node_listed_twice, r"node 2 \(exp, model.py:3\): result 0 is defined twice"),
    (_result_is_a_graph_input, r"graph input .* has a producer"),
    (_input_listed_twice, r"graph input Value\(x: f32\[3,4\]\) is listed twice"),
    (_input_with_producer, r"graph input Value\(x.*has a producer"),
    (_output_not_defined, r"graph output Value\(stranger: f32\[3,4\]\) is not defined"),
    (_update_not_defined, r"update of 'w.grad' uses an undefined value"),
    (_state_updated_twice, r"state 'w' is updated twice"),
    (_state_captured_twice, r"state 'w' is captured twice"),
    (_update_of_wrong_type, r"update of 'w': f32\[3\] does not match f32\[4\]"),
    (_wrong_result_shape, r"node 0 \(exp, model.py:3\): results are f32\[4,3\], the op's rule "
                          r"gives f32\[3,4\]"),
    (_wrong_result_dtype, r"node 1 .*results are i64\[3\], the op's rule gives f32\[3\]"),
    (_extra_result,
     r"node 0 .*results are f32\[3,4\], f32\[3,4\], the op's rule gives f32\[3,4\]$"),
    (_result_points_elsewhere, r"node 0 .*result 0 does not point back to its node"),
    (_unknown_op, r"node 0 \(frobnicate, model.py:3\): unknown op 'frobnicate'"),
    (_wrong_arity, r"node 0 .*exp takes 1 operand\(s\), got 2"),
    (_operand_of_wrong_dtype, r"node 0 .*exp needs a floating-point operand, got i64\[3,4\]"),
    (_unknown_attribute, r"node 1 \(reduce_sum, model.py:4\): reduce_sum: unknown attribute 'foo' "
                         r"\(attributes: axes, keepdims\)"),
    (_missing_attribute, r"node 1 .*reduce_sum: missing attribute 'axes'"),
    (_missing_defaulted_attribute, r"node 1 .*attribute\(s\) keepdims missing"),
    (_attribute_of_wrong_kind, r"node 1 .*attribute axes='1' is not a valid ints"),
    (_bool_for_an_int, r"node 1 .*attribute axes=\(True,\) is not a valid ints"),
    (_axis_out_of_range, r"node 1 .*reduce_sum: axis 5 out of range for rank 2"),
]


@pytest.mark.parametrize("breaks, message", CASES, ids=[f.__name__[1:] for f, _ in CASES])
def test_broken_graphs_raise_with_a_useful_message(breaks, message):
    g = base()
    verify(g)
    breaks(g)
    with pytest.raises(IRVerifyError, match=message) as info:
        verify(g)
    assert isinstance(info.value, GcompError)


def test_node_built_without_add_node_is_checked_like_any_other():
    g = Graph("f")
    x = g.add_input(F34, "x")
    node = Node("transpose", [x], {"perm": (1, 0)})
    node.outputs = [Value(TensorType((4, 3), float32), node, 0)]
    g.nodes.append(node)
    g.outputs = node.outputs
    assert verify(g) is g
    node.outputs[0].type = TensorType((3, 4), float32)
    with pytest.raises(IRVerifyError, match=r"results are f32\[3,4\], the op's rule gives "
                                            r"f32\[4,3\]"):
        verify(g)
