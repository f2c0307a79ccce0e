//! Member offsets from the running kernel's BTF (`/sys/kernel/btf/vmlinux`), for the few kernel
//! fields strait's BPF programs read with `bpf_probe_read_kernel` (the sockmap's backpressure
//! check). The eBPF toolchain here does not emit CO-RE relocations, so strait resolves the
//! offsets itself at load time and hands them to the programs in `SOCK_CONFIG`.
//!
//! Only what that needs is parsed: the type section's records, struct members, and the chain
//! from a member to its sized type. Format: Documentation/bpf/btf.rst.

use std::path::{Path, PathBuf};

/// The kernel's own BTF.
pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

const MAGIC: u16 = 0xeb9f;
const HEADER_LEN: usize = 24;
const TYPE_LEN: usize = 12;

const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_STRUCT: u32 = 4;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_TYPE_TAG: u32 = 18;

#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not usable BTF: {why}")]
    Malformed { path: PathBuf, why: String },
    #[error("the kernel's BTF ({path}) has no `struct {name}`")]
    NoStruct { path: PathBuf, name: String },
    #[error(
        "the kernel's `struct {name}` has no member `{member}` (this kernel is older than the \
         feature that needs it)"
    )]
    NoMember { name: String, member: String },
    #[error("the kernel's `struct {name}` member `{member}` is {size} bytes, expected {want}")]
    Size {
        name: String,
        member: String,
        size: u32,
        want: u32,
    },
}

/// One type record: where its kind-specific data starts, and its header fields.
#[derive(Clone, Copy)]
struct Rec {
    name: u32,
    info: u32,
    size_or_type: u32,
    data: usize,
}

impl Rec {
    fn kind(&self) -> u32 {
        (self.info >> 24) & 0x1f
    }
    fn vlen(&self) -> usize {
        (self.info & 0xffff) as usize
    }
    fn kind_flag(&self) -> bool {
        self.info >> 31 == 1
    }
}

/// A parsed BTF blob.
pub struct Btf {
    path: PathBuf,
    data: Vec<u8>,
    /// Index = type id - 1 (id 0 is `void`).
    types: Vec<Rec>,
    strings: std::ops::Range<usize>,
}

