//! The aya loader of the tc datapath (`datapath-bpf`): loads the embedded object, fills its maps
//! from the compiled policy, attaches the programs to every endpoint's host-side veth with TCX,
//! pins maps and links under `datapath.pin_dir` so enforcement survives a restart of strait,
//! installs the policy route, registers transparent listeners, and reads drop/verdict events.
//!
//! Lifecycle: `strait run` loads (reusing pinned maps, atomically replacing pinned links), and
//! on exit either keeps everything pinned (`on_exit: keep`, the default: policy stays enforced
//! and L7-policy traffic is dropped while strait is down) or detaches (`on_exit: detach`).
//! [`unload`] (`strait datapath down`) removes everything.

pub mod btf;
pub mod netlink;
pub mod sockmap;

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aya::maps::lpm_trie::{Key as LpmKey, LpmTrie};
use aya::maps::{HashMap as BpfHashMap, MapData, MapError, PerCpuArray, RingBuf, SockHash};
use aya::programs::links::{FdLink, LinkError, PinnedLink};
use aya::programs::tc::{SchedClassifierLink, TcAttachOptions};
use aya::programs::{LinkOrder, ProgramError, SchedClassifier, TcAttachType};
use aya::{Ebpf, EbpfLoader};
use datapath_bpf::{
    counter, drop, CtEntry, CtKey, EndpointInfo, EndpointKey, Event, IpcacheInfo, PolicyEntry,
    PolicyKey, FAMILY_V4, FAMILY_V6,
};

use crate::config::{link_pin_name, DatapathConfig, HostRouting};
use crate::flows::{FlowRecord, Flows, Verdict};
use crate::policy::{Identities, MapState};
use netlink::{NetlinkError, PolicyRoute};

/// The eBPF object built by `build.rs` (empty when built with `STRAIT_SKIP_EBPF=1`).
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/datapath"));

const PROG_FROM_EP: &str = "strait_from_ep";
const PROG_TO_EP: &str = "strait_to_ep";
const PROG_FROM_UPLINK: &str = "strait_from_uplink";
/// Magic of a bpffs mount (statfs f_type).
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// Why the datapath could not start or stop.
#[derive(Debug, thiserror::Error)]
pub enum DatapathError {
    #[error(
        "this strait binary was built without eBPF programs (STRAIT_SKIP_EBPF=1); rebuild it \
         with the eBPF toolchain (scripts/toolchain-bpf.sh) to use endpoints and the datapath"
    )]
    NotBuilt,
    #[error(
        "{} is not on a bpffs mount; mount one (`mount -t bpf bpf /sys/fs/bpf`) or set \
         datapath.pin_dir to a directory on bpffs",
        .0.display()
    )]
    NoBpffs(PathBuf),
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// aya's error includes the verifier log when a program is rejected.
    #[error("loading the eBPF object: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("program {program}: {source}")]
    Program {
        program: &'static str,
        source: ProgramError,
    },
    #[error("endpoint `{endpoint}`: interface `{interface}` does not exist (run `strait lab up` or create the veth first)")]
    NoInterface { endpoint: String, interface: String },
    #[error("datapath.uplinks: interface `{0}` does not exist")]
    NoUplink(String),
    #[error("map {map}: {source}")]
    Map { map: &'static str, source: MapError },
    #[error("map {0} missing from the eBPF object")]
    MissingMap(&'static str),
    #[error("link {}: {source}", path.display())]
    Link { path: PathBuf, source: LinkError },
    #[error("policy route: {0}")]
    Route(#[from] NetlinkError),
    #[error("no cgroup v2 mount in /proc/self/mounts; mount one or set sockmap.cgroup")]
    NoCgroup2,
    #[error(
        "endpoint `{endpoint}`: network namespace {}: {source} (sockmap tells an endpoint's \
         sockets apart by their namespace: create it, e.g. `strait lab up`, or set \
         endpoints[].netns)",
        path.display()
    )]
    NoNetns {
        endpoint: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{} was pinned by a strait build with another layout; remove it with `strait datapath \
         down` (after its connections have closed)",
        .0.display()
    )]
    Incompatible(PathBuf),
    #[error("{} is not pinned: sockmap is not loaded under this pin_dir", .0.display())]
    NotPinned(PathBuf),
}

