use super::*;

fn parse(src: &str) -> DotEnv {
    match DotEnv::parse(src) {
        Ok(doc) => doc,
        Err(e) => panic!("{src:?} failed to parse: {e}"),
    }
}

fn value(src: &str) -> String {
    let doc = parse(src);
    assert_eq!(doc.render(), src, "render must be lossless");
    doc.get("K").unwrap_or_else(|| panic!("no K in {src:?}")).to_owned()
}

fn error(src: &str) -> (usize, usize, ParseErrorKind) {
    match DotEnv::parse(src) {
        Ok(doc) => panic!("{src:?} parsed unexpectedly: {doc:?}"),
        Err(e) => (e.line, e.column, e.kind),
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

// --- grammar -------------------------------------------------------------------------------------------

#[test]
fn blank_lines_and_comments_are_not_entries() {
    let doc = parse("\n   \n# comment\n  # indented comment\n\t\n");
    assert_eq!(doc.entries().count(), 0);
    assert_eq!(doc.render(), "\n   \n# comment\n  # indented comment\n\t\n");
}

#[test]
fn empty_input_is_an_empty_document() {
    let doc = parse("");
    assert_eq!(doc.entries().count(), 0);
    assert_eq!(doc.render(), "");
}

#[test]
fn plain_assignment() {
    assert_eq!(value("K=v"), "v");
    assert_eq!(value("K=v\n"), "v");
    assert_eq!(value("K=\n"), "");
    assert_eq!(value("K="), "");
}

#[test]
fn export_prefix_is_optional() {
    assert_eq!(value("export K=v\n"), "v");
    assert_eq!(value("export\t  K=v\n"), "v");
    // Without space after it, `export` is part of the key; followed by `=` it is the key.
    assert_eq!(parse("exportK=1\n").get("exportK"), Some("1"));
    assert_eq!(parse("export=1\n").get("export"), Some("1"));
    assert_eq!(parse("export = 1\n").get("export"), Some("1"));
}

#[test]
fn spaces_around_equals_and_indentation() {
    assert_eq!(value("K = v\n"), "v");
    assert_eq!(value("  K\t=\tv  \n"), "v");
    assert_eq!(value("K =  'v'  \n"), "v");
}

#[test]
fn key_alphabet() {
    let doc = parse("_a.b-c9=1\nA_B=2\n");
    assert_eq!(doc.get("_a.b-c9"), Some("1"));
    assert_eq!(doc.get("A_B"), Some("2"));
    assert!(is_valid_key("x.y-z"));
    assert!(!is_valid_key("9x"));
    assert!(!is_valid_key(""));
    assert!(!is_valid_key("a b"));
}

#[test]
fn unquoted_value_trailing_space_trimmed_and_inline_comment() {
    assert_eq!(value("K=a b  \n"), "a b");
    assert_eq!(value("K=a # comment\n"), "a");
    assert_eq!(value("K=a\t# comment\n"), "a");
    assert_eq!(value("K=a#b\n"), "a#b");
    assert_eq!(value("K=a#b # c\n"), "a#b");
    // python-dotenv reads a value that starts with `#` as the value, not as a comment.
    assert_eq!(value("K=#x\n"), "#x");
    assert_eq!(value("K= # x\n"), "# x");
}

#[test]
fn unquoted_value_is_raw() {
    assert_eq!(value(r"K=a\nb"), r"a\nb");
    assert_eq!(value("K=it's \"x\"\n"), "it's \"x\"");
    assert_eq!(value("K=a=b=c\n"), "a=b=c");
}

#[test]
fn single_quoted_value_is_literal() {
    assert_eq!(value("K='a b # c'\n"), "a b # c");
    assert_eq!(value(r"K='a\nb\\c\ d'"), "a\\nb\\\\c\\ d");
    assert_eq!(value("K='${X} $Y \"q\"'\n"), "${X} $Y \"q\"");
    assert_eq!(value("K=''\n"), "");
}

#[test]
fn single_quoted_escaped_quote() {
    assert_eq!(value(r"K='it\'s'"), "it's");
}

#[test]
fn single_quoted_value_may_span_lines() {
    assert_eq!(value("K='a\nb'\nL=1\n"), "a\nb");
}

#[test]
fn single_quoted_value_is_not_interpolated() {
    let doc = parse("A=1\nK='${A}'\n");
    assert_eq!(doc.resolved(&no_env)["K"], "${A}");
}

#[test]
fn double_quoted_escapes() {
    assert_eq!(value(r#"K="a\\b""#), r"a\b");
    assert_eq!(value(r#"K="say \"hi\"""#), r#"say "hi""#);
    assert_eq!(value(r#"K="l1\nl2\tt\rr""#), "l1\nl2\tt\rr");
    assert_eq!(value(r#"K="\$HOME \'""#), "$HOME '");
    assert_eq!(value(r#"K="\a\b\f\v""#), "\u{7}\u{8}\u{c}\u{b}");
    // Unknown escapes keep the backslash.
    assert_eq!(value(r#"K="\x\q\u00e9""#), r"\x\q\u00e9");
    assert_eq!(value("K=\"a # not comment\" # comment\n"), "a # not comment");
    assert_eq!(value("K=\"x\"#comment\n"), "x");
}

#[test]
fn double_quoted_value_may_span_lines() {
    let doc = parse("K=\"line1\nline2\"\nL=after\n");
    assert_eq!(doc.get("K"), Some("line1\nline2"));
    assert_eq!(doc.get("L"), Some("after"));
}

#[test]
fn crlf_inside_a_quoted_value_reads_as_lf() {
    assert_eq!(value("K=\"a\r\nb\"\r\n"), "a\nb");
}

#[test]
fn crlf_line_ends() {
    let src = "A=1\r\n# c\r\nB='x y'\r\n\r\nC=\"q\" # c\r\n";
    let doc = parse(src);
    assert_eq!(doc.render(), src);
    assert_eq!(doc.get("A"), Some("1"));
    assert_eq!(doc.get("B"), Some("x y"));
    assert_eq!(doc.get("C"), Some("q"));
}

#[test]
fn last_assignment_wins_and_entries_keep_first_position() {
    let doc = parse("A=1\nB=2\nA=3\n");
    assert_eq!(doc.get("A"), Some("3"));
    assert!(doc.contains("B"));
    assert!(!doc.contains("C"));
    let entries: Vec<_> = doc.entries().collect();
    assert_eq!(entries, vec![("A", "3"), ("B", "2")]);
}

#[test]
fn unicode_values_and_comments() {
    let src = "# ünïcödé ☃\nK='日本語 ✓'\nL=é\n";
    let doc = parse(src);
    assert_eq!(doc.get("K"), Some("日本語 ✓"));
    assert_eq!(doc.get("L"), Some("é"));
}

// --- interpolation -------------------------------------------------------------------------------------

#[test]
fn resolved_uses_earlier_keys_then_outer() {
    let doc = parse(
        "HOST=db\nURL=\"postgres://${HOST}:${PORT:-5432}/${DB-app}\"\nFROM_OUTER=${OUTER}\nLATE=${LATER}\nLATER=x\n",
    );
    let outer = |name: &str| (name == "OUTER" || name == "HOST").then(|| format!("outer-{name}"));
    let resolved = doc.resolved(&outer);
    assert_eq!(resolved["URL"], "postgres://db:5432/app");
    assert_eq!(resolved["FROM_OUTER"], "outer-OUTER");
    // A later key is not visible yet; the reference falls back to `outer`, then to empty.
    assert_eq!(resolved["LATE"], "");
    // The raw text stays available, unexpanded.
    assert_eq!(doc.get("URL"), Some("postgres://${HOST}:${PORT:-5432}/${DB-app}"));
}

#[test]
fn resolved_defaults_and_escapes() {
    let doc = parse("E=\nA=${E:-d1}\nB=${E-d2}\nC=\"\\${E:-no}\"\nD=$E\nF='${E:-no}'\n");
    let resolved = doc.resolved(&no_env);
    assert_eq!(resolved["A"], "d1");
    assert_eq!(resolved["B"], "");
    assert_eq!(resolved["C"], "${E:-no}");
    assert_eq!(resolved["D"], "$E");
    assert_eq!(resolved["F"], "${E:-no}");
}

#[test]
fn resolved_keeps_file_order_with_last_wins() {
    let doc = parse("A=1\nB=${A}\nA=2\nC=${A}\n");
    let resolved = doc.resolved(&no_env);
    let pairs: Vec<_> = resolved.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(pairs, vec![("A", "2"), ("B", "1"), ("C", "2")]);
}

// --- errors --------------------------------------------------------------------------------------------

#[test]
fn missing_key() {
    assert_eq!(error("=x\n"), (1, 1, ParseErrorKind::MissingKey));
    assert_eq!(error("A=1\n  = x\n"), (2, 3, ParseErrorKind::MissingKey));
}

#[test]
fn invalid_key_start_and_char() {
    assert_eq!(error("1KEY=x\n"), (1, 1, ParseErrorKind::InvalidKeyStart { found: '1' }));
    assert_eq!(error("A=1\nKE!Y=x\n"), (2, 3, ParseErrorKind::InvalidKeyChar { found: '!' }));
    assert_eq!(error("'K'=x\n"), (1, 1, ParseErrorKind::InvalidKeyStart { found: '\'' }));
    assert_eq!(error("é=x\n"), (1, 1, ParseErrorKind::InvalidKeyStart { found: 'é' }));
}

#[test]
fn missing_equals() {
    assert_eq!(error("KEY\n"), (1, 4, ParseErrorKind::MissingEquals { found: None }));
    assert_eq!(error("KEY"), (1, 4, ParseErrorKind::MissingEquals { found: None }));
    assert_eq!(error("KEY VALUE\n"), (1, 5, ParseErrorKind::MissingEquals { found: Some('V') }));
    assert_eq!(error("export\n"), (1, 7, ParseErrorKind::MissingEquals { found: None }));
}

#[test]
fn unterminated_quotes_point_at_the_opening_quote() {
    assert_eq!(error("A=1\n\nK = \"abc\n"), (3, 5, ParseErrorKind::UnterminatedDoubleQuote));
    assert_eq!(error("K='abc\nmore\n"), (1, 3, ParseErrorKind::UnterminatedSingleQuote));
    assert_eq!(error(r#"K="abc\""#), (1, 3, ParseErrorKind::UnterminatedDoubleQuote));
    assert_eq!(error("K=\"abc\\"), (1, 3, ParseErrorKind::UnterminatedDoubleQuote));
    assert_eq!(error(r"K='abc\'"), (1, 3, ParseErrorKind::UnterminatedSingleQuote));
}

#[test]
fn garbage_after_closing_quote() {
    assert_eq!(error("K=\"a\" b\n"), (1, 7, ParseErrorKind::TrailingGarbage { found: 'b' }));
    assert_eq!(error("K='a'b\n"), (1, 6, ParseErrorKind::TrailingGarbage { found: 'b' }));
    // Line and column count from the line the value ends on.
    assert_eq!(error("K=\"a\nbc\"x\n"), (2, 4, ParseErrorKind::TrailingGarbage { found: 'x' }));
}

#[test]
fn lone_carriage_return_is_rejected() {
    assert_eq!(error("A=1\rB=2\n"), (1, 4, ParseErrorKind::BareCarriageReturn));
    assert_eq!(error("# c\r"), (1, 4, ParseErrorKind::BareCarriageReturn));
    assert_eq!(error("K='a\rb'"), (1, 5, ParseErrorKind::BareCarriageReturn));
}

#[test]
fn error_display_is_prefixable() {
    let err = DotEnv::parse("A=1\n\nK = \"abc\n").expect_err("unterminated");
    assert_eq!(err.to_string(), "line 3, column 5: unterminated double quote");
    assert_eq!(
        DotEnv::parse("KEY VALUE").expect_err("no =").to_string(),
        "line 1, column 5: expected `=` after key, found `V`"
    );
}

#[test]
fn column_counts_characters_not_bytes() {
    assert_eq!(error("K='é' é\n"), (1, 7, ParseErrorKind::TrailingGarbage { found: 'é' }));
}

#[test]
fn load_reports_path_and_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(".env");
    std::fs::write(&path, "A=1\nB=\"x\n").expect("write");
    let err = load(&path).expect_err("unterminated");
    assert_eq!(err.to_string(), format!("{}:2:3: unterminated double quote", path.display()));
    let missing = load(&dir.path().join("nope")).expect_err("missing");
    assert!(matches!(missing, LoadError::Read { .. }), "{missing:?}");
    std::fs::write(&path, "A=1\n").expect("write");
    assert_eq!(load(&path).expect("valid").get("A"), Some("1"));
}

#[test]
fn load_names_the_first_byte_that_is_not_utf8() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(".env");
    // Line 2: `N`, `=`, `ü` (two bytes, one character), then Latin-1 `é`.
    std::fs::write(&path, b"A=1\nN=\xc3\xbc\xe9\n").expect("write");
    let err = load(&path).expect_err("not UTF-8");
    assert_eq!(err.to_string(), format!("{}:2:4: invalid UTF-8 (byte 0xe9); save the file as UTF-8", path.display()));
    // A multi-byte character cut off at the end of the file.
    std::fs::write(&path, b"A=\xc3").expect("write");
    let err = load(&path).expect_err("truncated");
    assert!(err.to_string().ends_with(":1:3: invalid UTF-8 (byte 0xc3); save the file as UTF-8"), "{err}");
}

// --- editing -------------------------------------------------------------------------------------------

#[test]
fn set_replaces_in_place_keeping_export_spacing_and_comment() {
    let mut doc = parse("# head\nexport  K = old value   # keep me\nL=2\n");
    doc.set("K", "new value");
    assert_eq!(doc.render(), "# head\nexport  K = 'new value'   # keep me\nL=2\n");
    assert_eq!(doc.get("K"), Some("new value"));
}

#[test]
fn set_replaces_quoted_and_multiline_values() {
    let mut doc = parse("A=\"multi\nline\" # c\nB='x'\n");
    doc.set("A", "plain");
    assert_eq!(doc.render(), "A=plain # c\nB='x'\n");
}

#[test]
fn set_keeps_comment_separate_after_quote_without_space() {
    let mut doc = parse("K=\"x\"#c\n");
    doc.set("K", "y");
    assert_eq!(doc.render(), "K=y #c\n");
    assert_eq!(doc.get("K"), Some("y"));
}

#[test]
fn set_empty_value_before_comment_quotes_it() {
    let mut doc = parse("K=x # c\n");
    doc.set("K", "");
    assert_eq!(doc.render(), "K='' # c\n");
    assert_eq!(doc.get("K"), Some(""));
}

#[test]
fn set_leaves_other_lines_byte_identical() {
    let src = "# Comment   \n\n  A = \"1\"  # x\nexport B='two'\nC=3\n\t\n";
    let mut doc = parse(src);
    doc.set("C", "4");
    assert_eq!(doc.render(), src.replace("C=3", "C=4"));
}

#[test]
fn set_edits_the_winning_assignment() {
    let mut doc = parse("A=1\nA=2\n");
    doc.set("A", "3");
    assert_eq!(doc.render(), "A=1\nA=3\n");
    assert_eq!(doc.get("A"), Some("3"));
}

#[test]
fn set_appends_missing_key() {
    let mut doc = parse("A=1\n");
    doc.set("B", "two words");
    assert_eq!(doc.render(), "A=1\nB='two words'\n");
}

#[test]
fn append_to_file_without_trailing_newline() {
    let mut doc = parse("A=1\n# last");
    assert_eq!(doc.render(), "A=1\n# last");
    doc.set("B", "2");
    assert_eq!(doc.render(), "A=1\n# last\nB=2\n");
}

#[test]
fn edit_last_line_without_trailing_newline_keeps_it_that_way() {
    let mut doc = parse("A=1\nB=2");
    doc.set("B", "3");
    assert_eq!(doc.render(), "A=1\nB=3");
}

#[test]
fn crlf_file_edits_and_appends_use_crlf() {
    let mut doc = parse("A=1\r\nB=2 # c\r\n");
    doc.set("B", "x y");
    doc.set("C", "3");
    assert_eq!(doc.render(), "A=1\r\nB='x y' # c\r\nC=3\r\n");
    doc.set_in_group("grp", "D", "4");
    assert_eq!(doc.render(), "A=1\r\nB='x y' # c\r\nC=3\r\n\r\n# --- grp ---\r\nD=4\r\n");
}

#[test]
fn set_in_group_creates_header_once_and_reuses_it() {
    let mut doc = parse("A=1\n");
    doc.set_in_group("secrets", "S1", "a");
    doc.set_in_group("secrets", "S2", "b");
    doc.set_in_group("other", "O1", "c");
    doc.set_in_group("secrets", "S3", "d");
    assert_eq!(doc.render(), "A=1\n\n# --- secrets ---\nS1=a\nS2=b\nS3=d\n\n# --- other ---\nO1=c\n");
    // Present keys are edited where they are, wherever that is.
    doc.set_in_group("other", "S2", "B");
    doc.set_in_group("secrets", "A", "0");
    assert_eq!(doc.render(), "A=0\n\n# --- secrets ---\nS1=a\nS2=B\nS3=d\n\n# --- other ---\nO1=c\n");
}

#[test]
fn set_in_group_in_empty_document_and_after_comment() {
    let mut doc = parse("");
    doc.set_in_group("g", "K", "v");
    assert_eq!(doc.render(), "# --- g ---\nK=v\n");

    let mut doc = parse("# note");
    doc.set_in_group("g", "K", "v");
    assert_eq!(doc.render(), "# note\n\n# --- g ---\nK=v\n");
}

#[test]
fn set_in_group_reuses_existing_header_in_user_file() {
    let mut doc = parse("# --- db ---\nexport DB_USER=u # who\n\nOTHER=1\n");
    doc.set_in_group("db", "DB_PASS", "p w");
    assert_eq!(doc.render(), "# --- db ---\nexport DB_USER=u # who\nDB_PASS='p w'\n\nOTHER=1\n");
}

#[test]
fn remove_deletes_every_assignment() {
    let mut doc = parse("A=1\n# c\nB=2\nA=3\n");
    assert!(doc.remove("A"));
    assert!(!doc.remove("A"));
    assert_eq!(doc.render(), "# c\nB=2\n");
}

#[test]
fn new_with_header_comments_each_line() {
    let mut doc = DotEnv::new_with_header("Generated by ragctl.\n\n# already a comment");
    doc.set("K", "v");
    assert_eq!(doc.render(), "# Generated by ragctl.\n#\n# already a comment\n\nK=v\n");
    let reparsed = parse(&doc.render());
    assert_eq!(reparsed, doc);
    assert_eq!(DotEnv::new_with_header("").render(), "");
}

#[test]
fn tricky_values_round_trip_through_set() {
    let values = [
        "",
        " lead",
        "trail ",
        "a b",
        "#hash",
        "a #b",
        "$x ${Y} ${Z:-d}",
        "it's",
        "say \"hi\"",
        "both ' and \"",
        r"back\slash",
        r"ends\",
        r"C:\dir\",
        "multi\nline\r\n",
        "tab\there",
        "a=b",
        "ünï ☃",
        "\\n literal",
    ];
    for v in values {
        let mut doc = parse("# x\nK=old # c\n");
        doc.set("K", v);
        doc.set("N", v);
        let reparsed = parse(&doc.render());
        assert_eq!(reparsed.get("K"), Some(v), "in place: {v:?} -> {}", doc.render());
        assert_eq!(reparsed.get("N"), Some(v), "appended: {v:?} -> {}", doc.render());
    }
}

#[test]
#[should_panic(expected = "invalid .env key")]
fn set_rejects_invalid_key() {
    let mut doc = parse("");
    doc.set("1BAD", "x");
}
