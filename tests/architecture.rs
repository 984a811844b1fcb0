//! The module graph is part of the design (ARCHITECTURE.md): this test reads `src/`, builds the graph of `crate::`
//! references between top-level modules and fails on a circle, on a module that imports a layer above its own, on
//! a seam that imports anything but the base, on a top-level module no layer claims, and on a source file longer
//! than [`MAX_LINES`] (not counting its `#[cfg(test)]` module).
//!
//! Comments and string literals are ignored; `use`, paths in code, `pub use` and `super::` chains that climb to the
//! crate root all count, test modules included (a test that needs a module above its own is a design smell too).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Lowest first. A module may reference its own layer and the layers below; a seam only the base.
const LAYERS: &[(&str, &[&str])] = &[
    ("base", &["error", "dotenv", "output", "reporter", "atomic_file", "byte_size", "version"]),
    ("seam", &["docker", "postgres", "net", "env_vars", "env_file", "project_lock", "port_holder", "ready_cache"]),
    ("model", &["profile", "catalog", "project_file", "settings", "stack", "secrets", "render", "release"]),
    ("capability", &["engine", "swarm", "kubernetes", "doctor", "db", "backup"]),
    ("cli", &["cli"]),
    ("commands", &["commands"]),
];

const SEAM: &str = "seam";
const BASE: &str = "base";
const MAX_LINES: usize = 800;

#[test]
fn module_graph_is_layered_and_acyclic() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let problems = check_tree(&src);
    assert!(problems.is_empty(), "the module graph breaks ARCHITECTURE.md:\n  {}", problems.join("\n  "));
}

#[test]
fn no_source_file_is_longer_than_the_limit() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut long = Vec::new();
    for file in rust_files(&src) {
        let text = fs::read_to_string(&file).expect("read source file");
        let lines = lines_before_test_module(&text);
        if lines > MAX_LINES {
            long.push(format!("{} has {lines} lines (limit {MAX_LINES})", file.display()));
        }
    }
    assert!(long.is_empty(), "split these files by subject:\n  {}", long.join("\n  "));
}

/// The checker itself must be able to fail: a tree with a seam importing a model module and a circle between two
/// model modules is rejected on both counts, and the same tree without them passes.
#[test]
fn a_planted_back_edge_and_circle_are_caught() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path();
    let write = |rel: &str, text: &str| {
        let path = src.join(rel);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, text).expect("write");
    };
    write("lib.rs", "pub mod error;\npub mod docker;\npub mod profile;\npub mod stack;\n");
    write("error.rs", "pub struct Error;\n");
    write("profile.rs", "use crate::error::Error;\n// crate::stack in a comment does not count\n");
    write("stack.rs", "use crate::{error::Error, profile};\nfn f() { let _ = \"crate::docker\"; }\n");
    write("docker/mod.rs", "mod inner;\npub use crate::error::Error;\n");
    write("docker/inner.rs", "use super::super::error::Error;\n");
    assert_eq!(check_tree(src), Vec::<String>::new());

    write("docker/inner.rs", "use super::super::stack::Thing;\n");
    write("profile.rs", "pub fn f() { crate::stack::g(); }\n");
    let problems = check_tree(src);
    assert!(problems.iter().any(|p| p.contains("seam `docker` imports `stack`")), "{problems:?}");
    assert!(
        problems.iter().any(|p| p.contains("circle") && p.contains("profile") && p.contains("stack")),
        "{problems:?}"
    );

    write("lib.rs", "pub mod error;\npub mod docker;\npub mod profile;\npub mod stack;\npub mod newcomer;\n");
    write("newcomer.rs", "\n");
    assert!(check_tree(src).iter().any(|p| p.contains("`newcomer`") && p.contains("no layer")));
}

fn layer_of(module: &str) -> Option<(usize, &'static str)> {
    LAYERS.iter().enumerate().find(|(_, (_, mods))| mods.contains(&module)).map(|(rank, (name, _))| (rank, *name))
}

fn check_tree(src: &Path) -> Vec<String> {
    let graph = module_graph(src);
    let mut problems = Vec::new();
    let declared = declared_modules(src);
    for module in &declared {
        if layer_of(module).is_none() {
            problems.push(format!(
                "top-level module `{module}` belongs to no layer (add it to LAYERS and ARCHITECTURE.md)"
            ));
        }
    }
    for (from, edges) in &graph {
        let Some((from_rank, from_layer)) = layer_of(from) else { continue };
        for (to, site) in edges {
            let Some((to_rank, to_layer)) = layer_of(to) else { continue };
            if from_layer == SEAM && to_layer != BASE {
                problems
                    .push(format!("seam `{from}` imports `{to}` ({to_layer}) at {site}: a seam imports only the base"));
            } else if to_rank > from_rank {
                problems
                    .push(format!("`{from}` ({from_layer}) imports `{to}` ({to_layer}), a layer above it, at {site}"));
            }
        }
    }
    for circle in circles(&graph) {
        problems.push(format!("circle between top-level modules: {}", circle.join(" -> ")));
    }
    problems
}