fn io_err<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> DatapathError + 'a {
    move |source| DatapathError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

fn map_err(map: &'static str) -> impl FnOnce(MapError) -> DatapathError {
    move |source| DatapathError::Map { map, source }
}

fn prog_err(program: &'static str) -> impl FnOnce(ProgramError) -> DatapathError {
    move |source| DatapathError::Program { program, source }
}

/// Whether this binary carries the eBPF programs.
pub fn is_built() -> bool {
    !OBJECT.is_empty()
}

/// Interface index of `name`, if it exists.
pub fn ifindex(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

fn check_bpffs(dir: &Path) -> Result<(), DatapathError> {
    let probe = dir
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or_else(|| Path::new("/"));
    let c = std::ffi::CString::new(probe.as_os_str().as_encoded_bytes())
        .map_err(|_| DatapathError::NoBpffs(dir.to_owned()))?;
    // SAFETY: zeroed statfs is a valid out-parameter; `c` is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above; the kernel writes into `st`.
    let r = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    if r != 0 || st.f_type as i64 != BPF_FS_MAGIC {
        return Err(DatapathError::NoBpffs(dir.to_owned()));
    }
    Ok(())
}

/// Each endpoint's interface and its index; a missing one is a configuration error.
fn endpoint_ifaces(state: &MapState) -> Result<Vec<(String, u32)>, DatapathError> {
    state
        .endpoints
        .iter()
        .map(|(ep, _, _)| {
            let idx = ifindex(&ep.interface).ok_or_else(|| DatapathError::NoInterface {
                endpoint: ep.name.clone(),
                interface: ep.interface.clone(),
            })?;
            Ok((ep.interface.clone(), idx))
        })
        .collect()
}

/// A loaded, attached datapath.
pub struct Datapath {
    ebpf: Ebpf,
    counters: CountersHandle,
    pin_dir: PathBuf,
    /// Rule descriptions of the policy in the maps (swapped on reload; events name rules).
    rules: Arc<arc_swap::ArcSwap<Vec<String>>>,
    identities: Arc<Identities>,
}

/// Totals of the per-CPU counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub packets: u64,
    pub bytes: u64,
    pub allowed: u64,
    pub redirected: u64,
    pub ct_hits: u64,
    pub ct_created: u64,
    pub proxy_return: u64,
    /// By reason name (see [`drop_reason`]).
    pub drops: BTreeMap<&'static str, u64>,
}

/// Name of a drop reason, as in docs/datapath.md.
pub fn drop_reason(r: u8) -> &'static str {
    match r {
        drop::POLICY_DENIED => "POLICY_DENIED",
        drop::POLICY_DENY_RULE => "POLICY_DENY_RULE",
        drop::PROXY_UNAVAILABLE => "PROXY_UNAVAILABLE",
        drop::FRAGMENT => "FRAGMENT",
        drop::MALFORMED => "MALFORMED",
        drop::SPOOFED_SOURCE => "SPOOFED_SOURCE",
        drop::UNKNOWN_L3 => "UNKNOWN_L3",
        drop::IPV6_EXT_HEADERS => "IPV6_EXT_HEADERS",
        drop::SK_ASSIGN_FAILED => "SK_ASSIGN_FAILED",
        drop::REDIRECT_UNSUPPORTED => "REDIRECT_UNSUPPORTED",
        _ => "OTHER",
    }
}

