//! Where an ONNX graph can be cut, and the two graphs a cut makes — on the protobuf itself, so
//! that each half is an ordinary ONNX model any engine can run.
//!
//! A cut after node `i` (in the file's topological order) is a *cut point* when exactly one
//! tensor that depends on the model's input is produced at or before `i` and still read after
//! it: that tensor carries all the state. Constants (initializers, and nodes that read only
//! constants) are not state; the tail gets its own copy of any it reads.

use std::collections::{HashMap, HashSet};

use tract_onnx::pb::{GraphProto, NodeProto, ValueInfoProto};

/// A cut point of a graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CutPoint {
    /// How many of the graph's nodes come before the cut (the head holds nodes `0..nodes`, at
    /// most: those the cut tensor needs).
    pub nodes: usize,
    /// The one tensor that crosses the cut.
    pub tensor: String,
}

/// Why a graph cannot be cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uncuttable(pub String);

/// Every cut point of `graph`, in graph order, each tensor once (at the earliest node it can be
/// cut after). The model's input itself and the graph's outputs are not cut points: sending
/// the input is a whole-model offload, cutting at an output is running locally.
pub fn cut_points(graph: &GraphProto) -> Result<Vec<CutPoint>, Uncuttable> {
    let source = single_source(graph)?;
    if let Some(n) = graph.node.iter().find(|n| n.attribute.iter().any(|a| a.g.is_some() || !a.graphs.is_empty())) {
        return Err(Uncuttable(format!("node `{}` ({}) holds a subgraph; graphs with control flow are not cut", n.name, n.op_type)));
    }
    let dynamic = dynamic_tensors(graph, &source);
    let outputs: HashSet<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    let end = graph.node.len();
    // Index of the last node reading each tensor; the graph's outputs are read "after the end".
    let mut last_use: HashMap<&str, usize> = HashMap::new();
    for (i, node) in graph.node.iter().enumerate() {
        for input in node.input.iter().filter(|s| !s.is_empty()) {
            last_use.insert(input, i);
        }
    }
    for o in &outputs {
        last_use.insert(o, end);
    }
    // The live dynamic tensors after each node, kept as a set: at most a few in a CNN.
    let mut live: HashSet<&str> = HashSet::new();
    if last_use.contains_key(source.as_str()) {
        live.insert(&source);
    }
    let mut expiring: HashMap<usize, Vec<&str>> = HashMap::new();
    if let Some(&u) = last_use.get(source.as_str()) {
        expiring.entry(u).or_default().push(&source);
    }
    let mut cuts = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for (i, node) in graph.node.iter().enumerate() {
        for out in node.output.iter().filter(|s| !s.is_empty() && dynamic.contains(s.as_str())) {
            if let Some(&u) = last_use.get(out.as_str()) {
                if u > i {
                    live.insert(out);
                    expiring.entry(u).or_default().push(out);
                }
            }
        }
        for gone in expiring.remove(&i).unwrap_or_default() {
            live.remove(gone);
        }
        let (1, Some(&tensor)) = (live.len(), live.iter().next()) else { continue };
        if i + 1 == end {
            continue;
        }
        if tensor == source || outputs.contains(tensor) || !seen.insert(tensor) {
            continue;
        }
        cuts.push(CutPoint { nodes: i + 1, tensor: tensor.to_string() });
    }
    Ok(cuts)
}

/// The graph's one real input (an input that no initializer backs).
fn single_source(graph: &GraphProto) -> Result<String, Uncuttable> {
    let init: HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let sources: Vec<&ValueInfoProto> = graph.input.iter().filter(|i| !init.contains(i.name.as_str())).collect();
    match sources.as_slice() {
        [one] => Ok(one.name.clone()),
        other => Err(Uncuttable(format!("the graph has {} inputs; only a single-input graph is cut", other.len()))),
    }
}

/// The tensors that depend on `source`.
fn dynamic_tensors<'g>(graph: &'g GraphProto, source: &'g str) -> HashSet<&'g str> {
    let mut dynamic: HashSet<&str> = HashSet::from([source]);
    for node in &graph.node {
        if node.input.iter().any(|i| dynamic.contains(i.as_str())) {
            dynamic.extend(node.output.iter().filter(|s| !s.is_empty()).map(String::as_str));
        }
    }
    dynamic
}

/// The head of `graph` at `cut`: the nodes before the cut that the cut tensor needs, with the
/// graph's input, the initializers they read, and the cut tensor as the one output (typed
/// `cut_type`).
pub fn head(graph: &GraphProto, cut: &CutPoint, cut_type: ValueInfoProto) -> GraphProto {
    let nodes = needed(&graph.node[..cut.nodes], &[cut.tensor.as_str()]);
    let mut g = with_nodes(graph, nodes);
    g.name = format!("{}-head", graph.name);
    let source = single_source(graph).ok();
    g.input.retain(|i| Some(&i.name) == source.as_ref() || g.initializer.iter().any(|t| t.name == i.name));
    g.output = vec![cut_type];
    g
}

