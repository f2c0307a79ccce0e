;; The end of a root context when strait unloads a filter (proxy/tests/filters.rs,
;; unloaded_filters_end_their_root_contexts), and the start of a WASI reactor with a `main`.
;; The plugin configuration's length picks how the root context ends:
;;   1 byte:  proxy_on_done returns true (done at once);
;;   2 bytes: a 60 s timer from the start; proxy_on_done returns false and sets the timer to
;;            20 ms, which must apply at once (not after the 60 s the old one sleeps); the
;;            first tick after that calls proxy_done (which must answer OK), then again
;;            (NOT_FOUND: nothing left to end);
;;   3 bytes: proxy_on_done returns false and the filter never calls proxy_done.
;; Every step is logged at info with the mode, so the test reads the order from the log.
;; Streams pass untouched (no request callbacks); their contexts end at once.
(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_done" (func $done (result i32)))
  (import "env" "proxy_set_tick_period_milliseconds" (func $tick (param i32) (result i32)))
  (memory (export "memory") 1)
  (global $bump (mut i32) (i32.const 8192))
  (global $init (mut i32) (i32.const 0))
  (global $main (mut i32) (i32.const 0))
  (global $mode (mut i32) (i32.const 0))
  (global $ticked (mut i32) (i32.const 0))
  (global $ending (mut i32) (i32.const 0))
  ;; Messages: offset, then length in the calls below. Each ends with " mode=", then the
  ;; mode digit is written after it.
  (data (i32.const 100) "main ran after _initialize mode=")          ;; 32
  (data (i32.const 200) "main did not run mode=")                    ;; 22
  (data (i32.const 300) "early proxy_done: not_found mode=")         ;; 33
  (data (i32.const 400) "early proxy_done: unexpected mode=")         ;; 34
  (data (i32.const 500) "on_done root mode=")                        ;; 18
  (data (i32.const 600) "proxy_done: ok mode=")                      ;; 20
  (data (i32.const 700) "proxy_done: unexpected mode=")              ;; 28
  (data (i32.const 800) "second proxy_done: not_found mode=")        ;; 34
  (data (i32.const 900) "second proxy_done: unexpected mode=")       ;; 35
  (data (i32.const 1000) "on_delete root mode=")                     ;; 20
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "_initialize") (global.set $init (i32.const 1)))
  (func (export "main") (param i32 i32) (result i32)
    (global.set $main (global.get $init))
    (i32.const 0))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (global.get $bump) (local.get 0)))
    (local.get $p))
  ;; Logs the message at `at` (`n` bytes) followed by the mode digit.
  (func $say (param $at i32) (param $n i32)
    (i32.store8 (i32.add (local.get $at) (local.get $n))
      (i32.add (i32.const 48) (global.get $mode)))
    (drop (call $log (i32.const 2) (local.get $at) (i32.add (local.get $n) (i32.const 1)))))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param $ctx i32) (param $size i32) (result i32)
    (global.set $mode (local.get $size))
    (if (global.get $main)
      (then (call $say (i32.const 100) (i32.const 32)))
      (else (call $say (i32.const 200) (i32.const 22))))
    ;; Nothing is ending yet: proxy_done has nothing to finish.
    (if (i32.eq (call $done) (i32.const 1))
      (then (call $say (i32.const 300) (i32.const 33)))
      (else (call $say (i32.const 400) (i32.const 34))))
    (if (i32.eq (global.get $mode) (i32.const 2))
      (then (drop (call $tick (i32.const 60000)))))
    (i32.const 1))
  (func (export "proxy_on_done") (param $ctx i32) (result i32)
    (if (i32.ne (local.get $ctx) (i32.const 1)) (then (return (i32.const 1))))
    (call $say (i32.const 500) (i32.const 18))
    (global.set $ending (i32.const 1))
    (if (i32.eq (global.get $mode) (i32.const 1)) (then (return (i32.const 1))))
    (if (i32.eq (global.get $mode) (i32.const 2))
      (then (drop (call $tick (i32.const 20)))))
    (i32.const 0))
  (func (export "proxy_on_tick") (param $ctx i32)
    (if (i32.or (global.get $ticked) (i32.eqz (global.get $ending))) (then (return)))
    (global.set $ticked (i32.const 1))
    (if (i32.eqz (call $done))
      (then (call $say (i32.const 600) (i32.const 20)))
      (else (call $say (i32.const 700) (i32.const 28))))
    (if (i32.eq (call $done) (i32.const 1))
      (then (call $say (i32.const 800) (i32.const 34)))
      (else (call $say (i32.const 900) (i32.const 35)))))
  (func (export "proxy_on_delete") (param $ctx i32)
    (if (i32.eq (local.get $ctx) (i32.const 1))
      (then (call $say (i32.const 1000) (i32.const 20))))))
