//! The component graph: who reads from whom. The agent walks [`Graph::topological_order`]
//! to build components and wires a channel from each to its [`Graph::outputs_of`].
//!
//! Building it also checks the shape of the pipeline: unique, well-formed ids; inputs that
//! exist and are not sinks; no cycles among transforms; at least one source and one sink.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use crate::error::ProblemKind;
use crate::report::Issue;
use crate::schema::Config;
use crate::suggest::did_you_mean;
use crate::validate::Checker;

/// What a component is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ComponentKind {
    /// Produces lines; has no inputs.
    Source,
    /// Reads from sources or transforms and passes lines on.
    Transform,
    /// Reads from sources or transforms; produces nothing others can read.
    Sink,
}

impl ComponentKind {
    /// The config section of this kind: `sources`, `transforms` or `sinks`.
    pub fn section(self) -> &'static str {
        match self {
            ComponentKind::Source => "sources",
            ComponentKind::Transform => "transforms",
            ComponentKind::Sink => "sinks",
        }
    }

    fn singular(self) -> &'static str {
        match self {
            ComponentKind::Source => "source",
            ComponentKind::Transform => "transform",
            ComponentKind::Sink => "sink",
        }
    }
}

/// A component: its kind and its id (the `<id>` of `[sources.<id>]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ComponentId {
    /// Which section it is defined in.
    pub kind: ComponentKind,
    /// Its id, unique across all sections.
    pub id: String,
}

impl fmt::Display for ComponentId {
    /// As the config's table name: `sources.app`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.kind.section(), self.id)
    }
}

#[derive(Debug, Clone)]
struct Node {
    kind: ComponentKind,
    inputs: Vec<String>,
    /// Where each of `inputs` stands in the `inputs` array as written (invalid entries are
    /// left out of `inputs`), to point at it.
    input_positions: Vec<usize>,
    outputs: Vec<String>,
}

/// The validated component graph of a config: acyclic, every input defined.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    nodes: BTreeMap<String, Node>,
    order: Vec<ComponentId>,
}

impl Graph {
    /// Every component, each after all it reads from: sources first (by id), then transforms
    /// in dependency order (ties by id), then sinks (by id).
    pub fn topological_order(&self) -> Vec<ComponentId> {
        self.order.clone()
    }

    /// The ids that read from `id` (transforms and sinks), sorted. Empty for an unknown id.
    pub fn outputs_of(&self, id: &str) -> &[String] {
        self.nodes.get(id).map_or(&[], |n| &n.outputs)
    }

    /// The ids `id` reads from, as written in its `inputs`. Empty for a source or an
    /// unknown id.
    pub fn inputs_of(&self, id: &str) -> &[String] {
        self.nodes.get(id).map_or(&[], |n| &n.inputs)
    }

    /// The kind of the component `id`, if defined.
    pub fn kind_of(&self, id: &str) -> Option<ComponentKind> {
        self.nodes.get(id).map(|n| n.kind)
    }

