//! Where filter modules are compiled, and the engine configuration both sides share.
//!
//! Compiling with Cranelift inside the serving process leaves its footprint there for good: the
//! pages of the binary's text that Cranelift ran stay resident, and so does the malloc heap it
//! grew (together most of the 18 MiB of idle RSS three small filters used to add). [`CompileMode::Subprocess`] compiles each
//! module in a short-lived child instead, the strait binary itself run as
//! `strait __compile-wasm`: the module's bytes go to its stdin, it builds an engine with
//! [`engine_config`] from the same settings, and `Engine::precompile_module`'s artifact comes
//! back on its stdout. The serving process only deserializes it, with an engine that has no
//! compiler at all (see [`engine`]).
//!
//! Child protocol: arguments from [`EngineSettings::args`]; exit 0 with the artifact on
//! stdout; exit [`EXIT_INVALID`] with wasmtime's message on stderr when the module does not
//! compile; anything else is a failure of the child itself.
//!
//! The child's stdout is an unnamed file (`O_TMPFILE`) in `wasm.artifact_dir`, and the module is
//! mapped from it (`Module::deserialize_open_file`) rather than copied into the heap: only the
//! pages of code, metadata and data segments that actually run or get read become resident,
//! as clean page cache the kernel can drop, and the copy-on-write memory images map the same
//! file. The file has no name, so there is nothing to clean up; its space is freed when the
//! last `Module` using it is dropped (after a reload, once the old VMs drained). When no file
//! can be made there, the artifact comes back through a pipe and is copied as before; when the
//! file cannot be mapped (a `noexec` mount), it is read back and copied.

use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use wasmtime::{Engine, InstanceAllocationStrategy, Module, PoolingAllocationConfig};

use super::WasmError;
use crate::config::WasmConfig;

/// The hidden subcommand of the strait binary that compiles one module (see the module docs).
pub const SUBCOMMAND: &str = "__compile-wasm";

/// The child's exit status when the module is not valid WebAssembly (EX_DATAERR).
pub const EXIT_INVALID: i32 = 65;

/// How [`super::Runtime`] compiles modules. Library users pick one explicitly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompileMode {
    /// Cranelift runs in this process (tests, benchmarks, one-shot tools): simple, but its
    /// code and heap stay resident.
    InProcess,
    /// Each module is compiled by `<binary> __compile-wasm`, a strait binary with the same
    /// wasmtime (the artifact's header names wasmtime's version and the engine settings; a
    /// mismatch is refused when the module is loaded).
    Subprocess(PathBuf),
}

impl CompileMode {
    /// The running strait binary as the compiler. `/proc/self/exe` rather than the path it was
    /// started from: it stays this build even after the file on disk is replaced by an upgrade,
    /// so a hot reload never meets an artifact from another wasmtime.
    pub fn this_binary() -> Self {
        Self::Subprocess(PathBuf::from("/proc/self/exe"))
    }
}

/// The settings the engine configuration depends on: all of them travel to the child, so it
/// cannot build a different engine than the serving process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineSettings {
    /// Linear memory cap per VM (`wasm.memory_limit`).
    pub memory_limit: usize,
    /// Pool slots (`wasm.max_vms`).
    pub max_vms: u32,
}

impl EngineSettings {
    pub fn of(settings: &WasmConfig) -> Self {
        Self {
            memory_limit: settings.memory_limit,
            max_vms: settings.max_vms,
        }
    }

    /// The child's arguments after [`SUBCOMMAND`] (parsed by `strait`'s CLI).
    pub fn args(&self) -> [String; 4] {
        [
            "--memory-limit".into(),
            self.memory_limit.to_string(),
            "--max-vms".into(),
            self.max_vms.to_string(),
        ]
    }
}

