//! The emulated host: the `env` functions of proxy-wasm ABI 0.2.1, with the same signatures
//! as the wasm imports, over thread-local state. Like a real host it reads guest buffers through
//! the pointers it is given, returns data in blocks obtained from the guest allocator
//! (`proxy_on_memory_allocate`), and reports the documented status codes.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::abi::{self, buffer, map, metric, HeaderPairs, Status};
use crate::logging::Level;
use crate::memory;

/// A line the filter logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// Its level.
    pub level: Level,
    /// Its text.
    pub message: String,
}

/// A response the filter sent instead of forwarding (`proxy_send_local_response`), as the host
/// received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalResponse {
    /// The HTTP status (200 for gRPC responses); for a Kafka request the Kafka error code
    /// (0: strait's choice).
    pub status: u32,
    /// The `status_code_details` argument.
    pub details: String,
    /// The body (for gRPC: the `grpc-message`).
    pub body: Vec<u8>,
    /// Extra response headers, lossy UTF-8.
    pub headers: Vec<(String, String)>,
    /// The `grpc_status` argument, `None` when it was -1 ("not gRPC").
    pub grpc_status: Option<u32>,
}

#[derive(Clone, Debug)]
pub(crate) struct Metric {
    pub(crate) name: String,
    pub(crate) kind: u32,
    pub(crate) value: u64,
    pub(crate) samples: Vec<u64>,
}

/// Everything the emulated host knows.
#[derive(Default)]
pub(crate) struct HostState {
    pub(crate) vm_config: Vec<u8>,
    pub(crate) plugin_config: Vec<u8>,
    pub(crate) request_body: Vec<u8>,
    pub(crate) response_body: Vec<u8>,
    /// Request headers, request trailers, response headers, response trailers.
    pub(crate) maps: [HeaderPairs; 4],
    /// Serialised property path (segments joined with `\0`) → value.
    pub(crate) properties: HashMap<Vec<u8>, Vec<u8>>,
    /// What the filter set with `proxy_set_property` during the current stream, in order.
    pub(crate) set_properties: Vec<(Vec<u8>, Vec<u8>)>,
    pub(crate) local_response: Option<LocalResponse>,
    /// A Kafka request is being judged (`strait_on_kafka_request`): local responses carry Kafka
    /// error codes.
    pub(crate) kafka: bool,
    /// Metric id − 1 → metric.
    pub(crate) metrics: Vec<Metric>,
    pub(crate) logs: Vec<LogRecord>,
}

impl HostState {
    pub(crate) fn metric(&self, name: &str) -> Option<&Metric> {
        self.metrics.iter().find(|m| m.name == name)
    }
}

thread_local! {
    static HOST: RefCell<HostState> = RefCell::new(HostState::default());
}

/// Exchanges the thread's host state with `other` (the harness keeps one per instance).
pub(crate) fn swap(other: &mut HostState) {
    HOST.with(|h| std::mem::swap(&mut *h.borrow_mut(), other));
}

/// Runs `f` on the thread's host state.
pub(crate) fn with<R>(f: impl FnOnce(&mut HostState) -> R) -> R {
    HOST.with(|h| f(&mut h.borrow_mut()))
}

const OK: u32 = Status::Ok.as_raw();
const NOT_FOUND: u32 = Status::NotFound.as_raw();
const BAD_ARGUMENT: u32 = Status::BadArgument.as_raw();
const INVALID_MEMORY_ACCESS: u32 = Status::InvalidMemoryAccess.as_raw();

/// `size` bytes of guest memory at `data`.
///
/// # Safety
///
/// Unless `size` is 0, `data` must point to `size` readable bytes that stay valid and unchanged
/// for `'a` (the guest passes live buffers for the duration of the call).
unsafe fn guest_bytes<'a>(data: *const u8, size: usize) -> Option<&'a [u8]> {
    if size == 0 {
        return Some(&[]);
    }
    if data.is_null() {
        return None;
    }
    // SAFETY: non-null, and per this function's contract valid for `size` bytes during `'a`.
    Some(unsafe { std::slice::from_raw_parts(data, size) })
}