impl Datapath {
    /// Loads (reusing pinned maps), fills the maps from `state`, attaches to every endpoint
    /// interface (replacing pinned links atomically) and installs the policy route.
    pub fn start(
        cfg: &DatapathConfig,
        state: &MapState,
        identities: Arc<Identities>,
    ) -> Result<Self, DatapathError> {
        if !is_built() {
            return Err(DatapathError::NotBuilt);
        }
        // Interfaces first: a missing one is a configuration error, before anything changes.
        let ifaces = endpoint_ifaces(state)?;
        for up in &cfg.uplinks {
            ifindex(up).ok_or_else(|| DatapathError::NoUplink(up.clone()))?;
        }
        check_bpffs(&cfg.pin_dir)?;
        let maps_dir = cfg.pin_dir.join("maps");
        let links_dir = cfg.pin_dir.join("links");
        for d in [&maps_dir, &links_dir] {
            std::fs::create_dir_all(d).map_err(io_err("creating", d))?;
        }
        check_pinned(
            &maps_dir,
            &[
                (
                    "ENDPOINTS",
                    std::mem::size_of::<EndpointKey>(),
                    std::mem::size_of::<EndpointInfo>(),
                ),
                (
                    "POLICY",
                    std::mem::size_of::<PolicyKey>(),
                    std::mem::size_of::<PolicyEntry>(),
                ),
                (
                    "CT",
                    std::mem::size_of::<CtKey>(),
                    std::mem::size_of::<CtEntry>(),
                ),
            ],
        )?;
        let local_redirect: u32 = match cfg.host_routing {
            HostRouting::Bpf => 1,
            HostRouting::Kernel => 0,
        };
        let mut ebpf = EbpfLoader::new()
            .default_map_pin_directory(&maps_dir)
            .override_global("LOCAL_REDIRECT", &local_redirect, true)
            .load(OBJECT)?;
        let counters = ebpf
            .take_map("COUNTERS")
            .ok_or(DatapathError::MissingMap("COUNTERS"))?;
        let counters = CountersHandle(Arc::new(
            PerCpuArray::try_from(counters).map_err(map_err("COUNTERS"))?,
        ));
        let mut dp = Self {
            ebpf,
            counters,
            pin_dir: cfg.pin_dir.clone(),
            rules: Arc::new(arc_swap::ArcSwap::from_pointee(state.rules.clone())),
            identities,
        };
        dp.sync(state, &ifaces)?;
        for name in [PROG_FROM_EP, PROG_TO_EP, PROG_FROM_UPLINK] {
            let prog: &mut SchedClassifier = dp
                .ebpf
                .program_mut(name)
                .ok_or(DatapathError::Program {
                    program: name,
                    source: ProgramError::NotLoaded,
                })?
                .try_into()
                .map_err(prog_err(name))?;
            prog.load().map_err(prog_err(name))?;
        }
        let mut wanted = HashSet::new();
        for (iface, _) in &ifaces {
            for (name, hook, suffix) in [
                (PROG_FROM_EP, TcAttachType::Ingress, "ingress"),
                (PROG_TO_EP, TcAttachType::Egress, "egress"),
            ] {
                let pin = links_dir.join(format!("{suffix}-{}", link_pin_name(iface)));
                wanted.insert(pin.clone());
                dp.attach(name, iface, hook, &pin)?;
            }
        }
        for iface in &cfg.uplinks {
            let pin = links_dir.join(format!("uplink-{}", link_pin_name(iface)));
            wanted.insert(pin.clone());
            dp.attach(PROG_FROM_UPLINK, iface, TcAttachType::Ingress, &pin)?;
        }
        // Links of interfaces no longer configured: detach.
        if let Ok(rd) = std::fs::read_dir(&links_dir) {
            for e in rd.flatten() {
                if !wanted.contains(&e.path()) {
                    detach_pinned(&e.path())?;
                }
            }
        }
        PolicyRoute::DEFAULT.install()?;
        Ok(dp)
    }

    /// Attaches `prog` to `iface` with TCX, or swaps it into the link pinned at `pin`.
    fn attach(
        &mut self,
        name: &'static str,
        iface: &str,
        hook: TcAttachType,
        pin: &Path,
    ) -> Result<(), DatapathError> {
        let prog: &mut SchedClassifier = self
            .ebpf
            .program_mut(name)
            .ok_or(DatapathError::Program {
                program: name,
                source: ProgramError::NotLoaded,
            })?
            .try_into()
            .map_err(prog_err(name))?;
        let link_err = |source| DatapathError::Link {
            path: pin.to_owned(),
            source,
        };
        let id = match PinnedLink::from_pin(pin) {
            Ok(old) => {
                // Restart: replace the running program in place (no gap in enforcement).
                let fd: FdLink = old.unpin().map_err(io_err("unpinning", pin))?;
                match SchedClassifierLink::try_from(fd) {
                    Ok(link) => prog.attach_to_link(link).map_err(prog_err(name))?,
                    Err(_) => prog
                        .attach_with_options(
                            iface,
                            hook,
                            TcAttachOptions::TcxOrder(LinkOrder::default()),
                        )
                        .map_err(prog_err(name))?,
                }
            }
            Err(_) => prog
                .attach_with_options(iface, hook, TcAttachOptions::TcxOrder(LinkOrder::default()))
                .map_err(prog_err(name))?,
        };
        let link = prog.take_link(id).map_err(prog_err(name))?;
        let fd: FdLink = link.try_into().map_err(link_err)?;
        let _ = std::fs::remove_file(pin);
        fd.pin(pin).map_err(|e| DatapathError::Io {
            what: "pinning link",
            path: pin.to_owned(),
            source: match e {
                aya::pin::PinError::SyscallError(s) => s.io_error,
                other => std::io::Error::other(other.to_string()),
            },
        })?;
        Ok(())
    }