/// The one engine configuration, for the serving process and the compiler child alike.
pub fn engine_config(s: EngineSettings) -> wasmtime::Config {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_memories(s.max_vms)
        .total_core_instances(s.max_vms)
        .total_tables(s.max_vms)
        .max_memory_size(s.memory_limit);
    let mut cfg = wasmtime::Config::new();
    cfg.epoch_interruption(true)
        .memory_init_cow(true)
        // One compile thread: on small nodes a parallel compile (reload) would take every
        // core from the request path, and each compile thread keeps its own malloc arena.
        .parallel_compilation(false)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    // Leave out of the artifact what strait does not need. The serving process maps the whole
    // artifact (see the module docs), so these were resident pages; together about a quarter
    // of a small filter's artifact (allow_list: 542 -> 413 KiB).
    // - ELF symbols for the wasm functions: for tools that read a `.cwasm` file (`wasmtime
    //   objdump`, profilers); our artifact files have no name and vanish with the module.
    // - The native-to-wasm address map: only for the wasm offsets in a `WasmBacktrace`. A trap
    //   during a request is logged as its kind (`vm.rs`, `describe`); a failure at VM start
    //   still prints the backtrace's function names, just without offsets.
    // - `.eh_frame` for native unwinders, registered with libgcc at load. wasmtime walks wasm
    //   frames by frame pointer (its traps and backtraces do not need it) and catches host
    //   panics before they reach wasm frames. Only a native backtrace (a debugger, a
    //   `RUST_BACKTRACE` capture inside a host call) now stops at the first wasm frame.
    cfg.debug_symbols(false)
        .generate_address_map(false)
        .native_unwind_info(false);
    // For profiling filters (docs/proxy-wasm.md): /tmp/perf-<pid>.map names the guest's
    // functions for `perf`, which needs the symbols left out above. An environment switch, like
    // RUST_LOG, so the compiler child (which inherits it) builds the same artifacts.
    if matches!(std::env::var("STRAIT_WASM_PERFMAP").as_deref(), Ok(v) if !v.is_empty() && v != "0")
    {
        cfg.profiler(wasmtime::ProfilingStrategy::PerfMap)
            .debug_symbols(true);
    }
    cfg
}

/// An engine from [`engine_config`], with Cranelift for `compiler: true`. Without it the engine
/// only loads artifacts, checking each against this host's CPU features (rather than against
/// its own compiler's settings); what must match otherwise (wasmtime version, engine flags,
/// tunables, wasm features) is checked either way. The serving process of
/// [`CompileMode::Subprocess`] never compiles, and building a compiler would run (and leave
/// resident) about 1 MiB of Cranelift's code: the ISA and settings builders.
pub fn engine(s: EngineSettings, compiler: bool) -> Result<Engine, WasmError> {
    let mut cfg = engine_config(s);
    cfg.enable_compiler(compiler);
    Engine::new(&cfg).map_err(|e| WasmError::Engine(format!("{e:#}")))
}

