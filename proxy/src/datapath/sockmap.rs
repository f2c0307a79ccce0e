//! The aya loader of the socket-layer programs (`sockops-bpf`): sock_ops attached to a cgroup v2
//! inserts endpoint and proxy sockets into `SOCK_HASH`, sk_msg on that sockhash splices their
//! sends into the peer socket (docs/sockmap.md).
//!
//! Maps are pinned beside the datapath's (`datapath.pin_dir/maps`) and shared with it where the
//! names match (`POLICY`). The sockhash stays pinned when strait exits, so connections already
//! spliced keep working (the kernel alone moves their bytes); the sock_ops link is not pinned,
//! so no new connection is spliced while strait is down. Nothing here ever deletes a socket from
//! the sockhash: that would free redirected bytes the application has not read yet.

use std::collections::HashSet;
use std::os::fd::AsFd as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aya::maps::{Array, HashMap as BpfHashMap, MapData, PerCpuArray, SockHash};
use aya::programs::{CgroupAttachMode, SkMsg, SockOps};
use aya::{Ebpf, EbpfLoader};
use datapath_bpf::EndpointKey;
use sockops_bpf::{
    config, counter, ServiceKey, ServiceStats, SockEndpoint, SockKey, SockState, EP_SPLICE,
};

use super::{check_bpffs, ep_key, io_err, map_err, prog_err, DatapathError};
use crate::config::{EndpointConfig, SockmapConfig};

/// The eBPF object built by `build.rs` (empty when built with `STRAIT_SKIP_EBPF=1`).
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/sockops"));

const PROG_SOCKOPS: &str = "strait_sockops";
const PROG_SK_MSG: &str = "strait_sk_msg";
/// Maps this object owns (unpinned by [`unload`] once no spliced socket is left).
pub const MAPS: &[&str] = &[
    "SOCK_HASH",
    "SOCK_STATE",
    "SOCK_ENDPOINTS",
    "SOCK_CONFIG",
    "SOCK_COUNTERS",
    "SOCK_SERVICES",
];

/// Totals of the per-CPU counters (docs/sockmap.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub inserted: u64,
    pub insert_failed: u64,
    pub redirected_msgs: u64,
    pub redirected_bytes: u64,
    pub misses: u64,
    pub fallbacks: u64,
    pub policy_refused: u64,
    pub closed: u64,
    pub passed_msgs: u64,
    pub denied_msgs: u64,
    pub bypassed: u64,
    pub short_conns: u64,
    pub long_conns: u64,
    pub backpressure: u64,
    pub resumed: u64,
}

/// A loaded, attached socket layer. Dropping it detaches sock_ops (no new sockets are
/// spliced); the pinned sockhash keeps serving the connections already in it.
pub struct Sockmap {
    // Holds the programs and their links.
    _ebpf: Ebpf,
    counters: CountersHandle,
    config: Array<MapData, u64>,
}

/// Resolved endpoint for the `SOCK_ENDPOINTS` map.
pub struct SpliceEndpoint<'a> {
    pub endpoint: &'a EndpointConfig,
    pub identity: u32,
    /// `datapath_bpf::EP_ENFORCE_*` (0 without the datapath: no policy).
    pub flags: u32,
}

