//! The host functions the SDK imports, and safe wrappers around them.
//!
//! On `wasm32` the raw functions are imports from module `env` (proxy-wasm ABI 0.2.1). On every
//! other target they are the in-process emulated host of [`crate::testing`], with the very same
//! signatures, so the wrappers below — pointer passing, out-parameters, freeing host-returned
//! memory, header map (de)serialisation — run unchanged under `cargo test`.

use std::ptr::null_mut;

use crate::abi::{self, Status};
use crate::errors::HostError;
use crate::memory;

#[cfg(target_arch = "wasm32")]
mod sys {
    // Signatures exactly as in the proxy-wasm ABI 0.2.1 specification; every parameter is an
    // `i32` (or the `i64` of the metric values) on wasm32. `size_t` is `usize`.
    #[link(wasm_import_module = "env")]
    unsafe extern "C" {
        pub(super) fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
        pub(super) fn proxy_get_buffer_bytes(
            buffer_type: u32,
            start: usize,
            max_size: usize,
            return_data: *mut *mut u8,
            return_size: *mut usize,
        ) -> u32;
        pub(super) fn proxy_get_header_map_pairs(
            map_type: u32,
            return_data: *mut *mut u8,
            return_size: *mut usize,
        ) -> u32;
        pub(super) fn proxy_get_header_map_value(
            map_type: u32,
            key_data: *const u8,
            key_size: usize,
            return_data: *mut *mut u8,
            return_size: *mut usize,
        ) -> u32;
        pub(super) fn proxy_add_header_map_value(
            map_type: u32,
            key_data: *const u8,
            key_size: usize,
            value_data: *const u8,
            value_size: usize,
        ) -> u32;
        pub(super) fn proxy_replace_header_map_value(
            map_type: u32,
            key_data: *const u8,
            key_size: usize,
            value_data: *const u8,
            value_size: usize,
        ) -> u32;
        pub(super) fn proxy_remove_header_map_value(
            map_type: u32,
            key_data: *const u8,
            key_size: usize,
        ) -> u32;
        #[allow(clippy::too_many_arguments)]
        pub(super) fn proxy_send_local_response(
            status_code: u32,
            status_code_details_data: *const u8,
            status_code_details_size: usize,
            body_data: *const u8,
            body_size: usize,
            headers_data: *const u8,
            headers_size: usize,
            grpc_status: i32,
        ) -> u32;
        pub(super) fn proxy_get_property(
            path_data: *const u8,
            path_size: usize,
            return_data: *mut *mut u8,
            return_size: *mut usize,
        ) -> u32;
        pub(super) fn proxy_set_property(
            path_data: *const u8,
            path_size: usize,
            value_data: *const u8,
            value_size: usize,
        ) -> u32;
        pub(super) fn proxy_define_metric(
            metric_type: u32,
            name_data: *const u8,
            name_size: usize,
            return_metric_id: *mut u32,
        ) -> u32;
        pub(super) fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
        pub(super) fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
        pub(super) fn proxy_get_metric(metric_id: u32, return_value: *mut u64) -> u32;
    }
}

#[cfg(not(target_arch = "wasm32"))]
use crate::testing::host as sys;

fn check(call: &'static str, raw: u32) -> Result<(), HostError> {
    match Status::from_raw(raw) {
        Status::Ok => Ok(()),
        status => Err(HostError::Status { call, status }),
    }
}

/// `proxy_log`.
pub(crate) fn log(level: u32, message: &str) -> Result<(), HostError> {
    // SAFETY: `message` is a live `&str`; the host reads `message.len()` bytes from its start
    // and keeps no reference after returning.
    let raw = unsafe { sys::proxy_log(level, message.as_ptr(), message.len()) };
    check("proxy_log", raw)
}

/// `proxy_get_buffer_bytes`: `Ok(None)` when the host says `NOT_FOUND`.
pub(crate) fn get_buffer(
    buffer_type: u32,
    start: usize,
    max_size: usize,
) -> Result<Option<Vec<u8>>, HostError> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: the out-parameters point to live locals; the host stores into them a block it got
    // from our `proxy_on_memory_allocate` (or null) and its size, which `memory::take` adopts.
    let raw =
        unsafe { sys::proxy_get_buffer_bytes(buffer_type, start, max_size, &mut data, &mut size) };
    returned_bytes("proxy_get_buffer_bytes", raw, data, size)
}