/// Compiles `bytes` (the module `path` names) for `engine`, which was built from `settings`.
/// `artifact_dir` is where a [`CompileMode::Subprocess`] artifact is kept while the module is
/// loaded (an unnamed file, see the module docs).
pub fn compile(
    engine: &Engine,
    mode: &CompileMode,
    settings: EngineSettings,
    artifact_dir: &Path,
    path: &Path,
    bytes: &[u8],
) -> Result<Module, WasmError> {
    let exe = match mode {
        CompileMode::InProcess => {
            return Module::new(engine, bytes).map_err(|e| WasmError::Compile {
                path: path.to_owned(),
                message: format!("{e:#}"),
            })
        }
        CompileMode::Subprocess(exe) => exe,
    };
    let compiler = |message: String| WasmError::Compiler {
        path: path.to_owned(),
        message,
    };
    let started = std::time::Instant::now();
    let file = match tempfile::tempfile_in(artifact_dir) {
        Ok(f) => Some(f),
        Err(e) => {
            tracing::warn!(
                module = %path.display(), dir = %artifact_dir.display(), error = %e,
                "cannot create a file for the compiled module in wasm.artifact_dir; \
                 loading it into memory instead (more resident memory)"
            );
            None
        }
    };
    let out = match &file {
        Some(f) => Output::File(
            f.try_clone()
                .map_err(|e| compiler(format!("cannot share the artifact file: {e}")))?,
        ),
        None => Output::Pipe,
    };
    let artifact = run_child(exe, settings, bytes, out).map_err(|f| match f {
        ChildFailure::Invalid(message) => WasmError::Compile {
            path: path.to_owned(),
            message,
        },
        ChildFailure::Other(message) => compiler(message),
    })?;
    let loaded = |e: wasmtime::Error| compiler(format!("cannot load the compiled module: {e:#}"));
    let (module, size) = match file {
        Some(file) => {
            let size = file.metadata().map(|m| m.len()).unwrap_or(0);
            // Only to read the artifact back if it cannot be mapped (below).
            let readback = file.try_clone();
            // SAFETY: `deserialize_open_file` requires a file holding the unmodified output of
            // `Engine::precompile_module` (or `Module::serialize`) of a compatible engine, never
            // arbitrary input, and that the file does not change while the `Module` lives (it
            // is mapped, not copied). Both hold:
            // - Its content is what a child we just ran wrote to its stdout: a strait binary (the
            //   daemon runs /proc/self/exe, itself; tests name the binary of their build)
            //   calling `precompile_module` on an engine from `engine_config(settings)`, the
            //   same function and settings `engine` was built with.
            // - `tempfile_in` made the file without a name (`O_TMPFILE`, or created 0600 and
            //   unlinked at once), so no other process can open it. The only other descriptor
            //   was the child's stdout, and the child has exited (`run_child` waits for it);
            //   it spawns nothing. This process hands the `File` to wasmtime, which maps it
            //   privately and never writes through it, and only reads through `readback`.
            // wasmtime also checks the artifact's header (wasmtime version, target, engine
            // flags and tunables) and refuses a mismatch with an error instead of loading it.
            match unsafe { Module::deserialize_open_file(engine, file) } {
                Ok(m) => (m, size),
                Err(e) => {
                    // Most likely a `noexec` mount, which refuses executable mappings of its
                    // files. Load a copy instead, as without a file; if the artifact itself is
                    // refused, this fails the same way and reports that.
                    let bytes = readback
                        .and_then(|mut f| {
                            let mut v = Vec::new();
                            f.seek(SeekFrom::Start(0))?;
                            f.read_to_end(&mut v)?;
                            Ok(v)
                        })
                        .map_err(|r| {
                            compiler(format!(
                                "cannot load the compiled module: {e:#} \
                                 (and cannot read it back: {r})"
                            ))
                        })?;
                    // SAFETY: as above for the content; `deserialize` copies it.
                    let m = unsafe { Module::deserialize(engine, &bytes) }.map_err(loaded)?;
                    tracing::warn!(
                        module = %path.display(), dir = %artifact_dir.display(),
                        error = %format!("{e:#}"),
                        "cannot map the compiled module from wasm.artifact_dir (mounted noexec?); \
                         loaded a copy into memory instead (more resident memory)"
                    );
                    (m, size)
                }
            }
        }
        None => {
            // SAFETY: as above for the content; here it came through the child's stdout pipe,
            // which nothing else writes to, and `deserialize` copies it.
            let m = unsafe { Module::deserialize(engine, &artifact) }.map_err(loaded)?;
            (m, artifact.len() as u64)
        }
    };
    tracing::debug!(
        module = %path.display(), bytes = bytes.len(), artifact = size,
        ms = started.elapsed().as_millis() as u64, "module compiled in a child process"
    );
    drop(artifact);
    release_free_heap();
    Ok(module)
}

/// Returns the malloc heap's free pages to the kernel. glibc keeps what the artifact's pipe
/// buffers and the deserialization freed (its mmap threshold grows after the first large free,
/// so later buffers land in the heap): about 0.9 MiB of idle RSS with three filters.
fn release_free_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only walks glibc's own arenas under their locks and madvises free
    // chunks; it takes no pointer and invalidates no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

enum ChildFailure {
    /// The module is not valid: wasmtime's message.
    Invalid(String),
    /// The child could not be run or did not finish.
    Other(String),
}

/// Where the child's stdout goes.
enum Output {
    /// This file (the artifact is read from it afterwards).
    File(std::fs::File),
    /// A pipe, returned as the `Ok` bytes of [`run_child`].
    Pipe,
}

