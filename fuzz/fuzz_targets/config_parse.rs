//! backup-config.yml is edited by hand and interpolates the environment:
//! any text must parse or give an error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opc_store::profile::Config;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let env = |k: &str| (k == "HOME").then(|| "/root".to_string());
        let _ = Config::parse(text, "fuzz", &env);
    }
});
