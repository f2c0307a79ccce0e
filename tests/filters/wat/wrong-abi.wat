;; A proxy-wasm-shaped module that declares an unknown ABI version: it exports
;; `proxy_abi_version_0_9_9` instead of a known marker (e.g. `proxy_abi_version_0_2_1`), but is
;; otherwise a complete, valid do-nothing filter (memory, allocator, context callbacks).
;; A host must refuse to load it because of the ABI marker alone.
(module
  (memory (export "memory") 1)
  ;; Bump allocator over the single page; returns 0 when the page is exhausted.
  (global $next (mut i32) (i32.const 1024))
  (func (export "proxy_abi_version_0_9_9"))
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $next))
    (if (i32.gt_u (i32.add (local.get $p) (local.get $size)) (i32.const 65536))
      (then (return (i32.const 0))))
    (global.set $next (i32.add (local.get $p) (local.get $size)))
    (local.get $p))
  (func (export "proxy_on_context_create") (param $context_id i32) (param $parent_id i32))
  (func (export "proxy_on_vm_start") (param $root_id i32) (param $vm_config_size i32) (result i32)
    (i32.const 1))
  (func (export "proxy_on_configure") (param $root_id i32) (param $plugin_config_size i32)
    (result i32)
    (i32.const 1))
  ;; Action::Continue (0) for every HTTP callback.
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_response_body") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32)))
