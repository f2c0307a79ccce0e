;; Declares the proxy-wasm ABI 0.2.1 marker and exports the usual callbacks, but has no linear
;; memory at all (none defined, imported or exported), so a host has nowhere to put
;; configuration, headers or bodies. A host must refuse to load it.
(module
  (func (export "proxy_abi_version_0_2_1"))
  ;; No memory: the "allocator" can only fail.
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32) (i32.const 0))
  (func (export "proxy_on_context_create") (param $context_id i32) (param $parent_id i32))
  (func (export "proxy_on_vm_start") (param $root_id i32) (param $vm_config_size i32) (result i32)
    (i32.const 1))
  (func (export "proxy_on_configure") (param $root_id i32) (param $plugin_config_size i32)
    (result i32)
    (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32)))