    /// Applies a recompiled policy (same endpoints) to the live maps: the programs see new
    /// entries at once; established flows keep their conntrack verdict.
    pub fn update(&mut self, state: &MapState) -> Result<(), DatapathError> {
        let ifaces = endpoint_ifaces(state)?;
        self.sync(state, &ifaces)?;
        self.rules.store(Arc::new(state.rules.clone()));
        Ok(())
    }

    /// Makes ENDPOINTS, IPCACHE4/6 and POLICY hold exactly `state` (insert, then delete stale).
    fn sync(&mut self, state: &MapState, ifaces: &[(String, u32)]) -> Result<(), DatapathError> {
        {
            let mut m: BpfHashMap<&mut MapData, EndpointKey, EndpointInfo> = self
                .map_mut("ENDPOINTS")?
                .try_into()
                .map_err(map_err("ENDPOINTS"))?;
            let mut want = HashSet::new();
            for ((ep, id, flags), (_, idx)) in state.endpoints.iter().zip(ifaces) {
                for a in &ep.addresses {
                    let k = ep_key(*a);
                    want.insert(k);
                    let v = EndpointInfo {
                        identity: *id,
                        ifindex: *idx,
                        flags: *flags,
                        _pad: 0,
                    };
                    m.insert(k, v, 0).map_err(map_err("ENDPOINTS"))?;
                }
            }
            let stale: Vec<EndpointKey> =
                m.keys().flatten().filter(|k| !want.contains(k)).collect();
            for k in stale {
                m.remove(&k).map_err(map_err("ENDPOINTS"))?;
            }
        }
        let v4: Vec<_> = state
            .ipcache
            .iter()
            .filter_map(|e| match e.addr {
                IpAddr::V4(a) => Some((e.prefix, a.octets(), e.identity)),
                IpAddr::V6(_) => None,
            })
            .collect();
        sync_lpm(self.map_mut("IPCACHE4")?, "IPCACHE4", &v4)?;
        let v6: Vec<_> = state
            .ipcache
            .iter()
            .filter_map(|e| match e.addr {
                IpAddr::V6(a) => Some((e.prefix, a.octets(), e.identity)),
                IpAddr::V4(_) => None,
            })
            .collect();
        sync_lpm(self.map_mut("IPCACHE6")?, "IPCACHE6", &v6)?;
        {
            let mut m: BpfHashMap<&mut MapData, PolicyKey, PolicyEntry> = self
                .map_mut("POLICY")?
                .try_into()
                .map_err(map_err("POLICY"))?;
            let mut want = HashSet::new();
            for (k, v) in &state.policy {
                let k = k.key();
                want.insert(k);
                m.insert(k, *v, 0).map_err(map_err("POLICY"))?;
            }
            let stale: Vec<PolicyKey> = m.keys().flatten().filter(|k| !want.contains(k)).collect();
            for k in stale {
                m.remove(&k).map_err(map_err("POLICY"))?;
            }
        }
        Ok(())
    }

    fn map_mut(&mut self, name: &'static str) -> Result<&mut aya::maps::Map, DatapathError> {
        self.ebpf
            .map_mut(name)
            .ok_or(DatapathError::MissingMap(name))
    }

    /// Registers a transparent listener: the redirect target for policy entries with
    /// `proxy_port == port`. The kernel drops the entry when the socket closes.
    pub fn register_listener(
        &mut self,
        port: u16,
        listener: &tokio::net::TcpListener,
    ) -> Result<(), DatapathError> {
        let mut m: SockHash<&mut MapData, u32> = self
            .map_mut("PROXY_LISTENERS")?
            .try_into()
            .map_err(map_err("PROXY_LISTENERS"))?;
        m.insert(u32::from(port), listener.as_raw_fd(), 0)
            .map_err(map_err("PROXY_LISTENERS"))
    }

