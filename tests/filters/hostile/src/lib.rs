//! `hostile`: a proxy-wasm (ABI 0.2.1) filter built with the public `proxy-wasm` Rust SDK that
//! misbehaves on purpose, to test how the host contains a bad filter. The misbehaviour is chosen
//! by the plugin configuration, a plain string (`loop`) or a JSON string (`"loop"`):
//!
//! | mode             | when                      | what it does                                        |
//! |------------------|---------------------------|-----------------------------------------------------|
//! | `ok`             | —                         | passes through; response gets `x-hostile: ok`       |
//! | `slow:<ms>`      | `on_http_request_headers` | busy-loops `<ms>` ms (host clock), then continues;  |
//! |                  |                           | response gets `x-hostile: slow`                     |
//! | `loop`           | `on_http_request_headers` | infinite loop                                       |
//! | `grow`           | `on_http_request_headers` | allocates 1 MiB blocks without bound; when an       |
//! |                  |                           | allocation fails, frees them and panics (trap)      |
//! | `trap`           | `on_http_request_headers` | executes `unreachable`                              |
//! | `panic`          | `on_http_request_headers` | Rust panic (logged at critical level, then a trap)  |
//! | `huge-headers`   | `on_http_request_headers` | adds 100,000 request headers `x-huge-<i>: x`        |
//! | `non-utf8`       | `on_http_request_headers` | sets `x-non-utf8: ff fe fd` and adds                |
//! |                  |                           | `x-non-utf8-add: c3 28` (invalid UTF-8 bytes)       |
//! | `configure-false`| `proxy_on_configure`      | returns false                                       |
//! | `vm-start-false` | `proxy_on_vm_start`       | returns false (see below)                           |
//!
//! An unknown mode also makes `on_configure` return false.
//!
//! `vm-start-false`: `proxy_on_vm_start` runs before the plugin configuration is handed over, and
//! the SDK gives it the *VM* configuration (`get_vm_configuration`). The mode is therefore read
//! from the VM configuration when the host provides a non-empty one, and otherwise from the plugin
//! configuration if the host already serves it during `proxy_on_vm_start` (`NotFound` there is
//! fine and means "no mode", i.e. start normally).

use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MapType};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(HostileRoot { mode: Mode::Ok })
    });
}}

/// Number of headers the `huge-headers` mode adds.
const HUGE_HEADER_COUNT: usize = 100_000;
/// Block size the `grow` mode allocates at a time.
const GROW_BLOCK: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Ok,
    Slow(u64),
    Loop,
    Grow,
    Trap,
    Panic,
    HugeHeaders,
    NonUtf8,
    ConfigureFalse,
    VmStartFalse,
}

impl Mode {
    fn parse(raw: &[u8]) -> Result<Mode, String> {
        let text =
            std::str::from_utf8(raw).map_err(|_| "configuration is not UTF-8".to_string())?;
        let mut text = text.trim();
        // Accept a JSON string too: a host may hand a YAML string over JSON-encoded.
        if text.len() >= 2 && text.starts_with('"') && text.ends_with('"') {
            text = text[1..text.len() - 1].trim();
        }
        Ok(match text {
            "" | "ok" => Mode::Ok,
            "loop" => Mode::Loop,
            "grow" => Mode::Grow,
            "trap" => Mode::Trap,
            "panic" => Mode::Panic,
            "huge-headers" => Mode::HugeHeaders,
            "non-utf8" => Mode::NonUtf8,
            "configure-false" => Mode::ConfigureFalse,
            "vm-start-false" => Mode::VmStartFalse,
            other => match other.strip_prefix("slow:") {
                Some(ms) => Mode::Slow(
                    ms.trim()
                        .parse()
                        .map_err(|_| format!("invalid slow duration {ms:?}"))?,
                ),
                None => return Err(format!("unknown mode {other:?}")),
            },
        })
    }
}

fn log(level: LogLevel, message: &str) {
    let _ = hostcalls::log(level, message);
}

struct HostileRoot {
    mode: Mode,
}

impl Context for HostileRoot {}