/// Runs the compiler; the artifact is in `out`, or, for [`Output::Pipe`], the bytes returned.
fn run_child(
    exe: &Path,
    settings: EngineSettings,
    bytes: &[u8],
    out: Output,
) -> Result<Vec<u8>, ChildFailure> {
    let what = || format!("`{} {SUBCOMMAND}`", exe.display());
    let mut child = Command::new(exe)
        .arg(SUBCOMMAND)
        .args(settings.args())
        .stdin(Stdio::piped())
        .stdout(match out {
            Output::File(f) => Stdio::from(f),
            Output::Pipe => Stdio::piped(),
        })
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ChildFailure::Other(format!("cannot start the compiler {}: {e}", what())))?;
    // The child reads all of stdin before it writes anything, so writing first cannot block on
    // a full stdout pipe. If it dies early the write fails (EPIPE) and its status says why.
    let wrote = child.stdin.take().map(|mut stdin| stdin.write_all(bytes));
    let out = child
        .wait_with_output()
        .map_err(|e| ChildFailure::Other(format!("the compiler {} was lost: {e}", what())))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stderr = stderr.trim();
    match (out.status.code(), out.status.signal()) {
        (Some(0), _) => match wrote {
            Some(Ok(())) => Ok(out.stdout),
            Some(Err(e)) => Err(ChildFailure::Other(format!(
                "the compiler {} exited before it read the module: {e}",
                what()
            ))),
            None => Err(ChildFailure::Other(format!(
                "the compiler {} had no stdin",
                what()
            ))),
        },
        (Some(EXIT_INVALID), _) => Err(ChildFailure::Invalid(stderr.to_owned())),
        (code, signal) => {
            let how = match (code, signal) {
                (_, Some(s)) => format!("was killed by signal {s}"),
                (Some(c), _) => format!("exited with status {c}"),
                (None, None) => format!("ended ({})", out.status),
            };
            let tail = tail(stderr, 1000);
            Err(ChildFailure::Other(if tail.is_empty() {
                format!("the compiler {} {how}", what())
            } else {
                format!("the compiler {} {how}: {tail}", what())
            }))
        }
    }
}