/// Top-level modules declared in `lib.rs`.
fn declared_modules(src: &Path) -> BTreeSet<String> {
    let lib = fs::read_to_string(src.join("lib.rs")).unwrap_or_default();
    strip_comments_and_strings(&lib)
        .split(';')
        .filter_map(|stmt| {
            let words: Vec<&str> = stmt.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "mod")?;
            words.get(at + 1).map(|name| name.trim().to_string())
        })
        .collect()
}

/// module -> (referenced module -> first place it is referenced)
fn module_graph(src: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for file in rust_files(src) {
        let rel = file.strip_prefix(src).expect("under src");
        let module_path = module_path(rel);
        let Some(top) = module_path.first().cloned() else { continue }; // lib.rs, main.rs
        let text = fs::read_to_string(&file).expect("read source file");
        let code = strip_comments_and_strings(&text);
        for (target, line) in references(&code, module_path.len()) {
            if target != top {
                graph
                    .entry(top.clone())
                    .or_default()
                    .entry(target)
                    .or_insert_with(|| format!("{}:{line}", rel.display()));
            }
        }
        graph.entry(top).or_default();
    }
    graph
}

/// `src/a/b.rs` -> [a, b]; `src/a/mod.rs` -> [a]; `src/lib.rs`, `src/main.rs` -> [].
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs").to_string();
        if !(stem == "mod" || (parts.is_empty() && (stem == "lib" || stem == "main"))) {
            parts.push(stem);
        }
    }
    parts
}

/// Top-level modules referenced by `code` (comments and strings already blanked), with the line of each
/// reference. `depth` is the file's module depth; inline `mod x {` blocks add to it for `super::` chains.
fn references(code: &str, depth: usize) -> Vec<(String, usize)> {
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    let mut braces = 0usize;
    let mut inline_mods: Vec<usize> = Vec::new(); // brace depth at which each enclosing inline `mod` opened
    let mut pending_mod = false;
    let mut i = 0;
    let line_at = |pos: usize| code[..pos].bytes().filter(|b| *b == b'\n').count() + 1;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'{' {
            braces += 1;
            if pending_mod {
                inline_mods.push(braces);
                pending_mod = false;
            }
            i += 1;
            continue;
        }
        if c == b'}' {
            if inline_mods.last() == Some(&braces) {
                inline_mods.pop();
            }
            braces = braces.saturating_sub(1);
            i += 1;
            continue;
        }
        if c == b';' {
            pending_mod = false;
        }
        if !(c.is_ascii_alphabetic() || c == b'_') || (i > 0 && is_ident(bytes[i - 1])) {
            i += 1;
            continue;
        }
        let word_end = (i..bytes.len()).find(|&j| !is_ident(bytes[j])).unwrap_or(bytes.len());
        let word = &code[i..word_end];
        match word {
            "mod" => pending_mod = true,
            "crate" if code[word_end..].starts_with("::") && (i == 0 || bytes[i - 1] != b'$') => {
                for target in path_heads(&code[word_end + 2..]) {
                    found.push((target, line_at(i)));
                }
            }
            "super" if i < 2 || &bytes[i - 2..i] != b"::" => {
                let mut supers = 0;
                let mut rest = &code[i..];
                while let Some(after) = rest.strip_prefix("super::") {
                    supers += 1;
                    rest = after.trim_start();
                }
                if supers >= depth + inline_mods.len() {
                    for target in path_heads(rest) {
                        found.push((target, line_at(i)));
                    }
                }
            }
            _ => {}
        }
        i = word_end;
    }
    found
}