impl Sockmap {
    /// Loads (reusing pinned maps), fills the endpoint map, turns splicing on, attaches sk_msg
    /// to the sockhash and sock_ops to the cgroup.
    pub fn start(
        cfg: &SockmapConfig,
        pin_dir: &Path,
        endpoints: &[SpliceEndpoint<'_>],
    ) -> Result<Self, DatapathError> {
        if OBJECT.is_empty() {
            return Err(DatapathError::NotBuilt);
        }
        let cgroup_dir = match &cfg.cgroup {
            Some(p) => p.clone(),
            None => cgroup2_root().ok_or(DatapathError::NoCgroup2)?,
        };
        let cgroup =
            std::fs::File::open(&cgroup_dir).map_err(io_err("opening cgroup", &cgroup_dir))?;
        // Netns cookies first: a missing namespace is a configuration error, before anything
        // is loaded.
        let mut eps = Vec::new();
        for e in endpoints {
            let path = netns_path(&e.endpoint.netns);
            let cookie =
                crate::socket::netns_cookie(&path).map_err(|source| DatapathError::NoNetns {
                    endpoint: e.endpoint.name.clone(),
                    path: path.clone(),
                    source,
                })?;
            eps.push((e, cookie));
        }
        let host = crate::socket::current_netns_cookie().map_err(|source| DatapathError::Io {
            what: "reading the netns cookie of",
            path: PathBuf::from("/proc/self/ns/net"),
            source,
        })?;
        check_bpffs(pin_dir)?;
        let maps_dir = pin_dir.join("maps");
        std::fs::create_dir_all(&maps_dir).map_err(io_err("creating", &maps_dir))?;
        check_pinned(&maps_dir)?;
        let mut ebpf = EbpfLoader::new()
            .default_map_pin_directory(&maps_dir)
            .map_max_entries("SOCK_HASH", cfg.max_sockets)
            .map_max_entries("SOCK_STATE", cfg.max_sockets.saturating_mul(2))
            .load(OBJECT)?;

        {
            let mut m: BpfHashMap<&mut MapData, EndpointKey, SockEndpoint> = ebpf
                .map_mut("SOCK_ENDPOINTS")
                .ok_or(DatapathError::MissingMap("SOCK_ENDPOINTS"))?
                .try_into()
                .map_err(map_err("SOCK_ENDPOINTS"))?;
            let mut want = HashSet::new();
            for (e, cookie) in &eps {
                let v = SockEndpoint {
                    netns: *cookie,
                    identity: e.identity,
                    flags: e.flags | if e.endpoint.splice { EP_SPLICE } else { 0 },
                };
                for a in &e.endpoint.addresses {
                    let k = ep_key(*a);
                    want.insert(k);
                    m.insert(k, v, 0).map_err(map_err("SOCK_ENDPOINTS"))?;
                }
            }
            let stale: Vec<EndpointKey> =
                m.keys().flatten().filter(|k| !want.contains(k)).collect();
            for k in stale {
                m.remove(&k).map_err(map_err("SOCK_ENDPOINTS"))?;
            }
        }
        let mut conf: Array<MapData, u64> = ebpf
            .take_map("SOCK_CONFIG")
            .ok_or(DatapathError::MissingMap("SOCK_CONFIG"))?
            .try_into()
            .map_err(map_err("SOCK_CONFIG"))?;
        conf.set(config::HOST_NETNS, host, 0)
            .map_err(map_err("SOCK_CONFIG"))?;
        bump_generation(&mut conf)?;
        let (short, streak) = match cfg.adaptive {
            Some(a) => (u64::from(a.short_messages), u64::from(a.streak)),
            None => (0, 0),
        };
        conf.set(config::ADAPTIVE_SHORT_MESSAGES, short, 0)
            .map_err(map_err("SOCK_CONFIG"))?;
        conf.set(config::ADAPTIVE_STREAK, streak, 0)
            .map_err(map_err("SOCK_CONFIG"))?;
        let off = backpressure_offsets(cfg.max_queued);
        for (i, v) in [
            (config::OFF_SK_USER_DATA, off.user_data),
            (config::OFF_MSG_TOT_LEN, off.msg_tot_len),
            (config::OFF_WRITE_SEQ, off.write_seq),
            (config::OFF_COPIED_SEQ, off.copied_seq),
            (config::MAX_QUEUED, cfg.max_queued),
        ] {
            conf.set(i, v, 0).map_err(map_err("SOCK_CONFIG"))?;
        }
        conf.set(config::ENABLED, 1, 0)
            .map_err(map_err("SOCK_CONFIG"))?;
        let counters = CountersHandle(Arc::new(
            ebpf.take_map("SOCK_COUNTERS")
                .ok_or(DatapathError::MissingMap("SOCK_COUNTERS"))?
                .try_into()
                .map_err(map_err("SOCK_COUNTERS"))?,
        ));

        let sock_fd = {
            let m: SockHash<&MapData, SockKey> = ebpf
                .map("SOCK_HASH")
                .ok_or(DatapathError::MissingMap("SOCK_HASH"))?
                .try_into()
                .map_err(map_err("SOCK_HASH"))?;
            m.fd().try_clone().map_err(|e| DatapathError::Io {
                what: "duplicating the fd of",
                path: maps_dir.join("SOCK_HASH"),
                source: e,
            })?
        };
        let msg: &mut SkMsg = ebpf
            .program_mut(PROG_SK_MSG)
            .ok_or(DatapathError::Program {
                program: PROG_SK_MSG,
                source: aya::programs::ProgramError::NotLoaded,
            })?
            .try_into()
            .map_err(prog_err(PROG_SK_MSG))?;
        msg.load().map_err(prog_err(PROG_SK_MSG))?;
        // Replaces the program of a sockhash pinned by an earlier run; sockets already in it
        // keep the program they were inserted with (same maps, same behaviour).
        msg.attach(&sock_fd).map_err(prog_err(PROG_SK_MSG))?;

        let ops: &mut SockOps = ebpf
            .program_mut(PROG_SOCKOPS)
            .ok_or(DatapathError::Program {
                program: PROG_SOCKOPS,
                source: aya::programs::ProgramError::NotLoaded,
            })?
            .try_into()
            .map_err(prog_err(PROG_SOCKOPS))?;
        ops.load().map_err(prog_err(PROG_SOCKOPS))?;
        // A bpf_link: other sock_ops programs on the cgroup keep running, and the link goes
        // away with this process.
        ops.attach(cgroup.as_fd(), CgroupAttachMode::Single)
            .map_err(prog_err(PROG_SOCKOPS))?;
        tracing::info!(
            cgroup = %cgroup_dir.display(),
            endpoints = eps.len(),
            max_sockets = cfg.max_sockets,
            "sockmap attached"
        );
        Ok(Self {
            _ebpf: ebpf,
            counters,
            config: conf,
        })
    }

    /// Spliced connections re-check policy on their next message.
    pub fn policy_changed(&mut self) -> Result<(), DatapathError> {
        bump_generation(&mut self.config)
    }

    pub fn counters_handle(&self) -> CountersHandle {
        self.counters.clone()
    }
}

/// Byte offsets of the kernel fields the backpressure check reads
/// (`sockops_bpf::config::OFF_*`); all 0 turns the check off.
#[derive(Debug, Default, Clone, Copy)]
struct Offsets {
    user_data: u64,
    msg_tot_len: u64,
    write_seq: u64,
    copied_seq: u64,
}

/// The offsets, or zeros (check off) when `max_queued` is 0 or this kernel lacks the fields;
/// the latter is logged, since the bug it guards against is back then.
fn backpressure_offsets(max_queued: u64) -> Offsets {
    if max_queued == 0 {
        return Offsets::default();
    }
    let found = super::btf::Btf::vmlinux().and_then(|b| {
        Ok(Offsets {
            user_data: b.member_offset("sock", "sk_user_data", 8)?.into(),
            msg_tot_len: b.member_offset("sk_psock", "msg_tot_len", 4)?.into(),
            write_seq: b.member_offset("tcp_sock", "write_seq", 4)?.into(),
            copied_seq: b.member_offset("tcp_sock", "copied_seq", 4)?.into(),
        })
    });
    match found {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(
                error = %e,
                "sockmap backpressure is off: a writer to a slow reader is not made to wait \
                 and may get ENOMEM under TCP memory pressure (docs/sockmap.md); \
                 `sockmap.max_queued: 0` turns the check off without this warning"
            );
            Offsets::default()
        }
    }
}

