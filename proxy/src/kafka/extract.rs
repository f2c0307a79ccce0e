//! The schema walker: reads one message body field by field, following the layout of its version
//! in [`super::messages`], skips what it does not need by its length prefix (record batches,
//! configs, tagged fields), and collects the fields marked with a topic [`Role`].
//!
//! Every element read is bounded by the frame: array counts are checked against the bytes left
//! (at the smallest size an element can take), and the recursion depth is that of the static
//! layouts, never chosen by the peer.

use super::api::ApiInfo;
use super::request::{Parent, ParentKey, TopicEntry, TopicList};
use super::schema::{
    holds_topic, holds_topic_array, min_struct_size, Elem, Field, Prim, Role, Type,
};
use super::wire::{ParseError, Reader};

/// Kafka's `ConfigResource.Type.TOPIC`.
const RESOURCE_TYPE_TOPIC: i8 = 2;

/// What a walk collected.
#[derive(Debug, Default)]
pub(crate) struct Walked {
    pub topics: TopicList,
    /// Produce `Acks`.
    pub acks: Option<i16>,
    /// Brokers a response advertises ([`Role::BrokerHost`] / [`Role::BrokerPort`]), in order.
    pub brokers: Vec<BrokerAt>,
    /// Where each of `topics.entries` is in the body (same order and length).
    pub entry_spans: Vec<std::ops::Range<usize>>,
    /// The arrays whose elements are topic entries, outside any topic entry, in order.
    pub topic_arrays: Vec<TopicArrayAt>,
}

/// Where an array of topic entries is in the walked body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicArrayAt {
    /// The length prefix's bytes.
    pub count: std::ops::Range<usize>,
    /// The offset just after the array's last element.
    pub end: usize,
    /// The index in `topics.entries` of its first element, and one past its last.
    pub entries: std::ops::Range<usize>,
}

/// Where one advertised broker address is in the walked body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BrokerAt {
    /// The host string's bytes, length prefix included.
    pub host_span: std::ops::Range<usize>,
    pub host: String,
    /// Offset of the int32 port, once read.
    pub port_at: Option<usize>,
    pub port: i32,
}

/// Where in the message the walker is.
#[derive(Clone, Copy)]
struct At {
    /// The topic entry the current struct belongs to.
    entry: Option<usize>,
    /// The group / transaction element the current struct belongs to.
    parent: Option<usize>,
    /// Off inside arrays whose topics are not accessed (`ForgottenTopicsData`).
    collect: bool,
}

struct Walker {
    version: i16,
    flexible: bool,
    out: Walked,
    /// `ResourceType` of the config resource being read.
    resource_type: Option<i8>,
}

/// Walks a whole message body of `version` with layout `fields`.
pub(crate) fn walk(
    body: &[u8],
    fields: &[Field],
    version: i16,
    flexible: bool,
) -> Result<Walked, ParseError> {
    let mut w = Walker {
        version,
        flexible,
        out: Walked::default(),
        resource_type: None,
    };
    let mut r = Reader::new(body);
    let at = At {
        entry: None,
        parent: None,
        collect: true,
    };
    w.element(&mut r, fields, at)?;
    Ok(w.out)
}

/// Walks a whole frame payload (header and body, without the 4-byte size) of `info` at
/// `version`, a request's or a response's: the body's offset in the frame, and the walk.
pub(crate) fn walk_frame(
    frame: &[u8],
    info: &ApiInfo,
    fields: &[Field],
    version: i16,
    request: bool,
) -> Result<(usize, Walked), ParseError> {
    let mut r = Reader::new(frame);
    if request {
        r.take(8, "request header")?;
        r.string(false, "client_id")?;
        if info.request_header_version(version) >= 2 {
            r.skip_tagged_fields()?;
        }
    } else {
        r.i32("correlation_id")?;
        if info.response_header_version(version) >= 1 {
            r.skip_tagged_fields()?;
        }
    }
    let start = r.position();
    let walked = walk(&frame[start..], fields, version, info.is_flexible(version))?;
    Ok((start, walked))
}