/// `proxy_get_header_map_pairs`, deserialised.
pub(crate) fn get_map_pairs(map_type: u32) -> Result<abi::HeaderPairs, HostError> {
    let bytes = get_map_bytes(map_type)?;
    abi::deserialize_map(&bytes).map_err(|_| HostError::Malformed {
        call: MAP_PAIRS_CALL,
    })
}

/// `proxy_get_header_map_pairs`, kept serialised ([`abi::RawHeaders`]).
pub(crate) fn get_map_raw(map_type: u32) -> Result<abi::RawHeaders, HostError> {
    let bytes = get_map_bytes(map_type)?;
    abi::RawHeaders::parse(bytes).map_err(|_| HostError::Malformed {
        call: MAP_PAIRS_CALL,
    })
}

const MAP_PAIRS_CALL: &str = "proxy_get_header_map_pairs";

fn get_map_bytes(map_type: u32) -> Result<Vec<u8>, HostError> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: the out-parameters point to live locals (see `get_buffer`).
    let raw = unsafe { sys::proxy_get_header_map_pairs(map_type, &mut data, &mut size) };
    Ok(returned_bytes(MAP_PAIRS_CALL, raw, data, size)?.unwrap_or_default())
}

/// `proxy_get_header_map_value`: `Ok(None)` when the header is absent.
pub(crate) fn get_map_value(map_type: u32, key: &str) -> Result<Option<Vec<u8>>, HostError> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: `key` is a live `&str` read for `key.len()` bytes; the out-parameters point to
    // live locals (see `get_buffer`).
    let raw = unsafe {
        sys::proxy_get_header_map_value(map_type, key.as_ptr(), key.len(), &mut data, &mut size)
    };
    returned_bytes("proxy_get_header_map_value", raw, data, size)
}

/// `proxy_add_header_map_value`.
pub(crate) fn add_map_value(map_type: u32, key: &str, value: &[u8]) -> Result<(), HostError> {
    // SAFETY: `key` and `value` are live slices, read for their lengths during the call only.
    let raw = unsafe {
        sys::proxy_add_header_map_value(
            map_type,
            key.as_ptr(),
            key.len(),
            value.as_ptr(),
            value.len(),
        )
    };
    check("proxy_add_header_map_value", raw)
}

/// `proxy_replace_header_map_value`.
pub(crate) fn replace_map_value(map_type: u32, key: &str, value: &[u8]) -> Result<(), HostError> {
    // SAFETY: `key` and `value` are live slices, read for their lengths during the call only.
    let raw = unsafe {
        sys::proxy_replace_header_map_value(
            map_type,
            key.as_ptr(),
            key.len(),
            value.as_ptr(),
            value.len(),
        )
    };
    check("proxy_replace_header_map_value", raw)
}

/// `proxy_remove_header_map_value` (removing an absent header is OK).
pub(crate) fn remove_map_value(map_type: u32, key: &str) -> Result<(), HostError> {
    // SAFETY: `key` is a live `&str`, read for its length during the call only.
    let raw = unsafe { sys::proxy_remove_header_map_value(map_type, key.as_ptr(), key.len()) };
    check("proxy_remove_header_map_value", raw)
}

/// `proxy_send_local_response`. `grpc_status` is [`abi::NO_GRPC_STATUS`] for plain HTTP.
pub(crate) fn send_local_response(
    status_code: u32,
    details: &str,
    body: &[u8],
    headers: &[(&str, &str)],
    grpc_status: i32,
) -> Result<(), HostError> {
    let headers = abi::serialize_map(headers);
    // SAFETY: `details`, `body` and the serialised `headers` are live buffers, read for their
    // lengths during the call only.
    let raw = unsafe {
        sys::proxy_send_local_response(
            status_code,
            details.as_ptr(),
            details.len(),
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            grpc_status,
        )
    };
    check("proxy_send_local_response", raw)
}

/// `proxy_get_property`: `Ok(None)` when the host says `NOT_FOUND`.
pub(crate) fn get_property(path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
    with_property_path(path, |path| {
        let mut data: *mut u8 = null_mut();
        let mut size: usize = 0;
        // SAFETY: `path` is a live buffer read for its length; the out-parameters point to live
        // locals (see `get_buffer`).
        let raw =
            unsafe { sys::proxy_get_property(path.as_ptr(), path.len(), &mut data, &mut size) };
        returned_bytes("proxy_get_property", raw, data, size)
    })
}