    /// How many components there are.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are no components (never, for a loaded config).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

/// Checks the graph's shape (recording issues and warnings in `c`) and builds it from the
/// edges that are valid.
pub(crate) fn check_and_build(c: &mut Checker<'_, '_, '_>, config: &Config) -> Graph {
    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
    let components = config
        .sources
        .keys()
        .map(|id| (ComponentKind::Source, id, &[][..]))
        .chain(
            config
                .transforms
                .iter()
                .map(|(id, t)| (ComponentKind::Transform, id, t.inputs())),
        )
        .chain(
            config
                .sinks
                .iter()
                .map(|(id, s)| (ComponentKind::Sink, id, s.inputs())),
        );
    let mut defined: Vec<(ComponentKind, &String, &[String])> = components.collect();
    // File order, so a duplicate is reported where it is written a second time.
    defined.sort_by_key(|(kind, id, _)| c.loc.key(&[kind.section(), id]).start);

    let mut first_definition: BTreeMap<&str, ComponentKind> = BTreeMap::new();
    for &(kind, id, _) in &defined {
        check_id(c, kind, id);
        if let Some(&first) = first_definition.get(id.as_str()) {
            let span = c.loc.key(&[kind.section(), id]);
            let first_span = c.loc.key(&[first.section(), id]);
            c.error(
                Issue::new(
                    ProblemKind::DuplicateId,
                    span,
                    format!(
                        "id `{id}` is already used by a {}; ids must be unique across sources, transforms and sinks",
                        first.singular()
                    ),
                    "defined again here",
                )
                .with_secondary(first_span, "first defined here"),
            );
            continue;
        }
        first_definition.insert(id, kind);
        nodes.insert(
            id.clone(),
            Node {
                kind,
                inputs: Vec::new(),
                input_positions: Vec::new(),
                outputs: Vec::new(),
            },
        );
    }
    for (kind, section) in [
        (ComponentKind::Source, "sources"),
        (ComponentKind::Sink, "sinks"),
    ] {
        if !defined.iter().any(|(k, _, _)| *k == kind) {
            c.error(
                Issue::new(
                    ProblemKind::MissingComponent,
                    0..0,
                    format!("no {} is defined", kind.singular()),
                    format!("add a `[{section}.<id>]` table"),
                )
                .with_help(format!(
                    "a pipeline needs at least one source and one sink, e.g. `[{section}.my_{}]`",
                    kind.singular()
                )),
            );
        }
    }

    // Edges: only inputs that name a source or transform.
    for &(kind, id, inputs) in &defined {
        if kind == ComponentKind::Source || first_definition.get(id.as_str()) != Some(&kind) {
            continue;
        }
        let path = [kind.section(), id.as_str(), "inputs"];
        if inputs.is_empty() {
            c.error_at_value(
                ProblemKind::EmptyInputs,
                &path,
                format!(
                    "{} `{id}` has no inputs, so it receives nothing",
                    kind.singular()
                ),
                "empty",
            );
        }
        let mut seen = BTreeSet::new();
        for (i, input) in inputs.iter().enumerate() {
            let span = c.loc.item(&path, i);
            if !seen.insert(input.as_str()) {
                c.error(Issue::new(
                    ProblemKind::DuplicateInput,
                    span,
                    format!("`{input}` is listed twice in `inputs`; its lines would be read twice"),
                    "listed again",
                ));
                continue;
            }
            match nodes.get(input.as_str()).map(|n| n.kind) {
                Some(ComponentKind::Source | ComponentKind::Transform) => {
                    if let Some(node) = nodes.get_mut(id.as_str()) {
                        node.inputs.push(input.clone());
                        node.input_positions.push(i);
                    }
                }
                Some(ComponentKind::Sink) => c.error(Issue::new(
                    ProblemKind::InputIsSink,
                    span,
                    format!("`{input}` is a sink; inputs must name sources or transforms"),
                    "a sink",
                )),
                None => {
                    let readable = nodes
                        .iter()
                        .filter(|(_, n)| n.kind != ComponentKind::Sink)
                        .map(|(id, _)| id.as_str());
                    let mut issue = Issue::new(
                        ProblemKind::DanglingInput,
                        span,
                        format!("input `{input}` is not a defined source or transform"),
                        "no component has this id",
                    );
                    issue.help = did_you_mean(input, readable);
                    c.error(issue);
                }
            }
        }
    }
    let edges: Vec<(String, String)> = nodes
        .iter()
        .flat_map(|(id, n)| {
            n.inputs
                .iter()
                .map(move |input| (input.clone(), id.clone()))
        })
        .collect();
    for (from, to) in edges {
        if let Some(node) = nodes.get_mut(&from) {
            node.outputs.push(to);
        }
    }
    for node in nodes.values_mut() {
        node.outputs.sort();
    }

    let order = order_and_find_cycles(c, &nodes);
    warn_unread(c, &nodes);
    Graph { nodes, order }
}

fn check_id(c: &mut Checker<'_, '_, '_>, kind: ComponentKind, id: &str) {
    let valid = !id.is_empty()
        && id
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-');
    if !valid {
        let span = c.loc.key(&[kind.section(), id]);
        c.error(Issue::new(
            ProblemKind::InvalidId,
            span,
            format!(
                "invalid {} id `{id}`: ids use only letters, digits, `_` and `-`",
                kind.singular()
            ),
            "invalid id",
        ));
    }
}

/// Kahn's algorithm over the transforms; whatever it cannot order lies on or behind a
/// cycle. Reports each cycle once and returns the order (cycle members left out).
fn order_and_find_cycles(
    c: &mut Checker<'_, '_, '_>,
    nodes: &BTreeMap<String, Node>,
) -> Vec<ComponentId> {
    let of_kind = |kind| {
        nodes
            .iter()
            .filter(move |(_, n)| n.kind == kind)
            .map(|(id, _)| id.as_str())
    };
    let mut order: Vec<ComponentId> = of_kind(ComponentKind::Source)
        .map(|id| ComponentId {
            kind: ComponentKind::Source,
            id: id.to_owned(),
        })
        .collect();

    let mut pending: BTreeSet<&str> = of_kind(ComponentKind::Transform).collect();
    loop {
        // Take every transform whose inputs are all ordered, smallest id first.
        let mut progressed = true;
        while progressed {
            progressed = false;
            let ready = pending.iter().copied().find(|id| {
                nodes[*id]
                    .inputs
                    .iter()
                    .all(|input| !pending.contains(input.as_str()))
            });
            if let Some(id) = ready {
                pending.remove(id);
                order.push(ComponentId {
                    kind: ComponentKind::Transform,
                    id: id.to_owned(),
                });
                progressed = true;
            }
        }
        let Some(&start) = pending.iter().next() else {
            break;
        };
        // Every pending node has a pending input, so walking inputs must revisit a node.
        let mut walk: Vec<&str> = vec![start];
        let mut position: BTreeMap<&str, usize> = BTreeMap::from([(start, 0)]);
        let cycle = loop {
            let current = walk[walk.len() - 1];
            let next = nodes[current]
                .inputs
                .iter()
                .map(String::as_str)
                .find(|input| pending.contains(input));
            let Some(next) = next else {
                // Not reachable given the loop above; stop rather than spin.
                break Vec::new();
            };
            if let Some(&at) = position.get(next) {
                break walk[at..].to_vec();
            }
            position.insert(next, walk.len());
            walk.push(next);
        };
        if cycle.is_empty() {
            break;
        }
        report_cycle(c, nodes, &cycle);
        for id in &cycle {
            pending.remove(id);
        }
    }

    order.extend(of_kind(ComponentKind::Sink).map(|id| ComponentId {
        kind: ComponentKind::Sink,
        id: id.to_owned(),
    }));
    order
}

/// `cycle[i]` reads from `cycle[i + 1]`, and the last reads from the first.
fn report_cycle(c: &mut Checker<'_, '_, '_>, nodes: &BTreeMap<String, Node>, cycle: &[&str]) {
    // The span of `read` in `reader`'s inputs array.
    let edge_span = |c: &Checker<'_, '_, '_>, reader: &str, read: &str| {
        let node = &nodes[reader];
        let index = node
            .inputs
            .iter()
            .position(|i| i == read)
            .map_or(0, |p| node.input_positions[p]);
        c.loc.item(&["transforms", reader, "inputs"], index)
    };
    let pairs: Vec<(&str, &str)> = cycle
        .iter()
        .enumerate()
        .map(|(i, reader)| (*reader, cycle[(i + 1) % cycle.len()]))
        .collect();
    let description = pairs
        .iter()
        .map(|(reader, read)| describe_edge(reader, read))
        .collect::<Vec<_>>()
        .join(", ");
    let (reader, read) = pairs[0];
    let mut issue = Issue::new(
        ProblemKind::Cycle,
        edge_span(c, reader, read),
        format!("transforms read from each other in a cycle: {description}"),
        "closes the cycle",
    )
    .with_help("data must flow from sources to sinks; remove one of these inputs");
    for (reader, read) in &pairs[1..] {
        let span = edge_span(c, reader, read);
        issue = issue.with_secondary(span, describe_edge(reader, read));
    }
    c.error(issue);
}

fn describe_edge(reader: &str, read: &str) -> String {
    if reader == read {
        format!("`{reader}` reads itself")
    } else {
        format!("`{reader}` reads `{read}`")
    }
}

/// Warns about sources and transforms whose lines no sink receives.
fn warn_unread(c: &mut Checker<'_, '_, '_>, nodes: &BTreeMap<String, Node>) {
    let mut read: BTreeSet<&str> = BTreeSet::new();
    let mut queue: VecDeque<&str> = nodes
        .iter()
        .filter(|(_, n)| n.kind == ComponentKind::Sink)
        .map(|(id, _)| id.as_str())
        .collect();
    while let Some(id) = queue.pop_front() {
        for input in &nodes[id].inputs {
            if read.insert(input.as_str()) {
                queue.push_back(input.as_str());
            }
        }
    }
    for (id, node) in nodes {
        if node.kind != ComponentKind::Sink && !read.contains(id.as_str()) {
            let span = c.loc.key(&[node.kind.section(), id]);
            c.warn(
                span,
                format!(
                    "{} `{id}` is not read by any sink (directly or through transforms); its lines go nowhere",
                    node.kind.singular()
                ),
            );
        }
    }
}