/// Hands `bytes` to the guest the way a host does: allocate in the guest, copy, and store the
/// block and its size in the out-parameters.
///
/// # Safety
///
/// `return_data` and `return_size` must be valid for a write (the guest passes pointers to its
/// locals).
unsafe fn give(bytes: &[u8], return_data: *mut *mut u8, return_size: *mut usize) -> u32 {
    if return_data.is_null() || return_size.is_null() {
        return INVALID_MEMORY_ACCESS;
    }
    let block = memory::allocate(bytes.len());
    if block.is_null() {
        return Status::InternalFailure.as_raw();
    }
    if !bytes.is_empty() {
        // SAFETY: `block` is a fresh allocation of `bytes.len()` bytes that cannot overlap
        // `bytes`.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), block, bytes.len()) };
    }
    // SAFETY: both out-pointers are non-null and, per this function's contract, writable.
    unsafe {
        *return_data = block;
        *return_size = bytes.len();
    }
    OK
}

fn map_index(map_type: u32) -> Option<usize> {
    match map_type {
        map::REQUEST_HEADERS
        | map::REQUEST_TRAILERS
        | map::RESPONSE_HEADERS
        | map::RESPONSE_TRAILERS => Some(map_type as usize),
        _ => None,
    }
}

fn same_name(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

pub(crate) unsafe fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32 {
    let Some(level) = Level::from_raw(level) else {
        return BAD_ARGUMENT;
    };
    // SAFETY: the guest passes a live buffer of `message_size` bytes.
    let Some(message) = (unsafe { guest_bytes(message_data, message_size) }) else {
        return INVALID_MEMORY_ACCESS;
    };
    let message = String::from_utf8_lossy(message).into_owned();
    with(|h| h.logs.push(LogRecord { level, message }));
    OK
}

pub(crate) unsafe fn proxy_get_buffer_bytes(
    buffer_type: u32,
    start: usize,
    max_size: usize,
    return_data: *mut *mut u8,
    return_size: *mut usize,
) -> u32 {
    let slice = with(|h| {
        let buf = match buffer_type {
            buffer::HTTP_REQUEST_BODY => &h.request_body,
            buffer::HTTP_RESPONSE_BODY => &h.response_body,
            buffer::VM_CONFIGURATION => &h.vm_config,
            buffer::PLUGIN_CONFIGURATION => &h.plugin_config,
            buffer::DOWNSTREAM_DATA
            | buffer::UPSTREAM_DATA
            | buffer::HTTP_CALL_RESPONSE_BODY
            | buffer::GRPC_RECEIVE_BUFFER => return Err(NOT_FOUND),
            _ => return Err(BAD_ARGUMENT),
        };
        if start > buf.len() {
            return Err(BAD_ARGUMENT);
        }
        let end = start.saturating_add(max_size).min(buf.len());
        Ok(buf[start..end].to_vec())
    });
    match slice {
        // SAFETY: the guest passes pointers to its locals as out-parameters.
        Ok(bytes) => unsafe { give(&bytes, return_data, return_size) },
        Err(status) => status,
    }
}

pub(crate) unsafe fn proxy_get_header_map_pairs(
    map_type: u32,
    return_data: *mut *mut u8,
    return_size: *mut usize,
) -> u32 {
    let Some(index) = map_index(map_type) else {
        return BAD_ARGUMENT;
    };
    let bytes = with(|h| abi::serialize_map(&h.maps[index]));
    // SAFETY: the guest passes pointers to its locals as out-parameters.
    unsafe { give(&bytes, return_data, return_size) }
}

pub(crate) unsafe fn proxy_get_header_map_value(
    map_type: u32,
    key_data: *const u8,
    key_size: usize,
    return_data: *mut *mut u8,
    return_size: *mut usize,
) -> u32 {
    let Some(index) = map_index(map_type) else {
        return BAD_ARGUMENT;
    };
    // SAFETY: the guest passes a live key buffer of `key_size` bytes.
    let Some(key) = (unsafe { guest_bytes(key_data, key_size) }) else {
        return INVALID_MEMORY_ACCESS;
    };
    let value = with(|h| {
        h.maps[index]
            .iter()
            .find(|(k, _)| same_name(k, key))
            .map(|(_, v)| v.clone())
    });
    match value {
        // SAFETY: the guest passes pointers to its locals as out-parameters.
        Some(value) => unsafe { give(&value, return_data, return_size) },
        None => NOT_FOUND,
    }
}

/// Reads key and value of the add/replace calls.
///
/// # Safety
///
/// As for [`guest_bytes`], for both buffers.
unsafe fn key_value(
    key_data: *const u8,
    key_size: usize,
    value_data: *const u8,
    value_size: usize,
) -> Option<(Vec<u8>, Vec<u8>)> {
    // SAFETY: forwarded contract.
    let key = unsafe { guest_bytes(key_data, key_size) }?;
    // SAFETY: forwarded contract.
    let value = unsafe { guest_bytes(value_data, value_size) }?;
    Some((key.to_vec(), value.to_vec()))
}

pub(crate) unsafe fn proxy_add_header_map_value(
    map_type: u32,
    key_data: *const u8,
    key_size: usize,
    value_data: *const u8,
    value_size: usize,
) -> u32 {
    let Some(index) = map_index(map_type) else {
        return BAD_ARGUMENT;
    };
    // SAFETY: the guest passes live key and value buffers of the given sizes.
    let Some((key, value)) = (unsafe { key_value(key_data, key_size, value_data, value_size) })
    else {
        return INVALID_MEMORY_ACCESS;
    };
    with(|h| h.maps[index].push((key, value)));
    OK
}

pub(crate) unsafe fn proxy_replace_header_map_value(
    map_type: u32,
    key_data: *const u8,
    key_size: usize,
    value_data: *const u8,
    value_size: usize,
) -> u32 {
    let Some(index) = map_index(map_type) else {
        return BAD_ARGUMENT;
    };
    // SAFETY: the guest passes live key and value buffers of the given sizes.
    let Some((key, value)) = (unsafe { key_value(key_data, key_size, value_data, value_size) })
    else {
        return INVALID_MEMORY_ACCESS;
    };
    with(|h| {
        let pairs = &mut h.maps[index];
        // The first occurrence keeps its position and takes the value; further ones go.
        let mut seen = false;
        pairs.retain_mut(|(k, v)| {
            if !same_name(k, &key) {
                return true;
            }
            if seen {
                return false;
            }
            seen = true;
            *v = value.clone();
            true
        });
        if !seen {
            pairs.push((key, value));
        }
    });
    OK
}

pub(crate) unsafe fn proxy_remove_header_map_value(
    map_type: u32,
    key_data: *const u8,
    key_size: usize,
) -> u32 {
    let Some(index) = map_index(map_type) else {
        return BAD_ARGUMENT;
    };
    // SAFETY: the guest passes a live key buffer of `key_size` bytes.
    let Some(key) = (unsafe { guest_bytes(key_data, key_size) }) else {
        return INVALID_MEMORY_ACCESS;
    };
    with(|h| h.maps[index].retain(|(k, _)| !same_name(k, key)));
    OK
}

#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn proxy_send_local_response(
    status_code: u32,
    status_code_details_data: *const u8,
    status_code_details_size: usize,
    body_data: *const u8,
    body_size: usize,
    headers_data: *const u8,
    headers_size: usize,
    grpc_status: i32,
) -> u32 {
    // SAFETY: the guest passes live buffers of the given sizes.
    let buffers = unsafe {
        (
            guest_bytes(status_code_details_data, status_code_details_size),
            guest_bytes(body_data, body_size),
            guest_bytes(headers_data, headers_size),
        )
    };
    let (Some(details), Some(body), Some(headers)) = buffers else {
        return INVALID_MEMORY_ACCESS;
    };
    let Ok(headers) = abi::deserialize_map(headers) else {
        return BAD_ARGUMENT;
    };
    // strait refuses what is not an HTTP status code, or on a Kafka request what is not a
    // Kafka error code (0..=32767, 0 meaning "strait's choice").
    let valid = if with(|h| h.kafka) {
        i16::try_from(status_code).is_ok()
    } else {
        (100..=999).contains(&status_code)
    };
    if !valid {
        return BAD_ARGUMENT;
    }
    let response = LocalResponse {
        status: status_code,
        details: String::from_utf8_lossy(details).into_owned(),
        body: body.to_vec(),
        headers: headers
            .into_iter()
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(&k).into_owned(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect(),
        grpc_status: u32::try_from(grpc_status).ok(),
    };
    with(|h| {
        if h.local_response.is_some() {
            // One response per stream.
            return BAD_ARGUMENT;
        }
        h.local_response = Some(response);
        OK
    })
}

pub(crate) unsafe fn proxy_get_property(
    path_data: *const u8,
    path_size: usize,
    return_data: *mut *mut u8,
    return_size: *mut usize,
) -> u32 {
    // SAFETY: the guest passes a live path buffer of `path_size` bytes.
    let Some(path) = (unsafe { guest_bytes(path_data, path_size) }) else {
        return INVALID_MEMORY_ACCESS;
    };
    match with(|h| h.properties.get(path).cloned()) {
        // SAFETY: the guest passes pointers to its locals as out-parameters.
        Some(value) => unsafe { give(&value, return_data, return_size) },
        None => NOT_FOUND,
    }
}

pub(crate) unsafe fn proxy_set_property(
    path_data: *const u8,
    path_size: usize,
    value_data: *const u8,
    value_size: usize,
) -> u32 {
    // SAFETY: the guest passes live path and value buffers of the given sizes.
    let (Some(path), Some(value)) = (unsafe { guest_bytes(path_data, path_size) }, unsafe {
        guest_bytes(value_data, value_size)
    }) else {
        return INVALID_MEMORY_ACCESS;
    };
    with(|h| {
        h.properties.insert(path.to_vec(), value.to_vec());
        h.set_properties.push((path.to_vec(), value.to_vec()));
    });
    OK
}

pub(crate) unsafe fn proxy_define_metric(
    metric_type: u32,
    name_data: *const u8,
    name_size: usize,
    return_metric_id: *mut u32,
) -> u32 {
    if !matches!(
        metric_type,
        metric::COUNTER | metric::GAUGE | metric::HISTOGRAM
    ) {
        return BAD_ARGUMENT;
    }
    // SAFETY: the guest passes a live name buffer of `name_size` bytes.
    let Some(name) = (unsafe { guest_bytes(name_data, name_size) }) else {
        return INVALID_MEMORY_ACCESS;
    };
    if return_metric_id.is_null() {
        return INVALID_MEMORY_ACCESS;
    }
    let name = String::from_utf8_lossy(name).into_owned();
    let id = with(|h| match h.metrics.iter().position(|m| m.name == name) {
        Some(i) if h.metrics[i].kind == metric_type => Ok(i + 1),
        Some(_) => Err(BAD_ARGUMENT),
        None => {
            h.metrics.push(Metric {
                name,
                kind: metric_type,
                value: 0,
                samples: Vec::new(),
            });
            Ok(h.metrics.len())
        }
    });
    match id.map(u32::try_from) {
        Ok(Ok(id)) => {
            // SAFETY: non-null, and the guest passes a pointer to a live `u32` local.
            unsafe { *return_metric_id = id };
            OK
        }
        Ok(Err(_)) => Status::InternalFailure.as_raw(),
        Err(status) => status,
    }
}

fn with_metric(id: u32, f: impl FnOnce(&mut Metric) -> u32) -> u32 {
    with(|h| {
        let index = (id as usize).wrapping_sub(1);
        match h.metrics.get_mut(index) {
            Some(m) => f(m),
            None => NOT_FOUND,
        }
    })
}

pub(crate) unsafe fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32 {
    with_metric(metric_id, |m| match m.kind {
        metric::COUNTER if offset < 0 => BAD_ARGUMENT,
        metric::COUNTER | metric::GAUGE => {
            m.value = m.value.wrapping_add(offset as u64);
            OK
        }
        _ => BAD_ARGUMENT,
    })
}

pub(crate) unsafe fn proxy_record_metric(metric_id: u32, value: u64) -> u32 {
    with_metric(metric_id, |m| {
        if m.kind == metric::HISTOGRAM {
            m.samples.push(value);
        } else {
            m.value = value;
        }
        OK
    })
}

pub(crate) unsafe fn proxy_get_metric(metric_id: u32, return_value: *mut u64) -> u32 {
    if return_value.is_null() {
        return INVALID_MEMORY_ACCESS;
    }
    let value = with(|h| {
        let m = h.metrics.get((metric_id as usize).wrapping_sub(1))?;
        Some(if m.kind == metric::HISTOGRAM {
            Err(BAD_ARGUMENT)
        } else {
            Ok(m.value)
        })
    });
    match value {
        Some(Ok(v)) => {
            // SAFETY: non-null, and the guest passes a pointer to a live `u64` local.
            unsafe { *return_value = v };
            OK
        }
        Some(Err(status)) => status,
        None => NOT_FOUND,
    }
}
