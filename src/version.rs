//! Dify release names ordered as releases: `1.10.1-fix.1` < `1.13.3` < `1.13.10`.
//!
//! A name is dot-separated numbers, optionally followed by `-` and a suffix of dot-separated identifiers.
//! Dify uses the suffix both for pre-releases (`1.0.0-beta.1`, `1.6.0-rc1`), which come before the plain release,
//! and for hotfixes published after it (`1.10.1-fix.1`), which come after. Numbers compare numerically, a missing
//! number counts as 0 (`1.13` = `1.13.0`); the suffix follows semver's precedence rules, except that a suffix
//! starting with `fix`, `hotfix` or `patch` sorts after the plain release.

use std::cmp::Ordering;

/// A parsed release name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    numbers: Vec<u64>,
    suffix: Vec<Ident>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ident {
    Number(u64),
    Text(String),
}

impl Version {
    /// `None` when `name` is not a release name (no leading number, an empty part, a non-number in the numbers).
    pub fn parse(name: &str) -> Option<Version> {
        let name = name.trim().strip_prefix('v').unwrap_or(name.trim());
        let (numbers, suffix) = match name.split_once('-') {
            Some((n, s)) => (n, Some(s)),
            None => (name, None),
        };
        let numbers: Vec<u64> = numbers.split('.').map(|p| p.parse().ok()).collect::<Option<_>>()?;
        let suffix = match suffix {
            None => Vec::new(),
            Some(s) => s
                .split(['.', '-'])
                .map(|p| match p {
                    "" => None,
                    p if p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok().map(Ident::Number),
                    p if p.bytes().all(|b| b.is_ascii_alphanumeric()) => Some(Ident::Text(p.to_ascii_lowercase())),
                    _ => None,
                })
                .collect::<Option<_>>()?,
        };
        Some(Version { numbers, suffix })
    }

    /// A hotfix suffix: published after the plain release.
    fn is_fix(&self) -> bool {
        matches!(self.suffix.first(), Some(Ident::Text(t)) if ["fix", "hotfix", "patch"].iter().any(|f| t.starts_with(f)))
    }

    /// Where the suffix puts the name relative to the plain release: -1 before, 0 plain, 1 after.
    fn rank(&self) -> i8 {
        if self.suffix.is_empty() {
            0
        } else if self.is_fix() {
            1
        } else {
            -1
        }
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let len = self.numbers.len().max(other.numbers.len());
        let at = |v: &Version, i: usize| v.numbers.get(i).copied().unwrap_or(0);
        (0..len)
            .map(|i| at(self, i).cmp(&at(other, i)))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
            .then_with(|| self.rank().cmp(&other.rank()))
            .then_with(|| {
                // semver: identifiers in order; numbers before text; a shorter list first when all else is equal.
                for (a, b) in self.suffix.iter().zip(&other.suffix) {
                    let o = match (a, b) {
                        (Ident::Number(a), Ident::Number(b)) => a.cmp(b),
                        (Ident::Number(_), Ident::Text(_)) => Ordering::Less,
                        (Ident::Text(_), Ident::Number(_)) => Ordering::Greater,
                        (Ident::Text(a), Ident::Text(b)) => a.cmp(b),
                    };
                    if o.is_ne() {
                        return o;
                    }
                }
                self.suffix.len().cmp(&other.suffix.len())
            })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Compare two release names; `None` when either is not one.
pub fn compare(a: &str, b: &str) -> Option<Ordering> {
    Some(Version::parse(a)?.cmp(&Version::parse(b)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lt(a: &str, b: &str) {
        assert_eq!(compare(a, b), Some(Ordering::Less), "{a} < {b}");
        assert_eq!(compare(b, a), Some(Ordering::Greater), "{b} > {a}");
    }

    #[test]
    fn numbers_compare_numerically_not_as_text() {
        lt("1.13.3", "1.13.10");
        lt("1.9.2", "1.10.0");
        lt("0.15.8", "1.0.0");
        assert_eq!(compare("1.13", "1.13.0"), Some(Ordering::Equal));
        assert_eq!(compare("v1.13.3", "1.13.3"), Some(Ordering::Equal));
    }

    #[test]
    fn a_fix_release_follows_its_base_and_precedes_the_next() {
        lt("1.10.1-fix.1", "1.13.3");
        lt("1.10.1", "1.10.1-fix.1");
        lt("1.10.1-fix.1", "1.10.1-fix.2");
        lt("1.10.1-fix.2", "1.10.1-fix.10");
        lt("1.10.1-fix.1", "1.10.2");
        lt("1.10.1-fix.9", "1.10.2-beta.1");
    }

    #[test]
    fn pre_releases_precede_the_release() {
        lt("1.0.0-beta.1", "1.0.0");
        lt("1.0.0-alpha", "1.0.0-beta");
        lt("1.0.0-beta.2", "1.0.0-beta.11");
        lt("1.0.0-beta", "1.0.0-beta.1");
        lt("1.0.0-rc.1", "1.0.0");
        lt("1.0.0-1", "1.0.0-alpha"); // semver: numeric identifiers first
        lt("0.9.9", "1.0.0-beta.1");
    }

    #[test]
    fn what_is_not_a_release_name_does_not_compare() {
        for bad in ["", "latest", "1..2", "1.x", "1.2.3-", "1.2.3-fix..1", "1.2.3-f!x"] {
            assert_eq!(Version::parse(bad), None, "{bad}");
            assert_eq!(compare(bad, "1.0.0"), None, "{bad}");
        }
    }
}
