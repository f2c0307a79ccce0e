//! Error responses for denied requests.
//!
//! [`error_response`] answers a request in its API and version without asking the broker: the
//! response header echoes the correlation id (header v1, with tagged fields, for flexible
//! versions; v0 otherwise and always for ApiVersions, whose error body is always v0), and the
//! body is the version's layout with
//! the request's structure echoed and every error code set:
//!
//! - **Per topic / partition** where the response has them: each topic (and each partition the
//!   request named) of the request comes back with the error, in request order, under the same
//!   group / transaction as in the request (OffsetFetch v8+, AddPartitionsToTxn v4+,
//!   DescribeShareGroupOffsets, WriteTxnMarkers); a top-level error code, if the version has one,
//!   is then 0, as Kafka does for topic authorization failures.
//! - **Top level** otherwise: when the request names no topic (non-topic APIs, a null "all
//!   topics" list), the top-level error code carries the error.
//!
//! Everything else takes Kafka's defaults (offsets, epochs and leader ids -1, other numbers 0,
//! nullable strings null, arrays empty, nullable structs null). A version whose layout has
//! neither a per-topic error the request reaches nor a top-level error gets
//! [`ResponseError::NoErrorField`], and an API without a layout [`ResponseError::NoLayout`]:
//! the proxy must then close the connection (docs/kafka.md lists which).

use super::api::{ApiInfo, API_VERSIONS};
use super::request::{ParentKey, Request, TopicList, Topics};
use super::schema::{
    holds_partition, holds_topic, holds_topic_array, Elem, Field, Prim, Role, Type,
};
use super::wire::Writer;

/// `TOPIC_AUTHORIZATION_FAILED`: the answer to a denied request that names topics.
pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
/// `GROUP_AUTHORIZATION_FAILED`.
pub const GROUP_AUTHORIZATION_FAILED: i16 = 30;
/// `CLUSTER_AUTHORIZATION_FAILED`: the answer to a denied request that names no topic.
pub const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;

/// Kafka's `ConfigResource.Type.TOPIC`, echoed in config responses.
const RESOURCE_TYPE_TOPIC: i64 = 2;

/// The error code for denying `req`: 29 when it names topics (or names them in a layout strait
/// does not read), 31 otherwise.
pub fn denial_code(req: &Request) -> i16 {
    match req.topics {
        Topics::Listed(_) | Topics::Opaque => TOPIC_AUTHORIZATION_FAILED,
        Topics::None => CLUSTER_AUTHORIZATION_FAILED,
    }
}

/// Why no error response can be built: the proxy must close the connection instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("no Kafka {api} response layout (API key {key}) to answer with an error; close the connection instead")]
    NoLayout { api: &'static str, key: i16 },
    #[error("a Kafka {api} v{version} response has no error code that can carry a denial of this request; close the connection instead")]
    NoErrorField { api: &'static str, version: i16 },
}

/// The response frame payload (header and body, without the 4-byte size) answering `req` with
/// error `code` ([`denial_code`], or e.g. [`GROUP_AUTHORIZATION_FAILED`]) and `message` in the
/// error-message fields that the version has. `Ok(None)` when no response must be sent (Produce
/// with `acks=0`).
pub fn error_response(
    req: &Request,
    code: i16,
    message: Option<&str>,
) -> Result<Option<Vec<u8>>, ResponseError> {
    if !req.expects_response {
        return Ok(None);
    }
    let api = req.api;
    // An ApiVersions error is answered in v0, whatever the request's version: that is what
    // brokers do (for UNSUPPORTED_VERSION) and what clients fall back to parsing (the Java
    // client retries the parse as v0, kafka-python parses any error as v0, librdkafka stops at
    // the error code).
    let version = if api.key == API_VERSIONS {
        0
    } else {
        req.header.api_version
    };
    let Some(fields) = api.response else {
        return Err(ResponseError::NoLayout {
            api: api.name,
            key: api.key,
        });
    };
    let empty = TopicList::default();
    let topics = match &req.topics {
        Topics::Listed(list) => list,
        Topics::None | Topics::Opaque => &empty,
    };
    let mut enc = Encoder::new(api, version, topics, code, message);
    // First try per-topic errors (top-level 0); without any, the top-level code carries it.
    enc.run(fields, req.header.correlation_id, 0);
    if enc.entry_errors == 0 {
        enc.run(fields, req.header.correlation_id, code);
        if enc.top_errors == 0 {
            return Err(ResponseError::NoErrorField {
                api: api.name,
                version,
            });
        }
    }
    Ok(Some(enc.w.buf))
}

/// The elements of the top-level topic array of an `api` response at `version`, one per entry of
/// `topics`, each carrying error `code` (name and id echoed from the entry, everything else
/// Kafka's defaults: no partitions). `None` when the layout has no such array.
pub(crate) fn topic_error_entries(
    api: &'static ApiInfo,
    version: i16,
    topics: &TopicList,
    code: i16,
) -> Option<Vec<u8>> {
    let inner = api.response?.iter().find_map(|f| match f.ty {
        Type::Array(Elem::Struct(inner)) if f.present(version) && holds_topic(inner, version) => {
            Some(inner)
        }
        _ => None,
    })?;
    let mut enc = Encoder::new(api, version, topics, code, None);
    for i in 0..topics.entries.len() {
        enc.fields(inner, Ctx::Entry(i));
    }
    Some(enc.w.buf)
}

/// Where in the response the encoder is.
#[derive(Clone, Copy)]
enum Ctx {
    Top,
    Parent(usize),
    Entry(usize),
    Partition(usize, i32),
}

struct Encoder<'a> {
    api: &'static ApiInfo,
    version: i16,
    flexible: bool,
    topics: &'a TopicList,
    /// Per parent: whether any entry belongs to it.
    parent_has_entries: Vec<bool>,
    code: i16,
    message: Option<&'a str>,
    top_code: i16,
    entry_errors: usize,
    top_errors: usize,
    w: Writer,
}

