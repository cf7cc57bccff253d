"""Rewrite a PP-OCRv4 model into the same function with fewer operators.

PP-OCRv4's mobile detector and recogniser (exported by paddle2onnx) follow
most convolutions with a learnable scalar affine step, `y = s * conv + t`,
as two operators (Mul, Add), and spell hard-swish as four (Add 3, Clip 0..6,
Mul, Div 6). ONNX Runtime fuses neither, so with one intra-op thread half
the recogniser's time went to these element-wise passes over the feature
maps and the layout reorders around them. This script

- folds each scalar affine step into the convolution before it
  (weights * s, bias * s + t), or, where an activation stands between,
  into the 1 x 1 convolution after it (weights * s, bias + t * sum of
  weights), and
- rewrites hard-swish as `x * HardSigmoid(x)` (alpha 1/6, beta 1/2), the
  same function in two operators (the model's opset, 12, has no HardSwish).

Both are exact up to float rounding. The script then runs the original and
the rewritten model with ONNX Runtime on the same input and refuses to
write a model whose outputs differ by more than TOLERANCE. Running it on a
model already rewritten changes nothing. The model's metadata (the
recogniser's character list) is kept.

Usage: python3 fold_ppocr.py ORIGINAL.onnx OUTPUT.onnx {det|rec}
"""

import sys

import numpy as np
import onnx
import onnxruntime
from onnx import helper, numpy_helper

TOLERANCE = 1e-4
# A detector input (one 960 x 640 picture; the service's are up to 1280 on
# the longer side, and the detector is convolutional throughout) and a
# recogniser batch (six 48 x 320 line crops, as the service batches them).
CHECK_SHAPES = {"det": (1, 3, 640, 960), "rec": (6, 3, 48, 320)}


