//! Embeds `releases/*.yaml` (Dify's releases as data) as compact JSON, one document per release with its name
//! alongside, so the binary parses only the release it uses, and JSON instead of thousands of lines of YAML.

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
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let mut table = String::from(
        "/// (release name, its data as JSON), in file-name order.\npub(crate) static EMBEDDED: &[(&str, &str)] = &[\n",
    );
    for (i, path) in names.into_iter().enumerate() {
        println!("cargo:rerun-if-changed={}", path.display());
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let value: serde_json::Value =
            yaml_serde::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
        let name = value["release"].as_str().unwrap_or_else(|| panic!("{}: no `release` name", path.display()));
        let file = format!("release-{i}.json");
        let out = Path::new(&out_dir).join(&file);
        let json = serde_json::to_string(&value).expect("JSON of parsed YAML");
        std::fs::write(&out, json).unwrap_or_else(|e| panic!("write {}: {e}", out.display()));
        table.push_str(&format!("    ({name:?}, include_str!(concat!(env!(\"OUT_DIR\"), \"/{file}\"))),\n"));
    }
    table.push_str("];\n");
    let out = Path::new(&out_dir).join("releases.rs");
    std::fs::write(&out, table).unwrap_or_else(|e| panic!("write {}: {e}", out.display()));
}
