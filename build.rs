//! Embeds `releases/*.yaml` (Dify's releases as data) as one compact JSON document, so the binary parses a
//! few hundred kilobytes of JSON instead of 5,000 lines of YAML each time it resolves a release.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=releases");
    let dir = Path::new("releases");
    let mut names: Vec<_> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect(),
        Err(e) => panic!("read releases/: {e}"),
    };
    names.sort();
    let mut all = Vec::new();
    for path in names {
        println!("cargo:rerun-if-changed={}", path.display());
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let value: serde_json::Value =
            yaml_serde::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
        all.push(value);
    }
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("releases.json");
    let json = serde_json::to_string(&all).expect("JSON of parsed YAML");
    std::fs::write(&out, json).unwrap_or_else(|e| panic!("write {}: {e}", out.display()));
}
