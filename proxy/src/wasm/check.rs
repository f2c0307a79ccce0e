//! `strait filter check FILE.wasm`: what a module is and whether strait can run it.

use std::fmt::Write as _;
use std::path::Path;

use wasmtime::{Engine, ExternType, Linker, Module};

use super::host::HostState;
use super::vm::AbiVersion;

/// Imports of `module` that `linker` does not define (`module.name`).
pub fn missing_imports(_linker: &Linker<HostState>, module: &Module) -> Vec<String> {
    let provided = super::abi::provided();
    module
        .imports()
        .filter(|i| matches!(i.ty(), ExternType::Func(_)))
        .filter(|i| {
            !provided
                .iter()
                .any(|(m, n)| m == i.module() && n == i.name())
        })
        .map(|i| format!("{}.{}", i.module(), i.name()))
        .collect()
}

/// The result of checking a module.
pub struct ModuleReport {
    pub abi: Option<AbiVersion>,
    pub exports: Vec<String>,
    pub imports: Vec<String>,
    pub missing: Vec<String>,
    pub problems: Vec<String>,
}

impl ModuleReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn render(&self, path: &Path) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "module: {}", path.display());
        let _ = writeln!(
            s,
            "abi: {}",
            self.abi
                .map_or("none (not a proxy-wasm module)", |a| a.as_str())
        );
        let _ = writeln!(
            s,
            "exports ({}): {}",
            self.exports.len(),
            self.exports.join(", ")
        );
        let _ = writeln!(
            s,
            "imports ({}): {}",
            self.imports.len(),
            self.imports.join(", ")
        );
        if self.missing.is_empty() {
            let _ = writeln!(s, "imports strait lacks: none");
        } else {
            let _ = writeln!(
                s,
                "imports strait lacks ({}, they trap if called): {}",
                self.missing.len(),
                self.missing.join(", ")
            );
        }
        for p in &self.problems {
            let _ = writeln!(s, "problem: {p}");
        }
        let _ = writeln!(
            s,
            "verdict: {}",
            if self.ok() {
                "loadable"
            } else {
                "NOT loadable"
            }
        );
        s
    }
}

/// Compiles `path` and inspects its exports and imports.
pub fn check_module(path: &Path) -> Result<ModuleReport, super::WasmError> {
    let bytes = std::fs::read(path).map_err(|source| super::WasmError::Read {
        path: path.to_owned(),
        source,
    })?;
    let engine = Engine::default();
    let module = Module::new(&engine, &bytes).map_err(|e| super::WasmError::Compile {
        path: path.to_owned(),
        message: format!("{e:#}"),
    })?;
    let exports: Vec<String> = module.exports().map(|e| e.name().to_owned()).collect();
    let imports: Vec<String> = module
        .imports()
        .map(|i| format!("{}.{}", i.module(), i.name()))
        .collect();
    let linker: Linker<HostState> = Linker::new(&engine);
    let missing = missing_imports(&linker, &module);
    let abi = AbiVersion::from_exports(exports.iter().map(String::as_str));
    let mut problems = Vec::new();
    if abi.is_none() {
        problems.push("no proxy_abi_version_* export (0_2_1, 0_2_0 or 0_1_0)".to_owned());
    }
    for need in ["memory", "proxy_on_context_create"] {
        if !exports.iter().any(|e| e == need) {
            problems.push(format!("missing export `{need}`"));
        }
    }
    if !exports
        .iter()
        .any(|e| e == "proxy_on_memory_allocate" || e == "malloc")
    {
        problems.push("missing export `proxy_on_memory_allocate` (or `malloc`)".to_owned());
    }
    Ok(ModuleReport {
        abi,
        exports,
        imports,
        missing,
        problems,
    })
}

/// Every host function strait provides, as (`module`, `name`).
pub fn provided_host_functions() -> Vec<(String, String)> {
    super::abi::provided()
}