    /// Sums the per-CPU counters.
    pub fn counters(&self) -> Result<Counters, DatapathError> {
        self.counters.read()
    }

    /// A handle on the counters for `/metrics`.
    pub fn counters_handle(&self) -> CountersHandle {
        self.counters.clone()
    }

    /// Number of conntrack entries (for tests and `strait datapath status`).
    pub fn conntrack_len(&self) -> Result<usize, DatapathError> {
        let m: BpfHashMap<&MapData, CtKey, CtEntry> = self
            .ebpf
            .map("CT")
            .ok_or(DatapathError::MissingMap("CT"))?
            .try_into()
            .map_err(map_err("CT"))?;
        Ok(m.keys().flatten().count())
    }

    /// Starts a task that turns ring-buffer events into flow records (`strait observe`).
    pub fn spawn_events(
        &mut self,
        flows: Flows,
    ) -> Result<tokio::task::JoinHandle<()>, DatapathError> {
        let map = self
            .ebpf
            .take_map("EVENTS")
            .ok_or(DatapathError::MissingMap("EVENTS"))?;
        let rb: RingBuf<MapData> = RingBuf::try_from(map).map_err(map_err("EVENTS"))?;
        // SAFETY: the ring buffer owns its fd and is moved into the AsyncFd, which
        // deregisters before dropping it; the fd stays open while registered.
        let fd = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(rb, tokio::io::Interest::READABLE)
        }
        .map_err(|e| DatapathError::Io {
            what: "polling",
            path: PathBuf::from("EVENTS"),
            source: e.into(),
        })?;
        let rules = self.rules.clone();
        let ids = self.identities.clone();
        Ok(tokio::spawn(async move {
            let mut fd = fd;
            loop {
                let mut guard = match fd.readable_mut().await {
                    Ok(g) => g,
                    Err(e) => {
                        tracing::warn!(error = %e, "datapath events: poll failed; stopping");
                        return;
                    }
                };
                let rb = guard.get_inner_mut();
                while let Some(item) = rb.next() {
                    if item.len() >= std::mem::size_of::<Event>() {
                        // SAFETY: the item holds at least size_of::<Event>() bytes written by
                        // the program as an `Event` (repr(C), any bit pattern valid).
                        let ev: Event = unsafe { std::ptr::read_unaligned(item.as_ptr().cast()) };
                        flows.emit(event_flow(&ev, &rules.load(), &ids));
                    }
                }
                guard.clear_ready();
            }
        }))
    }

    /// Leaves programs and maps pinned (policy stays enforced); only this process's handles
    /// are closed.
    pub fn keep(self) {
        tracing::info!(pin_dir = %self.pin_dir.display(), "datapath stays attached (pinned); `strait datapath down` removes it");
    }
}

/// Shared read access to the per-CPU counter array.
#[derive(Clone)]
pub struct CountersHandle(Arc<PerCpuArray<MapData, u64>>);

impl CountersHandle {
    pub fn read(&self) -> Result<Counters, DatapathError> {
        let get = |i: u32| -> Result<u64, DatapathError> {
            Ok(self.0.get(&i, 0).map_err(map_err("COUNTERS"))?.iter().sum())
        };
        let mut c = Counters {
            packets: get(counter::PACKETS)?,
            bytes: get(counter::BYTES)?,
            allowed: get(counter::ALLOWED)?,
            redirected: get(counter::REDIRECTED)?,
            ct_hits: get(counter::CT_HITS)?,
            ct_created: get(counter::CT_CREATED)?,
            proxy_return: get(counter::PROXY_RETURN)?,
            drops: BTreeMap::new(),
        };
        for r in 1..=drop::MAX {
            let n = get(counter::DROP_BASE + u32::from(r))?;
            if n > 0 {
                *c.drops.entry(drop_reason(r)).or_default() += n;
            }
        }
        Ok(c)
    }

