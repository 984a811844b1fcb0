//! Byte sizes as compose writes them (`512m`, `1.5g`, `2GB`, `1024`): the one parser every reader of a size uses
//! (memory limits, `shm_size`, ragctl.yaml validation, the host memory check, Kubernetes quantities).
//!
//! Units are compose's (powers of 1024, case-insensitive): none or `b` for bytes, `k`/`kb`, `m`/`mb`, `g`/`gb`,
//! `t`/`tb`; an `i` before the `b` (`mib`) is accepted as compose accepts it. The number may have decimals.
//! This module knows nothing about where a size was written: callers attach the file and line to a refusal.

const KIB: u64 = 1024;
const MIB: u64 = KIB * 1024;

/// A number of bytes, parsed from compose's notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(u64);

/// What to write instead of a size that does not parse, for hints.
pub const EXAMPLES: &str = "a number of bytes with an optional unit b, k, m, g or t (such as 512m, 1.5g or 2gb)";

impl ByteSize {
    pub const fn from_bytes(bytes: u64) -> ByteSize {
        ByteSize(bytes)
    }

    /// `None` when `text` is not a size: no number, an unknown unit, a negative number or more than `u64` bytes.
    pub fn parse(text: &str) -> Option<ByteSize> {
        let lower = text.trim().to_ascii_lowercase();
        let digits = lower.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(lower.len());
        let (number, unit) = lower.split_at(digits);
        if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
            return None;
        }
        let number: f64 = number.parse().ok()?;
        let factor = match unit.trim_start() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => KIB,
            "m" | "mb" | "mib" => MIB,
            "g" | "gb" | "gib" => MIB * KIB,
            "t" | "tb" | "tib" => MIB * MIB,
            _ => return None,
        };
        // Compose truncates fractional bytes (`1.5k` is 1536, `0.3` is 0).
        let bytes = number * factor as f64;
        (bytes.is_finite() && bytes < u64::MAX as f64).then_some(ByteSize(bytes as u64))
    }

    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// The same amount as a Kubernetes quantity: whole MiB as `Mi` (how ragctl has always written them), else
    /// whole KiB as `Ki`, else plain bytes, so no size is rounded.
    pub fn kubernetes_quantity(self) -> String {
        if self.0 >= MIB && self.0.is_multiple_of(MIB) {
            format!("{}Mi", self.0 / MIB)
        } else if self.0 >= KIB && self.0.is_multiple_of(KIB) {
            format!("{}Ki", self.0 / KIB)
        } else {
            self.0.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(text: &str) -> Option<u64> {
        ByteSize::parse(text).map(ByteSize::bytes)
    }

    #[test]
    fn compose_units_are_powers_of_1024_in_any_case() {
        assert_eq!(bytes("1024"), Some(1024));
        assert_eq!(bytes("10b"), Some(10));
        assert_eq!(bytes("512k"), Some(512 * 1024));
        assert_eq!(bytes("512KB"), Some(512 * 1024));
        assert_eq!(bytes("128MB"), Some(128 * MIB));
        assert_eq!(bytes("256mib"), Some(256 * MIB));
        assert_eq!(bytes("2g"), Some(2 * 1024 * MIB));
        assert_eq!(bytes("2Gb"), Some(2 * 1024 * MIB));
        assert_eq!(bytes("1t"), Some(MIB * MIB));
        assert_eq!(bytes("1TB"), Some(MIB * MIB));
        assert_eq!(bytes(" 64m "), Some(64 * MIB));
    }

    #[test]
    fn decimals_are_accepted_and_fractional_bytes_truncated() {
        assert_eq!(bytes("1.5g"), Some(1536 * MIB));
        assert_eq!(bytes("0.5m"), Some(512 * 1024));
        assert_eq!(bytes("1.5"), Some(1));
    }

    #[test]
    fn anything_else_is_refused() {
        for text in ["", "lots", "4zz", "g", "-1g", "1.g", ".5g", "1.2.3m", "1p", "1 gigabyte", "1e3", "99999999999t"] {
            assert_eq!(bytes(text), None, "{text:?} was accepted");
        }
    }

    #[test]
    fn kubernetes_quantities_keep_every_byte() {
        assert_eq!(ByteSize::parse("2g").unwrap().kubernetes_quantity(), "2048Mi");
        assert_eq!(ByteSize::parse("1.5g").unwrap().kubernetes_quantity(), "1536Mi");
        assert_eq!(ByteSize::parse("1t").unwrap().kubernetes_quantity(), "1048576Mi");
        assert_eq!(ByteSize::parse("512k").unwrap().kubernetes_quantity(), "512Ki");
        assert_eq!(ByteSize::parse("1000").unwrap().kubernetes_quantity(), "1000");
    }
}