fn bump_generation(conf: &mut Array<MapData, u64>) -> Result<(), DatapathError> {
    let g = conf
        .get(&config::POLICY_GENERATION, 0)
        .map_err(map_err("SOCK_CONFIG"))?;
    conf.set(config::POLICY_GENERATION, (g + 1) & u64::from(u32::MAX), 0)
        .map_err(map_err("SOCK_CONFIG"))
}

/// `/var/run/netns/NAME` for a name, or the path itself when it is one (`/proc/PID/ns/net`).
pub fn netns_path(netns: &str) -> PathBuf {
    if netns.contains('/') {
        PathBuf::from(netns)
    } else {
        Path::new("/var/run/netns").join(netns)
    }
}

/// The first cgroup v2 mount in /proc/self/mounts.
pub fn cgroup2_root() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let (_, dir, fstype) = (f.next()?, f.next()?, f.next()?);
        (fstype == "cgroup2").then(|| PathBuf::from(dir))
    })
}

/// The sockmap's pinned maps, with the key and value sizes this build expects.
fn check_pinned(maps_dir: &Path) -> Result<(), DatapathError> {
    super::check_pinned(
        maps_dir,
        &[
            ("SOCK_HASH", std::mem::size_of::<SockKey>(), 4),
            (
                "SOCK_STATE",
                std::mem::size_of::<SockKey>(),
                std::mem::size_of::<SockState>(),
            ),
            (
                "SOCK_ENDPOINTS",
                std::mem::size_of::<EndpointKey>(),
                std::mem::size_of::<SockEndpoint>(),
            ),
            (
                "SOCK_SERVICES",
                std::mem::size_of::<ServiceKey>(),
                std::mem::size_of::<ServiceStats>(),
            ),
        ],
    )
}