fn u32_at(d: &[u8], at: usize) -> Option<u32> {
    d.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

impl Btf {
    /// The running kernel's BTF.
    pub fn vmlinux() -> Result<Self, BtfError> {
        Self::read(Path::new(VMLINUX))
    }

    pub fn read(path: &Path) -> Result<Self, BtfError> {
        let data = std::fs::read(path).map_err(|source| BtfError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, data)
    }

    pub fn parse(path: &Path, data: Vec<u8>) -> Result<Self, BtfError> {
        let bad = |why: &str| BtfError::Malformed {
            path: path.to_owned(),
            why: why.to_owned(),
        };
        if data.len() < HEADER_LEN {
            return Err(bad("shorter than a header"));
        }
        if u16::from_le_bytes([data[0], data[1]]) != MAGIC {
            return Err(bad("bad magic (or not little-endian)"));
        }
        let field = |i: usize| u32_at(&data, 4 + 4 * i).map(|v| v as usize);
        let (Some(hdr_len), Some(type_off), Some(type_len), Some(str_off), Some(str_len)) =
            (field(0), field(1), field(2), field(3), field(4))
        else {
            return Err(bad("truncated header"));
        };
        // A section's byte range in `data`, if it lies inside it.
        let section = |off: usize, len: usize| {
            let at = hdr_len.checked_add(off)?;
            let end = at.checked_add(len)?;
            (end <= data.len()).then_some(at..end)
        };
        let types_range = section(type_off, type_len).ok_or_else(|| bad("bad type section"))?;
        let strings = section(str_off, str_len).ok_or_else(|| bad("bad string section"))?;
        let (types_at, types_end) = (types_range.start, types_range.end);
        let mut types = Vec::new();
        let mut at = types_at;
        while at < types_end {
            let (Some(name), Some(info), Some(size_or_type)) = (
                u32_at(&data, at),
                u32_at(&data, at + 4),
                u32_at(&data, at + 8),
            ) else {
                return Err(bad("truncated type record"));
            };
            let rec = Rec {
                name,
                info,
                size_or_type,
                data: at + TYPE_LEN,
            };
            let extra = match rec.kind() {
                // INT, VAR, DECL_TAG: one u32.
                1 | 14 | 17 => 4,
                // ARRAY: struct btf_array.
                3 => 12,
                // STRUCT, UNION, DATASEC, ENUM64: 12 bytes per entry.
                4 | 5 | 15 | 19 => 12 * rec.vlen(),
                // ENUM, FUNC_PROTO: 8 bytes per entry.
                6 | 13 => 8 * rec.vlen(),
                // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG.
                2 | 7..=12 | 16 | 18 => 0,
                k => return Err(bad(&format!("unknown type kind {k}"))),
            };
            types.push(rec);
            at = rec.data + extra;
        }
        if at != types_end {
            return Err(bad("the last type record runs past the type section"));
        }
        Ok(Self {
            path: path.to_owned(),
            data,
            types,
            strings,
        })
    }

    fn name(&self, off: u32) -> &[u8] {
        let s = &self.data[self.strings.clone()];
        let from = (off as usize).min(s.len());
        let rest = &s[from..];
        &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())]
    }

    fn rec(&self, id: u32) -> Option<&Rec> {
        (id as usize).checked_sub(1).and_then(|i| self.types.get(i))
    }

    /// Size in bytes of type `id`, through typedefs and qualifiers.
    fn size_of(&self, mut id: u32) -> Option<u32> {
        for _ in 0..32 {
            let r = self.rec(id)?;
            match r.kind() {
                KIND_INT | KIND_STRUCT => return Some(r.size_or_type),
                KIND_PTR => return Some(8),
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    id = r.size_or_type;
                }
                _ => return None,
            }
        }
        None
    }

    /// Byte offset of `member` in `struct name`, checking that the member is `size` bytes.
    pub fn member_offset(&self, name: &str, member: &str, size: u32) -> Result<u32, BtfError> {
        let st = self
            .types
            .iter()
            .find(|r| r.kind() == KIND_STRUCT && self.name(r.name) == name.as_bytes())
            .ok_or_else(|| BtfError::NoStruct {
                path: self.path.clone(),
                name: name.to_owned(),
            })?;
        for i in 0..st.vlen() {
            let at = st.data + 12 * i;
            let (Some(m_name), Some(m_type), Some(m_off)) = (
                u32_at(&self.data, at),
                u32_at(&self.data, at + 4),
                u32_at(&self.data, at + 8),
            ) else {
                break;
            };
            if self.name(m_name) != member.as_bytes() {
                continue;
            }
            let bits = if st.kind_flag() {
                m_off & 0x00ff_ffff
            } else {
                m_off
            };
            let got = self.size_of(m_type).unwrap_or(0);
            if bits % 8 != 0 || got != size {
                return Err(BtfError::Size {
                    name: name.to_owned(),
                    member: member.to_owned(),
                    size: got,
                    want: size,
                });
            }
            return Ok(bits / 8);
        }
        Err(BtfError::NoMember {
            name: name.to_owned(),
            member: member.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BTF blob with `typedef unsigned int u32; struct s { long a; u32 b; void *c; }`.
    fn blob() -> Vec<u8> {
        let strings = b"\0u32\0unsigned int\0s\0a\0b\0c\0long\0";
        let off = |s: &str| {
            let needle = format!("\0{s}\0");
            (strings
                .windows(needle.len())
                .position(|w| w == needle.as_bytes())
                .expect("string")
                + 1) as u32
        };
        let mut t = Vec::new();
        let mut rec = |words: &[u32]| {
            for w in words {
                t.extend_from_slice(&w.to_le_bytes());
            }
        };
        // 1: unsigned int (INT, 4 bytes, 32 bits).
        rec(&[off("unsigned int"), KIND_INT << 24, 4, 32]);
        // 2: typedef u32 -> 1.
        rec(&[off("u32"), KIND_TYPEDEF << 24, 1]);
        // 3: long (INT, 8 bytes).
        rec(&[off("long"), KIND_INT << 24, 8, 64]);
        // 4: void * (PTR -> void).
        rec(&[0, KIND_PTR << 24, 0]);
        // 5: struct s, 24 bytes, 3 members.
        rec(&[off("s"), (KIND_STRUCT << 24) | 3, 24]);
        rec(&[off("a"), 3, 0]);
        rec(&[off("b"), 2, 64]);
        rec(&[off("c"), 4, 128]);
        let mut b = Vec::new();
        b.extend_from_slice(&MAGIC.to_le_bytes());
        b.extend_from_slice(&[1, 0]);
        for w in [
            HEADER_LEN as u32,
            0,
            t.len() as u32,
            t.len() as u32,
            strings.len() as u32,
        ] {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b.extend_from_slice(&t);
        b.extend_from_slice(strings);
        b
    }

    #[test]
    fn finds_member_offsets_through_typedefs_and_checks_sizes() {
        let btf = Btf::parse(Path::new("test"), blob()).expect("parse");
        assert_eq!(btf.member_offset("s", "a", 8).expect("a"), 0);
        assert_eq!(btf.member_offset("s", "b", 4).expect("b"), 8);
        assert_eq!(btf.member_offset("s", "c", 8).expect("c"), 16);
        assert!(matches!(
            btf.member_offset("s", "b", 8),
            Err(BtfError::Size { size: 4, .. })
        ));
        assert!(matches!(
            btf.member_offset("s", "d", 4),
            Err(BtfError::NoMember { .. })
        ));
        assert!(matches!(
            btf.member_offset("t", "a", 8),
            Err(BtfError::NoStruct { .. })
        ));
    }

    #[test]
    fn rejects_truncated_and_foreign_blobs() {
        let b = blob();
        for cut in [0, 10, HEADER_LEN, b.len() - 40] {
            assert!(
                Btf::parse(Path::new("t"), b[..cut].to_vec()).is_err(),
                "accepted a blob cut at {cut}"
            );
        }
        let mut swapped = b.clone();
        swapped.swap(0, 1);
        assert!(matches!(
            Btf::parse(Path::new("t"), swapped),
            Err(BtfError::Malformed { .. })
        ));
    }

    /// The fields the sockmap's backpressure check reads, in this machine's kernel (6.18
    /// here; CI runs on the same kind of machine).
    #[test]
    fn the_running_kernel_has_the_backpressure_fields() {
        if !Path::new(VMLINUX).exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "{VMLINUX} is missing on a CI machine"
            );
            eprintln!("skipped: no {VMLINUX}");
            return;
        }
        let btf = Btf::vmlinux().expect("vmlinux BTF");
        let ud = btf.member_offset("sock", "sk_user_data", 8).expect("sock");
        let len = btf
            .member_offset("sk_psock", "msg_tot_len", 4)
            .expect("sk_psock");
        let write = btf
            .member_offset("tcp_sock", "write_seq", 4)
            .expect("write_seq");
        let copied = btf
            .member_offset("tcp_sock", "copied_seq", 4)
            .expect("copied_seq");
        assert!(ud > 0 && len > 0 && write > 0 && copied > 0);
    }
}
