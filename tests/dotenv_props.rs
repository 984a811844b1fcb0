//! Properties of the `.env` model that must hold for any input, not just the examples in the unit tests.

use proptest::prelude::*;
use ragctl::dotenv::DotEnv;

fn inline_space() -> impl Strategy<Value = String> {
    "[ \t]{0,3}"
}

fn key() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_.-]{0,8}"
}

/// A comment's text after `#`: anything on one line.
fn comment_text() -> impl Strategy<Value = String> {
    "[^\r\n]{0,12}"
}

/// A value exactly as it can be written in a file, in every quoting style.
fn written_value() -> impl Strategy<Value = String> {
    let bare = "([^'\"\\s][^\r\n]{0,12})?";
    // Inside single quotes a backslash is literal unless it escapes `'`; never let one sit before the close.
    let single = prop::collection::vec(
        prop_oneof![
            "[^'\\\\\r]".prop_map(String::from),
            Just("\\'".to_owned()),
            "\\\\[^'\\\\\r]".prop_map(String::from),
            Just("\r\n".to_owned()),
        ],
        0..8,
    )
    .prop_map(|parts| format!("'{}'", parts.concat()));
    let double = prop::collection::vec(
        prop_oneof![
            "[^\"\\\\\r]".prop_map(String::from),
            "\\\\[^\r]".prop_map(String::from),
            Just("\r\n".to_owned()),
            Just("${A:-x}".to_owned()),
        ],
        0..8,
    )
    .prop_map(|parts| format!("\"{}\"", parts.concat()));
    prop_oneof![bare.prop_map(String::from), single, double]
}

fn entry_line() -> impl Strategy<Value = String> {
    (
        inline_space(),
        prop::option::of(("[ \t]{1,2}").prop_map(|s| format!("export{s}"))),
        key(),
        inline_space(),
        inline_space(),
        written_value(),
        inline_space(),
        prop::option::of(comment_text()),
    )
        .prop_map(|(indent, export, key, before_eq, after_eq, value, pad, comment)| {
            let quoted = value.starts_with(['\'', '"']);
            let comment = match comment {
                // After a bare value a comment needs whitespace before `#`; otherwise it is part of the value,
                // which is still a valid line.
                Some(c) if quoted || !pad.is_empty() => format!("#{c}"),
                _ => String::new(),
            };
            let pad = if quoted || !comment.is_empty() { pad } else { String::new() };
            format!("{indent}{}{key}{before_eq}={after_eq}{value}{pad}{comment}", export.unwrap_or_default())
        })
}

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        inline_space(),
        (inline_space(), comment_text()).prop_map(|(s, c)| format!("{s}#{c}")),
        entry_line(),
        entry_line(),
    ]
}

fn document() -> impl Strategy<Value = String> {
    (prop::collection::vec((line(), prop_oneof![Just("\n"), Just("\r\n")]), 0..12), prop::option::of(line())).prop_map(
        |(lines, last)| {
            let mut doc: String = lines.iter().map(|(l, end)| format!("{l}{end}")).collect();
            doc.push_str(&last.unwrap_or_default());
            doc
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn valid_documents_render_byte_identical(src in document()) {
        let doc = DotEnv::parse(&src).map_err(|e| TestCaseError::fail(format!("{e} in {src:?}")))?;
        prop_assert_eq!(doc.render(), src);
    }

    #[test]
    fn any_value_survives_set_render_parse(
        src in document(),
        key in key(),
        value in "(?s).{0,24}|[ #$'\"\\\\=\n\r\t{}a-z]{0,24}",
    ) {
        let mut doc = DotEnv::parse(&src).map_err(|e| TestCaseError::fail(format!("{e} in {src:?}")))?;
        doc.set(&key, &value);
        doc.set("APPENDED_KEY", &value);
        let rendered = doc.render();
        let reparsed = DotEnv::parse(&rendered)
            .map_err(|e| TestCaseError::fail(format!("{e} in {rendered:?}")))?;
        prop_assert_eq!(reparsed.get(&key), Some(value.as_str()), "rendered: {:?}", rendered);
        prop_assert_eq!(reparsed.get("APPENDED_KEY"), Some(value.as_str()), "rendered: {:?}", rendered);
    }

    #[test]
    fn any_value_survives_set_in_group(value in "(?s).{0,24}") {
        let mut doc = DotEnv::new_with_header("header");
        doc.set_in_group("g", "K", &value);
        let reparsed = DotEnv::parse(&doc.render())
            .map_err(|e| TestCaseError::fail(format!("{e} in {:?}", doc.render())))?;
        prop_assert_eq!(reparsed.get("K"), Some(value.as_str()));
    }

    #[test]
    fn parse_never_panics(src in "(?s).{0,200}") {
        if let Ok(doc) = DotEnv::parse(&src) {
            prop_assert_eq!(doc.render(), src);
        }
    }

    #[test]
    fn parse_never_panics_on_env_like_text(src in "[A-Za-z_ =#'\"\\\\$\\{\\}:\\-\r\n\texport]{0,120}") {
        if let Ok(doc) = DotEnv::parse(&src) {
            prop_assert_eq!(doc.render(), src.clone());
            let entries: Vec<_> = doc.entries().collect();
            let again = DotEnv::parse(&doc.render()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(again.entries().collect::<Vec<_>>(), entries);
            let _ = doc.resolved(&|_| None);
        }
    }
}
