//! The TLS certificate and key files: present, readable, PEM, and the certificate's expiry. The notAfter field is
//! read by walking the DER by hand, with the calendar arithmetic to turn it into a date.

use std::io;
use std::path::Path;

use base64::Engine;

use crate::doctor::Outcome;

/// A certificate that expires within this many days warns: time to renew.
const TLS_WARN_DAYS: i64 = 14;
/// Within this many days it fails: a renewal that has not happened by now is an outage in the making.
const TLS_FAIL_DAYS: i64 = 7;

const CERT_LOCATION_HINT: &str = "NGINX_CERT_DIR in .env names the directory, `tls: {certificate, key}` in \
                                  ragctl.yaml the file names";

fn read_file_outcome(path: &Path, what: &str) -> Result<Vec<u8>, Outcome> {
    std::fs::read(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Outcome::fail(
            format!("{what} `{}` does not exist", path.display()),
            format!(
                "put the {what} there ({CERT_LOCATION_HINT}); for a self-signed test pair: `openssl req -x509 \
                 -newkey rsa:2048 -nodes -days 365 -subj /CN=localhost -keyout <key> -out <certificate>`"
            ),
        ),
        io::ErrorKind::PermissionDenied => Outcome::fail(
            format!("{what} `{}` is not readable by this user", path.display()),
            format!("make it readable (`chmod 644` for the certificate, owner-only for the key: `chmod 600` and run ragctl as its owner) — {CERT_LOCATION_HINT}"),
        ),
        _ => Outcome::fail(format!("cannot read {what} `{}`: {e}", path.display()), CERT_LOCATION_HINT.to_string()),
    })
}

pub(super) fn assess_certificate(path: &Path, now: i64) -> Outcome {
    let bytes = match read_file_outcome(path, "certificate") {
        Ok(b) => b,
        Err(outcome) => return outcome,
    };
    let not_after = match certificate_not_after(&bytes) {
        Ok(t) => t,
        Err(e) => {
            return Outcome::fail(
                format!("certificate `{}` does not parse: {e}", path.display()),
                format!(
                    "it must be a PEM certificate chain (-----BEGIN CERTIFICATE-----), server certificate first; {CERT_LOCATION_HINT}"
                ),
            );
        }
    };
    let when = format_utc(not_after);
    let days = (not_after - now).div_euclid(86_400);
    let renew = format!("renew the certificate in `{}`, then `ragctl restart nginx`", path.display());
    if not_after <= now {
        Outcome::fail(format!("certificate `{}` expired on {when}", path.display()), renew)
    } else if not_after - now <= TLS_WARN_DAYS * 86_400 {
        let left = not_after - now;
        let within = if left < 2 * 86_400 { format!("{} hours", left / 3600) } else { format!("{days} days") };
        let detail = format!("certificate `{}` expires in {within}, on {when}", path.display());
        if left <= TLS_FAIL_DAYS * 86_400 {
            Outcome::fail(format!("{detail}: {TLS_FAIL_DAYS} days or less"), renew)
        } else {
            Outcome::warn(detail, renew)
        }
    } else {
        Outcome::pass(format!("certificate `{}` valid until {when} ({days} days)", path.display()))
    }
}

pub(super) fn assess_key(path: &Path) -> Outcome {
    let bytes = match read_file_outcome(path, "private key") {
        Ok(b) => b,
        Err(outcome) => return outcome,
    };
    let text = String::from_utf8_lossy(&bytes);
    if text.contains("-----BEGIN") && text.contains("PRIVATE KEY-----") {
        Outcome::pass(format!("private key `{}` present and readable", path.display()))
    } else {
        Outcome::fail(
            format!("`{}` holds no PEM private key (-----BEGIN ... PRIVATE KEY-----)", path.display()),
            format!("put the certificate's private key there in PEM form; {CERT_LOCATION_HINT}"),
        )
    }
}