impl Walker {
    /// One struct value: a topic entry, the parent of topic entries, or neither.
    fn element(&mut self, r: &mut Reader<'_>, fields: &[Field], at: At) -> Result<(), ParseError> {
        let v = self.version;
        if at.collect && at.entry.is_none() && holds_topic(fields, v) {
            let idx = self.out.topics.entries.len();
            let start = r.position();
            self.out.topics.entries.push(TopicEntry {
                name: None,
                id: None,
                partitions: Vec::new(),
                parent: at.parent,
            });
            self.out.entry_spans.push(start..start);
            self.resource_type = None;
            self.fields(
                r,
                fields,
                At {
                    entry: Some(idx),
                    ..at
                },
            )?;
            let is_resource = fields
                .iter()
                .any(|f| f.present(v) && f.role == Role::ResourceName);
            if is_resource && self.resource_type != Some(RESOURCE_TYPE_TOPIC) {
                // A broker, group or client-metrics resource: not a topic.
                self.out.topics.entries.truncate(idx);
                self.out.entry_spans.truncate(idx);
            } else if let Some(span) = self.out.entry_spans.get_mut(idx) {
                span.end = r.position();
            }
            Ok(())
        } else if at.collect && at.entry.is_none() && holds_topic_array(fields, v) {
            let idx = self.out.topics.parents.len();
            self.out.topics.parents.push(Parent::default());
            self.fields(
                r,
                fields,
                At {
                    parent: Some(idx),
                    ..at
                },
            )
        } else {
            self.fields(r, fields, at)
        }
    }

    fn fields(&mut self, r: &mut Reader<'_>, fields: &[Field], at: At) -> Result<(), ParseError> {
        let (v, flexible) = (self.version, self.flexible);
        for field in fields.iter().filter(|f| f.present(v)) {
            match field.ty {
                Type::Prim(p) => self.prim(r, field, p, at)?,
                Type::Array(Elem::Prim(p)) => {
                    let Some(n) = r.count(flexible, p.min_size(flexible), field.name)? else {
                        null_allowed(r, field, v)?;
                        continue;
                    };
                    for _ in 0..n {
                        self.array_item(r, field, p, at)?;
                    }
                }
                Type::Array(Elem::Struct(inner)) => {
                    let min = min_struct_size(inner, v, flexible);
                    let count_at = r.position();
                    let Some(n) = r.count(flexible, min, field.name)? else {
                        null_allowed(r, field, v)?;
                        if field.role == Role::AllIfNull && at.collect {
                            self.out.topics.all = true;
                            if let Some(p) = at.parent {
                                self.out.topics.parents[p].all = true;
                            }
                        }
                        continue;
                    };
                    let at = At {
                        collect: at.collect && field.role != Role::NoCollect,
                        ..at
                    };
                    let holds = at.collect && at.entry.is_none() && holds_topic(inner, v);
                    let (count, first) = (count_at..r.position(), self.out.topics.entries.len());
                    for _ in 0..n {
                        self.element(r, inner, at)?;
                    }
                    if holds {
                        self.out.topic_arrays.push(TopicArrayAt {
                            count,
                            end: r.position(),
                            entries: first..self.out.topics.entries.len(),
                        });
                    }
                }
                Type::Struct(inner) => {
                    if field.is_nullable(v) && r.i8(field.name)? < 0 {
                        continue;
                    }
                    self.element(r, inner, at)?;
                }
            }
        }
        if flexible {
            r.skip_tagged_fields()?;
        }
        Ok(())
    }