    /// Appends the counters in OpenMetrics text (before `# EOF`).
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let Ok(c) = self.read() else { return };
        for (name, help, v) in [
            (
                "strait_datapath_packets",
                "Packets seen by the tc programs.",
                c.packets,
            ),
            (
                "strait_datapath_bytes",
                "Bytes seen by the tc programs.",
                c.bytes,
            ),
            (
                "strait_datapath_allowed",
                "Packets allowed by L3/L4 policy.",
                c.allowed,
            ),
            (
                "strait_datapath_redirected",
                "Packets assigned to strait's transparent listener.",
                c.redirected,
            ),
            (
                "strait_datapath_conntrack_hits",
                "Packets decided by an existing conntrack entry.",
                c.ct_hits,
            ),
            (
                "strait_datapath_conntrack_created",
                "New conntrack entries (new flows).",
                c.ct_created,
            ),
            (
                "strait_datapath_proxy_return",
                "Reply packets delivered to strait's own sockets.",
                c.proxy_return,
            ),
        ] {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name}_total {v}\n"
            );
        }
        let _ = write!(
            out,
            "# HELP strait_datapath_drops Packets dropped by the datapath, by reason.\n# TYPE strait_datapath_drops counter\n"
        );
        for (reason, n) in &c.drops {
            let _ = writeln!(
                out,
                "strait_datapath_drops_total{{reason=\"{reason}\"}} {n}"
            );
        }
    }
}

/// Makes an ipcache trie hold exactly `want` (prefix, address bytes, identity).
fn sync_lpm<const N: usize>(
    map: &mut aya::maps::Map,
    name: &'static str,
    want: &[(u8, [u8; N], u32)],
) -> Result<(), DatapathError>
where
    [u8; N]: aya::Pod,
{
    let mut trie: LpmTrie<&mut MapData, [u8; N], IpcacheInfo> =
        map.try_into().map_err(map_err(name))?;
    for (prefix, addr, identity) in want {
        let k = LpmKey::new(u32::from(*prefix), *addr);
        let v = IpcacheInfo {
            identity: *identity,
        };
        trie.insert(&k, v, 0).map_err(map_err(name))?;
    }
    let stale: Vec<_> = trie
        .keys()
        .flatten()
        .filter(|k| {
            !want
                .iter()
                .any(|(p, a, _)| u32::from(*p) == k.prefix_len() && *a == k.data())
        })
        .collect();
    for k in stale {
        trie.remove(&k).map_err(map_err(name))?;
    }
    Ok(())
}

/// A map pinned by a build with other key/value sizes would be reused blindly by aya (and
/// the programs then refused by the verifier, or worse, read old entries with a new meaning):
/// refuse with a way out instead. `expect` is (map name, key size, value size); maps not
/// pinned yet are fine.
pub(crate) fn check_pinned(
    maps_dir: &Path,
    expect: &[(&str, usize, usize)],
) -> Result<(), DatapathError> {
    for &(name, key, value) in expect {
        let path = maps_dir.join(name);
        if !path.exists() {
            continue;
        }
        let info = aya::maps::MapData::from_pin(&path)
            .and_then(|m| m.info())
            .map_err(map_err("pinned map"))?;
        if info.key_size() as usize != key || info.value_size() as usize != value {
            return Err(DatapathError::Incompatible(path));
        }
    }
    Ok(())
}

fn ep_key(a: IpAddr) -> EndpointKey {
    let (addr, family) = addr16(a);
    EndpointKey::new(family, datapath_bpf::addr_words(&addr))
}

fn addr16(a: IpAddr) -> ([u8; 16], u8) {
    let mut out = [0u8; 16];
    match a {
        IpAddr::V4(v) => {
            out[..4].copy_from_slice(&v.octets());
            (out, FAMILY_V4)
        }
        IpAddr::V6(v) => (v.octets(), FAMILY_V6),
    }
}

fn ip_of(family: u8, b: &[u8; 16]) -> IpAddr {
    if family == FAMILY_V4 {
        IpAddr::from([b[0], b[1], b[2], b[3]])
    } else {
        IpAddr::from(*b)
    }
}