impl<'a> Encoder<'a> {
    fn new(
        api: &'static ApiInfo,
        version: i16,
        topics: &'a TopicList,
        code: i16,
        message: Option<&'a str>,
    ) -> Self {
        let mut parent_has_entries = vec![false; topics.parents.len()];
        for p in topics.entries.iter().filter_map(|e| e.parent) {
            if let Some(has) = parent_has_entries.get_mut(p) {
                *has = true;
            }
        }
        Encoder {
            api,
            version,
            flexible: api.is_flexible(version),
            topics,
            parent_has_entries,
            code,
            message,
            top_code: 0,
            entry_errors: 0,
            top_errors: 0,
            w: Writer::default(),
        }
    }

    fn run(&mut self, fields: &[Field], correlation_id: i32, top_code: i16) {
        self.top_code = top_code;
        self.entry_errors = 0;
        self.top_errors = 0;
        self.w.buf.clear();
        self.w.i32(correlation_id);
        if self.api.response_header_version(self.version) >= 1 {
            self.w.empty_tagged_fields();
        }
        self.fields(fields, Ctx::Top);
    }

    fn fields(&mut self, fields: &[Field], ctx: Ctx) {
        let v = self.version;
        // The last error code written in this struct, for the error message after it.
        let mut last_error = 0;
        for field in fields.iter().filter(|f| f.present(v)) {
            match field.ty {
                Type::Prim(p) => self.prim(field, p, ctx, &mut last_error),
                Type::Array(Elem::Prim(_)) => self.w.length(self.flexible, true, Some(0)),
                Type::Array(Elem::Struct(inner)) => {
                    let items = self.items(inner, ctx);
                    self.w.length(self.flexible, true, Some(items.len()));
                    for item in items {
                        self.fields(inner, item);
                    }
                }
                Type::Struct(inner) => {
                    if field.is_nullable(v) {
                        self.w.i8(-1);
                    } else {
                        self.fields(inner, ctx);
                    }
                }
            }
        }
        if self.flexible {
            self.w.empty_tagged_fields();
        }
    }

