//! Message layouts as data: what [`super::messages`] is written in, and what the request walker
//! ([`super::extract`]) and the error-response encoder ([`super::response`]) interpret.
//!
//! A message is a slice of [`Field`]s, in wire order, each with the versions it exists in. This is
//! the shape of Apache Kafka's JSON message definitions, minus what this crate does not need:
//!
//! - **Tagged fields are left out.** In flexible versions every struct ends with a tagged-field
//!   section; the walker skips every tag it finds, and the encoder writes an empty section.
//! - **Defaults are numeric only.** They matter for the error responses (Kafka's own error
//!   responses carry `-1` offsets and epochs); strings default to null when nullable, else `""`.
//!
//! A [`Role`] marks the fields the walker collects (topic names, ids, partitions, …) and the fields
//! the encoder fills (error codes, echoed topics, …). Roles are attached per message, so a field
//! named `Name` is a topic in one message and a config key in another.

/// "Every version from `lo` on" in the tables.
pub(crate) const MAX: i16 = i16::MAX;

/// An inclusive version range; `lo > hi` is the empty range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Versions {
    pub lo: i16,
    pub hi: i16,
}

impl Versions {
    pub(crate) const NONE: Versions = Versions { lo: 1, hi: 0 };

    pub(crate) const fn contains(self, v: i16) -> bool {
        self.lo <= v && v <= self.hi
    }
}

/// A fixed-layout value on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prim {
    Bool,
    Int8,
    Int16,
    Uint16,
    Int32,
    Int64,
    Float64,
    Uuid,
    /// `string`: int16 length (classic) or unsigned varint length + 1 (flexible); -1 / 0 is null.
    String,
    /// `bytes` and `records`: int32 length (classic) or unsigned varint length + 1 (flexible).
    Bytes,
}

impl Prim {
    /// The fewest bytes the value can take (for bounding array counts).
    pub(crate) const fn min_size(self, flexible: bool) -> usize {
        match self {
            Prim::Bool | Prim::Int8 => 1,
            Prim::Int16 | Prim::Uint16 => 2,
            Prim::Int32 => 4,
            Prim::Int64 | Prim::Float64 => 8,
            Prim::Uuid => 16,
            Prim::String if flexible => 1,
            Prim::String => 2,
            Prim::Bytes if flexible => 1,
            Prim::Bytes => 4,
        }
    }

    /// Size of a fixed-width value; `None` for strings and bytes.
    pub(crate) const fn fixed_size(self) -> Option<usize> {
        match self {
            Prim::String | Prim::Bytes => None,
            p => Some(p.min_size(false)),
        }
    }
}

/// What an array holds.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Elem {
    Prim(Prim),
    Struct(&'static [Field]),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Type {
    Prim(Prim),
    /// int32 count (classic) or unsigned varint count + 1 (flexible); -1 / 0 is null.
    Array(Elem),
    /// A nested struct; when nullable, preceded by an int8 marker (-1 null, 1 present).
    Struct(&'static [Field]),
}

/// Why a field matters to strait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Plain,
    /// A topic name (`entityType: topicName`); the struct holding it is one topic entry.
    TopicName,
    /// A list of topic names (`[]string`), one entry each.
    TopicNames,
    /// A topic id (uuid); the struct holding it is one topic entry.
    TopicId,
    /// A partition index of the enclosing topic entry.
    Partition,
    /// Partition indexes (`[]int32`) of the enclosing topic entry.
    Partitions,
    /// `ResourceType` of a config resource: the entry is a topic when it is 2 (TOPIC).
    ResourceType,
    /// `ResourceName` of a config resource: the topic name when the type is TOPIC.
    ResourceName,
    /// Produce `Acks`: 0 means the broker sends no response.
    Acks,
    /// A topic regex subscription (ConsumerGroupHeartbeat `SubscribedTopicRegex`).
    Pattern,
    /// An array whose topics are not accessed (Fetch `ForgottenTopicsData`): skipped, not collected.
    NoCollect,
    /// A nullable topic array where null means every topic (Metadata `Topics`, …).
    AllIfNull,
    /// The key of a group / transaction / marker element that holds topics (`GroupId`,
    /// `TransactionalId`, `ProducerId`); echoed in error responses.
    ParentKey,
    /// An error code in a response.
    Error,
    /// An error message in a response.
    ErrorMessage,
    /// The host of a broker a response advertises to clients (Metadata brokers, FindCoordinator
    /// coordinators, DescribeCluster brokers, share-group node endpoints); the struct holding it
    /// also holds its [`Role::BrokerPort`], after it.
    BrokerHost,
    /// The port of the advertised broker whose [`Role::BrokerHost`] came before it.
    BrokerPort,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    pub name: &'static str,
    pub ty: Type,
    pub versions: Versions,
    pub nullable: Versions,
    pub role: Role,
    /// Default for numeric and bool fields in synthesized responses.
    pub default: i64,
}