/// Reads the pinned maps of a sockmap that may belong to another (or no) strait process:
/// `strait sockmap status|on|off`.
pub struct Pinned {
    config: Array<MapData, u64>,
    counters: CountersHandle,
    sockets: SockHash<MapData, SockKey>,
}

impl Pinned {
    pub fn open(pin_dir: &Path) -> Result<Self, DatapathError> {
        let maps = pin_dir.join("maps");
        let open = |name: &'static str| {
            let p = maps.join(name);
            if !p.exists() {
                return Err(DatapathError::NotPinned(p));
            }
            MapData::from_pin(&p).map_err(map_err(name))
        };
        let config = Array::try_from(aya::maps::Map::Array(open("SOCK_CONFIG")?))
            .map_err(map_err("SOCK_CONFIG"))?;
        let counters = PerCpuArray::try_from(aya::maps::Map::PerCpuArray(open("SOCK_COUNTERS")?))
            .map_err(map_err("SOCK_COUNTERS"))?;
        let sockets = SockHash::try_from(aya::maps::Map::SockHash(open("SOCK_HASH")?))
            .map_err(map_err("SOCK_HASH"))?;
        Ok(Self {
            config,
            counters: CountersHandle(Arc::new(counters)),
            sockets,
        })
    }

    /// Sockets in the sockhash right now (the kernel removes closed ones). Counted by key
    /// walk: a user-space lookup of a sockhash with 4-byte values always fails, but the key
    /// walk sees every entry.
    pub fn sockets(&self) -> usize {
        self.sockets.keys().flatten().count()
    }

    pub fn enabled(&self) -> Result<bool, DatapathError> {
        Ok(self
            .config
            .get(&config::ENABLED, 0)
            .map_err(map_err("SOCK_CONFIG"))?
            != 0)
    }

    /// On: new connections are spliced. Off: no new socket is inserted, and spliced ones fall
    /// back to TCP on their next message (bytes already spliced are read first).
    pub fn set_enabled(&mut self, on: bool) -> Result<(), DatapathError> {
        self.config
            .set(config::ENABLED, u64::from(on), 0)
            .map_err(map_err("SOCK_CONFIG"))
    }

    pub fn counters(&self) -> Result<Counters, DatapathError> {
        self.counters.read()
    }
}

/// Removes the sockmap's pins when no spliced socket is left, waiting up to `wait` for the
/// last ones to close (after turning splicing off). With sockets left, the pins stay — removing
/// them would free the sockhash and the bytes queued in its sockets — and the returned lines
/// say so. Idempotent.
pub fn unload(pin_dir: &Path, wait: std::time::Duration) -> Result<Vec<String>, DatapathError> {
    let mut done = Vec::new();
    let maps = pin_dir.join("maps");
    let mut pinned = match Pinned::open(pin_dir) {
        Ok(p) => p,
        Err(DatapathError::NotPinned(_)) => return Ok(done),
        Err(e) => return Err(e),
    };
    pinned.set_enabled(false)?;
    let deadline = std::time::Instant::now() + wait;
    let mut live = pinned.sockets();
    while live > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        live = pinned.sockets();
    }
    if live > 0 {
        done.push(format!(
            "kept the sockmap maps in {}: {live} spliced socket(s) still open (removing the \
             sockhash would drop bytes queued in them); run this again once they have closed",
            maps.display()
        ));
        return Ok(done);
    }
    for name in MAPS {
        let p = maps.join(name);
        if p.exists() {
            std::fs::remove_file(&p).map_err(io_err("removing", &p))?;
            done.push(format!("unpinned {}", p.display()));
        }
    }
    Ok(done)
}