    fn prim(
        &mut self,
        r: &mut Reader<'_>,
        field: &Field,
        p: Prim,
        at: At,
    ) -> Result<(), ParseError> {
        let what = field.name;
        let topics = &mut self.out.topics;
        match p {
            Prim::String => {
                let offset = r.position();
                let s = r.string(self.flexible, what)?;
                if s.is_none() && !field.is_nullable(self.version) {
                    return Err(ParseError::UnexpectedNull { what, offset });
                }
                match (field.role, s) {
                    (Role::TopicName | Role::ResourceName, Some(s)) if at.collect => {
                        if let Some(e) = at.entry {
                            topics.entries[e].name = Some(s.to_owned());
                        }
                    }
                    (Role::Pattern, Some(s)) if at.collect => topics.patterns.push(s.to_owned()),
                    (Role::ParentKey, s) if at.collect => {
                        if let Some(p) = at.parent {
                            topics.parents[p].key = ParentKey::Str(s.map(str::to_owned));
                        }
                    }
                    (Role::BrokerHost, s) => self.out.brokers.push(BrokerAt {
                        host_span: offset..r.position(),
                        host: s.unwrap_or_default().to_owned(),
                        port_at: None,
                        port: 0,
                    }),
                    _ => {}
                }
            }
            Prim::Bytes => {
                let offset = r.position();
                if r.bytes(self.flexible, what)?.is_none() && !field.is_nullable(self.version) {
                    return Err(ParseError::UnexpectedNull { what, offset });
                }
            }
            Prim::Uuid => {
                let id = r.uuid(what)?;
                if let (Role::TopicId, Some(e), true) = (field.role, at.entry, at.collect) {
                    if !id.is_zero() {
                        topics.entries[e].id = Some(id);
                    }
                }
            }
            Prim::Int8 => {
                let x = r.i8(what)?;
                if field.role == Role::ResourceType {
                    self.resource_type = Some(x);
                }
            }
            Prim::Int16 => {
                let x = r.i16(what)?;
                if field.role == Role::Acks {
                    self.out.acks = Some(x);
                }
            }
            Prim::Int32 => {
                let offset = r.position();
                let x = r.i32(what)?;
                if field.role == Role::BrokerPort {
                    if let Some(b) = self.out.brokers.last_mut().filter(|b| b.port_at.is_none()) {
                        b.port_at = Some(offset);
                        b.port = x;
                    }
                }
                if let (Role::Partition, Some(e), true) = (field.role, at.entry, at.collect) {
                    topics.entries[e].partitions.push(x);
                }
            }
            Prim::Int64 => {
                let x = r.i64(what)?;
                if let (Role::ParentKey, Some(p), true) = (field.role, at.parent, at.collect) {
                    topics.parents[p].key = ParentKey::Int(x);
                }
            }
            Prim::Bool | Prim::Uint16 | Prim::Float64 => {
                r.take(p.fixed_size().unwrap_or(0), what)?;
            }
        }
        Ok(())
    }

    /// One element of an array of primitives.
    fn array_item(
        &mut self,
        r: &mut Reader<'_>,
        field: &Field,
        p: Prim,
        at: At,
    ) -> Result<(), ParseError> {
        let what = field.name;
        match (p, field.role) {
            (Prim::String, Role::TopicNames) => {
                let offset = r.position();
                let name = r
                    .string(self.flexible, what)?
                    .ok_or(ParseError::UnexpectedNull { what, offset })?;
                if at.collect {
                    self.out.entry_spans.push(offset..r.position());
                    self.out.topics.entries.push(TopicEntry {
                        name: Some(name.to_owned()),
                        id: None,
                        partitions: Vec::new(),
                        parent: at.parent,
                    });
                }
            }
            (Prim::Int32, Role::Partitions) => {
                let x = r.i32(what)?;
                if let (Some(e), true) = (at.entry, at.collect) {
                    self.out.topics.entries[e].partitions.push(x);
                }
            }
            (Prim::String, _) => {
                r.string(self.flexible, what)?;
            }
            (Prim::Bytes, _) => {
                r.bytes(self.flexible, what)?;
            }
            _ => {
                r.take(p.fixed_size().unwrap_or(0), what)?;
            }
        }
        Ok(())
    }
}

fn null_allowed(r: &Reader<'_>, field: &Field, v: i16) -> Result<(), ParseError> {
    if field.is_nullable(v) {
        Ok(())
    } else {
        Err(ParseError::UnexpectedNull {
            what: field.name,
            offset: r.position(),
        })
    }
}
