//! strait-bench: benchmark harness for strait.
//!
//! `strait-bench peers` compares strait against nginx and haproxy as reverse proxies in front
//! of one shared static upstream, over HTTP/1.1 (wrk) and HTTP/2 prior knowledge (h2load).
//! `strait-bench filters` measures what WASM filters cost: per-request filter work, VM
//! instantiation, throughput with a minimal filter, and idle RSS with filters loaded.
//! `strait-bench paths` compares network paths between two same-node endpoints: plain veth,
//! strait's eBPF datapath (L4 policy), redirection through strait's transparent listener, and
//! sockmap splicing. `strait-bench halfclose` is the half-close stress test of sockmap
//! splicing (byte-exact echo with a concurrent shutdown). `strait-bench kafka` measures the
//! Kafka policy verdict per Produce request and produce throughput through strait vs straight
//! to the broker. See benches/README.md.

mod configs;
mod cpucap;
mod filters;
mod halfclose;
mod kafka;
mod load;
mod paths;
mod peers;
mod procs;
mod report;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "strait-bench", version, about = "Benchmark harness for strait")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// strait vs nginx vs haproxy (same upstream, same worker count), HTTP/1.1 and HTTP/2.
    Peers(peers::PeersArgs),
    /// WASM filter costs: per-request work, VM instantiation, rps with a filter, idle RSS.
    Filters(filters::FiltersArgs),
    /// Network paths between two netns endpoints: veth vs eBPF datapath vs strait proxy vs
    /// sockmap.
    Paths(paths::PathsArgs),
    /// Half-close stress test of sockmap splicing: echo with shutdown(SHUT_WR), byte-exact.
    Halfclose(halfclose::HalfcloseArgs),
    /// Kafka: policy verdict per Produce request (in process), and produce throughput direct
    /// vs through strait vs through strait with a Kafka policy (tansu, confluent-kafka).
    Kafka(kafka::KafkaArgs),
    /// (internal) The `paths` server, run inside the server network namespace.
    #[command(hide = true)]
    PathsServer(paths::ServerArgs),
    /// (internal) The `paths` client, run inside the client network namespace.
    #[command(hide = true)]
    PathsClient(paths::ClientArgs),
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Peers(args) => peers::run(args),
        Cmd::Filters(args) => filters::run(args),
        Cmd::Paths(args) => paths::run(args),
        Cmd::Halfclose(args) => halfclose::run(args),
        Cmd::Kafka(args) => kafka::run(args),
        Cmd::PathsServer(args) => paths::server(args),
        Cmd::PathsClient(args) => paths::client(args),
    }
}
