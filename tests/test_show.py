"""Drawing IR graphs: ``gcomp show`` and ``compiled.show()`` (Note [Drawing a graph] in
gcomp/runtime/show.py). The SVG that graphviz writes is parsed with xml.etree and checked against
the IR text form (node lines, fusion lines, state inputs, updates), read here with regexes."""

import inspect
import re
import shutil
import xml.etree.ElementTree as ET

import pytest

import gcomp as torch
from gcomp import nn
from gcomp.cli import main
from gcomp.ir import Graph, TensorType, float32
from gcomp.ir.errors import GcompError
from gcomp.passes import run_passes
from gcomp.runtime import show

SVG = "{http://www.w3.org/2000/svg}"
XLINK_TITLE = "{http://www.w3.org/1999/xlink}title"
REGION_OPS = {"fusion", "cond", "scan"}
STATE_FILL = "#fde0b6"
ARG_FILL = "#d6e6f5"

needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="graphviz's dot is not installed (CI installs it)")


def _train_step():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    crit = nn.CrossEntropyLoss()

    @torch.compile
    def step(x, y):
        opt.zero_grad()
        loss = crit(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


FORWARD_LINE = inspect.getsourcelines(_train_step)[1] + 9  # `loss = crit(model(x), y)`


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    """The compiled MLP training step (default pipeline, so it has fusion regions), its
    arguments, its IR text and that text in a .gir file."""
    step = _train_step()
    x, y = torch.randn(4, 8), torch.randint(0, 3, (4,))
    text = step.ir(x, y)
    path = tmp_path_factory.mktemp("show") / "step.gir"
    path.write_text(text)
    return step, (x, y), text, path


def _node_ops(text: str) -> list[str]:
    """The op of every node line of an IR text, at any depth."""
    return re.findall(r"^\s*%[\w.]+: .*? = (\w+)\(", text, flags=re.M)


def _svg_groups(svg: str, cls: str) -> list:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == cls]


def _tooltip(g) -> str:
    a = next(g.iter(f"{SVG}a"), None)
    return a.get(XLINK_TITLE) if a is not None else ""


def _texts(g) -> str:
    return "\n".join(t.text or "" for t in g.iter(f"{SVG}text"))


def _fill(g) -> str:
    shape = next(e for e in g.iter() if e.tag in (f"{SVG}polygon", f"{SVG}path", f"{SVG}ellipse"))
    return shape.get("fill")


def test_the_line_constant_points_at_the_forward_call():
    lines, start = inspect.getsourcelines(_train_step)
    assert "crit(model(x), y)" in lines[FORWARD_LINE - start]