/// The notAfter of the first certificate in a PEM file, as Unix seconds.
///
/// A dozen lines of DER walking rather than an X.509 crate: doctor needs this one field, and a full parser
/// would add several crates and compile time to every build.
fn certificate_not_after(pem: &[u8]) -> Result<i64, String> {
    let text = String::from_utf8_lossy(pem);
    let begin = "-----BEGIN CERTIFICATE-----";
    let start = text.find(begin).ok_or("no -----BEGIN CERTIFICATE----- block")? + begin.len();
    let end = text[start..].find("-----END CERTIFICATE-----").ok_or("no -----END CERTIFICATE----- line")? + start;
    let b64: String = text[start..end].chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|e| format!("bad base64: {e}"))?;

    // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber, signature,
    //                            issuer, validity SEQUENCE { notBefore, notAfter }, ... }, ... }
    let (tag, cert, _) = der_element(&der)?;
    expect_tag(tag, 0x30, "Certificate")?;
    let (tag, tbs, _) = der_element(cert)?;
    expect_tag(tag, 0x30, "TBSCertificate")?;
    let mut rest = tbs;
    let (tag, _, after) = der_element(rest)?;
    if tag == 0xa0 {
        rest = after; // explicit version
    }
    for field in ["serialNumber", "signature", "issuer"] {
        let (_, _, after) = der_element(rest).map_err(|e| format!("{field}: {e}"))?;
        rest = after;
    }
    let (tag, validity, _) = der_element(rest)?;
    expect_tag(tag, 0x30, "Validity")?;
    let (_, _, after_not_before) = der_element(validity)?;
    let (tag, not_after, _) = der_element(after_not_before)?;
    let text = std::str::from_utf8(not_after).map_err(|_| "notAfter is not ASCII")?;
    match tag {
        0x17 => parse_asn1_time(text, false),
        0x18 => parse_asn1_time(text, true),
        other => Err(format!("notAfter has tag {other:#x}, not UTCTime or GeneralizedTime")),
    }
}

fn expect_tag(tag: u8, want: u8, what: &str) -> Result<(), String> {
    if tag == want { Ok(()) } else { Err(format!("{what}: expected tag {want:#x}, found {tag:#x}")) }
}

/// One DER element: (tag, contents, the bytes after it).
fn der_element(buf: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
    let (&tag, rest) = buf.split_first().ok_or("truncated DER")?;
    let (&first, rest) = rest.split_first().ok_or("truncated DER length")?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return Err("unsupported DER length".into());
        }
        (rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | *b as usize), &rest[n..])
    };
    if rest.len() < len {
        return Err("truncated DER contents".into());
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

/// `YYMMDDHHMMSSZ` (UTCTime: 50–99 → 19xx) or `YYYYMMDDHHMMSSZ` (GeneralizedTime) → Unix seconds.
fn parse_asn1_time(text: &str, generalized: bool) -> Result<i64, String> {
    let digits = text.strip_suffix('Z').ok_or_else(|| format!("time `{text}` is not UTC"))?;
    let year_len = if generalized { 4 } else { 2 };
    if digits.len() != year_len + 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("time `{text}` is malformed"));
    }
    let num = |from: usize, len: usize| digits[from..from + len].parse::<i64>().unwrap_or(0);
    let mut year = num(0, year_len);
    if !generalized {
        year += if year >= 50 { 1900 } else { 2000 };
    }
    let at = year_len;
    let (month, day, hour, minute, second) =
        (num(at, 2), num(at + 2, 2), num(at + 4, 2), num(at + 6, 2), num(at + 8, 2));
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(format!("time `{text}` is malformed"));
    }
    let invalid = || format!("time `{text}` is malformed");
    let month = u8::try_from(month).ok().and_then(|m| time::Month::try_from(m).ok()).ok_or_else(invalid)?;
    let at = time::Date::from_calendar_date(year as i32, month, day as u8)
        .and_then(|d| d.with_hms(hour as u8, minute as u8, second as u8))
        .map_err(|_| invalid())?;
    Ok(at.assume_utc().unix_timestamp())
}

