;; The smallest filter that does what the minimal filter (pw_basics `{}`) does, written against
;; the proxy-wasm ABI 0.2.1 directly, with no SDK: it counts every request in the counter
;; `abi_minimal_requests` and lets everything continue. `strait-bench filters --rps-filter
;; abi-minimal` runs it, to tell the host's per-request cost (the callbacks, their trampolines,
;; the per-stream state) from a guest SDK's dispatch (benches/README.md, "WASM filters").
(module
  (import "env" "proxy_define_metric" (func $define (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_increment_metric" (func $increment (param i32 i64) (result i32)))
  (memory (export "memory") 1)
  ;; 64: the metric's name; 96: its id, written by proxy_define_metric.
  (data (i32.const 64) "abi_minimal_requests")
  (global $bump (mut i32) (i32.const 4096))
  (func (export "proxy_abi_version_0_2_1"))
  ;; A bump allocator: the filter asks the host for nothing, so the host allocates only what it
  ;; hands over unasked (the plugin configuration, once per configure).
  (func (export "proxy_on_memory_allocate") (param i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (global.get $bump) (local.get 0)))
    (local.get $p))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    ;; Counter (0); a failure to define it fails the configuration.
    (i32.eqz (call $define (i32.const 0) (i32.const 64) (i32.const 20) (i32.const 96))))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $increment (i32.load (i32.const 96)) (i64.const 1)))
    (i32.const 0))
  (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_response_body") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_delete") (param i32)))