/// Shared read access to the per-CPU counters (`/metrics`).
#[derive(Clone)]
pub struct CountersHandle(Arc<PerCpuArray<MapData, u64>>);

impl CountersHandle {
    pub fn read(&self) -> Result<Counters, DatapathError> {
        let get = |i: u32| -> Result<u64, DatapathError> {
            Ok(self
                .0
                .get(&i, 0)
                .map_err(map_err("SOCK_COUNTERS"))?
                .iter()
                .sum())
        };
        Ok(Counters {
            inserted: get(counter::INSERTED)?,
            insert_failed: get(counter::INSERT_FAILED)?,
            redirected_msgs: get(counter::REDIRECTED_MSGS)?,
            redirected_bytes: get(counter::REDIRECTED_BYTES)?,
            misses: get(counter::MISSES)?,
            fallbacks: get(counter::FALLBACKS)?,
            policy_refused: get(counter::POLICY_REFUSED)?,
            closed: get(counter::CLOSED)?,
            passed_msgs: get(counter::PASSED_MSGS)?,
            denied_msgs: get(counter::DENIED_MSGS)?,
            bypassed: get(counter::BYPASSED)?,
            short_conns: get(counter::SHORT_CONNS)?,
            long_conns: get(counter::LONG_CONNS)?,
            backpressure: get(counter::BACKPRESSURE)?,
            resumed: get(counter::RESUMED)?,
        })
    }

    /// Appends the counters in OpenMetrics text (before `# EOF`).
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let Ok(c) = self.read() else { return };
        for (name, help, v) in [
            (
                "strait_sockmap_inserted",
                "Sockets inserted into the sockhash.",
                c.inserted,
            ),
            (
                "strait_sockmap_insert_failed",
                "Sockhash inserts the kernel refused (full map?).",
                c.insert_failed,
            ),
            (
                "strait_sockmap_redirected_messages",
                "Messages spliced into the peer socket.",
                c.redirected_msgs,
            ),
            (
                "strait_sockmap_redirected_bytes",
                "Bytes spliced into the peer socket.",
                c.redirected_bytes,
            ),
            (
                "strait_sockmap_misses",
                "Connections whose first message found no peer socket (stay on TCP).",
                c.misses,
            ),
            (
                "strait_sockmap_fallbacks",
                "Spliced connections moved back to TCP (peer closed, policy change, turned off).",
                c.fallbacks,
            ),
            (
                "strait_sockmap_backpressure_throttled",
                "Spliced directions sent through TCP because the reader had sockmap.max_queued bytes unread.",
                c.backpressure,
            ),
            (
                "strait_sockmap_backpressure_resumed",
                "Throttled directions spliced again once the reader had read every byte sent through TCP.",
                c.resumed,
            ),
            (
                "strait_sockmap_policy_refused",
                "Connections not spliced directly because policy needs the proxy or denies them.",
                c.policy_refused,
            ),
            (
                "strait_sockmap_closed",
                "Inserted sockets that closed.",
                c.closed,
            ),
            (
                "strait_sockmap_policy_denied_messages",
                "Sends dropped because a policy change denied their spliced connection.",
                c.denied_msgs,
            ),
            (
                "strait_sockmap_passed_messages",
                "Messages of inserted sockets that took the TCP path.",
                c.passed_msgs,
            ),
            (
                "strait_sockmap_adaptive_bypassed",
                "Connections left on TCP by the adaptive rule (their service's connections were short).",
                c.bypassed,
            ),
            (
                "strait_sockmap_adaptive_short_connections",
                "Closed connections the adaptive rule counted as short.",
                c.short_conns,
            ),
            (
                "strait_sockmap_adaptive_long_connections",
                "Closed connections the adaptive rule counted as long enough to splice.",
                c.long_conns,
            ),
        ] {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name}_total {v}\n"
            );
        }
    }
}