/// `proxy_set_property`.
pub(crate) fn set_property(path: &[&str], value: &[u8]) -> Result<(), HostError> {
    with_property_path(path, |path| {
        // SAFETY: `path` and `value` are live buffers the host reads for their lengths and keeps
        // no reference to after returning.
        let raw = unsafe {
            sys::proxy_set_property(path.as_ptr(), path.len(), value.as_ptr(), value.len())
        };
        check("proxy_set_property", raw)
    })
}

/// Runs `f` with `path` serialised ([`abi::serialize_property_path`]), on the stack when it is
/// short (every standard property path is), so a property access allocates nothing for it.
fn with_property_path<R>(path: &[&str], f: impl FnOnce(&[u8]) -> R) -> R {
    const STACK: usize = 128;
    let len = path
        .iter()
        .map(|s| s.len() + 1)
        .sum::<usize>()
        .saturating_sub(1);
    if len > STACK {
        return f(&abi::serialize_property_path(path));
    }
    let mut buf = [0u8; STACK];
    let mut at = 0;
    for (i, seg) in path.iter().enumerate() {
        if i > 0 {
            buf[at] = 0;
            at += 1;
        }
        buf[at..at + seg.len()].copy_from_slice(seg.as_bytes());
        at += seg.len();
    }
    f(&buf[..at])
}

/// `proxy_define_metric`: the metric's id.
pub(crate) fn define_metric(metric_type: u32, name: &str) -> Result<u32, HostError> {
    let mut id: u32 = 0;
    // SAFETY: `name` is a live `&str` read for its length; `id` is a live local the host
    // writes one `u32` to.
    let raw = unsafe { sys::proxy_define_metric(metric_type, name.as_ptr(), name.len(), &mut id) };
    check("proxy_define_metric", raw).map(|()| id)
}

/// `proxy_increment_metric`.
pub(crate) fn increment_metric(id: u32, offset: i64) -> Result<(), HostError> {
    // SAFETY: only integers cross the boundary.
    let raw = unsafe { sys::proxy_increment_metric(id, offset) };
    check("proxy_increment_metric", raw)
}

/// `proxy_record_metric`.
pub(crate) fn record_metric(id: u32, value: u64) -> Result<(), HostError> {
    // SAFETY: only integers cross the boundary.
    let raw = unsafe { sys::proxy_record_metric(id, value) };
    check("proxy_record_metric", raw)
}

/// `proxy_get_metric`.
pub(crate) fn get_metric(id: u32) -> Result<u64, HostError> {
    let mut value: u64 = 0;
    // SAFETY: `value` is a live local the host writes one `u64` to.
    let raw = unsafe { sys::proxy_get_metric(id, &mut value) };
    check("proxy_get_metric", raw).map(|()| value)
}

/// Adopts what a host call returned through `return_data` / `return_size`: the bytes on `OK`,
/// `None` on `NOT_FOUND`, an error otherwise. Frees the host-returned block in every case.
fn returned_bytes(
    call: &'static str,
    raw: u32,
    data: *mut u8,
    size: usize,
) -> Result<Option<Vec<u8>>, HostError> {
    // SAFETY: `data`/`size` are what the host stored in the out-parameters: null, or a block it
    // obtained from our `proxy_on_memory_allocate` for exactly `size` bytes. Ownership passes to
    // us; nothing else refers to it. On non-OK statuses hosts leave them untouched (null/0).
    let bytes = unsafe { memory::take(data, size) };
    match Status::from_raw(raw) {
        Status::Ok => Ok(Some(bytes)),
        Status::NotFound => Ok(None),
        status => Err(HostError::Status { call, status }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_paths_on_the_stack_serialise_as_the_abi_says() {
        let long = "x".repeat(200);
        let cases: [&[&str]; 5] = [
            &[],
            &["plugin_name"],
            &["request", "path"],
            &["strait", "", "policy"],
            &["a", &long, "b"],
        ];
        for path in cases {
            let got = with_property_path(path, <[u8]>::to_vec);
            assert_eq!(got, abi::serialize_property_path(path), "{path:?}");
        }
    }
}
