//! Fuzz loading a project: parsing `ragctl.yaml` and a project profile (`profiles/fuzz.yaml`) must never panic,
//! and a `ragctl.yaml` that parses must survive being written back out (as `ragctl init` writes it) and parsed
//! again unchanged.
//!
//! Input: the `ragctl.yaml` text, a NUL byte, the profile text (seeds in `fuzz/corpus/project_load/`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ragctl::profile::Profile;
use ragctl::project_file::ProjectFile;

fuzz_target!(|data: &[u8]| {
    // Both files are read as UTF-8 text; anything else is rejected before parsing.
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let (project_text, profile_text) = src.split_once('\0').unwrap_or((src, ""));

    if let Ok(project) = ProjectFile::parse("ragctl.yaml", project_text) {
        let written = yaml_serde::to_string(&project).expect("a parsed ragctl.yaml serializes");
        let again = ProjectFile::parse("ragctl.yaml", &written)
            .unwrap_or_else(|e| panic!("written ragctl.yaml failed to re-parse: {e}\n{written}"));
        assert_eq!(again, project, "ragctl.yaml changed on the way out and back:\n{written}");
    }

    // ragctl only reads profiles (it never writes one), so parsing without a panic is the whole contract.
    let _ = Profile::parse("profiles/fuzz.yaml", profile_text);
});
