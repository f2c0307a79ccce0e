;; Reads each head's whole map and writes it back unchanged
;; (`set_http_request_headers(get_http_request_headers())`): the heads must reach the upstream
;; and the client as they were (proxy/tests/filters.rs,
;; a_header_map_written_back_whole_changes_nothing).
(module
  (import "env" "proxy_get_header_map_pairs" (func $get (param i32 i32 i32) (result i32)))
  (import "env" "proxy_set_header_map_pairs" (func $set (param i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $bump (mut i32) (i32.const 4096))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (global.get $bump) (local.get 0)))
    (local.get $p))
  (func (export "proxy_on_context_create") (param i32 i32))
  ;; Map `map`: get into (ptr at 8, size at 12), set it back; unreachable unless both are OK.
  (func $roundtrip (param $map i32)
    (global.set $bump (i32.const 4096))
    (if (call $get (local.get $map) (i32.const 8) (i32.const 12)) (then unreachable))
    (if (call $set (local.get $map) (i32.load (i32.const 8)) (i32.load (i32.const 12)))
      (then unreachable)))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (call $roundtrip (i32.const 0))
    (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (call $roundtrip (i32.const 2))
    (i32.const 0))
)
