//! The built-in policy filters (`filters/` in the repository), compiled to wasm32 by `build.rs`
//! and embedded in the strait binary. A filter names one with `module: builtin:<name>`; it is
//! then compiled and run like any other module.

use std::borrow::Cow;
use std::path::Path;

/// Prefix of a `module:` naming a built-in filter.
pub const PREFIX: &str = "builtin:";

static HTTP_POLICY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/http_policy.wasm"));
static KAFKA_POLICY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/kafka_policy.wasm"));

/// Every built-in filter: (name, module bytes).
pub const ALL: &[(&str, &[u8])] = &[("http-policy", HTTP_POLICY), ("kafka-policy", KAFKA_POLICY)];

/// The built-in name in `module`, if it names one (`builtin:http-policy` → `http-policy`).
pub fn name(module: &Path) -> Option<&str> {
    module.to_str()?.strip_prefix(PREFIX)
}

/// The bytes of a built-in filter.
pub fn lookup(name: &str) -> Option<&'static [u8]> {
    ALL.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

/// The bytes of a filter module: a built-in, or the file's contents.
pub fn read_module(module: &Path) -> std::io::Result<Cow<'static, [u8]>> {
    match name(module) {
        Some(n) => lookup(n).map(Cow::Borrowed).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no built-in filter `{n}` (built-ins: {})", names()),
            )
        }),
        None => std::fs::read(module).map(Cow::Owned),
    }
}

/// The built-in names, for messages.
pub fn names() -> String {
    ALL.iter()
        .map(|(n, _)| format!("{PREFIX}{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_wasm_modules_with_the_abi_marker() {
        for (n, bytes) in ALL {
            assert_eq!(&bytes[..4], b"\0asm", "{n}");
            let marker = b"proxy_abi_version_0_2_1";
            assert!(
                bytes.windows(marker.len()).any(|w| w == marker),
                "{n} lacks the ABI marker"
            );
        }
        assert!(read_module(Path::new("builtin:http-policy")).is_ok());
        let e = read_module(Path::new("builtin:nope")).unwrap_err();
        assert!(e.to_string().contains("builtin:http-policy"), "{e}");
    }
}