@needs_dot
def test_gcomp_show_writes_svg_with_one_box_per_node(mlp, tmp_path, capsys):
    _, _, text, gir = mlp
    out = tmp_path / "step.svg"
    assert main(["show", str(gir), "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    svg = out.read_text()
    nodes = _svg_groups(svg, "node")
    ops = _node_ops(text)
    boxes = [g for g in nodes if g.get("id").startswith("op")]
    assert len(boxes) == sum(op not in REGION_OPS for op in ops)
    assert ops.count("fusion") >= 3
    clusters = _svg_groups(svg, "cluster")
    assert len(clusters) == ops.count("fusion")
    assert all("= fusion" in _texts(c) for c in clusters)
    # every box's tooltip: its IR line and the user's source line
    where = f"at test_show.py:{FORWARD_LINE}"
    assert all(re.search(r" = \w+\(", _tooltip(b)) for b in boxes)
    assert sum(where in _tooltip(b) for b in boxes) >= 5
    dots = [b for b in boxes if "= dot_general" in _texts(b)]
    assert len(dots) == ops.count("dot_general") and where in _tooltip(dots[0])


@needs_dot
def test_svg_marks_arguments_state_outputs_and_updates(mlp, tmp_path):
    _, _, text, gir = mlp
    out = tmp_path / "step.svg"
    assert main(["show", str(gir), "--out", str(out)]) == 0
    svg = out.read_text()
    nodes = {g.get("id"): g for g in _svg_groups(svg, "node")}
    header = text.splitlines()[0]
    states = re.findall(r"%([\w.]+): \S+ state", header)
    args = [a for a in re.findall(r"%([\w.]+): [^,)]+", header) if a not in states]
    inputs = [g for i, g in nodes.items() if i.startswith("in")]
    assert len(inputs) == len(states) + len(args)
    assert sorted(_texts(g).split("\n")[0] for g in inputs if _fill(g) == STATE_FILL) == \
        sorted(states)
    assert sorted(_texts(g).split("\n")[0] for g in inputs if _fill(g) == ARG_FILL) == \
        sorted(f"%{a}" for a in args)
    updates = re.findall(r"^  update %([\w.]+) <-", text, flags=re.M)
    drawn = [_texts(g).split("\n")[0] for i, g in nodes.items() if i.startswith("update")]
    assert sorted(drawn) == sorted(f"update {u}" for u in updates)
    assert sum(i.startswith("out") for i in nodes) == 1  # return %loss
    # data flow: each update and output has one edge in; x feeds the first matmul
    edges = [g.find(f"{SVG}title").text.replace("&#45;&gt;", "->").split("->")
             for g in _svg_groups(svg, "edge")]
    assert all(a in nodes and b in nodes for a, b in edges)
    for i in nodes:
        if i.startswith(("update", "out")):
            assert sum(b == i for _, b in edges) == 1, i
    x_input = next(i for i, g in inputs_by_id(nodes) if _texts(g).startswith("%x\n"))
    first_dot = next(i for i, g in nodes.items() if "= dot_general" in _texts(g))
    assert [x_input, first_dot] in edges


def inputs_by_id(nodes):
    return [(i, g) for i, g in nodes.items() if i.startswith("in")]


@needs_dot
def test_gcomp_show_writes_a_self_contained_html_page(mlp, tmp_path, capsys):
    _, _, text, gir = mlp
    assert main(["show", str(gir), "--out", "-"]) == 0  # the SVG on stdout
    assert ET.fromstring(capsys.readouterr().out).tag == f"{SVG}svg"
    out = tmp_path / "step.html"
    assert main(["show", str(gir), "--out", str(out)]) == 0
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<h1>graph @step</h1>" in page
    assert f"{len(_node_ops(text))} nodes" in page
    assert not re.search(r"<script|<link|<img|src=|href=\"http|<!DOCTYPE svg", page)
    svg = page[page.index("<svg"):page.index("</svg>") + len("</svg>")]
    assert len([g for g in _svg_groups(svg, "node") if g.get("id").startswith("op")]) == \
        sum(op not in REGION_OPS for op in _node_ops(text))


@needs_dot
def test_compiled_show_renders_in_a_notebook(mlp, tmp_path):
    step, args, text, _ = mlp
    drawing = step.show(*args)
    svg = drawing._repr_svg_()
    assert ET.fromstring(svg).tag == f"{SVG}svg"
    assert drawing._repr_html_().startswith("<svg")
    assert drawing.source.startswith('digraph "step" {')
    assert drawing.text == text and drawing.message is None
    assert drawing.save(tmp_path / "a.svg").read_text() == drawing.svg
    assert drawing.save(tmp_path / "a.dot").read_text() == drawing.source
    with pytest.raises(GcompError, match=r"\.svg, \.html or \.dot"):
        drawing.save(tmp_path / "a.png")

    torch.manual_seed(0)
    cmodel = torch.compile(nn.Sequential(nn.Linear(4, 4), nn.Tanh()))
    msvg = cmodel.show(torch.randn(2, 4))._repr_svg_()
    inputs = [g for g in _svg_groups(msvg, "node") if g.get("id").startswith("in")]
    assert sorted(_fill(g) for g in inputs) == sorted([ARG_FILL, STATE_FILL, STATE_FILL])


@needs_dot
def test_control_flow_regions_are_nested_clusters(tmp_path):
    w = torch.randn(4, 4)

    @torch.compile
    def f(h0, xs):
        def body(h, x):
            h = torch.tanh(h @ w + x)
            h = torch.cond(h.sum() > 0, lambda a: a * 2, lambda a: a - 1, h)
            return h, h.sum()

        return torch.scan(body, h0, xs)

    h0, xs = torch.randn(2, 4), torch.randn(5, 2, 4)
    text = f.ir(h0, xs)
    svg = f.show(h0, xs).svg
    labels = sorted(_texts(c).strip() for c in _svg_groups(svg, "cluster"))
    assert labels == ["%0, %1 = scan", "%6 = cond", "else", "then"]
    nodes = {g.get("id"): g for g in _svg_groups(svg, "node")}
    assert sum(i.startswith("op") for i in nodes) == \
        sum(op not in REGION_OPS for op in _node_ops(text))
    edges = {g.find(f"{SVG}title").text for g in _svg_groups(svg, "edge")}
    h0_in = next(i for i, g in nodes.items() if _texts(g).startswith("%h0\n"))
    matmul = next(i for i, g in nodes.items() if "= dot_general" in _texts(g))
    assert f"{h0_in}->{matmul}" in edges  # the outer argument feeds the body's matmul
    anchor = next(i for i in nodes if i.startswith("anchor"))  # the cond's predicate
    gt = next(i for i, g in nodes.items() if "= gt" in _texts(g))
    assert f"{gt}->{anchor}" in edges


def _chain(n: int, fuse: bool = True) -> Graph:
    """A chain of n elementwise ops, fused into regions of at most MAX_MEMBERS."""
    g = Graph("chain")
    x = g.add_input(TensorType((4,), float32), "x")
    w = g.add_input(TensorType((4,), float32), "w", state="w")
    v = x
    for i in range(n):
        v = g.add_node(("add", "mul", "sub")[i % 3], [v, w], loc=f"chain.py:{i + 1}").outputs[0]
    g.outputs = [v]
    g.updates = [("w", v)]
    return run_passes(g, ["fusion"]) if fuse else g


def test_large_graphs_collapse_fusion_regions():
    g = _chain(show.COLLAPSE_ABOVE + 100)
    fusions = _node_ops(str(g)).count("fusion")
    assert fusions >= 2
    drawing = show.draw(g)
    assert drawing.collapsed and "cluster" not in drawing.source
    assert drawing.drawn == fusions + 4  # two inputs, one output, one update
    tips = re.findall(r'label="[^"]*fusion \((\d+) nodes\)[^"]*", tooltip="([^"]*)"',
                      drawing.source)
    assert len(tips) == fusions
    assert sum(int(k) for k, _ in tips) == len(_node_ops(str(g))) - fusions
    assert all("holds: " in t and "chain.py:" in t for _, t in tips)
    expanded = show.draw(g, collapse=False)
    assert not expanded.collapsed and expanded.source.count("subgraph cluster") == fusions
    small = show.draw(_chain(10))
    assert not small.collapsed and small.source.count("subgraph cluster") == 1


def test_too_many_nodes_gives_the_text_and_a_way_out(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(show, "dot_binary", lambda: "dot")  # never run: nothing is laid out
    g = _chain(40)
    drawing = show.draw(g, collapse=False, max_nodes=20)
    assert drawing.svg is None and drawing._repr_svg_() is None
    assert "max_nodes=20" in drawing.message and "--max-nodes 0" in drawing.message
    assert drawing.text in repr(drawing)
    gir = tmp_path / "chain.gir"
    gir.write_text(str(g))
    assert main(["show", str(gir), "--expand", "--max-nodes", "20"]) == 0
    out = capsys.readouterr()
    assert out.out == str(g) and "max_nodes=20" in out.err
    assert not (tmp_path / "chain.svg").exists()


@needs_dot
def test_dot_that_runs_too_long_fails_with_a_message():
    with pytest.raises(GcompError, match="took more than 0.001 s.*collapse=True"):
        show.render_svg(show.to_dot(_chain(400), collapse=False), timeout=0.001)


def test_without_graphviz_the_text_form_and_how_to_install(mlp, tmp_path, monkeypatch, capsys):
    step, args, text, gir = mlp
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot on PATH
    assert shutil.which("dot") is None
    assert main(["show", str(gir)]) == 0
    out = capsys.readouterr()
    assert out.out == text
    assert "apt-get install graphviz" in out.err and "brew install graphviz" in out.err
    assert not gir.with_suffix(".svg").exists()
    assert main(["show", str(gir), "--out", str(tmp_path / "x.svg")]) == 1  # asked, not made
    assert "x.svg not written" in capsys.readouterr().err
    assert not (tmp_path / "x.svg").exists()
    assert main(["show", str(gir), "--out", str(tmp_path / "x.html")]) == 0
    page = (tmp_path / "x.html").read_text()
    assert "apt-get install graphviz" in page and "<pre>graph @step(" in page

    drawing = step.show(*args)
    assert drawing.svg is None and drawing._repr_svg_() is None
    assert repr(drawing) == f"{show.INSTALL_HINT}\n{text}"
    assert "<pre>" in drawing._repr_html_()
    assert drawing.source.startswith("digraph")  # the dot text needs no graphviz
    with pytest.raises(GcompError, match="apt-get install graphviz"):
        drawing.save(tmp_path / "y.svg")


def test_gcomp_show_runs_passes_first(tmp_path):
    gir = tmp_path / "c.gir"
    gir.write_text(str(_chain(5, fuse=False)))
    dot = tmp_path / "c.dot"
    assert main(["show", str(gir), "--out", str(dot)]) == 0
    assert "cluster" not in dot.read_text()
    assert main(["show", str(gir), "--out", str(dot), "--passes", "fusion"]) == 0
    assert dot.read_text().count("subgraph cluster") == 1