impl Field {
    pub(crate) const fn nullable(mut self, lo: i16, hi: i16) -> Field {
        self.nullable = Versions { lo, hi };
        self
    }

    pub(crate) const fn role(mut self, role: Role) -> Field {
        self.role = role;
        self
    }

    pub(crate) const fn default(mut self, default: i64) -> Field {
        self.default = default;
        self
    }

    pub(crate) const fn present(&self, v: i16) -> bool {
        self.versions.contains(v)
    }

    pub(crate) const fn is_nullable(&self, v: i16) -> bool {
        self.nullable.contains(v)
    }
}

/// A field present in versions `lo..=hi`.
pub(crate) const fn f(name: &'static str, ty: Type, lo: i16, hi: i16) -> Field {
    Field {
        name,
        ty,
        versions: Versions { lo, hi },
        nullable: Versions::NONE,
        role: Role::Plain,
        default: 0,
    }
}

pub(crate) const fn arr(fields: &'static [Field]) -> Type {
    Type::Array(Elem::Struct(fields))
}

pub(crate) const fn arr_of(p: Prim) -> Type {
    Type::Array(Elem::Prim(p))
}

pub(crate) const fn obj(fields: &'static [Field]) -> Type {
    Type::Struct(fields)
}

pub(crate) const BOOL: Type = Type::Prim(Prim::Bool);
pub(crate) const INT8: Type = Type::Prim(Prim::Int8);
pub(crate) const INT16: Type = Type::Prim(Prim::Int16);
pub(crate) const UINT16: Type = Type::Prim(Prim::Uint16);
pub(crate) const INT32: Type = Type::Prim(Prim::Int32);
pub(crate) const INT64: Type = Type::Prim(Prim::Int64);
pub(crate) const FLOAT64: Type = Type::Prim(Prim::Float64);
pub(crate) const UUID: Type = Type::Prim(Prim::Uuid);
pub(crate) const STRING: Type = Type::Prim(Prim::String);
pub(crate) const BYTES: Type = Type::Prim(Prim::Bytes);

/// The fewest bytes a struct can take at version `v` (each array element takes at least this
/// much, which bounds the element count a length prefix may claim).
pub(crate) fn min_struct_size(fields: &[Field], v: i16, flexible: bool) -> usize {
    let mut n = usize::from(flexible); // the tagged-field count
    for field in fields.iter().filter(|f| f.present(v)) {
        n += match field.ty {
            Type::Prim(p) => p.min_size(flexible),
            Type::Array(_) => {
                if flexible {
                    1
                } else {
                    4
                }
            }
            Type::Struct(_) if field.is_nullable(v) => 1,
            Type::Struct(inner) => min_struct_size(inner, v, flexible),
        };
    }
    n
}

/// Whether one element of this struct is one topic entry at version `v`.
pub(crate) fn holds_topic(fields: &[Field], v: i16) -> bool {
    fields.iter().any(|f| {
        f.present(v) && matches!(f.role, Role::TopicName | Role::TopicId | Role::ResourceName)
    })
}

/// Whether one element of this struct holds an array of topic entries (a group, a transaction,
/// a log dir, a txn marker): the parent of those entries.
pub(crate) fn holds_topic_array(fields: &[Field], v: i16) -> bool {
    fields.iter().any(|f| {
        f.present(v)
            && f.role != Role::NoCollect
            && matches!(f.ty, Type::Array(Elem::Struct(inner)) if holds_topic(inner, v))
    })
}

/// Whether one element of this struct is one partition of the enclosing entry.
pub(crate) fn holds_partition(fields: &[Field], v: i16) -> bool {
    fields
        .iter()
        .any(|f| f.present(v) && f.role == Role::Partition)
}