/// `2026-12-29 01:03:23 UTC` for Unix seconds.
fn format_utc(secs: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => format!("{secs} seconds after the Unix epoch"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    /// `openssl req -x509 -days 30` (UTCTime) and `-days 36500` (GeneralizedTime, after 2049); the expected
    /// values are `openssl x509 -noout -enddate` as Unix seconds.
    const CERT_UTCTIME: &str = "-----BEGIN CERTIFICATE-----
MIIBgTCCASegAwIBAgIUC9W2Rr94bBvkmn2PdHEZ5UmUGVgwCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLcmFnY3RsLXRlc3QwHhcNMjYxMTI5MDEwMzIzWhcNMjYxMjI5
MDEwMzIzWjAWMRQwEgYDVQQDDAtyYWdjdGwtdGVzdDBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABBJWoc7Kla5Y0mnOZaLalfNdTa59p2+7vd5tq+EH6Bwuhrez0BkE
zU90WRlInf+CACVlvsTUj+wOg3luq4tUil+jUzBRMB0GA1UdDgQWBBTFkAyDeU5f
lIES+z18K+/BecVoBzAfBgNVHSMEGDAWgBTFkAyDeU5flIES+z18K+/BecVoBzAP
BgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIHbNEu5p0fEaar/QqTQ5
p+MciWPbgTOyW28qulMr8tFNAiEAvPFlj1ESLmdyo7/QHhIeAjiNlUDRP3k84+6F
ZL82PJ8=
-----END CERTIFICATE-----
";
    const CERT_GENERALIZED: &str = "-----BEGIN CERTIFICATE-----
MIIBhDCCASmgAwIBAgIUBCcP8n/sLqxuNG1Q9k/hikVgrWswCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLcmFnY3RsLXRlc3QwIBcNMjYxMTI5MDEwMzIzWhgPMjEyNjEx
MDUwMTAzMjNaMBYxFDASBgNVBAMMC3JhZ2N0bC10ZXN0MFkwEwYHKoZIzj0CAQYI
KoZIzj0DAQcDQgAEztW8ey7uE9FGZc0+a/XB3zxum/LjUKU887ByWNSCD4gM+MjC
z9t2tPG4tTwSVlD1cokPEyEVZU8ot9k+gvYMr6NTMFEwHQYDVR0OBBYEFEJLscxv
Il8G5wAZCaLhsEJre1GcMB8GA1UdIwQYMBaAFEJLscxvIl8G5wAZCaLhsEJre1Gc
MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAPNdIlZJq76/FPDB
tzrzFkvgq3q9x5hSyg+n9OdsUf/wAiEAqzLAXIQ2n2YkG+jyrOXmtiOPfXOeajJF
UNQyHSpUJFI=
-----END CERTIFICATE-----
";

    #[test]
    fn certificate_expiry_is_read_from_der() {
        assert_eq!(certificate_not_after(CERT_UTCTIME.as_bytes()), Ok(1_798_506_203));
        assert_eq!(certificate_not_after(CERT_GENERALIZED.as_bytes()), Ok(4_949_514_203));
        assert_eq!(format_utc(1_798_506_203), "2026-12-29 01:03:23 UTC");
        assert_eq!(format_utc(4_949_514_203), "2126-11-05 01:03:23 UTC");
        assert!(certificate_not_after(b"not a certificate").unwrap_err().contains("BEGIN CERTIFICATE"));
        let truncated = CERT_UTCTIME.replace("ZL82PJ8=\n", "");
        assert!(certificate_not_after(truncated.as_bytes()).is_err());
    }

    #[test]
    fn asn1_times() {
        assert_eq!(parse_asn1_time("700101000000Z", false), Ok(0));
        assert_eq!(parse_asn1_time("491231235959Z", false), Ok(2_524_607_999));
        assert_eq!(parse_asn1_time("20000229120000Z", true), Ok(951_825_600));
        assert!(parse_asn1_time("20000229120000+0100", true).is_err());
        assert!(parse_asn1_time("001399000000Z", false).is_err());
    }

    #[test]
    fn certificate_outcomes_by_remaining_days() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("fullchain.pem");
        std::fs::write(&cert, CERT_UTCTIME).unwrap();
        let not_after = 1_798_506_203;
        assert_eq!(assess_certificate(&cert, not_after - 30 * 86_400).status, Status::Pass);
        let soon = assess_certificate(&cert, not_after - 10 * 86_400);
        assert_eq!(soon.status, Status::Warn);
        assert!(soon.detail.contains("expires in 10 days"), "{}", soon.detail);
        // Within 7 days it fails, within 14 it warns (both bounds included).
        let due = assess_certificate(&cert, not_after - 3 * 86_400);
        assert_eq!(due.status, Status::Fail);
        assert!(due.detail.contains("expires in 3 days") && due.detail.contains("7 days or less"), "{}", due.detail);
        assert!(due.hint.unwrap().contains("renew the certificate"));
        assert_eq!(assess_certificate(&cert, not_after - 7 * 86_400 - 1).status, Status::Warn);
        assert_eq!(assess_certificate(&cert, not_after - 7 * 86_400).status, Status::Fail);
        assert_eq!(assess_certificate(&cert, not_after - 14 * 86_400).status, Status::Warn);
        assert_eq!(assess_certificate(&cert, not_after - 14 * 86_400 - 1).status, Status::Pass);
        let expired = assess_certificate(&cert, not_after + 1);
        assert_eq!(expired.status, Status::Fail);
        assert!(expired.detail.contains("expired on 2026-12-29"), "{}", expired.detail);
        let missing = assess_certificate(&dir.path().join("nope.pem"), 0);
        assert_eq!(missing.status, Status::Fail);
        assert!(missing.hint.unwrap().contains("NGINX_CERT_DIR"));
        let key = dir.path().join("privkey.pem");
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n").unwrap();
        assert_eq!(assess_key(&key).status, Status::Pass);
        std::fs::write(&key, "hello").unwrap();
        assert_eq!(assess_key(&key).status, Status::Fail);
    }
}