    /// The elements of a struct array: the request's topics, partitions or groups where the
    /// array holds those, nothing otherwise.
    fn items(&self, inner: &[Field], ctx: Ctx) -> Vec<Ctx> {
        let v = self.version;
        let entries = &self.topics.entries;
        if holds_topic(inner, v) {
            let parent = match ctx {
                Ctx::Top => None,
                Ctx::Parent(p) => Some(p),
                Ctx::Entry(_) | Ctx::Partition(..) => return Vec::new(),
            };
            (0..entries.len())
                .filter(|&i| parent.is_none() || entries[i].parent == parent)
                .map(Ctx::Entry)
                .collect()
        } else if holds_partition(inner, v) {
            match ctx {
                Ctx::Entry(e) => entries[e]
                    .partitions
                    .iter()
                    .map(|&p| Ctx::Partition(e, p))
                    .collect(),
                _ => Vec::new(),
            }
        } else if holds_topic_array(inner, v) && matches!(ctx, Ctx::Top) {
            (0..self.topics.parents.len()).map(Ctx::Parent).collect()
        } else {
            Vec::new()
        }
    }

    fn entry(&self, ctx: Ctx) -> Option<&'a super::request::TopicEntry> {
        match ctx {
            Ctx::Entry(e) | Ctx::Partition(e, _) => self.topics.entries.get(e),
            Ctx::Top | Ctx::Parent(_) => None,
        }
    }

    fn prim(&mut self, field: &Field, p: Prim, ctx: Ctx, last_error: &mut i16) {
        let nullable = field.is_nullable(self.version);
        match (field.role, p) {
            (Role::Error, Prim::Int16) => {
                let code = match ctx {
                    Ctx::Top => self.top_code,
                    Ctx::Parent(i) if self.parent_has_entries.get(i).copied().unwrap_or(false) => 0,
                    Ctx::Parent(_) | Ctx::Entry(_) | Ctx::Partition(..) => self.code,
                };
                if code != 0 {
                    match ctx {
                        Ctx::Top => self.top_errors += 1,
                        _ => self.entry_errors += 1,
                    }
                }
                *last_error = code;
                self.w.i16(code);
            }
            (Role::ErrorMessage, Prim::String) => {
                let message = if *last_error != 0 { self.message } else { None };
                self.string(message, nullable);
            }
            (Role::TopicName | Role::ResourceName, Prim::String) => {
                let name = self.entry(ctx).and_then(|e| e.name.as_deref());
                self.string(name, nullable);
            }
            (Role::TopicId, Prim::Uuid) => {
                let id = self.entry(ctx).and_then(|e| e.id).unwrap_or_default();
                self.w.buf.extend_from_slice(&id.0);
            }
            (Role::Partition, Prim::Int32) => match ctx {
                Ctx::Partition(_, p) => self.w.i32(p),
                _ => self.w.i32(field.default as i32),
            },
            (Role::ResourceType, Prim::Int8) if self.entry(ctx).is_some() => {
                self.w.i8(RESOURCE_TYPE_TOPIC as i8);
            }
            (Role::ParentKey, _) => {
                let key = match ctx {
                    Ctx::Parent(i) => self.topics.parents.get(i).map(|p| &p.key),
                    _ => None,
                };
                match (key, p) {
                    (Some(ParentKey::Str(s)), Prim::String) => self.string(s.as_deref(), nullable),
                    (Some(ParentKey::Int(x)), Prim::Int64) => self.w.i64(*x),
                    _ => self.default(field, p, nullable),
                }
            }
            _ => self.default(field, p, nullable),
        }
    }

    /// A string field; `None` is null where the version allows it, else empty.
    fn string(&mut self, s: Option<&str>, nullable: bool) {
        match s {
            Some(s) => self.w.string(self.flexible, Some(s)),
            None if nullable => self.w.string(self.flexible, None),
            None => self.w.string(self.flexible, Some("")),
        }
    }

    fn default(&mut self, field: &Field, p: Prim, nullable: bool) {
        let d = field.default;
        match p {
            Prim::Bool => self.w.i8(i8::from(d != 0)),
            Prim::Int8 => self.w.i8(d as i8),
            Prim::Int16 => self.w.i16(d as i16),
            Prim::Uint16 => self.w.buf.extend_from_slice(&(d as u16).to_be_bytes()),
            Prim::Int32 => self.w.i32(d as i32),
            Prim::Int64 => self.w.i64(d),
            Prim::Float64 => self.w.buf.extend_from_slice(&0f64.to_be_bytes()),
            Prim::Uuid => self.w.buf.extend_from_slice(&[0; 16]),
            Prim::String => self.string(None, nullable),
            Prim::Bytes => {
                self.w
                    .length(self.flexible, true, if nullable { None } else { Some(0) })
            }
        }
    }
}