/// The last `max` bytes of `s` (on a character boundary).
fn tail(s: &str, max: usize) -> &str {
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// `strait __compile-wasm`: the module on stdin, the precompiled artifact on stdout. Returns
/// the process's exit status.
pub fn child_main(settings: EngineSettings) -> u8 {
    let mut bytes = Vec::new();
    if let Err(e) = std::io::stdin().lock().read_to_end(&mut bytes) {
        eprintln!("cannot read the module from stdin: {e}");
        return 1;
    }
    let engine = match engine(settings, true) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let artifact = match engine.precompile_module(&bytes) {
        Ok(a) => a,
        Err(e) => {
            eprint!("{e:#}");
            return EXIT_INVALID as u8;
        }
    };
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(&artifact).and_then(|()| out.flush()) {
        eprintln!("cannot write the compiled module to stdout: {e}");
        return 1;
    }
    0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn args_carry_every_engine_setting() {
        let s = EngineSettings {
            memory_limit: 1 << 20,
            max_vms: 7,
        };
        assert_eq!(
            s.args(),
            ["--memory-limit", "1048576", "--max-vms", "7"].map(String::from)
        );
    }

    #[test]
    fn an_artifact_loads_into_an_engine_of_the_same_settings_only() {
        let s = EngineSettings::of(&WasmConfig::default());
        let wat = br#"(module (func (export "f")))"#;
        let artifact = engine(s, true).unwrap().precompile_module(wat).unwrap();
        for compiler in [true, false] {
            // SAFETY: the artifact was just produced by `precompile_module` above.
            let same = unsafe { Module::deserialize(&engine(s, compiler).unwrap(), &artifact) };
            assert!(same.is_ok(), "compiler: {compiler}");
        }
        let mut cfg = engine_config(s);
        cfg.epoch_interruption(false);
        let other = Engine::new(&cfg).unwrap();
        // SAFETY: as above; wasmtime must refuse it for the different engine.
        let e = unsafe { Module::deserialize(&other, &artifact) }.unwrap_err();
        assert!(format!("{e:#}").contains("epoch"), "{e:#}");
        cfg.enable_compiler(false);
        let other = Engine::new(&cfg).unwrap();
        // SAFETY: as above.
        let e = unsafe { Module::deserialize(&other, &artifact) }.unwrap_err();
        assert!(format!("{e:#}").contains("epoch"), "{e:#}");
    }

    /// `compile` through `exe` as the compiler child; the error's text.
    fn child_error(exe: &Path) -> String {
        let dir = tempfile::tempdir().unwrap();
        let s = EngineSettings::of(&WasmConfig::default());
        compile(
            &engine(s, false).unwrap(),
            &CompileMode::Subprocess(exe.to_owned()),
            s,
            dir.path(),
            Path::new("f.wasm"),
            b"(module)",
        )
        .err()
        .unwrap()
        .to_string()
    }

    /// A stand-in compiler that writes `artifact` (a file) to stdout.
    fn replay(dir: &Path, artifact: &Path) -> PathBuf {
        script(dir, &format!("cat '{}'", artifact.display()))
    }

    #[test]
    fn the_artifact_is_mapped_from_an_unnamed_file_or_else_copied() {
        let s = EngineSettings::of(&WasmConfig::default());
        let compiler = engine(s, true).unwrap();
        let engine = engine(s, false).unwrap();
        let wat = br#"(module (memory (export "memory") 1) (data (i32.const 0) "hi")
            (func (export "f") (result i32) i32.const 7))"#;
        let tmp = tempfile::tempdir().unwrap();
        let artifact = tmp.path().join("a.cwasm");
        std::fs::write(&artifact, compiler.precompile_module(wat).unwrap()).unwrap();
        let exe = CompileMode::Subprocess(replay(tmp.path(), &artifact));
        let dir = tmp.path().join("artifacts");
        std::fs::create_dir(&dir).unwrap();
        for artifact_dir in [dir.as_path(), Path::new("/nonexistent/dir")] {
            let m = compile(&engine, &exe, s, artifact_dir, Path::new("f.wasm"), wat).unwrap();
            let mut store = wasmtime::Store::new(&engine, ());
            store.set_epoch_deadline(1);
            let i = wasmtime::Instance::new(&mut store, &m, &[]).unwrap();
            let f = i.get_typed_func::<(), i32>(&mut store, "f").unwrap();
            assert_eq!(f.call(&mut store, ()).unwrap(), 7);
            let mem = i.get_memory(&mut store, "memory").unwrap();
            assert_eq!(&mem.data(&store)[..2], b"hi");
        }
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "the artifact file has no name"
        );
    }

    /// A stand-in compiler: a shell script.
    fn script(dir: &Path, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let p = dir.join(format!("compiler-{}", body.len()));
        std::fs::write(&p, format!("#!/bin/sh\ncat >/dev/null\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn a_missing_compiler_names_itself() {
        let e = child_error(Path::new("/nonexistent/strait"));
        assert!(
            e.starts_with("cannot compile f.wasm: cannot start the compiler `/nonexistent/strait __compile-wasm`"),
            "{e}"
        );
    }

    #[test]
    fn a_killed_or_failing_compiler_is_reported_with_the_module() {
        let dir = tempfile::tempdir().unwrap();
        let e = child_error(&script(dir.path(), "kill -9 $$"));
        assert!(e.starts_with("cannot compile f.wasm: the compiler"), "{e}");
        assert!(e.ends_with("was killed by signal 9"), "{e}");
        let e = child_error(&script(dir.path(), "echo 'out of luck' >&2; exit 3"));
        assert!(
            e.ends_with("__compile-wasm` exited with status 3: out of luck"),
            "{e}"
        );
        let e = child_error(&script(dir.path(), "printf 'not an artifact'"));
        assert!(
            e.starts_with("cannot compile f.wasm: cannot load the compiled module: "),
            "{e}"
        );
        let e = child_error(&script(dir.path(), "printf 'bad magic' >&2; exit 65"));
        assert_eq!(
            e, "f.wasm is not a valid WebAssembly module: bad magic",
            "exit 65 is the module's fault"
        );
    }

    #[test]
    fn tail_keeps_the_end_on_a_char_boundary() {
        assert_eq!(tail("abc", 10), "abc");
        assert_eq!(tail("abcdef", 2), "ef");
        assert_eq!(tail("aé", 1), "");
    }
}