impl RootContext for HostileRoot {
    fn on_vm_start(&mut self, vm_configuration_size: usize) -> bool {
        let vm_config = if vm_configuration_size > 0 {
            self.get_vm_configuration()
        } else {
            None
        };
        let raw = match vm_config {
            Some(c) if !c.iter().all(u8::is_ascii_whitespace) => Some(c),
            _ => self.get_plugin_configuration(),
        };
        if let Some(raw) = raw {
            if Mode::parse(&raw) == Ok(Mode::VmStartFalse) {
                log(
                    LogLevel::Warn,
                    "hostile: vm-start-false: returning false from on_vm_start",
                );
                return false;
            }
        }
        true
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let raw = self.get_plugin_configuration().unwrap_or_default();
        match Mode::parse(&raw) {
            Ok(Mode::ConfigureFalse) => {
                log(
                    LogLevel::Warn,
                    "hostile: configure-false: returning false from on_configure",
                );
                false
            }
            Ok(mode) => {
                log(LogLevel::Info, &format!("hostile: mode {mode:?}"));
                self.mode = mode;
                true
            }
            Err(e) => {
                log(LogLevel::Error, &format!("hostile: {e}"));
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(HostileHttp { mode: self.mode }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct HostileHttp {
    mode: Mode,
}

impl Context for HostileHttp {}

impl HttpContext for HostileHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        match self.mode {
            Mode::Ok | Mode::ConfigureFalse | Mode::VmStartFalse => {}
            Mode::Slow(ms) => self.busy_wait(Duration::from_millis(ms)),
            Mode::Loop => spin_forever(),
            Mode::Grow => grow_until_failure(),
            Mode::Trap => trap(),
            Mode::Panic => panic!("hostile filter: deliberate panic in on_http_request_headers"),
            Mode::HugeHeaders => {
                for i in 0..HUGE_HEADER_COUNT {
                    self.add_http_request_header(&format!("x-huge-{i}"), "x");
                }
            }
            Mode::NonUtf8 => {
                // A non-OK status from the host makes the SDK panic (i.e. trap): either way the
                // host has to cope.
                let _ = hostcalls::set_map_value_bytes(
                    MapType::HttpRequestHeaders,
                    "x-non-utf8",
                    Some(b"\xff\xfe\xfd"),
                );
                let _ = hostcalls::add_map_value_bytes(
                    MapType::HttpRequestHeaders,
                    "x-non-utf8-add",
                    b"\xc3\x28",
                );
            }
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        match self.mode {
            Mode::Ok => self.set_http_response_header("x-hostile", Some("ok")),
            Mode::Slow(_) => self.set_http_response_header("x-hostile", Some("slow")),
            _ => {}
        }
        Action::Continue
    }
}

impl HostileHttp {
    /// Burns CPU until the host clock (`proxy_get_current_time_nanoseconds`) has advanced by
    /// `duration`. A host whose clock does not advance during a callback turns this into `loop`.
    fn busy_wait(&self, duration: Duration) {
        let start = self.get_current_time();
        let mut spins: u64 = 0;
        loop {
            let elapsed = self
                .get_current_time()
                .duration_since(start)
                .unwrap_or_default();
            if elapsed >= duration {
                break;
            }
            spins = std::hint::black_box(spins.wrapping_add(1));
        }
    }
}

fn spin_forever() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn grow_until_failure() -> ! {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut block: Vec<u8> = Vec::new();
        if block.try_reserve_exact(GROW_BLOCK).is_err() || blocks.try_reserve(1).is_err() {
            break;
        }
        block.push(1);
        blocks.push(std::hint::black_box(block));
    }
    let held = blocks.len();
    // Free everything so the panic message (and the SDK's panic hook) can still allocate.
    drop(blocks);
    panic!("hostile filter: grow: allocation failed after {held} MiB");
}

#[cfg(target_arch = "wasm32")]
fn trap() -> ! {
    core::arch::wasm32::unreachable()
}

#[cfg(not(target_arch = "wasm32"))]
fn trap() -> ! {
    // Only reachable if this crate is ever run natively; the filter itself is wasm32-only.
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_mode() {
        let cases: &[(&[u8], Mode)] = &[
            (b"", Mode::Ok),
            (b"ok", Mode::Ok),
            (b"\"ok\"", Mode::Ok),
            (b" loop\n", Mode::Loop),
            (b"grow", Mode::Grow),
            (b"trap", Mode::Trap),
            (b"panic", Mode::Panic),
            (b"huge-headers", Mode::HugeHeaders),
            (b"non-utf8", Mode::NonUtf8),
            (b"configure-false", Mode::ConfigureFalse),
            (b"\"vm-start-false\"", Mode::VmStartFalse),
            (b"slow:5", Mode::Slow(5)),
            (b"\"slow: 250\"", Mode::Slow(250)),
        ];
        for (raw, mode) in cases {
            assert_eq!(
                Mode::parse(raw),
                Ok(*mode),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn rejects_unknown_modes() {
        for raw in [&b"explode"[..], b"slow:", b"slow:-1", b"slow:abc", b"\xff"] {
            assert!(
                Mode::parse(raw).is_err(),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }
}