/// One datapath event as a flow record.
pub fn event_flow(ev: &Event, rules: &[String], ids: &Identities) -> FlowRecord {
    let src = std::net::SocketAddr::new(ip_of(ev.family, &ev.saddr), ev.sport);
    let dst = std::net::SocketAddr::new(ip_of(ev.family, &ev.daddr), ev.dport);
    let verdict = if ev.kind == datapath_bpf::EVENT_DROP {
        Verdict::Dropped
    } else if ev.action == datapath_bpf::ACTION_REDIRECT {
        Verdict::Redirected
    } else {
        Verdict::Forwarded
    };
    let proto = match ev.proto {
        6 => "TCP".to_owned(),
        17 => "UDP".to_owned(),
        p => format!("IP/{p}"),
    };
    let listener = match ev.hook {
        0 => "datapath:from-endpoint",
        2 => "datapath:from-uplink",
        _ => "datapath:to-endpoint",
    };
    FlowRecord {
        source_identity: Some(ev.src_identity).filter(|i| *i != 0),
        destination_identity: Some(ev.dst_identity).filter(|i| *i != 0),
        policy: rules.get(ev.rule as usize).cloned().or_else(|| {
            (ev.kind == datapath_bpf::EVENT_DROP && ev.reason == drop::POLICY_DENIED).then(|| {
                format!(
                    "default deny ({} → {})",
                    ids.describe(ev.src_identity),
                    ids.describe(ev.dst_identity)
                )
            })
        }),
        drop_reason: (ev.kind == datapath_bpf::EVENT_DROP)
            .then(|| drop_reason(ev.reason).to_owned()),
        ..FlowRecord::new(
            std::time::SystemTime::now(),
            src,
            dst.to_string(),
            listener.into(),
            proto,
            verdict,
        )
    }
}

fn detach_pinned(path: &Path) -> Result<(), DatapathError> {
    match PinnedLink::from_pin(path) {
        Ok(l) => {
            // Unpinning drops the last reference: the kernel detaches the program.
            let fd = l.unpin().map_err(io_err("unpinning", path))?;
            drop(fd);
            Ok(())
        }
        Err(_) => std::fs::remove_file(path).map_err(io_err("removing", path)),
    }
}

/// Detaches every pinned link, removes pinned maps and the pin directory, and the policy route
/// (`strait datapath down`, `on_exit: detach`). The sockmap's maps go too once its spliced
/// sockets have closed (waiting up to `wait`; see [`sockmap::unload`]), else they stay with the
/// directory. Idempotent.
pub fn unload(pin_dir: &Path, wait: std::time::Duration) -> Result<Vec<String>, DatapathError> {
    let mut done = sockmap::unload(pin_dir, wait)?;
    let links = pin_dir.join("links");
    if let Ok(rd) = std::fs::read_dir(&links) {
        for e in rd.flatten() {
            detach_pinned(&e.path())?;
            done.push(format!("detached {}", e.path().display()));
        }
    }
    let maps = pin_dir.join("maps");
    if let Ok(rd) = std::fs::read_dir(&maps) {
        for e in rd.flatten() {
            if sockmap::MAPS.iter().any(|m| e.file_name() == *m) {
                continue; // kept by sockmap::unload: spliced sockets are still open
            }
            std::fs::remove_file(e.path()).map_err(io_err("removing", &e.path()))?;
            done.push(format!("unpinned {}", e.path().display()));
        }
    }
    for d in [&links, &maps, &pin_dir.to_path_buf()] {
        let empty = d.read_dir().is_ok_and(|mut r| r.next().is_none());
        if empty {
            std::fs::remove_dir(d).map_err(io_err("removing", d))?;
        }
    }
    // The policy route is shared: keep it while another strait datapath (another pin
    // directory with attached links on the same bpffs) still needs it.
    let others: Vec<PathBuf> = pin_dir
        .parent()
        .and_then(|p| std::fs::read_dir(p).ok())
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.join("links")
                .read_dir()
                .is_ok_and(|mut d| d.next().is_some())
        })
        .collect();
    if others.is_empty() {
        PolicyRoute::DEFAULT.remove()?;
        done.push("removed policy route (fwmark 0x200/0xf00 → table 2004)".into());
    } else {
        done.push(format!(
            "kept the policy route: still used by {}",
            others
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(done)
}

/// Addresses of the host's interfaces (the host identity in the ipcache).
pub fn host_addresses() -> Vec<IpAddr> {
    crate::socket::interface_addresses()
}