/// The tail of `graph` at `cut`: the nodes after it, and the constant nodes before it they
/// read, with the cut tensor as the one input (typed `cut_type`) and the graph's outputs.
pub fn tail(graph: &GraphProto, cut: &CutPoint, cut_type: ValueInfoProto) -> GraphProto {
    let source = single_source(graph).unwrap_or_default();
    let dynamic = dynamic_tensors(graph, &source);
    let candidates: Vec<NodeProto> = graph
        .node
        .iter()
        .enumerate()
        .filter(|(i, n)| *i >= cut.nodes || !n.output.iter().any(|o| dynamic.contains(o.as_str())))
        .map(|(_, n)| n.clone())
        .collect();
    let wanted: Vec<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    let nodes = needed(&candidates, &wanted);
    let mut g = with_nodes(graph, nodes);
    g.name = format!("{}-tail", graph.name);
    g.input.retain(|i| g.initializer.iter().any(|t| t.name == i.name));
    g.input.insert(0, cut_type);
    g
}

/// The nodes of `nodes` (in order) that the tensors `wanted` depend on.
fn needed(nodes: &[NodeProto], wanted: &[&str]) -> Vec<NodeProto> {
    let mut want: HashSet<String> = wanted.iter().map(|s| s.to_string()).collect();
    let mut keep = vec![false; nodes.len()];
    for (i, node) in nodes.iter().enumerate().rev() {
        if node.output.iter().any(|o| want.contains(o)) {
            keep[i] = true;
            want.extend(node.input.iter().filter(|s| !s.is_empty()).cloned());
        }
    }
    nodes.iter().zip(keep).filter(|(_, k)| *k).map(|(n, _)| n.clone()).collect()
}

/// `graph` with only `nodes`, and the initializers and value infos they read or write; the
/// inputs and outputs are the caller's to set.
fn with_nodes(graph: &GraphProto, nodes: Vec<NodeProto>) -> GraphProto {
    let read: HashSet<&str> = nodes.iter().flat_map(|n| n.input.iter().map(String::as_str)).collect();
    let written: HashSet<&str> = nodes.iter().flat_map(|n| n.output.iter().map(String::as_str)).collect();
    GraphProto {
        name: graph.name.clone(),
        doc_string: graph.doc_string.clone(),
        input: graph.input.clone(),
        output: graph.output.clone(),
        initializer: graph.initializer.iter().filter(|t| read.contains(t.name.as_str())).cloned().collect(),
        value_info: graph.value_info.iter().filter(|v| written.contains(v.name.as_str())).cloned().collect(),
        node: nodes,
        ..GraphProto::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
        NodeProto {
            name: name.into(),
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            ..NodeProto::default()
        }
    }

    fn info(name: &str) -> ValueInfoProto {
        ValueInfoProto { name: name.into(), ..ValueInfoProto::default() }
    }

    fn weight(name: &str) -> tract_onnx::pb::TensorProto {
        tract_onnx::pb::TensorProto { name: name.into(), ..Default::default() }
    }

    /// x → conv(w) → a → relu → b ─┬→ conv → c ─┐
    ///                              └──────────→ add → d → gap → e (output)
    /// plus a constant node k read only by gap.
    fn residual() -> GraphProto {
        GraphProto {
            name: "g".into(),
            input: vec![info("x")],
            output: vec![info("e")],
            initializer: vec![weight("w"), weight("w2")],
            node: vec![
                node("k", "Constant", &[], &["k"]),
                node("conv1", "Conv", &["x", "w"], &["a"]),
                node("relu", "Relu", &["a"], &["b"]),
                node("conv2", "Conv", &["b", "w2"], &["c"]),
                node("add", "Add", &["b", "c"], &["d"]),
                node("gap", "ReduceMean", &["d", "k"], &["e"]),
            ],
            ..GraphProto::default()
        }
    }

    #[test]
    fn cut_points_skip_the_inside_of_a_residual_block() {
        let cuts = cut_points(&residual()).unwrap();
        let names: Vec<(&str, usize)> = cuts.iter().map(|c| (c.tensor.as_str(), c.nodes)).collect();
        // After conv2, both b and c are live: no cut there. Not x (the input), not e (the output).
        assert_eq!(names, vec![("a", 2), ("b", 3), ("d", 5)]);
    }

    #[test]
    fn head_and_tail_split_nodes_and_weights() {
        let g = residual();
        let cut = CutPoint { nodes: 3, tensor: "b".into() };
        let h = head(&g, &cut, info("b"));
        let t = tail(&g, &cut, info("b"));
        let names = |g: &GraphProto| g.node.iter().map(|n| n.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&h), ["conv1", "relu"]);
        assert_eq!(names(&t), ["k", "conv2", "add", "gap"], "the tail copies the constant it reads");
        assert_eq!(h.initializer.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["w"]);
        assert_eq!(t.initializer.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["w2"]);
        assert_eq!(h.output[0].name, "b");
        assert_eq!(t.input.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), ["b"]);
        assert_eq!(t.output[0].name, "e");
    }

    #[test]
    fn two_inputs_or_a_subgraph_are_refused() {
        let mut g = residual();
        g.input.push(info("y"));
        assert!(cut_points(&g).unwrap_err().0.contains("2 inputs"));
        let mut g = residual();
        g.node[2].attribute.push(tract_onnx::pb::AttributeProto { g: Some(GraphProto::default()), ..Default::default() });
        assert!(cut_points(&g).unwrap_err().0.contains("subgraph"));
    }
}
