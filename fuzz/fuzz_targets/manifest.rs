//! daca.yaml: any text is a manifest or a located error, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|text: &str| {
    let _ = daca::manifest::parse(std::path::Path::new("/fuzz/daca.yaml"), text);
});
