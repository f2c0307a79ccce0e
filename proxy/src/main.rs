//! The `strait` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use strait::config::{Config, ConfigError};
use strait::flows::Verdict;
use strait::observe;

/// Exit status for a configuration that does not load (EX_USAGE).
const EXIT_CONFIG: u8 = 64;

#[derive(Parser)]
#[command(name = "strait", version, about = "Node-local L7 proxy: HTTP/1.1, HTTP/2, gRPC, Kafka, TCP", long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the proxy until SIGTERM/SIGINT (then drain in-flight requests).
    Run {
        /// Configuration file (YAML; see docs/config.md).
        #[arg(short, long, env = "STRAIT_CONFIG")]
        config: PathBuf,
    },
    /// Validate a configuration file and exit (0 valid, 64 invalid).
    Check {
        #[arg(short, long, env = "STRAIT_CONFIG")]
        config: PathBuf,
    },
    /// Create (`up`) or remove (`down`) the config's endpoints as network namespaces joined to
    /// the host by veth pairs (needs root).
    Lab {
        #[command(subcommand)]
        cmd: LabCmd,
    },
    /// Turn socket-layer acceleration (sockmap) on or off, or show its state and counters,
    /// through the maps a running (or exited) strait left pinned.
    Sockmap {
        #[command(subcommand)]
        cmd: SockmapCmd,
    },
    /// Manage the pinned eBPF datapath.
    Datapath {
        #[command(subcommand)]
        cmd: DatapathCmd,
    },
    /// Inspect WASM filter modules.
    Filter {
        #[command(subcommand)]
        cmd: FilterCmd,
    },
    /// Follow flow records from a running strait's admin endpoint.
    Observe {
        /// Admin endpoint address (the config's `admin.address`).
        #[arg(long, default_value = "127.0.0.1:9901")]
        admin: SocketAddr,
        /// Only records with this verdict.
        #[arg(long, value_enum)]
        verdict: Option<VerdictArg>,
        /// Only records whose path starts with this prefix.
        #[arg(long)]
        path: Option<String>,
        /// Only records of this listener.
        #[arg(long)]
        listener: Option<String>,
        /// Print the raw JSON lines instead of one human line per flow.
        #[arg(long)]
        json: bool,
    },
    /// Internal: compile one WASM module (stdin) to wasmtime's precompiled form (stdout), for a
    /// running strait, which never compiles in its own process.
    #[command(name = strait::wasm::compile::SUBCOMMAND, hide = true)]
    CompileWasm {
        #[arg(long)]
        memory_limit: usize,
        #[arg(long)]
        max_vms: u32,
    },
}

#[derive(Subcommand)]
enum FilterCmd {
    /// Report a module's ABI version, exports and the imports strait lacks (exit 1 if it
    /// cannot be loaded as a proxy-wasm filter).
    Check {
        /// The .wasm (or .wat) file.
        module: PathBuf,
    },
}

#[derive(Subcommand)]
enum LabCmd {
    Up { config: PathBuf },
    Down { config: PathBuf },
}

