//! The engine's epoch clock, which bounds how long a callback may run.
//!
//! The engine's epoch is the number of milliseconds since the runtime started. A thread wakes
//! every [`tick_for`] the callback deadline (the deadline itself, at least 1 ms: 5 ms by
//! default) and advances the epoch by every millisecond that passed. Callbacks read that count
//! when they start ([`EpochClock::enter`]): a relaxed atomic load, instead of a clock read per
//! callback.
//!
//! The tick is a trade: deadlines are noticed up to one tick late, and each wake-up costs the
//! process CPU time and preempts a worker on a busy core. On a 2-vCPU VM with strait on one
//! core, ticking every half deadline (2.5 ms, 400 wake-ups/s) cost a filtered listener about
//! 13 % of its requests per second (`strait-bench filters --parts rps`, 2026-11-23); a tick of
//! the whole deadline halves that, and a larger `callback_deadline` cuts it further.
//!
//! When no callback has started for [`IDLE_AFTER_MS`], the thread ticks only every
//! [`IDLE_TICK`], so an idle proxy costs nothing measurable. The epoch still counts
//! milliseconds then, because each wake-up adds every millisecond that passed. The next
//! callback to start wakes the thread at once and puts it back on the busy tick. A callback
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

/// The busy tick for a callback deadline: the deadline, at least 1 ms and at most
/// [`IDLE_TICK`].
pub fn tick_for(deadline: Duration) -> Duration {
    deadline.clamp(Duration::from_millis(1), IDLE_TICK)
}

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
    /// The period while callbacks run (see [`tick_for`]).
    tick: Duration,
}

impl EpochClock {
    /// Starts the clock thread for `engine`, ticking every `tick` while callbacks run. It stops
    /// when [`Self::stop`] is called.
    pub fn start(engine: Engine, tick: Duration) -> std::io::Result<Arc<Self>> {
        let clock = Arc::new(Self {
            now_ms: AtomicU64::new(0),
            seen_ms: AtomicU64::new(0),
            slow: AtomicBool::new(false),
            thread: OnceLock::new(),
            stop: AtomicBool::new(false),
            tick,
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
                std::thread::sleep(self.tick);
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
        let clock = EpochClock::start(engine, Duration::from_millis(1)).expect("clock");
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

    #[test]
    fn the_busy_tick_is_the_deadline_within_bounds() {
        assert_eq!(tick_for(Duration::from_millis(5)), Duration::from_millis(5));
        assert_eq!(
            tick_for(Duration::from_micros(300)),
            Duration::from_millis(1)
        );
        assert_eq!(tick_for(Duration::from_secs(10)), IDLE_TICK);
    }
}
