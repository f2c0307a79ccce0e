;; Declares the proxy-wasm ABI 0.2.1 marker and exports its memory, but none of the callbacks a
;; host needs (`proxy_on_context_create`, `proxy_on_vm_start`, `proxy_on_configure`,
;; `proxy_on_request_headers`, ...) nor an allocator. A host must refuse to load it.
(module
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1")))