#[derive(Subcommand)]
enum DatapathCmd {
    /// Detach the programs, unpin the maps and remove the policy route.
    Down {
        #[arg(short, long, env = "STRAIT_CONFIG")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum SockmapCmd {
    /// Splice new connections again.
    On {
        #[arg(short, long, env = "STRAIT_CONFIG")]
        config: PathBuf,
    },
    /// Stop splicing: no new socket is inserted, spliced connections move to TCP on their next
    /// send (bytes already spliced are read first).
    Off {
        #[arg(short, long, env = "STRAIT_CONFIG")]
        config: PathBuf,
    },
    /// Print whether splicing is on and the counters.
    Status {
        #[arg(short, long, env = "STRAIT_CONFIG")]
        config: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
#[value(rename_all = "SCREAMING_SNAKE_CASE")]
enum VerdictArg {
    Forwarded,
    Denied,
    Error,
    Dropped,
    Redirected,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Cmd::CompileWasm {
        memory_limit,
        max_vms,
    } = cli.cmd
    {
        // Before the log subscriber: the parent reads this child's stderr as its message.
        return ExitCode::from(strait::wasm::compile::child_main(
            strait::wasm::compile::EngineSettings {
                memory_limit,
                max_vms,
            },
        ));
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli.cmd {
        Cmd::Lab { cmd } => {
            let (path, up) = match cmd {
                LabCmd::Up { config } => (config, true),
                LabCmd::Down { config } => (config, false),
            };
            let c = match Config::load(&path) {
                Ok(c) => c,
                Err(e) => return config_error(&e),
            };
            let eps: Vec<strait::lab::LabEndpoint> = c
                .endpoints
                .iter()
                .map(|e| strait::lab::LabEndpoint {
                    name: e.name.clone(),
                    interface: e.interface.clone(),
                    netns: e.netns.clone(),
                    addresses: e.addresses.clone(),
                })
                .collect();
            let r = if up {
                strait::lab::up(&eps)
            } else {
                strait::lab::down(&eps)
            };
            match r {
                Ok(lines) => {
                    for l in lines {
                        println!("{l}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("strait lab: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Sockmap { cmd } => {
            let (config, set) = match cmd {
                SockmapCmd::On { config } => (config, Some(true)),
                SockmapCmd::Off { config } => (config, Some(false)),
                SockmapCmd::Status { config } => (config, None),
            };
            let c = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => return config_error(&e),
            };
            match sockmap_cmd(&c.datapath.pin_dir, set) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("strait sockmap: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Datapath {
            cmd: DatapathCmd::Down { config },
        } => {
            let c = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => return config_error(&e),
            };
            match strait::datapath::unload(&c.datapath.pin_dir, std::time::Duration::from_secs(5)) {
                Ok(lines) => {
                    for l in lines {
                        println!("{l}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("strait datapath down: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Filter {
            cmd: FilterCmd::Check { module },
        } => match strait::wasm::check::check_module(&module) {
            Ok(r) => {
                print!("{}", r.render(&module));
                if r.ok() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(e) => {
                eprintln!("strait filter check: {e}");
                ExitCode::FAILURE
            }
        },
        Cmd::Check { config } => match Config::load(&config) {
            Ok(c) => {
                // Filters are compiled and started (on_vm_start, on_configure) as `run` would.
                if let Err(code) = check_filters(&c) {
                    return code;
                }
                if let Err(code) = check_datapath(&c) {
                    return code;
                }
                let names: Vec<_> = c
                    .listeners
                    .iter()
                    .map(|l| format!("{} ({})", l.name, l.address))
                    .collect();
                println!(
                    "{}: ok, {} listener(s): {}",
                    config.display(),
                    names.len(),
                    names.join(", ")
                );
                ExitCode::SUCCESS
            }
            Err(e) => config_error(&e),
        },
        Cmd::Run { config } => match Config::load(&config) {
            Ok(c) => match run(c) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("strait: {e:#}");
                    let bad_filter = e
                        .downcast_ref::<strait::ServeError>()
                        .is_some_and(strait::ServeError::is_config);
                    if bad_filter {
                        ExitCode::from(EXIT_CONFIG)
                    } else {
                        ExitCode::FAILURE
                    }
                }
            },
            Err(e) => config_error(&e),
        },
        Cmd::CompileWasm { .. } => unreachable!("handled above"),
        Cmd::Observe {
            admin,
            verdict,
            path,
            listener,
            json,
        } => {
            let filter = observe::Filter {
                verdict: verdict.map(|v| match v {
                    VerdictArg::Forwarded => Verdict::Forwarded,
                    VerdictArg::Denied => Verdict::Denied,
                    VerdictArg::Error => Verdict::Error,
                    VerdictArg::Dropped => Verdict::Dropped,
                    VerdictArg::Redirected => Verdict::Redirected,
                }),
                path,
                listener,
            };
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("strait: cannot start runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(observe::follow(
                admin,
                &filter,
                json,
                std::io::stdout().lock(),
            )) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("strait observe: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn check_filters(c: &Config) -> Result<(), ExitCode> {
    if !c.listeners.iter().any(|l| !l.filters.is_empty()) {
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("strait: cannot start runtime: {e}");
            ExitCode::FAILURE
        })?;
    // The same compiler child as `run`, so a check also proves it can be started.
    match rt.block_on(strait::load_filters(
        c,
        strait::wasm::CompileMode::this_binary(),
    )) {
        Ok(_) => Ok(()),
        Err(e) => {
            eprintln!("{}: {e}", c.source.display());
            Err(ExitCode::from(EXIT_CONFIG))
        }
    }
}

/// Policies must compile and every endpoint interface must exist (when the datapath is on).
fn check_datapath(c: &Config) -> Result<(), ExitCode> {
    let ids = strait::policy::Identities::from_endpoints(&c.endpoints);
    let compiled =
        strait::policy::load(&c.policies).and_then(|p| strait::policy::compile(c, &ids, &p, &[]));
    if let Err(e) = compiled {
        eprintln!("{e}");
        return Err(ExitCode::from(EXIT_CONFIG));
    }
    if c.datapath.enabled {
        if !strait::datapath::is_built() {
            eprintln!(
                "{}: {}",
                c.source.display(),
                strait::datapath::DatapathError::NotBuilt
            );
            return Err(ExitCode::from(EXIT_CONFIG));
        }
        for e in &c.endpoints {
            if strait::datapath::ifindex(&e.interface).is_none() {
                eprintln!(
                    "{}: endpoints `{}`: interface `{}` does not exist (run `strait lab up {}` or create the veth first)",
                    c.source.display(),
                    e.name,
                    e.interface,
                    c.source.display()
                );
                return Err(ExitCode::from(EXIT_CONFIG));
            }
        }
        for up in &c.datapath.uplinks {
            if strait::datapath::ifindex(up).is_none() {
                eprintln!(
                    "{}: {}",
                    c.source.display(),
                    strait::datapath::DatapathError::NoUplink(up.clone())
                );
                return Err(ExitCode::from(EXIT_CONFIG));
            }
        }
    }
    Ok(())
}

fn config_error(e: &ConfigError) -> ExitCode {
    eprintln!("{e}");
    ExitCode::from(EXIT_CONFIG)
}

fn run(config: Config) -> anyhow::Result<()> {
    // One worker runs on tokio's current-thread scheduler: every task, the I/O driver and the
    // timers share the thread that accepts, so a wake-up is a queue push, never a cross-thread
    // notify. With HTTP/2 load on one core that is 1.1–1.6x the requests per second of a
    // one-worker multi-thread runtime at about half the p99 (benches/README.md, 2026-11-23).
    let mut builder = if config.runtime.workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(config.runtime.workers);
        b
    };
    let rt = builder
        .thread_name("strait-worker")
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    rt.block_on(async move {
        tracing::info!(
            config = %config.source.display(),
            workers = config.runtime.workers,
            version = env!("CARGO_PKG_VERSION"),
            "starting strait"
        );
        let server = strait::Server::bind(config, strait::wasm::CompileMode::this_binary()).await?;
        if let Some(a) = server.admin_addr() {
            tracing::info!(address = %a, "admin endpoint: /metrics /ready /flows");
        }
        let shutdown = CancellationToken::new();
        let signals = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown requested: no new connections, draining in-flight requests");
            signals.cancel();
            wait_for_signal().await;
            tracing::warn!("second signal: exiting now");
            std::process::exit(1);
        });
        server.run(shutdown).await;
        tracing::info!("stopped");
        Ok(())
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the process can still be killed; never exit on its own.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// `strait sockmap on|off|status` on the pinned maps.
fn sockmap_cmd(
    pin_dir: &std::path::Path,
    set: Option<bool>,
) -> Result<(), strait::datapath::DatapathError> {
    let mut p = strait::datapath::sockmap::Pinned::open(pin_dir)?;
    if let Some(on) = set {
        p.set_enabled(on)?;
    }
    let c = p.counters()?;
    println!(
        "sockmap {} (maps in {})",
        if p.enabled()? { "on" } else { "off" },
        pin_dir.join("maps").display()
    );
    println!(
        "sockets in the sockhash now {}\ninserted {} closed {} insert_failed {}\nredirected {} messages / {} bytes, passed {} messages\nmisses {} fallbacks {} backpressure: throttled {} resumed {}\npolicy_refused {} policy_denied_messages {}\nadaptive: bypassed {} connections; closed short {} long {}",
        p.sockets(),
        c.inserted,
        c.closed,
        c.insert_failed,
        c.redirected_msgs,
        c.redirected_bytes,
        c.passed_msgs,
        c.misses,
        c.fallbacks,
        c.backpressure,
        c.resumed,
        c.policy_refused,
        c.denied_msgs,
        c.bypassed,
        c.short_conns,
        c.long_conns
    );
    Ok(())
}