/// The first segment of each path in `rest` (which follows `crate::`): `a::b` -> [a]; `{a::b, c}` -> [a, c].
fn path_heads(rest: &str) -> Vec<String> {
    let rest = rest.trim_start();
    if let Some(group) = rest.strip_prefix('{') {
        let mut heads = Vec::new();
        let mut depth = 0;
        let mut start = true;
        for (pos, ch) in group.char_indices() {
            match ch {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => start = true,
                c if start && (c.is_ascii_alphabetic() || c == '_') => {
                    let end = group[pos..]
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .map_or(group.len(), |e| pos + e);
                    let name = &group[pos..end];
                    if name != "self" {
                        heads.push(name.to_string());
                    }
                    start = false;
                }
                c if c.is_whitespace() => {}
                _ => start = false,
            }
        }
        heads
    } else {
        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        if end == 0 { Vec::new() } else { vec![rest[..end].to_string()] }
    }
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Blank out comments, string and char literals (keeping newlines so line numbers stay right).
fn strip_comments_and_strings(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                blank(&mut out, chars[i]);
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
        } else if (c == 'r' || c == 'b')
            && !chars.get(i.wrapping_sub(1)).is_some_and(|p| p.is_alphanumeric() || *p == '_')
            && raw_string_start(&chars, i).is_some()
        {
            let (hashes, body) = raw_string_start(&chars, i).expect("checked");
            for &ch in &chars[i..body] {
                blank(&mut out, ch);
            }
            i = body;
            let closing: Vec<char> = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
            while i < chars.len() && !chars[i..].starts_with(&closing) {
                blank(&mut out, chars[i]);
                i += 1;
            }
            for _ in 0..closing.len().min(chars.len() - i) {
                out.push(' ');
                i += 1;
            }
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
                if i < chars.len() {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && char_literal_len(&chars, i).is_some() {
            let len = char_literal_len(&chars, i).expect("checked");
            for _ in 0..len {
                out.push(' ');
            }
            i += len;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// `r"`, `r#"`, `br"`, ...: (number of #, index just after the opening quote).
fn raw_string_start(chars: &[char], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    if chars.get(j) == Some(&'b') {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while chars.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (chars.get(j) == Some(&'"')).then_some((hashes, j + 1))
}

/// Length of a char literal starting at `i` (`'a'`, `'\n'`, `'\u{1F600}'`), or None for a lifetime.
fn char_literal_len(chars: &[char], i: usize) -> Option<usize> {
    match chars.get(i + 1)? {
        '\\' => {
            let close = (i + 2..chars.len().min(i + 14)).find(|&j| chars[j] == '\'')?;
            Some(close - i + 1)
        }
        _ if chars.get(i + 2) == Some(&'\'') => Some(3),
        _ => None,
    }
}

/// Every circle in the graph, each reported once as a path `a -> b -> ... -> a` (Tarjan's strongly connected
/// components, then one cycle through each component).
fn circles(graph: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<Vec<String>> {
    let nodes: Vec<&String> = graph.keys().collect();
    let index_of: BTreeMap<&String, usize> = nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let adj: Vec<Vec<usize>> =
        nodes.iter().map(|n| graph[*n].keys().filter_map(|t| index_of.get(t).copied()).collect()).collect();
    let mut sccs = Vec::new();
    tarjan(&adj, &mut sccs);
    let mut out = Vec::new();
    for scc in sccs.into_iter().filter(|c| c.len() > 1) {
        let members: BTreeSet<usize> = scc.iter().copied().collect();
        let start = *members.iter().next().expect("non-empty");
        // Shortest path back to `start` within the component (BFS).
        let mut prev: BTreeMap<usize, usize> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        let mut end = None;
        'bfs: while let Some(n) = queue.pop_front() {
            for &m in &adj[n] {
                if !members.contains(&m) {
                    continue;
                }
                if m == start {
                    end = Some(n);
                    break 'bfs;
                }
                if let std::collections::btree_map::Entry::Vacant(e) = prev.entry(m) {
                    e.insert(n);
                    queue.push_back(m);
                }
            }
        }
        let mut path = vec![start];
        let mut at = end.expect("a strongly connected component has a cycle");
        let mut tail = Vec::new();
        while at != start {
            tail.push(at);
            at = prev[&at];
        }
        path.extend(tail.into_iter().rev());
        path.push(start);
        let others: Vec<&str> = members.iter().map(|m| nodes[*m].as_str()).collect();
        let mut names: Vec<String> = path.iter().map(|n| nodes[*n].clone()).collect();
        if others.len() + 1 > names.len() {
            names.push(format!("(component: {})", others.join(", ")));
        }
        out.push(names);
    }
    out
}

fn tarjan(adj: &[Vec<usize>], sccs: &mut Vec<Vec<usize>>) {
    struct State {
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
    }
    fn visit(v: usize, adj: &[Vec<usize>], s: &mut State, sccs: &mut Vec<Vec<usize>>) {
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        for &w in &adj[v] {
            match s.index[w] {
                None => {
                    visit(w, adj, s, sccs);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(iw) if s.on_stack[w] => s.low[v] = s.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack[w] = false;
                scc.push(w);
                if w == v {
                    break;
                }
            }
            sccs.push(scc);
        }
    }
    let n = adj.len();
    let mut s = State { index: vec![None; n], low: vec![0; n], on_stack: vec![false; n], stack: Vec::new(), next: 0 };
    for v in 0..n {
        if s.index[v].is_none() {
            visit(v, adj, &mut s, sccs);
        }
    }
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in fs::read_dir(&d).expect("read src dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Lines before the file's `#[cfg(test)]` module (or all of them).
fn lines_before_test_module(text: &str) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .windows(2)
        .position(|w| w[0].trim() == "#[cfg(test)]" && w[1].trim_start().starts_with("mod "))
        .unwrap_or(lines.len())
}
