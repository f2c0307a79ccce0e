//! The engine's epoch clock, which bounds how long a callback may run.
//!
//! A thread advances the engine's epoch once per millisecond of wall-clock time, so the epoch
//! is the number of milliseconds since the runtime started. Callbacks read that count when
//! they start ([`EpochClock::enter`]): a relaxed atomic load, instead of a clock read per
//! callback.
//!
//! When no callback has started for [`IDLE_AFTER_MS`], the thread ticks only every
//! [`IDLE_TICK`], so an idle proxy costs nothing measurable. The epoch still counts
//! milliseconds then, because each wake-up adds every millisecond that passed. The next
//! callback to start wakes the thread at once and puts it back on the 1 ms tick. A callback
//! that is still running when the thread slows down is still interrupted. Its deadline checks
//! just come up to [`IDLE_TICK`] later.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use wasmtime::Engine;

/// Milliseconds without a callback start after which the clock slows down.
pub const IDLE_AFTER_MS: u64 = 1_000;
/// The tick period while idle.
pub const IDLE_TICK: Duration = Duration::from_millis(100);
const TICK: Duration = Duration::from_millis(1);

/// See the module documentation.
pub struct EpochClock {
    /// Milliseconds since start (what the engine's epoch has been advanced to).
    now_ms: AtomicU64,
    /// `now_ms` when a callback last started.
    seen_ms: AtomicU64,
    /// The thread is sleeping for [`IDLE_TICK`] and wants an unpark when a callback starts.
    slow: AtomicBool,
    thread: OnceLock<std::thread::Thread>,
    stop: AtomicBool,
}

impl EpochClock {
    /// Starts the clock thread for `engine`. It stops when [`Self::stop`] is called.
    pub fn start(engine: Engine) -> std::io::Result<Arc<Self>> {
        let clock = Arc::new(Self {
            now_ms: AtomicU64::new(0),
            seen_ms: AtomicU64::new(0),
            slow: AtomicBool::new(false),
            thread: OnceLock::new(),
            stop: AtomicBool::new(false),
        });
        let c = clock.clone();
        let handle = std::thread::Builder::new()
            .name("strait-wasm-epoch".into())
            .spawn(move || c.run(&engine))?;
        let _ = clock.thread.set(handle.thread().clone());
        Ok(clock)
    }

    /// Milliseconds since the clock started, as far as the epoch has been advanced.
    pub fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::Relaxed)
    }

    /// Called when a callback starts: the current count, and a wake-up for a slowed clock.
    pub fn enter(&self) -> u64 {
        let now = self.now_ms.load(Ordering::Relaxed);
        // At most one store per millisecond, so busy workers do not fight over the line.
        if self.seen_ms.load(Ordering::Relaxed) != now {
            self.seen_ms.store(now, Ordering::SeqCst);
            // Pairs with the store to `slow` and the load of `seen_ms` in `run`: either that
            // thread sees this callback, or this callback sees the thread slowing down.
            if self.slow.load(Ordering::SeqCst) {
                if let Some(t) = self.thread.get() {
                    t.unpark();
                }
            }
        }
        now
    }

    /// Ends the clock thread (within one idle tick).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
    }

    fn idle(&self, now: u64) -> bool {
        now.saturating_sub(self.seen_ms.load(Ordering::SeqCst)) >= IDLE_AFTER_MS
    }

    fn run(&self, engine: &Engine) {
        let start = Instant::now();
        let mut advanced = 0u64;
        while !self.stop.load(Ordering::Relaxed) {
            if self.idle(advanced) {
                self.slow.store(true, Ordering::SeqCst);
                if self.idle(advanced) {
                    std::thread::park_timeout(IDLE_TICK);
                }
                self.slow.store(false, Ordering::SeqCst);
            } else {
                std::thread::sleep(TICK);
            }
            let now = start.elapsed().as_millis() as u64;
            while advanced < now {
                engine.increment_epoch();
                advanced += 1;
            }
            self.now_ms.store(advanced, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
        let t = Instant::now();
        while !ok() {
            assert!(t.elapsed() < Duration::from_secs(10), "timed out: {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn counts_milliseconds_slows_down_when_idle_and_wakes_on_a_callback() {
        let mut cfg = wasmtime::Config::new();
        cfg.epoch_interruption(true);
        let engine = Engine::new(&cfg).expect("engine");
        let clock = EpochClock::start(engine).expect("clock");
        let t0 = Instant::now();
        wait_for("the clock to pass 50 ms", || clock.now_ms() >= 50);
        // It counts wall-clock milliseconds, never ahead of real time.
        assert!(clock.now_ms() <= t0.elapsed().as_millis() as u64 + 1);
        // No callback: after IDLE_AFTER_MS it sleeps in IDLE_TICK steps.
        wait_for("the clock to slow down", || {
            clock.slow.load(Ordering::SeqCst)
        });
        let before = clock.now_ms();
        // A callback starting wakes it: the count moves well before the idle tick would have
        // woken the thread (generous, so a loaded machine does not fail it).
        let woke = Instant::now();
        clock.enter();
        wait_for("the clock to move after enter", || clock.now_ms() > before);
        assert!(
            woke.elapsed() < IDLE_TICK * 3 / 4,
            "the clock took {:?} to wake up",
            woke.elapsed()
        );
        assert!(!clock.idle(clock.now_ms()));
        clock.stop();
    }
}
