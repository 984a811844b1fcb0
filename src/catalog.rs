//! The set of known profiles: those embedded in the binary, overridden or extended by the project's own
//! `profiles/` directory. Reads files; never decides which profiles are enabled (see [`crate::stack`]).

use std::path::Path;

use include_dir::{Dir, include_dir};
use indexmap::IndexMap;
use serde::Serialize;

use crate::error::Error;
use crate::profile::Profile;

static EMBEDDED_PROFILES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/profiles");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileOrigin {
    Embedded,
    Project,
}

#[derive(Debug, Clone)]
pub struct CatalogEntry {
    pub profile: Profile,
    pub origin: ProfileOrigin,
}

/// All known profiles by name, sorted by name.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    entries: IndexMap<String, CatalogEntry>,
}

impl Catalog {
    /// Embedded profiles plus `<project_dir>/profiles/*.yaml` (a project file replaces the embedded one of
    /// the same name).
    pub fn load(project_dir: &Path) -> Result<Catalog, Error> {
        let mut catalog = Catalog::embedded()?;
        let dir = project_dir.join("profiles");
        let read = match std::fs::read_dir(&dir) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(catalog),
            Err(e) => return Err(Error::io("read", dir, e)),
        };
        let mut paths: Vec<_> = read
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
            let profile = Profile::parse(&path.display().to_string(), &text)?;
            catalog.insert(profile, ProfileOrigin::Project);
        }
        catalog.entries.sort_keys();
        Ok(catalog)
    }

    /// Only the profiles shipped in the binary.
    pub fn embedded() -> Result<Catalog, Error> {
        let mut catalog = Catalog::default();
        for file in EMBEDDED_PROFILES.files() {
            let path = file.path();
            if path.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            let origin = format!("profiles/{}", path.display());
            let text = file.contents_utf8().ok_or_else(|| Error::Parse {
                location: crate::error::SourceLocation::file(&origin),
                message: "not UTF-8".into(),
            })?;
            catalog.insert(Profile::parse(&origin, text)?, ProfileOrigin::Embedded);
        }
        catalog.entries.sort_keys();
        Ok(catalog)
    }

    pub fn from_profiles(profiles: impl IntoIterator<Item = Profile>) -> Catalog {
        let mut catalog = Catalog::default();
        for p in profiles {
            catalog.insert(p, ProfileOrigin::Project);
        }
        catalog.entries.sort_keys();
        catalog
    }

    fn insert(&mut self, profile: Profile, origin: ProfileOrigin) {
        self.entries.insert(profile.name.clone(), CatalogEntry { profile, origin });
    }

    pub fn get(&self, name: &str) -> Option<&CatalogEntry> {
        self.entries.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &CatalogEntry> {
        self.entries.values()
    }

    /// Names an operator can pass to `--profile` (always-on profiles are not selectable).
    pub fn selectable_names(&self) -> Vec<String> {
        self.iter().filter(|e| !e.profile.always).map(|e| e.profile.name.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_profiles_parse() {
        let catalog = Catalog::embedded().unwrap();
        assert!(catalog.get("base").unwrap().profile.always);
        assert!(catalog.get("weaviate").unwrap().profile.default);
        assert!(!catalog.selectable_names().contains(&"base".to_string()));
    }

    #[test]
    fn project_profiles_override_and_extend() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("profiles")).unwrap();
        std::fs::write(
            dir.path().join("profiles/weaviate.yaml"),
            "name: weaviate\ndescription: mine\nexclusive: vector_store\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("profiles/extra.yaml"), "name: extra\ndescription: extra things\n").unwrap();
        let catalog = Catalog::load(dir.path()).unwrap();
        let w = catalog.get("weaviate").unwrap();
        assert_eq!((w.profile.description.as_str(), w.origin), ("mine", ProfileOrigin::Project));
        assert!(catalog.get("extra").is_some());
    }

    #[test]
    fn malformed_project_profile_names_file_line_column() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("profiles")).unwrap();
        std::fs::write(dir.path().join("profiles/bad.yaml"), "name: bad\ndescription: x\nservices:\n  s: {imag: x}\n")
            .unwrap();
        let err = Catalog::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("bad.yaml:4:"), "{err}");
        assert!(err.contains("unknown field `imag`"), "{err}");
    }
}