def constants(graph):
    """Every constant tensor by name: Constant nodes and initializers."""
    found = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            found[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return found


def scalar(values, name):
    value = values.get(name)
    if value is None or value.size != 1:
        return None
    return float(value.reshape(-1)[0])


def readers(graph):
    found = {}
    for node in graph.node:
        for name in node.input:
            found.setdefault(name, []).append(node)
    return found


def only_reader(graph_readers, name, op_type):
    nodes = graph_readers.get(name, [])
    if len(nodes) == 1 and nodes[0].op_type == op_type:
        return nodes[0]
    return None


def other_input(node, name):
    others = [i for i in node.input if i != name]
    return others[0] if len(others) == 1 else None


def set_conv_parameters(graph, conv, weights, bias, label):
    """Give `conv` new weights and bias, stored under names made from its
    output (unique: two convolutions sharing weights each get a copy)."""
    new = [
        numpy_helper.from_array(weights.astype(np.float32), f"{conv.output[0]}.{label}_weights"),
        numpy_helper.from_array(bias.astype(np.float32), f"{conv.output[0]}.{label}_bias"),
    ]
    graph.initializer.extend(new)
    conv.input[1], conv.input[2] = new[0].name, new[1].name


def drop_nodes(graph, dropped):
    """Remove the nodes whose ids are in `dropped`."""
    keep = [n for n in graph.node if id(n) not in dropped]
    del graph.node[:]
    graph.node.extend(keep)


def fold_affine(model):
    """Conv → Mul(scalar) [→ Add(scalar)] becomes one Conv; returns how many."""
    graph = model.graph
    values = constants(graph)
    graph_readers = readers(graph)
    outputs = {o.name for o in graph.output}
    dropped, folded = set(), 0
    for conv in graph.node:
        if conv.op_type != "Conv" or len(conv.input) != 3 or conv.output[0] in outputs:
            continue
        weights, bias = values.get(conv.input[1]), values.get(conv.input[2])
        mul = only_reader(graph_readers, conv.output[0], "Mul")
        if weights is None or bias is None or mul is None:
            continue
        scale = scalar(values, other_input(mul, conv.output[0]))
        if scale is None:
            continue
        last, shift = mul, 0.0
        add = only_reader(graph_readers, mul.output[0], "Add")
        if add is not None and mul.output[0] not in outputs:
            value = scalar(values, other_input(add, mul.output[0]))
            if value is not None:
                last, shift = add, value
        scale32, shift32 = np.float32(scale), np.float32(shift)
        set_conv_parameters(graph, conv, weights * scale32, bias * scale32 + shift32, "folded")
        conv.output[0] = last.output[0]
        dropped.update(id(n) for n in (mul, last))
        folded += 1
    drop_nodes(graph, dropped)
    return folded


def fold_affine_into_pointwise(model):
    """Mul(scalar) → Add(scalar) feeding only a 1 × 1, unpadded, ungrouped
    Conv becomes part of that Conv: conv(s·x + t) = (s·W) x + b + t·ΣW.
    (A padded convolution would see t at its borders where it now sees 0,
    so only pointwise ones are folded.) Returns how many."""
    graph = model.graph
    values = constants(graph)
    graph_readers = readers(graph)
    outputs = {o.name for o in graph.output}
    dropped, folded = set(), 0
    for mul in graph.node:
        if mul.op_type != "Mul" or len(mul.input) != 2 or mul.output[0] in outputs:
            continue
        x = next((i for i in mul.input if scalar(values, other_input(mul, i)) is not None), None)
        add = only_reader(graph_readers, mul.output[0], "Add")
        if x is None or x in values or add is None or add.output[0] in outputs:
            continue
        scale = scalar(values, other_input(mul, x))
        shift = scalar(values, other_input(add, mul.output[0]))
        conv = only_reader(graph_readers, add.output[0], "Conv")
        if shift is None or conv is None or conv.input[0] != add.output[0] or len(conv.input) != 3:
            continue
        attributes = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
        weights, bias = values.get(conv.input[1]), values.get(conv.input[2])
        if (
            weights is None
            or bias is None
            or weights.shape[2:] != (1, 1)
            or any(attributes.get("pads", [0]))
            or attributes.get("group", 1) != 1
            or attributes.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID")
        ):
            continue
        scale32, shift32 = np.float32(scale), np.float32(shift)
        new_bias = bias + shift32 * weights.sum(axis=(1, 2, 3))
        set_conv_parameters(graph, conv, weights * scale32, new_bias, "input_folded")
        conv.input[0] = x
        dropped.update(id(n) for n in (mul, add))
        folded += 1
    drop_nodes(graph, dropped)
    return folded


def rewrite_hard_swish(model):
    """Add 3 → Clip 0..6 → Mul x → Div 6 becomes x * HardSigmoid(x)."""
    graph = model.graph
    values = constants(graph)
    graph_readers = readers(graph)
    outputs = {o.name for o in graph.output}
    replaced, dropped, rewritten = {}, set(), 0
    for add in graph.node:
        if add.op_type != "Add" or len(add.input) != 2:
            continue
        x = next((i for i in add.input if scalar(values, other_input(add, i)) == 3.0), None)
        clip = only_reader(graph_readers, add.output[0], "Clip")
        if x is None or clip is None or len(clip.input) != 3:
            continue
        if scalar(values, clip.input[1]) != 0.0 or scalar(values, clip.input[2]) != 6.0:
            continue
        mul = only_reader(graph_readers, clip.output[0], "Mul")
        if mul is None or other_input(mul, clip.output[0]) != x:
            continue
        div = only_reader(graph_readers, mul.output[0], "Div")
        if div is None or div.input[0] != mul.output[0] or scalar(values, div.input[1]) != 6.0:
            continue
        if {add.output[0], clip.output[0], mul.output[0]} & outputs:
            continue
        gate = div.output[0] + ".gate"
        replaced[id(div)] = [
            helper.make_node(
                "HardSigmoid", [x], [gate], name=div.name + ".gate", alpha=1.0 / 6.0, beta=0.5
            ),
            helper.make_node("Mul", [x, gate], [div.output[0]], name=div.name + ".hard_swish"),
        ]
        dropped.update(id(n) for n in (add, clip, mul))
        rewritten += 1
    nodes = []
    for node in graph.node:
        if id(node) in replaced:
            nodes.extend(replaced[id(node)])
        elif id(node) not in dropped:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    return rewritten


def drop_unread_constants(model):
    graph = model.graph
    read = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    keep = [n for n in graph.node if n.op_type != "Constant" or n.output[0] in read]
    del graph.node[:]
    graph.node.extend(keep)
    initializers = [i for i in graph.initializer if i.name in read]
    del graph.initializer[:]
    graph.initializer.extend(initializers)


def largest_difference(original, rewritten, shape):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    picture = np.random.default_rng(7).random(shape, dtype=np.float32) * 2 - 1
    answers = []
    for model in (original, rewritten):
        session = onnxruntime.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        answers.append(session.run(None, {session.get_inputs()[0].name: picture}))
    differences = [float(np.abs(a - b).max()) for a, b in zip(*answers)]
    # NaN anywhere (in either model's answer) counts as a difference.
    return max(d if np.isfinite(d) else np.inf for d in differences)


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in CHECK_SHAPES:
        sys.exit(__doc__.strip().splitlines()[-1])
    source, target, kind = sys.argv[1:]
    original = onnx.load(source)
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
           for n in original.graph.node for a in n.attribute):
        sys.exit(f"fold_ppocr: {source} has subgraphs (If, Loop, Scan); not rewritten")
    model = onnx.load(source)
    rewritten = rewrite_hard_swish(model)
    folded = fold_affine(model)
    folded_ahead = fold_affine_into_pointwise(model)
    drop_unread_constants(model)
    onnx.checker.check_model(model)
    difference = largest_difference(original, model, CHECK_SHAPES[kind])
    if not difference <= TOLERANCE:
        sys.exit(
            f"fold_ppocr: {source} rewritten answers differently (by {difference:.2e}); not written"
        )
    onnx.save(model, target)
    print(
        f"fold_ppocr: {target}: {folded} affine steps folded into the convolution before, "
        f"{folded_ahead} into the pointwise one after, {rewritten} hard-swishes rewritten, "
        f"outputs within {difference:.1e} of the original"
    )


if __name__ == "__main__":
    main()
