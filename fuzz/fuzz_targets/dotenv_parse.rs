//! Fuzz the `.env` parser: it must never panic, and whatever it accepts must render back byte for byte and
//! re-parse to the same entries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ragctl::dotenv::DotEnv;

fuzz_target!(|data: &[u8]| {
    // The model is defined over text; invalid UTF-8 is rejected earlier, when the file is read.
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(doc) = DotEnv::parse(src) else {
        return;
    };
    let rendered = doc.render();
    assert_eq!(rendered, src, "render must reproduce the input");
    let again = match DotEnv::parse(&rendered) {
        Ok(again) => again,
        Err(e) => panic!("rendered text failed to re-parse: {e}"),
    };
    assert!(
        again.entries().eq(doc.entries()),
        "re-parse changed the entries"
    );
    let _ = doc.resolved(&|_| None);
});
