;; Answers 413 "denied by body" from `proxy_on_request_body` (the first body callback) and
;; pauses: a verdict reached while the request body streams
;; (proxy/tests/filters.rs, a_local_response_on_the_request_body_decides_the_response).
(module
  (import "env" "proxy_send_local_response" (func $local (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "denied by body")
  (global $bump (mut i32) (i32.const 4096))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (global.get $bump) (local.get 0)))
    (local.get $p))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
    (drop (call $local (i32.const 413) (i32.const 0) (i32.const 0)
      (i32.const 100) (i32.const 14) (i32.const 0) (i32.const 0) (i32.const -1)))
    (i32.const 1))
)
